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
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bedside.core.events import Instant, Past, Record
from bedside.durable import fsync_dir
from bedside.journal import chain

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


class JournalError(Exception):
    """The journal cannot be written or read; the message says what a person can do."""


def _explain(e: sqlite3.Error | OSError, path: Path) -> JournalError:
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
    first_seq: int                 # seq of its first record (the next seq if it has none yet)
    prev: str                      # hash its first record links to
    reason: str                    # new | size | damaged | episode | migrated | …
    created: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    def header(self) -> dict[str, Any]:
        """As listed in an export's header."""
        out: dict[str, Any] = {"n": self.n, "file": self.path.name, "first_seq": self.first_seq, "prev": self.prev,
                               "reason": self.reason, "created": self.created}
        if self.detail:
            out["detail"] = dict(self.detail)
        return out


def _connect_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)


def read_meta(db: sqlite3.Connection, n: int, path: Path) -> Segment:
    """A segment's description from its ``meta`` table (or, for files from before segments, its records)."""
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    if "first_seq" in meta:
        return Segment(n, path, int(meta["first_seq"]), meta["prev"], meta.get("reason", "new"),
                       meta.get("created", ""), json.loads(meta.get("detail", "{}")))
    row = db.execute("SELECT body FROM records ORDER BY seq LIMIT 1").fetchone()
    if row is None:
        return Segment(n, path, 1, chain.GENESIS, "new", "")
    first = json.loads(row[0])
    return Segment(n, path, int(first["seq"]), str(first["prev"]), "new", "")


def segment_rows(db: sqlite3.Connection, since_seq: int = 0, below_seq: int | None = None,
                 ) -> Iterator[tuple[str, str]]:
    """(canonical body, hash) of a segment's records in seq order."""
    if below_seq is None:
        yield from db.execute("SELECT body, hash FROM records WHERE seq > ? ORDER BY seq", (since_seq,))
    else:
        yield from db.execute("SELECT body, hash FROM records WHERE seq > ? AND seq < ? ORDER BY seq",
                              (since_seq, below_seq))


def as_record(body: str, digest: str) -> dict[str, Any]:
    rec: dict[str, Any] = json.loads(body)
    rec["hash"] = digest
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
                 autocheckpoint: int | None = None) -> None:
        self.data = Path(data_dir)
        self.tz = tz
        self.boot = boot
        self.readonly = readonly
        self._autocheckpoint = autocheckpoint
        self.db: sqlite3.Connection | None = None
        self._reopened = False
        self.read_errors: list[str] = []
        try:
            if readonly:
                files = segment_files(self.data)
                if not files and (self.data / FILE_NAME).exists():
                    files = [(1, self.data / FILE_NAME)]
                if not files:
                    raise JournalError(f"no journal in {data_dir} (expected journal-000001.sqlite)")
            else:
                self.data.mkdir(parents=True, exist_ok=True)
                self._migrate_single_file()
                files = segment_files(self.data)
                if not files:
                    create_segment(self.data, 1, 1, chain.GENESIS, "new")
                    files = segment_files(self.data)
            self._files = files
            self.path = files[-1][1]
            self.db = self._open(self.path)
            self.active = read_meta(self.db, files[-1][0], self.path)
            self._seq, self._hash = self._db_head(self.db, self.active)
        except sqlite3.Error as e:
            self._close_db()
            raise _explain(e, self.data) from None
        except OSError as e:
            self._close_db()
            raise _explain(e, self.data) from None

    # --- opening ---------------------------------------------------------------------

    def _open(self, path: Path) -> sqlite3.Connection:
        if self.readonly:
            return _connect_ro(path)
        db = sqlite3.connect(path, isolation_level=None)
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
        except sqlite3.Error:
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
            except sqlite3.Error:
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
        except sqlite3.Error as e:
            if self.db is not None:
                with contextlib.suppress(sqlite3.Error):
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
        """Every segment, oldest first (a damaged file's description may be a guess)."""
        out = []
        for n, path in segment_files(self.data) or self._files:
            if path == self.path:
                out.append(self.active)
                continue
            try:
                db = _connect_ro(path)
                try:
                    out.append(read_meta(db, n, path))
                finally:
                    db.close()
            except sqlite3.Error:
                out.append(Segment(n, path, 0, "", "unreadable", "", {"error": "cannot be read"}))
        return out

    def _reader(self, seg: Segment) -> tuple[sqlite3.Connection, bool]:
        if seg.path == self.path:
            return self._connection(), False
        return _connect_ro(seg.path), True

    def records(self, since_seq: int = 0) -> Iterator[dict[str, Any]]:
        """Records after ``since_seq`` in order, across segments, as exported (body plus hash).

        Where a later segment restarted the chain below a file's end (after damage), the
        records beyond that point belong to the damaged file only and are not yielded.
        """
        segs = self.segments()
        self.read_errors = []
        for i, seg in enumerate(segs):
            below = segs[i + 1].first_seq if i + 1 < len(segs) else None
            if below is not None and below - 1 <= since_seq:
                continue
            try:
                db, own = self._reader(seg)
                try:
                    for text, digest in segment_rows(db, since_seq, below):
                        yield as_record(text, digest)
                finally:
                    if own:
                        db.close()
            except sqlite3.Error as e:
                if seg.path == self.path:
                    raise _explain(e, self.data) from None
                # A damaged older segment: give what it had, then go on with the next one; the
                # chain's break there shows in verify, and read_errors says where.
                self.read_errors.append(f"segment {seg.n} ({seg.path.name}): {e}")

    def recent(self, limit: int = 5000) -> list[Past]:
        """The newest records (oldest first), enough to rebuild the unit's state after a restart."""
        out: list[Past] = []
        try:
            segs = self.segments()
            below: int | None = None
            for seg in reversed(segs):
                try:
                    db, own = self._reader(seg)
                except sqlite3.Error:
                    if seg.path == self.path:
                        raise
                    break       # a damaged older segment: rebuild from what is readable
                try:
                    q = "SELECT body FROM records WHERE seq < ? ORDER BY seq DESC LIMIT ?"
                    rows = db.execute(q, (below if below is not None else 2**62, limit - len(out))).fetchall()
                except sqlite3.Error:
                    if seg.path == self.path:
                        raise
                    break
                finally:
                    if own:
                        db.close()
                out.extend(to_past(json.loads(text)) for (text,) in rows)
                below = seg.first_seq
                if len(out) >= limit:
                    break
        except sqlite3.Error as e:
            raise _explain(e, self.data) from None
        out.reverse()
        return out

    def last_of_type(self, type_: str) -> dict[str, Any] | None:
        """The newest record of a type (e.g. the last seal), searching back through the segments."""
        try:
            for seg in reversed(self.segments()):
                db, own = self._reader(seg)
                try:
                    row = db.execute("SELECT body, hash FROM records WHERE type = ? ORDER BY seq DESC LIMIT 1",
                                     (type_,)).fetchone()
                finally:
                    if own:
                        db.close()
                if row is not None:
                    return as_record(row[0], row[1])
        except sqlite3.Error as e:
            raise _explain(e, self.data) from None
        return None

    def of_type(self, type_: str) -> list[dict[str, Any]]:
        """Every readable record of a type, oldest first (few: faults, seals)."""
        out: list[dict[str, Any]] = []
        for seg in self.segments():
            try:
                db, own = self._reader(seg)
                try:
                    rows = db.execute("SELECT body, hash FROM records WHERE type = ? ORDER BY seq",
                                      (type_,)).fetchall()
                finally:
                    if own:
                        db.close()
            except sqlite3.Error:
                continue
            out.extend(as_record(b, h) for b, h in rows)
        return out

    def active_bytes(self) -> int:
        """The active segment's size as a database (committed pages, whether in the file or its WAL)."""
        try:
            db = self._connection()
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            size = db.execute("PRAGMA page_size").fetchone()[0]
        except sqlite3.Error as e:
            self._close_db()
            raise _explain(e, self.path) from None
        return int(pages) * int(size)

    def size_bytes(self) -> int:
        total = 0
        for _, path in segment_files(self.data):
            for suffix in ("", "-wal"):
                with contextlib.suppress(FileNotFoundError):
                    total += path.with_name(path.name + suffix).stat().st_size
        return total

    def close(self) -> None:
        self._close_db()


_ENVELOPE = {"seq", "time", "type", "session", "due", "boot", "mono_ms", "tq", "prev", "hash"}


def to_past(rec: Mapping[str, Any]) -> Past:
    data = {k: v for k, v in rec.items() if k not in _ENVELOPE}
    if "due" in rec:
        data["due"] = rec["due"]
    return Past(int(rec["seq"]), str(rec["type"]), chain.parse_time(rec["time"]), rec.get("session"), data)
