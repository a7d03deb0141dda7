"""``pull.salvage`` against a scripted unit: where the break is put does not depend on how
busy the unit was (its loop answers ``busy`` when it cannot get to a request in time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bedside.core.events import Instant, Record
from bedside.core.records import T
from bedside.journal.journal import Journal
from bedside.laptop import pull
from bedside.laptop.client import Refused
from bedside.link import batch, frames


class ScriptedUnit:
    """Answers ``get`` from ``records`` (a journal with a gap), ``busy`` the first ``busy`` times."""

    def __init__(self, records: list[dict[str, Any]], busy: int) -> None:
        self.records = records
        self.busy = busy
        self.asked: list[tuple[str, ...]] = []

    def request(self, verb: str, *args: str) -> frames.Reply:
        self.asked.append((verb, *args))
        if self.busy:
            self.busy -= 1
            raise Refused("busy", "the unit is busy; try again", {"error": "busy"})
        first, limit = int(args[0]), int(args[1])
        recs = [r for r in self.records if r["seq"] >= first][:limit]
        head = (self.records[-1]["seq"], self.records[-1]["hash"])
        b = batch.pack(recs, head=head, lean="full" not in args)
        return frames.Reply(1, "batch", b.meta, b.payload)


@pytest.fixture
def gapped(tmp_path: Path) -> list[dict[str, Any]]:
    """Records 1-20 of a journal, with 11-14 missing (as from a lost segment)."""
    j = Journal(tmp_path / "unit", ZoneInfo("UTC"), "b")
    t = datetime(2026, 11, 24, 9, tzinfo=UTC)
    for i in range(20):
        j.append(Record(T.PRESS, data={"i": i}), Instant(t + timedelta(seconds=i), float(i)), "rtc")
    recs = [r for r in j.records() if not 11 <= r["seq"] <= 14]
    j.close()
    return recs


@pytest.mark.parametrize("busy", [0, 1, 3])
def test_a_busy_unit_does_not_move_the_break(tmp_path: Path, gapped: list[dict[str, Any]], busy: int) -> None:
    unit = ScriptedUnit(gapped, busy)
    store = pull.JournalCopy(tmp_path / "laptop", "u").open()
    head, brk = pull.salvage(unit, store, None, {})    # type: ignore[arg-type]
    assert brk is not None and brk.at == 11, brk
    assert store.head[0] == 10 and [r["seq"] for r in brk.records] == [15, 16, 17, 18, 19, 20]
    assert head[0] == 20


def test_a_unit_that_stays_busy_is_not_reported_as_a_break(tmp_path: Path, gapped: list[dict[str, Any]]) -> None:
    unit = ScriptedUnit(gapped, 100)
    store = pull.JournalCopy(tmp_path / "laptop", "u").open()
    with pytest.raises(Refused):
        pull.salvage(unit, store, None, {})             # type: ignore[arg-type]
