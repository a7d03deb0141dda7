"""A second place to write while the journal cannot be: a small file reserved at start.

When the card fills up, the records the unit cannot commit are kept in memory (store.py) and
written when storage comes back. If the power goes first, memory is lost, and the journal
would show the unit silent from the moment storage failed although it went on prompting.
So, at every start with storage healthy, the unit reserves ``outage.reserve`` (64 KiB of
zeros, allocated with ``posix_fallocate``: its blocks are the file's from then on), and
while storage fails it rewrites that file in place with the outage so far: when it began,
why, the chain head it follows, and the kept records themselves (as many as fit; the rest
counted by type). Writing into blocks a file already owns needs no free space, so this works
on a full card (not on a read-only or failing one, where nothing can be written at all).
``/run`` is no help here: it is lost with the power.

At the next start, if the journal still ends where the outage began, the store writes what
the reserve holds into the journal (a ``fault`` from when it began, the kept records with
their own times and boot, a ``fault_cleared`` saying they came from the reserve after a
restart, and what did not fit). The file has two slots written alternately, each with a
checksum, so a power cut during a rewrite leaves the previous one readable.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bedside.core import wall
from bedside.core.digest import sha256
from bedside.core.records import T
from bedside.durable import read_bounded

FILE_NAME = "outage.reserve"
SIZE = 64 * 1024
_SLOT = SIZE // 2
_MAGIC = b"BEDSIDE-OUTAGE-1"
_HEAD = len(_MAGIC) + 4 + 32
# No record the unit keeps serializes shorter than 64 bytes (about 100 in practice), so no more
# than this many can fit in a slot: the rest of a long outage is only counted.
MOST_RECORDS = _SLOT // 64
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)      # a fifo in the file's place must not stop the unit


def _counted(more: dict[str, int], cut: list[dict[str, Any]]) -> dict[str, int]:
    """``more`` with the records of ``cut`` added to it, by type."""
    for r in cut:
        t = str(r.get("type"))
        more[t] = more.get(t, 0) + 1
    return more


def reserve(data_dir: Path) -> bool:
    """Make sure the reserve exists at full size with its blocks allocated; True if it does."""
    path = Path(data_dir) / FILE_NAME
    try:
        if path.is_file() and path.stat().st_size == SIZE:
            return True
        tmp = path.with_name(path.name + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # The blocks are the file's from here on, with no sync: what matters is that an
            # outage later writes into space already owned. If a power cut loses the new file
            # before the filesystem commits it, the next start reserves it again; what is
            # written into it during an outage is synced (``write``).
            os.posix_fallocate(fd, 0, SIZE)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        return True
    except OSError:
        return False


def write(data_dir: Path, body: dict[str, Any], hint: int | None = None) -> int | None:
    """Rewrite the reserve in place with ``body``, its ``records`` cut to fit (the cut ones
    counted in ``more`` by type). Returns how many records went in, or None if nothing reached
    the card. ``hint``: how many went in last time; the store passes it back.

    Budget: at most ``MOST_RECORDS`` records are looked at, the rest only counted. With the
    hint right (a long outage only adds records past the ones that fit) the body is serialized
    twice; otherwise the longest prefix that fits is found by halving, about ten times. (Cutting
    one record at a time and serializing the whole body after each cut made every button press
    on a full card slower than the last: the store rewrites the reserve for every record it keeps.)"""
    path = Path(data_dir) / FILE_NAME
    body = dict(body)
    records = list(body.get("records", [])[:MOST_RECORDS])
    more: dict[str, int] = _counted(dict(body.get("more", {})), body.get("records", [])[MOST_RECORDS:])
    room = _SLOT - _HEAD

    def fitting(k: int) -> bytes | None:
        payload = json.dumps({**body, "records": records[:k], "more": _counted(dict(more), records[k:])},
                             sort_keys=True, default=str).encode()
        return payload if len(payload) <= room else None

    n = len(records)
    if hint is not None and 0 <= hint < n and (best := fitting(hint)) is not None and fitting(hint + 1) is None:
        k = hint
    elif (best := fitting(n)) is not None:
        k = n
    else:
        # Cutting a record never lengthens the body by more than it removes (its type is
        # counted instead), so the prefixes that fit are those up to some length: halve to it.
        lo, hi, best = 0, n, fitting(0)
        if best is None:
            return None
        while hi - lo > 1:
            mid = (lo + hi) // 2
            candidate = fitting(mid)
            if candidate is not None:
                lo, best = mid, candidate
            else:
                hi = mid
        k = lo
    slot = int(body.get("gen", 0)) % 2
    block = _MAGIC + len(best).to_bytes(4, "big") + sha256(best).digest() + best
    try:
        fd = os.open(path, os.O_WRONLY | _NONBLOCK)
    except OSError:
        return None
    try:
        if os.fstat(fd).st_size < SIZE:
            return None           # never grow it: that would need the free space there is none of
        os.pwrite(fd, block, slot * _SLOT)
        os.fdatasync(fd)
        return k
    except OSError:
        return None
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Kept:
    """One record kept in the reserve, checked: only values the unit itself writes."""

    type: str
    session: str | None
    due: datetime | None
    data: dict[str, Any]
    wall: datetime
    mono: float
    tq: str


@dataclass
class Reading:
    """What the reserve holds, as far as it can be believed, and what was refused and why.

    ``body`` is the newest slot that passed every check (None if none did); ``records`` are its
    kept records that passed theirs, in order; ``refused`` names each slot or record that did
    not, for the journal's fault record (a crafted or damaged reserve never stops the unit)."""

    body: dict[str, Any] | None = None
    head: tuple[int, str] | None = None
    since: Kept | None = None
    records: list[Kept] = field(default_factory=list)
    more: dict[str, int] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)


_KEEP_REFUSALS = 5                 # reasons named in full; the rest are counted


def read(data_dir: Path) -> dict[str, Any] | None:
    """The newest whole outage in the reserve (its slot checked), or None."""
    return read_checked(data_dir).body


def read_checked(data_dir: Path, now: datetime | None = None) -> Reading:
    """The reserve, every value checked at this boundary (``now``: records later than it are refused).

    Budget: the file is read once, at most ``SIZE`` bytes; each slot's JSON is parsed once
    (at most 32 KiB, nesting refused past Python's limit) and each record checked once."""
    out = Reading()
    try:
        raw = read_bounded(Path(data_dir) / FILE_NAME, SIZE)
    except FileNotFoundError:
        return out                      # never reserved (a first start): nothing to refuse
    except (OSError, ValueError) as e:
        out.refused.append(f"the reserve cannot be read: {e}")
        return out
    best: tuple[int, dict[str, Any]] | None = None
    for slot in (0, 1):
        block = raw[slot * _SLOT:(slot + 1) * _SLOT]
        if not block.startswith(_MAGIC):
            continue
        n = int.from_bytes(block[len(_MAGIC):len(_MAGIC) + 4], "big")
        payload = block[_HEAD:_HEAD + n]
        if n > _SLOT - _HEAD or sha256(payload).digest() != block[len(_MAGIC) + 4:_HEAD]:
            continue              # torn by a power cut mid-write: the other slot is the outage
        try:
            body = _slot(payload)
        except ValueError as e:
            out.refused.append(f"slot {slot}: {e}")
            continue
        if best is None or body["gen"] > best[0]:
            best = (body["gen"], body)
    if best is None:
        return out
    body = best[1]
    out.body = body
    out.head = (body["head"][0], body["head"][1])
    bad: list[str] = []
    try:
        out.since = _kept({"type": T.FAULT, "session": None, "due": None, "data": {},
                           "wall": body.get("since"), "mono": body.get("since_mono"),
                           "tq": body.get("since_tq")}, now)
    except ValueError as e:
        bad.append(f"its start: {e}")
    for i, r in enumerate(body["records"]):
        try:
            out.records.append(_kept(r, now))
        except ValueError as e:
            bad.append(f"record {i}: {e}")
    more = body.get("more")
    if isinstance(more, dict):
        out.more = {str(k)[:40]: v for k, v in more.items()
                    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10**9}
        if len(out.more) != len(more):
            bad.append("some counts of records not saved are not counts")
    elif more is not None:
        bad.append("its counts of records not saved are not a table")
    out.refused += bad[:_KEEP_REFUSALS]
    if len(bad) > _KEEP_REFUSALS:
        out.refused.append(f"and {len(bad) - _KEEP_REFUSALS} more")
    return out


def _slot(payload: bytes) -> dict[str, Any]:
    """A slot's outage, its frame checked (its records are checked one by one later)."""
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        raise ValueError("not JSON the unit writes") from None
    if not isinstance(body, dict):
        raise ValueError("not an object")
    gen = body.get("gen")
    if not isinstance(gen, int) or isinstance(gen, bool) or not 0 <= gen < 2**53:
        raise ValueError(f"its generation is not a whole number ({_show(gen)})")
    head = body.get("head")
    if not (isinstance(head, list) and len(head) == 2 and isinstance(head[0], int) and not isinstance(head[0], bool)
            and head[0] >= 0 and isinstance(head[1], str) and len(head[1]) == 64):
        raise ValueError(f"its chain head is not a seq and a hash ({_show(head)})")
    if not isinstance(body.get("records"), list):
        raise ValueError(f"its records are not a list ({_show(body.get('records'))})")
    for key in ("why", "boot", "until"):
        if body.get(key) is not None and not isinstance(body.get(key), str):
            raise ValueError(f"its {key} is not text ({_show(body.get(key))})")
    return body


def _kept(r: object, now: datetime | None) -> Kept:
    if not isinstance(r, dict):
        raise ValueError(f"not a record ({_show(r)})")
    type_ = r.get("type")
    if not isinstance(type_, str) or not type_.isidentifier() or len(type_) > 40:
        raise ValueError(f"its type is not a record type ({_show(type_)})")
    session, data, tq, mono = r.get("session"), r.get("data"), r.get("tq"), r.get("mono")
    if session is not None and not (isinstance(session, str) and len(session) <= 64):
        raise ValueError(f"its session is not a session ({_show(session)})")
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"its details are not a table ({_show(data)})")
    if data:
        try:
            json.dumps(data, allow_nan=False)     # the journal holds JSON only: no NaN or Infinity
        except (ValueError, TypeError, RecursionError):
            raise ValueError("its details hold a number JSON has not (NaN or Infinity)") from None
    if not isinstance(tq, str) or len(tq) > 20:
        raise ValueError(f"its time quality is not one ({_show(tq)})")
    if (not isinstance(mono, int | float) or isinstance(mono, bool) or not math.isfinite(mono)
            or not 0 <= mono < 10**10):
        raise ValueError(f"its monotonic time is not a time ({_show(mono)})")
    at = wall.parse(r.get("wall"))
    if now is not None:
        wall.not_after(at, now, "its time")
    due = wall.parse(r["due"]) if r.get("due") is not None else None
    if due is not None and now is not None:
        wall.not_after(due, now + timedelta(days=1), "its session's due time")   # no session is due later
    return Kept(type_, session, due, dict(data or {}), at, float(mono), tq)


def _show(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def clear(data_dir: Path) -> None:
    """The outage is in the journal (or never happened): the reserve goes back to zeros."""
    path = Path(data_dir) / FILE_NAME
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_WRONLY | _NONBLOCK)
        try:
            if os.fstat(fd).st_size == SIZE:
                os.pwrite(fd, b"\0" * SIZE, 0)
                os.fdatasync(fd)
        finally:
            os.close(fd)
