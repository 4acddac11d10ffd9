"""Debian's headless chromium through selenium, with every network request blocked: how the viewer's
benchmark and its docs screenshot open a ``tropicrop view`` page (tests/test_view.py does the same)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync")
# Chrome DevTools URL patterns: every request that is not file: or data:. They match anywhere in a URL, so each
# names its "://" (never in base64): a bare "ws*" would block every data: URI whose base64 holds "ws".
BLOCKED = ["http://*", "https://*", "ws://*", "wss://*", "ftp://*"]


def chromium(profile: Path, width: int = 1200, height: int = 900) -> Any:
    """A selenium driver of Debian's chromium with a fresh profile in ``profile`` and the network blocked."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not CHROMIUM.is_file() or not CHROMEDRIVER.is_file():
        raise SystemExit(f"needs {CHROMIUM} and {CHROMEDRIVER}: apt-get install chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (*ARGS, f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": BLOCKED})
    return driver


def wait_first_overlay(driver: Any, timeout: float = 60.0) -> float:
    """Milliseconds from navigation to the page's ``first-overlay`` performance mark (the first class map
    drawn), waiting for it up to ``timeout`` seconds."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script("return performance.getEntriesByName('first-overlay').length > 0"))
    return float(driver.execute_script("return performance.getEntriesByName('first-overlay')[0].startTime"))
