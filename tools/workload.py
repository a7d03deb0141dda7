"""A busy unit for the crash and fault torture: the real daemon, a patient's random hand, and a
line on standard output for everything an observer outside the process needs to check.

    python tools/workload.py --data DIR [--seed N] [--seconds S] [--autocheckpoint PAGES]

The daemon's own code runs on mock pins and a dummy display with a virtual clock that
jumps from deadline to deadline, so hours of a ward pass in a second and nearly all the
time is spent in the journal (commits, checkpoints, seals, new segments). Each run
continues the data directory's unit after an outage of a few minutes to hours.

Lines written (unbuffered, straight to the pipe, so they survive a kill -9 of this process):

    READY <seq> <hash>              started: the journal was checked and the start recorded
    C <seq> <hash> <type> <session> a record is committed (COMMIT returned)
    SHOWN <what> <session>          a confirmation the patient saw or heard (done chime,
                                    "Well done" screen, snooze chime)
    NOTICE <text>                   the notice for the nurse changed ("-" when it cleared)
    END <reason>                    stopped by itself after --seconds
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bedside.core import config, screens
from bedside.core.events import Effect, Instant, Play, Record, Show
from bedside.display.panel import DisplayOut
from bedside.journal import heartbeat
from bedside.journal.journal import Journal
from bedside.journal.segments import JournalError
from bedside.unit import simulate, wiring
from bedside.unit.clock import VirtualClock
from bedside.unit.loop import NOT_SAVED

FIRST_START = "2026-11-24T06:30"


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def last_time(data: Path, cfg: config.Config) -> datetime | None:
    try:
        j = Journal(data, cfg.tz, "look", readonly=True)
    except JournalError:
        return None
    try:
        recent = j.recent(1)
    except JournalError:
        return None
    finally:
        j.close()
    last = recent[-1].time if recent else None
    beat = heartbeat.read(data)
    if beat is not None and (last is None or beat.time > last):
        last = beat.time          # the unit was still running then: the outage starts later
    return last


class NoDisplay:
    """The display's place in the loop without drawing: the torture is about the journal, and
    drawing every guide frame would leave it few records per second to be killed in."""

    error: str | None = None
    frames = 0

    def show(self, screen: object, brightness: str) -> bool:
        return False


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=None, help="stop cleanly after this much real time")
    ap.add_argument("--autocheckpoint", type=int, default=None, help="WAL pages between checkpoints")
    ap.add_argument("--segment-bytes", type=int, default=None)
    ap.add_argument("--draw", action="store_true", help="draw every frame on luma's dummy display")
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    cfg = config.Config()
    data = Path(args.data)
    last = last_time(data, cfg)
    start = (last + timedelta(minutes=rnd.choice((1, 7, 45, 180)))) if last else \
        datetime.fromisoformat(FIRST_START).replace(tzinfo=cfg.tz)
    clock = VirtualClock(start)

    from gpiozero.pins.mock import MockFactory, MockPWMPin
    from luma.core.device import dummy

    factory = MockFactory(pin_class=MockPWMPin)
    finger = simulate.Finger(clock, factory.pin(cfg.hardware.button_pin), [])
    notice: list[str | None] = [None]

    def observe(fx: Effect, now: Instant) -> None:
        if isinstance(fx, Record) and fx.type in ("prompt", "repeat") and rnd.random() < 0.8:
            delay = rnd.uniform(3, 400)
            held = rnd.choice((0.3, 0.3, 0.3, 2.5))
            finger.actions.append(simulate.Action(now.wall + timedelta(seconds=delay), "press", held))
            if rnd.random() < 0.7:       # mostly ends the guide early: more records a second
                finger.actions.append(simulate.Action(now.wall + timedelta(seconds=delay + rnd.uniform(2, 30)),
                                                      "press", 0.3))
            finger.actions.sort(key=lambda a: a.at)
        elif isinstance(fx, Record) and fx.type in ("done", "missed") and rnd.random() < 0.5:
            # Idle presses: the progress screen (and, in bursts, the flood guard).
            for k in range(rnd.choice((1, 1, 2, 40))):
                finger.actions.append(simulate.Action(now.wall + timedelta(seconds=40 + 2 * k), "press", 0.2))
            finger.actions.sort(key=lambda a: a.at)
        elif isinstance(fx, Play) and fx.sound in ("done", "snooze"):
            say(f"SHOWN {fx.sound}-chime -")
        elif isinstance(fx, Show) and isinstance(fx.screen, screens.Done):
            say("SHOWN done-screen -")
        elif isinstance(fx, Show) and fx.screen == NOT_SAVED:
            say("SHOWN not-saved -")
        now_notice = unit.state.problems.get("journal") if unit.state is not None else None
        if now_notice != notice[0]:
            notice[0] = now_notice
            say(f"NOTICE {now_notice or '-'}")

    display: Any = NoDisplay() if not args.draw else DisplayOut(dummy(width=128, height=64, mode="1"))
    store_options: dict[str, Any] = {"seal_every_s": 900.0}
    if args.segment_bytes:
        store_options["segment_bytes"] = args.segment_bytes
    # The unit run and simulate build (unit/wiring.py), checked whole before its start record.
    wired = wiring.build(cfg, data, clock, display, boot=str(uuid.uuid4()), time_quality="simulated",
                         pin_factory=factory, sources=[lambda u: finger], observers=[observe],
                         check_at_start=True, journal_options={"autocheckpoint": args.autocheckpoint},
                         store_options=store_options)
    unit, store = wired.unit, wired.unit.store
    store.on_commit.append(lambda r: say(f"C {r['seq']} {r['hash']} {r['type']} "
                                         f"{str(r.get('session', '-')).replace(' ', '_')}"))
    unit.start()
    head = store.head()
    say(f"READY {head[0] if head else -1} {head[1] if head else '-'}")
    import time

    end = time.monotonic() + args.seconds if args.seconds is not None else None
    while unit.stopped is None:
        if end is not None and time.monotonic() >= end:
            unit.shutdown("workload finished")
            break
        unit.run_once()
    wired.close()
    say(f"END {unit.stopped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
