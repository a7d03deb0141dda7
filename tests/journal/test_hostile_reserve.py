"""A crafted or damaged ``outage.reserve`` never stops the unit starting: each slot and kept
record is checked at the boundary, what fails is refused by name in a ``fault`` record, and
the valid records beside it are still written (issue: a generation that was not a number made
the daemon exit 70 at every start; a record dated 2099 went into the chain)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bedside.core import config
from bedside.core.digest import sha256
from bedside.journal import outage
from bedside.journal.journal import Journal
from bedside.unit import simulate
from tests.conftest import journal_records

CFG = config.Config()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CFG.tz)


def slot(body: Any) -> bytes:
    payload = json.dumps(body).encode() if not isinstance(body, bytes) else body
    return outage._MAGIC + len(payload).to_bytes(4, "big") + sha256(payload).digest() + payload


def write_reserve(data: Path, *slots: bytes) -> None:
    raw = bytearray(outage.SIZE)
    for i, s in enumerate(slots):
        raw[i * outage._SLOT:i * outage._SLOT + len(s)] = s
    (data / outage.FILE_NAME).write_bytes(bytes(raw))


def kept(wall: str, type_: str = "press", mono: float = 100.0) -> dict[str, Any]:
    return {"type": type_, "session": None, "due": None, "data": {"n": 1}, "wall": wall, "mono": mono,
            "tq": "simulated"}


def outage_body(head: tuple[int, str], records: list[Any], gen: Any = 1) -> dict[str, Any]:
    return {"gen": gen, "boot": "before", "head": [head[0], head[1]], "why": "the card is full",
            "since": "2026-11-24T07:10:00+00:00", "since_mono": 50.0, "since_tq": "simulated",
            "until": "2026-11-24T07:20:00+00:00", "records": records, "more": {}}


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("unit")
    sim = simulate.build(CFG, data, local("2026-11-24T06:58"))
    sim.unit.run(until=local("2026-11-24T07:05"))
    sim.close()
    return data


def start_with(day: Path, tmp_path: Path, *slots_for_head: Any) -> list[dict[str, Any]]:
    import shutil

    data = tmp_path / "d"
    shutil.copytree(day, data)
    j = Journal(data, CFG.tz, "reader", readonly=True)
    head = j.head()
    j.close()
    write_reserve(data, *[s(head) for s in slots_for_head])
    sim = simulate.build(CFG, data, local("2026-11-24T08:30"))
    sim.unit.start()
    assert sim.unit.state is not None                     # it started, and it prompts
    sim.unit.run(until=local("2026-11-24T09:01"))
    sim.close()
    recs = journal_records(data)
    assert any(r["type"] == "prompt" and r["time"] >= "2026-11-24T09:00" for r in recs)
    assert (data / outage.FILE_NAME).read_bytes() == bytes(outage.SIZE)      # cleared either way
    return recs


def refusals(recs: list[dict[str, Any]]) -> list[str]:
    return [p for r in recs if r["type"] == "fault" for p in r.get("reserve_refused", [])]


def test_a_generation_that_is_not_a_number_is_refused_and_the_other_slot_is_written(day: Path, tmp_path: Path) -> None:
    recs = start_with(day, tmp_path,
                      lambda h: slot(outage_body(h, [kept("2026-11-24T07:12:00+00:00")], gen=["x"])),
                      lambda h: slot(outage_body(h, [kept("2026-11-24T07:15:00+00:00")], gen=2)))
    assert any("slot 0: its generation is not a whole number" in p for p in refusals(recs))
    pressed = [r for r in recs if r["type"] == "press" and r.get("n") == 1]
    assert [r["time"][:16] for r in pressed] == ["2026-11-24T07:15"]


@pytest.mark.parametrize("gen", [None, "abc", 1.5, float("inf"), True, -1, {"a": 1}])
def test_every_kind_of_generation(tmp_path: Path, gen: Any) -> None:
    write_reserve(tmp_path, slot(outage_body((3, "a" * 64), [], gen=gen)))
    got = outage.read_checked(tmp_path)
    assert got.body is None and got.refused and "generation" in got.refused[0]


def test_a_kept_record_that_is_not_an_object_is_refused_and_the_rest_written(day: Path, tmp_path: Path) -> None:
    recs = start_with(day, tmp_path, lambda h: slot(outage_body(h, [
        1, "press", None, kept("2026-11-24T07:16:00+00:00"), {"type": "press", "wall": "x", "mono": 1, "tq": "s"}])))
    named = refusals(recs)
    assert any("record 0: not a record" in p for p in named) and any("record 4" in p for p in named)
    assert [r["time"][:16] for r in recs if r["type"] == "press" and r.get("n") == 1] == ["2026-11-24T07:16"]
    cleared = next(r for r in recs if r["type"] == "fault_cleared" and r.get("from_reserve"))
    assert cleared["written_late"] == 1


def test_a_kept_record_dated_2099_is_refused_and_the_clock_stays_trusted(day: Path, tmp_path: Path) -> None:
    recs = start_with(day, tmp_path, lambda h: slot(outage_body(h, [
        kept("2026-11-24T07:16:00+00:00"), kept("2099-01-01T00:00:00+00:00"), kept("2026-11-24T23:59:60+00:00")])))
    assert not any(r["time"] >= "2027" for r in recs)
    named = refusals(recs)
    assert any("record 1" in p and "later than" in p for p in named)
    assert any("record 2" in p and "leap second" in p for p in named)
    assert all(r.get("tq") == "simulated" for r in recs if r["time"] > "2026-11-24T08:30")   # clock not distrusted


@pytest.mark.parametrize("payload", [
    b"[" * 30000 + b"]" * 30000,                        # nesting past the parser's stack
    b"\xff\xfe not json",
    b"[1, 2, 3]",
    json.dumps({"gen": 1, "head": [1, "short"], "records": []}).encode(),
    json.dumps({"gen": 1, "head": [1, "a" * 64], "records": {"a": 1}}).encode(),
])
def test_slots_that_are_not_an_outage_are_refused_by_name(tmp_path: Path, payload: bytes) -> None:
    write_reserve(tmp_path, slot(payload[:outage._SLOT - outage._HEAD]))
    got = outage.read_checked(tmp_path)
    assert got.body is None and got.refused and got.refused[0].startswith("slot 0: ")


def test_the_reserve_the_unit_writes_reads_back_whole(tmp_path: Path) -> None:
    (tmp_path / outage.FILE_NAME).write_bytes(bytes(outage.SIZE))
    body = outage_body((7, "b" * 64), [kept("2026-11-24T07:12:00+00:00", "prompt")])
    assert outage.write(tmp_path, body) is not None
    got = outage.read_checked(tmp_path, datetime.fromisoformat("2026-11-24T08:00:00+00:00"))
    assert got.refused == [] and got.head == (7, "b" * 64) and [r.type for r in got.records] == ["prompt"]


def test_no_reserve_yet_is_nothing_to_refuse(tmp_path: Path) -> None:
    got = outage.read_checked(tmp_path)
    assert (got.body, got.refused) == (None, [])


def test_a_reserve_that_is_a_directory_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / outage.FILE_NAME).mkdir()
    got = outage.read_checked(tmp_path)
    assert got.body is None and got.refused and "cannot be read" in got.refused[0]


def test_a_kept_record_holding_nan_is_refused_and_the_records_after_it_written(day: Path, tmp_path: Path) -> None:
    """A record whose details hold NaN (JSON's ``NaN``, which Python's parser takes) could not be
    written into the chain (which holds JSON only), and it stopped the records after it."""
    bad = {**kept("2026-11-24T07:14:00+00:00"), "data": {"n": 2, "x": float("nan")}}
    recs = start_with(day, tmp_path, lambda h: slot(outage_body(h, [bad, kept("2026-11-24T07:16:00+00:00")])))
    assert any("record 0" in p and "NaN" in p for p in refusals(recs))
    assert [r["time"][:16] for r in recs if r["type"] == "press" and r.get("n") == 1] == ["2026-11-24T07:16"]
    assert not any("could not all be written" in str(r.get("problem")) for r in recs)


@given(sizes=st.lists(st.integers(0, 900), max_size=700), hint=st.none() | st.integers(-2, 700))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_reserve_holds_the_longest_prefix_that_fits_whatever_the_hint(tmp_path: Path, sizes: list[int],
                                                                         hint: int | None) -> None:
    """The records that go in are the longest first run of them that fits a slot (found by
    halving, or at once with the store's hint); every record cut is counted by type."""
    (tmp_path / outage.FILE_NAME).write_bytes(bytes(outage.SIZE))
    records = [{**kept("2026-11-24T07:12:00+00:00", "press" if i % 3 else "prompt"), "data": {"pad": "x" * n}}
               for i, n in enumerate(sizes)]
    body = outage_body((7, "b" * 64), records)
    k = outage.write(tmp_path, body, hint=hint)
    looked = records[:outage.MOST_RECORDS]

    def fits(n: int) -> bool:
        cut: dict[str, int] = {}
        for r in records[n:]:
            cut[r["type"]] = cut.get(r["type"], 0) + 1
        payload = json.dumps({**body, "records": records[:n], "more": cut}, sort_keys=True).encode()
        return len(payload) <= outage._SLOT - outage._HEAD

    assert k is not None and fits(k) and (k == len(looked) or not fits(k + 1))
    got = outage.read_checked(tmp_path)
    assert [r.data for r in got.records] == [r["data"] for r in records[:k]]
    assert len(got.records) + sum(got.more.values()) == len(records)
