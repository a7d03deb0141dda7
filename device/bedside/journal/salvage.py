"""Reading rows out of a damaged SQLite segment, page by page, without SQLite.

When SQLite refuses a segment (a flipped byte in its header, a torn page, a file cut short),
most of its pages are usually still intact, and each table leaf page holds whole rows. This
module reads the file (and its WAL, whose committed frames hold newer copies of pages) as raw
pages, finds every table leaf page, and decodes its cells with the file format's own rules
(https://sqlite.org/fileformat2.html): a row of the ``records`` table is six columns (seq as
the rowid, time, type, session, body, hash), a row of ``meta`` two texts. Nothing here trusts
the file: a cell that does not decode is skipped, never guessed.

The file may also have been built by someone who read this code, so every rule SQLite
relies on is checked rather than assumed, and the work is bounded by the file's size:

* **Page size.** The header's page size is taken only if the pages agree with it; a header
  whose value the pages contradict (512 or 65536 on a file of intact 4096-byte pages) is
  overruled by the size under which the pages look like SQLite's b-tree pages. A WAL whose
  header checksum holds gives its page size too.
* **WAL frames** count only up to the last valid commit frame: each frame's salts must match
  the WAL header and its cumulative checksum must hold (SQLite's own rule), so a torn
  transaction's pages never come back as committed.
* **Every structure is walked at most once.** A page's cell pointers are taken once each
  (duplicates refused), the payload bytes decoded on one page are limited to a few times the
  page's size, and an overflow chain belongs to one cell and an overflow page to one chain
  (a second cell naming a chain, or a chain reaching a page already read, is refused).
* **One scan per file version.** Results are kept (keyed by the file's and its WAL's
  identity, size and times; at most ``CACHE_BYTES`` of them, least recently used first out),
  so the several read paths of one export or start share one scan.
* **An index, not the rows.** A scan keeps where each row is (its seq and its cell's place in
  the file or WAL: 16 bytes a row in two arrays, sorted by seq once), never the row; a reader
  is given the rows in seq order one at a time (``Salvaged.between``), each read again from
  its cell and overflow chain. So what a reader holds is one row, whatever the file's size.

Budget (docs/journal.md, "Hostile files"): time linear in the segment's bytes plus its WAL's
(each page read once for its cells, each overflow page at most once, each WAL frame's
checksum once), and each row given read once more (its cell and its chain: at most the
bytes the scan decoded for it); memory: a page and a row at a time (the file is read by
position, never whole), plus the index: at most one row per ``MIN_CELL`` bytes read, so at
most 12.8 MiB for a file at the read limits (twice that while a file whose rows are out of
order is sorted), and ``CACHE_BYTES`` of indexes kept for the read paths to share.

Only what SQLite could not read is taken from here: the journal reads with SQLite first and
fills the rest from these rows (a freed page may keep an old copy of a row; SQLite's view of
the tree comes first).
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import os
import stat
import struct
import threading
from array import array
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bedside.core.errors import BedsideError

_MAGIC = b"SQLite format 3\x00"
_LEAF_TABLE = 0x0D
_BTREE_TYPES = (0x02, 0x05, 0x0A, 0x0D)
_WAL_MAGIC = {0x377F0682: "<", 0x377F0683: ">"}
_WAL_VERSION = 3007000
MAX_BYTES = 64 * 1024 * 1024       # a segment closes at 8 MiB; more than this is not one of ours
MAX_WAL_BYTES = 16 * 1024 * 1024   # the unit's WAL checkpoints at 1000 pages (about 4 MiB)
MAX_ROW = 8 * 1024 * 1024          # no record the journal writes is near this
PAGE_WORK = 4                      # payload bytes decoded on one page: at most this many page sizes
# Cells tried per page: at most one per MIN_CELL bytes. A row of ``records`` takes more than
# 250 bytes (its hash alone is 64, its body names its boot, prev hash and times); ``meta``
# has six short rows, alone on their page. A page with more cells is not the journal's.
MIN_CELL = 100
_SAMPLES = 64                      # pages looked at per candidate page size
CACHE_BYTES = 16 * 1024 * 1024    # row indexes kept for the read paths to share, all files together
MAX_META = 64 * 1024               # a ``meta`` value longer than this is not one the unit writes
_RUN = 4096                        # index entries sorted at a time when a file's rows are out of order
# While the unit starts, salvage reads at most this many bytes of files SQLite refuses (about
# 35 s on a Pi Zero 2 W at the worst rate measured, docs/performance.md), so that a data
# directory full of crafted files cannot hold the first prompt past the service's 120 s start
# timeout. A file past it is left for later (``Salvaged.deferred``: described as unreadable
# for now) and read in full by the first read after the start, from its own budget.
START_BYTES = 48 * 1024 * 1024
# Each pass of the whole-journal check after the start (unit/journal_check.py) reads at most
# this many bytes of files SQLite refuses (about 15 s of a worker thread on a Pi Zero 2 W at the
# worst rate measured); files past it are read by the next passes, in file order from where
# this one stopped (the first file of a pass whatever its size), so every file is read once
# within one pass per file at most, about ceil(bytes / CHECK_BYTES) passes for small files.
CHECK_BYTES = 32 * 1024 * 1024
# Each step of the unit's loop that reads the journal for someone (the serial link's attach, a
# ``hello``, ``get`` or ``done``; the seal catch-up after a storage failure; retention's prune)
# reads at most this many bytes of files SQLite refuses, whatever the data directory holds: the
# costliest step measured took 0.46 s of CPU here, about 5 s on a Pi Zero 2 W (docs/performance.md),
# within the 10 s the serial thread waits for the loop (before: one hello salvaged every file).
# A file past it is named as not read yet and left to the whole-journal check's passes
# (``CHECK_BYTES``, a worker thread), whose rows salvage's cache then serves to the loop at no cost.
STEP_BYTES = 4 * 1024 * 1024
# Each file whose description needs opening (a segment not remembered by the closed-segment
# index: one SQLite refuses, or one never read) has a fixed cost whatever its size: SQLite's
# open attempt, salvage's setup, the description; about 0.5 ms of CPU here, 5 ms on a Pi Zero
# 2 W. A budget with a file count (the start's, a loop step's) charges each such file this
# share of its bytes, so that a data directory of thousands of 100-byte files named as segments
# costs no more than the budget's bytes of real ones: ``START_FILES`` files at a start,
# ``STEP_FILES`` in a loop step. The rest are not opened at all: described as not examined yet
# (``Budget.deferred``, the same as a file past the bytes) and read by the journal check's passes.
FILE_BYTES = 64 * 1024
START_FILES = START_BYTES // FILE_BYTES      # 768
STEP_FILES = STEP_BYTES // FILE_BYTES        # 64
# A pass of the journal check (unit/journal_check.py) likewise opens at most this many files
# that are not the unit's own (its newest, and the closed segments its index remembers, which
# every pass checks); the next pass goes on from the first file this one left (past its count
# or its bytes, or left out of its list: ``Budget.first_unlisted``).
CHECK_FILES = CHECK_BYTES // FILE_BYTES      # 512
# Even a file not opened costs each of a start's reads of the file list a little (its path, a
# look-up in the closed-segment index, its stub description): about 0.3 ms of a start here per
# file, so 100,000 of them would be 5 minutes on a Pi Zero 2 W. Under a budget with a file count,
# the list of segment files keeps at most this many: the oldest half and the newest half by
# number (the unit's own segments are numbered on from 1, and its active one is the newest);
# the rest are not looked at, counted in ``Budget.not_listed`` and named by that count (the
# start's fault record, a hello's ``unread_more``). A unit's own data directory holds a few
# hundred segments at most (8 MiB each).
LIST_FILES = 2048
# A byte or file count no reader reaches: a budget of it bounds only the listing (``LIST_FILES``),
# for readers that read every file but must not hold every name (the stick export).
UNBOUNDED = 1 << 62


@dataclass
class Salvaged:
    # seq -> (body, hash): a ``Rows`` index into the file (each row read from it when asked for),
    # or, for ``head``, a plain dict of the lowest row.
    rows: Mapping[int, tuple[str, str]] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    pages: int = 0
    leaf_pages: int = 0
    page_size: int = 0
    page_size_from: str = ""       # "header", "pages" (the header was wrong), "wal" (no pages; its checked
    #                                header) or "none" (nothing to go by: 4096, SQLite's default)
    wal_frames: int = 0            # frames taken: up to the last valid commit frame
    wal_problem: str | None = None  # why the rest of the WAL (or all of it) was not taken
    refused: Counter[str] = field(default_factory=Counter)   # structures refused, by what was wrong
    pages_read: int = 0            # page reads, overflow and WAL included: the work, counted
    deferred: bool = False         # not read: past the start's budget (``bounded``); read again later
    later: str = ""                # when a deferred file is read (for its description)

    def between(self, after: int, below: int | None = None, *, reverse: bool = False,
                ) -> Iterator[tuple[int, str, str]]:
        """(seq, body, hash) of the rows with ``after`` < seq < ``below``, in seq order (newest
        first with ``reverse``), one row in memory at a time."""
        if isinstance(self.rows, Rows):
            yield from self.rows.between(after, below, reverse=reverse)
            return
        for seq in sorted(self.rows, reverse=reverse):
            if seq > after and (below is None or seq < below):
                yield (seq, *self.rows[seq])


def _read_page(db: Any, wal: Any, from_wal: Mapping[int, int], db_pages: int, size: int, n: int) -> bytes | None:
    """Page ``n`` as SQLite would see it: its newest committed WAL frame, else the file's own;
    None past the file or cut short."""
    if n in from_wal:
        got = wal.read(from_wal[n], size)
    elif 1 <= n <= db_pages:
        got = db.read((n - 1) * size, size)
    else:
        return None
    return got if len(got) == size else None


def _varint(buf: bytes, i: int, end: int) -> tuple[int, int]:
    v = 0
    for k in range(8):
        if i + k >= end:
            raise ValueError("varint past the page")
        b = buf[i + k]
        v = (v << 7) | (b & 0x7F)
        if b < 0x80:
            return v, i + k + 1
    if i + 8 >= end:
        raise ValueError("varint past the page")
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
    size, i = _varint(payload, 0, len(payload))
    if size > len(payload) or size < 1:
        raise ValueError("bad header")
    serials = []
    while i < size:
        s, i = _varint(payload, i, size)
        serials.append(s)
        if len(serials) > 6:
            raise ValueError("more columns than any of the journal's tables")
    if len(serials) not in (2, 6):
        raise ValueError("not a row of the journal's tables")
    out = []
    j = size
    for s in serials:
        v, j = _value(s, payload, j)
        out.append(v)
    return out


def _wal_sum(data: bytes | memoryview, order: str, s0: int, s1: int) -> tuple[int, int]:
    """SQLite's WAL checksum over ``data`` (a multiple of 8 bytes), continuing from (s0, s1)."""
    words = struct.unpack(f"{order}{len(data) // 4}I", data)
    it = iter(words)
    for a, b in zip(it, it, strict=True):
        s0 = (s0 + a + s1) & 0xFFFFFFFF
        s1 = (s1 + b + s0) & 0xFFFFFFFF
    return s0, s1


class _File:
    """A regular file read by position (at most ``limit`` bytes of it): never held whole, never mapped
    (a file truncated under a mapping would kill the reader)."""

    def __init__(self, path: Path, limit: int) -> None:
        self.fd = -1
        self.size = 0
        self.path = path
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return
        try:
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            return
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return
        self.fd, self.size = fd, min(st.st_size, limit)

    def __len__(self) -> int:
        return self.size

    def read(self, at: int, n: int) -> bytes:
        if self.fd < 0 or at < 0 or at >= self.size:
            return b""
        try:
            return os.pread(self.fd, min(n, self.size - at), at)
        except OSError:
            return b""

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class _Pages:
    """The file's pages, newest committed copy first (WAL frames win over the database file)."""

    def __init__(self, path: Path, out: Salvaged) -> None:
        self.db = _File(path, MAX_BYTES)
        self.wal = _File(path.with_name(path.name + "-wal"), MAX_WAL_BYTES)
        self.out = out
        if self.wal.size == MAX_WAL_BYTES and self.wal.fd >= 0 and os.fstat(self.wal.fd).st_size > MAX_WAL_BYTES:
            self._wal_problem(f"the WAL is longer than any the unit writes: only its first "
                              f"{MAX_WAL_BYTES >> 20} MiB read")
        first = self.db.read(0, 100)
        header = first[:16] == _MAGIC
        raw_size = int.from_bytes(first[16:18], "big") if header else 0
        stated = 65536 if raw_size == 1 else raw_size
        self.reserved = first[20] if header and len(first) > 20 else 0
        wal_size, wal_order, wal_sums = self._wal_header()
        self.size, out.page_size_from = self._page_size(stated if _power_of_two(stated) else 0)
        if wal_size and out.page_size_from == "none":
            self.size, out.page_size_from = wal_size, "wal"      # no pages to ask: the WAL's checked header
        elif wal_size and wal_size != self.size:
            self._wal_problem(f"the WAL's page size ({wal_size}) is not the database's ({self.size}): "
                              "its frames were not used")
            wal_size = 0
        if self.size - self.reserved < 480:
            self.reserved = 0              # SQLite's own floor for the usable size
        self.usable = self.size - self.reserved
        self.db_pages = len(self.db) // self.size
        self.from_wal: dict[int, int] = {}    # page number -> offset of its newest committed copy in the WAL
        if wal_size == self.size and wal_order:
            self._wal_frames(wal_order, wal_sums)
        out.page_size = self.size

    def _wal_problem(self, text: str) -> None:
        self.out.wal_problem = f"{self.out.wal_problem}; {text}" if self.out.wal_problem else text

    def _wal_header(self) -> tuple[int, str, tuple[int, int]]:
        """(page size, byte order, checksum) of a WAL whose header checksum holds; zeros otherwise."""
        head = self.wal.read(0, 32)
        if len(head) < 32:
            if head:
                self._wal_problem("the WAL is shorter than its header")
            return 0, "", (0, 0)
        order = _WAL_MAGIC.get(int.from_bytes(head[:4], "big"), "")
        size = int.from_bytes(head[8:12], "big")
        if not order or int.from_bytes(head[4:8], "big") != _WAL_VERSION:
            self._wal_problem("the WAL's header is not SQLite's")
            return 0, "", (0, 0)
        sums = _wal_sum(head[:24], order, 0, 0)
        if sums != (int.from_bytes(head[24:28], "big"), int.from_bytes(head[28:32], "big")):
            self._wal_problem("the WAL's header checksum does not hold")
            return 0, "", (0, 0)
        size = 65536 if size == 1 else size
        if not _power_of_two(size):
            self._wal_problem(f"the WAL's page size ({size}) is not one SQLite uses")
            return 0, "", (0, 0)
        return size, order, sums

    def _wal_frames(self, order: str, sums: tuple[int, int]) -> None:
        """Frames up to the last valid commit frame; the first frame that fails ends the WAL (SQLite's rule)."""
        salts = self.wal.read(16, 8)
        frame = 24 + self.size
        at, taken = 32, 0
        pending: dict[int, int] = {}
        s0, s1 = sums
        while at + frame <= len(self.wal):
            raw = self.wal.read(at, frame)
            self.out.pages_read += 1
            if len(raw) < frame:
                break
            if raw[8:16] != salts:        # left from before a checkpoint (SQLite's end of the WAL), or forged
                self._wal_problem(f"WAL frames from {(at - 32) // frame + 1} on carry other salts "
                                  "(an earlier generation): not used")
                break
            n = int.from_bytes(raw[:4], "big")
            s0, s1 = _wal_sum(raw[:8], order, s0, s1)
            s0, s1 = _wal_sum(memoryview(raw)[24:], order, s0, s1)
            if (s0, s1) != (int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")) or n < 1:
                self._wal_problem(f"WAL frame {(at - 32) // frame + 1} fails its checksum")
                break
            pending[n] = at + 24
            if int.from_bytes(raw[4:8], "big"):      # a commit frame: its transaction is whole
                self.from_wal.update(pending)
                taken += len(pending)
                pending = {}
            at += frame
        if pending:
            self._wal_problem(f"{len(pending)} page(s) of an uncommitted transaction left out")
        self.out.wal_frames = taken

    def _page_size(self, stated: int) -> tuple[int, str]:
        """The header's page size (and reserved bytes) if the pages agree with them, else the
        size (and reserve) they agree with best."""
        scores = {(s, r): self._score(s, r) for s in (512 << k for k in range(8))
                  for r in {self.reserved, 0} if s - r >= 480}
        best = max(scores, key=lambda k: (scores[k], k == (stated, self.reserved), k[0] == 4096))
        if stated and scores.get((stated, self.reserved), -1.0) >= scores[best]:
            return stated, "header"
        if scores[best] == 0:
            return (stated, "header") if stated else (4096, "none")
        self.reserved = best[1]
        return best[0], "pages"

    def _score(self, size: int, reserved: int) -> float:
        """How well a sample of the file's pages read as b-tree pages of ``size`` bytes (0 … 2)."""
        count = len(self.db) // size
        if count < 1:
            return 0.0
        looked = min(count, _SAMPLES)
        total = 0
        for k in sorted({j * count // looked for j in range(looked)}):
            total += _btree_shape(self.db.read(k * size, size), 100 if k == 0 else 0, size - reserved)
            self.out.pages_read += 1
        return total / looked

    def numbers(self) -> Iterator[int]:
        """Every page number in order, each once (not a list: a 64 MiB file of 512-byte pages has 131,072)."""
        yield from range(1, self.db_pages + 1)
        yield from sorted(n for n in self.from_wal if not 1 <= n <= self.db_pages)

    def exists(self, n: int) -> bool:
        return n in self.from_wal or 1 <= n <= self.db_pages

    def locate(self, n: int) -> int:
        """Where page ``n``'s newest copy starts, as a row location's high bits (``_loc``)."""
        if n in self.from_wal:
            return _WAL_LOC | self.from_wal[n] << _LEN_BITS
        return ((n - 1) * self.size) << _LEN_BITS

    def page(self, n: int) -> bytes | None:
        self.out.pages_read += 1
        return _read_page(self.db, self.wal, self.from_wal, self.db_pages, self.size, n)

    def layout(self) -> _Layout:
        return _Layout(self.db.path, self.wal.path, self.size, self.usable, self.db_pages, self.from_wal)

    def close(self) -> None:
        self.db.close()
        self.wal.close()


def _power_of_two(size: int) -> bool:
    return 512 <= size <= 65536 and size & (size - 1) == 0


def _btree_shape(page: bytes, head: int, usable: int) -> int:
    """2 if ``page`` is a b-tree page laid out as SQLite lays one out (its cells packed to the
    end of the usable space), 1 if merely consistent, 0 if not a b-tree page."""
    if head + 12 > len(page) or page[head] not in _BTREE_TYPES:
        return 0
    kind = page[head]
    cells = int.from_bytes(page[head + 3:head + 5], "big")
    content = int.from_bytes(page[head + 5:head + 7], "big") or 65536
    hdr = 8 if kind in (0x0A, 0x0D) else 12
    ptrs_end = head + hdr + 2 * cells
    if not ptrs_end <= content <= usable:
        return 0
    if cells == 0:
        return 2 if content == usable else 1
    ptrs = struct.unpack_from(f">{cells}H", page, head + hdr)
    if min(ptrs) < content or max(ptrs) >= usable:
        return 0
    try:
        end = _cell_end(page, max(ptrs), kind, usable)
    except (ValueError, IndexError):
        return 0
    return 2 if end == usable else 1 if end < usable else 0


def _cell_end(page: bytes, ptr: int, kind: int, usable: int) -> int:
    """Where a cell's bytes on its page end."""
    i = ptr
    if kind == 0x05:                              # table interior: child page, rowid
        return _varint(page, i + 4, usable)[1]
    if kind == 0x02:
        i += 4
    total, i = _varint(page, i, usable)
    if kind == 0x0D:
        _, i = _varint(page, i, usable)
    local, spill = _local(total, usable, kind == 0x0D)
    return i + local + (4 if spill else 0)


def _local(total: int, usable: int, table_leaf: bool = True) -> tuple[int, bool]:
    """(bytes of the payload on the page, whether the rest spills to overflow pages)."""
    x = usable - 35 if table_leaf else ((usable - 12) * 64 // 255) - 23
    if total <= x:
        return total, False
    m = ((usable - 12) * 32 // 255) - 23
    k = m + (total - m) % (usable - 4)
    return (k if k <= x else m), True


class BadOverflowChain(BedsideError, ValueError):
    """An overflow chain salvage will not follow; counted among the refusals, by its message."""


class _Chains:
    """Overflow chains: each overflow page belongs to one chain, and each chain to one cell
    (SQLite never shares them); a second cell naming a chain, or a chain reaching a page
    another one took, is refused, so no overflow page is read twice."""

    def __init__(self, pages: _Pages) -> None:
        self.pages = pages
        self.owner = _PageSet(pages.db_pages)     # overflow pages taken by a chain
        self.started = _PageSet(pages.db_pages)   # first pages of chains taken

    def follow(self, first: int, want: int) -> bytes:
        if not self.pages.exists(first):
            raise BadOverflowChain("overflow chain broken")
        if first in self.started:
            raise BadOverflowChain("overflow chain named by a second cell")
        self.started.add(first)
        u = self.pages.usable
        if want > (len(self.pages.from_wal) + self.pages.db_pages) * (u - 4):
            raise BadOverflowChain("overflow chain longer than the file")
        out = bytearray()
        nxt = first
        while len(out) < want:
            if nxt in self.owner:
                raise BadOverflowChain("overflow page already in another chain (or a loop)")
            over = self.pages.page(nxt)
            if over is None:
                raise BadOverflowChain("overflow chain broken")
            self.owner.add(nxt)
            nxt = int.from_bytes(over[:4], "big")
            out += over[4:u][:want - len(out)]
        return bytes(out)


class _PageSet:
    """A set of page numbers in a bit a page for the database file's pages (16 KiB for 64 MiB of
    512-byte pages) and a set for the others, which are WAL pages (at most the WAL's frames)."""

    def __init__(self, pages: int) -> None:
        self.n = pages
        self.bits = bytearray(pages // 8 + 1)
        self.other: set[int] = set()

    def __contains__(self, k: int) -> bool:
        if 1 <= k <= self.n:
            return bool(self.bits[k >> 3] & (1 << (k & 7)))
        return k in self.other

    def add(self, k: int) -> None:
        if 1 <= k <= self.n:
            self.bits[k >> 3] |= 1 << (k & 7)
        else:
            self.other.add(k)


# A row's location in one int: whether it is in the WAL, the offset of its cell in that file, and
# the cell's bytes on its page (at most a page: 17 bits).
_LEN_BITS = 17
_WAL_LOC = 1 << 63
_OFFSET_MASK = (1 << (63 - _LEN_BITS)) - 1


@dataclass(frozen=True)
class _Layout:
    """What re-reading a row needs: the files and how their pages are laid out."""

    db: Path
    wal: Path
    size: int
    usable: int
    db_pages: int
    from_wal: dict[int, int]


class _Reader:
    """A salvaged row read again from its cell (and overflow chain), when it is given."""

    def __init__(self, layout: _Layout) -> None:
        self.layout = layout
        self.db = _File(layout.db, MAX_BYTES)
        self.wal = _File(layout.wal, MAX_WAL_BYTES)

    def close(self) -> None:
        self.db.close()
        self.wal.close()

    def _page(self, n: int) -> bytes | None:
        lay = self.layout
        return _read_page(self.db, self.wal, lay.from_wal, lay.db_pages, lay.size, n)

    def row(self, seq: int, loc: int) -> tuple[str, str] | None:
        """The row the scan found at ``loc``, or None if the file no longer gives it there."""
        f = self.wal if loc & _WAL_LOC else self.db
        n = loc & ((1 << _LEN_BITS) - 1)
        cell = f.read((loc >> _LEN_BITS) & _OFFSET_MASK, n)
        u = self.layout.usable
        try:
            if len(cell) != n:
                return None
            total, i = _varint(cell, 0, n)
            rowid, i = _varint(cell, i, n)
            if rowid != seq or total > MAX_ROW:
                return None
            local, spill = _local(total, u)
            payload = cell[i:i + local]
            if spill:
                # The scan took this chain (each of its pages once, for this cell alone); here it
                # is only followed again, at most ``total`` bytes, a page's usable bytes a step.
                out = bytearray(payload)
                nxt = int.from_bytes(cell[i + local:i + local + 4], "big")
                while len(out) < total:
                    over = self._page(nxt)
                    if over is None:
                        return None
                    nxt = int.from_bytes(over[:4], "big")
                    out += over[4:u][:total - len(out)]
                payload = bytes(out)
            return _as_row(rowid, _record(payload))
        except (ValueError, IndexError, UnicodeDecodeError):
            return None


class Rows(Mapping[int, tuple[str, str]]):
    """A file's salvaged rows as an index: each seq (ascending, each once) and where its cell is,
    16 bytes a row in two arrays, the row itself read from the file when asked for. A scan
    takes at most one row per ``MIN_CELL`` bytes read, so a file within the read limits
    (64 MiB and a 16 MiB WAL) has at most 838,860 rows: an index of at most 12.8 MiB."""

    def __init__(self, seqs: array[int], locs: array[int], layout: _Layout) -> None:
        self.seqs, self.locs, self.layout = seqs, locs, layout

    def __len__(self) -> int:
        return len(self.seqs)

    def __iter__(self) -> Iterator[int]:
        return iter(self.seqs)

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int):
            return False
        k = bisect.bisect_left(self.seqs, seq)
        return k < len(self.seqs) and self.seqs[k] == seq

    def __getitem__(self, seq: int) -> tuple[str, str]:
        k = bisect.bisect_left(self.seqs, seq)
        if k == len(self.seqs) or self.seqs[k] != seq:
            raise KeyError(seq)
        reader = _Reader(self.layout)
        try:
            got = reader.row(seq, self.locs[k])
        finally:
            reader.close()
        if got is None:
            raise KeyError(seq)        # the file changed since it was read
        return got

    @property
    def nbytes(self) -> int:
        return (len(self.seqs) + len(self.locs)) * 8 + 128 * len(self.layout.from_wal) + 1000

    def between(self, after: int, below: int | None = None, *, reverse: bool = False,
                ) -> Iterator[tuple[int, str, str]]:
        lo = bisect.bisect_right(self.seqs, after)
        hi = len(self.seqs) if below is None else bisect.bisect_left(self.seqs, below)
        reader = _Reader(self.layout)
        try:
            for k in (range(hi - 1, lo - 1, -1) if reverse else range(lo, hi)):
                seq = self.seqs[k]
                got = reader.row(seq, self.locs[k])
                if got is not None:        # (None: the file changed since it was read)
                    yield seq, *got
        finally:
            reader.close()


def _ordered(seqs: array[int], locs: array[int]) -> tuple[array[int], array[int]]:
    """The index in seq order, each seq once (the last copy found wins, as SQLite's newest page
    copy would). The usual file is in order already and costs one comparison a row; otherwise
    runs of ``_RUN`` rows are sorted in place and merged into new arrays (twice the index at
    the peak; n log n comparisons, n ≤ 838,860)."""
    n = len(seqs)
    if all(seqs[k] < seqs[k + 1] for k in range(n - 1)):
        return seqs, locs
    for lo in range(0, n, _RUN):
        hi = min(n, lo + _RUN)
        order = sorted(range(lo, hi), key=seqs.__getitem__)      # stable: a later copy stays later
        seqs[lo:hi] = array("Q", [seqs[k] for k in order])
        locs[lo:hi] = array("Q", [locs[k] for k in order])

    def run(lo: int) -> Iterator[tuple[int, int]]:
        for k in range(lo, min(n, lo + _RUN)):
            yield seqs[k], locs[k]

    out_s: array[int] = array("Q")
    out_l: array[int] = array("Q")
    for seq, loc in heapq.merge(*(run(lo) for lo in range(0, n, _RUN)), key=lambda e: e[0]):
        if out_s and out_s[-1] == seq:
            out_l[-1] = loc                  # (merge keeps equal seqs in the order found)
        else:
            out_s.append(seq)
            out_l.append(loc)
    return out_s, out_l


_cache: OrderedDict[tuple[object, ...], tuple[int, Salvaged]] = OrderedDict()
_cache_lock = threading.Lock()
# The sizes of what ``_cache`` and ``_heads`` hold, kept as entries come and go: an insertion
# costs O(1) plus one step per entry it evicts, never a walk of every entry (which made a data
# directory of thousands of small files quadratic).
_totals = {"cache": 0, "heads": 0}


@dataclass
class Budget:
    """The salvage work allowed to one thread while ``bounded`` is in force, and what it spent."""

    limit: int                     # bytes of uncached files to read in all
    after: str | None = None       # files named up to this one are not read (an earlier pass read them)
    later: str = "once the unit has started"    # when a file past the budget is read, for its description
    left: int = 0
    read: list[str] = field(default_factory=list)       # files read in full, in order
    deferred: list[str] = field(default_factory=list)   # files not read: past the budget or ``after``
    bytes_read: int = 0            # their sizes (file and WAL, up to the read limits)
    pages_read: int = 0            # page reads of those scans (salvage's counted work)
    rows: int = 0                  # rows they gave
    files: int | None = None       # files whose description needs opening, at most (None: no count)
    opened: int = 0                # such files admitted (each opened and described once in this budget)
    not_examined: int = 0          # such files past ``files``: never opened, in ``deferred`` too
    not_listed: int = 0            # files named as segments left out of the file list (``LIST_FILES``)
    not_listed_range: tuple[int, int] | None = None    # every number left out is between these
    first_unlisted: int | None = None    # with ``after``: the lowest number after it left out of the list
    # The list of segment files, read once: ((directory, generation, after), [(number, path)]) (segments.py)
    listing: tuple[tuple[str, int, str | None], list[tuple[int, Path]]] | None = None
    described: dict[str, tuple[object, object]] = field(default_factory=dict)   # name -> (identity, Segment)
    _deferred: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.left = self.limit

    def defer(self, name: str) -> None:
        if name not in self._deferred:
            self._deferred.add(name)
            self.deferred.append(name)


_per_thread = threading.local()      # .budget: the Budget of this thread while ``bounded`` is in force


@contextlib.contextmanager
def bounded(limit: int | None, *, after: str | None = None, later: str = "once the unit has started",
            files: int | None = None) -> Iterator[Budget | None]:
    """Within this, scans on this thread that are not already cached read at most ``limit``
    bytes in all (None: no limit), and none of a file whose name sorts at or before ``after``.
    Files past it are ``deferred``. The first file of a pass with ``after`` is read whatever its
    size (up to the read limits), so that each pass moves on. With ``files``, at most that many
    files whose description needs opening are opened (``admit``). Other threads are not bounded."""
    if limit is None:
        yield None
        return
    budget = Budget(limit, after, later, files=files)
    outer = getattr(_per_thread, "budget", None)
    _per_thread.budget = budget
    try:
        yield budget
    finally:
        _per_thread.budget = outer


def current() -> Budget | None:
    """This thread's budget while ``bounded`` is in force."""
    return getattr(_per_thread, "budget", None)


def admit(path: Path, *, own: bool = False) -> bool:
    """Whether a file whose description needs opening may be opened under this thread's budget:
    always without one or without a file count; otherwise the first ``files`` such files of the
    budget (each counted once, charged ``FILE_BYTES``), and no other: those are ``deferred``.

    ``own``: a file of the unit's own (its newest, or a closed segment its index remembers): a
    pass of the journal check opens it whatever the count, so that every pass checks the
    unit's own records (at most ``LIST_FILES`` files are listed in all). With ``after`` (a
    later pass of the check), a file named up to it that is not the unit's own was examined by
    an earlier pass of this round and is not opened again (deferred, not counted)."""
    budget = current()
    if budget is None or budget.files is None:
        return True
    name = Path(path).name
    if name in budget.described or name in budget.read:
        return True
    if own:
        budget.described[name] = (None, None)
        return True
    if budget.after and name <= budget.after:
        budget.defer(name)
        return False
    if name in budget._deferred or budget.opened >= budget.files:
        if name not in budget._deferred:
            budget.not_examined += 1
        budget.defer(name)
        return False
    budget.opened += 1
    budget.left = max(0, budget.left - FILE_BYTES)
    budget.described[name] = (None, None)
    return True


def described(path: Path) -> object | None:
    """The description this budget already made of the unchanged file (segments.describe's)."""
    budget = current()
    if budget is None or budget.files is None:
        return None
    key, seg = budget.described.get(Path(path).name, (None, None))
    return seg if seg is not None and key == _identity(Path(path)) else None


def remember_description(path: Path, seg: object) -> None:
    budget = current()
    if budget is not None and budget.files is not None and Path(path).name in budget.described:
        budget.described[Path(path).name] = (_identity(Path(path)), seg)


def _sizes(path: Path) -> int:
    """The bytes a scan of ``path`` reads at most."""
    total = 0
    for p, limit in ((path, MAX_BYTES), (path.with_name(path.name + "-wal"), MAX_WAL_BYTES)):
        with contextlib.suppress(OSError):
            total += min(os.stat(p).st_size, limit)
    return total


def _identity(path: Path) -> tuple[object, ...] | None:
    out: list[object] = [str(path)]
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = os.stat(p)
        except OSError:
            out.append(None)
            continue
        out.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out) if out[1] is not None else None


_heads: OrderedDict[tuple[object, ...], tuple[int, Salvaged]] = OrderedDict()   # a file's meta and first row
_HEADS = 4096
_HEADS_BYTES = 4 * 1024 * 1024     # all heads kept, together; a head larger than 1/64 of it is not kept


def forget() -> None:
    """Drop every kept result (tests and benchmarks start cold)."""
    with _cache_lock:
        _cache.clear()
        _heads.clear()
        _totals.update(cache=0, heads=0)
        _wanted.clear()


# Files a step of the loop left unread while serving a person (the serial link named them as not
# read yet): the journal check reads them on its worker thread so that the next request finds
# their rows in the cache. At most ``_HEADS`` names, oldest dropped first.
_wanted: OrderedDict[str, None] = OrderedDict()


def want(paths: Iterable[Path]) -> None:
    with _cache_lock:
        for p in paths:
            _wanted[str(p)] = None
            _wanted.move_to_end(str(p))
        while len(_wanted) > _HEADS:
            _wanted.popitem(last=False)


def wanted(data_dir: Path) -> list[Path]:
    """The files of ``data_dir`` a loop step left unread for someone, in name order."""
    with _cache_lock:
        return sorted(p for p in map(Path, _wanted) if p.parent == Path(data_dir))


def unwant(paths: Iterable[Path]) -> None:
    with _cache_lock:
        for p in paths:
            _wanted.pop(str(p), None)


def head(path: Path) -> Salvaged:
    """What a segment's description needs (its ``meta`` rows and its lowest row), from the last
    whole scan of the unchanged file if there was one: a few hundred bytes a file, kept for many
    files, so describing every segment again does not scan them all again when their rows do
    not fit the shared cache."""
    path = Path(path)
    key = _identity(path)
    with _cache_lock:
        if key is not None and key in _heads:
            return _heads[key][1]
    return _head_of(scan(path))


def _head_of(found: Salvaged) -> Salvaged:
    if found.deferred or not found.rows:
        return Salvaged(meta=dict(found.meta), pages=found.pages, leaf_pages=found.leaf_pages,
                        page_size=found.page_size, page_size_from=found.page_size_from,
                        deferred=found.deferred, later=found.later)
    low = next(iter(found.between(0)), None)
    rows = {low[0]: (low[1], low[2])} if low is not None else {}
    return Salvaged(rows=rows, meta=dict(found.meta), pages=found.pages,
                    leaf_pages=found.leaf_pages, page_size=found.page_size, page_size_from=found.page_size_from)


def scan(path: Path) -> Salvaged:
    """Every row of ``records`` and ``meta`` that can still be decoded from the file's pages.

    The result is shared with later calls for the same unchanged file: callers must not change it."""
    path = Path(path)
    budget: Budget | None = getattr(_per_thread, "budget", None)
    if budget is not None and path.name in budget._deferred:
        # Left by this budget already (past its bytes, or not examined: past its count of files):
        # stays left, at the cost of a look-up, however many times the read paths ask.
        return Salvaged(deferred=True, later=budget.later)
    key = _identity(path)
    with _cache_lock:
        if key is not None and key in _cache:
            _cache.move_to_end(key)
            return _cache[key][1]
    again = budget is not None and path.name in budget.read
    if budget is not None and not again:
        # (A file this pass already read is read again only when its rows did not stay in the
        # cache: at most once per read path of the pass, never charged twice.)
        size = _sizes(path)
        first = budget.after is not None and not budget.read
        if (budget.after is not None and path.name <= budget.after) or (size > budget.left and not first):
            budget.defer(path.name)
            return Salvaged(deferred=True, later=budget.later)
        budget.left -= size
    found = _scan(path)
    if budget is not None:
        if not again:
            budget.read.append(path.name)
        budget.bytes_read += _sizes(path)
        budget.pages_read += found.pages_read
        budget.rows += len(found.rows)
    size = found.rows.nbytes if isinstance(found.rows, Rows) else 1000
    if key is not None and key == _identity(path):
        top = _head_of(found)
        cost = 1000 + sum(len(k) + len(v) for k, v in top.meta.items()) + sum(
            len(b) + len(h) for b, h in top.rows.values())
        if cost <= _HEADS_BYTES // 64:
            with _cache_lock:
                _put(_heads, "heads", key, cost, top)
                while len(_heads) > _HEADS or _totals["heads"] > _HEADS_BYTES:
                    _drop(_heads, "heads")
    if key is not None and size <= CACHE_BYTES and key == _identity(path):
        with _cache_lock:
            _put(_cache, "cache", key, size, found)
            while _totals["cache"] > CACHE_BYTES:
                _drop(_cache, "cache")
    return found


def _put(kept: OrderedDict[tuple[object, ...], tuple[int, Salvaged]], total: str, key: tuple[object, ...],
         size: int, value: Salvaged) -> None:
    old = kept.pop(key, None)
    if old is not None:
        _totals[total] -= old[0]
    kept[key] = (size, value)
    _totals[total] += size


def _drop(kept: OrderedDict[tuple[object, ...], tuple[int, Salvaged]], total: str) -> None:
    """The least recently used entry out (the caller holds the lock)."""
    _totals[total] -= kept.popitem(last=False)[1][0]


class _Index:
    """The rows a scan found, in the order found: seq and location (``_loc``), 16 bytes a row."""

    def __init__(self) -> None:
        self.seqs: array[int] = array("Q")
        self.locs: array[int] = array("Q")


def _scan(path: Path) -> Salvaged:
    out = Salvaged()
    pages = _Pages(path, out)
    found = _Index()
    try:
        chains = _Chains(pages)
        for n in pages.numbers():
            out.pages += 1
            page = pages.page(n)
            head = 100 if n == 1 else 0
            if page is None or len(page) < head + 8 or page[head] != _LEAF_TABLE:
                continue
            out.leaf_pages += 1
            _leaf(out, found, pages, chains, page, head, pages.locate(n))
    finally:
        pages.close()
    seqs, locs = _ordered(found.seqs, found.locs)
    del found
    out.rows = Rows(seqs, locs, pages.layout())
    return out


def _leaf(out: Salvaged, found: _Index, pages: _Pages, chains: _Chains, page: bytes, head: int, at: int) -> None:
    u = pages.usable
    cells = int.from_bytes(page[head + 3:head + 5], "big")
    cells = min(cells, (u - head - 8) // 2)
    ptrs = struct.unpack_from(f">{cells}H", page, head + 8)
    unique = tuple(dict.fromkeys(ptrs))              # each cell once, in the page's own order
    if len(unique) < len(ptrs):
        out.refused["cell pointers naming a cell twice"] += len(ptrs) - len(unique)
    if len(unique) > u // MIN_CELL:
        out.refused["cells past the most a page of the journal's rows can hold"] += len(unique) - u // MIN_CELL
        unique = unique[:u // MIN_CELL]
    low = head + 8 + 2 * cells
    inside = [p for p in unique if low <= p < u]
    if len(inside) < len(unique):
        out.refused["cell pointers outside the cell area"] += len(unique) - len(inside)
    budget = PAGE_WORK * pages.size
    for ptr in inside:
        try:
            total, i = _varint(page, ptr, u)
            rowid, i = _varint(page, i, u)
            if total > MAX_ROW:
                raise ValueError("a row longer than any record")
            local, spill = _local(total, u)
            if i + local + (4 if spill else 0) > u:
                raise ValueError("cell past the page")
            budget -= local
            if budget < 0:
                out.refused["cells past the page's work budget (overlapping cells)"] += 1
                continue
            payload = page[i:i + local]
            if spill:
                first = int.from_bytes(page[i + local:i + local + 4], "big")
                payload += chains.follow(first, total - local)
            cols = _record(payload)
        except BadOverflowChain as e:
            out.refused[str(e)] += 1
            continue
        except ValueError:
            continue
        except (IndexError, UnicodeDecodeError):
            continue
        # The row itself is not kept: where its cell is (read again when the row is given).
        if _as_row(rowid, cols) is not None:
            found.seqs.append(rowid)
            found.locs.append(at + (ptr << _LEN_BITS) + (i + local + (4 if spill else 0) - ptr))
        elif len(cols) == 2 and isinstance(cols[0], str) and isinstance(cols[1], str) and cols[0] in (
                "segment", "first_seq", "prev", "reason", "created", "detail"):
            if len(cols[1]) > MAX_META:
                out.refused["meta values longer than any the unit writes"] += 1
            else:
                out.meta[cols[0]] = cols[1]


def _as_row(rowid: int, cols: list[object]) -> tuple[str, str] | None:
    """(body, hash) if ``cols`` is a row of ``records`` as the journal writes one."""
    if len(cols) == 6 and cols[0] is None and all(isinstance(v, str) for v in (cols[1], cols[2], cols[4], cols[5])):
        body, digest = cols[4], cols[5]
        assert isinstance(body, str) and isinstance(digest, str)
        if 1 <= rowid < 1 << 64 and len(digest) == 64 and body.startswith("{"):
            return body, digest
    return None
