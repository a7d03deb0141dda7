"""``bedside pull`` writes its three files (the export, the sessions CSV, the report) holding a
record of the laptop's copy at a time, not the copy (issue 22), and they are the files made
whole in memory before (``bundle.make``), byte for byte."""

from __future__ import annotations

import json
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any

from bedside.core.records import T
from bedside.laptop import pull
from bedside.link import batch
from bedside.report import bundle
from tests.conftest import journal_records

GENERATED = datetime.fromisoformat("2026-12-01T08:00:00+01:00")
HELLO: dict[str, Any] = {"version": "x", "segments": [{"n": 1, "first_seq": 1, "reason": "new"}], "segments_more": 3}


def _copy(out: Path, unit: str, records: list[dict[str, Any]], after: pull.Break | None = None) -> pull.Outcome:
    store = pull.JournalCopy(out, unit).open()
    store.append(records)
    store.keep_after_break(after)
    return pull.Outcome(unit, HELLO, 1, store.head, unread=[
        {"segment": 9, "file": "journal-000009.sqlite", "first_seq": 10**6, "last_seq": None, "size": 1,
         "problem": "not read yet"}])


def _as_before(out: Path, got: pull.Outcome, written: Path) -> list[bytes]:
    """The three files as ``write_outputs`` made them before: every record in memory."""
    store = pull.JournalCopy(out, got.unit).open()
    records = list(store.records())
    brk = store.after_break()
    if brk is not None:
        records += brk.records
    header = json.loads(written.read_bytes().split(b"\n", 1)[0])    # (its time is when it was written)
    assert header == {**pull.export_header(records, got, store.start), "exported": header["exported"]}
    made = bundle.make(header, [batch.export_line(r) for r in records], source=written.name, generated=GENERATED)
    return [made.export, made.csv, made.html]


def test_the_three_files_are_those_made_whole(week: Path, tmp_path: Path) -> None:
    records = journal_records(week)
    odd = dict(records[-1])
    got = _copy(tmp_path, "u1", records)
    files, _lines, verdict = pull.write_outputs(tmp_path, got, generated=GENERATED)
    assert [p.name for p in files] == ["u1-journal.jsonl", "u1-sessions.csv", "u1-report.html"]
    assert [files[0].read_bytes(), files[1].read_bytes(), files[2].read_bytes()] == \
        _as_before(tmp_path, got, files[0])
    assert not verdict.ok          # the unread file is named
    # After a break: what followed it, as given, in the export and the report.
    odd.update(seq=odd["seq"] + 5, type=T.SETTINGS_REFUSED, problem="one\u2028two\x85three")
    got = _copy(tmp_path / "b", "u2", records[:50], pull.Break(51, "records 51-60 are missing", [odd]))
    files, lines, _verdict = pull.write_outputs(tmp_path / "b", got, generated=GENERATED)
    assert [files[0].read_bytes(), files[1].read_bytes(), files[2].read_bytes()] == \
        _as_before(tmp_path / "b", got, files[0])
    assert any(line.startswith("BREAK at record 51") for line in lines)


def _peak(out: Path, got: pull.Outcome) -> int:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        pull.write_outputs(out, got, generated=GENERATED)
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_the_memory_does_not_grow_with_the_copy(tmp_path: Path) -> None:
    """A copy four times as long costs no more to write out, within a fixed margin: the records
    are read one at a time. (Records the report's model keeps nothing of, so that what is
    measured is the reading, not the model: issue 22's bound on the model is its own.)"""
    from datetime import timedelta

    from tests.rigs import ward_rig as wr

    def copy(name: str, n: int) -> tuple[pull.Outcome, int]:
        t0 = wr.local("2026-11-01T08:00")
        bodies = [{"type": T.LOCK, "time": (t0 + timedelta(seconds=i)).isoformat(timespec="milliseconds"),
                   "via": "serial", "note": "x" * 200} for i in range(n)]
        got = _copy(tmp_path / name, name, wr.seal(bodies))
        return pull.Outcome(got.unit, {}, 1, got.head), (tmp_path / name / ".bedside" / name / "records.jsonl"
                                                          ).stat().st_size

    (small, _), (large, size) = copy("small", 1_500), copy("large", 6_000)
    _peak(tmp_path / "small", small)      # imports and caches: not counted
    p_small, p_large = _peak(tmp_path / "small", small), _peak(tmp_path / "large", large)
    assert p_large < p_small + 2**20, (p_small, p_large)
    assert p_large < size / 2, (p_large, size)     # held whole, the records took several times the copy


def test_the_files_the_unit_counted_but_did_not_name_are_in_the_header(week: Path, tmp_path: Path) -> None:
    """A ``hello``'s ``unread_more`` (files not read yet past the 32 it names) goes into the export
    header beside ``unreadable``, and ``log verify`` and the report name it."""
    records = journal_records(week)
    got = _copy(tmp_path, "u1", records[:100])
    got = pull.Outcome(got.unit, {**HELLO, "unread_more": 40}, 1, got.head, unread=got.unread)
    files, _lines, verdict = pull.write_outputs(tmp_path, got, generated=GENERATED)
    header = json.loads(files[0].read_bytes().split(b"\n", 1)[0])
    assert header["unread_more"] == 40 and header["segments_more"] == 3
    said = "and 40 more files the unit had not read yet when it was pulled"
    assert any(said in p.text for p in verdict.problems)
    assert said in files[2].read_text("utf-8")
    # Nothing lacking: nothing to name, whatever the hello counted.
    got = pull.Outcome(got.unit, {**HELLO, "unread_more": 40}, 1, got.head)
    files, _lines, verdict = pull.write_outputs(tmp_path, got, generated=GENERATED)
    assert "unread_more" not in json.loads(files[0].read_bytes().split(b"\n", 1)[0]) and verdict.ok
