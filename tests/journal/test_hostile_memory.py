"""The memory of salvage's readers does not grow with the damaged files: the whole-journal
check, the journal's merge and its other read paths over a data directory of segments SQLite
refuses (every row salvaged) peak at the same traced memory for 1 MiB of them as for 12 MiB
(4 and 48 MiB in `make fuzz`)
(counted by tracemalloc, a count of bytes, not a time). Salvage keeps where each row is (16
bytes a row), never the rows, and the readers take them one at a time."""

from __future__ import annotations

import io
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bedside.journal import export, salvage, verify
from bedside.journal.journal import Journal
from tests.rigs import hostile

MIB = 1 << 20


def traced_peak(d: Path) -> tuple[int, int, int]:
    """(peak traced bytes, records verified, the newest seq) of one whole-journal check
    (verify_data, as the unit's check runs it) and of a reader's other read paths."""
    salvage.forget()
    tracemalloc.start()
    try:
        v = verify.verify_data(d)           # (the journal's merge of salvaged rows, every record)
        j = Journal(d, ZoneInfo("UTC"), "reader", readonly=True)
        try:
            given = j.recent(50)[-1].seq if v.records else 0
            assert j.of_type("press", newest=True)[0]["seq"] == v.records
            header = export.stream(j, Sink())         # `bedside log export`, written as it is read
            assert header["records"] == v.records
        finally:
            j.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        salvage.forget()
    return peak, v.records, given


def damaged(tmp_path_factory: pytest.TempPathFactory, size: int, count: int) -> tuple[Path, int]:
    d = tmp_path_factory.mktemp(f"damaged{size}x{count}")
    return d, hostile.damaged_journal(d, size * MIB, count)


class Sink(io.StringIO):
    """An output that keeps nothing (the export's lines are not the reader's memory)."""

    def write(self, text: str) -> int:
        return len(text)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, int]]:
    return {size * count: damaged(tmp_path_factory, size, count) for size, count in ((1, 1), (4, 3))}


# 12 times the damaged bytes in `make test`; the example sizes (4 and 48 MiB) in `make fuzz`.
@pytest.mark.parametrize(("small_mib", "large_mib", "large_files"), [
    (1, 12, 3),
    pytest.param(4, 48, 3, marks=[pytest.mark.slow, pytest.mark.hypothesis]),
])
def test_the_check_and_the_readers_peak_the_same_whatever_the_damaged_segments_hold(
        tmp_path_factory: pytest.TempPathFactory, dirs: dict[int, tuple[Path, int]],
        small_mib: int, large_mib: int, large_files: int) -> None:
    small_dir, small_records = dirs[1] if small_mib == 1 else damaged(tmp_path_factory, small_mib, 1)
    large_dir, large_records = (dirs[12] if large_mib == 12 else
                                damaged(tmp_path_factory, large_mib // large_files, large_files))
    small, checked_small, given_small = traced_peak(small_dir)
    large, checked_large, given_large = traced_peak(large_dir)
    # Every record is still given and checked, from salvage alone.
    per_mib = MIB // 430
    assert (checked_small, given_small) == (small_records, small_records) >= (per_mib * small_mib,) * 2
    assert (checked_large, given_large) == (large_records, large_records) >= (per_mib * large_mib,) * 2
    # 12 times the damaged bytes: the same peak, within the files' indexes (16 bytes a row, kept
    # in the shared cache, which is bounded on its own, below) and a little slack. Before the
    # index, a reader held every row of a damaged file: about 1.4–1.7 MiB of memory a MiB of file.
    indexes = 16 * large_records
    assert large <= small + indexes + MIB // 2, (small, large)
    assert large < 2 * MIB + indexes, large


def test_the_shared_cache_keeps_indexes_within_its_bytes(dirs: dict[int, tuple[Path, int]],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    d, _ = dirs[12]
    files = sorted(d.glob("journal-*.sqlite"))
    monkeypatch.setattr(salvage, "CACHE_BYTES", MIB // 4)      # room for one 4 MiB file's index of 0.15 MiB
    salvage.forget()
    try:
        for p in files:
            got = salvage.scan(p)
            assert isinstance(got.rows, salvage.Rows)
            assert got.rows.nbytes <= 16 * len(got.rows) + 2000           # 16 bytes a row, as stated
        kept = sum(n for n, _ in salvage._cache.values())
        assert 0 < kept <= salvage.CACHE_BYTES and len(salvage._cache) == 1
        assert sum(n for n, _ in salvage._heads.values()) <= salvage._HEADS_BYTES
    finally:
        salvage.forget()


def test_rows_are_given_in_seq_order_whatever_order_the_pages_hold_them(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows whose pages are out of seq order (a copy of an older page later in the file, a
    rowid repeated) are given in seq order, each once, the last copy found winning, as the
    dict of rows gave them before; the sorted runs are small so that several are merged."""
    import random

    d = tmp_path / "d"
    hostile.damaged_journal(d, 1 * MIB, 1)
    path = d / "journal-000001.sqlite"
    raw = bytearray(path.read_bytes())
    pages = len(raw) // hostile.PAGE
    rng = random.Random(7)
    order = list(range(1, pages))            # page 0 (the header and schema) stays first
    rng.shuffle(order)
    shuffled = raw[:hostile.PAGE] + b"".join(raw[k * hostile.PAGE:(k + 1) * hostile.PAGE] for k in order)
    path.chmod(0o644)
    path.write_bytes(bytes(shuffled) + raw[5 * hostile.PAGE:6 * hostile.PAGE])    # a copy of one page, last
    salvage.forget()
    whole = salvage._scan(path)
    monkeypatch.setattr(salvage, "_RUN", 64)
    small_runs = salvage._scan(path)
    seqs = list(whole.rows)
    assert seqs == sorted(set(seqs)) and len(seqs) > 2000
    assert list(small_runs.rows) == seqs
    given = [s for s, _, _ in small_runs.between(0)]
    assert given == seqs
    assert [s for s, _, _ in small_runs.between(100, 200, reverse=True)] == list(range(199, 100, -1))
    assert dict(small_runs.rows.items()) == dict(whole.rows.items())


def test_the_streamed_export_is_the_collected_one(dirs: dict[int, tuple[Path, int]], tmp_path: Path) -> None:
    """`bedside log export` writes as it reads (two passes, one record at a time): the same
    bytes as the export collected whole, gaps and all."""
    import shutil

    d = tmp_path / "d"
    shutil.copytree(dirs[1][0], d)
    path = d / "journal-000001.sqlite"
    path.chmod(0o644)
    raw = bytearray(path.read_bytes())
    raw[40 * 4096:44 * 4096] = bytes(4 * 4096)         # four pages of records lost: a gap
    path.write_bytes(bytes(raw))
    when = datetime(2026, 12, 7, tzinfo=UTC)
    for since in (0, 100):
        salvage.forget()
        j = Journal(d, ZoneInfo("UTC"), "reader", readonly=True)
        try:
            whole = io.StringIO()
            export.write(whole, *export.collect(j, since, exported=when))
            streamed = io.StringIO()
            header = export.stream(j, streamed, since, exported=when)
        finally:
            j.close()
        assert streamed.getvalue() == whole.getvalue()
        assert header["unreadable"] and header["records"] > 2000
