"""Writing small files so that a power cut leaves either the old or the new version.

The journal is SQLite's business; every other file the unit writes (the seal key, the
heartbeat, the export marker, exports to a stick) goes tmp file → fsync → rename →
fsync(directory), never in place. The nurse's laptop tools (reports, pulls) use the same
code on Linux, macOS and Windows.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


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


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data``: after a crash it holds the old or the new bytes, never a mix."""
    tmp = path.with_name(f".{path.name}.tmp")
    # O_BINARY: on Windows os.write would otherwise turn every \n into \r\n.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), mode)
    try:
        write_synced(fd, data)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_text_atomic(path: Path, text: str) -> None:
    """``write_atomic`` for text: UTF-8, newlines as given on every system."""
    write_atomic(path, text.encode("utf-8"))


def read_text(path: Path) -> str | None:
    """The file's text, or None when it does not exist."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
