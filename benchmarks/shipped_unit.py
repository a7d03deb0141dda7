"""The child of the outside-in benchmarks: ``bedside run`` itself, with only the hardware swapped.

    python benchmarks/shipped_unit.py --stats FILE [--days N --start ISO [--answer|--mixed]
                                                   [--marks D,D,...] [--snapshots DIR]] -- RUN-ARGS

Runs ``bedside.cli.main.main(["run", *RUN-ARGS])``: the daemon's own wiring (journal, store,
seals, heartbeat, display keeper, self-test, watchdog from ``$WATCHDOG_USEC``, the serial
link, the stick channel), on gpiozero's mock pins (``GPIOZERO_PIN_FACTORY=mock``, set by
the parent) and luma's real SSD1306 driver over a fake I2C bus that counts the bytes sent.

With ``--days`` the system clock is replaced by a virtual one that jumps from deadline to
deadline (so N days take seconds), a finger presses the mock button two minutes after each
session is offered (``--answer``; or ``--mixed``: a patient who answers most, snoozes every
fifth first and misses one in five, as ``journals.day_actions``), and the loop is stopped as
systemd would stop it at the end. The loop's timed wake-ups (each one a wake-up on a real unit)
are counted there. With ``--marks``, the process's resident memory (``VmRSS``) and CPU are
noted when the virtual clock reaches each of those days (``--snapshots``: tracemalloc starts
at the first mark and a snapshot is taken at each later one, for finding what grows; tracing
slows the run tens of times over; ``BEDSIDE_BENCH_FRAMES`` frames per traceback, 8).
At exit, ``--stats`` gets one JSON object: bytes to the panel, frames, the loop's wake-ups,
the marks.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PIN_HISTORY = 16        # changes kept per mock pin (a real pin keeps none; the simulator keeps 2000 for tests)


class CountingBus:
    """A luma serial interface that keeps nothing but counts (the real driver packs the bytes)."""

    def __init__(self) -> None:
        self.command_bytes = 0
        self.data_bytes = 0
        self.transfers = 0

    def command(self, *cmd: int) -> None:
        self.command_bytes += len(cmd)
        self.transfers += 1

    def data(self, data: Any) -> None:
        self.data_bytes += len(data)
        self.transfers += 1

    def cleanup(self) -> None:
        pass


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stats", type=Path, required=True)
    ap.add_argument("--days", type=float)
    ap.add_argument("--start", default="2026-11-24T06:00")
    patient = ap.add_mutually_exclusive_group()
    patient.add_argument("--answer", action="store_true", help="press the button 2 minutes after each offer")
    patient.add_argument("--mixed", action="store_true", help="answer most, snooze every fifth first, miss one in five")
    ap.add_argument("--marks", default="", help="days at which to note RSS and CPU, e.g. 1,7,30,365")
    ap.add_argument("--snapshots", type=Path, help="with --marks: a tracemalloc snapshot per mark into this folder")
    ap.add_argument("run_args", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    run_args = args.run_args[1:] if args.run_args[:1] == ["--"] else args.run_args

    # gpiozero's mock pins keep every change for tests to inspect (a real pin keeps none): over
    # simulated months that history is the benchmark's memory, not the unit's. A few suffice.
    import collections

    from gpiozero.pins import mock

    from bedside.cli import main as cli
    from bedside.core import planner
    from bedside.display import device
    from bedside.unit import clock as clocks
    from bedside.unit import host, loop

    real_pin_init = mock.MockPin.__init__

    def bounded_pin_init(self: Any, *a: Any, **kw: Any) -> None:
        real_pin_init(self, *a, **kw)
        self.states = collections.deque(self.states, maxlen=PIN_HISTORY)

    mock.MockPin.__init__ = bounded_pin_init

    bus = CountingBus()
    real_build_display = device.build_display
    device.build_display = lambda hw, serial_interface=None: real_build_display(hw, serial_interface=bus)
    stats: dict[str, Any] = {}

    if args.days:
        cfg_path = next((run_args[i + 1] for i, a in enumerate(run_args) if a == "--config"), None)
        cfg = host.find(cfg_path)
        start = datetime.fromisoformat(args.start)
        start = start.replace(tzinfo=cfg.tz) if start.tzinfo is None else start
        end = start + timedelta(days=args.days)
        presses: list[tuple[datetime, float]] = []
        for n, s in enumerate(planner.sessions_between(cfg, start, end)):
            at = s.offer + timedelta(minutes=2)
            if args.answer or (args.mixed and n % 5 not in (1, 3)):
                presses.append((at, 0.3))
            elif args.mixed and n % 5 == 1:
                presses += [(at, 2.5), (at + timedelta(minutes=11), 0.3)]
        marks = [start + timedelta(days=float(d)) for d in args.marks.split(",") if d]
        stats["marks"] = []

        def note_mark(day: datetime) -> None:
            import os
            import time

            kib = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in
                                                     Path("/proc/self/status").read_text().splitlines())
                   if k in ("VmRSS", "RssAnon", "RssFile", "VmHWM")}
            t = os.times()
            stats["marks"].append({"day": (day - start) / timedelta(days=1), "rss_kib": kib["VmRSS"],
                                   "anon_kib": kib["RssAnon"], "file_kib": kib["RssFile"],
                                   "hwm_kib": kib["VmHWM"], "cpu_s": t.user + t.system,
                                   "wall_s": time.monotonic()})
            if args.snapshots is not None:
                import tracemalloc

                # Traced from the first mark on: what is allocated after it and still held at
                # a later mark is what grows (tracing the whole run would be slower still).
                if tracemalloc.is_tracing():
                    args.snapshots.mkdir(parents=True, exist_ok=True)
                    tracemalloc.take_snapshot().dump(str(args.snapshots / f"day-{len(stats['marks']):02d}.snap"))
                else:
                    tracemalloc.start(int(os.environ.get("BEDSIDE_BENCH_FRAMES", "8")))

        class DayClock(clocks.VirtualClock):
            """Virtual time for ``bedside run``; a finger on the mock button; a stop at the end."""

            def __init__(self) -> None:
                # Monotonic time goes on from this boot's: the seal key's record was written a
                # moment ago in the same boot, and a journal whose monotonic time runs backwards
                # within a boot is one whose records were reordered.
                super().__init__(start, mono0=time.monotonic())
                self.timed_wakeups = 0
                self.release_at: float | None = None
                self.pending = list(presses)
                self.marks = list(marks)

            def _at(self, wall: datetime) -> float:
                return self.mono() + (wall - self.now().wall).total_seconds()

            def _finger(self) -> float | None:
                if self.release_at is not None:
                    return self.release_at
                if self.pending:
                    return self._at(self.pending[0][0])
                return None

            def wait(self, inbox: queue.Queue[Any], until: float) -> Any | None:
                try:
                    return inbox.get_nowait()
                except queue.Empty:
                    pass
                end_mono = self.mono() + (end - self.now().wall).total_seconds()
                finger = self._finger()
                mark = self._at(self.marks[0]) if self.marks else float("inf")
                target = min(until, end_mono, finger if finger is not None else float("inf"))
                if mark <= target:
                    # Not a wake-up of the unit's: the benchmark looks at the process between two.
                    self.advance_to(mark)
                    note_mark(self.marks.pop(0))
                    return self.wait(inbox, until)
                self.advance_to(target)
                if target >= end_mono and until >= end_mono:
                    return loop.Stop("end of the simulated days")
                if finger is not None and target == finger and target < until:
                    from gpiozero import Device

                    pin = Device.pin_factory.pin(cfg.hardware.button_pin)
                    if self.release_at is not None:
                        self.release_at = None
                        pin.drive_high()
                    else:
                        _, held = self.pending.pop(0)
                        self.release_at = self.mono() + held
                        pin.drive_low()
                    try:
                        return inbox.get_nowait()
                    except queue.Empty:
                        return None
                self.timed_wakeups += 1
                return None

        day_clock = DayClock()
        clocks.SystemClock = lambda: day_clock  # type: ignore[assignment,misc,return-value]
        stats["clock"] = day_clock

    try:
        code = cli.main(["run", *run_args])
    finally:
        out = {"panel_data_bytes": bus.data_bytes, "panel_command_bytes": bus.command_bytes,
               "panel_transfers": bus.transfers}
        if "clock" in stats:
            out["loop_timed_wakeups"] = stats["clock"].timed_wakeups
            out["marks"] = stats["marks"]
        args.stats.write_text(json.dumps(out))
    return code


if __name__ == "__main__":
    sys.exit(main())
