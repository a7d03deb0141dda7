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


def test_an_input_the_loop_gets_to_late_is_not_recorded_before_what_it_did_meanwhile(tmp_path: Path) -> None:
    """A press is stamped when it happened, and may wait in the inbox behind a call the loop
    gets to later, which records something (the journal check's verdict, a self-test, a link
    command). The press's record must not carry an earlier monotonic time than the record
    committed before it: within one boot the journal's seq order is the order of its stamps,
    and `bedside verify` reports time running backwards as records reordered or spliced."""
    from bedside.core.events import ButtonEdge
    from bedside.core.records import T
    from bedside.journal import verify
    from tests.conftest import journal_records

    unit = make_unit(tmp_path)
    unit.start()
    clock = unit.clock
    assert isinstance(clock, VirtualClock)
    m0 = clock.now().mono
    clock.skip(0.1)
    unit.post(ButtonEdge(True), m0 + 0.1)        # pressed
    unit.run_once()
    unit.call_soon(lambda now: unit.record(Record(T.SELFTEST, data={"ok": True}), now))
    unit.post(ButtonEdge(False), m0 + 0.4)       # released while the loop was busy, behind the call
    clock.skip(0.9)                              # the loop takes the call at m0 + 1.0
    unit.run_once()
    unit.run_once()
    unit.shutdown("test")
    recs = journal_records(tmp_path / "data")
    types = [r["type"] for r in recs]
    assert types.index(T.SELFTEST) < types.index(T.PRESS)
    assert [r["mono_ms"] for r in recs] == sorted(r["mono_ms"] for r in recs)
    assert verify.verify_data(tmp_path / "data").ok
