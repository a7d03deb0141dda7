"""Seals: an HMAC over the chain head, with a key that evolves forward and forgets its past.

At commissioning ``bedside keys init`` creates a random key k₀, writes it once to a file
the hospital keeps, and leaves the unit a copy. The unit seals its chain head every so
often with a ``seal`` record carrying ``epoch`` e and ``mac`` = HMAC-SHA256(kₑ, head), then
replaces kₑ with kₑ₊₁ = SHA-256(label ‖ kₑ) and erases kₑ. Whoever takes the unit later holds
only the current key: they can compute future keys but none of the past ones, so they
cannot re-seal records that were sealed before they took it.

The verifier derives kₑ from k₀ for the e-th seal *of the chain* (epochs must run 0, 1, 2 …
without a gap), never for the epoch a seal claims on its own: journald's CVE-2023-31439 was
a verifier that let a seal choose which period's key it was checked with, so a current
key could re-seal the past.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bedside.durable import json_loads, read_bounded, write_atomic

KEY_FILE = "seal-key.json"
EVERY_S = 3600.0               # a seal at least this often (of running time) while records are written
# How much longer than EVERY_S a commissioned journal's unsealed tail may span in one run before
# verify with the hospital's key calls it a break: the loop's lateness under load, with room.
UNSEALED_MARGIN_S = 900.0
_EVOLVE = b"bedside seal key evolve\x00"
_ID = b"bedside seal key id\x00"


class SealError(Exception):
    """A seal key is missing, unreadable or not the one expected; the message says what to do."""


def key_id(k0: bytes) -> str:
    """A public name for a key (from k₀): which key checks which journal."""
    return hashlib.sha256(_ID + k0).hexdigest()[:16]


def evolve(key: bytes) -> bytes:
    return hashlib.sha256(_EVOLVE + key).digest()


def mac(key: bytes, kid: str, epoch: int, seq: int, head: str) -> str:
    """The seal over the chain head (``seq``, ``head``) made with the key of ``epoch``."""
    msg = f"bedside-seal:{kid}:{epoch}:{seq}:{head}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class HospitalKey:
    """The commissioning key k₀ as the hospital keeps it; derives the key of any epoch."""

    unit: str
    key_id: str
    k0: bytes
    created: str

    def checker(self) -> KeyChain:
        return KeyChain(self.k0)


class KeyChain:
    """k₀, k₁, k₂ … computed forward on demand (epochs are checked in order)."""

    def __init__(self, k0: bytes) -> None:
        self._keys = [k0]

    def at(self, epoch: int) -> bytes:
        while len(self._keys) <= epoch:
            self._keys.append(evolve(self._keys[-1]))
        return self._keys[epoch]


def hospital_file(unit: str, k0: bytes, created: str) -> bytes:
    body = {
        "bedside_seal_key": 1,
        "unit": unit,
        "key_id": key_id(k0),
        "epoch": 0,
        "key": k0.hex(),
        "created": created,
        "note": "Keep this file safe and off the ward network. It checks the seals of this unit's journal: "
                "bedside log verify --key THIS_FILE. Anyone with it can forge seals for this unit.",
    }
    return (json.dumps(body, indent=1) + "\n").encode()


def load_hospital_key(path: Path) -> HospitalKey:
    try:
        body = json_loads(read_bounded(Path(path)))
    except FileNotFoundError:
        raise SealError(f"the key file {path} does not exist") from None
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise SealError(f"the key file {path} cannot be read ({e})") from None
    try:
        if body.get("bedside_seal_key") != 1 or int(body.get("epoch", -1)) != 0:
            raise ValueError
        k0 = bytes.fromhex(body["key"])
        if len(k0) != 32 or key_id(k0) != body["key_id"]:
            raise ValueError
        return HospitalKey(str(body.get("unit", "")), body["key_id"], k0, str(body.get("created", "")))
    except (KeyError, ValueError, TypeError, AttributeError):
        raise SealError(f"{path} is not a bedside seal key file (made by bedside keys init), or it is damaged") \
            from None


@dataclass
class UnitKey:
    """The unit's current key: the epoch its next seal will have, and the key for it."""

    unit: str
    key_id: str
    epoch: int
    key: bytes

    def to_bytes(self) -> bytes:
        check = key_check(self.key_id, self.epoch, self.key)
        return (json.dumps({"unit": self.unit, "key_id": self.key_id, "epoch": self.epoch,
                            "key": self.key.hex(), "check": check}) + "\n").encode()


def key_check(kid: str, epoch: int, key: bytes) -> str:
    """A check value for the unit's key file: a flipped bit in its key or epoch is caught before it seals."""
    return hashlib.sha256(f"bedside seal key check:{kid}:{epoch}:".encode() + key).hexdigest()[:16]


def load_unit_key(data_dir: Path) -> UnitKey | None:
    path = Path(data_dir) / KEY_FILE
    try:
        body: dict[str, Any] = json_loads(read_bounded(path))
        key = UnitKey(str(body["unit"]), str(body["key_id"]), int(body["epoch"]), bytes.fromhex(body["key"]))
        if len(key.key) != 32 or ("check" in body and body["check"] != key_check(key.key_id, key.epoch, key.key)):
            raise ValueError("the key does not match its check value: the file is damaged")
        return key
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise SealError(f"the unit's seal key {path} cannot be read ({e})") from None


def create(data_dir: Path, out: Path, unit: str) -> UnitKey:
    """Commissioning: a new k₀ written once to ``out`` for the hospital, and the unit's copy.

    Refuses when the unit already has a key or ``out`` exists (nothing is overwritten)."""
    data_dir = Path(data_dir)
    if (data_dir / KEY_FILE).exists():
        raise SealError(f"this unit already has a seal key ({data_dir / KEY_FILE}); a unit is commissioned once, "
                        "and its key file from then is the one that checks its journal")
    if out.exists():
        raise SealError(f"{out} already exists; give a new file name (nothing was changed)")
    k0 = secrets.token_bytes(32)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, hospital_file(unit, k0, created), mode=0o600)
    except OSError as e:
        raise SealError(f"cannot write the key file {out}: {e.strerror or e}") from None
    key = UnitKey(unit, key_id(k0), 0, k0)
    data_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(data_dir / KEY_FILE, key.to_bytes(), mode=0o600)
    return key


class Sealer:
    """The unit's side: makes seal records and moves its key forward after each one."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / KEY_FILE
        self.key = load_unit_key(Path(data_dir))
        self.unsaved = False           # the evolved key is only in memory (its file could not be written)

    @property
    def available(self) -> bool:
        return self.key is not None

    def catch_up(self, last_seal: dict[str, Any] | None) -> None:
        """After a crash between a seal's commit and the key's evolution, move the key on."""
        if self.key is None or last_seal is None or last_seal.get("key_id") != self.key.key_id:
            return
        while self.key.epoch <= int(last_seal.get("epoch", -1)):
            self._evolve()

    def seal_data(self, seq: int, head: str) -> dict[str, Any]:
        """The fields of the ``seal`` record that seals the head (seq, head)."""
        assert self.key is not None
        k = self.key
        return {"epoch": k.epoch, "key_id": k.key_id, "mac": mac(k.key, k.key_id, k.epoch, seq, head)}

    def sealed(self) -> None:
        """The seal record is committed: forget this epoch's key."""
        self._evolve()

    def _evolve(self) -> None:
        assert self.key is not None
        self.key = UnitKey(self.key.unit, self.key.key_id, self.key.epoch + 1, evolve(self.key.key))
        self.persist()

    def persist(self) -> bool:
        """Write the current key whole, then overwrite the old file's blocks so the old key is gone."""
        assert self.key is not None
        old = None
        with contextlib.suppress(OSError):
            old = os.open(self.path, os.O_WRONLY)
        try:
            write_atomic(self.path, self.key.to_bytes(), mode=0o600)
        except OSError:
            self.unsaved = True
            if old is not None:
                os.close(old)
            return False
        self.unsaved = False
        if old is not None:
            # The old inode is unlinked now; zero it so its key is not left in free blocks.
            # (A flash card's wear levelling may still keep a copy: see docs/journal.md.)
            try:
                size = os.fstat(old).st_size
                os.pwrite(old, b"\0" * size, 0)
                os.fsync(old)
            except OSError:
                pass
            finally:
                os.close(old)
        return True
