"""A USB stick: its authorisation file, and the export folder written onto it.

Layout of a prepared stick (docs/stick.md)::

    Bedside/
      authorisation.json          written by ``bedside stick prepare``
      README.txt                  what the stick is, for whoever finds it
      ward7-bed12_2026-11-24_0941/
        journal.jsonl             the raw export (``bedside log verify`` checks it)
        sessions.csv              one row per session
        report.html               the adherence report, for any browser

**Authorisation.** ``authorisation.json`` carries a random stick id, the public id of the
ward's stick key and an HMAC-SHA256 under that key (``secret.stick_key``: scrypt of the ward
secret with a ward-wide salt) over everything else in the file. A unit checks it with the
``stick_key`` it stores; a stick without the file, with the file of another ward, or with a
file that was changed gets nothing. The file is versioned (``bedside_stick``: 1).

**Writing.** Everything is written relative to directory descriptors opened on the stick,
never by path: if the stick's file system is detached while an export runs, writes fail
instead of landing in the empty mount point on the unit's own card. Each file goes to a
temporary name, is synced, and only then renamed to its final name, so a file under its
final name is always whole; ``report.html`` comes last, so a folder with a report has all
three. Before anything is written the free space is checked: a stick that is too full gets
nothing at all. Names are valid on FAT and exFAT (no ``<>:"/\\|?*``, no control characters,
no trailing dot or space, no DOS device name), so Windows opens every file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bedside import durable

FOLDER = "Bedside"
AUTH_FILE = "authorisation.json"
README_FILE = "README.txt"
FORMAT = 1
MAX_AUTH_BYTES = 4096
MAX_LABEL = 60
_MAC_LABEL = b"bedside stick authorisation v1\x00"
_KEY_ID_LABEL = b"bedside stick key id\x00"
# Room kept free beyond the files themselves: directory entries, and a file system that
# reports its free space a little optimistically.
MARGIN_BYTES = 256 * 1024

# Refusals (the stick is not one of the ward's) and failures (it is, but could not take the export).
NOT_PREPARED, OTHER_WARD, BAD_AUTHORISATION, NO_WARD_SECRET = (
    "not_prepared", "other_ward", "bad_authorisation", "no_ward_secret")
REFUSALS = frozenset({NOT_PREPARED, OTHER_WARD, BAD_AUTHORISATION, NO_WARD_SECRET})
FULL, READ_ONLY, UNREADABLE, REMOVED, IO_ERROR = "full", "read_only", "unreadable", "removed", "io_error"

_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_DEVICE_NAMES = frozenset({"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
                           *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))})
_TMP = re.compile(r"^\..+\.tmp$")


class StickProblem(Exception):
    """Why a stick got nothing (or not everything): ``reason`` is one word for the journal and
    the display, the message says what happened and what to do."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def refused(self) -> bool:
        return self.reason in REFUSALS


# --- authorisation -------------------------------------------------------------------

def key_id(stick_key: bytes) -> str:
    """The public name of a ward's stick key: tells a stick of another ward from a forged one."""
    return hashlib.sha256(_KEY_ID_LABEL + stick_key).hexdigest()[:16]


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _mac(stick_key: bytes, body: dict[str, Any]) -> str:
    return hmac.new(stick_key, _MAC_LABEL + _canonical(body), hashlib.sha256).hexdigest()


def clean_label(label: str) -> str:
    """A label is for people reading the file; it is kept short and printable."""
    text = "".join(c for c in label if c.isprintable()).strip()
    return text[:MAX_LABEL]


def authorisation(stick_key: bytes, prepared: datetime, label: str = "", stick_id: str | None = None
                  ) -> dict[str, Any]:
    """The body of an authorisation file (version 1)."""
    body: dict[str, Any] = {
        "bedside_stick": FORMAT,
        "stick": stick_id or secrets.token_hex(16),
        "ward_key": key_id(stick_key),
        "label": clean_label(label),
        "prepared": prepared.isoformat(timespec="seconds"),
    }
    body["mac"] = _mac(stick_key, body)
    return body


@dataclass(frozen=True, slots=True)
class Authorised:
    stick: str               # the stick's random id (recorded with each export)
    label: str
    prepared: str


def check(raw: bytes | None, stick_key: bytes) -> Authorised:
    """The stick's authorisation, or StickProblem saying why it has none."""
    if raw is None:
        raise StickProblem(NOT_PREPARED, "the stick is not prepared for this ward (it has no "
                           f"{FOLDER}/{AUTH_FILE}); prepare it with: bedside stick prepare")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        body = None
    if not isinstance(body, dict) or "bedside_stick" not in body:
        raise StickProblem(BAD_AUTHORISATION, f"the stick's {AUTH_FILE} is damaged; prepare the stick again")
    if body["bedside_stick"] != FORMAT:
        raise StickProblem(BAD_AUTHORISATION, f"the stick's {AUTH_FILE} is of version {body['bedside_stick']!r}; "
                           f"this unit reads version {FORMAT}: prepare the stick again")
    fields = {k: body.get(k) for k in ("stick", "ward_key", "label", "prepared", "mac")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise StickProblem(BAD_AUTHORISATION, f"the stick's {AUTH_FILE} is damaged; prepare the stick again")
    if not hmac.compare_digest(str(fields["ward_key"]), key_id(stick_key)):
        raise StickProblem(OTHER_WARD, "the stick was prepared for another ward (or before the ward secret "
                           "was changed); prepare it again with this ward's secret")
    unsigned = {k: v for k, v in body.items() if k != "mac"}
    if not hmac.compare_digest(str(fields["mac"]), _mac(stick_key, unsigned)):
        raise StickProblem(BAD_AUTHORISATION, f"the stick's {AUTH_FILE} was changed after it was prepared; "
                           "prepare the stick again")
    return Authorised(str(fields["stick"]), str(fields["label"]), str(fields["prepared"]))


def read_authorisation(root_fd: int) -> bytes | None:
    """The authorisation file's bytes (None when there is none). Raises StickProblem when the
    stick cannot be read."""
    try:
        folder = os.open(FOLDER, os.O_RDONLY | os.O_DIRECTORY, dir_fd=root_fd)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except OSError as e:
        raise problem(e, "reading the stick") from None
    try:
        fd = os.open(AUTH_FILE, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
    except (FileNotFoundError, IsADirectoryError):
        return None
    except OSError as e:
        raise problem(e, "reading the stick") from None
    finally:
        os.close(folder)
    try:
        data = os.read(fd, MAX_AUTH_BYTES + 1)
    except OSError as e:
        raise problem(e, "reading the stick") from None
    finally:
        os.close(fd)
    if len(data) > MAX_AUTH_BYTES:
        # Not something a unit wrote: read no further.
        return b""
    return data


README = """Bedside export stick
====================

This stick is authorised to take exports from the bedside units of one ward.

Plug it into a unit's USB port. The unit's display says "Exporting", then
"Export done - Remove the stick". Each export is a folder in this Bedside
folder, named by the unit and the date and time, e.g. ward7-bed12_2026-11-24_0941:

  report.html     the adherence report: open it in any web browser
  sessions.csv    one row per scheduled session, for spreadsheets
  journal.jsonl   the unit's record itself; "bedside log verify" checks it

Do not delete or edit authorisation.json: without it the units give this stick
nothing. Anyone holding this stick can take exports from the ward's units, so
keep it like a key.

The exports are care records (unit and episode ids, no names). Keep the stick
safe and delete the folders once they are filed.

{prepared}
"""


def prepare(root_fd: int, stick_key: bytes, prepared: datetime, label: str = "") -> dict[str, Any]:
    """Make the stick under ``root_fd`` an authorised stick: its folder, authorisation and README."""
    body = authorisation(stick_key, prepared, label)
    folder = _open_folder(root_fd, FOLDER, create=True)
    try:
        data = (json.dumps(body, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
        note = f"Prepared {body['prepared']}" + (f" ({body['label']})." if body["label"] else ".")
        write_file(folder, README_FILE, README.format(prepared=note).replace("\n", "\r\n").encode("utf-8"))
        # The authorisation last: a stick with it is a complete prepared stick.
        write_file(folder, AUTH_FILE, data)
    finally:
        os.close(folder)
    return body


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


# --- writing -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class File:
    name: str
    data: bytes


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


def write_file(dir_fd: int, name: str, data: bytes) -> None:
    """``name`` in the directory ``dir_fd`` holds ``data``, whole: tmp → fsync → rename → fsync(dir)."""
    tmp = f".{name}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=dir_fd)      # left by an export that was cut short
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=dir_fd)
    try:
        durable.write_synced(fd, data)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.close(fd)
    os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    os.fsync(dir_fd)


def _open_folder(parent_fd: int, name: str, *, create: bool) -> int:
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=parent_fd)
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)


def _leftovers(folder_fd: int) -> None:
    """Remove temporary files of exports that were cut short (never a whole file)."""
    for entry in os.listdir(folder_fd):
        try:
            sub = os.open(entry, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder_fd)
        except OSError:
            continue
        try:
            for name in os.listdir(sub):
                if _TMP.match(name):
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=sub)
        finally:
            os.close(sub)


def free_bytes(fd: int) -> tuple[int, int, bool]:
    """(bytes free, allocation unit, read-only) of the file system holding ``fd``."""
    st = os.fstatvfs(fd)
    unit = max(st.f_bsize, st.f_frsize, 512)
    return st.f_bavail * st.f_frsize, unit, bool(st.f_flag & os.ST_RDONLY)


def needed_bytes(files: Sequence[File], unit: int) -> int:
    return sum(-(-len(f.data) // unit) * unit for f in files) + 2 * unit + MARGIN_BYTES


def write_export(root_fd: int, name: str, files: Sequence[File],
                 step: Callable[[str], None] = lambda what: None) -> Written:
    """Write ``files`` into ``Bedside/<name>`` (``<name>_2`` … if that exists) on the stick.

    Raises StickProblem (nothing at all is written when the stick is full or read-only).
    ``step`` is told what is about to happen (the tests cut the stick off there)."""
    total = sum(len(f.data) for f in files)
    try:
        free, unit, read_only = free_bytes(root_fd)
        if read_only:
            raise StickProblem(READ_ONLY, "the stick is read-only; use another stick, or check its "
                               "write-protect switch")
        step("folder")
        top = _open_folder(root_fd, FOLDER, create=True)
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
                    write_file(sub, f.name, f.data)
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
