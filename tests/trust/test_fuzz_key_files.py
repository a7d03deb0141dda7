"""Structure-aware fuzzers for every reader of a key file: the unit's pinned keyring
(``/etc/bedside/keys/keyring.json``), the unit's seal key slots (``DATA/seal-key.json``), the
hospital's seal key file, the ward secret (``DATA/ward-secret.json``), the ward settings state
with its revocation lists (``DATA/ward-settings.json``), and on the laptop a sealed private key
file, a public key file and a laptop certificate.

Each example starts from a valid file the project's own tools write, changes it at the
structural level (tests/rigs/hostile_json.py: a field dropped, retyped, added or changed;
nesting past the parser's limit, a key twice, bytes that are not UTF-8, ``NaN``, a number of
thousands of digits, a cut, padding), often makes its check value or signature hold again
(anyone can compute a seal key slot's check; someone holding a key can sign), and reads it
through the real reader. What must hold, for every example:

* **a named refusal or an acceptance, nothing else**: the reader's own error class
  (``KeyringError``, ``SealError``, ``SecretError``, ``KeyFileError``, ``LaptopKeyError``) with a
  sentence for people, or a value of the right shape; never another exception;
* **a bounded read**: every read of the file asks for at most its limit plus one byte, whatever
  the file's size (counted);
* **bounded work**: what an accepted file makes the reader (or the unit later) spend is within
  the stated caps: a private key's Argon2id cost at most libsodium's "sensitive" limits
  (counted at the key stretch), a stored ward secret's scrypt cost at most what a laptop answers
  (``secret.kdf_problem``), a seal key's epoch a whole number; the parsing itself is the JSON
  parser's and hex decoding, linear in the bytes read;
* **bounded memory**: the peak while reading within the read's buffer (the limit) plus 64 times
  the bytes read, plus 256 KiB (tracemalloc).

The unit's own files are also put in a unit's data folder: the unit still starts and prompts
(test_the_unit_starts_and_prompts_whatever_its_key_files_hold).

``make test`` runs a fixed set of examples; ``make fuzz`` draws fresh ones, twenty times as many.
"""

from __future__ import annotations

import json
import os
import random
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nacl.pwhash
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bedside import durable, secret
from bedside.journal import seal
from bedside.laptop import keyauth
from bedside.trust import keyring, keys, signed, ward_state
from tests.conftest import PROFILE, budget
from tests.rigs import hostile_json
from tests.rigs.trust_rig import resigned

LONG = pytest.mark.timeout(0 if PROFILE == "long" else 300)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PASS = "correct horse battery"
MEMORY_FACTOR = 64
MEMORY_SLACK = 256 * 1024
KEY_LIMIT = durable.KEY_FILE


@dataclass
class Kind:
    """One key file: how the project's tools make it, make its check hold again, and read it."""

    name: str
    file: str                                    # its name in the example's folder
    limit: int                                   # the most its reader reads
    make: Callable[[], bytes]
    fix: Callable[[dict[str, Any]], dict[str, Any]]     # its check value or signature made to hold again
    read: Callable[[Path], object]               # the folder holding it → its meaning, or a refusal
    refusal: type[Exception] | None              # None: the reader never refuses (an empty meaning)
    accepted: Callable[[object], None]           # what an accepted value must be


class Keys:
    """The ward's keys and a laptop's, made once (private key files under Argon2id's lowest cost)."""

    def __init__(self, folder: Path) -> None:
        self.authority = keys.generate("ward", "Ward 7 authority")
        self.release = keys.generate("release", "Bedside releases")
        self.laptop = keys.generate("laptop", "Laptop 3")
        self.folder = folder
        old = keys.OPS, keys.MEM
        keys.OPS, keys.MEM = nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN
        try:
            self.private, self.public = keys.save(self.laptop, folder / "made", "laptop", PASS)
        finally:
            keys.OPS, keys.MEM = old
        self.cert = keys.certify(self.authority, self.laptop.public, "Nurse A", "Laptop 3", NOW, 30)


def _keyring_bytes(k: Keys) -> bytes:
    d = k.folder / "ring"
    keyring.pin(d, "Ward 7", [keyring.PinnedKey("ward", k.authority.id, k.authority.public, k.authority.name),
                              keyring.PinnedKey("release", k.release.id, k.release.public, k.release.name)])
    return (d / keyring.FILE_NAME).read_bytes()


def _read_keyring(folder: Path) -> object:
    os.chmod(folder, 0o755)
    os.chmod(folder / keyring.FILE_NAME, 0o644)
    return keyring.load(folder, owner=os.getuid())


def _unit_key_bytes() -> bytes:
    key = seal.UnitKey("unit-7", seal.key_id(b"k" * 32), 4, seal.evolve(b"k" * 32))
    return seal._key_slot(key) + seal.BLANK


def _fix_slot(doc: dict[str, Any]) -> dict[str, Any]:
    try:
        return {**doc, "check": seal.key_check(str(doc["key_id"]), int(doc["epoch"]), bytes.fromhex(doc["key"]))}
    except (KeyError, ValueError, TypeError, OverflowError):
        return doc


def _hospital_bytes() -> bytes:
    return seal.hospital_file("unit-7", b"h" * 32, "2026-11-30T09:00:00+00:00")


def _fix_hospital(doc: dict[str, Any]) -> dict[str, Any]:
    try:
        return {**doc, "key_id": seal.key_id(bytes.fromhex(doc["key"]))}
    except (KeyError, ValueError, TypeError):
        return doc


def _secret_bytes() -> bytes:
    body = {"version": 1, "kdf": "scrypt", "n": secret.N, "r": secret.R, "p": secret.P, "salt": "5a" * 16,
            "unlock": "ab" * 32, "stick_key": "cd" * 32}
    return (json.dumps(body, indent=1) + "\n").encode()


def _ward_state_bytes() -> bytes:
    body = {"counter": 3, "revoked": {"certs": ["c1"], "laptop_keys": ["ab" * 8], "sticks": []}}
    return json.dumps(body).encode()


def _is(*types: type) -> Callable[[object], None]:
    def check(value: object) -> None:
        assert isinstance(value, types), value
    return check


def _secret_accepted(value: object) -> None:
    assert isinstance(value, secret.WardSecret)
    # What checking a typed secret against it costs is what a laptop would answer, no more.
    assert secret.kdf_problem({"n": value.n, "r": value.r, "p": value.p, "salt": value.salt.hex()}) is None


def _unit_key_accepted(value: object) -> None:
    assert isinstance(value, seal.UnitKey)
    assert type(value.epoch) is int and 0 <= value.epoch < 2**63 and len(value.key) == 32


def _state_read(folder: Path) -> object:
    revoked = ward_state.revoked(folder)
    counter = ward_state.trusted_counter(folder)
    return revoked, counter


def _state_accepted(value: object) -> None:
    assert isinstance(value, tuple)
    revoked, counter = value
    assert set(revoked) == set(ward_state.REVOCABLE)
    assert all(isinstance(v, frozenset) and all(isinstance(x, str) for x in v) for v in revoked.values())
    assert type(counter) is int and counter >= 0


def _kinds(k: Keys) -> dict[str, Kind]:
    cert_file = "laptop.cert"
    return {x.name: x for x in [
        Kind("pinned keyring", keyring.FILE_NAME, signed.MAX_BYTES, lambda: _keyring_bytes(k), lambda d: d,
             _read_keyring, keyring.KeyringError, _is(keyring.Keyring)),
        Kind("unit seal key", seal.KEY_FILE, KEY_LIMIT, _unit_key_bytes, _fix_slot,
             seal.load_unit_key, seal.SealError, _unit_key_accepted),
        Kind("hospital seal key", "hospital.key", KEY_LIMIT, _hospital_bytes, _fix_hospital,
             lambda d: seal.load_hospital_key(d / "hospital.key"), seal.SealError, _is(seal.HospitalKey)),
        Kind("ward secret", secret.FILE_NAME, KEY_LIMIT, _secret_bytes, lambda d: d, secret.load,
             secret.SecretError, _secret_accepted),
        Kind("ward settings state", ward_state.STATE_FILE, KEY_LIMIT, _ward_state_bytes, lambda d: d, _state_read,
             None, _state_accepted),
        Kind("laptop private key", "laptop.key", KEY_LIMIT, k.private.read_bytes, lambda d: d,
             lambda d: keys.load(d / "laptop.key", PASS, "laptop"), keys.KeyFileError, _is(keys.PrivateKey)),
        Kind("public key", "ward.pub", KEY_LIMIT,
             lambda: json.dumps(keyring.public_key_file("ward", "Ward 7 authority", k.authority.public)).encode(),
             lambda d: d, lambda d: keyring.read_public_key(d / "ward.pub", "ward"), keyring.KeyringError,
             _is(keyring.PinnedKey)),
        Kind("laptop certificate", cert_file, signed.MAX_BYTES, lambda: hostile_json.dumps(signed.to_json(k.cert)),
             resigned(k.authority), lambda d: _read_cert(k, d / cert_file), keyauth.LaptopKeyError,
             _is(keyauth.LaptopKey)),
    ]}


def _read_cert(k: Keys, path: Path) -> object:
    return keyauth.load(k.private, path, PASS, NOW)


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Kind]:
    return _kinds(Keys(tmp_path_factory.mktemp("keys")))


@contextmanager
def counted() -> Iterator[dict[str, list[int]]]:
    """Every read of a key file (``os.read`` and ``durable.read_bounded``, by the bytes asked for)
    and every key stretch of a private key file (its Argon2id ops and memory)."""
    seen: dict[str, list[int]] = {"read": [], "ops": [], "mem": []}
    real_read, real_bounded, real_box = os.read, durable.read_bounded, keys._box_key

    def read(fd: int, n: int) -> bytes:
        seen["read"].append(n)
        return real_read(fd, n)

    def bounded(path: Path, limit: int = durable.SMALL_FILE) -> bytes:
        seen["read"].append(limit + 1)
        return real_bounded(path, limit)

    def box(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
        seen["ops"].append(ops)
        seen["mem"].append(mem)
        return real_box(passphrase, salt, ops, mem)

    modules = [durable, secret, seal, keyring, keys, ward_state, keyauth]
    patched = [m for m in modules if getattr(m, "read_bounded", None) is real_bounded]
    os.read = read
    keys._box_key = box
    for m in patched:
        m.read_bounded = bounded      # type: ignore[attr-defined]
    try:
        yield seen
    finally:
        os.read = real_read
        keys._box_key = real_box
        for m in patched:
            m.read_bounded = real_bounded      # type: ignore[attr-defined]


def read_one(kind: Kind, folder: Path, raw: bytes) -> tuple[object, dict[str, list[int]], int]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / kind.file
    path.write_bytes(raw)
    tracemalloc.start()
    try:
        with counted() as seen:
            try:
                result: object = kind.read(folder)
            except Exception as e:                   # judged below: only the kind's own refusal passes
                result = e
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, seen, peak


def check_example(kind: Kind, result: object, seen: dict[str, list[int]], peak: int, raw: bytes) -> None:
    if isinstance(result, Exception):
        assert kind.refusal is not None and isinstance(result, kind.refusal), (kind.name, repr(result))
        assert str(result) and "Traceback" not in str(result)
        assert len(str(result)) < 2_000, (kind.name, len(str(result)))        # a sentence, not the file
    else:
        kind.accepted(result)
    assert seen["read"] and all(n <= kind.limit + 1 for n in seen["read"]), seen["read"]
    assert all(o <= nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE for o in seen["ops"]), seen["ops"]
    assert all(m <= nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE for m in seen["mem"]), seen["mem"]
    assert peak <= kind.limit + 1 + MEMORY_FACTOR * min(len(raw), kind.limit + 1) + MEMORY_SLACK, \
        (kind.name, peak, len(raw))


def mutate(kind: Kind, rng: random.Random, rounds: int, fix: bool, on_bytes: bool) -> tuple[bytes, list[str]]:
    raw = kind.make()
    names: list[str] = []
    slots = kind.name == "unit seal key"
    chunk = raw[:seal.SLOT] if slots else raw
    try:
        doc = json.loads(chunk)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        for _ in range(rounds):
            name = rng.choice(sorted(hostile_json.DOC_MUTATORS))
            names.append(name)
            if isinstance(doc.get("body"), dict) and rng.random() < 0.7:
                doc = {**doc, "body": hostile_json.DOC_MUTATORS[name](rng, doc["body"])}
            else:
                doc = hostile_json.DOC_MUTATORS[name](rng, doc)
        if fix:
            doc = kind.fix(doc)
        out = hostile_json.encoded(doc)
        if slots:
            # The mutated key in one slot, the valid one (or a blank) in the other.
            out = out.replace(b"\n", b" ")[:seal.SLOT - 1].ljust(seal.SLOT - 1) + b"\n"
            raw = out + (raw[:seal.SLOT] if rng.random() < 0.5 else seal.BLANK)
        else:
            raw = out
    if on_bytes:
        name = rng.choice(sorted(hostile_json.RAW_MUTATORS))
        names.append(name)
        raw = hostile_json.RAW_MUTATORS[name](rng, raw)
    return raw, names


def test_every_valid_key_file_is_accepted(kinds: dict[str, Kind], tmp_path: Path) -> None:
    for n, kind in enumerate(kinds.values()):
        raw = kind.make()
        result, seen, peak = read_one(kind, tmp_path / f"k{n}", raw)
        assert not isinstance(result, Exception), (kind.name, result)
        check_example(kind, result, seen, peak, raw)


@LONG
@given(which=st.integers(0, 7), seed=st.integers(0, 2**32 - 1), rounds=st.integers(1, 3), fix=st.booleans(),
       on_bytes=st.booleans())
@budget(120)
def test_fuzz_key_files(kinds: dict[str, Kind], tmp_path_factory: pytest.TempPathFactory, which: int, seed: int,
                        rounds: int, fix: bool, on_bytes: bool) -> None:
    kind = list(kinds.values())[which]
    raw, names = mutate(kind, random.Random(seed), rounds, fix, on_bytes)
    result, seen, peak = read_one(kind, tmp_path_factory.mktemp("f"), raw)
    check_example(kind, result, seen, peak, raw)
    if len(raw) > kind.limit and kind.refusal is not None:
        assert isinstance(result, kind.refusal), (kind.name, names)       # too large: never read on


@pytest.mark.timeout(30)
@pytest.mark.parametrize("what", ["fifo", "folder", "huge"])
@pytest.mark.parametrize("which", list(range(8)))
def test_a_key_file_that_is_not_a_small_regular_file_is_refused_at_once(
        kinds: dict[str, Kind], tmp_path: Path, what: str, which: int) -> None:
    """In the file's place a fifo (never waited on), a folder, or a file of 1 GiB (one bounded read)."""
    kind = list(kinds.values())[which]
    path = tmp_path / kind.file
    if what == "fifo":
        os.mkfifo(path)
    elif what == "folder":
        path.mkdir()
    else:
        with path.open("wb") as f:
            f.truncate(1 << 30)
    tracemalloc.start()
    try:
        with counted() as seen:
            try:
                result: object = kind.read(tmp_path)
            except Exception as e:
                result = e
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    if kind.refusal is None:
        kind.accepted(result)
    else:
        assert isinstance(result, kind.refusal), (kind.name, what, repr(result))
    assert all(n <= kind.limit + 1 for n in seen["read"]), seen["read"]
    assert peak <= MEMORY_FACTOR * (kind.limit + 1) + MEMORY_SLACK
