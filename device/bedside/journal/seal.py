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

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bedside.core.digest import hmac_sha256, sha256
from bedside.core.errors import BedsideError
from bedside.durable import KEY_FILE as KEY_FILE_BYTES
from bedside.durable import json_loads, read_bounded, write_atomic

KEY_FILE = "seal-key.json"
# A seal at least this often (of running time) while records are written. Three hours: each
# seal costs the card two syncs (the seal record, the evolved key), which must stay within 1.2
# syncs per journal record on a quiet day; an unsealed tail of at most three hours is what
# someone who takes the card could still rewrite undetected.
EVERY_S = 3 * 3600.0
# How much longer than EVERY_S a commissioned journal's unsealed tail may span in one run before
# verify with the hospital's key calls it a break: the loop's lateness under load, with room.
UNSEALED_MARGIN_S = 900.0
_EVOLVE = b"bedside seal key evolve\x00"
_ID = b"bedside seal key id\x00"


class SealError(BedsideError):
    """A seal key is missing, unreadable or not the one expected; the message says what to do."""


def key_id(k0: bytes) -> str:
    """A public name for a key (from k₀): which key checks which journal."""
    return sha256(_ID + k0).hexdigest()[:16]


def evolve(key: bytes) -> bytes:
    return sha256(_EVOLVE + key).digest()


def mac(key: bytes, kid: str, epoch: int, seq: int, head: str) -> str:
    """The seal over the chain head (``seq``, ``head``) made with the key of ``epoch``."""
    msg = f"bedside-seal:{kid}:{epoch}:{seq}:{head}".encode()
    return hmac_sha256(key, msg).hex()


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
    """k₀, k₁, k₂ … computed forward on demand (epochs are checked in order). Only k₀ and the
    latest key are kept: memory does not grow with the seals. An epoch further than
    ``MAX_EPOCH`` (a seal every three hours for over three centuries) is refused with a
    ValueError: a crafted seal record would otherwise make the verifier hash for ever."""

    def __init__(self, k0: bytes) -> None:
        self._k0 = k0
        self._epoch, self._key = 0, k0

    def at(self, epoch: int) -> bytes:
        if not 0 <= epoch <= MAX_EPOCH:
            raise ValueError(f"epoch {epoch} is past any unit's seals")
        if epoch < self._epoch:
            self._epoch, self._key = 0, self._k0
        while self._epoch < epoch:
            self._key = evolve(self._key)
            self._epoch += 1
        return self._key


MAX_EPOCH = 1_000_000


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
        body = json_loads(read_bounded(Path(path), KEY_FILE_BYTES))
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
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError):   # (Infinity: no whole number)
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
    return sha256(f"bedside seal key check:{kid}:{epoch}:".encode() + key).hexdigest()[:16]


# The unit's key file has two slots of this many bytes: each new key is written into the slot
# that does not hold the previous one, and the previous one is then blanked (see Sealer.persist).
# A file from ``create`` (or an earlier version) is one JSON object: slot 0 with no check.
SLOT = 512
# The most epochs ``Sealer.catch_up`` moves the key on at once: ~34 years of a seal every three hours.
MAX_CATCH_UP = 100_000
BLANK = b" " * (SLOT - 1) + b"\n"


def _key_slot(key: UnitKey) -> bytes:
    return key.to_bytes().rstrip(b"\n").ljust(SLOT - 1) + b"\n"


def _whole(n: object) -> bool:
    return type(n) is int and 0 <= n < 2**63


def _key_slots(raw: bytes) -> list[tuple[int, UnitKey]]:
    """(slot, key) for every whole slot; a blank or torn slot is left out."""
    out = []
    for i in range(0, max(len(raw), 1), SLOT):
        chunk = raw[i:i + SLOT] if len(raw) > SLOT else raw
        if not chunk.strip():
            continue
        try:
            body: dict[str, Any] = json_loads(chunk)
            key = UnitKey(str(body["unit"]), str(body["key_id"]), int(body["epoch"]), bytes.fromhex(body["key"]))
            # A damaged key is never used (it would seal wrongly): the other slot, or a fault. Its
            # check is no secret, so the epoch must also be a whole number a record can hold.
            if len(key.key) != 32 or not _whole(body["epoch"]) or \
                    ("check" in body and body["check"] != key_check(key.key_id, key.epoch, key.key)):
                continue
            out.append((i // SLOT, key))
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError):
            continue          # torn by a power cut mid-write: the other slot holds a whole key
    return out


def load_unit_key(data_dir: Path) -> UnitKey | None:
    path = Path(data_dir) / KEY_FILE
    try:
        slots = _key_slots(read_bounded(path, KEY_FILE_BYTES))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise SealError(f"the unit's seal key {path} cannot be read ({e})") from None
    if not slots:
        raise SealError(f"the unit's seal key {path} cannot be read (no whole key in it: the key does not match "
                        "its check value, the file is damaged)")
    return max(slots, key=lambda s: s[1].epoch)[1]


def create(data_dir: Path, out: Path, unit: str) -> UnitKey:
    """Commissioning: a new k₀ written once to ``out`` for the hospital, and the unit's copy.

    Refuses when the unit already has a key or ``out`` exists (nothing is overwritten)."""
    data_dir = Path(data_dir)
    if (data_dir / KEY_FILE).exists():
        raise SealError(f"this unit already has a seal key ({data_dir / KEY_FILE}); a unit is commissioned once, "
                        "and its key file from then is the one that checks its journal")
    if out.exists():
        raise SealError(f"{out} already exists; give a new file name (nothing was changed)")
    k0 = os.urandom(32)
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

    def catch_up(self, last_seal: dict[str, Any] | None) -> str | None:
        """After a crash between a seal's commit and the key's evolution (or seals whose evolved
        key could not be written), move the key on, in memory, and write it once. Why not, when
        the last seal's epoch is not one the key can reach (None when moved or nothing to do)."""
        if self.key is None or last_seal is None or last_seal.get("key_id") != self.key.key_id:
            return None
        epoch = last_seal.get("epoch", -1)
        if not _whole(epoch) and epoch != -1:
            return f"the journal's last seal (seq {last_seal.get('seq')}) names no whole epoch; the key was not moved"
        assert isinstance(epoch, int)
        steps = epoch - self.key.epoch + 1
        if steps <= 0:
            return None
        if steps > MAX_CATCH_UP:
            # A crafted seal record (its chain is no secret) would otherwise hold the start for
            # as many hashes as it names: a year of seals is under 3,000.
            return (f"the journal's last seal (seq {last_seal.get('seq')}) is {steps} epochs past the seal key's, "
                    f"more than {MAX_CATCH_UP:,} (decades of seals): the key was not moved; the records are sealed "
                    "with it as it is, and verify with the hospital's key will say where the epochs break")
        key = self.key.key
        for _ in range(steps):
            key = evolve(key)
        self.key = UnitKey(self.key.unit, self.key.key_id, epoch + 1, key)
        self.persist()
        return None

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
        """Write the current key into the slot that does not hold the previous one and sync it
        (one fdatasync: the file keeps its size and blocks), then blank the previous key's slot
        in place. The blanking is not synced of its own: the kernel writes it back within
        about 30 s, or the next seal's sync takes it. At every moment one whole key is on the
        card: a power cut mid-write leaves the other slot, and ``catch_up`` moves it on."""
        assert self.key is not None
        try:
            fd = os.open(self.path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return self._replace()
        try:
            raw = os.pread(fd, 4 * SLOT, 0)
            held = [i for i, k in _key_slots(raw) if k.epoch < self.key.epoch]
            old = held[0] if len(held) == 1 else None
            target = 1 - old if old is not None else 0
            os.pwrite(fd, _key_slot(self.key), target * SLOT)
            if len(raw) < 2 * SLOT and target == 0:
                os.pwrite(fd, BLANK, SLOT)
            os.fdatasync(fd)
            # Every other slot: blank (the previous key, or what a torn write left).
            os.pwrite(fd, BLANK, (1 - target) * SLOT)
            if len(raw) > 2 * SLOT:
                os.ftruncate(fd, 2 * SLOT)
        except OSError:
            self.unsaved = True
            return False
        finally:
            os.close(fd)
        self.unsaved = False
        return True

    def _replace(self) -> bool:
        """No file to write in place (it was removed or cannot be opened): a new one, whole."""
        assert self.key is not None
        try:
            write_atomic(self.path, _key_slot(self.key) + BLANK, mode=0o600)
        except OSError:
            self.unsaved = True
            return False
        self.unsaved = False
        return True
