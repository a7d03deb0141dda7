"""A heartbeat the unit did not write (a naive time, a leap second, a time in 2099) never
stops a start or bends the record: a slot with a time no clock gives is passed over, and one
later than a trusted clock's now is refused by name."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bedside.core import config
from bedside.journal import heartbeat
from bedside.journal.journal import Journal
from bedside.unit import host, simulate
from tests.conftest import journal_records

CFG = config.Config()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CFG.tz)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("unit")
    sim = simulate.build(CFG, data, local("2026-11-24T06:58"))
    sim.unit.run(until=local("2026-11-24T08:05"))
    sim.close()
    return data


def with_beat(day: Path, tmp_path: Path, when: datetime) -> Path:
    import shutil

    data = tmp_path / "d"
    shutil.copytree(day, data)
    (data / heartbeat.FILE_NAME).unlink(missing_ok=True)
    j = Journal(data, CFG.tz, "reader", readonly=True)
    seq, h = j.head()
    j.close()
    heartbeat.write(data, heartbeat.Beat(when, "before", 5_000_000, seq, h))
    return data


@pytest.mark.parametrize("when", [datetime(2026, 11, 24, 9, 0), datetime(2099, 1, 1, tzinfo=UTC)])
def test_a_heartbeat_no_clock_wrote_does_not_stop_or_bend_the_start(day: Path, tmp_path: Path, when: datetime) -> None:
    data = with_beat(day, tmp_path, when)
    sim = simulate.build(CFG, data, local("2026-11-24T10:30"))
    sim.unit.start()
    assert sim.unit.state is not None
    sim.unit.run(until=local("2026-11-24T11:01"))
    sim.close()
    recs = journal_records(data)
    assert not any(r["time"] >= "2027" for r in recs)
    loss = [r for r in recs if r["type"] == "power_loss"]
    assert loss and all(not str(r.get("last_known", "")).startswith("2099") for r in loss)
    if when.tzinfo is not None:
        assert any(r["type"] == "fault" and "heartbeat's time" in r.get("problem", "") for r in recs)
    assert any(r["type"] == "prompt" and r["time"] >= "2026-11-24T11:00" for r in recs)


def test_a_naive_or_leap_second_heartbeat_slot_is_passed_over(tmp_path: Path) -> None:
    heartbeat.write(tmp_path, heartbeat.Beat(datetime(2026, 11, 24, 9, 0), "b", 1, 1, "a" * 64))
    assert heartbeat.read(tmp_path) is None


def test_a_clock_in_the_next_century_is_distrusted(tmp_path: Path) -> None:
    def quality(when: datetime) -> str:
        return host.detect_time_quality(when, root=tmp_path, synced=lambda: True)

    assert quality(datetime(2150, 1, 1, tzinfo=UTC)) == "distrusted"
    assert quality(datetime(2026, 11, 24, tzinfo=UTC)) == "ntp"


def _infinite_beat(data: Path, seq: object, mono_ms: object) -> None:
    """A heartbeat slot whose check holds (anyone can compute it) and whose numbers are not
    whole: JSON's ``Infinity`` and ``1e400`` parse to a float no int() takes (OverflowError)."""
    import json

    body = {"time": "2026-11-24T09:00:00+00:00", "boot": "b", "mono_ms": mono_ms, "seq": seq, "hash": "ab", "n": 1}
    body["check"] = heartbeat._check(dict(body))
    (data / heartbeat.FILE_NAME).write_bytes(json.dumps(body).encode().ljust(heartbeat.SLOT - 1) + b"\n")


@pytest.mark.parametrize(("seq", "mono_ms"), [(3, float("inf")), (float("inf"), 5), (1e300, 5), (2**70, 5),
                                              (3, 2**64), (3, 1.5), (True, 5)])
def test_a_heartbeat_of_infinite_numbers_is_passed_over(day: Path, tmp_path: Path, seq: object,
                                                        mono_ms: object) -> None:
    """An OverflowError before: from int() of Infinity when the heartbeat was read (at start, by
    verify, by the check), and from SQLite for a seq of 1e300 (no INTEGER holds it)."""
    import shutil

    data = tmp_path / "d"
    shutil.copytree(day, data)
    _infinite_beat(data, seq, mono_ms)
    assert heartbeat.read(data) is None
    sim = simulate.build(CFG, data, local("2026-11-24T10:30"))
    sim.unit.start()
    assert sim.unit.state is not None
    sim.unit.run(until=local("2026-11-24T11:01"))
    sim.close()
    assert any(r["type"] == "prompt" and r["time"] >= "2026-11-24T11:00" for r in journal_records(data))


def test_an_export_marker_of_infinite_seq_is_no_marker(tmp_path: Path) -> None:
    """``exported.json`` with a seq of ``1e400``: an OverflowError in retention (on the loop) before."""
    from bedside.journal import retention

    (tmp_path / retention.MARKER).write_text('{"seq": 1e400, "hash": "x"}')
    assert retention.read_marker(tmp_path) is None
    (tmp_path / retention.MARKER).write_text('{"seq": Infinity, "hash": "x"}')
    assert retention.read_marker(tmp_path) is None
