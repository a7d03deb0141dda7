"""The ward overview in a real browser (Debian's chromium, headless, no network): it draws,
fetches nothing, links to the units' reports and prints on A4."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from bedside.report import ward, ward_page
from tests.report.test_report_browser import CHROMIUM, MISSED_RED, chromium, page_requests
from tests.report.test_ward import NOW, ward_dir  # noqa: F401  (the fixture)

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test installs it)")


@pytest.fixture
def page(ward_dir: Path) -> Path:  # noqa: F811
    out = ward_dir / "ward.html"
    rows = ward.rows(ward.merge(ward.find([ward_dir / "pulls", ward_dir / "STICK", ward_dir / "loose"], print)), NOW)
    out.write_text(ward_page.render(rows, NOW, out))
    return out


def test_it_renders_links_and_fetches_nothing(page: Path, tmp_path: Path) -> None:
    shot, netlog = tmp_path / "ward.png", tmp_path / "net.json"
    chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1300,1200", f"--log-net-log={netlog}")
    assert page_requests(netlog) == []
    count = {c: n for n, c in Image.open(shot).convert("RGB").getcolors(maxcolors=1 << 20) or []}
    assert count.get(MISSED_RED, 0) > 200          # the broken rows' marks and flags
    dom = chromium(tmp_path, page, "--dump-dom").stdout
    assert dom.count('<tr class="broken">') == 2 and dom.count('<div class="strip">') == 10
    links = [part.split('"')[0] for part in dom.split('<a href="')[1:]]
    assert len(links) == 9 and all((page.parent / link).is_file() for link in links)


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs poppler-utils")
def test_it_prints_on_a4(page: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "ward.pdf"
    chromium(tmp_path, page, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "841.92 x 594.96 pts (A4)" in info        # landscape: the whole row across
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert pages <= 2
