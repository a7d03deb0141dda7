"""What SQLite itself is given to read is bounded as salvage is: a stored value past salvage's
longest row is an error, not an allocation; a WAL or rollback journal larger than the unit ever
leaves beside a segment, or a file larger than any segment, is never handed to SQLite (which
would read a WAL whole before its first answer, and copy it into the file at the first commit)
but read from its raw pages within salvage's limits. The valid records beside them are still
given, and what was passed over is named."""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
import tracemalloc
from datetime import datetime
from pathlib import Path

import pytest

from bedside.core import config
from bedside.journal import salvage
from bedside.journal.journal import Journal
from bedside.journal.segments import (
    MAX_FILE_BYTES,
    MAX_VALUE_BYTES,
    MAX_WAL_BYTES,
    NotASegment,
    connect_reader,
    segment_files,
)
from bedside.unit import simulate
from tests.conftest import journal_records

MIB = 2**20


def a_unit(data: Path, hours: int = 2) -> list[int]:
    cfg = config.Config()
    start = datetime(2026, 11, 24, 6, 58, tzinfo=cfg.tz)
    sim = simulate.build(cfg, data, start)
    sim.unit.run(until=start.replace(hour=6 + hours))
    sim.close()
    return [r["seq"] for r in journal_records(data)]


def test_a_stored_value_past_the_length_limit_is_named_and_never_loaded(tmp_path: Path) -> None:
    seqs = a_unit(tmp_path)
    active = segment_files(tmp_path)[-1][1]
    db = sqlite3.connect(active, isolation_level=None)
    body = json.dumps({"seq": seqs[-1] + 1, "pad": "x" * (3 * MAX_VALUE_BYTES)})
    db.execute("INSERT INTO records (seq, time, type, session, body, hash) VALUES (?, ?, ?, ?, ?, ?)",
               (seqs[-1] + 1, "2026-11-24T09:00:00+00:00", "press", None, body, "0" * 64))
    db.close()
    del body
    salvage.forget()
    tracemalloc.start()
    try:
        j = Journal(tmp_path, config.Config().tz, "reader", readonly=True)
        got = [r["seq"] for r in j.records()]
        peak = tracemalloc.get_traced_memory()[1]
        j.close()
    finally:
        tracemalloc.stop()
    assert got == seqs                                   # every record beside it still given
    assert any(str(seqs[-1] + 1) in e for e in j.read_errors)         # and the crafted row named
    # The 24 MiB value was never read whole (salvage refuses a row past MAX_ROW as well).
    assert peak < MAX_VALUE_BYTES + 4 * MIB, peak


def test_an_active_segment_with_a_wal_larger_than_the_unit_leaves_is_not_given_to_sqlite(tmp_path: Path) -> None:
    seqs = a_unit(tmp_path)
    active = segment_files(tmp_path)[-1][1]
    wal = active.with_name(active.name + "-wal")
    keep = tmp_path / "kept"
    keep.mkdir()
    db = sqlite3.connect(active, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("CREATE TABLE junk (b BLOB)")
    for _ in range((MAX_WAL_BYTES >> 20) + 4):
        db.execute("INSERT INTO junk VALUES (?)", (b"\x5a" * MIB,))
    # The files as a cut power leaves them: a WAL of valid frames, never checkpointed.
    shutil.copyfile(active, keep / "db")
    shutil.copyfile(wal, keep / "wal")
    db.close()
    shutil.copyfile(keep / "db", active)
    shutil.copyfile(keep / "wal", wal)
    sizes = (active.stat().st_size, wal.stat().st_size)
    assert sizes[1] > MAX_WAL_BYTES

    cfg = config.Config()
    start = datetime(2026, 11, 24, 12, 0, tzinfo=cfg.tz)
    salvage.forget()
    sim = simulate.build(cfg, tmp_path, start)
    sim.unit.run(until=start.replace(hour=13, minute=5))
    sim.close()
    # SQLite never read the WAL into the file (its first commit would have checkpointed it).
    assert (active.stat().st_size, wal.stat().st_size) == sizes
    after = journal_records(tmp_path)
    assert [r["seq"] for r in after][:len(seqs)] == seqs
    faults = [r for r in after if r["type"] == "fault" and "WAL file is" in str(r.get("problem", ""))]
    assert faults and "more than the unit ever leaves" in faults[0]["problem"]
    assert any(r["type"] == "prompt" and r["seq"] > seqs[-1] for r in after)      # it went on prompting
    assert len(segment_files(tmp_path)) == 2


def test_a_file_larger_than_any_segment_is_not_given_to_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "journal-000001.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE records (seq INTEGER PRIMARY KEY, body TEXT)")
    db.commit()
    db.close()
    with open(path, "r+b") as f:
        f.truncate(MAX_FILE_BYTES + 4096)                # sparse: no disk used
    with pytest.raises(NotASegment, match="more than any segment the unit writes"):
        connect_reader(path)


def test_a_rollback_journal_larger_than_any_segment_is_not_copied(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journal-000001.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE records (seq INTEGER PRIMARY KEY, body TEXT)")
    db.commit()
    db.close()
    hot = path.with_name(path.name + "-journal")
    with open(hot, "wb") as f:
        f.truncate(MAX_FILE_BYTES + 4096)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(NotASegment, match="rollback journal is 64 MiB, more than the unit ever leaves"):
        connect_reader(path)
    assert list(scratch.iterdir()) == []                 # no private copy was made of it


def test_a_file_numbered_last_is_refused_not_followed_by_a_name_no_reader_lists(tmp_path: Path) -> None:
    """A crafted ``journal-999999.sqlite``: the segment after it would be ``journal-1000000.sqlite``,
    which no listing matches, so every record written there was lost from sight and overwritten
    at each start. The unit refuses instead, says so, and records again once the file is moved."""
    from bedside.journal.segments import LAST_NUMBER, segment_path
    from bedside.journal.store import NOTICE

    seqs = a_unit(tmp_path)
    crafted = segment_path(tmp_path, LAST_NUMBER)
    crafted.write_bytes(b"x" * 100)
    cfg = config.Config()
    start = datetime(2026, 11, 24, 10, 0, tzinfo=cfg.tz)
    sim = simulate.build(cfg, tmp_path, start)
    sim.unit.run(until=start.replace(hour=12))
    notice, error = sim.unit.store.notice, str(sim.unit.store.error)
    sim.close()
    assert not (tmp_path / f"journal-{LAST_NUMBER + 1}.sqlite").exists()
    assert notice == NOTICE                                      # "Log not saved: tell nurse"
    assert crafted.name in error and "move that file out of the data directory" in error
    assert [r["seq"] for r in journal_records(tmp_path)] == seqs   # nothing written where no one reads

    crafted.unlink()
    sim = simulate.build(cfg, tmp_path, start.replace(hour=13))
    sim.unit.run(until=start.replace(hour=14, minute=5))
    sim.close()
    after = journal_records(tmp_path)
    assert [r["seq"] for r in after][:len(seqs)] == seqs and len(after) > len(seqs)
    assert any(r["type"] == "power_loss" for r in after[len(seqs):])     # the time without a journal is named
