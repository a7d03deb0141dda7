"""The journal: every prompt and response, one committed SQLite transaction each.

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
time (``new_segment``): when the active file is damaged (the damaged file is kept, read
only), when it grows past the retention size, or for a new patient episode. Each file's
``meta`` table says where its part of the chain starts (``first_seq``, ``prev``) and why
the segment was started.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sqlite3
import stat
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bedside.core.events import Instant, Past, Record
from bedside.durable import fsync_dir, json_loads, read_bounded
from bedside.journal import chain, salvage
from bedside.journal import index as closed_index

CACHE_KIB = 256                       # SQLite page cache of the writing connection
FILE_NAME = "journal.sqlite"          # the single file of units from before segments; migrated on open
_SEGMENT = re.compile(r"^journal-(\d{6})\.sqlite$")

_SCHEMA = """
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


# What reading a damaged file can raise: SQLite's errors, and a decoding error where SQLite's
# own message quotes damaged bytes (Python decodes every message as UTF-8).
DB_ERRORS = (sqlite3.Error, UnicodeDecodeError)


class JournalError(Exception):
    """The journal cannot be written or read; the message says what a person can do."""


class JournalDamaged(JournalError):
    """The active file is not a usable segment (empty, not a file, not a database): it is kept,
    and the chain continues in a new segment."""


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


def _companions(path: Path) -> str | None:
    """Why SQLite could not use the file's WAL or shared-memory file (something else in its place)."""
    for suffix in ("-wal", "-shm"):
        p = path.with_name(path.name + suffix)
        try:
            st = os.stat(p)
        except FileNotFoundError:
            continue
        except OSError as e:
            return f"its {suffix[1:].upper()} file cannot be examined ({e.strerror})"
        if not stat.S_ISREG(st.st_mode):
            return f"something other than a file is in place of its {suffix[1:].upper()} file"
        if not os.access(p, os.R_OK | os.W_OK):
            return f"its {suffix[1:].upper()} file cannot be read or written (permission denied)"
    return None


def _closed(path: Path) -> bool:
    """A closed segment is made read-only (make_read_only); the active one never is."""
    try:
        return os.stat(path).st_mode & 0o222 == 0
    except OSError:
        return False


def _storage_trouble(e: Exception) -> bool:
    """A failure of the card (full, read-only, I/O, locked), not of the file's contents."""
    text = str(e).lower()
    return any(w in text for w in ("full", "no space", "readonly", "read-only", "locked", "busy", "i/o error",
                                   "input/output", "unable to open"))


def _explain(e: Exception, path: Path) -> JournalError:
    text = str(e).lower()
    if "full" in text or "no space" in text:
        return JournalError(f"the journal's storage is full ({path}); free space on the card")
    if "readonly" in text or "read-only" in text:
        return JournalError(f"the journal's storage is read-only ({path}); check the card and its mount")
    if "locked" in text or "busy" in text:
        return JournalError(f"another program holds the journal ({path}); is a second daemon running?")
    if "malformed" in text or "not a database" in text:
        return JournalError(f"the journal file is damaged ({path}); keep it for the engineer")
    if "i/o error" in text or "input/output" in text:
        return JournalError(f"the journal's storage failed to read or write (I/O error, {path}); check the card")
    return JournalError(f"the journal could not be written ({path}): {e}")


def segment_path(data_dir: Path, n: int) -> Path:
    return Path(data_dir) / f"journal-{n:06d}.sqlite"


def segment_files(data_dir: Path) -> list[tuple[int, Path]]:
    """(number, path) of every segment file in the directory, oldest first."""
    try:
        names = os.listdir(data_dir)
    except FileNotFoundError:
        return []
    found = [(int(m.group(1)), Path(data_dir) / name) for name in names if (m := _SEGMENT.match(name))]
    return sorted(found)


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
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "the file is missing"
    except OSError as e:
        return f"the file cannot be examined ({e.strerror})"
    if stat.S_ISDIR(st.st_mode):
        return "a directory is in place of the file"
    if not stat.S_ISREG(st.st_mode):
        return "something other than a file is in its place"
    if st.st_size == 0:
        return "the file is empty"
    if not os.access(path, os.R_OK):
        return "the file cannot be read (permission denied)"
    return None


def _text(raw: bytes) -> str:
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
    why = not_a_file(path)
    if why is not None:
        raise sqlite3.DatabaseError(why)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    db.text_factory = _text
    try:
        db.execute("PRAGMA schema_version").fetchone()       # the first read: where SQLite would undo
    except sqlite3.OperationalError as e:
        if "readonly" not in str(e).lower():
            raise
        db.close()
        return _connect_copy(path)
    return db


def _connect_copy(path: Path) -> sqlite3.Connection:
    scratch = tempfile.TemporaryDirectory(prefix="bedside-segment-")
    try:
        for suffix in ("", "-journal", "-wal", "-shm"):
            src = path.with_name(path.name + suffix)
            if src.is_file():
                shutil.copyfile(src, Path(scratch.name) / (path.name + suffix))
        db = sqlite3.connect(Path(scratch.name) / path.name, isolation_level=None, factory=_Copy)
        db.scratch = scratch
    except OSError as e:
        # Said as every reader already hears a file it cannot read (``DB_ERRORS``).
        scratch.cleanup()
        raise sqlite3.DatabaseError(f"a copy to read could not be made: {e}") from None
    except BaseException:
        scratch.cleanup()
        raise
    db.text_factory = _text
    return db


def read_meta(db: sqlite3.Connection, n: int, path: Path) -> Segment:
    """A segment's description from its ``meta`` table (or, for files from before segments, its records).

    Raises sqlite3.DatabaseError when the file holds neither (it is not a segment, or it was emptied)."""
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    if "first_seq" in meta:
        try:
            detail = json.loads(meta.get("detail", "{}"))
            return Segment(n, path, int(meta["first_seq"]), str(meta["prev"]), str(meta.get("reason", "new")),
                           str(meta.get("created", "")), detail if isinstance(detail, dict) else {})
        except (ValueError, TypeError, KeyError):
            raise sqlite3.DatabaseError("its description (meta table) is damaged") from None
    row = db.execute("SELECT body FROM records ORDER BY seq LIMIT 1").fetchone()
    if row is None:
        raise sqlite3.DatabaseError("the file holds no journal (no description and no records)")
    first = decode(row[0], "")
    if first is None or not isinstance(first.get("seq"), int):
        raise sqlite3.DatabaseError("its first record cannot be read")
    return Segment(n, path, int(first["seq"]), str(first.get("prev", "")), "new", "")


def describe(n: int, path: Path) -> Segment:
    """A segment's description, read defensively: from SQLite, else from the file's raw pages."""
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
        # Past the start's salvage budget: described as unreadable for now (not to be kept), its
        # raw pages read by the first read after the start.
        return Segment(n, path, 0, "", "unreadable", "", {}, known=False,
                       problem=f"{problem}; its raw pages are read once the unit has started")
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


def _described(n: int, path: Path, c: closed_index.Closed) -> Segment:
    m = c.meta
    return Segment(n, path, int(m["first_seq"]), str(m["prev"]), str(m["reason"]), str(m["created"]),
                   dict(m["detail"]))


def segment_rows(db: sqlite3.Connection, since_seq: int = 0, below_seq: int | None = None,
                 ) -> Iterator[tuple[str, str]]:
    """(canonical body, hash) of a segment's records in seq order."""
    if below_seq is None:
        yield from db.execute("SELECT body, hash FROM records WHERE seq > ? ORDER BY seq", (since_seq,))
    else:
        yield from db.execute("SELECT body, hash FROM records WHERE seq > ? AND seq < ? ORDER BY seq",
                              (since_seq, below_seq))


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


def _enveloped(rec: Mapping[str, Any]) -> bool:
    """The fields every reader relies on are there (verify checks the rest)."""
    return all(isinstance(rec.get(k), t) and not isinstance(rec.get(k), bool) for k, t in _FIELDS.items())


def _finite(text: str) -> float:
    v = float(text)
    if v in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")      # canonical JSON could not hold it
    return v


def _no_constant(text: str) -> float:
    raise ValueError(f"{text} is not JSON")


def as_record(body: str, digest: str) -> dict[str, Any]:
    rec = decode(body, digest)
    if rec is None:
        raise ValueError("not a journal record")
    return rec


def create_segment(data_dir: Path, n: int, first_seq: int, prev: str, reason: str,
                   detail: Mapping[str, Any] | None = None) -> Path:
    """Write a new, empty segment file whole: built under a temporary name, synced, then renamed."""
    data_dir = Path(data_dir)
    final = segment_path(data_dir, n)
    tmp = final.with_name(f".{final.name}.new")
    for leftover in (tmp, tmp.with_name(tmp.name + "-journal")):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()
    db = sqlite3.connect(tmp, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
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
    fsync_dir(data_dir)
    return final


def make_read_only(path: Path) -> None:
    """Keep a closed or damaged segment (and any WAL beside it) as it is, read-only."""
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            p = path.with_name(path.name + suffix)
            p.chmod(p.stat().st_mode & 0o444)


class Journal:
    """The unit's journal in ``data_dir``: appends to the active segment, reads across all of them."""

    def __init__(self, data_dir: Path, tz: ZoneInfo, boot: str, *, readonly: bool = False,
                 autocheckpoint: int | None = None, remembered: bool = True) -> None:
        self.data = Path(data_dir)
        # Closed segments described once and remembered (index.py); the whole check passes
        # remembered=False and describes every file itself, once, in an index of its own.
        self._index = closed_index.for_dir(self.data) if remembered else closed_index.Index(self.data, private=True)
        self._closed_sizes: dict[str, int] = {}
        self.tz = tz
        self.boot = boot
        self.readonly = readonly
        self._autocheckpoint = autocheckpoint
        self.db: sqlite3.Connection | None = None
        self._reopened = False
        self.read_errors: list[str] = []
        self.gaps: list[Gap] = []
        try:
            if readonly:
                files = segment_files(self.data)
                if not files and (self.data / FILE_NAME).exists():
                    files = [(1, self.data / FILE_NAME)]
                if not files:
                    raise JournalError(f"no journal in {data_dir} (expected journal-000001.sqlite)")
                # Read-only, nothing is held open: every read opens what it needs, defensively.
                self._files = files
                self.path = files[-1][1]
                self.active = describe(files[-1][0], self.path)
                self._seq, self._hash = self._find_head()
                return
            self.data.mkdir(parents=True, exist_ok=True)
            self._migrate_single_file()
            files = segment_files(self.data)
            if not files:
                shown = chain_shown(self.data)
                if shown is not None:
                    raise JournalDamaged(f"the journal is damaged: no journal file in {self.data}, but {shown[2]} "
                                         "shows the unit had one")
                create_segment(self.data, 1, 1, chain.GENESIS, "new")
                files = segment_files(self.data)
            n, path = files[-1]
            why = not_a_file(path) or _companions(path)
            if why is not None:
                raise JournalDamaged(f"the journal file is damaged ({path}): {why}")
            if _closed(path):
                files = self._resume_after_closed(n, path)
                n, path = files[-1]
            self._files = files
            self.path = path
            try:
                self.db = self._open(self.path)
                self.active = read_meta(self.db, n, self.path)
            except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
                if isinstance(e, sqlite3.OperationalError) and _storage_trouble(e):
                    raise
                raise JournalDamaged(f"the journal file is damaged ({path}): {e}") from None
            self._seq, self._hash = self._db_head(self.db, self.active)
        except DB_ERRORS as e:
            self._close_db()
            raise _explain(e, self.data) from None
        except OSError as e:
            self._close_db()
            raise _explain(e, self.data) from None

    def _resume_after_closed(self, n: int, path: Path) -> list[tuple[int, Path]]:
        """The newest file is a closed segment (the next one was never made, or was lost): the
        chain goes on in a new segment from its last record, and the closed file stays as it is."""
        seg = describe(n, path)
        if seg.problem is not None:
            raise JournalDamaged(f"the journal file is damaged ({path}): {seg.problem}")
        db = connect_reader(path)
        try:
            seq, h = self._db_head(db, seg)
        finally:
            db.close()
        create_segment(self.data, n + 1, seq + 1, h, "resumed", {"closed_segment": n})
        return segment_files(self.data)

    def _find_head(self) -> tuple[int, str]:
        """The last readable record of the newest segment that has one (read-only journals)."""
        segs = self.segments()
        for seg in reversed(segs):
            last: tuple[int, str] | None = None
            closed = self._remembered(seg)
            if closed is not None and closed.last is not None:
                return closed.last
            if seg.problem is None:
                with contextlib.suppress(*DB_ERRORS):
                    db = connect_reader(seg.path)
                    try:
                        row = db.execute("SELECT seq, body, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
                    finally:
                        db.close()
                    if row is not None and decode(row[1], row[2]) is not None:
                        return int(row[0]), str(row[2])
            for seq, body, digest in self._rows(seg, 0, None, []):
                rec = decode(body, digest)
                if rec is not None:
                    last = (seq, digest)
            if last is not None:
                return last
            if seg.known and seg.problem is None:
                return seg.first_seq - 1, seg.prev
        return 0, chain.GENESIS

    # --- opening ---------------------------------------------------------------------

    def _open(self, path: Path) -> sqlite3.Connection:
        if self.readonly:
            return connect_reader(path)
        db = sqlite3.connect(path, isolation_level=None)
        db.text_factory = _text
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            # The daemon's connection lives for months: SQLite's default 2 MiB page cache would
            # fill as the journal grows (the unit's memory creeping up); appends and the newest
            # records need a few pages.
            db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            if self._autocheckpoint is not None:
                db.execute(f"PRAGMA wal_autocheckpoint={int(self._autocheckpoint)}")
            db.executescript(_SCHEMA)
        except DB_ERRORS:
            db.close()
            raise
        return db

    @staticmethod
    def _db_head(db: sqlite3.Connection, seg: Segment) -> tuple[int, str]:
        row = db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else (seg.first_seq - 1, seg.prev)

    def _migrate_single_file(self) -> None:
        """A unit from before segments kept one ``journal.sqlite``: it becomes segment 1, unchanged."""
        old = self.data / FILE_NAME
        if not old.exists() or segment_files(self.data):
            return
        db = sqlite3.connect(old, isolation_level=None)
        try:
            db.executescript(_SCHEMA)
            seg = read_meta(db, 1, old)
            # Folding the WAL into the file first lets the file be renamed on its own.
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("PRAGMA journal_mode=DELETE")
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", {
                "segment": "1", "first_seq": str(seg.first_seq), "prev": seg.prev, "reason": "migrated",
                "created": datetime.now(UTC).isoformat(timespec="seconds"), "detail": "{}"}.items())
            db.execute("COMMIT")
        finally:
            db.close()
        os.replace(old, segment_path(self.data, 1))
        fsync_dir(self.data)

    def _connection(self) -> sqlite3.Connection:
        """The active segment's connection, reopened after a storage error."""
        if self.db is None:
            db = self._open(self.path)
            try:
                # After a failed commit the kernel may hold WAL pages it could not write; folding
                # the WAL into the database file (and syncing it) makes what is readable durable.
                row = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if row is not None and int(row[0]) != 0:
                    raise sqlite3.OperationalError("database is busy: checkpoint after a storage error")
            except DB_ERRORS:
                db.close()
                raise
            self.db = db
            self._reopened = True
        return self.db

    def _close_db(self) -> None:
        if self.db is not None:
            with contextlib.suppress(sqlite3.Error):
                self.db.close()
            self.db = None

    # --- writing ---------------------------------------------------------------------

    def head(self) -> tuple[int, str]:
        return self._seq, self._hash

    def _body(self, rec: Record, at: Instant, time_quality: str, seq: int, prev: str) -> dict[str, Any]:
        body: dict[str, Any] = dict(rec.data)
        body.update({
            "seq": seq,
            "time": chain.format_time(at.wall, self.tz),
            "type": rec.type,
            "boot": self.boot,
            "mono_ms": round(at.mono * 1000),
            "tq": time_quality,
            "prev": prev,
        })
        if rec.session is not None:
            body["session"] = rec.session
        if rec.due is not None:
            body["due"] = chain.format_time(rec.due, self.tz)
        return body

    def append(self, rec: Record, at: Instant, time_quality: str) -> dict[str, Any]:
        """Commit one record; returns it as exported. Raises JournalError, leaving the head unchanged.

        Calling it again with the same record after an error is safe: if the failed commit did
        reach the file after all (an error reported after the write), it is not written twice.
        """
        if self.readonly:
            raise JournalError(f"the journal in {self.data} was opened read-only")
        body = self._body(rec, at, time_quality, self._seq + 1, self._hash)
        text, digest = chain.seal_body(body)
        try:
            db = self._connection()
            if self._reopened:
                self._reopened = False
                on_disk = self._db_head(db, self.active)
                if on_disk == (body["seq"], digest):
                    self._seq, self._hash = on_disk
                    body["hash"] = digest
                    return body
                if on_disk != (self._seq, self._hash):
                    self._seq, self._hash = on_disk
                    body = self._body(rec, at, time_quality, self._seq + 1, self._hash)
                    text, digest = chain.seal_body(body)
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO records (seq, time, type, session, body, hash) VALUES (?, ?, ?, ?, ?, ?)",
                       (body["seq"], body["time"], rec.type, rec.session, text, digest))
            db.execute("COMMIT")
        except DB_ERRORS as e:
            if self.db is not None:
                with contextlib.suppress(*DB_ERRORS):
                    self.db.execute("ROLLBACK")
            # Start from a fresh connection next time: after an I/O error SQLite's view of the
            # file may not match what is on the card.
            self._close_db()
            raise _explain(e, self.path) from None
        self._seq, self._hash = body["seq"], digest
        body["hash"] = digest
        return body

    def new_segment(self, reason: str, detail: Mapping[str, Any] | None = None, *,
                    continue_from: tuple[int, str] | None = None, damaged: bool = False) -> Segment:
        """Close the active segment and start the next one; the chain carries on from the head
        (or from ``continue_from`` when the active file is damaged and its end cannot be read)."""
        if self.readonly:
            raise JournalError(f"the journal in {self.data} was opened read-only")
        seq, prev = continue_from or (self._seq, self._hash)
        old = self.path
        try:
            if self.db is not None and not damaged:
                # A closed segment becomes one self-contained file that opens read-only anywhere.
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("PRAGMA journal_mode=DELETE")
            self._close_db()
            make_read_only(old)
            if self._index is not None and not damaged:
                # Described once, now, while its pages are in the cache: no later reader opens it to ask.
                self._closed_info(self.active.n, old, closing=True)
                self._index.save()
            n = self.active.n + 1
            path = create_segment(self.data, n, seq + 1, prev, reason, detail)
            self._files = segment_files(self.data)
            self.path = path
            self.db = self._open(path)
            self.active = read_meta(self.db, n, path)
            self._seq, self._hash = self._db_head(self.db, self.active)
        except (sqlite3.Error, OSError) as e:
            self._close_db()
            raise _explain(e, self.path) from None
        return self.active

    # --- reading ---------------------------------------------------------------------

    def segments(self) -> list[Segment]:
        """Every segment, oldest first. A file SQLite cannot read is described from its raw pages
        (``problem`` says why); one whose start cannot be found at all has ``known`` False. A
        closed segment read before is described from memory (index.py): no file is opened."""
        out = []
        files = segment_files(self.data) or self._files
        for n, path in files:
            if path == self.path and self.db is not None:
                out.append(self.active)
                continue
            closed = self._closed_info(n, path)
            out.append(_described(n, path, closed) if closed is not None else describe(n, path))
        if self._index is not None:
            self._index.keep_only({path.name for _, path in files})
            if not self.readonly:
                self._index.save()
        return out

    def _closed_info(self, n: int, path: Path, *, closing: bool = False) -> closed_index.Closed | None:
        """What is remembered of a closed, healthy segment (read and remembered now if it was
        not); None for any other file (the active one, one SQLite cannot read). ``closing``:
        ``path`` is the segment just closed (still ``self.path``)."""
        if self._index is None or (path == self.path and not self.readonly and not closing):
            return None
        got = self._index.get(path)
        if got is not None or closed_index.stamp(path) is None:
            return got
        try:
            db = connect_reader(path)
            try:
                seg = read_meta(db, n, path)
                last, types = closed_index.summarize(db)
            finally:
                db.close()
        except DB_ERRORS:
            return None       # described defensively by the caller (and salvaged), never remembered
        self._index.opens += 1
        meta = {"first_seq": seg.first_seq, "prev": seg.prev, "reason": seg.reason, "created": seg.created,
                "detail": dict(seg.detail)}
        return self._index.remember(path, meta, last, types)

    def _remembered(self, seg: Segment) -> closed_index.Closed | None:
        if seg.problem is not None or self._index is None or (seg.path == self.path and not self.readonly):
            return None
        return self._index.get(seg.path)

    def _reader(self, seg: Segment) -> tuple[sqlite3.Connection, bool]:
        if seg.path == self.path and not self.readonly:
            return self._connection(), False
        return connect_reader(seg.path), True

    def _query(self, seg: Segment, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]] | None:
        """``sql``'s rows from one segment through SQLite; None where SQLite cannot read it (the
        caller then salvages the file's raw pages)."""
        if seg.problem is not None:
            return None
        try:
            db, own = self._reader(seg)
            try:
                return list(db.execute(sql, params).fetchall())
            finally:
                if own:
                    db.close()
        except DB_ERRORS:
            if seg.path == self.path and not self.readonly:
                self._close_db()
            return None

    def _rows(self, seg: Segment, since_seq: int, below: int | None, problems: list[str],
              ) -> Iterator[tuple[int, Any, Any]]:
        """(seq, body, hash) of a segment's rows in seq order: through SQLite while it can read
        them, then from the file's raw pages (salvage.py); ``problems`` gets why it had to."""
        last = since_seq
        if seg.problem is None:
            try:
                db, own = self._reader(seg)
                try:
                    q = "SELECT seq, body, hash FROM records WHERE seq > ?" + (" AND seq < ?" if below else "")
                    cur = db.execute(q + " ORDER BY seq", (since_seq, below) if below else (since_seq,))
                    for seq, body, digest in cur:
                        last = seq
                        yield seq, body, digest
                finally:
                    if own:
                        db.close()
                return
            except DB_ERRORS as e:
                if seg.path == self.path and not self.readonly:
                    self._close_db()
                problems.append(f"{e}")
        else:
            problems.append(seg.problem)
        found = salvage.scan(seg.path)
        for seq in sorted(found.rows):
            if seq > last and (below is None or seq < below):
                yield (seq, *found.rows[seq])

    def entries(self, since_seq: int = 0, *, with_segments: bool = False, suspect: Mapping[int, str] | None = None,
                ) -> Iterator[dict[str, Any] | Gap | Segment]:
        """Records after ``since_seq`` in order across segments, as exported (body plus hash), and
        a ``Gap`` where records cannot be read (at the place they belong).

        Every readable record of every segment is given: a damaged file gives what SQLite can
        read of it and then what its raw pages still hold. Where a later segment restarted the
        chain below a file's end (after damage), the records beyond that point belong to the
        damaged file only and are not yielded. ``suspect``: segments known to be damaged (they
        failed SQLite's integrity check) whose missing rows are named as gaps even where SQLite
        reads on without an error.
        """
        segs = self.segments()
        seen: int | None = None             # the last seq given, in any segment
        for i, seg in enumerate(segs):
            # Bounded by the next segment whose start is known (a file with none hides nothing).
            below = next((s.first_seq for s in segs[i + 1:] if s.known), None)
            if below is not None and below - 1 <= since_seq:
                continue
            # Where its records should start: its own description, else after the last record given
            # (segment 1 always starts the chain: later ones are numbered on, even after pruning).
            expect = seg.first_seq if seg.known else (seen + 1 if seen is not None else 1 if seg.n == 1 else None)
            if with_segments:
                yield seg
            problems: list[str] = []
            doubt = (suspect or {}).get(seg.n)
            for seq, body, digest in self._rows(seg, since_seq, below, problems):
                rec = decode(body, digest)
                if rec is not None and not _enveloped(rec):
                    rec = None
                # A row is where it belongs when its body names its own seq. A damaged page can
                # give rows out of order or with a garbage rowid: one behind what was given is
                # dropped, and only a row that names itself moves the count on (so one garbage
                # rowid cannot hide the rows after it, and the records it stands for are named).
                trusted = rec is not None and rec.get("seq") == seq
                if seq <= since_seq or (expect is not None and seq < expect):
                    continue
                if not trusted and expect is not None and seq > expect and not problems:
                    problems.append("damaged pages (a row out of its place)")
                why = problems[0] if problems else doubt
                if why and expect is not None and trusted and seq > max(expect, since_seq + 1):
                    yield self._gap(seg, max(expect, since_seq + 1), seq - 1, why)
                if rec is None:
                    yield self._gap(seg, seq, seq, "the stored record cannot be decoded")
                else:
                    yield rec
                if trusted or seq == expect:
                    seen, expect = seq, seq + 1
            if problems or (doubt and below is not None):
                lo = max(expect, since_seq + 1) if expect is not None else None
                hi = below - 1 if below is not None else None
                if lo is None or hi is None or lo <= hi:
                    yield self._gap(seg, lo, hi, problems[0] if problems else str(doubt))

    def _gap(self, seg: Segment, lo: int | None, hi: int | None, problem: str) -> Gap:
        g = Gap(seg.n, seg.path.name, lo, hi, problem)
        self.gaps.append(g)
        return g

    def records(self, since_seq: int = 0) -> Iterator[dict[str, Any]]:
        """Records after ``since_seq`` in order, across segments (``entries`` without the gaps;
        ``gaps`` and ``read_errors`` say afterwards what could not be read)."""
        self.read_errors = []
        self.gaps = []
        for e in self.entries(since_seq):
            if isinstance(e, Gap):
                self.read_errors.append(str(e))
            elif not isinstance(e, Segment):
                yield e

    def recent(self, limit: int = 5000) -> list[Past]:
        """The newest records (oldest first), enough to rebuild the unit's state after a restart.

        Rows that cannot be read are passed over: what is readable still tells the unit where it is."""
        out: list[Past] = []
        segs = self.segments()
        below: int | None = None
        for seg in reversed(segs):
            q = "SELECT body, hash FROM records WHERE seq < ? ORDER BY seq DESC LIMIT ?"
            rows = self._query(seg, q, (below if below is not None else 2**62, limit - len(out)))
            if rows is None:
                found = salvage.scan(seg.path)
                rows = [found.rows[k] for k in sorted(found.rows, reverse=True) if below is None or k < below]
                rows = rows[:limit - len(out)]
            for body, digest in rows:
                rec = decode(body, digest)
                if rec is None:
                    continue
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    out.append(to_past(rec))
            if seg.known:
                below = seg.first_seq
            if len(out) >= limit:
                break
        out.reverse()
        return out

    def of_type(self, type_: str, *, newest: bool = False) -> list[dict[str, Any]]:
        """Every readable record of a type, oldest first (few: faults, seals); with ``newest``
        only the newest one (searching back through the segments)."""
        out: list[dict[str, Any]] = []
        for seg in (reversed(self.segments()) if newest else self.segments()):
            closed = self._remembered(seg)
            if closed is not None and not closed.holds(type_):
                continue            # a closed segment known to hold none: not opened
            found: list[dict[str, Any]] = []
            rows = self._query(seg, "SELECT body, hash FROM records WHERE type = ? ORDER BY seq", (type_,))
            if rows is None:
                scanned = salvage.scan(seg.path)
                rows = [scanned.rows[k] for k in sorted(scanned.rows)]
            for b, h in rows:
                rec = decode(b, h)
                if rec is not None and rec.get("type") == type_:
                    found.append(rec)
            if newest and found:
                return found[-1:]
            out.extend(found)
        return out

    def last_record(self) -> dict[str, Any] | None:
        """The newest readable record."""
        seq = self.head()[0]
        return next(iter(self.records(seq - 1)), None) if seq >= 1 else None

    def last_of_type(self, type_: str) -> dict[str, Any] | None:
        """The newest readable record of a type (e.g. the last seal)."""
        found = self.of_type(type_, newest=True)
        return found[-1] if found else None

    def active_bytes(self) -> int:
        """The active segment's size as a database (committed pages, whether in the file or its WAL)."""
        try:
            db = self._connection()
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            size = db.execute("PRAGMA page_size").fetchone()[0]
        except DB_ERRORS as e:
            self._close_db()
            raise _explain(e, self.path) from None
        return int(pages) * int(size)

    def size_bytes(self) -> int:
        """Every segment's bytes (with its WAL). Asked after each record (retention): a closed
        segment's size is read once and remembered (it never changes), so the cost of asking
        does not grow with the journal's age; the active one is read each time."""
        try:
            names = os.listdir(self.data)
        except FileNotFoundError:
            return 0
        known = self._closed_sizes
        active = self.path.name
        total = 0
        present = set()
        for name in names:
            if not _SEGMENT.match(name):
                continue
            present.add(name)
            size = known.get(name) if name != active else None
            if size is None:
                size = 0
                closed = name != active
                for suffix in ("", "-wal"):
                    try:
                        st = os.stat(self.data / (name + suffix))
                    except FileNotFoundError:
                        continue
                    size += st.st_size
                    closed = closed and suffix == "" and st.st_mode & 0o222 == 0
                if closed:
                    known[name] = size
            total += size
        for name in [n for n in known if n not in present]:
            del known[name]
        return total

    def close(self) -> None:
        self._close_db()


_ENVELOPE = {"seq", "time", "type", "session", "due", "boot", "mono_ms", "tq", "prev", "hash"}


def to_past(rec: Mapping[str, Any]) -> Past:
    data = {k: v for k, v in rec.items() if k not in _ENVELOPE}
    if "due" in rec:
        data["due"] = rec["due"]
    return Past(int(rec["seq"]), str(rec["type"]), chain.parse_time(rec["time"]), rec.get("session"), data)
