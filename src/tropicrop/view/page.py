"""The HTML of the page: Leaflet's script and stylesheet, the page's own, and the data, all inlined into
``static/template.html`` so the one file opens from disk with no network."""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path
from string import Template
from typing import Any

from tropicrop import __version__

HERE = Path(__file__).parent
LEAFLET = HERE / "vendor" / "leaflet"
STATIC = HERE / "static"


def leaflet_css() -> str:
    """Leaflet's stylesheet with the images it names (layer-control icons, markers) inlined as data URIs."""
    css = (LEAFLET / "leaflet.css").read_text(encoding="utf-8")

    def inline(match: re.Match[str]) -> str:
        data = base64.b64encode((LEAFLET / "images" / match.group(1)).read_bytes()).decode("ascii")
        return f"url(data:image/png;base64,{data})"

    return re.sub(r"url\(images/([\w.-]+\.png)\)", inline, css)


def leaflet_js() -> str:
    """Leaflet's script without its source-map comment (a developer tool would otherwise fetch the map file)."""
    text = (LEAFLET / "leaflet.js").read_text(encoding="utf-8")
    return re.sub(r"^//# sourceMappingURL=.*$", "", text, flags=re.MULTILINE)


def script_json(data: Any) -> str:
    """``data`` as JSON that is safe inside a ``<script>`` element (no ``<`` that could close it)."""
    return json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def render_page(title: str, data: dict[str, Any]) -> str:
    """The page's HTML for ``data`` (the months' images, classes, parcels, chart, note; see page.js)."""
    template = Template((STATIC / "template.html").read_text(encoding="utf-8"))
    return template.substitute(
        version=html.escape(__version__), title=html.escape(title), leaflet_css=leaflet_css(),
        page_css=(STATIC / "page.css").read_text(encoding="utf-8"), leaflet_js=leaflet_js(),
        page_js=(STATIC / "page.js").read_text(encoding="utf-8"), data=script_json({**data, "version": __version__}))
