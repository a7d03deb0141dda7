"""The journal: every prompt and response, one committed SQLite transaction each.

Durability: WAL mode with ``synchronous=FULL``, so a record is on the card when
``append`` returns; the daemon shows a confirmation only after that.
Tamper evidence: each record's canonical JSON carries the SHA-256 of the previous
record (``prev``), and its own digest is stored beside it (``hash``); triggers make the
table append-only. ``chain.py`` holds the encoding shared with exports and verification.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from . import chain
from .events import Instant, Past, Record

FILE_NAME = "journal.sqlite"

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


def _explain(e: sqlite3.Error, path: Path) -> JournalError:
    text = str(e).lower()
    if "full" in text:
        return JournalError(f"the journal's storage is full ({path}); free space on the card")
    if "readonly" in text or "read-only" in text:
        return JournalError(f"the journal's storage is read-only ({path}); check the card and its mount")
    if "locked" in text or "busy" in text:
        return JournalError(f"another program holds the journal ({path}); is a second daemon running?")
    if "malformed" in text or "not a database" in text:
        return JournalError(f"the journal file is damaged ({path}); keep it for the engineer")
    return JournalError(f"the journal could not be written ({path}): {e}")


class Journal:
    def __init__(self, data_dir: Path, tz: ZoneInfo, boot: str, *, readonly: bool = False) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self.tz = tz
        self.boot = boot
        try:
            if readonly:
                if not self.path.exists():
                    raise JournalError(f"no journal in {data_dir} (expected {self.path.name})")
                self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
            else:
                Path(data_dir).mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, isolation_level=None)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")
                self.db.executescript(_SCHEMA)
            row = self.db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        except sqlite3.Error as e:
            raise _explain(e, self.path) from None
        self._seq, self._hash = (int(row[0]), str(row[1])) if row else (0, chain.GENESIS)

    def head(self) -> tuple[int, str]:
        return self._seq, self._hash

    def append(self, rec: Record, at: Instant, time_quality: str) -> dict[str, Any]:
        """Commit one record; returns it as exported. Raises JournalError, leaving the head unchanged."""
        seq = self._seq + 1
        body: dict[str, Any] = dict(rec.data)
        body.update({
            "seq": seq,
            "time": chain.format_time(at.wall, self.tz),
            "type": rec.type,
            "boot": self.boot,
            "mono_ms": round(at.mono * 1000),
            "tq": time_quality,
            "prev": self._hash,
        })
        if rec.session is not None:
            body["session"] = rec.session
        if rec.due is not None:
            body["due"] = chain.format_time(rec.due, self.tz)
        text, digest = chain.seal_body(body)
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO records (seq, time, type, session, body, hash) VALUES (?, ?, ?, ?, ?, ?)",
                            (seq, body["time"], rec.type, rec.session, text, digest))
            self.db.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise _explain(e, self.path) from None
        self._seq, self._hash = seq, digest
        body["hash"] = digest
        return body

    def records(self, since_seq: int = 0) -> Iterator[dict[str, Any]]:
        """Records after ``since_seq`` in order, as exported (body plus hash)."""
        cur = self.db.execute("SELECT body, hash FROM records WHERE seq > ? ORDER BY seq", (since_seq,))
        for text, digest in cur:
            rec = json.loads(text)
            rec["hash"] = digest
            yield rec

    def recent(self, limit: int = 5000) -> list[Past]:
        """The newest records (oldest first), enough to rebuild the unit's state after a restart."""
        rows = self.db.execute(
            "SELECT body FROM (SELECT seq, body FROM records ORDER BY seq DESC LIMIT ?) ORDER BY seq", (limit,))
        return [to_past(json.loads(text)) for (text,) in rows]

    def close(self) -> None:
        self.db.close()


_ENVELOPE = {"seq", "time", "type", "session", "due", "boot", "mono_ms", "tq", "prev", "hash"}


def to_past(rec: Mapping[str, Any]) -> Past:
    data = {k: v for k, v in rec.items() if k not in _ENVELOPE}
    if "due" in rec:
        data["due"] = rec["due"]
    return Past(int(rec["seq"]), str(rec["type"]), chain.parse_time(rec["time"]), rec.get("session"), data)
