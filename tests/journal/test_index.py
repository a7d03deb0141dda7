"""Closed segments described once and remembered (journal/index.py): the start of a unit with a
year of stays opens no more files than one with a few, a remembered description is used only
while its file is as it was, and the whole check never uses one."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from benchmarks import journals

from bedside.core import config
from bedside.journal import index, verify
from bedside.journal.journal import Journal
from bedside.unit import simulate


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, Path]]:
    """Data directories of a ward unit, one segment per one-day stay: 4, 12 and 40 stays."""
    base = tmp_path_factory.mktemp("stays")
    out = {}
    for days in (4, 12, 40):
        journals.build(base / f"d{days}" / "data", days, base / f"d{days}" / "key.json", stay_days=1)
        out[days] = base / f"d{days}" / "data"
    yield out


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)            # copy2: sizes and modification times kept
    index._INDEXES.clear()                # a new process: nothing remembered in memory
    return dest


class Opens:
    """Every SQLite connection opened on a segment file, counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n = 0
        real = sqlite3.connect

        def counted(target: Any, *a: Any, **kw: Any) -> Any:
            if "journal-" in str(target):
                self.n += 1
            return real(target, *a, **kw)

        monkeypatch.setattr(sqlite3, "connect", counted)


def _start_opens(data: Path, days: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Segment opens from launching the unit on ``data`` to its first frame."""
    cfg = config.Config()
    at = datetime.fromisoformat(journals.DAY_START).replace(tzinfo=cfg.tz) + timedelta(days=days, hours=4)
    opens = Opens(monkeypatch)
    sim = simulate.build(cfg, data, at)
    try:
        sim.unit.start()
        assert sim.unit.out.display.frames >= 1
        return opens.n
    finally:
        monkeypatch.undo()
        sim.close()


def test_the_start_opens_as_many_files_at_forty_stays_as_at_twelve(built: dict[int, Path], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The start reads the newest records (``store.PAST_RECORDS``: six one-day stays here) and
    the active segment; every other closed segment is known from memory, however many."""
    few = _start_opens(_copy(built[4], tmp_path / "few"), 4, monkeypatch)
    some = _start_opens(_copy(built[12], tmp_path / "some"), 12, monkeypatch)
    many = _start_opens(_copy(built[40], tmp_path / "many"), 40, monkeypatch)
    # 2,811 opens at a year of stays (123 segments) when every call re-described every file.
    assert few <= some == many <= 12, (few, some, many)


def test_a_remembered_description_is_used_only_while_its_file_is_unchanged(built: dict[int, Path],
                                                                           tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    data = _copy(built[4], tmp_path / "data")
    assert (data / index.INDEX_FILE).exists()          # written as each segment closed
    j = Journal(data, config.Config().tz, "t", readonly=True)
    segs = j.segments()
    opens = Opens(monkeypatch)
    # Closed ones from memory; the active one (writable: it may change) is read each time.
    assert j.segments() == segs and opens.n == 1
    first = segs[0].path
    os.utime(first, ns=(first.stat().st_atime_ns, first.stat().st_mtime_ns + 1))
    assert j.segments() == segs and opens.n == 3        # touched: described afresh, once
    assert j.segments() == segs and opens.n == 4
    monkeypatch.undo()
    j.close()


def test_a_crafted_index_never_passes_the_whole_check(built: dict[int, Path], tmp_path: Path) -> None:
    """An index that lies (a segment's start moved, with the file's own size and time) misleads
    at most the start's reads; the whole check describes every file itself and finds the truth."""
    data = _copy(built[4], tmp_path / "data")
    lines = (data / index.INDEX_FILE).read_text().splitlines()
    entry = json.loads(lines[2])
    entry["meta"]["first_seq"] += 5
    lines[2] = json.dumps(entry)
    (data / index.INDEX_FILE).write_text("\n".join(lines) + "\n")
    j = Journal(data, config.Config().tz, "t", readonly=True)
    assert j.segments()[1].first_seq == entry["meta"]["first_seq"]     # the start's reader trusts it
    j.close()
    v = verify.verify_data(data)
    assert v.ok, v.report()                                              # the check reads the files


def test_an_unreadable_index_is_ignored_and_rebuilt(built: dict[int, Path], tmp_path: Path) -> None:
    data = _copy(built[4], tmp_path / "data")
    truth = Journal(data, config.Config().tz, "t", readonly=True, remembered=False).segments()
    for junk in (b"", b"\x00" * 100, b'{"segments_index": 1}\n{"file": 3}\n[1,2]\n', b"[" * 100_000):
        (data / index.INDEX_FILE).write_bytes(junk)
        index._INDEXES.clear()
        j = Journal(data, config.Config().tz, "t")        # the unit's own: rewrites the cache
        assert j.segments()[:-1] == truth[:-1]
        j.close()
        assert (data / index.INDEX_FILE).read_text().startswith('{"segments_index": 1}')


def test_a_damaged_closed_segment_is_never_remembered(built: dict[int, Path], tmp_path: Path) -> None:
    data = _copy(built[4], tmp_path / "data")
    (data / index.INDEX_FILE).unlink()
    victim = sorted(data.glob("journal-*.sqlite"))[1]
    os.chmod(victim, 0o600)
    with open(victim, "r+b") as f:
        f.write(b"\xff" * 100)                      # the header destroyed
    os.chmod(victim, 0o444)
    j = Journal(data, config.Config().tz, "t", readonly=True)
    seg = j.segments()[1]
    assert seg.problem is not None                  # described from its raw pages, as before
    assert index.for_dir(data).get(victim) is None
    j.close()
