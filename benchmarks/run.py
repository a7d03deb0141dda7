"""Run the core unit's benchmarks and write the results into docs/performance.md.

Usage: ``make bench`` (about three minutes; the idle-wakeup comparison runs in real time).
Only the section between the ``bench:core`` markers is rewritten, so other benchmarks can
keep their own sections in the same file.
"""

from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import core

DOC = Path(__file__).resolve().parent.parent / "docs" / "performance.md"
START, END = "<!-- bench:core:start -->", "<!-- bench:core:end -->"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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
    print("idle wakeups (90 s real time) ...", flush=True)
    idle = core.idle_wakeups()

    rows = [
        ("Simulate 24 h headless, no presses: CPU", "≤ 2 CPU-s", f"{idle_day['cpu_s']:.2f} CPU-s, "
         f"{idle_day['wakeups']:.0f} wakeups, {idle_day['frames']:.0f} frames"),
        ("Simulate 24 h headless, all 15 sessions guided: CPU", "≤ 2 CPU-s", f"{busy_day['cpu_s']:.2f} CPU-s, "
         f"{busy_day['wakeups']:.0f} wakeups, {busy_day['frames']:.0f} frames"),
        ("Same core stepped every simulated second (baseline)", "—", f"{polling['cpu_s']:.2f} CPU-s, "
         f"86400 wakeups: event-driven is {polling['cpu_s'] / idle_day['cpu_s']:.1f}× cheaper"),
        ("Idle daemon wakeups (real time)", "≤ 1 / min", f"{idle['daemon_per_min']:.2f} / min"),
        ("`schedule.run_pending()` + `sleep(1)` loop, same 90 s", "—",
         f"{idle['schedule_per_min']:.1f} / min: {idle['ratio']:.0f}× the daemon's"),
        ("Press (release) → frame sent, mock pins", "p95 ≤ 10 ms", f"p95 {press['p95_ms']:.2f} ms, median "
         f"{press['median_ms']:.2f} ms, max {press['max_ms']:.2f} ms"),
        ("  of which a committed journal record (baseline)", "—", f"median {press['commit_median_ms']:.2f} ms"),
        ("Frame render (median over screen kinds)", "≤ 1.5 ms", f"{rend['median_ms']:.3f} ms "
         f"(slowest kind {rend['worst_kind_ms']:.3f} ms); unchanged-frame check {rend['compare_ms'] * 1000:.1f} µs"),
        ("Startup to first frame (`bedside simulate`)", "≤ 300 ms", f"{start['median_ms']:.0f} ms "
         f"(a bare `python -c pass`: {start['python_bare_ms']:.0f} ms)"),
        ("Peak RSS running a simulated day", "≤ 40 MiB", f"{mem['unit_mib']:.1f} MiB "
         f"(importing the package and its libraries alone: {mem['imports_only_mib']:.1f} MiB; "
         f"a bare interpreter: {mem['python_bare_mib']:.1f} MiB)"),
    ]
    now = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [START, "", f"Measured {now} on {cpu_model()}, Python {platform.python_version()}, "
             f"{platform.system()} {platform.machine()} (`make bench`). Medians of repeated runs.", "",
             "| what | goal | measured |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += ["", END]
    section = "\n".join(lines)
    text = DOC.read_text() if DOC.exists() else "# Performance\n\n## Core unit\n\n" + START + "\n" + END + "\n"
    if START in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + section + after
    else:
        text += "\n## Core unit\n\n" + section + "\n"
    DOC.write_text(text)
    print(section)


if __name__ == "__main__":
    main()
