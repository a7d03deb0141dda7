"""Make docs/report.png: the report of the scripted test week, as headless chromium shows it.

The week is simulated from tests/data (the same files the tests use), with a patient admitted
two days after surgery at the start and discharged on the last afternoon (so the page shows the
episode, the post-operative days and the empty bed apart), reported with ``bedside report``,
and photographed by Debian's chromium with no network.
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
NURSE = {"week-1.txt": "2026-11-24T06:30:00 admit E2026-0042 2026-11-22\n",
         "week-2.txt": "2026-11-30T16:00:00 discharge E2026-0042\n"}


def bedside(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "bedside", *args], check=True, capture_output=True)


def _when(line: str) -> str:
    return "" if line.startswith("#") or not line.strip() else line.split(maxsplit=1)[0]


def main() -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("needs Debian's chromium (apt install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for start, until, script in PARTS:
            lines = (DATA / script).read_text() + NURSE[script]
            actions = work / script
            actions.write_text("".join(sorted(lines.splitlines(keepends=True), key=_when)))
            bedside("simulate", "--config", str(DATA / "week.toml"), "--headless", "--start", start,
                    "--until", until, "--script", str(actions), "--data", str(work / "data"))
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
