"""Make docs/report.png: the report of the scripted test week, as headless chromium shows it.

The week is simulated from tests/data (the same files the tests use), reported with
``bedside report``, and photographed by Debian's chromium with no network.
Run: .venv/bin/python tools/report_screenshot.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
TARGET = ROOT / "docs" / "report.png"
PARTS = (("2026-11-24T06:00", "2026-11-27T13:10", "week-1.txt"),
         ("2026-11-27T16:40", "2026-11-30T23:00", "week-2.txt"))


def bedside(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bedside", *args], check=True, capture_output=True)


def main() -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("needs Debian's chromium (apt install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for start, until, script in PARTS:
            bedside("simulate", "--config", str(DATA / "week.toml"), "--headless", "--start", start,
                    "--until", until, "--script", str(DATA / script), "--data", str(work / "data"))
        page = work / "report.html"
        bedside("report", str(work / "data"), "-o", str(page))
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        "--hide-scrollbars", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
                        f"--user-data-dir={work / 'profile'}", "--window-size=1000,1585",
                        f"--screenshot={TARGET}", page.as_uri()], check=True, capture_output=True)
    print("wrote", TARGET)


if __name__ == "__main__":
    main()
