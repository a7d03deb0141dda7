"""The report in a real browser: Debian's chromium, headless, with no network to reach.

Chromium gets a dead proxy and a resolver that finds nothing, so a fetch could never
succeed; its network log shows whether the page even tried.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image

from bedside.report import files as report_files
from bedside.report import model as report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test installs it)")

DONE_GREEN, MISSED_RED = (0x2E, 0x7D, 0x32), (0xC6, 0x28, 0x28)


def chromium(tmp: Path, page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
           "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}",
           *args, page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


def page_requests(netlog: Path) -> list[str]:
    """URLs the page asked the network for. The browser's own background requests carry no
    origin ("not an origin") and are left out; the page's carry its file:// origin."""
    log = json.loads(netlog.read_text())
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    urls = []
    for ev in log["events"]:
        p = ev.get("params", {})
        if names.get(ev["type"]) != "URL_REQUEST_START_JOB" or "url" not in p:
            continue
        if p.get("initiator") != "not an origin" and not str(p["url"]).startswith(("file:", "data:")):
            urls.append(str(p["url"]))
    return urls


@pytest.fixture(scope="module")
def page(week: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "report.html"
    loaded = report.load(week)
    report_files.write(loaded.records, out, out.with_suffix(".csv"), source=loaded.source,
                 generated=datetime.fromisoformat("2026-12-01T08:00:00+01:00"))
    return out


def test_it_renders_with_its_charts_and_fetches_nothing(page: Path, tmp_path: Path) -> None:
    shot, netlog = tmp_path / "report.png", tmp_path / "net.json"
    chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1000,2400", f"--log-net-log={netlog}")
    assert page_requests(netlog) == []
    img = Image.open(shot).convert("RGB")
    assert img.size == (1000, 2400)
    colours = img.getcolors(maxcolors=1 << 20) or []
    count = {c: n for n, c in colours}
    assert count.get(DONE_GREEN, 0) > 3000     # ~90 done marks, the verdict box, the bars
    assert count.get(MISSED_RED, 0) > 100      # the crosses of the missed sessions
    dom = chromium(tmp_path, page, "--dump-dom").stdout
    assert dom.count('<svg class="timeline"') == 7
    assert dom.count('class="m-missed"') == 9 and "Record verified" in dom


def test_the_net_watch_sees_a_fetch_and_the_page_policy_stops_it(page: Path, tmp_path: Path) -> None:
    planted = '<img src="http://example.invalid/tracker.png"><link rel="stylesheet" href="https://fonts.invalid/a.css">'
    bare = tmp_path / "bare.html"
    bare.write_text(f"<!DOCTYPE html><html><body><p>control</p>{planted}</body></html>")
    chromium(tmp_path, bare, "--dump-dom", f"--log-net-log={tmp_path / 'bare.json'}")
    assert sorted(page_requests(tmp_path / "bare.json")) == ["http://example.invalid/tracker.png",
                                                             "https://fonts.invalid/a.css"]
    # The same references planted in the report: its Content-Security-Policy refuses them.
    spiked = tmp_path / "spiked.html"
    spiked.write_text(page.read_text().replace("<body>", f"<body>{planted}", 1))
    chromium(tmp_path, spiked, "--dump-dom", f"--log-net-log={tmp_path / 'spiked.json'}")
    assert page_requests(tmp_path / "spiked.json") == []


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs poppler-utils")
def test_it_prints_on_a4(page: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    chromium(tmp_path, page, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "594.96 x 841.92 pts (A4)" in info
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert 2 <= pages <= 4
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "p")], check=True)
    first = Image.open(next(tmp_path.glob("p*.png"))).convert("RGB")
    count = {c: n for n, c in first.getcolors(maxcolors=1 << 20) or []}
    assert count.get(DONE_GREEN, 0) > 50                        # colours kept in print: verdict, bars, marks
