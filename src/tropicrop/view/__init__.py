"""``tropicrop view``: one self-contained HTML page to flip through the months of a prediction folder.

The page is a Leaflet map: each month's class map as an image overlay on its true footprint (warped to Web
Mercator, :mod:`~tropicrop.view.mercator`), a month slider with a play button, the legend, the confidence
layer and a VV/VH radar composite as toggles, parcels with their answer per month, the per-date accuracy
chart, the scale and the coordinates under the cursor. Everything, Leaflet included, is inlined: the file
opens from disk with the network off.

Why Leaflet vendored rather than folium: folium writes a page that loads Leaflet, jQuery, Bootstrap and Font
Awesome from CDNs; making it offline means fetching and inlining those four libraries anyway, for features
(Jinja templates of Python-built layers) that this one page does not need. Leaflet alone is 150 KB, is the
library folium wraps, and its 1.9.4 release from the npm registry is vendored in ``vendor/leaflet/`` with its
licence (see the README there); the page's own behaviour is ``static/page.js``.

One module one job: :mod:`~tropicrop.view.inputs` (what a folder holds), :mod:`~tropicrop.view.mercator`
(warping), :mod:`~tropicrop.view.layers` (a month's overlays), :mod:`~tropicrop.view.images` (encoding),
:mod:`~tropicrop.view.composite` (radar background), :mod:`~tropicrop.view.vectors` (parcels),
:mod:`~tropicrop.view.chart` (accuracy chart), :mod:`~tropicrop.view.budget` (the size rule),
:mod:`~tropicrop.view.page` (HTML) and :mod:`~tropicrop.view.build` (all of it, atomically).
"""

from tropicrop.view.budget import MAX_SIDE, PAGE_LIMIT
from tropicrop.view.build import ViewResult, build_view

__all__ = ["MAX_SIDE", "PAGE_LIMIT", "ViewResult", "build_view"]
