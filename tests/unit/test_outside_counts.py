"""Counts of the shipped unit taken from outside (benchmarks/shipped.py): wake-ups of every
thread, syncs and bytes of every file. Counts hardly depend on the machine's speed, so they
are tests; times stay in the benchmarks."""

from __future__ import annotations

from pathlib import Path

from benchmarks import shipped

STRACE = """\
101   pwrite64(5</d/data/journal-000001.sqlite-wal>, "x"..., 4120, 0) = 4120
101   fsync(5</d/data/journal-000001.sqlite-wal>) = 0
102   fdatasync(7</d/data/alive.dat> <unfinished ...>
101   write(3</d/other.log>, "y", 1) = 1
102   <... fdatasync resumed>) = 0
101   fsync(4</d/data>) = 0
101   write(9</d/data/x.tmp>, "z", 3) = -1 ENOSPC (No space left on device)
"""


def test_strace_is_counted_per_file_under_the_data_directory() -> None:
    files = shipped.parse_strace(STRACE, Path("/d/data"))
    assert dict(files.syncs) == {"journal-N.sqlite-wal": 1, "alive.dat": 1, "./": 1}
    assert dict(files.written) == {"journal-N.sqlite-wal": 4120}
    assert files.total_syncs == 3


def test_the_watchdog_period_is_read_from_the_shipped_service() -> None:
    assert shipped.watchdog_usec() is not None
