"""``bedside pull`` over a real pty from a unit whose damaged files its loop has not read yet.

The unit's loop salvages at most ``salvage.STEP_BYTES`` a request (here: nothing at all), so
the five crafted segments of tests/link/test_step_budget.py are passed over and named. The
pull asks again a few times, then ends with an export whose header names each file and the
records it holds, which ``log verify`` names as a gap, and one line saying what to do. Once
the unit's journal check has read them (it reads the files the link left unread, on its
worker thread), the next pull gives every record and verifies.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bedside.core import config
from bedside.core.events import Instant, Record
from bedside.core.records import T
from bedside.journal import salvage
from bedside.journal.journal import Journal
from bedside.journal.segments import segment_files
from bedside.laptop import client, pull
from bedside.link import batch, frames
from bedside.link.on_loop import NOT_READ_YET
from bedside.unit import journal_check
from tests.rigs import hostile
from tests.rigs.serial_rig import SECRET, Cable, RunningUnit, cheap_ward, unit_with_days, wait_for

pytestmark = pytest.mark.usefixtures("cheap_kdf")
CFG = config.Config()
CRAFTED, CRAFTED_BYTES = 5, 2 * 2**20


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CFG.tz)


def every_record(data: Path) -> list[tuple[int, str]]:
    salvage.forget()
    j = Journal(data, CFG.tz, "reader", readonly=True)
    try:
        return [(r["seq"], r["hash"]) for r in j.records()]
    finally:
        j.close()
        salvage.forget()


def test_a_pull_names_what_the_unit_has_not_read_yet_and_a_later_pull_gives_every_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = unit_with_days(tmp_path / "unit", local("2026-11-14T06:00"), local("2026-11-16T06:00"),
                          segment_bytes=24 * 1024)
    files = segment_files(data)[1:1 + CRAFTED]
    for _, path in files:
        hostile.craft_segment(path, CRAFTED_BYTES)
    names = [path.name for _, path in files]
    ward = cheap_ward(data)
    monkeypatch.setattr(salvage, "START_BYTES", 1)
    monkeypatch.setattr(salvage, "STEP_BYTES", 1)              # the loop reads none of them
    monkeypatch.setattr(journal_check, "DELAY_S", 10**6)        # the check runs when this test says
    monkeypatch.setattr(pull, "UNREAD_WAIT_S", 0.05)
    want = every_record(data)
    out = tmp_path / "out"
    said: list[str] = []
    cable = Cable(tmp_path).plug()
    try:
        with RunningUnit(data, cable.unit_path, local("2026-11-16T06:05"), ward=ward) as u:
            def port() -> client.Transport:
                return client.SerialTransport(str(cable.laptop_path))

            got = pull.pull(port, out, lambda unit, n: SECRET, say=said.append, deadline_s=120)
            _, lines, verdict = pull.write_outputs(out, got)
            # Each get the unit answered salvaged nothing (counted), and named the files.
            assert u.svc is not None and all(s.bytes_read == 0 for s in u.svc.salvaged)
            tries = [s for s in u.svc.salvaged if s.deferred]
            assert len(tries) >= 1 + pull.UNREAD_TRIES               # the hello, then the first get and its tries

            assert [e["file"] for e in got.unread] == names
            lo, hi = got.unread[0]["first_seq"], got.unread[0]["last_seq"]
            assert all((e["first_seq"], e["last_seq"]) == (lo, hi) for e in got.unread)
            lacking = set(range(lo, hi + 1))
            held = {s for s, _ in want}
            assert lacking and lacking <= held
            export = (out / f"{got.unit}-journal.jsonl").read_text().splitlines()
            header = json.loads(export[0])
            assert [x["file"] for x in header["unreadable"]] == names
            assert all(x["problem"].startswith("not read yet") for x in header["unreadable"])
            pulled = {json.loads(x)["seq"] for x in export[1:]}
            assert pulled.isdisjoint(lacking) and pulled | lacking >= held      # no silent gap
            assert not verdict.ok
            text = "\n".join(verdict.report())
            assert all(n in text for n in names) and "not read yet" in text
            assert sum(x.startswith("NOT READ YET on the unit: ") for x in lines) == 1
            line = next(x for x in lines if x.startswith("NOT READ YET"))
            assert f"records {lo}–{hi}" in line and "pull again later" in line and "ward stick" in line
            assert got.broken is not None and got.broken.at == lo and "not read yet" in got.broken.problem

            # The steps left them to the unit's journal check, which reads them once its own passes are
            # over, at most every CARRY_S (here: its passes over, the last CARRY_S ago; on the loop in
            # simulation, a worker thread on a Pi) ...
            assert [p.name for p in salvage.wanted(data)] == names
            check = next(s for s in u.sim.unit.sources if isinstance(s, journal_check.JournalCheck))

            def passes_over(now: Any) -> None:
                check.due, check.read_at = None, now.mono - journal_check.CARRY_S

            u.on_loop(passes_over)
            wait_for(lambda: bool(check.reads), timeout=60, what="the journal check's read")
            assert check.reads[0].read == names[::-1] and not salvage.wanted(data)
            assert not check.passes                                    # a read for the link, not a check
            # ... and the next pull gives every record, from the unit's cache (its loop still reads none).
            again = pull.pull(port, out, lambda unit, n: SECRET, say=said.append, deadline_s=120)
            _, lines2, verdict2 = pull.write_outputs(out, again)
            assert again.unread == [] and again.broken is None
            assert all(s.bytes_read == 0 for s in u.svc.salvaged)
    finally:
        cable.unplug()
    export = (out / f"{again.unit}-journal.jsonl").read_text().splitlines()
    header = json.loads(export[0])
    assert "unreadable" not in header
    pulled2 = [(json.loads(x)["seq"], json.loads(x)["hash"]) for x in export[1:]]
    assert set(want) <= set(pulled2)
    assert [s for s, _ in pulled2] == list(range(1, len(pulled2) + 1))
    assert not any(x.startswith("NOT READ YET") for x in lines2)
    assert verdict2.ok, verdict2.report()


class NamesUnread:
    """A unit whose journal holds records 1-20 but has not read the file of 11-14: a page from
    11 names it and gives nothing (as one that named as many files as it may), one from 15 on
    gives the rest."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        self.records = records

    def request(self, verb: str, *args: str) -> frames.Reply:
        first, limit = int(args[0]), int(args[1])
        head = (self.records[-1]["seq"], self.records[-1]["hash"])
        if 11 <= first <= 14:
            b = batch.pack([], head=head, lean=False, unread=[{"segment": 3, "file": "journal-000003.sqlite",
                                                                 "size": 4096, "first_seq": 11, "last_seq": 14,
                                                                 "problem": NOT_READ_YET}])
        else:
            recs = [r for r in self.records if r["seq"] >= first and not 11 <= r["seq"] <= 14][:limit]
            b = batch.pack(recs, head=head, lean="full" not in args)
        return frames.Reply(1, "batch", b.meta, b.payload)


def test_the_laptop_goes_on_past_a_range_named_not_read_yet(tmp_path: Path) -> None:
    j = Journal(tmp_path / "unit", ZoneInfo("UTC"), "b")
    t = datetime(2026, 11, 24, 9, tzinfo=UTC)
    for i in range(20):
        j.append(Record(T.PRESS, data={"i": i}), Instant(t + timedelta(seconds=i), float(i)), "rtc")
    recs = list(j.records())
    j.close()
    store = pull.JournalCopy(tmp_path / "laptop", "u").open()
    store.append(recs[:10])
    unread = pull.Unread()
    head, brk = pull.salvage(NamesUnread(recs), store, None, {}, unread)       # type: ignore[arg-type]
    assert head[0] == 20 and store.head[0] == 10
    assert brk is not None and brk.at == 11 and "not read yet" in brk.problem
    assert [r["seq"] for r in brk.records] == list(range(15, 21))
    assert [(e["first_seq"], e["last_seq"]) for e in unread.lacking(store.head[0])] == [(11, 14)]
