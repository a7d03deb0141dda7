"""Benchmark of the USB stick export: what 30 days of the default regimen put on a stick, and
how long `bedside stick export` takes, against writing the same raw export to the unit's own
disk in the same run.

Usage: ``make bench`` (with the others) or ``python benchmarks/stick.py`` (about two minutes;
needs fusefat, dosfstools and /dev/fuse: ``make apt``). The stick is a real FAT image made by
mkfs.vfat and mounted with fusefat, as in the tests; fusefat runs in user space and is slower
than the kernel's vfat driver a Pi uses, so the times here are an upper bound for the
software and say nothing of a stick's own speed. Results go between the ``bench:stick``
markers of docs/performance.md.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.rigs.stick_rig import SECRET, FatStick

from bedside import secret
from benchmarks import docs
from benchmarks.download import month

ROOT = Path(__file__).resolve().parent.parent

RUNS = 5


def bedside(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bedside", *args], capture_output=True, text=True, timeout=600,
                          cwd=ROOT, check=False)


def timed(*args: str) -> float:
    t0 = time.perf_counter()
    r = bedside(*args)
    seconds = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"bedside {' '.join(args)} failed:\n{r.stdout}{r.stderr}")
    return seconds


def measure() -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        print("30 days, every session done ...", flush=True)
        data = month(folder, answered=True)
        secret.set_secret(data, SECRET)
        secret_file = folder / "secret.txt"
        secret_file.write_text(SECRET)
        records = sum(1 for line in bedside("log", "export", "--data", str(data)).stdout.splitlines()) - 1
        with FatStick(folder / "stick", size_mb=64) as fat:
            mnt = fat.mount()
            assert bedside("stick", "prepare", str(mnt), "--secret-file", str(secret_file)).returncode == 0
            exports, disk = [], []
            for i in range(RUNS):
                disk.append(timed("log", "export", "--data", str(data), "--out", str(folder / f"raw{i}.jsonl")))
                # No daemon listens here: the export takes the data directory's lock and records itself.
                exports.append(timed("stick", "export", str(mnt), "--data", str(data),
                                     "--socket", str(folder / "none.sock")))
            fat.unmount()
            files = fat.files()
            check = fat.fsck()
        sizes: dict[str, int] = {}
        for path, content in files.items():
            sizes.setdefault(path.rsplit("/", 1)[-1], len(content))
        folders = {p.split("/")[1] for p in files if p.count("/") == 2}
        raw = sizes["journal.jsonl"]
        rows += [
            (f"30 days, every session done: {records} records; files in each export folder", "—",
             ", ".join(f"{name} {size / 1024:.0f} KiB" for name, size in sorted(sizes.items())
                       if name in ("journal.jsonl", "sessions.csv", "report.html"))),
            ("  `bedside stick export` to a FAT stick (fusefat), whole command", "—",
             f"{statistics.median(exports):.2f} s (median of {RUNS}); {len(folders)} folders, fsck.vfat "
             f"{'clean' if check.returncode == 0 else 'NOT clean'}"),
            ("  baseline: `bedside log export --out` to the local disk, same run", "—",
             f"{statistics.median(disk):.2f} s; the stick export takes "
             f"{statistics.median(exports) / statistics.median(disk):.1f}× as long (it also checks the chain, "
             "seals, writes the report and CSV, and syncs)"),
            ("  raw export on the stick, bytes a record", "—", f"{raw / records:.0f}"),
        ]
    return rows


def write(rows: list[tuple[str, str, str]]) -> str:
    return docs.write_section("stick", "USB stick export", [docs.measured_on("make bench"), "", *docs.table(rows)])


def main() -> None:
    print(write(measure()))


if __name__ == "__main__":
    main()
