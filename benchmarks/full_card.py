"""Benchmark of a unit whose card is full for days (journal/store.py, journal/outage.py).

The whole simulated unit (the daemon's loop, mock pins, a dummy display, a virtual clock) on a
real 4 MiB tmpfs. After its first morning the filesystem is filled to the last byte, and the unit
runs on for ``DAYS`` days: a patient presses at every prompt and does the session, so each day
keeps about two hundred records in memory, and every record kept rewrites the outage reserve. The
figure is the CPU of each simulated day (``time.process_time``) and its cost per record kept,
which must not grow with the outage: a press on the third day of a full card is answered as
quickly as on the first.

Usage: ``sudo python benchmarks/full_card.py [--tree DIR]`` (root: it mounts a tmpfs; ``DIR``:
another tree's ``device/``, for the figures before a change). A case stops when a day takes
more than ``STOP_S`` of CPU. About a minute (the code before this benchmark: four). Prints one line a day.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAYS = 6
STOP_S = 120.0


def run(data: Path, fs: Path) -> None:
    from tools.torture import fill

    from bedside.core import config
    from bedside.unit import simulate

    cfg = config.Config()
    start = datetime(2026, 11, 24, 6, 58, tzinfo=cfg.tz)
    midnight = start.replace(hour=0, minute=0)
    # At every prompt a session; between them, a press every ten minutes (the progress screen).
    presses = [simulate.Action(midnight + timedelta(days=d, hours=h, minutes=m, seconds=40), "press", 0.3)
               for d in range(DAYS + 1) for h in range(7, 23) for m in (0, 15, 25, 35, 45, 55)]
    sim = simulate.build(cfg, data, start, actions=[a for a in presses if a.at > start])
    sim.advance(start.replace(hour=10))
    fill(fs)
    day = start.replace(hour=10)
    for d in range(1, DAYS + 1):
        before, kept = time.process_time(), len(sim.unit.unsaved)
        day += timedelta(days=1)
        sim.advance(day)
        cpu, now_kept = time.process_time() - before, len(sim.unit.unsaved)
        print(f"day {d} of a full card: {now_kept - kept} records kept ({now_kept} in all), "
              f"{cpu:.2f} s of CPU, {1000 * cpu / max(1, now_kept - kept):.1f} ms a record kept", flush=True)
        if cpu > STOP_S:
            print(f"stopped: a day took more than {STOP_S:.0f} s of CPU", flush=True)
            break
    sim.close()


def main() -> None:
    if len(sys.argv) >= 4 and sys.argv[1] == "run":
        run(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    tree = Path(sys.argv[sys.argv.index("--tree") + 1]) if "--tree" in sys.argv else ROOT / "device"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(ROOT)])}
    with tempfile.TemporaryDirectory() as tmp:
        fs = Path(tmp) / "fs"
        fs.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "bedside-bench", str(fs)], check=True)
        try:
            subprocess.run([sys.executable, __file__, "run", str(fs / "data"), str(fs)], env=env, check=True)
        finally:
            subprocess.run(["umount", "-l", str(fs)], check=False)


if __name__ == "__main__":
    main()
