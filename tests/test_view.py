"""tropicrop view: the offline page of a prediction folder, rendered in Debian's headless chromium with the
network blocked, plus fast checks of bad input and of the size rule without a browser."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds
from shapely.geometry import box

from tiny import DATES, tiny_arrays
from tropicrop.classes import ClassTable
from tropicrop.cli import main
from tropicrop.errors import RunError
from tropicrop.palette import class_colors
from tropicrop.view import build_view
from tropicrop.view.budget import MAX_SIDE, fit_layers, start_scale
from tropicrop.view.inputs import find_inputs
from tropicrop.view.layers import month_layers

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# every request that is not file: or data:; the patterns match anywhere in a URL, so each names its "://"
# (a bare "ws*" also blocks any data: URI whose base64 happens to hold "ws")
BLOCKED = ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]
NAMES = ("Soybean", "Maize", "Soil")
H, W = 120, 160
METRES_PER_DEGREE = 111_320.0


def write_prediction(out: Path, scene: Path, *, confidence: bool = True, parcels: bool = True,
                     metrics: bool = True) -> Path:
    """A prediction folder in predict's layout on ``scene``'s grid: classes.json, one map per scene date (a
    different pattern each month), confidence rasters, a parcels answer and per_date.csv."""
    with rasterio.open(scene / "images" / f"{DATES[0]:%Y%m%d}.tif") as ds:
        profile = {"driver": "GTiff", "width": ds.width, "height": ds.height, "count": 1, "dtype": "uint8",
                   "crs": ds.crs, "transform": ds.transform}
    (out / "maps").mkdir(parents=True)
    (out / "classes.json").write_text(json.dumps(ClassTable.from_names(NAMES).to_dict()))
    rows, cols = np.mgrid[0 : profile["height"], 0 : profile["width"]]
    rng = np.random.default_rng(0)
    for i, date in enumerate(DATES):
        codes = (1 + (cols // 8 + rows // 8 + i) % len(NAMES)).astype(np.uint8)
        noise = rng.random(codes.shape) < 0.05  # a real map's speckle: long, varied base64 in the page
        codes[noise] = rng.integers(1, len(NAMES) + 1, size=int(noise.sum()))
        codes[:3, :3] = 0  # a corner without prediction
        with rasterio.open(out / "maps" / f"{date:%Y%m%d}.tif", "w", nodata=0, **profile) as ds:
            ds.write(codes, 1)
            ds.write_colormap(1, class_colors(("no reference", *NAMES)))
        if confidence:
            (out / "confidence").mkdir(exist_ok=True)
            with rasterio.open(out / "confidence" / f"{date:%Y%m%d}.tif", "w", nodata=255, **profile) as ds:
                ds.write(((cols * 100) // profile["width"]).astype(np.uint8), 1)
    if parcels:
        from tropicrop.parcels import parcel_answers

        t = profile["transform"]
        fields = gpd.GeoDataFrame({"field": ["north", "south"]}, crs=profile["crs"], geometry=[
            box(t.c + 50, t.f - 150, t.c + 250, t.f - 30), box(t.c + 300, t.f - 350, t.c + 500, t.f - 200)])
        fields.to_file(out.parent / "fields.gpkg", driver="GPKG")
        parcel_answers(out, out.parent / "fields.gpkg")
    if metrics:
        (out / "metrics").mkdir()
        (out / "metrics" / "per_date.csv").write_text(
            "date,oa,f1,pixels\n" + "".join(f"{d},{0.5 + 0.1 * i:.3f},{0.4 + 0.1 * i:.3f},100\n" for i, d in enumerate(DATES)))
    return out


@pytest.fixture
def prediction(make_scene: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path]:
    scene = make_scene(**tiny_arrays(h=H, w=W))
    return write_prediction(tmp_path / "pred", scene), scene


# ----------------------------------------------------------------------------------------- without a browser
def test_folder_without_maps_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["view", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds no map" in err and "empty" in err
    assert not (tmp_path / "empty" / "view.html").exists()


def test_cli_writes_the_page_where_asked(prediction: tuple[Path, Path], tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out, scene = prediction
    page = tmp_path / "pages" / "april.html"
    assert main(["view", str(out), "--scene", str(scene), "--out", str(page)]) == 0
    assert page.is_file() and not (out / "view.html").exists()
    assert f"wrote {page} (4 month(s)" in capsys.readouterr().out


def test_map_without_crs_is_refused(prediction: tuple[Path, Path]) -> None:
    out, _ = prediction
    path = out / "maps" / f"{DATES[0]:%Y%m%d}.tif"
    with rasterio.open(path, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8") as ds:
        ds.write(np.ones((1, 4, 4), dtype=np.uint8))
    with pytest.raises(RunError, match="no CRS"):
        find_inputs(out)


def test_failed_build_keeps_the_previous_page(prediction: tuple[Path, Path], tmp_path: Path) -> None:
    out, _ = prediction
    page = build_view(out).path
    before = page.read_bytes()
    (tmp_path / "broken.gpkg").write_text("not a vector file")
    with pytest.raises(RunError, match="broken.gpkg"):
        build_view(out, parcels=tmp_path / "broken.gpkg")
    assert page.read_bytes() == before
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []


def test_scene_on_another_grid_is_refused(prediction: tuple[Path, Path], make_scene: Callable[..., Path]) -> None:
    out, _ = prediction
    with pytest.raises(Exception, match="not on the grid of the maps"):
        build_view(out, scene=make_scene())  # 16 x 20 px, the maps are 120 x 160


def test_overlay_bounds_are_the_maps_footprint_in_wgs84(prediction: tuple[Path, Path]) -> None:
    out, _ = prediction
    month = find_inputs(out).months[0]
    layers = month_layers(month, class_colors(("no reference", *NAMES)), 1.0)
    with rasterio.open(month.map) as ds:
        west, south, east, north = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
    (s, w), (n, e) = layers.bounds
    assert np.allclose([s, w, n, e], [south, west, north, east], atol=1e-9)


def test_overlay_of_a_map_in_degrees_keeps_its_bounds(tmp_path: Path) -> None:
    from rasterio.transform import from_origin

    from tropicrop.view.inputs import Month

    path = tmp_path / "20200421.tif"
    with rasterio.open(path, "w", driver="GTiff", width=100, height=80, count=1, dtype="uint8", nodata=0,
                       crs="EPSG:4326", transform=from_origin(-47.0, -12.0, 0.0001, 0.0001)) as ds:
        ds.write(np.full((1, 80, 100), 2, dtype=np.uint8))
    layers = month_layers(Month(DATES[0], path, None), class_colors(("no reference", *NAMES)), 1.0)
    (s, w), (n, e) = layers.bounds
    assert np.allclose([s, w, n, e], [-12.008, -47.0, -12.0, -46.99], atol=1e-9)
    assert abs(layers.size[0] - 100) <= 1 and abs(layers.size[1] - 80) <= 1  # about the same pixel count


def test_size_rule_caps_the_side_then_shrinks_to_the_budget() -> None:
    assert start_scale(1000, 500) == 1.0
    assert start_scale(4 * MAX_SIDE, 100) == 4.0

    class Fake:  # incompressible: one byte a pixel of a 1000 x 1000 map
        def __init__(self, scale: float) -> None:
            self.scale = scale

        def encoded_bytes(self) -> int:
            return 100 + round((1000 / self.scale) ** 2)  # + the PNG header

    calls: list[float] = []

    def render(i: int, scale: float) -> Fake:
        calls.append(scale)
        return Fake(scale)

    scale, months = fit_layers(render, 12, 1_200_000, 1.0, 1000)
    assert len(months) == 12 and sum(m.encoded_bytes() for m in months) <= 1_200_000
    assert 3.0 < scale < 3.0 * 1.25  # sqrt(12e6 / 1.2e6) = 3.16, shrunk 10 % beyond
    assert len(calls) <= 13  # the first month measured once at full scale, then every month once
    assert fit_layers(render, 2, 10_000_000, 1.0, 1000)[0] == 1.0
    with pytest.raises(ValueError):
        fit_layers(render, 12, 10, 1.0, 1000)


def test_page_stays_under_its_limit_with_a_note(make_scene: Callable[..., Path], tmp_path: Path) -> None:
    scene = make_scene(**tiny_arrays(h=300, w=300))
    out = write_prediction(tmp_path / "big", scene, parcels=False)
    rng = np.random.default_rng(0)
    for path in (out / "maps").glob("*.tif"):  # noise: classes that no PNG compresses away
        with rasterio.open(path, "r+") as ds:
            ds.write(rng.integers(1, 4, size=(1, 300, 300), dtype=np.uint8))
    limit = 250_000  # Leaflet and the page take 170 kB; the full-resolution months 145 kB
    result = build_view(out, tmp_path / "page.html", limit=limit)
    text = result.path.read_text()
    assert result.size == len(text.encode()) <= limit and result.scale > 1
    assert "to keep this page under" in text
    assert build_view(out, tmp_path / "full.html").scale == 1.0


def test_page_inlines_everything(prediction: tuple[Path, Path]) -> None:
    out, scene = prediction
    text = build_view(out, scene=scene).path.read_text()
    assert not re.search(r"""src\s*=\s*["']?(https?:)?//""", text)  # nothing loaded from a server (links may be)
    assert not re.search(r"<link[^>]*href", text) and not re.search(r"@import|url\((['\"]?)(https?:)?//", text)
    assert "sourceMappingURL" not in text and 'url(images/' not in text
    assert "Leaflet 1.9.4" in text


# ------------------------------------------------------------------------------------------- in the browser
@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Debian's headless chromium through selenium, with every http(s)/ws request blocked."""
    if not CHROMIUM.is_file() or not CHROMEDRIVER.is_file():
        pytest.skip(f"no browser: {CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1200,900", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": BLOCKED})
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def web_server() -> Iterator[str]:
    """A local HTTP server (to show that the browser's network is really blocked)."""
    import http.server
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def open_page(driver: Any, page: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(page.as_uri())
    WebDriverWait(driver, 20).until(lambda d: d.execute_script(
        "var img = document.querySelector('img.tc-classes');"
        "return img !== null && img.complete && img.naturalWidth > 0 && "
        "performance.getEntriesByName('first-overlay').length > 0;"))


def test_page_shows_every_month_offline_in_chromium(prediction: tuple[Path, Path], browser: Any, tmp_path: Path,
                                                    web_server: str) -> None:
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    out, scene = prediction
    open_page(browser, build_view(out, scene=scene).path)
    shot = tmp_path / "view.png"
    browser.save_screenshot(str(shot))
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    for code, rgba in class_colors(("no reference", *NAMES)).items():
        if code:  # every class colour drawn on screen: the map is shown
            assert (np.abs(pixels.astype(int) - rgba[:3]).sum(axis=1) <= 6).sum() > 100, NAMES[code - 1]
    resources = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(name.startswith(("file:", "data:")) for name in resources), resources
    reached = browser.execute_async_script(  # the block is real: a server that answers cannot be reached
        "var done = arguments[1]; fetch(arguments[0], {mode: 'no-cors'}).then(() => done(true), () => done(false));",
        web_server)
    assert reached is False
    decoded = browser.execute_async_script(  # every image of every month decodes in the blocked browser
        "var done = arguments[0]; var uris = [];"
        "tropicropView.months.forEach(m => [m.classes, m.confidence, m.composite].forEach(u => { if (u) uris.push(u); }));"
        "Promise.all(uris.map(u => new Promise(ok => { var i = new Image(); i.onload = () => ok(i.naturalWidth > 0);"
        "i.onerror = () => ok(false); i.src = u; }))).then(done);")
    assert len(decoded) == 3 * len(DATES) and all(decoded)

    labels = [o.get_attribute("label") for o in browser.find_elements(By.CSS_SELECTOR, "#tc-month-list option")]
    assert labels == [d.isoformat() for d in DATES]
    legend = [li.text for li in browser.find_elements(By.CSS_SELECTOR, ".tc-legend li")]
    assert legend == list(NAMES)

    image = browser.find_element(By.CSS_SELECTOR, "img.tc-classes")
    first = image.get_attribute("src")
    browser.find_element(By.ID, "tc-month").send_keys(Keys.ARROW_RIGHT)
    second = image.get_attribute("src")
    assert second != first and second == browser.execute_script("return tropicropView.months[1].classes")
    assert DATES[1].isoformat() in browser.find_element(By.CSS_SELECTOR, ".tc-date").text

    south, west, north, east = browser.execute_script(
        "var b = tropicropView.classes.getBounds(); return [b.getSouth(), b.getWest(), b.getNorth(), b.getEast()];")
    with rasterio.open(out / "maps" / f"{DATES[1]:%Y%m%d}.tif") as ds:
        w0, s0, e0, n0 = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
        res_x, res_y = ds.res
    lat_pixel = res_y / METRES_PER_DEGREE
    lon_pixel = res_x / (METRES_PER_DEGREE * np.cos(np.radians((s0 + n0) / 2)))
    assert abs(south - s0) < lat_pixel and abs(north - n0) < lat_pixel
    assert abs(west - w0) < lon_pixel and abs(east - e0) < lon_pixel


def test_page_layers_parcels_and_chart_in_chromium(prediction: tuple[Path, Path], browser: Any) -> None:
    from selenium.webdriver.common.by import By

    out, scene = prediction
    open_page(browser, build_view(out, scene=scene).path)
    controls = browser.find_element(By.CSS_SELECTOR, ".leaflet-control-layers").text
    for name in ("VV / VH composite", "crop classes", "confidence", "parcels"):
        assert name in controls
    for label in browser.find_elements(By.CSS_SELECTOR, ".leaflet-control-layers label"):
        if label.text.strip() in ("confidence", "VV / VH composite"):
            label.click()
    assert browser.execute_script("return tropicropView.map.hasLayer(tropicropView.confidence) && "
                                  "tropicropView.map.hasLayer(tropicropView.composite)")
    composite = browser.find_element(By.CSS_SELECTOR, "img.tc-composite").get_attribute("src")
    assert composite.startswith("data:image/jpeg")
    popup = browser.execute_script(
        "var layer = tropicropView.parcels.getLayers()[0]; layer.openPopup();"
        "return document.querySelector('.leaflet-popup-content').innerText;")
    assert all(d.isoformat() in popup for d in DATES) and "north" in popup
    assert any(name in popup for name in NAMES) and "%" in popup
    circles = browser.find_elements(By.CSS_SELECTOR, ".tc-chart circle")
    assert len(circles) == 2 * len(DATES)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".tc-chart circle.current")) == 2
    assert browser.find_elements(By.CSS_SELECTOR, ".leaflet-control-scale-line")
