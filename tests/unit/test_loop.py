"""The unit's port (link/unit_port.py): other threads reach the loop only by posting or
calling, and the state changes only on the loop's own thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bedside.core.config import Config
from bedside.core.events import Instant, Record, Tick
from bedside.journal.journal import Journal
from bedside.link.unit_port import LoopBusy, UnitPort
from bedside.unit.clock import VirtualClock
from bedside.unit.loop import Outputs, Unit
from bedside.unit.sounds import Player


class Screen:
    error: str | None = None

    def show(self, screen: Any, brightness: str) -> bool:
        return True


def make_unit(tmp_path: Path) -> Unit:
    cfg = Config()
    clock = VirtualClock(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    return Unit(cfg, clock, Journal(tmp_path / "data", cfg.tz, "boot"), Outputs(Screen(), Player(lambda f: None)),
                boot="boot")


def test_handle_and_record_refuse_to_run_off_the_loop(tmp_path: Path) -> None:
    unit = make_unit(tmp_path)
    unit.start()
    now = unit.clock.now()
    errors: list[BaseException] = []

    def elsewhere() -> None:
        attempts: list[Callable[[], None]] = [lambda: unit.handle(Tick(), now),
                                              lambda: unit.record(Record("fault", data={}), now)]
        for attempt in attempts:
            try:
                attempt()
            except AssertionError as e:
                errors.append(e)

    t = threading.Thread(target=elsewhere)
    t.start()
    t.join(5)
    assert len(errors) == 2 and all("loop's thread" in str(e) for e in errors)
    unit.handle(Tick(), now)            # on the thread that started the unit, it works


def test_a_call_runs_on_the_loop_and_answers_the_caller(tmp_path: Path) -> None:
    unit = make_unit(tmp_path)
    port: UnitPort = unit
    unit.start()
    seen: list[int] = []

    def on_loop(now: Instant) -> tuple[int, str] | None:
        seen.append(threading.get_ident())
        port.record(Record("fault_cleared", data={"part": "serial"}), now)
        return port.head()

    answer: list[Any] = []
    t = threading.Thread(target=lambda: answer.append(port.call(on_loop, 5)))
    t.start()
    while t.is_alive() and not seen:
        unit.run_once()
    t.join(5)
    assert seen == [threading.get_ident()]
    assert answer and answer[0] is not None and answer[0][0] >= 2 and port.saved
    with pytest.raises(LoopBusy):
        port.call(on_loop, 0.01)        # nobody runs the loop: the caller is told, not stuck
