"""The report page in a real browser (headless Chromium): every image loads, no console error, no blank figure.

``scripts/test.sh`` installs Debian's ``chromium`` where it can (root and apt-get); where it
cannot, this test is skipped and says why.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from heedful.report.build import build_report
from heedful.report.sections import Settings
from report_units import every_kind_of_unit

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def page_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("browser")
    build_report(every_kind_of_unit(folder), folder / "out", settings=Settings(n_bootstrap=50), command="test",
                 show_progress=False)
    return folder / "out" / "index.html"


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: scripts/test.sh installs it with apt-get as root "
                                              "(apt-get install chromium); it could not here")
def test_the_page_opens_from_disk_with_every_figure_drawn_and_no_console_error(page_file):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra of the lock")
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("requestfailed", lambda request: errors.append(f"failed to load {request.url}"))
        page.goto(page_file.as_uri())
        page.wait_for_load_state("load")
        images = page.evaluate("Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth])")
        assert len(images) >= 10
        broken = [src for src, complete, width in images if not complete or width == 0]
        assert broken == [], f"broken images: {broken}"
        for index in range(len(images)):
            image = page.locator("img").nth(index)
            image.scroll_into_view_if_needed()
            shot = image.screenshot()
            assert _distinct_colours(shot) > 3, f"figure {images[index][0]} looks blank"
        # the sortable table sorts: clicking 'score_%' puts the lowest score first
        header = page.locator("figure#scores th", has_text="score_%")
        header.click()
        first = float(page.locator("figure#scores tbody tr").first.locator("td").nth(5).inner_text())
        column = [float(t) for t in page.locator("figure#scores tbody tr td:nth-child(6)").all_inner_texts()]
        assert first == min(column)
        browser.close()
    assert errors == []


def _distinct_colours(png: bytes) -> int:
    from io import BytesIO

    from PIL import Image

    image = Image.open(BytesIO(png)).convert("RGB").resize((64, 64))
    return len(set(image.tobytes()[i:i + 3] for i in range(0, 64 * 64 * 3, 3)))
