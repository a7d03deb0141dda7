from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.core.events import Instant, Record
from bedside.journal import chain
from bedside.journal.journal import Journal
from bedside.journal.segments import JournalError

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def fill(j: Journal, n: int) -> None:
    for i in range(n):
        j.append(Record("press", data={"kind": "short", "i": i}), Instant(T0 + timedelta(seconds=i), 10.0 + i), "rtc")


def test_records_chain_and_survive_reopening(tmp_path: Path, cfg) -> None:  # type: ignore[no-untyped-def]
    j = Journal(tmp_path, cfg.tz, "boot-1")
    fill(j, 5)
    rec = j.append(Record("done", "2026-11-24T09:00 routine", T0, {"reps": 60}), Instant(T0, 99.5), "rtc")
    assert rec["seq"] == 6 and rec["due"] == "2026-11-24T09:00:00.000+00:00" and rec["mono_ms"] == 99500
    j.close()
    j = Journal(tmp_path, cfg.tz, "boot-2")
    assert j.head()[0] == 6
    j.append(Record("start"), Instant(T0, 1.0), "rtc")
    recs = list(j.records())
    assert [r["seq"] for r in recs] == list(range(1, 8))
    prev = chain.GENESIS
    for r in recs:
        assert r["prev"] == prev
        assert chain.record_hash(r) == r["hash"]
        prev = r["hash"]
    assert recs[-1]["boot"] == "boot-2"


def test_update_and_delete_are_refused(tmp_path: Path, cfg) -> None:  # type: ignore[no-untyped-def]
    j = Journal(tmp_path, cfg.tz, "b")
    fill(j, 3)
    j.close()
    db = sqlite3.connect(tmp_path / "journal-000001.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE records SET type='done' WHERE seq=2")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM records WHERE seq=3")


def test_journal_is_wal_with_full_sync(tmp_path: Path, cfg) -> None:  # type: ignore[no-untyped-def]
    j = Journal(tmp_path, cfg.tz, "b")
    assert j.db is not None
    assert j.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert j.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_edit_breaks_the_chain(tmp_path: Path, cfg) -> None:  # type: ignore[no-untyped-def]
    j = Journal(tmp_path, cfg.tz, "b")
    fill(j, 4)
    recs = list(j.records())
    recs[1]["kind"] = "long"
    assert chain.record_hash(recs[1]) != recs[1]["hash"]


def test_readonly_missing_journal_is_a_clear_error(tmp_path: Path, cfg) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(JournalError, match="no journal"):
        Journal(tmp_path / "nowhere", cfg.tz, "b", readonly=True)


def test_damaged_file_is_a_clear_error(tmp_path: Path, cfg) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "journal-000001.sqlite").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(JournalError, match="damaged"):
        Journal(tmp_path, cfg.tz, "b")


def test_recent_gives_the_core_its_view(tmp_path: Path, cfg) -> None:  # type: ignore[no-untyped-def]
    j = Journal(tmp_path, cfg.tz, "b")
    fill(j, 10)
    j.append(Record("prompt", "2026-11-24T09:00 routine", T0, {"kind": "routine"}), Instant(T0, 50.0), "rtc")
    past = j.recent(limit=3)
    assert [p.seq for p in past] == [9, 10, 11]
    assert past[-1].session == "2026-11-24T09:00 routine"
    assert past[-1].data["due"] == "2026-11-24T09:00:00.000+00:00"
    assert past[-1].time == T0
    assert json.loads(json.dumps(past[-1].data))["kind"] == "routine"
