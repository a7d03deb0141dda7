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
import os
from pathlib import Path
from typing import Any

from bedside.core.digest import sha256
from bedside.durable import read_bounded

FILE_NAME = "outage.reserve"
SIZE = 64 * 1024
_SLOT = SIZE // 2
_MAGIC = b"BEDSIDE-OUTAGE-1"
_HEAD = len(_MAGIC) + 4 + 32
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)      # a fifo in the file's place must not stop the unit


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


def write(data_dir: Path, body: dict[str, Any]) -> bool:
    """Rewrite the reserve in place with ``body`` (its ``records`` cut to fit); True if it is on the card."""
    path = Path(data_dir) / FILE_NAME
    body = dict(body)
    records = list(body.get("records", []))
    more: dict[str, int] = dict(body.get("more", {}))
    while True:
        payload = json.dumps({**body, "records": records, "more": more}, sort_keys=True, default=str).encode()
        if len(payload) <= _SLOT - _HEAD or not records:
            break
        cut = records.pop()
        more[str(cut.get("type"))] = more.get(str(cut.get("type")), 0) + 1
    if len(payload) > _SLOT - _HEAD:
        return False
    slot = int(body.get("gen", 0)) % 2
    block = _MAGIC + len(payload).to_bytes(4, "big") + sha256(payload).digest() + payload
    try:
        fd = os.open(path, os.O_WRONLY | _NONBLOCK)
    except OSError:
        return False
    try:
        if os.fstat(fd).st_size < SIZE:
            return False          # never grow it: that would need the free space there is none of
        os.pwrite(fd, block, slot * _SLOT)
        os.fdatasync(fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def read(data_dir: Path) -> dict[str, Any] | None:
    """The newest whole outage in the reserve, or None."""
    try:
        raw = read_bounded(Path(data_dir) / FILE_NAME, SIZE)
    except (OSError, ValueError):
        return None
    best: dict[str, Any] | None = None
    for slot in (0, 1):
        block = raw[slot * _SLOT:(slot + 1) * _SLOT]
        if not block.startswith(_MAGIC):
            continue
        n = int.from_bytes(block[len(_MAGIC):len(_MAGIC) + 4], "big")
        payload = block[_HEAD:_HEAD + n]
        if n > _SLOT - _HEAD or sha256(payload).digest() != block[len(_MAGIC) + 4:_HEAD]:
            continue
        with contextlib.suppress(ValueError):
            body = json.loads(payload)
            if isinstance(body, dict) and (best is None or int(body.get("gen", 0)) > int(best.get("gen", 0))):
                best = body
    return best


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
