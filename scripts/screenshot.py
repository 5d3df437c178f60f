"""A full-page PNG of a report, as headless Chromium renders it (for docs/results).

    .venv/bin/python scripts/screenshot.py REPORT_DIR OUT.png [--width 1200]

Needs the test extra (playwright) and Debian's chromium (apt-get install chromium).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="report folder (holds index.html)")
    parser.add_argument("png", type=Path, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1200, help="viewport width in CSS pixels")
    args = parser.parse_args()
    index = args.report / "index.html"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not index.is_file() or chromium is None:
        sys.exit(f"error: {index if not index.is_file() else 'chromium'}: not found")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": args.width, "height": 900})
        page.goto(index.resolve().as_uri())
        page.wait_for_load_state("load")
        page.screenshot(path=str(args.png), full_page=True)
        browser.close()
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
