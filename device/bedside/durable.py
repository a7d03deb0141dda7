"""Writing small files so that a power cut leaves either the old or the new version.

The journal is SQLite's business; every other file the unit writes (the seal key, the
heartbeat, the export marker, exports to a stick) goes tmp file → fsync → rename →
fsync(directory), never in place. The nurse's laptop tools (reports, pulls) use the same
code on Linux, macOS and Windows.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from bedside.core.errors import BedsideError


def fsync_dir(directory: Path) -> None:
    """Make a directory's entries (a new or renamed file) survive a power cut."""
    if not hasattr(os, "O_DIRECTORY"):
        return      # Windows: a directory cannot be opened to sync; NTFS journals its entries
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_synced(fd: int, data: bytes) -> None:
    """All of ``data`` to ``fd`` (os.write may take less than asked), then fsync."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


@contextlib.contextmanager
def _replacing(path: Path, mode: int) -> Iterator[int]:
    """A descriptor on a temporary file beside ``path`` that replaces it when the block ends
    without an error (the caller makes it durable first); removed otherwise."""
    tmp = path.with_name(f".{path.name}.tmp")
    # O_BINARY: on Windows os.write would otherwise turn every \n into \r\n.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), mode)
    try:
        yield fd
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data``: after a crash it holds the old or the new bytes, never a mix."""
    with _replacing(path, mode) as fd:
        write_synced(fd, data)


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int = 0o644) -> Iterator[IO[str]]:
    """``write_atomic`` for text written a piece at a time (UTF-8, newlines as given): the file
    is replaced when the block ends without an error, and left as it was otherwise."""
    with _replacing(path, mode) as fd:
        with open(fd, "w", encoding="utf-8", newline="", closefd=False) as f:
            yield f
        os.fsync(fd)


def write_text_atomic(path: Path, text: str) -> None:
    """``write_atomic`` for text: UTF-8, newlines as given on every system."""
    write_atomic(path, text.encode("utf-8"))


# Every file bedside reads that someone else may have written is read with a bound: a file
# can be damaged, replaced by a device that never ends (/dev/zero), or hold one endless line.
SMALL_FILE = 1024 * 1024           # config, keys, the secret, the heartbeat: far below this
MAX_LINE = 1024 * 1024             # one record of an export: far below this
# Key files (the seal key slots, the hospital's seal key, the ward secret, a private or public key,
# the ward settings state with its revocation lists): each under a few KiB, the state under the
# signed settings' 48 KiB. The read's buffer is its limit, so the limit is kept near the need.
KEY_FILE = 64 * 1024
# A configuration (the unit's bedside.toml, the ward's in the data directory, the laptop's
# settings): the annotated one is 9 KiB. tomllib takes up to about 1.1 s and 31 MiB of memory
# for a MiB of small inline tables here (ten times the time on a Pi Zero 2 W); at this limit a
# quarter of that (benchmarks: docs/security.md, "Readers of outside bytes").
CONFIG_FILE = 256 * 1024


class TooLarge(BedsideError, ValueError):
    """A file (or a line of one) longer than any bedside writes: not the file it was said to be."""


def read_bounded(path: Path, limit: int = SMALL_FILE) -> bytes:
    """At most ``limit`` bytes of a file; TooLarge if it holds more (OSError if it cannot be read).

    Opened without blocking: a fifo put in a file's place gives nothing at once (a damaged
    file), never a reader that waits forever for a writer."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with open(fd, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"it is larger than {limit // 1024} KiB")
    return data


def read_text(path: Path, limit: int = SMALL_FILE) -> str | None:
    """The file's text (at most ``limit`` bytes, else TooLarge), or None when it does not exist."""
    try:
        return read_bounded(path, limit).decode("utf-8")
    except FileNotFoundError:
        return None


def json_loads(text: str | bytes) -> Any:
    """``json.loads`` whose every failure is a ValueError: nesting deep enough to exhaust the
    parser's recursion (``[[[[...``) is a damaged file, not a crash; ``NaN`` and ``Infinity``,
    which Python's parser takes but no bedside file holds (every writer refuses them), are
    refused here, at the boundary, rather than crash a report or a check further in."""
    try:
        return json.loads(text, parse_constant=refuse_constant)
    except RecursionError:
        raise ValueError("it is nested too deeply to be a bedside file") from None


def refuse_constant(name: str) -> Any:
    raise ValueError(f"it is damaged: it holds {name}, which is not JSON and no bedside file holds")
