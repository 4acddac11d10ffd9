"""The screenshot of ``tropicrop view`` in the docs (docs/guide/view.png): one month of a prediction folder's
page in Debian's headless chromium, network blocked.

Run (the demo's April map, once ``make demo`` has run):
    python benchmarks/view_screenshot.py runs/demo/experiment/predictions/baseline-1 \\
        --scene runs/demo/data/lem1920 --month 2020-04 --png docs/guide/view.png
A small synthetic prediction serves where the demo has not run:
    tropicrop synth /tmp/v --preset tiny --size 128 --seed 0
    tropicrop train -c configs/quick.yaml --run-dir /tmp/v/run --set data.scene=/tmp/v/lem1920
    tropicrop predict /tmp/v/run /tmp/v/lem1920 --out /tmp/v/pred --dates all --parcels /tmp/v/lem1920/parcels.gpkg
    tropicrop evaluate /tmp/v/pred /tmp/v/lem1920
    python benchmarks/view_screenshot.py /tmp/v/pred --scene /tmp/v/lem1920 --month 2020-04 --png docs/guide/view.png
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from browser import chromium, wait_first_overlay
from tropicrop.view import build_view


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="prediction folder")
    parser.add_argument("--scene", type=Path, help="the scene it was predicted from (radar background)")
    parser.add_argument("--month", default="2020-04", help="YYYY-MM of the month shown (default 2020-04)")
    parser.add_argument("--png", type=Path, default=Path("docs/guide/view.png"))
    parser.add_argument("--composite", action="store_true", help="show the radar composite under the map")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        page = build_view(args.out, Path(tmp) / "view.html", scene=args.scene).path
        driver = chromium(Path(tmp) / "profile", 1100, 700)
        try:
            driver.get(page.as_uri())
            wait_first_overlay(driver)
            index = driver.execute_script(
                "return tropicropView.months.findIndex(m => m.date.startsWith(arguments[0]));", args.month)
            if index < 0:
                raise SystemExit(f"{args.out} has no map of {args.month}")
            driver.execute_script("tropicropView.setMonth(arguments[0]);", index)
            if args.composite:
                driver.execute_script("tropicropView.map.addLayer(tropicropView.composite);"
                                      "tropicropView.classes.setOpacity(0.6);")
            driver.execute_script("return new Promise(ok => setTimeout(ok, 500));")
            args.png.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.png))
        finally:
            driver.quit()
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
