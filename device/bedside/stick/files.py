"""A USB stick's files: the export folder written onto it, and the names it may have.

Layout of a prepared stick (docs/stick.md)::

    Bedside/
      authorisation.json          written by ``bedside stick prepare`` (``auth.py``)
      README.txt                  what the stick is, for whoever finds it
      ward7-bed12_2026-11-24_0941/
        journal.jsonl             the raw export (``bedside log verify`` checks it)
        sessions.csv              one row per session
        report.html               the adherence report, for any browser

Everything is written relative to directory descriptors opened on the stick, never by
path: if the stick's file system is detached while an export runs, writes fail instead of
landing in the empty mount point on the unit's own card. Each file goes to a temporary
name, is synced, and only then renamed to its final name, so a file under its final name
is always whole; ``report.html`` comes last, so a folder with a report has all three.
Before anything is written the free space is checked: a stick that is too full gets
nothing at all. Names are valid on FAT and exFAT (no ``<>:"/\\|?*``, no control
characters, no trailing dot or space, no DOS device name), so Windows opens every file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO

from bedside import durable
from bedside.core.errors import BedsideError

FOLDER = "Bedside"
# Room kept free beyond the files themselves: directory entries, and a file system that
# reports its free space a little optimistically.
MARGIN_BYTES = 256 * 1024

# Refusals (the stick is not one of the ward's) and failures (it is, but could not take the export).
NOT_PREPARED, OTHER_WARD, BAD_AUTHORISATION, NO_WARD_SECRET, REVOKED, NO_KEYS = (
    "not_prepared", "other_ward", "bad_authorisation", "no_ward_secret", "revoked", "no_keys")
REFUSALS = frozenset({NOT_PREPARED, OTHER_WARD, BAD_AUTHORISATION, NO_WARD_SECRET, REVOKED, NO_KEYS})
FULL, READ_ONLY, UNREADABLE, REMOVED, IO_ERROR = "full", "read_only", "unreadable", "removed", "io_error"

_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_DEVICE_NAMES = frozenset({"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
                           *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))})
_TMP = re.compile(r"^\..+\.tmp$")


class StickProblem(BedsideError):
    """Why a stick got nothing (or not everything): ``reason`` is one word for the journal and
    the display, the message says what happened and what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def refused(self) -> bool:
        return self.reason in REFUSALS


# --- names ---------------------------------------------------------------------------

def safe_name(text: str, limit: int = 100) -> str:
    """``text`` as a file or folder name that FAT, exFAT and Windows all accept."""
    name = _FORBIDDEN.sub("_", text)[:limit].rstrip(" .")
    if not name:
        return "_"
    if name.split(".")[0].upper().rstrip() in _DEVICE_NAMES:
        name = "_" + name
    return name


def folder_name(unit: str, when: datetime) -> str:
    """The export folder: unit, local date and time (``ward7-bed12_2026-11-24_0941``)."""
    return safe_name(f"{unit}_{when:%Y-%m-%d_%H%M}")


# --- reading --------------------------------------------------------------------------

def read_small(dir_fd: int, name: str, limit: int) -> bytes | None:
    """The file ``name`` in the directory ``dir_fd`` of a stick, at most ``limit`` bytes: None when
    there is none, b"" when it cannot be one a bedside tool wrote (larger than ``limit``, a link,
    a directory, a fifo or a device: read no further). OSError when the stick cannot be read.

    Every reader of a stick's small files (the authorisation, the ward settings, an update's
    manifest and recovery) goes through here: one read of at most ``limit`` + 1 bytes, opened
    without following a link and without blocking (a fifo gives nothing at once), whatever the
    stick holds (docs/stick.md, "Hostile sticks")."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except IsADirectoryError:
        return b""
    except OSError as e:
        if e.errno == errno.ELOOP:      # a link, never followed
            return b""
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    return data if len(data) <= limit else b""


# --- writing -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class File:
    name: str
    data: bytes = b""
    # A file too large to hold whole (the raw export): what writes it, as UTF-8 text a piece at
    # a time, and its size in bytes, known beforehand for the free-space check.
    writer: Callable[[IO[str]], None] | None = None
    length: int = 0

    @property
    def size(self) -> int:
        return self.length if self.writer is not None else len(self.data)


@dataclass(frozen=True, slots=True)
class Written:
    folder: str                       # Bedside/<name>
    files: tuple[str, ...]
    bytes: int


# Errors that mean the stick went away (pulled out, or its file system detached).
_GONE = frozenset({errno.ENOTCONN, errno.ECONNABORTED, errno.ENODEV, errno.ENXIO, errno.ESHUTDOWN, errno.ESTALE,
                   errno.EBADF})


def problem(e: OSError, doing: str) -> StickProblem:
    """An OSError from the stick, for people: full, read-only, gone, or failing."""
    what = e.strerror or str(e)
    if e.errno == errno.EROFS:
        return StickProblem(READ_ONLY, f"the stick is read-only ({doing}); use another stick, or check its "
                            "write-protect switch")
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return StickProblem(FULL, f"the stick is full ({doing}); delete old exports from it or use another")
    if e.errno in _GONE:
        return StickProblem(REMOVED, f"the stick was removed or stopped answering ({doing}: {what}); "
                            "plug it in again to export")
    if e.errno == errno.EIO:
        return StickProblem(IO_ERROR, f"the stick failed to read or write ({doing}: {what}); "
                            "it may be failing: try another stick")
    return StickProblem(IO_ERROR, f"the stick could not be written ({doing}: {what}); try another stick")


def write_file(dir_fd: int, name: str, data: bytes | Callable[[IO[str]], None]) -> None:
    """``name`` in the directory ``dir_fd`` holds ``data`` (or what the writer ``data`` writes),
    whole: tmp → fsync → rename → fsync(dir)."""
    tmp = f".{name}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=dir_fd)      # left by an export that was cut short
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd)
    try:
        if isinstance(data, bytes):
            durable.write_synced(fd, data)
        else:
            with open(fd, "w", encoding="utf-8", newline="", closefd=False) as out:
                data(out)
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.close(fd)
    os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    os.fsync(dir_fd)


def open_folder(parent_fd: int, name: str, *, create: bool) -> int:
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent_fd)
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)


def _leftovers(folder_fd: int) -> None:
    """Remove temporary files of exports that were cut short (never a whole file).

    The folders are walked an entry at a time (``os.scandir``), never listed whole: an exFAT
    stick's folder may hold millions of names."""
    with os.scandir(folder_fd) as entries:
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            try:
                sub = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder_fd)
            except OSError:
                continue
            try:
                with os.scandir(sub) as names:
                    for e in names:
                        if _TMP.match(e.name):
                            with contextlib.suppress(OSError):
                                os.unlink(e.name, dir_fd=sub)
            finally:
                os.close(sub)


def free_bytes(fd: int) -> tuple[int, int, bool]:
    """(bytes free, allocation unit, read-only) of the file system holding ``fd``."""
    st = os.fstatvfs(fd)
    unit = max(st.f_bsize, st.f_frsize, 512)
    return st.f_bavail * st.f_frsize, unit, bool(st.f_flag & os.ST_RDONLY)


def needed_bytes(files: Sequence[File], unit: int) -> int:
    return sum(-(-f.size // unit) * unit for f in files) + 2 * unit + MARGIN_BYTES


def write_export(root_fd: int, name: str, files: Sequence[File],
                 step: Callable[[str], None] = lambda what: None) -> Written:
    """Write ``files`` into ``Bedside/<name>`` (``<name>_2`` … if that exists) on the stick.

    Raises StickProblem (nothing at all is written when the stick is full or read-only).
    ``step`` is told what is about to happen (the tests cut the stick off there)."""
    total = sum(f.size for f in files)
    try:
        free, unit, read_only = free_bytes(root_fd)
        if read_only:
            raise StickProblem(READ_ONLY, "the stick is read-only; use another stick, or check its "
                               "write-protect switch")
        step("folder")
        top = open_folder(root_fd, FOLDER, create=True)
    except OSError as e:
        raise problem(e, "opening the stick") from None
    try:
        with contextlib.suppress(OSError):
            _leftovers(top)
        try:
            free, unit, _ = free_bytes(top)
        except OSError as e:
            raise problem(e, "reading the stick") from None
        need = needed_bytes(files, unit)
        if free < need:
            raise StickProblem(FULL, f"the stick is full: the export needs {_mb(need)} and the stick has "
                               f"{_mb(free)} free; delete old exports from it or use another stick")
        folder, sub = _new_folder(top, name)
        written: list[str] = []
        try:
            for f in files:
                step(f.name)
                try:
                    write_file(sub, f.name, f.writer or f.data)
                except OSError as e:
                    # A file system that fails a write for want of room without saying so.
                    with contextlib.suppress(OSError):
                        if free_bytes(sub)[0] < needed_bytes(files[len(written):], unit) - MARGIN_BYTES:
                            raise StickProblem(FULL, "the stick became full while the export was written; "
                                               "delete old exports from it or use another stick") from None
                    raise problem(e, f"writing {f.name}") from None
                written.append(f.name)
        finally:
            os.close(sub)
    finally:
        with contextlib.suppress(OSError):
            os.close(top)
    return Written(f"{FOLDER}/{folder}", tuple(written), total)


def _new_folder(top: int, name: str) -> tuple[str, int]:
    """Create a folder that no earlier export uses: ``name``, else ``name_2``, ``name_3`` …"""
    for n in range(1, 100):
        candidate = name if n == 1 else f"{name}_{n}"
        try:
            os.mkdir(candidate, 0o755, dir_fd=top)
        except FileExistsError:
            continue
        except OSError as e:
            raise problem(e, "creating the export folder") from None
        try:
            return candidate, os.open(candidate, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
        except OSError as e:
            raise problem(e, "opening the export folder") from None
    raise StickProblem(IO_ERROR, f"the stick already holds 99 exports named {name}; delete some")


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB"
