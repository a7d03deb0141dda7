"""Storage failures told apart by their codes (SQLite's result code, the OS's errno), never by
their words: each case is a real error from SQLite or the kernel (a real corrupt file, a real
lock, a real read-only database, real full and read-only filesystems as root)."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bedside.journal.segments import (
    CANNOT_OPEN,
    DAMAGED,
    FULL,
    HELD,
    READ_ONLY,
    CheckpointBusy,
    JournalDamaged,
    JournalError,
    MetaDamaged,
    NotASegment,
    connect_reader,
    explain,
    storage_trouble,
    trouble,
    unusable,
)


def raised(fn: object, *args: object) -> BaseException:
    try:
        fn(*args)  # type: ignore[operator]
    except BaseException as e:
        return e
    raise AssertionError("nothing was raised")


def new_db(path: Path, rows: int = 1) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE t (x TEXT)")
    for _ in range(rows):
        db.execute("INSERT INTO t VALUES (?)", ("x" * 1000,))
    db.close()


def test_a_corrupt_file_is_damaged_not_trouble_with_the_card(tmp_path: Path) -> None:
    path = tmp_path / "journal-000001.sqlite"
    path.write_bytes(b"not a database, whatever SQLite may say about it " * 200)
    e = raised(lambda: sqlite3.connect(path).execute("SELECT * FROM sqlite_master").fetchall())
    assert isinstance(e, sqlite3.DatabaseError) and e.sqlite_errorcode == sqlite3.SQLITE_NOTADB
    assert trouble(e) == DAMAGED and not storage_trouble(e)
    told = explain(e, path)
    assert isinstance(told, JournalDamaged) and "damaged" in str(told)


def test_a_database_held_by_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    new_db(path)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        e = raised(lambda: sqlite3.connect(path, timeout=0, isolation_level=None).execute(
            "INSERT INTO t VALUES ('y')"))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert isinstance(e, sqlite3.OperationalError) and e.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
    assert trouble(e) == HELD and storage_trouble(e)
    assert "another program holds the journal" in str(explain(e, path))
    # The unit's own "busy" (a checkpoint after a storage error) is its class, told the same way.
    own = CheckpointBusy("database is busy: checkpoint after a storage error")
    assert isinstance(own, sqlite3.OperationalError) and trouble(own) == HELD
    assert str(explain(own, path)) == str(explain(e, path))


def test_a_database_opened_read_only(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    new_db(path)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    e = raised(db.execute, "INSERT INTO t VALUES ('y')")
    db.close()
    assert isinstance(e, sqlite3.OperationalError) and e.sqlite_errorcode & 0xFF == sqlite3.SQLITE_READONLY
    assert trouble(e) == READ_ONLY and storage_trouble(e)
    assert "read-only" in str(explain(e, path))


def test_a_file_that_cannot_be_opened(tmp_path: Path) -> None:
    e = raised(sqlite3.connect, tmp_path / "no such folder" / "j.sqlite")
    assert isinstance(e, sqlite3.OperationalError) and e.sqlite_errorcode == sqlite3.SQLITE_CANTOPEN
    assert trouble(e) == CANNOT_OPEN and storage_trouble(e)
    assert type(explain(e, tmp_path)) is JournalError        # said as it is: "unable to open database file"


def test_the_words_of_a_message_decide_nothing(tmp_path: Path) -> None:
    """Errors whose messages say "full", "read-only", "locked", "I/O error" or "malformed" but
    whose codes say otherwise (or nothing) are not taken for those failures."""
    full_card = tmp_path / "a full card, read-only, locked, I/O error, malformed"
    e = raised(open, full_card / "journal-000001.sqlite")
    assert isinstance(e, FileNotFoundError)
    assert trouble(e) is None and not storage_trouble(e)
    assert str(explain(e, full_card)).startswith(f"the journal could not be written ({full_card}): ")
    for words in ("database or disk is full", "attempt to write a readonly database", "database is locked",
                  "disk I/O error", "database disk image is malformed"):
        own = sqlite3.OperationalError(words)      # made here, not by SQLite: no code
        assert trouble(own) is None and not storage_trouble(own), words
        assert type(explain(own, tmp_path)) is JournalError and "could not be written" in str(explain(own, tmp_path))


def test_the_units_own_unreadable_files_carry_their_cause(tmp_path: Path) -> None:
    missing = unusable(tmp_path / "journal-000009.sqlite")
    assert isinstance(missing, NotASegment) and isinstance(missing, sqlite3.DatabaseError)
    assert str(missing) == "the file is missing" and missing.errno == errno.ENOENT and trouble(missing) is None
    (tmp_path / "dir.sqlite").mkdir()
    e = raised(connect_reader, tmp_path / "dir.sqlite")
    assert isinstance(e, NotASegment) and str(e) == "a directory is in place of the file" and e.errno is None
    meta = MetaDamaged("its description (meta table) is damaged")
    assert trouble(meta) == DAMAGED and not storage_trouble(meta)
    told = explain(meta, tmp_path)
    assert isinstance(told, JournalDamaged) and str(told).endswith(": its description (meta table) is damaged")


# --- real full and read-only filesystems (root: a real tmpfs) -----------------------------

needs_root = pytest.mark.skipif(not (hasattr(os, "geteuid") and os.geteuid() == 0),
                                reason="mounting a small tmpfs needs root")


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    fs = tmp_path / "fs"
    fs.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "bedside-test", str(fs)], check=True)
    try:
        yield fs
    finally:
        subprocess.run(["umount", "-l", str(fs)], check=False)


def fill(fs: Path) -> None:
    fd = os.open(fs / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for size in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)


@needs_root
def test_a_real_full_filesystem(small_fs: Path) -> None:
    path = small_fs / "j.sqlite"
    new_db(path)                      # a rollback journal: a full disk is SQLITE_FULL (WAL's -shm says I/O)
    fill(small_fs)
    fd = os.open(small_fs / "filler", os.O_WRONLY | os.O_APPEND)
    try:
        e = raised(os.write, fd, b"\0" * 4096)
    finally:
        os.close(fd)
    assert isinstance(e, OSError) and e.errno == errno.ENOSPC
    assert trouble(e) == FULL and "storage is full" in str(explain(e, small_fs))
    db = sqlite3.connect(path, isolation_level=None)
    try:
        e = raised(lambda: [db.execute("INSERT INTO t VALUES (?)", ("y" * 4000,)) for _ in range(1000)])
    finally:
        db.close()
    assert isinstance(e, sqlite3.OperationalError) and e.sqlite_errorcode & 0xFF == sqlite3.SQLITE_FULL
    assert trouble(e) == FULL and storage_trouble(e)
    assert "storage is full" in str(explain(e, path))


@needs_root
def test_a_real_read_only_filesystem(small_fs: Path) -> None:
    path = small_fs / "j.sqlite"
    new_db(path)
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    e = raised(open, small_fs / "new", "w")
    assert isinstance(e, OSError) and e.errno == errno.EROFS
    assert trouble(e) == READ_ONLY and "read-only" in str(explain(e, small_fs))
    db = sqlite3.connect(path, isolation_level=None)
    try:
        e = raised(db.execute, "INSERT INTO t VALUES ('y')")
    finally:
        db.close()
    assert isinstance(e, sqlite3.OperationalError) and e.sqlite_errorcode & 0xFF == sqlite3.SQLITE_READONLY
    assert trouble(e) == READ_ONLY and storage_trouble(e)
    assert "read-only" in str(explain(e, path))
