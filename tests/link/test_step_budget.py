"""A serial request's salvage on the unit's loop is bounded per step (``salvage.STEP_BYTES``),
whatever the data directory holds, and what a step could not read is named, never skipped.

The data directory: a unit's three days in small segments, five of them crafted (their header
broken, so SQLite refuses them, and 2 MiB of leaf pages whose every cell pointer names one cell
with a long overflow chain appended: tests/rigs/hostile.py); their own records are still in
them, so salvage gives them back once it reads the file. The step budget has room for one
crafted file. Counted, not timed: the bytes and pages each step's salvage read
(``salvage.Budget``), the records given and the ranges named.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bedside import secret
from bedside.core import config
from bedside.journal import salvage
from bedside.journal.journal import Journal
from bedside.journal.segments import segment_files
from bedside.link import batch
from bedside.link.on_loop import NOT_READ_YET, LinkService
from bedside.unit import journal_check, simulate
from tests.rigs import hostile
from tests.rigs.serial_rig import unit_with_days

CFG = config.Config()
CRAFTED = 5
CRAFTED_BYTES = 2 * 2**20


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CFG.tz)


@pytest.fixture(scope="module")
def healthy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three days of a unit in segments of 24 KiB (nine records each, 21 segments)."""
    d = unit_with_days(tmp_path_factory.mktemp("budget") / "unit", local("2026-11-14T06:00"),
                       local("2026-11-17T06:00"), segment_bytes=24 * 1024)
    assert len(segment_files(d)) >= CRAFTED + 3
    return d


def every_record(data: Path) -> list[dict[str, Any]]:
    """The whole journal as a reader with no salvage budget gives it (``bedside log export``)."""
    salvage.forget()
    j = Journal(data, CFG.tz, "reader", readonly=True)
    try:
        return list(j.records())
    finally:
        j.close()
        salvage.forget()


def crafted(healthy: Path, to: Path) -> list[str]:
    """A copy of ``healthy`` with segments 2-6 crafted; their names."""
    shutil.copytree(healthy, to)
    names = []
    for _, path in segment_files(to)[1:1 + CRAFTED]:
        hostile.craft_segment(path, CRAFTED_BYTES)
        names.append(path.name)
    return names


@pytest.fixture
def hostile_dir(healthy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, list[str]]]:
    data = tmp_path / "unit"
    names = crafted(healthy, data)
    monkeypatch.setattr(salvage, "START_BYTES", 1)                       # the start reads none of them
    monkeypatch.setattr(salvage, "STEP_BYTES", CRAFTED_BYTES + CRAFTED_BYTES // 2)   # room for one a step
    monkeypatch.setattr(journal_check, "DELAY_S", 10**6)                  # no check in this test
    salvage.forget()
    yield data, names
    salvage.forget()


def service(data: Path) -> tuple[Any, LinkService]:
    sim = simulate.build(CFG, data, local("2026-11-17T06:05"))
    sim.unit.start()
    svc = LinkService(sim.unit, secret.load(data))
    svc.attach(sim.clock.now())
    svc.unlock_typed(1, True, sim.clock.now())
    return sim, svc


def test_one_step_reads_at_most_its_budget_and_names_what_it_left(hostile_dir: tuple[Path, list[str]]) -> None:
    data, names = hostile_dir
    want = every_record(data)          # (read with no budget, then forgotten: the unit starts cold)
    sim, svc = service(data)
    try:
        now = sim.clock.now()
        hello = svc.hello(1, "n", now)
        hello_spent = svc.salvaged[-1]
        page = svc.page(1, 1, 256, now)
        page_spent = svc.salvaged[-1]
        steps = list(svc.salvaged)
    finally:
        sim.close()
    # Every step (attach, hello, page): at most the budget's bytes, one crafted file, its page reads.
    for spent in steps:
        assert spent.bytes_read <= salvage.STEP_BYTES
        assert len(spent.read) <= 1
        assert spent.pages_read <= 2 * salvage.STEP_BYTES // 4096 + 16 * salvage._SAMPLES
    assert sum(len(s.read) for s in steps) == 3              # attach, hello and the page: one file each
    # The hello names the files its step left, with their sizes and what to do.
    assert [u["file"] for u in hello["unread"]] == hello_spent.deferred == names[2:]
    assert all(u["size"] == CRAFTED_BYTES and u["problem"] == NOT_READ_YET for u in hello["unread"])
    # The page: the files it could not read named with the records they hold; every other record given.
    assert [u["file"] for u in page.unread] == page_spent.deferred == names[3:]
    given = {r["seq"] for r in page.records}
    lacking = {s for u in page.unread for s in range(u["first_seq"], u["last_seq"] + 1)}
    assert given.isdisjoint(lacking)
    assert given | lacking == set(range(1, page.head[0] + 1)) >= {r["seq"] for r in want}   # no silent gap
    # (Three files in a row, none read: each names the range they hold together, up to the next file read.)
    assert {(u["first_seq"], u["last_seq"]) for u in page.unread} == {(min(lacking), max(lacking))}
    assert len(lacking) >= 9 * len(page.unread)
    # On the wire: the batch's header carries them (added only when there are any).
    meta = batch.pack(page.records, head=page.head, unread=page.unread).meta
    assert meta["unread"] == [dict(u) for u in page.unread]
    assert "unread" not in batch.pack(page.records, head=page.head).meta


def test_later_steps_read_on_and_a_read_file_is_served_from_the_cache(
        hostile_dir: tuple[Path, list[str]]) -> None:
    """Each step reads one more file; once read (by a step or the check), its records come at no cost."""
    data, _names = hostile_dir
    want = every_record(data)
    sim, svc = service(data)
    try:
        now = sim.clock.now()
        pages = [svc.page(1, 1, 256, now) for _ in range(CRAFTED)]
        spent = list(svc.salvaged)[-CRAFTED:]
    finally:
        sim.close()
    assert [len(s.read) for s in spent] == [1, 1, 1, 1, 0]    # the attach read the first: a page each the rest
    assert [len(p.unread) for p in pages] == [3, 2, 1, 0, 0]
    assert all(s.bytes_read <= salvage.STEP_BYTES for s in spent)
    assert not pages[-1].unread
    assert [r["seq"] for r in pages[-1].records] == list(range(1, pages[-1].head[0] + 1))
    assert {r["seq"] for r in pages[-1].records} >= {r["seq"] for r in want}


def test_a_healthy_journal_is_read_with_no_salvage_and_named_nothing(healthy: Path, tmp_path: Path) -> None:
    data = tmp_path / "unit"
    shutil.copytree(healthy, data)
    sim, svc = service(data)
    try:
        now = sim.clock.now()
        hello = svc.hello(1, "n", now)
        page = svc.page(1, 1, 256, now)
    finally:
        sim.close()
    assert "unread" not in hello and not page.unread
    assert all(s.bytes_read == 0 and not s.deferred for s in svc.salvaged)
    assert [r["seq"] for r in page.records] == list(range(1, page.head[0] + 1))


def test_files_left_unread_are_read_by_the_check_in_order_at_most_every_carry(
        hostile_dir: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """What a page left unread the journal check reads (once its own passes are over), at most
    ``CHECK_BYTES`` a time and every ``CARRY_S``, the earliest files first; the next page then
    gives their records with no salvage on the loop."""
    data, names = hostile_dir
    monkeypatch.setattr(salvage, "CHECK_BYTES", 2 * CRAFTED_BYTES)            # two files a read
    sim, svc = service(data)
    try:
        check = next(s for s in sim.unit.sources if isinstance(s, journal_check.JournalCheck))
        check.due = None                                     # (its own passes are over)
        t0 = sim.clock.now()
        page = svc.page(1, 1, 256, t0)
        assert [u["file"] for u in page.unread] == names[2:]
        assert [p.name for p in salvage.wanted(data)] == names[2:]
        sim.advance(t0.wall + timedelta(seconds=journal_check.CARRY_S - 60))
        assert check.reads == []                             # not before CARRY_S after the start
        sim.advance(t0.wall + timedelta(seconds=journal_check.CARRY_S + 60))
        assert [r.read for r in check.reads] == [names[2:4][::-1]]      # the earliest two, the first read last
        assert [p.name for p in salvage.wanted(data)] == names[4:]
        svc.unlock_typed(1, True, sim.clock.now())            # (the link locks itself after ten idle minutes)
        page = svc.page(1, 1, 256, sim.clock.now())
        # The two the check read come from the cache; the step reads the last one itself (room for one).
        assert not page.unread and svc.salvaged[-1].read == names[4:] and not salvage.wanted(data)
        assert {r["seq"] for r in page.records} == set(range(1, page.head[0] + 1))
        sim.advance(t0.wall + timedelta(seconds=3 * journal_check.CARRY_S))
        assert len(check.reads) == 1                          # nothing left: no more reads
    finally:
        sim.close()


def test_a_page_that_would_name_too_many_files_ends_before_the_next(
        hostile_dir: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``UNREAD_MAX`` files named, a page ends where the next one would be: no record after an
    unnamed file's records is given."""
    from bedside.link import on_loop

    data, names = hostile_dir
    monkeypatch.setattr(on_loop, "UNREAD_MAX", 1)
    sim, svc = service(data)
    try:
        page = svc.page(1, 1, 256, sim.clock.now())
    finally:
        sim.close()
    [u] = page.unread
    assert u["file"] == names[2]
    assert page.records and all(r["seq"] < u["first_seq"] for r in page.records)
