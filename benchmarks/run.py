"""Run the core unit's benchmarks and write the results into docs/performance.md.

Usage: ``make bench`` (about three minutes; the idle-wakeup comparison runs in real time).
Only the section between the ``bench:core`` markers is rewritten, so other benchmarks can
keep their own sections in the same file.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import core, docs


def main() -> None:
    print("simulated day, unanswered ...", flush=True)
    idle_day = core.sim_day(answered=False)
    print("simulated day, every session done ...", flush=True)
    busy_day = core.sim_day(answered=True)
    print("1 s polling baseline ...", flush=True)
    polling = core.polling_day()
    print("render ...", flush=True)
    rend = core.render_times()
    print("press latency ...", flush=True)
    press = core.press_latency()
    print("startup ...", flush=True)
    start = core.startup()
    print("memory ...", flush=True)
    mem = core.memory()

    rows = [
        ("Simulate 24 h headless, no presses: CPU", "≤ 2 CPU-s", f"{idle_day['cpu_s']:.2f} CPU-s, "
         f"{idle_day['wakeups']:.0f} turns of the loop, {idle_day['frames']:.0f} frames"),
        ("Simulate 24 h headless, all 15 sessions guided: CPU", "≤ 1 CPU-s", f"{busy_day['cpu_s']:.2f} CPU-s, "
         f"{busy_day['wakeups']:.0f} turns of the loop, {busy_day['frames']:.0f} frames"),
        ("Our own core stepped every simulated second (not a `schedule` loop: see Scaling)", "—",
         f"{polling['cpu_s']:.2f} CPU-s, 86400 turns of the loop"),
        ("Press (release) → frame sent, mock pins", "p95 ≤ 10 ms", f"p95 {press['p95_ms']:.2f} ms, median "
         f"{press['median_ms']:.2f} ms, max {press['max_ms']:.2f} ms"),
        ("  of which a committed journal record (baseline)", "—", f"median {press['commit_median_ms']:.2f} ms"),
        ("Frame render (median over screen kinds)", "≤ 1.5 ms", f"{rend['median_ms']:.3f} ms "
         f"(slowest kind {rend['worst_kind_ms']:.3f} ms); unchanged-frame check {rend['compare_ms'] * 1000:.1f} µs"),
        ("Startup to first frame (`bedside simulate`), bytecode compiled as installed", "≤ 300 ms",
         f"{start['median_ms']:.0f} ms (a bare `python -c pass`: {start['python_bare_ms']:.0f} ms; with no "
         f"bytecode at all, every module compiled first: {start['cold_ms']:.0f} ms)"),
        ("Peak RSS running a simulated day", "≤ 40 MiB", f"{mem['unit_mib']:.1f} MiB "
         f"(importing the package and its libraries alone: {mem['imports_only_mib']:.1f} MiB; "
         f"a bare interpreter: {mem['python_bare_mib']:.1f} MiB)"),
    ]
    print(docs.write_section("core", "Core unit", [docs.measured_on("make bench", "Medians of repeated runs."), "",
                                                   *docs.table(rows)]))


if __name__ == "__main__":
    main()
