"""The one colour palette of the classes, shared by the map files, their quick-looks and the report."""

from __future__ import annotations

from collections.abc import Sequence

# Colours of the classes of the paper's LEM tables; other names get tab20 colours.
CLASS_COLORS: dict[str, tuple[int, int, int]] = {
    "soybean": (46, 139, 87), "maize": (255, 215, 0), "cotton": (176, 196, 222), "millet": (205, 133, 63),
    "pasture": (154, 205, 50), "cerrado": (0, 100, 0), "soil": (139, 69, 19), "other": (150, 150, 150),
    "beans": (218, 112, 214), "sorghum": (255, 140, 0), "eucalyptus": (72, 61, 139), "turfgrass": (152, 251, 152),
    "crotalaria": (255, 105, 180), "brachiaria": (189, 183, 107), "ncc": (70, 130, 180),
    "not identified": (90, 90, 90),
}


def class_colors(names: Sequence[str]) -> dict[int, tuple[int, int, int, int]]:
    """Colour table {code: RGBA} for class indices 0..K-1 of ``names``; 0 (no data) is transparent."""
    from matplotlib import colormaps

    tab = colormaps["tab20"]
    table: dict[int, tuple[int, int, int, int]] = {0: (0, 0, 0, 0)}
    spare = 0
    for i, name in enumerate(names):
        if i == 0:
            continue
        rgb = CLASS_COLORS.get(name.lower())
        if rgb is None:
            r, g, b, _ = tab(spare % 20)
            spare += 1
            rgb = (round(255 * r), round(255 * g), round(255 * b))
        table[i] = (*rgb, 255)
    return table
