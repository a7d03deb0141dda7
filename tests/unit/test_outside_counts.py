"""Counts of the shipped unit taken from outside (benchmarks/shipped.py): wake-ups of every
thread, syncs and bytes of every file. Counts hardly depend on the machine's speed, so they
are tests; times stay in the benchmarks."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
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


@pytest.mark.serial
def test_no_thread_of_the_shipped_unit_wakes_more_than_a_few_times_in_ten_idle_seconds() -> None:
    """``bedside run`` as systemd runs it (watchdog on, serial link, stick channel), idle by
    day between sessions: every thread's wake-ups counted by the kernel. The loop may wake
    for the idle clock's minute (the watchdog's ping rides on it); nothing polls."""
    now = datetime.now(UTC)
    idle = shipped.idle(10, warmup=1, after_check=True,
                        config_text=shipped.day_config(now, awake_from_minutes_ago=20))
    assert idle.threads, "no threads were seen"
    assert max(n for _, n in idle.threads.values()) <= 3, idle.threads
    assert idle.total <= 6, idle.threads


def test_two_simulated_days_make_at_most_1_2_syncs_per_journal_record() -> None:
    """Every fsync and fdatasync on every file under the data directory, from outside (strace)."""
    assert shutil.which("strace"), "strace is one of the Makefile's APT_PACKAGES (make apt)"
    days = shipped.days(2, answered=True, device=False)
    assert days.records > 100
    assert days.syncs_per_record <= 1.2, (days.files.syncs, days.records)
    assert days.files.syncs["journal-N.sqlite-wal"] <= days.records + 3


def test_the_shipped_unit_maps_no_openssl_even_when_a_nurse_unlocks_it() -> None:
    """OpenSSL's libcrypto is about 3.5 MiB of resident memory the unit does not need: it hashes
    with core/digest.py and runs scrypt in a child of its own (bedside/secret.py). Read from
    outside, in /proc/PID/maps of ``bedside run``, at READY and after a typed unlock."""
    seen = shipped.unlock("ward seven secret")
    assert "Unlocked." in seen.said, seen.said
    for files in (seen.at_start, seen.after):
        assert any(f.startswith("_sqlite3") for f in files), sorted(files)      # the maps were read
        openssl = sorted(f for f in files if f.startswith(("libcrypto", "libssl", "_hashlib", "_ssl")))
        assert not openssl, openssl
        # Ed25519 is libsodium's, through cffi: checked in a child process, never mapped here.
        sodium = sorted(f for f in files if f.startswith(("libsodium", "_sodium", "_cffi_backend")))
        assert not sodium, sodium
