"""Peak memory of the USB stick export's own work: reading the unit's journal up to its head and
making the three files (``stick.export.collect``: the raw export, the sessions CSV and the
adherence report), for a year-old healthy journal and for damaged segments that salvage gives
row by row (``tests.rigs.hostile.damaged_journal``).

Usage: ``python benchmarks/stick_memory.py [DAYS] [MIB:COUNT ...]`` (default: 365 days, then
8 MiB and 32 MiB damaged segments). Each case runs in a child process of its own: its peak RSS
beyond the interpreter and imports (VmHWM − VmRSS before), and in a second child its peak
traced by tracemalloc (Python allocations only). The three files are written as the stick
export writes them (``stick.files.write_export``), into a folder on the local disk: the mount
and the authorisation check are not included (they read a few KiB). Then the whole command,
``bedside stick export`` onto a FAT stick (fusefat, as in the tests), its max RSS from outside
(/usr/bin/time -v), interpreter and imports included. Figures go to docs/performance.md ("Hostile input").
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


def whole_command(data: Path, tmp: Path) -> int:
    """The max RSS of the whole ``bedside stick export`` (interpreter included), from outside
    (/usr/bin/time -v), onto a FAT stick (fusefat) prepared for the ward, no daemon running."""
    from tests.rigs.stick_rig import SECRET, FatStick

    from bedside import secret

    secret.set_secret(data, SECRET)
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "secret.txt").write_text(SECRET)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "device")}
    need = sum(f.stat().st_size for f in data.iterdir()) * 2 // MIB + 32
    with FatStick(tmp / "stick", size_mb=need) as fat:
        mnt = fat.mount()
        subprocess.run([sys.executable, "-m", "bedside", "stick", "prepare", str(mnt), "--secret-file",
                        str(tmp / "secret.txt")], check=True, capture_output=True, env=env, cwd=ROOT)
        got = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "bedside", "stick", "export", str(mnt),
                              "--data", str(data), "--socket", str(tmp / "none.sock")],
                             capture_output=True, text=True, env=env, cwd=ROOT, check=False)
        fat.unmount()
    if got.returncode != 0:
        raise SystemExit(f"bedside stick export failed:\n{got.stderr}")
    line = next(x for x in got.stderr.splitlines() if "Maximum resident set size" in x)
    return int(line.split(":")[1]) * 1024


def row(what: str, data: Path, tmp: Path | None) -> str:
    rss, _, records, size = child(data, False)
    traced = child(data, True)[1]
    whole = f"; `bedside stick export` whole, max RSS {whole_command(data, tmp) / MIB:.0f} MiB" if tmp else ""
    return (f"{what} ({records} records): the three files {size / MIB:.1f} MiB; peak +{rss / MIB:.0f} MiB RSS, "
            f"traced {traced / MIB:.0f} MiB ({traced / max(records, 1):.0f} bytes a record){whole}")


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
            print(row(f"a healthy journal of {days} days", data, tmp / "stick-year"), flush=True)
        for size, count in damaged:
            data = tmp / f"damaged-{size}-{count}"
            hostile.damaged_journal(data, size * MIB, count)
            # (no whole command: with no daemon running the export records itself, and a journal
            # whose files are all damaged cannot be written; the daemon's record is a few KiB)
            print(row(f"{count} damaged segment(s) of {size} MiB", data, None), flush=True)


if __name__ == "__main__":
    main()
