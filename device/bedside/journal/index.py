"""Closed segments, described once and remembered.

A closed segment is a read-only file that never changes again, so what readers ask of it
(its ``meta`` description, its last record, how many records of each type it holds and the
newest seq of each) is read once, when it closes, and remembered: in memory for the life of
the process, and in ``segments.idx`` in the data directory for the next start. A year of a
ward unit is about 120 segments (one per stay); before this, the start opened each of them
about 23 times (``Journal.segments()`` re-described every closed file on each call, and each
``of_type`` read every file). With it the start opens the active segment and the few closed
ones that hold what it looks for, whatever the journal's age.

What is remembered of a file is trusted only while the file is as it was: still read-only,
with the same size and modification time (to the nanosecond). Anything else (a file changed,
damaged, replaced or copied without its times) is described afresh, through the healthy read
path only: a file SQLite cannot read is never remembered, and salvage (salvage.py) reads it
every time as before. ``segments.idx`` is a cache: written whole (to a temporary name, then
renamed), never synced, ignored when it cannot be read or parsed, and rebuilt from the files.
The whole check (``verify.verify_data``, ``bedside log verify``) never reads it: it describes
every file itself (once per check, in an index of its own that never touches the card), so a
crafted index can at most make the unit's start look in the wrong segment, never make a
check pass.

Its size: one line (about 0.6 KiB) per closed segment, read whole at start (a year of stays:
about 75 KiB, a few milliseconds on a Pi Zero 2 W); a segment removed after export
(retention.py) leaves it at the next rewrite.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat as stat_
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bedside.durable import TooLarge, read_bounded

INDEX_FILE = "segments.idx"
VERSION = 1
MAX_BYTES = 8 * 1024 * 1024        # ten years of daily segments; a larger file is not ours: ignored

Stamp = tuple[int, int]            # (size, mtime_ns) of a read-only file


def stamp(path: Path) -> Stamp | None:
    """The identity a remembered description is checked against; None unless the file is a
    closed segment (a regular file with no write permission)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat_.S_ISREG(st.st_mode) or st.st_mode & 0o222:
        return None
    return st.st_size, st.st_mtime_ns


@dataclass(frozen=True, slots=True)
class Closed:
    """What is remembered of one closed segment."""

    stamp: Stamp
    meta: Mapping[str, Any]                      # first_seq, prev, reason, created, detail
    last: tuple[int, str] | None                 # (seq, hash) of its last record
    types: Mapping[str, tuple[int, int]]         # type -> (records, newest seq)

    def holds(self, type_: str) -> bool:
        return self.types.get(type_, (0, 0))[0] > 0


def summarize(db: sqlite3.Connection) -> tuple[tuple[int, str] | None, dict[str, tuple[int, int]]]:
    """The last record and the per-type counts of a segment, by SQLite (two queries)."""
    row = db.execute("SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1").fetchone()
    last = (int(row[0]), str(row[1])) if row is not None else None
    types = {str(t): (int(n), int(m)) for t, n, m in
             db.execute("SELECT type, count(*), max(seq) FROM records GROUP BY type")}
    return last, types


def _entry(obj: Any) -> tuple[str, Closed] | None:
    """One line of the file, checked field by field (the file is the card's, not ours to trust)."""
    if not isinstance(obj, dict):
        return None
    try:
        name, size, mtime = obj["file"], obj["size"], obj["mtime_ns"]
        meta, last, types = obj["meta"], obj["last"], obj["types"]
        if not (isinstance(name, str) and isinstance(size, int) and isinstance(mtime, int)
                and isinstance(meta, dict) and isinstance(types, dict)):
            return None
        if not (isinstance(meta.get("first_seq"), int) and isinstance(meta.get("prev"), str)
                and isinstance(meta.get("reason"), str) and isinstance(meta.get("created"), str)
                and isinstance(meta.get("detail"), dict)):
            return None
        if last is not None and not (isinstance(last, list) and len(last) == 2 and isinstance(last[0], int)
                                     and isinstance(last[1], str)):
            return None
        checked: dict[str, tuple[int, int]] = {}
        for t, v in types.items():
            if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) for x in v)):
                return None
            checked[str(t)] = (int(v[0]), int(v[1]))
    except (KeyError, TypeError):
        return None
    return name, Closed((size, mtime), meta, (last[0], last[1]) if last is not None else None, checked)


class Index:
    """The remembered closed segments of one data directory (shared by every reader of it in
    the process; ``persist``: this reader may rewrite ``segments.idx``)."""

    def __init__(self, data: Path, *, private: bool = False) -> None:
        self.data = Path(data)
        self.private = private   # one reader's own: never read from nor written to the card
        self.entries: dict[str, Closed] = {}
        self.loaded = private
        self.dirty = False
        self.opens = 0           # segment files opened to describe them (the tests count these)

    def _load(self) -> None:
        self.loaded = True
        try:
            raw = read_bounded(self.data / INDEX_FILE, MAX_BYTES)
        except (OSError, TooLarge):
            return
        lines = raw.decode("utf-8", "replace").splitlines()
        if not lines or lines[0] != json.dumps({"segments_index": VERSION}):
            return
        for line in lines[1:]:
            with contextlib.suppress(ValueError, RecursionError):
                got = _entry(json.loads(line))
                if got is not None and got[0] not in self.entries:
                    self.entries[got[0]] = got[1]

    def get(self, path: Path) -> Closed | None:
        """The remembered description of ``path`` if it is a closed segment as it was; else None."""
        st = stamp(path)
        if st is None:
            return None
        if not self.loaded:
            self._load()
        got = self.entries.get(path.name)
        return got if got is not None and got.stamp == st else None

    def remember(self, path: Path, meta: Mapping[str, Any], last: tuple[int, str] | None,
                 types: Mapping[str, tuple[int, int]]) -> Closed | None:
        st = stamp(path)
        if st is None:
            return None
        if not self.loaded:
            self._load()
        c = Closed(st, dict(meta), last, dict(types))
        self.entries[path.name] = c
        self.dirty = True
        return c

    def keep_only(self, names: set[str]) -> None:
        gone = [n for n in self.entries if n not in names]
        for n in gone:
            del self.entries[n]
            self.dirty = True

    def save(self) -> None:
        """Rewrite ``segments.idx`` if anything changed (a cache: a failure is only a cost)."""
        if not self.dirty or self.private:
            return
        lines = [json.dumps({"segments_index": VERSION})]
        for name in sorted(self.entries):
            c = self.entries[name]
            lines.append(json.dumps({"file": name, "size": c.stamp[0], "mtime_ns": c.stamp[1], "meta": dict(c.meta),
                                     "last": list(c.last) if c.last is not None else None,
                                     "types": {t: list(v) for t, v in sorted(c.types.items())}},
                                    separators=(",", ":")))
        tmp = self.data / (INDEX_FILE + ".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
            os.replace(tmp, self.data / INDEX_FILE)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            return
        self.dirty = False


# The unit reads one data directory; a laptop reading a ward's folders reads each once. A few
# are kept, the most recently used, so that memory does not grow with the folders read.
KEEP_DIRS = 4
_INDEXES: OrderedDict[str, Index] = OrderedDict()


def for_dir(data: Path) -> Index:
    """The process's index of ``data`` (every Journal on it shares what it learnt)."""
    key = os.path.abspath(data)
    idx = _INDEXES.pop(key, None)
    if idx is None:
        idx = Index(Path(data))
    _INDEXES[key] = idx
    while len(_INDEXES) > KEEP_DIRS:
        _INDEXES.popitem(last=False)
    return idx
