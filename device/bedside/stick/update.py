"""A software update on a ward stick: a folder of wheels and a release manifest signed with
the release key (docs/security.md, docs/install.md "Software updates by stick").

Layout::

    Bedside/
      authorisation.json
      update/
        manifest.json               a signed ``release`` document (``bedside release sign``)
        recovery.json               (rarely) a ``release_recovery`` signed by the ward authority
        bedside-0.2.0-py3-none-any.whl
        gpiozero-…whl …             every wheel the version needs: the unit is offline

**The manifest** names the version, a counter the release signer raises with every release,
and every wheel with its SHA-256 and size. Only a key pinned on the unit as a release key
makes one the unit accepts: a ward secret, a unit's card or a stick gives nobody that key.

**Copying** (``copy_verified``) is the one way a bundle moves, from the stick into
``update-incoming`` (the unprivileged export) and from there into the root-owned staging
folder (the updater): the manifest is read (64 KiB at most) and its signature checked
*before* anything else is copied; then only the files it names, each opened without
following links, must be regular files of exactly the signed size, and are streamed a MiB at
a time through SHA-256 into a new file, never held whole in memory; a file that is larger,
smaller or different stops the copy and removes what was written. Nothing is copied when
the card would keep less than ``JOURNAL_RESERVE`` free for the journal.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bedside.core.digest import compare_digest, hmac_sha256
from bedside.core.digest import sha256 as new_sha256
from bedside.core.errors import BedsideError
from bedside.durable import fsync_dir, json_loads, write_atomic
from bedside.stick.files import FOLDER, read_small
from bedside.trust import freshness, signed
from bedside.trust.keyring import Keyring
from bedside.trust.signed import Untrusted

UPDATE_DIR = "update"
MANIFEST = "manifest.json"
RECOVERY = "recovery.json"
KIND = "release"
RECOVERY_KIND = "release_recovery"
MAX_MANIFEST_BYTES = signed.MAX_BYTES
MAX_BUNDLE_BYTES = 300 * 1024 * 1024
# What a copy leaves free on the card, whatever the bundle: the journal's room to go on.
JOURNAL_RESERVE = 128 * 1024 * 1024
CHUNK = 1 << 20
# Where the export copies a stick's bundle for the root updater (bedside-update.path watches it).
INCOMING = "update-incoming"
_VERSION = re.compile(r"^\d+(\.\d+){0,3}$")
_WHEEL = re.compile(r"^[A-Za-z0-9_.+-]+\.whl$")

# Why a bundle was refused (the journal's ``software_update_refused`` ``reason``).
MALFORMED, UNSIGNED, BAD_SIGNATURE, DAMAGED, DOWNGRADE, IMPLAUSIBLE, NO_SPACE, NO_KEYS, TOO_LARGE = (
    "malformed", "unsigned", "bad_signature", "damaged", "downgrade", "implausible", "no_space", "no_keys",
    "too_large")


class UpdateRefused(BedsideError):
    """The bundle will not be copied or installed: ``reason`` for the journal, the message for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Wheel:
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Release:
    version: str
    counter: int
    wheels: Mapping[str, Wheel]
    made: str
    signer: str                       # the release key's id
    recovery_from: int | None = None  # set when a ward recovery let it in below the unit's counter

    @property
    def total(self) -> int:
        return sum(w.size for w in self.wheels.values())


def version_key(version: str) -> tuple[int, ...]:
    """A release number as numbers (0.10.0 after 0.9.0); ValueError for anything else."""
    if not _VERSION.match(version):
        raise ValueError(f"not a release number: {version!r}")
    parts = [int(p) for p in version.split(".")]
    return tuple(parts + [0] * (4 - len(parts)))


def sha256(path: Path) -> str:
    h = new_sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


# --- making one (where releases are built) ---------------------------------------------

def body_for(folder: Path, counter: int, made: datetime) -> dict[str, Any]:
    """The manifest's body for the wheels in ``folder`` (exactly one of them bedside's)."""
    files = sorted(folder.glob("*.whl"))
    wheels = {p.name: {"sha256": sha256(p), "size": p.stat().st_size} for p in files}
    versions = [name.split("-")[1] for name in wheels if name.startswith("bedside-")]
    if len(versions) != 1:
        raise ValueError(f"{folder} must hold exactly one bedside wheel (found {len(versions)})")
    version_key(versions[0])
    if sum(p.stat().st_size for p in files) > MAX_BUNDLE_BYTES:
        raise ValueError(f"the wheels in {folder} are over {MAX_BUNDLE_BYTES // 2**20} MiB, more than a unit takes")
    if counter < 1:
        raise ValueError("a release counter is a whole number from 1, one more than the last release's")
    return {"version": versions[0], "counter": counter, "wheels": wheels,
            "made": made.isoformat(timespec="seconds"), "issued": made.isoformat(timespec="seconds")}


def write_manifest(folder: Path, doc: signed.Document, name: str = MANIFEST) -> Path:
    write_atomic(folder / name, signed.dumps(doc))
    return folder / name


# --- reading and checking one (the export and the updater) --------------------------------

def _read_small(dir_fd: int, name: str) -> bytes | None:
    """A small file of the bundle (the manifest), or None when there is none. Larger than a
    manifest can be: b"" (read no further)."""
    return read_small(dir_fd, name, MAX_MANIFEST_BYTES)


def check_manifest(raw: bytes | None, ring: Keyring | None, trusted: int, now: datetime,
                   recovery: bytes | None = None, current: str | None = None) -> Release:
    """The release in ``raw`` if a pinned release key signed it and it may follow counter
    ``trusted`` and the version ``current`` (when known); UpdateRefused otherwise. ``recovery``:
    a ward-signed ``release_recovery``, which lets in a lower counter and version too.

    Both orders hold: the counter (a unit installed from source has no counter yet, so an old
    genuine release must not pass on a counter alone) and the version."""
    if ring is None:
        raise UpdateRefused(NO_KEYS, "this unit has no pinned release key, so it installs no software from a "
                            "stick; the engineer pins the ward's keys (docs/install.md, migration)")
    if not raw:
        raise UpdateRefused(UNSIGNED, f"the stick's {FOLDER}/{UPDATE_DIR}/{MANIFEST} is missing, too large or not a "
                            "file: the update is not signed and nothing is copied")
    try:
        doc = signed.parse(raw, "the update's manifest")
    except Untrusted:
        raise UpdateRefused(UNSIGNED, "the update's manifest is not signed with a release key (an unsigned or "
                            "older kind of bundle): nothing is copied or installed") from None
    try:
        body = ring.verify(doc, KIND, "the update")
    except Untrusted as e:
        raise UpdateRefused(BAD_SIGNATURE if e.reason == signed.BAD_SIGNATURE else UNSIGNED, str(e)) from None
    version, made, wheels = body.get("version"), body.get("made"), body.get("wheels")
    if not isinstance(version, str) or not isinstance(made, str) or not isinstance(wheels, dict):
        raise UpdateRefused(MALFORMED, "the update's manifest lacks its version, date or wheels")
    try:
        version_key(version)
        parsed = {name: Wheel(str(w["sha256"]), int(w["size"])) for name, w in wheels.items()}
    except (ValueError, KeyError, TypeError):
        raise UpdateRefused(MALFORMED, "the update's manifest does not list its wheels as a release does") from None
    if not all(_WHEEL.match(n) and len(w.sha256) == 64 and w.size >= 0 for n, w in parsed.items()) \
            or f"bedside-{version}-py3-none-any.whl" not in parsed:
        raise UpdateRefused(MALFORMED, "the update's manifest does not name the bedside wheel of its version")
    if sum(w.size for w in parsed.values()) > MAX_BUNDLE_BYTES:
        raise UpdateRefused(TOO_LARGE, f"the update is over {MAX_BUNDLE_BYTES // 2**20} MiB")
    recovery_from = _recovery(recovery, ring, trusted, now)
    with_recovery = {**body, "recovery_from": recovery_from} if recovery_from is not None else body
    try:
        counter = freshness.check("the update", with_recovery, trusted, now)
    except Untrusted as e:
        raise UpdateRefused(DOWNGRADE if e.reason == freshness.OLDER else
                            IMPLAUSIBLE if e.reason == freshness.IMPLAUSIBLE else MALFORMED, str(e)) from None
    if current is not None and recovery_from is None:
        try:
            older = version_key(version) <= version_key(current)
        except ValueError:
            older = False            # a current version that is no release number: the counter decides
        if older:
            raise UpdateRefused(DOWNGRADE, f"the update is version {version}, and this unit runs {current}: only a "
                                "newer version is installed (or one the ward authority's recovery lets in)")
    return Release(version, counter, parsed, made, doc.key, recovery_from)


def _recovery(raw: bytes | None, ring: Keyring, trusted: int, now: datetime) -> int | None:
    """The counter a ward-signed release recovery lets a release in from, when it is for this unit's counter."""
    if not raw:
        return None
    try:
        body = ring.verify(signed.parse(raw, "the release recovery"), RECOVERY_KIND, "the release recovery")
    except Untrusted:
        return None          # an unsigned recovery is no recovery; the release is judged without it
    stuck = body.get("recovery_from")
    return stuck if isinstance(stuck, int) and not isinstance(stuck, bool) and stuck == trusted else None


def recovery_body(stuck_at: int, issued: datetime) -> dict[str, Any]:
    return {"recovery_from": stuck_at, "issued": issued.isoformat(timespec="seconds")}


# --- copying one ---------------------------------------------------------------------------

def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def copy_verified(src_fd: int, dest: Path, release: Release, raw_manifest: bytes, reserve: int = JOURNAL_RESERVE,
                  recovery: bytes | None = None) -> None:
    """Copy the release's files from the folder ``src_fd`` into ``dest`` (made new, mode 0700),
    each streamed through SHA-256 and compared with the signed hash and size; whole or not at
    all (UpdateRefused, nothing left behind)."""
    free = free_bytes(dest.parent)
    if free - release.total < reserve:
        raise UpdateRefused(NO_SPACE, f"the update needs {release.total // 2**20} MiB and the card has "
                            f"{free // 2**20} MiB free: copying it would leave less than the "
                            f"{reserve // 2**20} MiB kept for the journal; nothing is copied")
    tmp = dest.with_name(f".{dest.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o700)
    try:
        for name, wheel in sorted(release.wheels.items()):
            _copy_one(src_fd, name, wheel, tmp)
        write_atomic(tmp / MANIFEST, raw_manifest, mode=0o600)
        if recovery:
            write_atomic(tmp / RECOVERY, recovery, mode=0o600)
        shutil.rmtree(dest, ignore_errors=True)
        os.rename(tmp, dest)
        fsync_dir(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _copy_one(src_fd: int, name: str, wheel: Wheel, into: Path) -> None:
    damaged = UpdateRefused(DAMAGED, f"{name} is missing, not a file, or not the file that was signed; copy the "
                            "bundle onto the stick again")
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=src_fd)
    except OSError:
        raise damaged from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size != wheel.size:
            raise damaged
        out = os.open(into / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            h = new_sha256()
            total = 0
            while chunk := os.read(fd, CHUNK):
                total += len(chunk)
                if total > wheel.size:
                    raise damaged          # it grew while being read
                h.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view):]
            os.fsync(out)
        finally:
            os.close(out)
        if total != wheel.size or not compare_digest(h.hexdigest(), wheel.sha256):
            raise damaged
    finally:
        os.close(fd)


def read_bundle(folder_fd: int) -> tuple[bytes | None, bytes | None]:
    """The bundle's manifest and recovery (either None when absent)."""
    return _read_small(folder_fd, MANIFEST), _read_small(folder_fd, RECOVERY)


def stage(root_fd: int, data: Path, ring: Keyring | None, trusted: int, now: datetime,
          reserve: int = JOURNAL_RESERVE, current: str | None = None) -> str | None:
    """The export's part: copy the stick's bundle (under ``root_fd``) into ``data``/update-incoming
    once its signature holds; the version, or None when the stick has no bundle. UpdateRefused
    when it is not copied (nothing was), OSError when the stick cannot be read."""
    try:
        folder = os.open(f"{FOLDER}/{UPDATE_DIR}", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=root_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        raw, recovery = read_bundle(folder)
        release = check_manifest(raw, ring, trusted, now, recovery, current)
        assert raw is not None
        copy_verified(folder, data / INCOMING, release, raw, reserve, recovery)
        return release.version
    finally:
        os.close(folder)


def claimed_version(raw: bytes | None) -> str | None:
    """The version a refused manifest claims, for the record (it proves nothing)."""
    try:
        body = json_loads(raw or b"").get("body", {})
        v = body.get("version") if isinstance(body, dict) else None
    except (ValueError, AttributeError):
        return None
    return v[:40] if isinstance(v, str) else None


# --- the transition bundle for units still on a ward secret ---------------------------------

_LEGACY_LABEL = b"bedside update manifest v1\x00"


def make_legacy(folder: Path, stick_key: bytes, key_id: str, made: datetime) -> dict[str, Any]:
    """The manifest an older unit (before signed releases) checks with its ward stick key: the
    one way to bring this version onto a unit that has no release key pinned yet (docs/install.md,
    "Moving a ward from its secret to keys"). This version never accepts one."""
    wheels = {p.name: sha256(p) for p in sorted(folder.glob("*.whl"))}
    versions = [name.split("-")[1] for name in wheels if name.startswith("bedside-")]
    if len(versions) != 1:
        raise ValueError(f"{folder} must hold exactly one bedside wheel (found {len(versions)})")
    body: dict[str, Any] = {"bedside_update": 1, "version": versions[0], "wheels": wheels, "ward_key": key_id,
                            "made": made.isoformat(timespec="seconds")}
    body["mac"] = hmac_sha256(stick_key, _LEGACY_LABEL + signed.canonical(body)).hex()
    with contextlib.suppress(FileNotFoundError):
        (folder / MANIFEST).unlink()
    write_atomic(folder / MANIFEST, (json.dumps(body, indent=1, sort_keys=True) + "\n").encode())
    return body
