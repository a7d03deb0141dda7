"""The child of the outside-in benchmarks: ``bedside run`` itself, with only the hardware swapped.

    python benchmarks/shipped_unit.py --stats FILE [--days N --start ISO [--answer]] -- RUN-ARGS

Runs ``bedside.cli.main.main(["run", *RUN-ARGS])``: the daemon's own wiring (journal, store,
seals, heartbeat, display keeper, self-test, watchdog from ``$WATCHDOG_USEC``, the serial
link, the stick channel), on gpiozero's mock pins (``GPIOZERO_PIN_FACTORY=mock``, set by
the parent) and luma's real SSD1306 driver over a fake I2C bus that counts the bytes sent.

With ``--days`` the system clock is replaced by a virtual one that jumps from deadline to
deadline (so N days take seconds), a finger presses the mock button two minutes after each
session is offered (``--answer``), and the loop is stopped as systemd would stop it at the
end. The loop's timed wake-ups (each one a wake-up on a real unit) are counted there.
At exit, ``--stats`` gets one JSON object: bytes to the panel, frames, the loop's wake-ups.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


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
    ap.add_argument("--answer", action="store_true", help="press the button 2 minutes after each offer")
    ap.add_argument("run_args", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    run_args = args.run_args[1:] if args.run_args[:1] == ["--"] else args.run_args

    from bedside.cli import main as cli
    from bedside.core import planner
    from bedside.unit import clock as clocks
    from bedside.unit import host, loop
    from bedside.unit import pins as hardware

    bus = CountingBus()
    real_build_display = hardware.build_display
    hardware.build_display = lambda hw, serial_interface=None: real_build_display(hw, serial_interface=bus)
    stats: dict[str, Any] = {}

    if args.days:
        cfg_path = next((run_args[i + 1] for i, a in enumerate(run_args) if a == "--config"), None)
        cfg = host.find(cfg_path)
        start = datetime.fromisoformat(args.start)
        start = start.replace(tzinfo=cfg.tz) if start.tzinfo is None else start
        end = start + timedelta(days=args.days)
        presses: list[datetime] = []
        if args.answer:
            presses = [s.offer + timedelta(minutes=2) for s in planner.sessions_between(cfg, start, end)]

        class DayClock(clocks.VirtualClock):
            """Virtual time for ``bedside run``; a finger on the mock button; a stop at the end."""

            def __init__(self) -> None:
                super().__init__(start)
                self.timed_wakeups = 0
                self.release_at: float | None = None
                self.pending = list(presses)

            def _finger(self) -> float | None:
                if self.release_at is not None:
                    return self.release_at
                if self.pending:
                    return self.mono() + (self.pending[0] - self.now().wall).total_seconds()
                return None

            def wait(self, inbox: queue.Queue[Any], until: float) -> Any | None:
                try:
                    return inbox.get_nowait()
                except queue.Empty:
                    pass
                end_mono = self.mono() + (end - self.now().wall).total_seconds()
                finger = self._finger()
                target = min(until, end_mono, finger if finger is not None else float("inf"))
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
                        self.pending.pop(0)
                        self.release_at = self.mono() + 0.3
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
        args.stats.write_text(json.dumps(out))
    return code


if __name__ == "__main__":
    sys.exit(main())
