"""Reading rows out of a damaged SQLite segment, page by page, without SQLite.

When SQLite refuses a segment (a flipped byte in its header, a torn page, a file cut short),
most of its pages are usually still intact, and each table leaf page holds whole rows. This
module reads the file (and its WAL, whose frames hold newer copies of pages) as raw pages,
finds every table leaf page, and decodes its cells with the file format's own rules
(https://sqlite.org/fileformat2.html): a row of the ``records`` table is six columns (seq as
the rowid, time, type, session, body, hash), a row of ``meta`` two texts. Nothing here trusts
the file: a cell that does not decode is skipped, never guessed.

Only what SQLite could not read is taken from here: the journal reads with SQLite first and
fills the rest from these rows (a freed page may keep an old copy of a row; SQLite's view of
the tree comes first).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

_MAGIC = b"SQLite format 3\x00"
_LEAF_TABLE = 0x0D
_WAL_MAGIC = (0x377F0682, 0x377F0683)
MAX_BYTES = 64 * 1024 * 1024       # a segment closes at 8 MiB; more than this is not one of ours


@dataclass
class Salvaged:
    rows: dict[int, tuple[str, str]] = field(default_factory=dict)   # seq -> (body, hash)
    meta: dict[str, str] = field(default_factory=dict)
    pages: int = 0
    leaf_pages: int = 0


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    v = 0
    for k in range(8):
        b = buf[i + k]
        v = (v << 7) | (b & 0x7F)
        if b < 0x80:
            return v, i + k + 1
    return (v << 8) | buf[i + 8], i + 9


def _value(serial: int, buf: bytes, i: int) -> tuple[object, int]:
    if serial == 0:
        return None, i
    if 1 <= serial <= 6:
        n = (1, 2, 3, 4, 6, 8)[serial - 1]
        if i + n > len(buf):
            raise ValueError("cut short")
        return int.from_bytes(buf[i:i + n], "big", signed=True), i + n
    if serial == 7:
        return None, i + 8
    if serial in (8, 9):
        return serial - 8, i
    if serial >= 12:
        n = (serial - 12) // 2 if serial % 2 == 0 else (serial - 13) // 2
        if i + n > len(buf):
            raise ValueError("cut short")
        raw = buf[i:i + n]
        return (raw if serial % 2 == 0 else raw.decode("utf-8")), i + n
    raise ValueError("reserved serial type")


def _record(payload: bytes) -> list[object]:
    size, i = _varint(payload, 0)
    if size > len(payload) or size < 1:
        raise ValueError("bad header")
    serials = []
    while i < size:
        s, i = _varint(payload, i)
        serials.append(s)
    out = []
    j = size
    for s in serials:
        v, j = _value(s, payload, j)
        out.append(v)
    return out


class _Pages:
    """The file's pages, newest copy first (WAL frames win over the database file)."""

    def __init__(self, path: Path) -> None:
        self.db = _read(path)
        size = int.from_bytes(self.db[16:18], "big") if self.db[:16] == _MAGIC else 0
        size = 65536 if size == 1 else size
        self.wal = _read(path.with_name(path.name + "-wal"))
        wal_size = int.from_bytes(self.wal[8:12], "big") if len(self.wal) >= 32 else 0
        if int.from_bytes(self.wal[:4], "big") not in _WAL_MAGIC:
            wal_size = 0
        good = [s for s in (size, wal_size) if s >= 512 and s & (s - 1) == 0]
        self.size = good[0] if good else 4096
        self.reserved = self.db[20] if len(self.db) > 20 and self.db[:16] == _MAGIC else 0
        self.by_number: dict[int, bytes] = {}
        for k in range(len(self.db) // self.size):
            self.by_number[k + 1] = self.db[k * self.size:(k + 1) * self.size]
        if wal_size == self.size:
            frame = 24 + self.size
            at = 32
            salts = self.wal[16:24]
            while at + frame <= len(self.wal):
                n = int.from_bytes(self.wal[at:at + 4], "big")
                # Frames with other salts are left over from before a checkpoint: older than the file.
                if n >= 1 and self.wal[at + 8:at + 16] == salts:
                    self.by_number[n] = self.wal[at + 24:at + frame]
                at += frame

    def usable(self) -> int:
        return self.size - self.reserved


def _read(path: Path) -> bytes:
    """A regular file's bytes (at most MAX_BYTES); nothing for anything else or on any error."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            return b""
        with open(path, "rb") as f:
            return f.read(MAX_BYTES)
    except OSError:
        return b""


def _payload(pages: _Pages, page: bytes, at: int) -> tuple[int, bytes]:
    """(rowid, payload) of the table leaf cell at ``at``, following overflow pages."""
    total, i = _varint(page, at)
    rowid, i = _varint(page, i)
    u = pages.usable()
    x = u - 35
    if total <= x:
        if i + total > len(page):
            raise ValueError("cell past the page")
        return rowid, page[i:i + total]
    m = ((u - 12) * 32 // 255) - 23
    k = m + (total - m) % (u - 4)
    local = k if k <= x else m
    out = bytearray(page[i:i + local])
    nxt = int.from_bytes(page[i + local:i + local + 4], "big")
    seen = set()
    while len(out) < total:
        if nxt in seen or nxt not in pages.by_number:
            raise ValueError("overflow chain broken")
        seen.add(nxt)
        over = pages.by_number[nxt]
        nxt = int.from_bytes(over[:4], "big")
        out += over[4:u][:total - len(out)]
    return rowid, bytes(out)


def scan(path: Path) -> Salvaged:
    """Every row of ``records`` and ``meta`` that can still be decoded from the file's pages."""
    pages = _Pages(Path(path))
    out = Salvaged(pages=len(pages.by_number))
    for n, page in sorted(pages.by_number.items()):
        head = 100 if n == 1 else 0
        if len(page) < head + 8 or page[head] != _LEAF_TABLE:
            continue
        out.leaf_pages += 1
        cells = int.from_bytes(page[head + 3:head + 5], "big")
        for c in range(min(cells, (len(page) - head - 8) // 2)):
            ptr = int.from_bytes(page[head + 8 + 2 * c:head + 10 + 2 * c], "big")
            try:
                if ptr < head + 8 or ptr >= len(page):
                    continue
                rowid, payload = _payload(pages, page, ptr)
                cols = _record(payload)
            except (ValueError, IndexError, UnicodeDecodeError):
                continue
            _take(out, rowid, cols)
    return out


def _take(out: Salvaged, rowid: int, cols: list[object]) -> None:
    if len(cols) == 6 and cols[0] is None and all(isinstance(v, str) for v in (cols[1], cols[2], cols[4], cols[5])):
        body, digest = cols[4], cols[5]
        assert isinstance(body, str) and isinstance(digest, str)
        if rowid >= 1 and len(digest) == 64 and body.startswith("{"):
            out.rows[rowid] = (body, digest)
    elif len(cols) == 2 and isinstance(cols[0], str) and isinstance(cols[1], str) and cols[0] in (
            "segment", "first_seq", "prev", "reason", "created", "detail"):
        out.meta[cols[0]] = cols[1]
