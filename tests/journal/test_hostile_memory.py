"""The memory of salvage's readers does not grow with the damaged files: the whole-journal
check, the journal's merge and its other read paths over a data directory of segments SQLite
refuses (every row salvaged) peak at the same traced memory for 2 MiB of them as for 24 MiB
(counted by tracemalloc, a count of bytes, not a time). Salvage keeps where each row is (16
bytes a row), never the rows, and the readers take them one at a time."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bedside.journal import salvage, verify
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
        finally:
            j.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        salvage.forget()
    return peak, v.records, given


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, int]]:
    out = {}
    for size, count in ((2, 1), (8, 3)):
        d = tmp_path_factory.mktemp(f"damaged{size}x{count}")
        out[size * count] = (d, hostile.damaged_journal(d, size * MIB, count))
    return out


def test_the_check_and_the_readers_peak_the_same_for_2_and_24_mib_of_damaged_segments(
        dirs: dict[int, tuple[Path, int]], monkeypatch: pytest.MonkeyPatch) -> None:
    # The shared cache off: what is left is what a reader itself holds (the cache is bounded on
    # its own, below).
    monkeypatch.setattr(salvage, "CACHE_BYTES", 0)
    small_dir, small_records = dirs[2]
    large_dir, large_records = dirs[24]
    small, checked_small, given_small = traced_peak(small_dir)
    large, checked_large, given_large = traced_peak(large_dir)
    # Every record is still given and checked, from salvage alone.
    assert (checked_small, given_small) == (small_records, small_records) and small_records > 4500
    assert (checked_large, given_large) == (large_records, large_records) and large_records > 55_000
    # 12 times the damaged bytes: the same peak, within one 8 MiB file's index (16 bytes a row,
    # 0.3 MiB) and a little slack. Before the index, the rows of 24 MiB were about 40 MiB here.
    one_file_index = 16 * (large_records // 3)
    assert large <= small + one_file_index + MIB // 2, (small, large)
    assert large < 3 * MIB, large


def test_the_shared_cache_keeps_indexes_within_its_bytes(dirs: dict[int, tuple[Path, int]],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    d, _ = dirs[24]
    files = sorted(d.glob("journal-*.sqlite"))
    monkeypatch.setattr(salvage, "CACHE_BYTES", MIB // 2)      # room for one 8 MiB file's index of 0.3 MiB
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
