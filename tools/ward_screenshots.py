"""Make docs/ward-0700.png, -1200, -1410 and -1900: the ward page of the scripted ward
(tests/rigs/ward_day.py) at the hours a ward uses it, as headless chromium shows it at 1280 px,
with no network. tests/report/test_ward_day.py checks the same pages.
Run: .venv/bin/python tools/ward_screenshots.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.rigs import ward_day  # noqa: E402  (the scripted ward the tests use)


def main() -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("needs Debian's chromium (apt install chromium)")
    for hm in ward_day.TIMES:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            inputs = ward_day.write(work / "in", hm)
            page = work / "ward.html"
            subprocess.run([sys.executable, "-m", "bedside", "ward", *map(str, inputs), "-o", str(page),
                            "--as-of", ward_day.as_of(hm).isoformat()], check=False, capture_output=True)
            target = ROOT / "docs" / f"ward-{hm.replace(':', '')}.png"
            subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update", "--disable-sync",
                            "--hide-scrollbars", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
                            f"--user-data-dir={work / 'profile'}", "--window-size=1280,760",
                            f"--screenshot={target}", page.as_uri()], check=True, capture_output=True)
            print("wrote", target)


if __name__ == "__main__":
    main()
