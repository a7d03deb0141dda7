"""The Journal: the unit's record of care across its segment files.

Appends go to the active segment, one committed SQLite transaction each (WAL with
``synchronous=FULL``: a record is on the card when ``append`` returns); reads run across
every segment, closed ones described once and remembered. The segment files themselves,
their names, their metadata and how a stored row becomes a record are in ``segments.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bedside.core.events import Instant, Past, Record
from bedside.durable import fsync_dir
from bedside.journal import chain, salvage
from bedside.journal import index as closed_index
from bedside.journal.segments import (
    CACHE_KIB,
    DB_ERRORS,
    FILE_NAME,
    SCHEMA,
    CheckpointBusy,
    Gap,
    JournalDamaged,
    JournalError,
    Segment,
    chain_shown,
    changed,
    companions,
    connect_reader,
    create_segment,
    decode,
    describe,
    described,
    enveloped,
    explain,
    is_closed,
    lenient_text,
    limited,
    make_read_only,
    newest_file,
    not_a_file,
    past_last,
    read_meta,
    segment_files,
    segment_path,
    storage_trouble,
    to_past,
)


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
        # At most this many gaps kept in ``gaps`` (None: all), the rest counted: a reader that keeps
        # no records (verify) sets it, so that a file of many unreadable rows costs it a count.
        self.keep_gaps: int | None = None
        self.gaps_not_kept = 0
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
                self.active = describe(files[-1][0], self.path, own=True)
                self._seq, self._hash = self._find_head()
                return
            self.data.mkdir(parents=True, exist_ok=True)
            self._migrate_single_file()
            # Only the newest file is needed to write: one read of the directory holding one name,
            # whatever else it holds (a start's other reads list it under the start's budget).
            newest = newest_file(self.data)
            if newest is None:
                shown = chain_shown(self.data)
                if shown is not None:
                    raise JournalDamaged(f"the journal is damaged: no journal file in {self.data}, but {shown[2]} "
                                         "shows the unit had one")
                create_segment(self.data, 1, 1, chain.GENESIS, "new")
                newest = (1, segment_path(self.data, 1))
            files = [newest]
            n, path = newest
            why = not_a_file(path) or companions(path)
            if why is not None:
                raise JournalDamaged(f"the journal file is damaged ({path}): {why}{past_last(n)}")
            if is_closed(path):
                files = self._resume_after_closed(n, path)
                n, path = files[-1]
            self._files = files
            self.path = path
            try:
                self.db = self._open(self.path)
                self.active = read_meta(self.db, n, self.path)
            except (sqlite3.DatabaseError, UnicodeDecodeError) as e:
                if isinstance(e, sqlite3.OperationalError) and storage_trouble(e):
                    raise
                raise JournalDamaged(f"the journal file is damaged ({path}): {e}{past_last(n)}") from None
            self._seq, self._hash = self._db_head(self.db, self.active)
        except DB_ERRORS as e:
            self._close_db()
            raise explain(e, self.data) from None
        except OSError as e:
            self._close_db()
            raise explain(e, self.data) from None

    def _resume_after_closed(self, n: int, path: Path) -> list[tuple[int, Path]]:
        """The newest file is a closed segment (the next one was never made, or was lost): the
        chain goes on in a new segment from its last record, and the closed file stays as it is."""
        seg = describe(n, path)
        if seg.problem is not None:
            raise JournalDamaged(f"the journal file is damaged ({path}): {seg.problem}{past_last(n)}")
        db = connect_reader(path)
        try:
            seq, h = self._db_head(db, seg)
        finally:
            db.close()
        made = create_segment(self.data, n + 1, seq + 1, h, "resumed", {"closed_segment": n})
        return [(n + 1, made)]

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
            if seg.problem is not None:
                # SQLite refuses the file: its salvaged rows newest first, up to the first that decodes.
                for seq, body, digest in salvage.scan(seg.path).between(0, reverse=True):
                    if decode(body, digest) is not None:
                        last = (seq, digest)
                        break
            else:
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
        db = limited(sqlite3.connect(path, isolation_level=None))
        db.text_factory = lenient_text
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            # The daemon's connection lives for months: SQLite's default 2 MiB page cache would
            # fill as the journal grows (the unit's memory creeping up); appends and the newest
            # records need a few pages.
            db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            if self._autocheckpoint is not None:
                db.execute(f"PRAGMA wal_autocheckpoint={int(self._autocheckpoint)}")
            db.executescript(SCHEMA)
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
        if not old.exists() or newest_file(self.data) is not None:
            return
        db = sqlite3.connect(old, isolation_level=None)
        try:
            db.executescript(SCHEMA)
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
        changed(self.data)
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
                    raise CheckpointBusy("database is busy: checkpoint after a storage error")
                if self.active.path != self.path:
                    # new_segment() made this file but failed to open it: its own description,
                    # or the chain would go on from the closed segment's start (seq used twice).
                    n = next(k for k, f in self._files if f == self.path)
                    self.active = read_meta(db, n, self.path)
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
            raise explain(e, self.path) from None
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
            self._files = [(n, path)]          # (the fallback of ``segments``; never the whole directory)
            self.path = path
            self.db = self._open(path)
            self.active = read_meta(self.db, n, path)
            self._seq, self._hash = self._db_head(self.db, self.active)
        except (sqlite3.Error, OSError) as e:
            self._close_db()
            raise explain(e, self.path) from None
        return self.active

    # --- reading ---------------------------------------------------------------------

    def segments(self) -> list[Segment]:
        """Every segment, oldest first. A file SQLite cannot read is described from its raw pages
        (``problem`` says why); one whose start cannot be found at all has ``known`` False. A
        closed segment read before is described from memory (index.py): no file is opened."""
        out = []
        files = segment_files(self.data) or self._files
        budget = salvage.current()
        whole = budget is None or budget.files is None or not budget.not_listed
        newest = files[-1][1] if files else None
        for n, path in files:
            if path == self.path and self.db is not None:
                out.append(self.active)
                continue
            own = path in (newest, self.path)
            closed = self._closed_info(n, path, own=own)
            out.append(described(n, path, closed) if closed is not None
                       else describe(n, path, own=own or self._own(path)))
        if self._index is not None and whole:
            # (A list that left files out says nothing of whether they are still there.)
            self._index.keep_only({path.name for _, path in files})
            if not self.readonly:
                self._index.save()
        return out

    def _own(self, path: Path) -> bool:
        """A closed segment the unit's own index remembers (the whole check's private index does
        not): opened by a pass of the journal check whatever its count of files (salvage.admit)."""
        return self._index is not None and self._index.private and closed_index.for_dir(self.data).get(path) is not None

    def _closed_info(self, n: int, path: Path, *, closing: bool = False,
                     own: bool = False) -> closed_index.Closed | None:
        """What is remembered of a closed, healthy segment (read and remembered now if it was
        not); None for any other file (the active one, one SQLite cannot read). ``closing``:
        ``path`` is the segment just closed (still ``self.path``)."""
        if self._index is None or (path == self.path and not self.readonly and not closing):
            return None
        got = self._index.get(path)
        if got is not None or closed_index.stamp(path) is None:
            return got
        if isinstance(salvage.described(path), Segment) or not salvage.admit(path, own=own or self._own(path)):
            # Described already in this budget (SQLite refused it: not opened again), or past the
            # budget's count of files (``salvage.admit``): described by the caller without opening.
            return None
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
        # One row in memory at a time: salvage keeps where each row is, and reads it when given.
        yield from salvage.scan(seg.path).between(last, below)

    def entries(self, since_seq: int = 0, *, with_segments: bool = False, suspect: Mapping[int, str] | None = None,
                ) -> Iterator[dict[str, Any] | Gap | Segment]:
        """Records after ``since_seq`` in order across segments, as exported (body plus hash), and
        a ``Gap`` where records cannot be read (at the place they belong; adjacent unreadable
        records of one segment for one reason are one gap, so that the gaps are never more than
        the records given plus one a segment).

        Every readable record of every segment is given: a damaged file gives what SQLite can
        read of it and then what its raw pages still hold. Where a later segment restarted the
        chain below a file's end (after damage), the records beyond that point belong to the
        damaged file only and are not yielded. ``suspect``: segments known to be damaged (they
        failed SQLite's integrity check) whose missing rows are named as gaps even where SQLite
        reads on without an error.
        """
        pending: Gap | None = None
        for e in self._entries(since_seq, with_segments=with_segments, suspect=suspect):
            if isinstance(e, Gap):
                if (pending is not None and (pending.segment, pending.problem) == (e.segment, e.problem)
                        and pending.last is not None and e.first == pending.last + 1 and e.last is not None):
                    pending = Gap(e.segment, e.file, pending.first, e.last, e.problem)
                    continue
                if pending is not None:
                    yield self._kept(pending)
                pending = e
                continue
            if pending is not None:
                yield self._kept(pending)
                pending = None
            yield e
        if pending is not None:
            yield self._kept(pending)

    def _kept(self, g: Gap) -> Gap:
        if self.keep_gaps is None or len(self.gaps) < self.keep_gaps:
            self.gaps.append(g)
        else:
            self.gaps_not_kept += 1
        return g

    def _entries(self, since_seq: int, *, with_segments: bool, suspect: Mapping[int, str] | None,
                 ) -> Iterator[dict[str, Any] | Gap | Segment]:
        segs = self.segments()
        seen: int | None = None             # the last seq given, in any segment
        # Each segment is bounded by the next one whose start is known (a file with none hides
        # nothing): found in one walk back, not a walk forward per segment (quadratic in the files).
        belows: list[int | None] = [None] * len(segs)
        for i in range(len(segs) - 2, -1, -1):
            nxt = segs[i + 1]
            belows[i] = nxt.first_seq if nxt.known else belows[i + 1]
        for i, seg in enumerate(segs):
            below = belows[i]
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
                if rec is not None and not enveloped(rec):
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
        return Gap(seg.n, seg.path.name, lo, hi, problem)

    def records(self, since_seq: int = 0) -> Iterator[dict[str, Any]]:
        """Records after ``since_seq`` in order, across segments (``entries`` without the gaps;
        ``gaps`` and ``read_errors`` say afterwards what could not be read)."""
        self.read_errors = []
        self.gaps = []
        self.gaps_not_kept = 0
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
                newest = salvage.scan(seg.path).between(0, below, reverse=True)
                rows = [(b, h) for _, b, h in itertools.islice(newest, limit - len(out))]
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
            got = self._query(seg, "SELECT body, hash FROM records WHERE type = ? ORDER BY seq", (type_,))
            rows: Iterable[tuple[Any, ...]] = (
                got if got is not None else ((b, h) for _, b, h in salvage.scan(seg.path).between(0)))
            for b, h in rows:
                rec = decode(b, h)
                if rec is not None and rec.get("type") == type_:
                    if newest:
                        found = [rec]          # only the newest is wanted: never a file's worth of them
                    else:
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
            raise explain(e, self.path) from None
        return int(pages) * int(size)

    def size_bytes(self) -> int:
        """The listed segments' bytes (with their WAL). Asked after each record (retention): a
        file other than the active one is read once and its size remembered (a closed segment's
        never changes, and the unit writes no other), so the cost of asking does not grow with
        the journal's age; the active one is read each time. The files are those of
        ``segment_files`` under a budget with a file count (the caller's, else one of its own):
        at most ``salvage.LIST_FILES``, the oldest and newest by number, where the unit's own
        are. Files left out of that list are not the unit's and are not counted, so sizes are
        remembered for at most that many names whatever the directory holds."""
        budget = salvage.current()
        if budget is not None and budget.files is not None:
            files = segment_files(self.data)
        else:
            with salvage.bounded(0, files=salvage.STEP_FILES):
                files = segment_files(self.data)
        known = self._closed_sizes
        active = self.path.name
        total = 0
        present = set()
        for _, path in files:
            name = path.name
            present.add(name)
            size = known.get(name) if name != active else None
            if size is None:
                size = 0
                keep = name != active
                for suffix in ("", "-wal"):
                    try:
                        st = os.stat(path.with_name(name + suffix))
                    except FileNotFoundError:
                        continue
                    size += st.st_size
                    keep = keep and suffix == ""           # (a WAL may still be checkpointed away)
                if keep:
                    known[name] = size
            total += size
        for name in [n for n in known if n not in present]:
            del known[name]
        return total

    def close(self) -> None:
        self._close_db()
