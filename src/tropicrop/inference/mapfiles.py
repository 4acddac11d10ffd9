"""Map files: class codes and probabilities as cloud-optimised GeoTIFFs, PNG quick-looks, colours."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.enums import Resampling
from rasterio.windows import Window

from tropicrop.classes import ClassTable
from tropicrop.errors import RunError
from tropicrop.io.files import atomic_path, write_json
from tropicrop.io.rasters import Grid
from tropicrop.layout import PredictionLayout
from tropicrop.palette import class_colors
from tropicrop.runfiles import read_class_table

NODATA = 0  # map code of pixels without a prediction (outside the AOI, or no real image in the window)
PROB_SCALE = 255  # probabilities are stored as round(p * 255) in uint8
LAYER_NODATA = 255  # confidence / uncertainty layers (0..100 = percent) where the map has no class
UNCERTAINTIES = ("entropy", "margin")  # predict --uncertainty: OUT/uncertainty/YYYYMMDD.tif
COG_BLOCK = 256
QUICKLOOK_SIDE = 1024  # longest side of the PNG quick-look, in pixels
LEGEND_INCHES = 2.5  # width of the quick-look's legend column

def _scratch_profile(grid: Grid, count: int) -> dict[str, Any]:
    """Uncompressed striped GeoTIFF: windowed writes of any rows go straight to disk."""
    return {"driver": "GTiff", "width": grid.width, "height": grid.height, "count": count, "dtype": "uint8",
            "crs": grid.crs, "transform": grid.transform, "tiled": False, "BIGTIFF": "IF_SAFER"}


def write_cog(src: Path, dst: Path, resampling: str) -> Path:
    """Copy GeoTIFF ``src`` to a cloud-optimised GeoTIFF ``dst`` (GDAL's COG driver: tiled, deflate,
    overviews made with ``resampling``), atomically. Colour table, nodata, band descriptions and scales
    are kept."""
    with atomic_path(dst) as tmp:
        rasterio.shutil.copy(src, tmp, driver="COG", COMPRESS="DEFLATE", BLOCKSIZE=COG_BLOCK, RESAMPLING=resampling,
                             OVERVIEW_RESAMPLING=resampling, BIGTIFF="IF_SAFER")
    return dst


def write_quicklook(map_path: Path, png: Path, names: Sequence[str], title: str) -> Path:
    """PNG quick-look of a class map with a legend of ``names`` (read decimated to at most
    :data:`QUICKLOOK_SIDE` pixels a side, through the COG's overviews), atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    with rasterio.open(map_path) as ds:
        scale = max(1.0, max(ds.width, ds.height) / QUICKLOOK_SIDE)
        shape = (max(1, round(ds.height / scale)), max(1, round(ds.width / scale)))
        codes = ds.read(1, out_shape=shape, resampling=Resampling.nearest)
    colors = class_colors(names)
    cmap = ListedColormap([_rgba(colors[i]) for i in range(len(names))])
    aspect = shape[1] / shape[0]
    width = min(12.0, 4.0 * aspect + LEGEND_INCHES)
    fig = Figure(figsize=(width, 4.5), dpi=150)
    FigureCanvasAgg(fig)
    # a fixed layout (the map left, the legend in the last LEGEND_INCHES) rather than tight_layout, which
    # draws the figure once more only to measure it
    ax = fig.add_axes((0.02, 0.03, 1.0 - (LEGEND_INCHES + 0.1) / width, 0.86))
    ax.imshow(codes, cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5, interpolation="nearest")
    ax.set_title(title)
    ax.set_axis_off()
    handles = [Patch(facecolor=_rgba(colors[i]), edgecolor="black", linewidth=0.3, label=names[i])
               for i in range(1, len(names))]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False, fontsize=8)
    with atomic_path(png) as tmp:  # zlib level 1: a quick-look, not an archive (README, Performance)
        fig.savefig(tmp, format="png", pil_kwargs={"compress_level": 1})
    return png


def _rgba(color: tuple[int, int, int, int]) -> tuple[float, float, float, float]:
    r, g, b, a = color
    return r / 255, g / 255, b / 255, a / 255


@dataclass(frozen=True)
class Outputs:
    """The final paths of one date's outputs."""

    map: Path
    png: Path
    probabilities: Path | None
    confidence: Path | None = None  # calibrated probability of the mapped class, percent (tropicrop.calibration)
    uncertainty: Path | None = None  # entropy or margin, percent (predict --uncertainty)

    @classmethod
    def of(cls, out: Path, date: dt.date, probabilities: bool, confidence: bool = False,
           uncertainty: str | None = None) -> Outputs:
        """Paths under ``out`` for ``date``."""
        layout = PredictionLayout(out)
        prob = layout.probabilities(date) if probabilities else None
        return cls(layout.map(date), layout.quicklook(date), prob, layout.confidence(date) if confidence else None,
                   layout.uncertainty(date) if uncertainty else None)

    def done(self) -> bool:
        """Whether every output exists (they only appear complete)."""
        paths = (self.map, self.png, self.probabilities, self.confidence, self.uncertainty)
        return all(p.is_file() for p in paths if p is not None)


class ScratchMaps:
    """Full-size scratch GeoTIFFs (class map, and probabilities) per target, written row band by row band."""

    def __init__(self, folder: Path, grid: Grid, dates: Sequence[dt.date], names: Sequence[str],
                 probabilities: bool, stack: ExitStack, layers: Sequence[str] = ()) -> None:
        self.maps: list[Path] = []
        self.probs: list[Path | None] = []
        self._map_ds: list[Any] = []
        self._prob_ds: list[Any] = []
        self.layers: dict[str, list[Path]] = {name: [] for name in layers}  # "confidence", "uncertainty"
        self._layer_ds: dict[str, list[Any]] = {name: [] for name in layers}
        colors = class_colors(names)
        for d in dates:
            for name in layers:
                lpath = folder / f"{d:%Y%m%d}.{name}.tif"
                lds = stack.enter_context(rasterio.open(lpath, "w", nodata=LAYER_NODATA, **_scratch_profile(grid, 1)))
                lds.set_band_description(1, f"{name} (percent)")
                self.layers[name].append(lpath)
                self._layer_ds[name].append(lds)
            path = folder / f"{d:%Y%m%d}.map.tif"
            ds = stack.enter_context(rasterio.open(path, "w", nodata=NODATA, **_scratch_profile(grid, 1)))
            ds.write_colormap(1, colors)
            ds.set_band_description(1, "class")
            self.maps.append(path)
            self._map_ds.append(ds)
            if probabilities:
                ppath = folder / f"{d:%Y%m%d}.prob.tif"
                pds = stack.enter_context(rasterio.open(ppath, "w", **_scratch_profile(grid, len(names) - 1)))
                for b, name in enumerate(names[1:], start=1):
                    pds.set_band_description(b, name)
                pds.scales = (1.0 / PROB_SCALE,) * (len(names) - 1)
                self.probs.append(ppath)
                self._prob_ds.append(pds)
            else:
                self.probs.append(None)

    def write(self, slot: int, window: Window, codes: np.ndarray, probs: np.ndarray | None) -> None:
        """Write class codes (r, W) and, when kept, uint8 probabilities (K-1, r, W) of target ``slot``."""
        self._map_ds[slot].write(codes, 1, window=window)
        if probs is not None and self._prob_ds:
            self._prob_ds[slot].write(probs, window=window)

    def write_layer(self, name: str, slot: int, window: Window, values: np.ndarray) -> None:
        """Write uint8 percent values (r, W) of layer ``name`` (confidence, uncertainty) of target ``slot``."""
        self._layer_ds[name][slot].write(values, 1, window=window)

    def layer_paths(self, slot: int) -> dict[str, Path]:
        """Scratch paths of target ``slot``'s layers, by layer name."""
        return {name: paths[slot] for name, paths in self.layers.items()}


def finalise_maps(map_scratch: Path, prob_scratch: Path | None, outputs: Outputs, names: Sequence[str], title: str,
                  layers: dict[str, Path] | None = None) -> None:
    """Scratch rasters -> COGs and the PNG; the map is renamed last, so its presence marks the date done."""
    if prob_scratch is not None and outputs.probabilities is not None:
        write_cog(prob_scratch, outputs.probabilities, "AVERAGE")
    for name, scratch in (layers or {}).items():
        final = outputs.confidence if name == "confidence" else outputs.uncertainty
        if final is not None:
            write_cog(scratch, final, "AVERAGE")
    with atomic_path(outputs.map) as tmp:
        write_cog(map_scratch, tmp, "MODE")
        write_quicklook(tmp, outputs.png, names, title)


def write_classes(out: Path, classes: ClassTable) -> None:
    """OUT/classes.json; refuses an OUT that holds maps of another class table (their codes would differ)."""
    path = PredictionLayout(out).classes
    if path.is_file():
        existing = read_class_table(path, "write the predictions into another --out folder, or delete this one")
        if existing.names != classes.names:
            raise RunError(out, f"holds maps of classes {list(existing.names[1:])}, not {list(classes.names[1:])}",
                           "write the predictions of this run into another --out folder")
        return
    write_json(path, classes.to_dict())

