"""The journal's segment files: their names, their schema and metadata, how a closed one is
described, and how a stored row becomes a record. The ``Journal`` class that writes and
reads through them is in ``journal.py``.

Durability: WAL mode with ``synchronous=FULL``, so a record is on the card when
``append`` returns (one fsync of the WAL per record); the daemon shows a confirmation
only after that.
Tamper evidence: each record's canonical JSON carries the SHA-256 of the previous
record (``prev``), and its own digest is stored beside it (``hash``); triggers make the
table append-only. ``chain.py`` holds the encoding shared with exports and verification.

Segments: the journal is a series of SQLite files ``journal-000001.sqlite``,
``journal-000002.sqlite`` … in the data directory, one hash chain and one ``seq`` count
running through all of them. Only the newest (the active segment) is written; a closed
segment is checkpointed into a single read-only file. A new segment can be started at any
time (``Journal.new_segment``): when the active file is damaged (the damaged file is kept,
read only), when it grows past the retention size, or for a new patient episode. Each
file's ``meta`` table says where its part of the chain starts (``first_seq``, ``prev``) and
why the segment was started.
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import json
import operator
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bedside.core.errors import FAILED, BedsideError
from bedside.core.events import Past
from bedside.core.records import ENVELOPE_KEYS
from bedside.durable import fsync_dir, json_loads, read_bounded
from bedside.journal import chain, salvage
from bedside.journal import index as closed_index

CACHE_KIB = 256                       # SQLite page cache of the writing connection
FILE_NAME = "journal.sqlite"          # the single file of units from before segments; migrated on open
SEGMENT_NAME = re.compile(r"^journal-(\d{6})\.sqlite$", re.ASCII)   # ASCII: the names sort as their numbers
_NAME = operator.attrgetter("name")
# The last number a segment's name holds. The unit numbers about 120 segments a year, so a file
# numbered near it was put there: the unit never names a segment past it (the name would not be
# listed, and every record written there would be lost from sight), it refuses instead.
LAST_NUMBER = 999_999

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    type TEXT NOT NULL,
    session TEXT,
    body TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_session ON records(session) WHERE session IS NOT NULL;
CREATE TRIGGER IF NOT EXISTS records_append_only_update BEFORE UPDATE ON records
BEGIN SELECT RAISE(ABORT, 'journal records are append-only: record a correction as a new event'); END;
CREATE TRIGGER IF NOT EXISTS records_append_only_delete BEFORE DELETE ON records
BEGIN SELECT RAISE(ABORT, 'journal records are append-only: record a correction as a new event'); END;
"""


# What SQLite is given to read, at most: what salvage would read of the file (a segment closes
# at 8 MiB; past 64 MiB a file is not one of the unit's), of its WAL (the unit's checkpoints at
# about 4 MiB) and of a rollback journal, and no stored value longer than the longest row salvage
# takes (SQLite's length limit: reading a longer one is an error, not an allocation). A crafted
# file past these is read from its raw pages instead, within salvage's limits: SQLite would read
# a WAL whole before the first answer and copy it into the file at the first commit.
MAX_FILE_BYTES = salvage.MAX_BYTES
MAX_WAL_BYTES = salvage.MAX_WAL_BYTES
MAX_VALUE_BYTES = salvage.MAX_ROW


def limited(db: sqlite3.Connection) -> sqlite3.Connection:
    """``db`` with SQLite's length limit at ``MAX_VALUE_BYTES``."""
    db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    return db


# What reading a damaged file can raise: SQLite's errors, and a decoding error where SQLite's
# own message quotes damaged bytes (Python decodes every message as UTF-8).
DB_ERRORS = (sqlite3.Error, UnicodeDecodeError)


class JournalError(BedsideError):
    """The journal cannot be written or read; the message says what a person can do."""

    exit_code = FAILED


class JournalDamaged(JournalError):
    """The active file is not a usable segment (empty, not a file, not a database): it is kept,
    and the chain continues in a new segment."""


class MetaDamaged(BedsideError, sqlite3.DatabaseError):
    """A segment whose ``meta`` table is there but cannot be read as a description. A
    sqlite3.DatabaseError too, so that it is caught wherever SQLite's own errors are."""


class NotASegment(BedsideError, sqlite3.DatabaseError):
    """A file that bedside itself finds cannot be read as a segment (not a file, no description,
    a private copy that could not be made). A sqlite3.DatabaseError too, so that it is caught
    wherever SQLite's own errors are; ``errno`` is the OS's code when an OS error was the cause."""

    def __init__(self, message: str, os_errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = os_errno


class CheckpointBusy(BedsideError, sqlite3.OperationalError):
    """Reopening after a storage error, the WAL could not be folded into the file: another
    connection holds it. A sqlite3.OperationalError too, as SQLite's own SQLITE_BUSY is."""


# --- what kind of storage failure an error is: by its code, never by its words -----------
# SQLite's primary result code (``sqlite_errorcode & 0xFF``: every SQLITE_READONLY_*,
# SQLITE_IOERR_* … with it), the OS's errno, or bedside's own class. Messages carry paths and
# differ between versions and languages; the codes do not.
FULL, READ_ONLY, HELD, DAMAGED, IO, CANNOT_OPEN = "full", "read-only", "held", "damaged", "I/O", "cannot open"
SQLITE_TROUBLE = {sqlite3.SQLITE_FULL: FULL, sqlite3.SQLITE_READONLY: READ_ONLY, sqlite3.SQLITE_BUSY: HELD,
                  sqlite3.SQLITE_LOCKED: HELD, sqlite3.SQLITE_CORRUPT: DAMAGED, sqlite3.SQLITE_NOTADB: DAMAGED,
                  sqlite3.SQLITE_IOERR: IO, sqlite3.SQLITE_CANTOPEN: CANNOT_OPEN}
ERRNO_TROUBLE = {errno.ENOSPC: FULL, errno.EROFS: READ_ONLY, errno.EBUSY: HELD, errno.ETXTBSY: HELD,
                 errno.EIO: IO, getattr(errno, "EREMOTEIO", errno.EIO): IO}      # EREMOTEIO: Linux only
STORAGE_TROUBLE = frozenset({FULL, READ_ONLY, HELD, IO, CANNOT_OPEN})


def chain_shown(data_dir: Path) -> tuple[int, str, str] | None:
    """The furthest record (seq, hash, which file says so) that files other than the journal
    show existed: the heartbeat's head, the export marker's last record; or (0, "", name) when
    the seal key has moved on (seals were made) though no record can be named."""
    from bedside.journal import heartbeat, seal

    best: tuple[int, str, str] | None = None
    beat = heartbeat.read(data_dir)
    if beat is not None and beat.seq is not None and beat.seq > 0 and isinstance(beat.hash, str):
        name = heartbeat.FILE_NAME if (Path(data_dir) / heartbeat.FILE_NAME).exists() else heartbeat.LEGACY_NAME
        best = (beat.seq, beat.hash, name)
    try:
        body = json_loads(read_bounded(Path(data_dir) / "exported.json"))
        seq, h = body.get("seq"), body.get("hash")
        if isinstance(seq, int) and not isinstance(seq, bool) and seq > 0 and isinstance(h, str) \
                and (best is None or seq > best[0]):
            best = (seq, h, "exported.json")
    except (OSError, ValueError, AttributeError, RecursionError):
        pass
    if best is None:
        try:
            key = seal.load_unit_key(Path(data_dir))
        except seal.SealError:
            key = None
        if key is not None and key.epoch > 0:
            best = (0, "", seal.KEY_FILE)
    return best


def companions(path: Path) -> str | None:
    """Why SQLite could not use the file's WAL, shared-memory file or rollback journal (something
    else in its place, or larger than the unit ever leaves one: ``MAX_WAL_BYTES``, ``MAX_FILE_BYTES``)."""
    for suffix, limit in (("-wal", MAX_WAL_BYTES), ("-shm", None), ("-journal", MAX_FILE_BYTES)):
        p = path.with_name(path.name + suffix)
        name = "rollback journal" if suffix == "-journal" else f"{suffix[1:].upper()} file"
        try:
            st = os.stat(p)
        except FileNotFoundError:
            continue
        except OSError as e:
            return f"its {name} cannot be examined ({e.strerror})"
        if not stat.S_ISREG(st.st_mode):
            return f"something other than a file is in place of its {name}"
        if limit is not None and st.st_size > limit:
            return (f"its {name} is {_mib(st.st_size)}, more than the unit ever leaves beside a segment "
                    f"({limit >> 20} MiB): read from its raw pages instead")
        if suffix != "-journal" and not os.access(p, os.R_OK | os.W_OK):
            return f"its {name} cannot be read or written (permission denied)"
    return None


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB" if size >= 2**20 else f"{size:,} bytes"


def is_closed(path: Path) -> bool:
    """A closed segment is made read-only (make_read_only); the active one never is."""
    try:
        return os.stat(path).st_mode & 0o222 == 0
    except OSError:
        return False


def trouble(e: BaseException) -> str | None:
    """What kind of failure ``e`` is (FULL, READ_ONLY, HELD, DAMAGED, IO, CANNOT_OPEN), from
    its code; None for any other error (a full disk is never guessed from a message)."""
    if isinstance(e, CheckpointBusy):
        return HELD
    if isinstance(e, MetaDamaged):
        return DAMAGED
    code = getattr(e, "sqlite_errorcode", None)       # set by SQLite on the errors it raises
    if isinstance(e, sqlite3.Error) and isinstance(code, int):
        return SQLITE_TROUBLE.get(code & 0xFF)
    os_errno = getattr(e, "errno", None)             # OSError, and NotASegment with an OS cause
    return ERRNO_TROUBLE.get(os_errno) if isinstance(os_errno, int) else None


def storage_trouble(e: Exception) -> bool:
    """A failure of the card (full, read-only, I/O, held by another program, cannot be opened),
    not of the file's contents."""
    return trouble(e) in STORAGE_TROUBLE


def explain(e: Exception, path: Path) -> JournalError:
    if isinstance(e, MetaDamaged):
        return JournalDamaged(f"the journal could not be written ({path}): {e}")
    kind = trouble(e)
    if kind == FULL:
        return JournalError(f"the journal's storage is full ({path}); free space on the card")
    if kind == READ_ONLY:
        return JournalError(f"the journal's storage is read-only ({path}); check the card and its mount")
    if kind == HELD:
        return JournalError(f"another program holds the journal ({path}); is a second daemon running?")
    if kind == DAMAGED:
        return JournalDamaged(f"the journal file is damaged ({path}); keep it for the engineer")
    if kind == IO:
        return JournalError(f"the journal's storage failed to read or write (I/O error, {path}); check the card")
    return JournalError(f"the journal could not be written ({path}): {e}")


def past_last(n: int) -> str:
    """What to say of segment ``n`` when it is the last a name holds (else nothing)."""
    if n < LAST_NUMBER:
        return ""
    return ("; its number is the last a segment's name holds and the unit, which starts about 120 segments a "
            "year, did not make it: an engineer must move that file out of the data directory")


def segment_path(data_dir: Path, n: int) -> Path:
    return Path(data_dir) / f"journal-{n:06d}.sqlite"


# Directory reads of the listing functions below (the tests count a start's), and the most
# names one of them held at once.
counts = {"listings": 0, "names_held": 0, "reused": 0}
# Bumped by the journal's own creates and deletes of segment files: a budget's cached listing
# (``segment_files``) is read again after one. Files others add or remove meanwhile are not
# seen until the next budget: a budget is one start or one step.
_generation = [0]


# A budget's list kept for later budgets while the directory is unchanged: (directory, after) ->
# (the directory's stamp, the generation, the list, not_listed, not_listed_range, first_unlisted).
# A listing of a million names costs about a second here (10 s on a Pi Zero 2 W); the unit's own
# writes change the directory seldom (a new segment, the seal key, the index), so a loop step
# reads it again only after one. At most ``KEEP_LISTS`` lists of at most LIST_FILES numbers.
_kept: dict[tuple[str, str | None], tuple[Any, ...]] = {}
_kept_lock = threading.Lock()
KEEP_LISTS = 4
# A directory's times are trusted to show a change only when it had been still this long before
# it was read: a change within the same tick of the file system's clock as the one before it
# would leave them as they were.
QUIET_NS = 2_000_000_000


def _dir_stamp(data_dir: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(data_dir)
    except OSError:
        return None
    now = time.time_ns()
    if now - st.st_mtime_ns < QUIET_NS or now - st.st_ctime_ns < QUIET_NS:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns


def changed(data_dir: Path | None = None, *, added: int | None = None, removed: int | None = None) -> None:
    """The journal created (``added``), deleted (``removed``) or renamed a segment file: other
    budgets' cached listings are stale; this thread's budget's is brought up to date in place
    (so that a start that makes a segment does not read the directory again)."""
    before = _generation[0]
    _generation[0] += 1
    budget = salvage.current()
    if budget is None or budget.listing is None or data_dir is None:
        return
    (where, gen, after), files = budget.listing
    if where != os.fspath(data_dir) or gen != before or (added is None and removed is None):
        budget.listing = None
        return
    files = [f for f in files if f[0] not in (added, removed)]
    if added is not None:
        files.append((added, segment_path(data_dir, added)))
        files.sort()
    budget.listing = ((where, _generation[0], after), files)


def segment_files(data_dir: Path) -> list[tuple[int, Path]]:
    """(number, path) of the segment files in the directory, oldest first.

    Under a salvage budget with a file count (a start, a loop step, a pass of the journal
    check) at most ``salvage.LIST_FILES`` of them (``_segment_files_bounded``), and the
    directory is read once per budget: the list is kept in the budget and read again only
    after the journal's own creates and deletes (``changed``); a later budget takes it too
    while the directory's times show no change (``_kept``). Without one (a person's
    ``log verify``, ``log export`` or report of a copied data directory), every one: a
    verification asked for by a person must not leave files out, and the laptop's memory is
    not the unit's (about 380 bytes a segment name held; other names are not held)."""
    budget = salvage.current()
    if budget is not None and budget.files is not None:
        key = (os.fspath(Path(data_dir)), _generation[0], budget.after)
        if budget.listing is not None and budget.listing[0] == key:
            return list(budget.listing[1])
        stamp = _dir_stamp(Path(data_dir))
        with _kept_lock:            # (the loop's steps and the check's worker both list)
            kept = _kept.get((key[0], budget.after))
        if stamp is not None and kept is not None and kept[:2] == (stamp, key[1]):
            files = kept[2]
            budget.not_listed, budget.not_listed_range, budget.first_unlisted = kept[3:]
            counts["reused"] += 1
        else:
            files = _segment_files_bounded(Path(data_dir), budget)
            with _kept_lock:
                _kept.pop((key[0], budget.after), None)
                if stamp is not None:
                    _kept[(key[0], budget.after)] = (stamp, key[1], files, budget.not_listed,
                                                     budget.not_listed_range, budget.first_unlisted)
                    while len(_kept) > KEEP_LISTS:
                        del _kept[next(iter(_kept))]
        budget.listing = (key, files)
        return list(files)
    counts["listings"] += 1
    try:
        with os.scandir(data_dir) as entries:
            # (An entry at a time: names that are not a segment's are never held.)
            numbers = sorted(int(name[8:14]) for name in (e.name for e in entries) if SEGMENT_NAME.match(name))
    except FileNotFoundError:
        return []
    counts["names_held"] = max(counts["names_held"], len(numbers))
    return [(n, segment_path(data_dir, n)) for n in numbers]


def newest_file(data_dir: Path) -> tuple[int, Path] | None:
    """The segment file with the highest number (the unit's active one), or None: one read of
    the directory an entry at a time, holding one name (the unit opening its journal needs no
    more; ``Journal.__init__``). Under a budget with a file count, the newest of its list (which
    keeps the newest half): read once for the budget."""
    budget = salvage.current()
    if budget is not None and budget.files is not None:
        files = segment_files(data_dir)
        return files[-1] if files else None
    counts["listings"] += 1
    best = -1
    try:
        with os.scandir(data_dir) as entries:
            for entry in entries:
                name = entry.name
                if SEGMENT_NAME.match(name):
                    best = max(best, int(name[8:14]))
    except FileNotFoundError:
        return None
    return None if best < 0 else (best, segment_path(data_dir, best))


def _segment_files_bounded(data_dir: Path, budget: salvage.Budget) -> list[tuple[int, Path]]:
    """A budget's list: at most ``salvage.LIST_FILES`` segment files, the oldest and the newest
    halves by number, the rest counted (and named by that count) rather than looked at
    (salvage.py, LIST_FILES). A pass of the journal check (a budget with ``after``) keeps the
    oldest quarter, the lowest quarter numbered after ``after`` (where the pass goes on) and the
    newest half; a first pass (``after`` "") the oldest and newest halves, as a start. The
    directory is read an entry at a time and only the numbers kept are held, so a directory of
    a million names costs time in proportion (each name matched once, in C, most passed over by
    comparing it with the groups' bounds: about 0.85 µs a name here) but memory for
    ``LIST_FILES`` numbers only."""
    counts["listings"] += 1
    half = salvage.LIST_FILES // 2
    after = budget.after
    after_n = None if after is None else int(after[8:14]) if SEGMENT_NAME.match(after) else 0
    if after_n == 0:
        after_n = None          # (a first pass goes on from the start: its window is the oldest half)
    n_low = half if after_n is None else half // 2
    n_win = 0 if after_n is None else half - n_low
    # Heaps of numbers (negated for the lowest: a max-heap): one past each group's size, so
    # that the one past is the lowest or highest number left out of it.
    low: list[int] = []
    win: list[int] = []
    high: list[int] = []
    count = 0
    push, replace = heapq.heappush, heapq.heapreplace
    # Names of one format sort as their numbers: most names of a large directory are compared,
    # as strings, with the three groups' bounds and passed over, without parsing their number.
    last, lo_cut, hi_cut, win_cut = "\U0010ffff", "\U0010ffff", "", "\U0010ffff"
    after_s = after if after is not None and SEGMENT_NAME.match(after) else ""
    try:
        with os.scandir(data_dir) as entries:
            for name in filter(SEGMENT_NAME.match, map(_NAME, entries)):
                count += 1
                if lo_cut < name < hi_cut and (after_n is None or name <= after_s or name > win_cut):
                    continue
                n = int(name[8:14])
                if len(low) <= n_low:
                    push(low, -n)
                elif -low[0] > n:
                    replace(low, -n)
                if after_n is not None and n > after_n:
                    if len(win) <= n_win:
                        push(win, -n)
                    elif -win[0] > n:
                        replace(win, -n)
                if len(high) <= half:
                    push(high, n)
                elif high[0] < n:
                    replace(high, n)
                lo_cut = f"journal-{-low[0]:06d}.sqlite" if len(low) > n_low else last
                hi_cut = f"journal-{high[0]:06d}.sqlite" if len(high) > half else ""
                win_cut = f"journal-{-win[0]:06d}.sqlite" if len(win) > n_win else last
    except FileNotFoundError:
        return []
    lows = sorted(-m for m in low)
    wins = sorted(-m for m in win)
    highs = sorted(high)
    kept = set(lows[:n_low]) | set(wins[:n_win]) | set(highs[1:] if len(highs) > half else highs)
    counts["names_held"] = max(counts["names_held"], len(low) + len(win) + len(high))
    budget.not_listed = count - len(kept)
    budget.not_listed_range = None
    # The lowest number after ``after`` left out (below the newest half kept): a later pass goes on there.
    top = highs[1:] if len(highs) > half else highs
    # The lowest number left out after where this read goes on (a check pass goes on there).
    ahead = wins if after_n is not None else lows
    n_ahead = n_win if after_n is not None else n_low
    nxt = ahead[n_ahead] if len(ahead) > n_ahead else None
    budget.first_unlisted = nxt if nxt is not None and top and nxt < top[0] else None
    if budget.not_listed:
        left_out_low = lows[n_low] if len(lows) > n_low else min(kept)
        left_out_high = highs[0] if len(highs) > half else max(kept)
        budget.not_listed_range = (left_out_low, left_out_high)      # every number left out is between
    return [(n, segment_path(data_dir, n)) for n in sorted(kept)]


@dataclass(frozen=True, slots=True)
class Segment:
    """One file of the journal and where its part of the chain starts."""

    n: int
    path: Path
    first_seq: int                 # seq of its first record (the next seq if it has none yet; 0: unknown)
    prev: str                      # hash its first record links to
    reason: str                    # new | size | damaged | episode | migrated | … (unreadable: not known)
    created: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    problem: str | None = None     # why SQLite cannot read the file (its rows come from salvage.py)
    known: bool = True             # first_seq and prev are the file's own (not guessed)

    def header(self) -> dict[str, Any]:
        """As listed in an export's header."""
        out: dict[str, Any] = {"n": self.n, "file": self.path.name, "first_seq": self.first_seq, "prev": self.prev,
                               "reason": self.reason, "created": self.created}
        if self.detail:
            out["detail"] = dict(self.detail)
        if self.problem is not None:
            out["damaged"] = self.problem
        return out


@dataclass(frozen=True, slots=True)
class Gap:
    """Records of a segment that cannot be read: ``first``..``last`` (None: not known)."""

    segment: int
    file: str
    first: int | None
    last: int | None
    problem: str

    def header(self) -> dict[str, Any]:
        return {"segment": self.segment, "file": self.file, "first_seq": self.first, "last_seq": self.last,
                "problem": self.problem}

    def __str__(self) -> str:
        if self.first is None:
            seqs = "records"
        elif self.last is None:
            seqs = f"records from seq {self.first}"
        elif self.last == self.first:
            seqs = f"record {self.first}"
        else:
            seqs = f"records {self.first}–{self.last}"
        return f"segment {self.segment} ({self.file}): {seqs} cannot be read ({self.problem})"


def not_a_file(path: Path) -> str | None:
    """Why ``path`` cannot be a segment (a directory, a fifo, missing, empty), or None.

    Checked before SQLite touches it: SQLite would block on a fifo, and would quietly make a
    new database of an empty file."""
    why = unusable(path)
    return None if why is None else str(why)


def unusable(path: Path) -> NotASegment | None:
    """``not_a_file``'s answer as an error to raise, with the OS's errno where one was the cause."""
    try:
        st = os.stat(path)
    except FileNotFoundError as e:
        return NotASegment("the file is missing", e.errno)
    except OSError as e:
        return NotASegment(f"the file cannot be examined ({e.strerror})", e.errno)
    if stat.S_ISDIR(st.st_mode):
        return NotASegment("a directory is in place of the file")
    if not stat.S_ISREG(st.st_mode):
        return NotASegment("something other than a file is in its place")
    if st.st_size == 0:
        return NotASegment("the file is empty")
    if st.st_size > MAX_FILE_BYTES:
        return NotASegment(f"the file is {_mib(st.st_size)}, more than any segment the unit writes (it closes "
                           f"one at 8 MiB): read from its raw pages instead, the first {MAX_FILE_BYTES >> 20} MiB")
    if not os.access(path, os.R_OK):
        return NotASegment("the file cannot be read (permission denied)", errno.EACCES)
    return None


def lenient_text(raw: bytes) -> str:
    # Bit rot can leave a stored text that is not UTF-8: read it as it is (its hash then fails)
    # rather than let a decoding error escape every reader.
    return raw.decode("utf-8", "replace")


class _Copy(sqlite3.Connection):
    """A connection to a private copy of a segment, removed with the connection."""

    scratch: tempfile.TemporaryDirectory[str] | None = None

    def close(self) -> None:
        super().close()
        if self.scratch is not None:
            self.scratch.cleanup()
            self.scratch = None


def connect_reader(path: Path) -> sqlite3.Connection:
    """A reader's connection, which never writes the file.

    A power cut can leave a segment with a rollback journal beside it to undo, which SQLite does
    on the next open for writing (the unit's own, at its next start) and refuses to do for a
    reader ("attempt to write a readonly database"). That is not damage: the reader then reads
    a private copy of the file and its journal files, where SQLite can undo the cut-off write,
    and sees what the unit will see."""
    why = unusable(path)
    if why is not None:
        raise why
    beside = companions(path)
    if beside is not None:
        raise NotASegment(beside)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        limited(db)
        db.text_factory = lenient_text
        db.execute("PRAGMA schema_version").fetchone()       # the first read: where SQLite would undo
    except BaseException as e:
        # Closed here on every failure: a connection is a reference cycle (its statement cache
        # refers back to it), so one left to the caller's exception would keep its file open
        # until the collector ran (a start that meets hundreds of crafted files opens each).
        db.close()
        if isinstance(e, sqlite3.OperationalError) and e.sqlite_errorcode & 0xFF == sqlite3.SQLITE_READONLY:
            return _connect_copy(path)                           # any SQLITE_READONLY_* (primary code)
        raise
    return db


def _connect_copy(path: Path) -> sqlite3.Connection:
    scratch = tempfile.TemporaryDirectory(prefix="bedside-segment-")
    try:
        # At most the sizes ``connect_reader`` checked (the WAL-index is rebuilt from the WAL).
        for suffix in ("", "-journal", "-wal"):
            src = path.with_name(path.name + suffix)
            if src.is_file():
                shutil.copyfile(src, Path(scratch.name) / (path.name + suffix))
        db = sqlite3.connect(Path(scratch.name) / path.name, isolation_level=None, factory=_Copy)
        limited(db)
        db.scratch = scratch
    except OSError as e:
        # Said as every reader already hears a file it cannot read (``DB_ERRORS``).
        scratch.cleanup()
        raise NotASegment(f"a copy to read could not be made: {e}", e.errno) from None
    except BaseException:
        scratch.cleanup()
        raise
    db.text_factory = lenient_text
    return db


def read_meta(db: sqlite3.Connection, n: int, path: Path) -> Segment:
    """A segment's description from its ``meta`` table (or, for files from before segments, its records).

    Raises NotASegment (a sqlite3.DatabaseError) when the file holds neither (it is not a
    segment, or it was emptied)."""
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    if "first_seq" in meta:
        try:
            detail = json.loads(meta.get("detail", "{}"))
            return Segment(n, path, int(meta["first_seq"]), str(meta["prev"]), str(meta.get("reason", "new")),
                           str(meta.get("created", "")), detail if isinstance(detail, dict) else {})
        except (ValueError, TypeError, KeyError):
            raise MetaDamaged("its description (meta table) is damaged") from None
    row = db.execute("SELECT body FROM records ORDER BY seq LIMIT 1").fetchone()
    if row is None:
        raise NotASegment("the file holds no journal (no description and no records)")
    first = decode(row[0], "")
    if first is None or not isinstance(first.get("seq"), int):
        raise NotASegment("its first record cannot be read")
    return Segment(n, path, int(first["seq"]), str(first.get("prev", "")), "new", "")


def describe(n: int, path: Path, *, own: bool = False) -> Segment:
    """A segment's description, read defensively: from SQLite, else from the file's raw pages.

    Under a salvage budget with a file count (the start's, a loop step's, a check pass's:
    ``salvage.admit``), each unchanged file is described once, and a file past the count is
    not opened at all: described as not examined yet, and named in the budget's ``deferred``.
    ``own``: the unit's own file (its newest, or one its index remembers), opened whatever the count."""
    kept = salvage.described(path)
    if isinstance(kept, Segment):
        return kept
    budget = salvage.current()
    if not salvage.admit(path, own=own):
        later = budget.later if budget is not None else "later"
        if budget is not None and budget.after and path.name <= budget.after:
            why = "examined by an earlier pass of this round of the journal check, not opened again"
            return Segment(n, path, 0, "", "unreadable", "", {}, known=False,
                           problem=f"not examined in this pass: {why}; it is read at the next round")
        return Segment(n, path, 0, "", "unreadable", "", {}, known=False,
                       problem=f"not examined yet: past the {salvage.FILE_BYTES // 1024} KiB a file this read "
                               f"allows for files not remembered; it is read {later}")
    seg = _describe(n, path)
    salvage.remember_description(path, seg)
    return seg


def _describe(n: int, path: Path) -> Segment:
    try:
        db = connect_reader(path)
        try:
            return read_meta(db, n, path)
        finally:
            db.close()
    except DB_ERRORS as e:
        problem = str(e)
    found = salvage.head(path)
    if found.deferred:
        # Past the start's (or a check pass's) salvage budget: described as unreadable for now
        # (not to be kept), its raw pages read later (the first read after the start, the next pass).
        return Segment(n, path, 0, "", "unreadable", "", {}, known=False,
                       problem=f"{problem}; its raw pages are read {found.later}")
    meta = found.meta
    detail: dict[str, Any] = {}
    with contextlib.suppress(ValueError, TypeError):
        d = json.loads(meta.get("detail", "{}"))
        detail = d if isinstance(d, dict) else {}
    if meta.get("first_seq", "").isdigit() and "prev" in meta:
        return Segment(n, path, int(meta["first_seq"]), meta["prev"], meta.get("reason", "new"),
                       meta.get("created", ""), detail, problem=problem)
    if found.rows:
        seq = min(found.rows)
        rec = decode(*found.rows[seq])
        if rec is not None and rec.get("seq") == seq:
            return Segment(n, path, seq, str(rec.get("prev", "")), "unreadable", "", {}, problem=problem, known=False)
    return Segment(n, path, 0, "", "unreadable", "", {}, problem=problem, known=False)


def described(n: int, path: Path, c: closed_index.Closed) -> Segment:
    m = c.meta
    return Segment(n, path, int(m["first_seq"]), str(m["prev"]), str(m["reason"]), str(m["created"]),
                   dict(m["detail"]))


def decode(body: Any, digest: Any) -> dict[str, Any] | None:
    """A stored row as a record (body plus hash), or None when it is not one (bit rot, a wrong type)."""
    if not isinstance(body, str) or not isinstance(digest, str):
        return None
    try:
        rec = json.loads(body, parse_float=_finite, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(rec, dict):
        return None
    rec["hash"] = digest
    return rec


_FIELDS = {"seq": int, "prev": str, "type": str, "time": str, "hash": str}


def enveloped(rec: Mapping[str, Any]) -> bool:
    """The fields every reader relies on are there (verify checks the rest)."""
    return all(isinstance(rec.get(k), t) and not isinstance(rec.get(k), bool) for k, t in _FIELDS.items())


def _finite(text: str) -> float:
    v = float(text)
    if v in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")      # canonical JSON could not hold it
    return v


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


def create_segment(data_dir: Path, n: int, first_seq: int, prev: str, reason: str,
                   detail: Mapping[str, Any] | None = None) -> Path:
    """Write a new, empty segment file whole: built under a temporary name, synced, then renamed.

    Raises JournalDamaged past ``LAST_NUMBER``: the file numbered before it is not the unit's."""
    data_dir = Path(data_dir)
    if n > LAST_NUMBER:
        raise JournalDamaged(f"no segment can follow {segment_path(data_dir, n - 1).name}{past_last(n - 1)}")
    final = segment_path(data_dir, n)
    tmp = final.with_name(f".{final.name}.new")
    for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    db = sqlite3.connect(tmp, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(SCHEMA)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        rows = {"segment": str(n), "first_seq": str(first_seq), "prev": prev, "reason": reason,
                "created": created, "detail": json.dumps(dict(detail or {}), sort_keys=True)}
        db.execute("BEGIN IMMEDIATE")
        db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", rows.items())
        db.execute("COMMIT")
    finally:
        db.close()
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, final)
    changed(data_dir, added=n)
    fsync_dir(data_dir)
    return final


def make_read_only(path: Path) -> None:
    """Keep a closed or damaged segment (and any WAL beside it) as it is, read-only."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            p = path.with_name(path.name + suffix)
            p.chmod(p.stat().st_mode & 0o444)


def to_past(rec: Mapping[str, Any]) -> Past:
    data = {k: v for k, v in rec.items() if k not in ENVELOPE_KEYS}
    if "due" in rec:
        data["due"] = rec["due"]
    return Past(int(rec["seq"]), str(rec["type"]), chain.parse_time(rec["time"]), rec.get("session"), data)
