"""Peak memory of the USB stick export's own work: reading the unit's journal up to its head and
making the three files (``stick.export.collect``: the raw export, the sessions CSV and the
adherence report), for a year-old healthy journal and for damaged segments that salvage gives
row by row (``tests.rigs.hostile.damaged_journal``).

Usage: ``python benchmarks/stick_memory.py [DAYS] [MIB:COUNT ...]`` (default: 365 days, then
8 MiB and 32 MiB damaged segments). Each case runs in a child process of its own: its peak RSS
beyond the interpreter and imports (VmHWM − VmRSS before), and in a second child its peak
traced by tracemalloc (Python allocations only). The three files are written as the stick
export writes them (``stick.files.write_export``), into a folder on the local disk: the mount
and the authorisation check are not included (they read a few KiB). Figures go to docs/performance.md ("Hostile input").
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
MIB = 2**20

CHILD = """
import os, sys, tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from bedside.core import config
from bedside.stick import export, files
data, out, trace = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
def status(key):
    return next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith(key)) * 1024
cfg = config.Config()
root = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
base = status("VmRSS:")
if trace:
    tracemalloc.start()
with export.collect(data, cfg, datetime.now(UTC), "bench") as got:
    written = files.write_export(root, "bench", got.files)
size = written.bytes
print(status("VmHWM:") - base, tracemalloc.get_traced_memory()[1] if trace else 0, got.header["records"], size)
"""


def child(data: Path, trace: bool) -> list[int]:
    with tempfile.TemporaryDirectory() as stick:
        out = subprocess.run([sys.executable, "-c", CHILD, str(data), stick, "1" if trace else "0"],
                             capture_output=True, text=True, check=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": str(ROOT / "device")}).stdout.split()
    return [int(x) for x in out]


def row(what: str, data: Path) -> str:
    rss, _, records, size = child(data, False)
    traced = child(data, True)[1]
    return (f"{what} ({records} records): the three files {size / MIB:.1f} MiB; peak +{rss / MIB:.0f} MiB RSS, "
            f"traced {traced / MIB:.0f} MiB ({traced / max(records, 1):.0f} bytes a record)")


def main() -> None:
    from tests.rigs import hostile

    from benchmarks import journals

    args = sys.argv[1:]
    days = int(args[0]) if args else 365
    damaged = [tuple(int(x) for x in a.split(":")) for a in args[1:]] or [(8, 1), (32, 1)]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if days:
            data = tmp / "year"
            journals.build(data, days, tmp / "hospital-key.json")
            print(row(f"a healthy journal of {days} days", data), flush=True)
        for size, count in damaged:
            data = tmp / f"damaged-{size}-{count}"
            hostile.damaged_journal(data, size * MIB, count)
            print(row(f"{count} damaged segment(s) of {size} MiB", data), flush=True)


if __name__ == "__main__":
    main()
