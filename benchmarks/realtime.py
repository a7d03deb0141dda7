"""The unit in real time on a year-old ward card, each goal beside its baseline in the same run.

Every figure is a whole process measured from outside:

* **While a session is due** — ``bedside run``'s own wiring (benchmarks/shipped_unit.py: mock
  pins, the real SSD1306 driver over a counting bus, the watchdog, the serial link, the stick
  channel) in real time with a prompt waiting: every thread's voluntary context switches
  (/proc), scaled to an hour. Beside it, a plain ``schedule`` loop counted the same way.
* **A fully answered day** — the loop's timed wake-ups over a simulated day of the same wiring
  with every prompt answered and guided (a virtual clock: each deadline is one wake-up), plus
  the other threads' real-time rate; and the I2C transfers that day sends (the counting bus:
  each ``command``/``data`` call of luma's driver is one I2C_RDWR transfer).
* **First frame** — ``bedside simulate`` launched on an empty data directory and on a ward
  unit's year (a segment per three-day stay, benchmarks/journals.py), in turn, to its first
  frame; and the segment files each start opens (strace).
* **Flat over a year** — the CPU of a simulated guided day on a unit's first week and on a
  copy of its year, in turn, each in its own process (the day alone, not the start); and the
  files in the year's data directory.
* **Guided day against the baselines** — whole processes, start-up included and stated apart:
  the unit's guided day; a plain ``schedule`` loop writing the same records as JSON lines
  with an fsync each (as a hobbyist would); and the same loop doing the unit's own work
  (the hash-chained journal and the frames). Fast-forwarded over the day on a virtual clock;
  and in real time over a window, where the CPU past start-up is read from /proc.

Run alone with ``python benchmarks/realtime.py`` (about fifteen minutes) or through ``make
bench``. It writes the ``realtime`` section of docs/performance.md. With
``BEDSIDE_BENCH_BASE=<git ref>`` (e.g. the previous release's commit) the ward's 200 units run
in turn with that version's code too (benchmarks/ward.py).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import docs, journals, shipped

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("BEDSIDE_BENCH_CACHE", tempfile.gettempdir())) / "bedside-bench-journals"
YEAR, STAY = 365, 3
PAIRS = int(os.environ.get("BEDSIDE_BENCH_PAIRS", "7"))


# --- counts ---------------------------------------------------------------------------------

def due_hour(seconds: float = 240.0) -> shipped.Idle:
    """``bedside run`` in real time while a session is due and unanswered (the window opens a
    minute after the start: a session already past at start is an outage's)."""
    cfg = shipped.day_config(datetime.now(UTC), awake_from_minutes_ago=-1)
    return shipped.idle(seconds, warmup=80, config_text=cfg)


# i2c-bcm2835 (drivers/i2c/busses/i2c-bcm2835.c): bcm2835_i2c_xfer starts a transfer and sleeps in
# wait_for_completion_timeout until its interrupt handler sees DONE, so the calling thread
# wakes once per I2C_RDWR transfer; the controller's FIFO (16 bytes) is refilled from the
# interrupt handler as it drains, an interrupt but no wake-up of the process.
FIFO = 16


# --- start-up -------------------------------------------------------------------------------

def _at(days: int) -> datetime:
    from bedside.core import config

    cfg = config.Config()
    return datetime.fromisoformat(journals.DAY_START).replace(tzinfo=cfg.tz) + timedelta(days=days, hours=4, minutes=5)


def _simulate_args(data: Path, frames: Path, at: datetime) -> list[str]:
    return [sys.executable, "-m", "bedside", "simulate", "--headless", "--start", at.strftime("%Y-%m-%dT%H:%M"),
            "--until", (at + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M"), "--data", str(data),
            "--frames", str(frames)]


def first_frame(days: int) -> float:
    """Milliseconds from launching ``bedside simulate`` to its first frame, on ``days`` of a ward
    unit's journal (0: empty)."""
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        if days:
            journals.copy(days, CACHE, data, stay_days=STAY)
        frames = Path(d) / "frames"
        t0 = time.time_ns()
        subprocess.run(_simulate_args(data, frames, _at(days)), check=True, capture_output=True)
        first = min(frames.iterdir(), key=lambda p: p.name)
        return (first.stat().st_mtime_ns - t0) / 1e6


def start_opens(days: int) -> dict[str, int]:
    """Segment files opened by a launch (strace): before the first frame is drawn, and in all
    (the whole check after the first frame opens each segment: docs/journal.md)."""
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        if days:
            journals.copy(days, CACHE, data, stay_days=STAY)
        log = Path(d) / "strace.log"
        subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", str(log),
                        *_simulate_args(data, Path(d) / "frames", _at(days))], check=True, capture_output=True)
        lines = log.read_text().splitlines()
        opens = [line for line in lines if re.search(r'journal-\d+\.sqlite"', line)]
        frame = next((i for i, line in enumerate(lines) if "frames/" in line and "openat" in line), None)
        before = sum(1 for line in lines[:frame] if re.search(r'journal-\d+\.sqlite"', line)) if frame else len(opens)
        return {"before_frame": before, "all": len(opens)}


# --- whole processes: a guided day and its baselines -----------------------------------------

UNIT_DAY = """
import sys, tempfile
from datetime import datetime, timedelta
from pathlib import Path
from bedside.core import config, planner
from bedside.unit import simulate
days = float(sys.argv[1]); data = sys.argv[2] if len(sys.argv) > 2 else None
cfg = config.Config()
start = datetime.fromisoformat(sys.argv[3] if len(sys.argv) > 3 else "2026-11-24T06:00").replace(tzinfo=cfg.tz)
actions = [simulate.Action(s.offer.astimezone(cfg.tz) + timedelta(minutes=2), "press", 0.3)
           for s in planner.sessions_between(cfg, start, start + timedelta(days=max(days, 1)))]
with tempfile.TemporaryDirectory() as d:
    sim = simulate.build(cfg, Path(data or d), start, actions=actions)
    sim.unit.run(until=start + timedelta(days=days))
    sim.close()
"""

# A hobbyist's loop: schedule's daily jobs, the records appended to a JSON-lines file with an
# fsync each, run_pending() and sleep(1); fast-forwarded on a virtual clock (argv: records
# file, days: 0 = start-up only).
HOBBY_DAY = """
import datetime as dtm, json, os, sys, tempfile, types
import schedule
recs = json.load(open(sys.argv[1])); days = float(sys.argv[2])
clock = {"now": dtm.datetime.fromisoformat(recs["start"])}
class V(dtm.datetime):
    @classmethod
    def now(cls, tz=None): return clock["now"]
shim = types.SimpleNamespace(**{k: getattr(dtm, k) for k in dir(dtm) if not k.startswith("__")}); shim.datetime = V
schedule.datetime = shim
with tempfile.TemporaryDirectory() as d:
    f = open(os.path.join(d, "log.jsonl"), "a")
    def job(batch):
        for r in batch:
            f.write(json.dumps(r) + "\\n"); f.flush(); os.fsync(f.fileno())
    for at, batch in recs["jobs"]:
        schedule.every().day.at(at).do(job, batch)
    end = clock["now"] + dtm.timedelta(days=days)
    while clock["now"] < end:
        clock["now"] += dtm.timedelta(seconds=1)
        schedule.run_pending()
    f.close()
"""

OWN_WORK_DAY = """
import pickle, sys
sys.path.insert(0, sys.argv[1])
import schedule
from luma.core.device import dummy
from bedside.display import render
from bedside.journal.journal import Journal
from benchmarks import scaling
records, screens = pickle.load(open(sys.argv[2], "rb"))
if sys.argv[3] != "0":
    scaling.schedule_loop(records, screens, runs=1)
"""


def _cpu(cmd: list[str]) -> float:
    """CPU seconds (user + system) of a whole child process."""
    t0 = os.times()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT)
    t1 = os.times()
    return (t1.children_user + t1.children_system) - (t0.children_user + t0.children_system)


def hobby_jobs(work: Path) -> Path:
    """The unit's guided day's records, grouped into one daily job per session at its offer time,
    as JSON for the hobbyist's loop."""
    from bisect import bisect_right

    from bedside.core import planner
    from benchmarks import scaling

    cfg, start, _ = scaling._guided_day_script()
    _, records, _ = scaling.ours(runs=1)
    offers = [s.offer for s in planner.sessions_between(cfg, start, start + timedelta(days=1)) if s.merged_into is None]
    jobs: dict[datetime, list[dict[str, Any]]] = {o: [] for o in offers}
    for when, rec in records:
        body = {"time": when.isoformat(), "type": rec.type, "session": rec.session, **dict(rec.data)}
        jobs[offers[max(0, bisect_right(offers, when) - 1)]].append(body)
    out = work / "jobs.json"
    out.write_text(json.dumps({"start": start.replace(tzinfo=None).isoformat(),
                               "jobs": [[o.astimezone(cfg.tz).strftime("%H:%M:%S"), b] for o, b in jobs.items()]},
                              default=str))
    return out


def guided_fast_forward(work: Path, pairs: int = PAIRS) -> dict[str, Any]:
    import pickle

    from benchmarks import scaling

    jobs = hobby_jobs(work)
    _, records, screens = scaling.ours(runs=1)
    seen = work / "seen.pickle"
    seen.write_bytes(pickle.dumps((records, screens)))
    py = sys.executable
    cmds = {
        "unit": ([py, "-c", UNIT_DAY, "1"], [py, "-c", UNIT_DAY, "0"]),
        "hobby": ([py, "-c", HOBBY_DAY, str(jobs), "1"], [py, "-c", HOBBY_DAY, str(jobs), "0"]),
        "own_work": ([py, "-c", OWN_WORK_DAY, str(ROOT), str(seen), "1"],
                     [py, "-c", OWN_WORK_DAY, str(ROOT), str(seen), "0"]),
    }
    whole: dict[str, list[float]] = {k: [] for k in cmds}
    start: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(pairs):
        for k, (day, zero) in cmds.items():
            whole[k].append(_cpu(day))
            start[k].append(_cpu(zero))
    past = {k: [w - s for w, s in zip(whole[k], start[k], strict=True)] for k in cmds}
    out: dict[str, Any] = {k: {"whole": statistics.median(whole[k]), "start": statistics.median(start[k]),
                               "past": statistics.median(past[k])} for k in cmds}
    for base in ("hobby", "own_work"):
        out[f"ratio_whole_{base}"] = statistics.median(a / b for a, b in zip(whole["unit"], whole[base], strict=True))
        out[f"ratio_past_{base}"] = statistics.median(a / max(b, 1e-3) for a, b in
                                                      zip(past["unit"], past[base], strict=True))
        out[f"range_past_{base}"] = (min(a / max(b, 1e-3) for a, b in zip(past["unit"], past[base], strict=True)),
                                     max(a / max(b, 1e-3) for a, b in zip(past["unit"], past[base], strict=True)))
    return out


HOBBY_REAL = """
import json, os, sys, tempfile, time
import schedule
with tempfile.TemporaryDirectory() as d:
    f = open(os.path.join(d, "log.jsonl"), "a")
    def job():
        f.write(json.dumps({"type": "prompt"}) + "\\n"); f.flush(); os.fsync(f.fileno())
    for h in range(8, 22):
        schedule.every().day.at(f"{h:02d}:00").do(job)
    while True:
        schedule.run_pending()
        time.sleep(1)
"""


def _task_cpu_ns(pid: int) -> int:
    """Every thread's time on a CPU (ns), from /proc/PID/task/*/schedstat."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total


def real_time(seconds: float = 120.0) -> dict[str, float]:
    """CPU past start-up in real time over the same window: ``bedside run`` while a session is
    due, and the hobbyist's loop; and each one's start-up CPU (to READY / to its first sleep)."""
    cfg = shipped.day_config(datetime.now(UTC), awake_from_minutes_ago=-1)
    with shipped.running(config_text=cfg) as run:
        started = _task_cpu_ns(run.proc.pid) / 1e9
        time.sleep(80)
        a = _task_cpu_ns(run.proc.pid)
        time.sleep(seconds)
        unit_rate = (_task_cpu_ns(run.proc.pid) - a) / 1e9 / seconds
    proc = subprocess.Popen([sys.executable, "-c", HOBBY_REAL])
    try:
        time.sleep(3)
        hobby_start = _task_cpu_ns(proc.pid) / 1e9
        a = _task_cpu_ns(proc.pid)
        time.sleep(seconds)
        hobby_rate = (_task_cpu_ns(proc.pid) - a) / 1e9 / seconds
    finally:
        proc.terminate()
        proc.wait(10)
    return {"unit_start": started, "unit_per_day": unit_rate * 86400, "hobby_start": hobby_start,
            "hobby_per_day": hobby_rate * 86400, "window": seconds}


# --- flat over a year ------------------------------------------------------------------------

def day_cpu(days_before: int) -> float:
    """CPU of one simulated guided day (the day alone, its start excluded) on a unit whose journal
    holds ``days_before`` days of a ward's stays (0: its first day), in a process of its own."""
    code = """
import sys, time
from datetime import datetime, timedelta
from pathlib import Path
from bedside.core import config, planner
from bedside.unit import simulate
cfg = config.Config()
start = datetime.fromisoformat(sys.argv[2]).replace(tzinfo=cfg.tz)
actions = [simulate.Action(s.offer.astimezone(cfg.tz) + timedelta(minutes=2), "press", 0.3)
           for s in planner.sessions_between(cfg, start, start + timedelta(days=1))]
sim = simulate.build(cfg, Path(sys.argv[1]), start, actions=actions)
sim.advance(start + timedelta(hours=6))           # the start, its whole check, the morning
t0 = time.process_time()
sim.advance(start + timedelta(days=1, hours=6))
print(time.process_time() - t0)
sim.close()
"""
    with tempfile.TemporaryDirectory() as d:
        data = Path(d) / "data"
        if days_before:
            journals.copy(days_before, CACHE, data, stay_days=STAY)
        at = datetime.fromisoformat(journals.DAY_START) + timedelta(days=days_before)
        out = subprocess.run([sys.executable, "-c", code, str(data), at.strftime("%Y-%m-%dT%H:%M")], check=True,
                             capture_output=True, text=True, cwd=ROOT)
        return float(out.stdout.strip().splitlines()[-1])


def year_files() -> dict[str, int]:
    data = journals.cached(YEAR, CACHE, stay_days=STAY) / "data"
    names = os.listdir(data)
    return {"files": len(names), "segments": sum(1 for n in names if n.startswith("journal-"))}


# --- the table -------------------------------------------------------------------------------

def main() -> None:
    journals.cached(YEAR, CACHE, stay_days=STAY)
    rows: list[tuple[str, str, str]] = []

    print("a session due, real time ...", flush=True)
    due = due_hour()
    base = shipped.schedule_idle(60)
    per_h = due.total / due.seconds * 3600
    rows.append(("Wake-ups an hour while a session is due and unanswered: every thread of `bedside run`, real time",
                 "≤ 60", f"{per_h:,.0f} ({due.total} in {due.seconds:.0f} s; the loop's thread "
                 f"{due.total - due.others}, {len(due.threads) - 1} other threads {due.others}). Before: 3,675. "
                 f"A `schedule` loop counted the same way: {base.total / base.seconds * 3600:,.0f}"))

    print("simulated days ...", flush=True)
    answered = shipped.days(1, answered=True, trace=False, device=False)
    unanswered = shipped.days(1, trace=False, device=False)
    others = due.others / due.seconds * 86400
    rows.append(("Wake-ups on a day with every prompt answered and guided: the loop's over the simulated day, "
                 "plus the other threads' real-time rate", "≤ 5,000",
                 f"{answered.loop_wakeups + others:,.0f} ({answered.loop_wakeups:,} + {others:,.0f}); every prompt "
                 f"unanswered: {unanswered.loop_wakeups:,}. Before: about 9,500"))
    per_transfer = answered.panel_bytes / max(answered.panel_transfers, 1)
    rows.append(("I²C transfers a day, every prompt answered (luma's SSD1306 driver over a counting bus: one "
                 "transfer per `command`/`data` call)", "a matching cut",
                 f"{answered.panel_transfers:,} transfers, {answered.panel_bytes / 1024:,.0f} KiB "
                 f"({per_transfer:.0f} bytes each); unanswered day {unanswered.panel_transfers:,}. On a Pi, "
                 f"i2c-bcm2835 wakes the calling thread once per transfer: about {answered.panel_transfers:,} "
                 f"wake-ups of the loop's thread a day beyond those above, and about "
                 f"{answered.panel_bytes // FIFO:,} FIFO interrupts (not wake-ups of the process)"))

    print("first frame ...", flush=True)
    empty: list[float] = []
    year: list[float] = []
    first_frame(0)
    first_frame(YEAR)                     # bytecode and the page cache warm
    for _ in range(PAIRS):
        empty.append(first_frame(0))
        year.append(first_frame(YEAR))
    ratios = sorted(y / e for e, y in zip(empty, year, strict=True))
    opens0, opens_year = start_opens(0), start_opens(YEAR)
    segs = year_files()
    rows.append((f"First frame: empty journal / a ward unit's year ({segs['segments']} segments, a stay each), "
                 f"`bedside simulate` launched to its first frame", "≤ 1.2× empty",
                 f"{statistics.median(empty):.0f} / {statistics.median(year):.0f} ms: "
                 f"**{statistics.median(ratios):.2f}×** (median of {PAIRS} paired runs' ratios, "
                 f"{ratios[0]:.2f}–{ratios[-1]:.2f}). Before: 463 / 884 ms, 1.91×"))
    rows.append(("Segment files opened before the first frame: empty / a year", "not in proportion to age",
                 f"{opens0['before_frame']} / {opens_year['before_frame']} (after the frame, the whole check: "
                 f"{opens_year['all'] - opens_year['before_frame']} for {segs['segments']} segments). Before: 2,811"))

    print("flat over a year ...", flush=True)
    first_week: list[float] = []
    last_week: list[float] = []
    for _ in range(max(3, PAIRS // 2)):
        first_week.append(day_cpu(0))
        last_week.append(day_cpu(YEAR - 3))
    flat = sorted(b / a for a, b in zip(first_week, last_week, strict=True))
    rows.append(("CPU of a simulated guided day: the first week / the year's last week (a copy of the year's "
                 "journal), the day alone", "≤ 1.1×",
                 f"{statistics.median(first_week):.2f} / {statistics.median(last_week):.2f} CPU-s: "
                 f"**{statistics.median(flat):.2f}×** ({flat[0]:.2f}–{flat[-1]:.2f}). Before: 1.35 → 1.83 s"))
    rows.append(("Files in the data directory after a year", "bounded, or only what export needs",
                 f"{segs['files']}: {segs['segments']} segments (kept until exported and pruned, "
                 f"docs/journal.md) and {segs['files'] - segs['segments']} others"))

    print("guided day against the baselines (fast-forward) ...", flush=True)
    with tempfile.TemporaryDirectory() as w:
        g = guided_fast_forward(Path(w))
    rows.append(("A guided day, fast-forwarded, whole process: the unit / a `schedule` loop writing JSON lines "
                 "with fsync / the same loop doing the unit's work (hash-chained journal, frames)",
                 "≤ 1× the plain loop past start-up",
                 f"{g['unit']['whole']:.2f} / {g['hobby']['whole']:.2f} / {g['own_work']['whole']:.2f} CPU-s; "
                 f"past start-up {g['unit']['past']:.2f} / {g['hobby']['past']:.2f} / {g['own_work']['past']:.2f}: "
                 f"**{g['ratio_past_hobby']:.2f}×** the plain loop ({g['range_past_hobby'][0]:.2f}–"
                 f"{g['range_past_hobby'][1]:.2f}), {g['ratio_past_own_work']:.2f}× the loop doing our work; "
                 f"whole process {g['ratio_whole_hobby']:.2f}× / {g['ratio_whole_own_work']:.2f}×"))
    rows.append(("  start-up alone (the same processes, a day of length 0)", "stated apart",
                 f"{g['unit']['start']:.2f} / {g['hobby']['start']:.2f} / {g['own_work']['start']:.2f} CPU-s"))

    print("real time ...", flush=True)
    rt = real_time()
    rows.append((f"Real time, past start-up ({rt['window']:.0f} s windows, CPU of every thread from /proc): "
                 "`bedside run` with a session due / the plain loop, scaled to a day", "≤ 1× the plain loop",
                 f"{rt['unit_per_day']:.1f} / {rt['hobby_per_day']:.1f} CPU-s a day: "
                 f"**{rt['unit_per_day'] / max(rt['hobby_per_day'], 1e-6):.2f}×**; start-up apart: "
                 f"{rt['unit_start']:.2f} / {rt['hobby_start']:.2f} CPU-s"))

    print("ward ...", flush=True)
    from benchmarks import ward
    rows += ward.streaming_rows()

    note = ("Whole processes from outside, each beside its baseline in the same run. The machine was "
            "shared with other work while this ran (two cores): counts (wake-ups, opens, transfers) "
            "do not depend on it; times are medians of paired runs taken in turn, and their ratios are "
            "the figures to trust. \"Before\" figures are the ones measured from outside on the "
            "previous release (2026-11-30), not re-run here.")
    section = docs.write_section("realtime", "The unit in real time on a year-old ward card",
                                 [docs.measured_on("python benchmarks/realtime.py", note), "", *docs.table(rows)])
    print(section)


if __name__ == "__main__":
    main()
