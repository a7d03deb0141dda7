"""Keeping the journal bounded without losing anything that was not exported.

The policy (docs/journal.md has the nurse-facing version):

* The active segment is closed and a new one started when it passes ``SEGMENT_BYTES``
  (about a year of a busy ward's events).
* Whole closed segments are deleted, oldest first, only while the journal is larger
  than ``KEEP_BYTES`` and only when every record in them was exported: an export written
  to a file (a USB stick, the serial download) leaves a marker, ``exported.json``, naming
  the last record it held; a segment is pruned only if that record is in the journal with
  the same hash, and the segment ends at or before it. A ``pruned`` record says what went.
* Presses that change nothing (progress, dismiss, nurse screen, a refused snooze) are
  logged at most ``PRESS_LIMIT`` an hour; past that they are counted, and one ``flood``
  record and one ``flood_end`` record (with the count) stand for them, so a chattering
  button cannot fill the card. Everything that concerns a session is always logged.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bedside.core.events import Record
from bedside.core.records import T
from bedside.durable import fsync_dir, json_loads, read_text, write_atomic
from bedside.journal import segments
from bedside.journal.journal import Journal

MARKER = "exported.json"
SEGMENT_BYTES = 8 * 1024 * 1024
KEEP_BYTES = 256 * 1024 * 1024
PRESS_LIMIT = 30
PRESS_WINDOW_S = 3600.0
IDLE_ACTIONS = frozenset({"progress", "dismiss", "nurse_screen", "snooze_refused"})


@dataclass(frozen=True, slots=True)
class Marker:
    seq: int
    hash: str
    to: str
    at: str


def mark_exported(data_dir: Path, seq: int, digest: str, to: str, at: datetime) -> None:
    """Note that records up to ``seq`` were exported to ``to`` (so they may be pruned one day)."""
    old = read_marker(data_dir)
    if old is not None and old.seq > seq:
        return          # an older, smaller export does not move the mark back
    body = {"seq": seq, "hash": digest, "to": to, "at": at.isoformat(timespec="seconds")}
    write_atomic(Path(data_dir) / MARKER, (json.dumps(body, sort_keys=True) + "\n").encode())


def read_marker(data_dir: Path) -> Marker | None:
    try:
        text = read_text(Path(data_dir) / MARKER)
        if text is None:
            return None
        b = json_loads(text)
        return Marker(int(b["seq"]), str(b["hash"]), str(b.get("to", "")), str(b.get("at", "")))
    except (OSError, ValueError, KeyError, TypeError, OverflowError):     # (a seq of Infinity: no whole number)
        return None


def _record_at(journal: Journal, seq: int) -> dict[str, Any] | None:
    for rec in journal.records(seq - 1):
        return rec if rec["seq"] == seq else None
    return None


def needs_new_segment(journal: Journal, limit: int = SEGMENT_BYTES) -> bool:
    """The active segment holds more than ``limit`` bytes of records (and at least one record)."""
    return journal.active_bytes() > limit and journal.head()[0] >= journal.active.first_seq


def prunable(journal: Journal, keep: int = KEEP_BYTES) -> list[tuple[int, Path, int, int]]:
    """(segment, path, first seq, last seq) of closed segments that may be deleted now, oldest first."""
    total = journal.size_bytes()
    if total <= keep:
        return []
    marker = read_marker(journal.data)
    if marker is None:
        return []
    rec = _record_at(journal, marker.seq)
    if rec is None or rec["hash"] != marker.hash:
        return []          # the marker is not about this journal (or it was rewritten): keep everything
    segs = journal.segments()
    out = []
    for seg, nxt in itertools.pairwise(segs):
        if not (seg.known and nxt.known):
            # Where this segment ends is the next one's start: not known (a file whose start
            # cannot be read, or not read yet), nothing from here on is pruned.
            break
        last = nxt.first_seq - 1
        if seg.path == journal.path or last > marker.seq or total <= keep:
            break
        # (Its own files by name: a glob would read the whole directory once per segment.)
        size = 0
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(OSError):
                size += seg.path.with_name(seg.path.name + suffix).stat().st_size
        out.append((seg.n, seg.path, seg.first_seq, last))
        total -= size
    return out


def prune_record(n: int, first: int, last: int, last_hash: str, marker: Marker, from_seq: int | None = None,
                 ) -> Record:
    """``from_seq``: where the pruned part of the journal begins (1), so that this record alone
    accounts for every record before the journal's new start, even once older ``pruned``
    records are pruned in their turn."""
    return Record(T.PRUNED, data={"segment": n, "first_seq": first, "last_seq": last, "last_hash": last_hash,
                                  "from_seq": first if from_seq is None else from_seq,
                                  "exported_to": marker.to, "exported_at": marker.at})


def delete_segment(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    segments.changed(path.parent, removed=int(path.name[8:14]) if segments.SEGMENT_NAME.match(path.name) else None)
    fsync_dir(path.parent)


class FloodGuard:
    """Lets at most ``limit`` presses that change nothing be logged per ``window_s`` seconds."""

    def __init__(self, limit: int = PRESS_LIMIT, window_s: float = PRESS_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self.times: deque[float] = deque()
        self.suppressed = 0

    def _idle_press(self, rec: Record) -> bool:
        return rec.type == T.PRESS and rec.data.get("action") in IDLE_ACTIONS

    def filter(self, rec: Record, mono: float) -> list[Record]:
        """The records to write in place of ``rec`` (itself, nothing, or a flood notice)."""
        while self.times and self.times[0] <= mono - self.window_s:
            self.times.popleft()
        out: list[Record] = []
        if self.suppressed and len(self.times) < self.limit // 2:
            out.append(Record(T.FLOOD_END, data={"type": T.PRESS, "suppressed": self.suppressed}))
            self.suppressed = 0
        if not self._idle_press(rec):
            return [*out, rec]
        if len(self.times) >= self.limit:
            if self.suppressed == 0:
                out.append(Record(T.FLOOD, data={"type": T.PRESS, "limit": self.limit,
                                                 "per_s": int(self.window_s)}))
            self.suppressed += 1
            return out
        self.times.append(mono)
        return [*out, rec]
