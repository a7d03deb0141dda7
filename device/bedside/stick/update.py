"""A software update on a ward stick: a folder of wheels and a manifest signed like the
stick's authorisation.

Layout (docs/install.md, "Software updates by stick")::

    Bedside/
      authorisation.json
      update/
        manifest.json               written by ``bedside stick update-bundle``
        bedside-0.2.0-py3-none-any.whl
        gpiozero-…whl …             every wheel the version needs: the unit is offline

**The manifest** names the version, every wheel with its SHA-256 and size, and is signed
with an HMAC-SHA256 under the ward's stick key (the key that signs ``authorisation.json``,
derived from the ward secret): only someone holding the ward secret can make a bundle a
unit accepts, and a unit of another ward refuses it. A unit refuses a bundle whose
signature or wheels do not match (``bad_signature``, ``damaged``), one for another ward
(``other_ward``), and one that is not newer than what runs (``downgrade``): an old version
with a known fault cannot be brought back by a stick.

**On the unit** the stick export (which runs without privileges) only copies the bundle
from the stick into the data directory (``stage``); ``bedside-update.service`` (root, started
by ``bedside-update.path``) then checks it from scratch, asks for the press and installs it
(``stick/software.py``). Nothing is trusted for having been copied.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bedside.core.digest import compare_digest, hmac_sha256
from bedside.core.digest import sha256 as new_sha256
from bedside.stick.auth import key_id, signature_problem
from bedside.stick.files import FOLDER

UPDATE_DIR = "update"
MANIFEST = "manifest.json"
FORMAT = 1
MAX_MANIFEST_BYTES = 64 * 1024
MAX_BUNDLE_BYTES = 300 * 1024 * 1024
# Where the export copies a stick's bundle for the root updater (bedside-update.path watches it).
INCOMING = "update-incoming"
_MAC_LABEL = b"bedside update manifest v1\x00"
_VERSION = re.compile(r"^\d+(\.\d+){0,3}$")
_WHEEL = re.compile(r"^[A-Za-z0-9_.+-]+\.whl$")

# Why a bundle was refused (the journal's ``software_update_refused`` ``reason``).
MALFORMED, OTHER_WARD, BAD_SIGNATURE, DAMAGED, DOWNGRADE = (
    "malformed", "other_ward", "bad_signature", "damaged", "downgrade")


class UpdateRefused(Exception):
    """The bundle will not be installed: ``reason`` for the journal, the message for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Manifest:
    version: str
    wheels: Mapping[str, str]          # file name -> SHA-256 (hex)
    made: str


def version_key(version: str) -> tuple[int, ...]:
    """A release number as numbers (0.10.0 after 0.9.0); ValueError for anything else."""
    if not _VERSION.match(version):
        raise ValueError(f"not a release number: {version!r}")
    parts = [int(p) for p in version.split(".")]
    return tuple(parts + [0] * (4 - len(parts)))


def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _mac(stick_key: bytes, body: Mapping[str, Any]) -> str:
    return hmac_sha256(stick_key, _MAC_LABEL + _canonical(body)).hex()


def sha256(path: Path) -> str:
    h = new_sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def make(folder: Path, stick_key: bytes, made: datetime) -> dict[str, Any]:
    """Sign the wheels in ``folder`` (one of them bedside's) and write its manifest."""
    wheels = {p.name: sha256(p) for p in sorted(folder.glob("*.whl"))}
    versions = [name.split("-")[1] for name in wheels if name.startswith("bedside-")]
    if len(versions) != 1:
        raise ValueError(f"{folder} must hold exactly one bedside wheel (found {len(versions)})")
    version_key(versions[0])
    body: dict[str, Any] = {"bedside_update": FORMAT, "version": versions[0], "wheels": wheels,
                            "ward_key": key_id(stick_key), "made": made.isoformat(timespec="seconds")}
    body["mac"] = _mac(stick_key, body)
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, folder / MANIFEST)
    return body


def check(folder: Path, stick_key: bytes, current: str) -> Manifest:
    """The bundle in ``folder`` if this unit may install it over ``current``, else UpdateRefused."""
    try:
        raw = (folder / MANIFEST).read_bytes()[:MAX_MANIFEST_BYTES + 1]
        body = json.loads(raw.decode("utf-8")) if len(raw) <= MAX_MANIFEST_BYTES else None
    except (OSError, UnicodeDecodeError, ValueError):
        body = None
    if not isinstance(body, dict) or body.get("bedside_update") != FORMAT or not all(
            isinstance(body.get(k), str) for k in ("version", "ward_key", "made", "mac")) \
            or not isinstance(body.get("wheels"), dict):
        raise UpdateRefused(MALFORMED, f"the stick's {FOLDER}/{UPDATE_DIR}/{MANIFEST} is missing or damaged; "
                            "make the bundle again (bedside stick update-bundle)")
    problem = signature_problem(body, stick_key, _mac)
    if problem == OTHER_WARD:
        raise UpdateRefused(OTHER_WARD, "the update was signed for another ward (or before the ward secret was "
                            "changed); make it again with this ward's secret")
    if problem is not None:
        raise UpdateRefused(BAD_SIGNATURE, "the update's manifest was changed after it was signed; "
                            "it is not installed")
    wheels: dict[str, str] = body["wheels"]
    version = body["version"]
    if not all(isinstance(k, str) and _WHEEL.match(k) and isinstance(v, str) for k, v in wheels.items()) \
            or f"bedside-{version}-py3-none-any.whl" not in wheels:
        raise UpdateRefused(MALFORMED, "the update's manifest does not name the bedside wheel of its version")
    try:
        newer = version_key(version) > version_key(current)
    except ValueError:
        raise UpdateRefused(MALFORMED, f"the update's version {version!r} is not a release number") from None
    if not newer:
        raise UpdateRefused(DOWNGRADE, f"the stick holds version {version}, and this unit runs {current}: "
                            "only a newer version is installed")
    for name, digest in sorted(wheels.items()):
        path = folder / name
        try:
            ok = path.is_file() and not path.is_symlink() and compare_digest(sha256(path), digest)
        except OSError:
            ok = False
        if not ok:
            raise UpdateRefused(DAMAGED, f"{name} on the stick is missing or not the file that was signed; "
                                "copy the bundle onto the stick again")
    return Manifest(version, dict(wheels), body["made"])


def stage(root_fd: int, data: Path) -> str | None:
    """Copy the stick's bundle (under ``root_fd``) into ``data``/update-incoming, whole or not
    at all; the version its manifest claims, or None when the stick has no bundle. Raises
    OSError when it cannot be copied."""
    try:
        folder = os.open(f"{FOLDER}/{UPDATE_DIR}", os.O_RDONLY | os.O_DIRECTORY, dir_fd=root_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    tmp = data / f".{INCOMING}.tmp"
    try:
        raw = _read_at(folder, MANIFEST, MAX_MANIFEST_BYTES)
        try:
            body = json.loads(raw.decode("utf-8"))
            names = [n for n in body["wheels"] if isinstance(n, str) and _WHEEL.match(n)]
            version = str(body["version"])[:40]
        except (ValueError, KeyError, TypeError, AttributeError):
            names, version = [], "?"        # copied anyway: the updater refuses it and records why
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(mode=0o750)
        total = 0
        for name in [MANIFEST, *names]:
            data_ = _read_at(folder, name, MAX_BUNDLE_BYTES - total)
            total += len(data_)
            fd = os.open(tmp / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                os.write(fd, data_)
                os.fsync(fd)
            finally:
                os.close(fd)
        shutil.rmtree(data / INCOMING, ignore_errors=True)
        os.rename(tmp, data / INCOMING)
        return version
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        os.close(folder)


def _read_at(dir_fd: int, name: str, limit: int) -> bytes:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        if os.fstat(fd).st_size > limit:
            raise OSError(27, f"{name} is larger than an update may be")    # EFBIG
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
