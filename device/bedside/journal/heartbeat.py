"""The heartbeat: when the unit was last known to be running, and the chain head it had.

The journal's last record says when the unit last did something; on a quiet night that
can be hours before the power went. After ``EVERY_S`` without a record the daemon writes a
beat: the time, the boot, and the chain head, so ``power_loss`` can bound when an outage
began, and ``verify`` (and the start-up check) can tell a journal that ends before the unit
last saw it — newest records removed, or a segment emptied — from one that simply stopped.

Cheap on the card: ``alive.dat`` is made once, 1 KiB, and each beat overwrites one of its
two 512-byte slots in place (alternately, so a write torn by a power cut leaves the other
slot whole; each slot carries a check of its own). A beat is not synced: the kernel writes
it back within about 30 s, so a power cut can cost at most the latest beat, and the bound
is then one interval wider. No rename, no new file, no fsync: a beat costs the card one
page, and the journal's own commits are not slowed.

Units that ran an earlier version have ``alive.json`` (one JSON object, replaced whole);
it is read when ``alive.dat`` has no beat yet.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bedside.core import wall
from bedside.core.digest import sha256
from bedside.durable import json_loads, read_bounded, read_text

FILE_NAME = "alive.dat"
LEGACY_NAME = "alive.json"
SLOT = 512
EVERY_S = 1800.0         # at most this long between the last record or beat and the next beat


@dataclass(frozen=True, slots=True)
class Beat:
    time: datetime
    boot: str
    mono_ms: int
    seq: int | None
    hash: str | None


def _body(beat: Beat) -> dict[str, Any]:
    return {"time": beat.time.isoformat(timespec="milliseconds"), "boot": beat.boot, "mono_ms": beat.mono_ms,
            "seq": beat.seq, "hash": beat.hash}


def _check(body: dict[str, Any]) -> str:
    return sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _slot(body: dict[str, Any], n: int) -> bytes:
    text = json.dumps({**body, "n": n, "check": _check({**body, "n": n})}, sort_keys=True).encode()
    if len(text) >= SLOT:
        raise ValueError("a heartbeat does not fit its slot")
    return text.ljust(SLOT - 1) + b"\n"


def _whole(value: Any) -> int:
    """A count the unit writes (a seq, milliseconds): a whole number that SQLite's INTEGER holds."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError("not a count the unit writes")
    return value


def _parse(body: dict[str, Any]) -> Beat:
    seq = body.get("seq")
    # Only a time a clock gives (aware, no leap second, within the plausible years), and counts
    # that are whole numbers SQLite holds (not 1e300, not Infinity): anything else is a slot the
    # unit did not write, passed over like a torn one.
    return Beat(wall.parse(body["time"]), str(body["boot"])[:64], _whole(body["mono_ms"]),
                _whole(seq) if seq is not None else None, body.get("hash"))


def _slots(raw: bytes) -> list[tuple[int, Beat]]:
    """The whole slots of ``alive.dat``: (n, beat), a torn or blank one left out."""
    out = []
    for i in range(0, len(raw), SLOT):
        try:
            body = json_loads(raw[i:i + SLOT])
            check = body.pop("check")
            if check != _check(body):
                continue
            out.append((int(body.pop("n")), _parse(body)))
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError):   # (Infinity: no whole number)
            continue
    return out


class Writer:
    """Keeps ``alive.dat`` open and overwrites its older slot with each beat."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self.fd: int | None = None
        self.n = 0

    def _open(self) -> int:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            raw = os.pread(fd, 2 * SLOT, 0)
            if len(raw) < 2 * SLOT:
                # Made once at its full size, so later beats never change its size. Not synced:
                # a file lost to a power cut just after it was made only loses a bound.
                os.pwrite(fd, (b" " * (SLOT - 1) + b"\n") * 2, 0)
            self.n = max((n for n, _ in _slots(raw)), default=0)
        except OSError:
            os.close(fd)
            raise
        return fd

    def write(self, beat: Beat) -> None:
        if self.fd is None:
            self.fd = self._open()
        n = self.n + 1
        os.pwrite(self.fd, _slot(_body(beat), n), (n % 2) * SLOT)
        self.n = n

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


def write(data_dir: Path, beat: Beat) -> None:
    """One beat, from a process that does not keep a writer (tests, tools)."""
    w = Writer(data_dir)
    try:
        w.write(beat)
    finally:
        w.close()


def read(data_dir: Path) -> Beat | None:
    """The last heartbeat, or None when there is none or it cannot be read (it only narrows a bound)."""
    try:
        raw = read_bounded(Path(data_dir) / FILE_NAME)
    except OSError:
        raw = b""
    slots = _slots(raw)
    if slots:
        return max(slots, key=lambda s: s[0])[1]
    try:
        text = read_text(Path(data_dir) / LEGACY_NAME)
        return None if text is None else _parse(json_loads(text))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError):
        return None
