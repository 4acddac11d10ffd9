"""``tropicrop view``: gather a prediction folder's layers, fit them to the page's budget, write the page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tropicrop.errors import RunError
from tropicrop.io.files import atomic_path
from tropicrop.io.rasters import Grid
from tropicrop.palette import class_colors
from tropicrop.view.budget import PAGE_LIMIT, PARCEL_SHARE, fit_layers, start_scale
from tropicrop.view.chart import per_date_svg, read_per_date
from tropicrop.view.images import confidence_ramp
from tropicrop.view.inputs import ViewInputs, find_inputs
from tropicrop.view.layers import map_grid, month_layers
from tropicrop.view.page import render_page
from tropicrop.view.vectors import parcels_geojson

METRES_PER_DEGREE = 111_320.0
MONTH_OVERHEAD = 400  # characters of JSON around a month's images (date, bounds, keys)


@dataclass(frozen=True)
class ViewResult:
    """What ``tropicrop view`` wrote: the page, its size in bytes, and the scale of its overlays (1 = the
    maps' resolution, 4 = a quarter of it a side)."""

    path: Path
    size: int
    scale: float
    months: int


def build_view(out: Path, html: Path | None = None, scene: Path | None = None, parcels: Path | None = None,
               limit: int = PAGE_LIMIT, progress: bool = False) -> ViewResult:
    """Write one self-contained HTML page showing every month mapped in prediction folder ``out``.

    Args:
        out: folder written by ``tropicrop predict`` (maps/, classes.json; optionally confidence/,
            parcels.gpkg, metrics/per_date.csv).
        html: the page to write (default ``OUT/view.html``), atomically.
        scene: the scene the maps were predicted from: adds a VV/VH composite of each month as a background.
        parcels: a parcels answer or field polygons to draw (default ``OUT/parcels.gpkg`` when present).
        limit: the page's size limit in bytes (see :mod:`tropicrop.view.budget` for the rule).
        progress: show a progress bar over the months.

    Returns:
        The page's path, size and overlay scale.
    """
    inputs = find_inputs(Path(out), parcels)
    html = Path(html) if html is not None else inputs.root / "view.html"
    grid = map_grid(inputs.months[0])
    scene_obj = _scene_on(scene, grid, inputs.root) if scene is not None else None
    colors = class_colors(inputs.names)
    data = _page_data(inputs, grid, colors, limit)
    fixed = len(render_page(_title(inputs), data).encode("utf-8")) + MONTH_OVERHEAD * len(inputs.months) + 1000  # + the note
    widest = max((map_grid(m) for m in inputs.months), key=lambda g: max(g.width, g.height))
    try:
        scale, layers = fit_layers(lambda i, s: month_layers(inputs.months[i], colors, s, scene_obj), len(inputs.months),
                                   limit - fixed, start_scale(widest.width, widest.height),
                                   max(widest.width, widest.height), progress)
    except ValueError as exc:
        raise RunError(inputs.root, f"cannot be shown in a page of {limit:,} bytes ({exc})",
                       "show fewer months or a smaller area") from None
    data["months"] = [month.to_json() for month in layers]
    data["note"] = " ".join(filter(None, [data["note"], _scale_note(scale, grid, layers[0].size, limit)]))
    text = render_page(_title(inputs), data)
    with atomic_path(html) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return ViewResult(html, len(text.encode("utf-8")), scale, len(layers))


def _scene_on(path: Path, grid: Grid, out: Path) -> Any:
    from tropicrop.scene import load_scene
    from tropicrop.view.composite import check_same_grid

    scene = load_scene(path)
    check_same_grid(scene, grid, out)
    return scene


def _page_data(inputs: ViewInputs, grid: Grid, colors: dict[int, tuple[int, int, int, int]], limit: int) -> dict[str, Any]:
    """Everything on the page but the months' images."""
    classes = [{"name": name, "color": "#{:02x}{:02x}{:02x}".format(*colors[i][:3])}
               for i, name in enumerate(inputs.names) if i]
    ramp = ["#{:02x}{:02x}{:02x}".format(*rgb) for rgb in confidence_ramp()[::10]]
    chart = per_date_svg(read_per_date(inputs.per_date)) if inputs.per_date is not None else ""
    parcels, note = None, ""
    if inputs.parcels is not None:
        pixel = grid.res[0] if grid.crs is not None and grid.crs.is_geographic else grid.res[0] / METRES_PER_DEGREE
        parcels, tolerance = parcels_geojson(inputs.parcels, int(limit * PARCEL_SHARE), pixel / 2)
        if tolerance:
            note = f"Parcel outlines simplified to {tolerance * METRES_PER_DEGREE:.0f} m to fit the page."
    return {"title": _title(inputs), "classes": classes, "confidence_ramp": ramp, "chart": chart, "parcels": parcels,
            "months": [], "note": note}


def _scale_note(scale: float, grid: Grid, size: tuple[int, int], limit: int) -> str:
    if scale <= 1.0:
        return ""
    return (f"Overlays drawn at 1/{scale:.1f} of the maps' resolution ({size[0]} × {size[1]} px for maps of "
            f"{grid.width} × {grid.height}) to keep this page under {limit / 1e6:.0f} MB; the GeoTIFFs in maps/ "
            "hold the full resolution.")


def _title(inputs: ViewInputs) -> str:
    return f"tropicrop: {inputs.root.resolve().name}"
