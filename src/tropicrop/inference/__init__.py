"""Full-scene prediction: a crop map for every requested month, blended across overlapping tiles, streamed.

The scene is cut into tiles of at most ``tile`` pixels overlapping by at least ``overlap``, spread evenly so
that the outer tiles end on the scene border (every pixel is covered without padding; a scene smaller than
a tile is one tile). Each tile's softmax probabilities are accumulated with a smooth weight
(:func:`tile_weights`: a sin^2 ramp inside the overlap on every side that has a neighbouring tile, 1
elsewhere; > 0 everywhere) and divided by the summed weight, so there are no seams and the map hardly
depends on the tile size. (The authors mosaic non-overlapping 32 x 32 patches; every patch border there is
a seam.) Each tile is read with a margin of scene context (:func:`context_window`, as wide as the network
looks: :func:`run_margin`) that is cropped off before blending, so the map does not depend on the tile
size even without overlap (the default; ``README``: tile size and context margin).

Tiles are processed in rows, left to right. Unnormalised sums are held only where a later tile can still
add: the current tile's block and the band of rows that the next tile row overlaps (``(targets, K,
overlap, width)``). After each tile its columns up to the next tile are final for the rows up to the next
tile row: they become uint8 class codes, and a tile row's finished rows are written to scratch GeoTIFFs
with windowed writes, which become cloud-optimised GeoTIFFs when the whole scene is done. Memory therefore
grows with the scene width only, by about ``targets x K x overlap x 4`` bytes per column, and never with
its height. When the buffers of all requested dates would pass :data:`BUFFER_BYTES` (a scene over 100 000
px wide), the dates are predicted in groups, one pass over the scene each.

Every date of a tile is read and encoded once per network (``model.encode``), and the encoder features are
shared by the 12-date windows of all target months served by that network (``model.decode``): an
all-months run encodes each date of a tile once for all 12 maps. A per-month run has one network per month,
each with its own encoder, so sharing happens within a network only. A sequence model
(``sequence_output``, e.g. vunet_convlstm_seq) maps every target month of a tile from one ConvLSTM pass
(:func:`sequence_probabilities`); a network without shared encoding (e.g. unet3d) runs ``forward`` per window.

Outputs in ``OUT`` (each written under a temporary name and renamed when complete; a date counts as done
when its map exists, so a re-run after a crash finishes only the missing dates)::

    OUT/classes.json                 the class table: map code i = model class index i (0 = no data)
    OUT/maps/YYYYMMDD.tif            uint8 class codes, colour table, input CRS/transform, COG with overviews
    OUT/maps/YYYYMMDD.png            quick-look with a legend
    OUT/probabilities/YYYYMMDD.tif   optional: one uint8 band per class (probability x 255, scale 1/255)
    OUT/predict.json                 run, scene, tiling, device and precision, the net per date, timing (one entry
                                     per pass)

A ``kill -9`` leaves at most a hidden ``OUT/.partial-*`` scratch folder (removed on any Python exception)
and hidden ``.*.tmp.tif`` files, never a file under a final name.

Modules, in the order of the flow: :mod:`.run` loads a run (through :mod:`tropicrop.runfiles`, without
Lightning), deciding once the kind of each model: :mod:`.predictor` is the one interface every kind offers
(a network, a sequence network, a per-pixel model such as LightGBM; :mod:`.kinds` implements it) and
:mod:`.prepare` readies networks; :mod:`.dates` picks the target dates; :mod:`.session` is what the
single-process and Dask paths share (dates, checks, outputs, plans, the log); :mod:`.tiling` lays out
tiles, the context margin they are read with (a network's measured by :mod:`tropicrop.models.context`, a
per-pixel model's multilook radius), their blending weights and the area of interest; :mod:`.tile` runs
one tile through a network; :mod:`.stream` reads each tile with its margin, blends and finishes rows;
:mod:`.mapfiles` writes COGs and quick-looks; :mod:`.predict` ties them together in one process,
:mod:`.blocks` and :mod:`.distributed` on Dask.
"""

from tropicrop.inference.dates import check_dates, default_dates, parse_dates
from tropicrop.inference.kinds import NetworkPredictor, PixelPredictor, SequencePredictor, predictor_for
from tropicrop.inference.mapfiles import NODATA, PROB_SCALE, Outputs, class_colors, write_cog, write_quicklook
from tropicrop.inference.predict import predict_run, predict_scene
from tropicrop.inference.predictor import Net, Plan, Predictor, TileInput
from tropicrop.inference.run import RunModels, load_run, prepare_for_inference, select_device
from tropicrop.inference.session import make_plans, resolve_dates
from tropicrop.inference.stream import BlendSums, FinishedRows, buffer_bytes, class_map, predict_tile, scaled_probabilities
from tropicrop.inference.tile import net_probabilities, sequence_probabilities
from tropicrop.inference.tiling import (
    aoi_reader,
    check_tiling,
    context_window,
    ramp,
    run_margin,
    run_margin_alignment,
    tile_layout,
    tile_weights,
)

__all__ = [
    "NODATA",
    "PROB_SCALE",
    "BlendSums",
    "FinishedRows",
    "Net",
    "NetworkPredictor",
    "Outputs",
    "PixelPredictor",
    "Plan",
    "Predictor",
    "RunModels",
    "SequencePredictor",
    "TileInput",
    "aoi_reader",
    "buffer_bytes",
    "check_dates",
    "check_tiling",
    "class_colors",
    "class_map",
    "context_window",
    "default_dates",
    "load_run",
    "make_plans",
    "net_probabilities",
    "parse_dates",
    "predict_run",
    "predict_scene",
    "predict_tile",
    "predictor_for",
    "prepare_for_inference",
    "ramp",
    "resolve_dates",
    "run_margin",
    "run_margin_alignment",
    "scaled_probabilities",
    "select_device",
    "sequence_probabilities",
    "tile_layout",
    "tile_weights",
    "write_cog",
    "write_quicklook",
]
