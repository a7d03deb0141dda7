"""Benchmark of a data directory holding many files: the unit's start (CPU to the start record)
and the serial link's attach and ``hello`` (one loop step each), with traced peak memory.

Kinds: ``junk`` (files whose names are not a segment's: never opened), ``small`` (100-byte
files named ``journal-NNNNNN.sqlite``: SQLite refuses each, salvage describes it). Each case
runs twice, each time in a child process of its own, cold: once for CPU (``time.process_time``,
nothing traced) and once for the traced peak (tracemalloc adds to the CPU, so a traced run's CPU
is not the figure). Usage: ``python benchmarks/many_files.py`` (about
three minutes, most of it making the files); prints one line a case, for docs/performance.md
("Hostile input") and docs/security.md ("Readers of outside bytes").
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "device"))

CASES = [("junk", 100_000), ("small", 500), ("small", 2_000), ("small", 20_000), ("small", 100_000)]


def one(kind: str, n: int, base: Path, traced: bool) -> str:
    from bedside.core import config
    from bedside.link.on_loop import LinkService
    from bedside.unit import simulate

    cfg = config.Config()
    now = datetime.fromisoformat("2026-11-17T06:05").replace(tzinfo=cfg.tz)
    d = base / "unit"
    d.mkdir()
    sim = simulate.build(cfg, d, now)
    sim.unit.start()
    sim.close()
    for i in range(n):
        name = f"junk-{i:06d}" if kind == "junk" else f"journal-{i + 10:06d}.sqlite"
        (d / name).write_bytes(b"x" * 100)
    t0 = time.process_time()
    if traced:
        tracemalloc.start()
    sim = simulate.build(cfg, d, now)
    sim.unit.start()
    start = time.process_time() - t0
    svc = LinkService(sim.unit, None)
    svc.attach(sim.clock.now())
    hello = svc.hello(1, "n", sim.clock.now())
    step = time.process_time() - t0 - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    sim.close()
    if traced:
        return f"traced peak {peak:.1f} MiB"
    return (f"{n:,} files ({kind}): start {start:.2f} s of CPU (Zero 2 W ~{start * 10:.0f} s); attach and hello "
            f"{step:.2f} s (~{step * 10:.0f} s); hello lists {len(hello.get('segments', []))}, counts "
            f"{hello.get('segments_more', 0)} more, names {len(hello.get('unread', []))} not read yet and counts "
            f"{hello.get('unread_more', 0)} more")


def main() -> None:
    if len(sys.argv) >= 3:
        with tempfile.TemporaryDirectory() as tmp:
            print(one(sys.argv[1], int(sys.argv[2]), Path(tmp), traced=sys.argv[3:] == ["--memory"]), end="")
        return
    for kind, n in CASES:
        timed = subprocess.run([sys.executable, __file__, kind, str(n)], check=True, capture_output=True, text=True)
        peak = subprocess.run([sys.executable, __file__, kind, str(n), "--memory"], check=True,
                              capture_output=True, text=True)
        print(f"{timed.stdout}; {peak.stdout}", flush=True)


if __name__ == "__main__":
    main()
