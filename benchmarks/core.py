"""Benchmarks of the core unit: simulation cost, idle wakeups, press latency, render, startup, memory.

Each measurement reports a median and, where one makes sense, a ratio against a baseline
measured in the same run (shared machines are noisy; absolute numbers vary, ratios less).
Run through ``benchmarks/run.py`` (``make bench``), which writes docs/performance.md.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bedside.core import config, machine, planner, restart
from bedside.core import screens as sc
from bedside.core.events import Instant, Record, Tick
from bedside.display import render
from bedside.display.gallery import EXAMPLES
from bedside.journal.journal import Journal
from bedside.unit import simulate

ROOT = Path(__file__).resolve().parent.parent
DAY_START = "2026-11-24T06:00"


def _answered_day_script(cfg: config.Config) -> list[simulate.Action]:
    """A patient who answers every session two minutes late and finishes the guide."""
    start = datetime.fromisoformat(DAY_START).replace(tzinfo=cfg.tz)
    sessions = planner.sessions_between(cfg, start, start + timedelta(days=1))
    return [simulate.Action(s.offer.astimezone(cfg.tz) + timedelta(minutes=2), "press", 0.3) for s in sessions]


def sim_day(answered: bool, runs: int = 5) -> dict[str, float]:
    """CPU seconds and loop wakeups to simulate 24 h headless (virtual clock, mock pins, dummy display)."""
    cfg = config.Config()
    cpu, wakeups, frames = [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as d:
            start = datetime.fromisoformat(DAY_START).replace(tzinfo=cfg.tz)
            actions = _answered_day_script(cfg) if answered else []
            t0 = time.process_time()
            sim = simulate.build(cfg, Path(d), start, actions=actions)
            sim.unit.run(until=start + timedelta(days=1))
            cpu.append(time.process_time() - t0)
            wakeups.append(sim.unit.wakeups)
            frames.append(sim.unit.out.display.frames)
            sim.close()
    return {"cpu_s": statistics.median(cpu), "wakeups": statistics.median(wakeups),
            "frames": statistics.median(frames)}


def polling_day() -> dict[str, float]:
    """Baseline: the same pure core stepped every simulated second, as a 1 s polling loop would."""
    cfg = config.Config()
    start = datetime.fromisoformat(DAY_START).replace(tzinfo=cfg.tz).astimezone(UTC)
    now = Instant(start, 0.0)
    t0 = time.process_time()
    st, _ = restart.start(cfg, [], now, time_quality="rtc", version="bench", boot="b")
    for i in range(1, 86400 + 1):
        st, _ = machine.step(cfg, st, Tick(), Instant(start + timedelta(seconds=i), float(i)))
    return {"cpu_s": time.process_time() - t0, "wakeups": 86400}


class _FrameWatch:
    def __init__(self) -> None:
        self.event = threading.Event()
        self.stamp = 0.0

    def __call__(self, image: Any) -> None:
        self.stamp = time.perf_counter()
        self.event.set()


def _daemon_in_thread(cfg: config.Config, d: Path, start: datetime, on_frame: Callable[[Any], None]
                      ) -> tuple[simulate.Simulation, threading.Thread]:
    sim = simulate.build(cfg, d, start, speed=1.0, on_frame=on_frame)
    started = threading.Event()

    def loop() -> None:
        # The journal's SQLite connection belongs to the thread that opens it: the loop's, as in
        # the daemon, where start() and run() share the main thread.
        sim.unit.start()
        started.set()
        sim.unit.run()

    thread = threading.Thread(target=loop, name="unit", daemon=True)
    thread.start()
    if not started.wait(30):
        raise RuntimeError("the unit did not start")
    return sim, thread


def press_latency(samples: int = 200) -> dict[str, float]:
    """Release of the (mock) button to the new frame sent to the display, with the daemon's loop in a thread.

    The path includes the journal commit of the ``press`` record (fsync) that precedes the
    screen; the baseline is that bare commit, measured in the same directory.
    """
    cfg = config.Config()
    start = datetime.fromisoformat("2026-11-24T10:05").replace(tzinfo=cfg.tz)
    watch = _FrameWatch()
    lat = []
    with tempfile.TemporaryDirectory(dir=ROOT / "var" if (ROOT / "var").is_dir() else None) as d:
        sim, thread = _daemon_in_thread(cfg, Path(d), start, watch)
        pin = sim.button_pin
        time.sleep(0.2)
        for _ in range(samples):
            watch.event.clear()
            pin.drive_low()
            time.sleep(0.08)
            watch.event.clear()
            t0 = time.perf_counter()
            pin.drive_high()
            if not watch.event.wait(2.0):
                raise RuntimeError("no frame after a press")
            lat.append((watch.stamp - t0) * 1000)
            # Let the progress screen time out (virtually) and the idle screen return.
            watch.event.clear()
            sim.clock.skip(10)
            simulate.wake(sim.unit)
            watch.event.wait(2.0)
        sim.unit.request_stop("bench")
        thread.join(10)
        sim.close()
        j = Journal(Path(d) / "baseline", cfg.tz, "bench")
        commits = []
        for i in range(50):
            t0 = time.perf_counter()
            j.append(Record("press", data={"i": i}), Instant(datetime.now(UTC), time.monotonic()), "rtc")
            commits.append((time.perf_counter() - t0) * 1000)
        j.close()
    lat.sort()
    return {"median_ms": statistics.median(lat), "p95_ms": lat[int(len(lat) * 0.95) - 1], "max_ms": lat[-1],
            "commit_median_ms": statistics.median(commits)}


# Every screen state the unit can show (the gallery the golden-image tests check).
SCREENS: list[sc.Screen] = [e.screen for e in EXAMPLES]


def render_times(repeat: int = 300) -> dict[str, float]:
    """Median milliseconds to draw one screen (each kind), and to compare a frame's bytes."""
    per_kind = []
    for s in SCREENS:
        render.render(s)  # fonts load once
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            render.render(s)
            times.append((time.perf_counter() - t0) * 1000)
        per_kind.append(statistics.median(times))
    a, b = render.render(SCREENS[0]).tobytes(), render.render(SCREENS[1]).tobytes()
    cmp = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        _ = a == b
        cmp.append((time.perf_counter() - t0) * 1000)
    return {"median_ms": statistics.median(per_kind), "worst_kind_ms": max(per_kind),
            "compare_ms": statistics.median(cmp)}


def startup(runs: int = 5) -> dict[str, float]:
    """From launching ``bedside simulate`` to its first frame on the (dummy) display.

    As installed, the package's bytecode is compiled (pip does it at install time); a first
    run with no bytecode at all compiles every module first, measured apart ("cold").
    """
    def first_frame(env: dict[str, str]) -> float:
        with tempfile.TemporaryDirectory() as d:
            frames = Path(d) / "frames"
            t0 = time.time_ns()
            subprocess.run([sys.executable, "-m", "bedside", "simulate", "--headless", "--start", "2026-11-24T10:05",
                            "--until", "2026-11-24T10:06", "--data", str(Path(d) / "data"), "--frames", str(frames)],
                           check=True, capture_output=True, env=env)
            first = min(frames.iterdir(), key=lambda p: p.name)
            return (first.stat().st_mtime_ns - t0) / 1e6

    with tempfile.TemporaryDirectory() as cache:
        # A private bytecode cache: "cold" never finds one, "installed" finds the one its first run wrote.
        cold_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(Path(cache) / "none")}
        warm_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        warm_env["PYTHONPYCACHEPREFIX"] = str(Path(cache) / "pyc")
        first_frame(warm_env)
        warm = [first_frame(warm_env) for _ in range(runs)]
        cold = [first_frame(cold_env) for _ in range(runs)]
    bare = []
    for _ in range(runs):
        t0 = time.time_ns()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        bare.append((time.time_ns() - t0) / 1e6)
    return {"median_ms": statistics.median(warm), "cold_ms": statistics.median(cold),
            "python_bare_ms": statistics.median(bare)}


_RSS_CHILD = """
import sys, tempfile
from pathlib import Path

def peak():
    # VmHWM belongs to this process's own memory map; getrusage's ru_maxrss would also count
    # the parent's pages at fork (kept across exec), so every child would report the parent.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

if sys.argv[1] == "bare":
    print(peak())
    raise SystemExit
from datetime import datetime, timedelta
from bedside.core import config
from bedside.unit import simulate
cfg = config.Config()
with tempfile.TemporaryDirectory() as d:
    start = datetime.fromisoformat("2026-11-24T06:00").replace(tzinfo=cfg.tz)
    if sys.argv[1] == "sim":
        sim = simulate.build(cfg, Path(d), start)
        sim.unit.run(until=start + timedelta(days=1))
print(peak())
"""


def memory() -> dict[str, float]:
    """Peak RSS of a process that runs the unit for a simulated day, vs one that only imports it."""
    def peak(mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", _RSS_CHILD, mode], check=True, capture_output=True, text=True)
        return int(out.stdout.split()[-1]) / 1024

    return {"unit_mib": statistics.median(peak("sim") for _ in range(3)),
            "imports_only_mib": statistics.median(peak("imports") for _ in range(3)),
            "python_bare_mib": statistics.median(peak("bare") for _ in range(3))}
