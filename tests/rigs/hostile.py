"""Hostile SQLite files built at the structural level, for the salvage tests, fuzzers and benchmark.

Each mutator takes a valid file's bytes (a database, or its WAL) and changes one structure
the way someone who read the reader's code would: the header's fields, a page's cell
pointers and cells, overflow chains, the freelist, the WAL's header and frames. They are
deterministic given their ``random.Random``.
"""

from __future__ import annotations

import os
import random
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path

from bedside.journal import chain
from bedside.journal.segments import SCHEMA

PAGE = 4096
LEAF, INTERIOR = 0x0D, 0x05


def varint(v: int) -> bytes:
    out = [v & 0x7F]
    v >>= 7
    while v:
        out.append(0x80 | (v & 0x7F))
        v >>= 7
    return bytes(reversed(out))


def local_size(total: int, usable: int = PAGE) -> tuple[int, bool]:
    x = usable - 35
    if total <= x:
        return total, False
    m = ((usable - 12) * 32 // 255) - 23
    k = m + (total - m) % (usable - 4)
    return (k if k <= x else m), True


def one_cell_attack(raw: bytes, target: int, chain_pages: int = 600) -> bytes:
    """``raw`` with pages appended up to ``target`` bytes: one overflow chain of ``chain_pages``
    pages and copies of a leaf page whose every cell pointer names one cell that starts it."""
    out = bytearray(raw)
    out += bytes(-len(out) % PAGE)
    base = len(out) // PAGE
    total = chain_pages * (PAGE - 4) + 100
    n_local, _ = local_size(total)
    cell = varint(total) + varint(5) + bytes(n_local) + (base + 2).to_bytes(4, "big")
    leaf = bytearray(PAGE)
    leaf[0] = LEAF
    ptr = PAGE - len(cell)
    leaf[ptr:] = cell
    cells = (ptr - 8) // 2
    leaf[3:5] = cells.to_bytes(2, "big")
    leaf[5:7] = ptr.to_bytes(2, "big")
    leaf[8:8 + 2 * cells] = ptr.to_bytes(2, "big") * cells
    out += leaf
    for k in range(chain_pages):
        page = bytearray(PAGE)
        page[:4] = ((base + 3 + k) if k < chain_pages - 1 else 0).to_bytes(4, "big")
        out += page
    while len(out) + PAGE <= target:
        out += leaf
    if out[:16] == b"SQLite format 3\x00":
        out[28:32] = (len(out) // PAGE).to_bytes(4, "big")
    return bytes(out)


def craft_segment(path: Path, size: int, chain_pages: int = 50) -> None:
    """A closed segment of the unit's own records made hostile in place: its header broken (SQLite
    refuses it) and ``one_cell_attack`` pages appended up to ``size``. Its records are still in its
    pages: salvage gives them back once it reads the file."""
    os.chmod(path, 0o644)
    raw = bytearray(one_cell_attack(path.read_bytes(), size, chain_pages=chain_pages))
    raw[:16] = b"not a database!!"
    path.write_bytes(bytes(raw))
    os.chmod(path, 0o444)


def pages_of(raw: bytes) -> int:
    return len(raw) // PAGE


def _leaves(raw: bytes) -> list[int]:
    return [n for n in range(1, pages_of(raw) + 1) if raw[(n - 1) * PAGE + (100 if n == 1 else 0)] in (LEAF, INTERIOR)]


# --- mutators: each (rng, database bytes) -> database bytes ------------------------------------

def header_field(rng: random.Random, raw: bytes) -> bytes:
    """One field of the 100-byte header set to a value chosen to mislead."""
    out = bytearray(raw)
    field, width = rng.choice([(16, 2), (18, 1), (19, 1), (20, 1), (21, 1), (24, 4), (28, 4), (32, 4), (36, 4),
                               (44, 4), (52, 4), (56, 4), (0, 16)])
    value = rng.choice([0, 1, 2**(8 * width) - 1, rng.getrandbits(8 * width), 512, 65536]) % 2**(8 * width)
    out[field:field + width] = value.to_bytes(width, "big")
    return bytes(out)


def cell_pointers(rng: random.Random, raw: bytes) -> bytes:
    """A b-tree page's cell count and pointers: all one cell, out of range, overlapping or reversed."""
    out = bytearray(raw)
    pages = _leaves(raw)
    if not pages:
        return raw
    n = rng.choice(pages)
    base = (n - 1) * PAGE
    head = base + (100 if n == 1 else 0)
    cells = int.from_bytes(out[head + 3:head + 5], "big")
    style = rng.randrange(5)
    if style == 0:                                   # the count raised past the pointer array
        out[head + 3:head + 5] = rng.choice([cells + 1, 2000, 65535]).to_bytes(2, "big")
    elif style == 1 and cells:                       # every pointer names the first cell
        first = out[head + 8:head + 10]
        for c in range(cells):
            out[head + 8 + 2 * c:head + 10 + 2 * c] = first
    elif style == 2 and cells:                       # one pointer anywhere
        c = rng.randrange(cells)
        out[head + 8 + 2 * c:head + 10 + 2 * c] = rng.getrandbits(16).to_bytes(2, "big")
    elif style == 3 and cells:                       # pointers one byte apart
        lowest = int.from_bytes(out[head + 8:head + 10], "big")
        for c in range(cells):
            out[head + 8 + 2 * c:head + 10 + 2 * c] = min(lowest + c, 65535).to_bytes(2, "big")
    else:                                            # the page type changed
        out[head] = rng.choice([0x02, 0x05, 0x0A, 0x0D, 0x00, 0xFF])
    return bytes(out)


def cell_bytes(rng: random.Random, raw: bytes) -> bytes:
    """A cell's payload size or record header rewritten (a varint of 9 bytes, a huge size, a wrong serial)."""
    out = bytearray(raw)
    pages = [n for n in _leaves(raw) if raw[(n - 1) * PAGE + (100 if n == 1 else 0)] == LEAF]
    if not pages:
        return raw
    n = rng.choice(pages)
    base = (n - 1) * PAGE
    head = base + (100 if n == 1 else 0)
    cells = int.from_bytes(out[head + 3:head + 5], "big")
    if not cells:
        return raw
    c = rng.randrange(min(cells, (PAGE - 108) // 2))
    ptr = int.from_bytes(out[head + 8 + 2 * c:head + 10 + 2 * c], "big")
    at = base + min(ptr, PAGE - 9)
    out[at:at + 9] = rng.choice([b"\xff" * 9, varint(2**40).rjust(9, b"\x80"), varint(PAGE * 3)[:9].ljust(9, b"\x01"),
                                 bytes(rng.getrandbits(8) for _ in range(9))])
    return bytes(out)


def overflow_chain(rng: random.Random, raw: bytes) -> bytes:
    """An overflow page's next-page number pointed back into the chain, at page 1, past the end, or at itself."""
    out = bytearray(raw)
    count = pages_of(raw)
    candidates = [n for n in range(2, count + 1) if n not in _leaves(raw)]
    if not candidates:
        return raw
    n = rng.choice(candidates)
    target = rng.choice([n, 1, count + 5, rng.randrange(1, count + 1), 2**32 - 1])
    out[(n - 1) * PAGE:(n - 1) * PAGE + 4] = target.to_bytes(4, "big")
    return bytes(out)


def freelist(rng: random.Random, raw: bytes) -> bytes:
    """The freelist's trunk (header bytes 32-35) and count pointed at a leaf, itself, or a loop;
    a trunk page written with leaf numbers past the file."""
    out = bytearray(raw)
    count = pages_of(raw)
    trunk = rng.randrange(2, count + 1) if count > 1 else 1
    out[32:36] = trunk.to_bytes(4, "big")
    out[36:40] = rng.choice([1, count, 2**31]).to_bytes(4, "big")
    if rng.random() < 0.5 and trunk > 1:
        base = (trunk - 1) * PAGE
        leaves = rng.randrange(0, 1020)
        out[base:base + 8] = trunk.to_bytes(4, "big") + leaves.to_bytes(4, "big")
        for k in range(min(leaves, 16)):
            out[base + 8 + 4 * k:base + 12 + 4 * k] = rng.getrandbits(32).to_bytes(4, "big")
    return bytes(out)


def page_copy(rng: random.Random, raw: bytes) -> bytes:
    """A whole page duplicated over another one (a leaf, or an overflow page)."""
    count = pages_of(raw)
    if count < 3:
        return raw
    a, b = rng.randrange(2, count + 1), rng.randrange(2, count + 1)
    out = bytearray(raw)
    out[(b - 1) * PAGE:b * PAGE] = raw[(a - 1) * PAGE:a * PAGE]
    return bytes(out)


def cut(rng: random.Random, raw: bytes) -> bytes:
    return raw[:rng.randrange(0, len(raw) + 1)]


DB_MUTATORS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "header": header_field, "cell pointers": cell_pointers, "cells": cell_bytes, "overflow chain": overflow_chain,
    "freelist": freelist, "page copy": page_copy, "cut": cut,
}


# --- the WAL: (rng, wal bytes) -> wal bytes ------------------------------------------------------

def wal_header(rng: random.Random, wal: bytes) -> bytes:
    """A WAL header field changed, its checksum recomputed half the time (a forger's, not an accident's)."""
    out = bytearray(wal[:32].ljust(32, b"\0")) + wal[32:]
    field = rng.choice([0, 4, 8, 12, 16, 20])
    out[field:field + 4] = rng.choice([0, 1, 512, 65536, 0x377F0682, rng.getrandbits(32)]).to_bytes(4, "big")
    if rng.random() < 0.5:
        order = "<" if int.from_bytes(out[:4], "big") == 0x377F0682 else ">"
        s0, s1 = wal_sum(bytes(out[:24]), order, 0, 0)
        out[24:32] = s0.to_bytes(4, "big") + s1.to_bytes(4, "big")
    return bytes(out)


def wal_frame(rng: random.Random, wal: bytes) -> bytes:
    """A frame's page number, commit size, salt or a byte of its page changed; or frames cut or repeated."""
    frame = 24 + PAGE
    frames = (len(wal) - 32) // frame
    if frames < 1:
        return wal
    k = rng.randrange(frames)
    at = 32 + k * frame
    out = bytearray(wal)
    style = rng.randrange(5)
    if style == 0:
        out[at:at + 4] = rng.choice([0, 1, 2**31, rng.getrandbits(32)]).to_bytes(4, "big")
    elif style == 1:
        out[at + 4:at + 8] = rng.choice([0, 1, 9999]).to_bytes(4, "big")
    elif style == 2:
        out[at + 8 + rng.randrange(8)] ^= 0xFF
    elif style == 3:
        out[at + 24 + rng.randrange(PAGE)] ^= 1 << rng.randrange(8)
    else:
        return bytes(out[:at]) + bytes(out[at:at + frame]) * rng.randrange(1, 40)
    return bytes(out)


def wal_sum(data: bytes, order: str, s0: int, s1: int) -> tuple[int, int]:
    words = struct.unpack(f"{order}{len(data) // 4}I", data)
    for a, b in zip(words[::2], words[1::2], strict=True):
        s0 = (s0 + a + s1) & 0xFFFFFFFF
        s1 = (s1 + b + s0) & 0xFFFFFFFF
    return s0, s1


WAL_MUTATORS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "wal header": wal_header, "wal frame": wal_frame, "wal cut": cut,
}


def dense_leaf(cells: int = 600) -> bytes:
    """A leaf page packed with the smallest cells a page can hold (each a one-column record)."""
    page = bytearray(PAGE)
    page[0] = LEAF
    cell = b"\x03\x01\x02\x0f\x01"                   # payload 3 bytes, rowid 1, record: header 2, one int
    top = PAGE
    ptrs: list[int] = []
    for _ in range(cells):
        if top - len(cell) < 8 + 2 * (len(ptrs) + 1):
            break
        top -= len(cell)
        page[top:top + len(cell)] = cell
        ptrs.append(top)
    page[3:5] = len(ptrs).to_bytes(2, "big")
    page[5:7] = top.to_bytes(2, "big")
    for i, p in enumerate(ptrs):
        page[8 + 2 * i:10 + 2 * i] = p.to_bytes(2, "big")
    return bytes(page)


def wal_flood(target: int, first_page: int = 2, salts: bytes = b"SALTSALT") -> bytes:
    """A WAL whose every frame is a valid committed cell-dense leaf page (checksums that hold), ``target`` bytes."""
    head = bytearray(struct.pack(">IIII", 0x377F0683, 3007000, PAGE, 1)) + salts
    s0, s1 = wal_sum(bytes(head), ">", 0, 0)
    out = bytearray(head + s0.to_bytes(4, "big") + s1.to_bytes(4, "big"))
    leaf = dense_leaf()
    n = first_page
    while len(out) + 24 + PAGE <= target:
        fh = n.to_bytes(4, "big") + n.to_bytes(4, "big")
        s0, s1 = wal_sum(fh, ">", s0, s1)
        s0, s1 = wal_sum(leaf, ">", s0, s1)
        out += fh + salts + s0.to_bytes(4, "big") + s1.to_bytes(4, "big") + leaf
        n += 1
    return bytes(out)


def damaged_journal(d: Path, size: int, count: int) -> int:
    """``count`` closed segments of ``size`` bytes of the unit's own (chained) records each, their
    headers broken so that SQLite refuses them and salvage gives every row. Returns the records."""
    d.mkdir(parents=True, exist_ok=True)
    seq, prev = 0, chain.GENESIS
    for n in range(1, count + 1):
        path = d / f"journal-{n:06d}.sqlite"
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA page_size=4096")
        db.executescript(SCHEMA)
        db.execute("BEGIN")
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("segment", str(n)), ("first_seq", str(seq + 1)),
                                                          ("prev", prev), ("reason", "size"), ("created", "")])
        while seq * 430 < size * n:
            rows = []
            for _ in range(1000):
                seq += 1
                body = {"seq": seq, "prev": prev, "type": "press", "time": "2026-11-24T09:00:00.000+00:00",
                        "boot": "0" * 36, "mono_ms": seq, "tq": "ntp", "pad": "p" * 170}
                text, prev = chain.seal_body(body)
                rows.append((seq, body["time"], "press", None, text, prev))
            db.executemany("INSERT INTO records VALUES (?,?,?,?,?,?)", rows)
        db.execute("COMMIT")
        db.close()
        with open(path, "r+b") as f:
            f.write(b"not a database!!")
        os.chmod(path, 0o444)
    return seq
