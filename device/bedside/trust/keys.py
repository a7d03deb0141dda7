"""Keys on the laptop: making them, keeping the private half under a passphrase, signing.

Three roles hold private keys (docs/security.md, "Roles and keys"), each on its own machine:

* the **release key** where releases are built: signs software (``bedside release sign``);
* the **ward authority key** on the ward's laptop: signs ward settings and stick
  authorisations, and certifies nurses' laptop keys (``bedside keys certify``);
* a **laptop key** on each nurse's laptop: answers a unit's challenge on the serial link,
  with the ward authority's certificate naming the nurse and when it expires.

A private key file holds the key's 32-byte seed sealed with libsodium's secretbox
(XSalsa20-Poly1305) under a key stretched from a passphrase with Argon2id; nothing here is a
primitive of our own. Units never hold a private key: they pin the public halves
(``keyring.py``) and verify (``signed.py``). This module imports PyNaCl and is for laptops and
the short-lived commands, never the unit's daemon.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from bedside.core.errors import BedsideError
from bedside.durable import KEY_FILE, json_loads, read_bounded, write_atomic
from bedside.trust import signed
from bedside.trust.keyring import public_key_file

FORMAT = 1
ROLES = ("release", "ward", "laptop")
# Argon2id's cost for a private key file: libsodium's "interactive" limits (64 MiB, a fraction
# of a second on a laptop). Tests lower them.
OPS = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEM = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
MIN_PASSPHRASE = 10
MAX_CERT_DAYS = 400            # a laptop certificate lives at most this long
# The most a private key file may ask its key stretch to spend: libsodium's "sensitive" limits
# (4 passes, 1 GiB; a few seconds on a laptop). A file asking for more is damaged or crafted to
# hold the laptop for hours or exhaust its memory, and is refused before any work is done.
MAX_OPS = nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE
MAX_MEM = nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE


class KeyFileError(BedsideError):
    """A key file cannot be made, read or opened; the message says what to do."""


@dataclass(frozen=True)
class PrivateKey:
    role: str
    name: str
    key: nacl.signing.SigningKey

    @property
    def public(self) -> bytes:
        return bytes(self.key.verify_key)

    @property
    def id(self) -> str:
        return signed.key_id(self.public)

    def sign(self, kind: str, body: dict[str, Any]) -> signed.Document:
        sig = self.key.sign(signed.message(kind, body)).signature
        return signed.Document(kind, self.id, body, bytes(sig))


def _box_key(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
    return bytes(nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase.encode("utf-8"), salt,
                                          opslimit=ops, memlimit=mem))


def _whole(n: object, low: int, high: int) -> bool:
    return type(n) is int and low <= n <= high


def check_passphrase(passphrase: str) -> str:
    p = passphrase.strip("\r\n")
    if len(p) < MIN_PASSPHRASE:
        raise KeyFileError(f"a key's passphrase must be at least {MIN_PASSPHRASE} characters")
    return p


def generate(role: str, name: str) -> PrivateKey:
    if role not in ROLES:
        raise KeyFileError(f"a key's role is one of {', '.join(ROLES)}, not {role!r}")
    return PrivateKey(role, name.strip()[:80], nacl.signing.SigningKey.generate())


def save(key: PrivateKey, folder: Path, stem: str, passphrase: str) -> tuple[Path, Path]:
    """``stem.key`` (sealed under ``passphrase``, mode 600) and ``stem.pub`` in ``folder``."""
    p = check_passphrase(passphrase)
    folder.mkdir(parents=True, exist_ok=True)
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    sealed = nacl.secret.SecretBox(_box_key(p, salt, OPS, MEM)).encrypt(bytes(key.key))
    body = {"bedside_private_key": FORMAT, "role": key.role, "name": key.name, "public": key.public.hex(),
            "id": key.id, "kdf": {"name": "argon2id", "ops": OPS, "mem": MEM, "salt": salt.hex()},
            "sealed": bytes(sealed).hex()}
    priv, pub = folder / f"{stem}.key", folder / f"{stem}.pub"
    if priv.exists():
        raise KeyFileError(f"{priv} exists already: a key is never written over (move it away first)")
    write_atomic(priv, (json.dumps(body, indent=1) + "\n").encode(), mode=0o600)
    write_atomic(pub, (json.dumps(public_key_file(key.role, key.name, key.public), indent=1) + "\n").encode())
    return priv, pub


def load(path: Path, passphrase: str, role: str | None = None) -> PrivateKey:
    """The private key in ``path``, opened with ``passphrase``."""
    try:
        body = json_loads(read_bounded(path, KEY_FILE))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise KeyFileError(f"{path} cannot be read as a private key ({e})") from None
    if not isinstance(body, dict) or body.get("bedside_private_key") != FORMAT:
        raise KeyFileError(f"{path} is not a bedside private key file")
    if role is not None and body.get("role") != role:
        raise KeyFileError(f"{path} is a {str(body.get('role'))[:20]} key; this needs the {role} key")
    try:
        kdf = body["kdf"]
        salt, ops, mem, sealed = bytes.fromhex(kdf["salt"]), kdf["ops"], kdf["mem"], bytes.fromhex(body["sealed"])
    except (KeyError, ValueError, TypeError) as e:
        raise KeyFileError(f"{path} is damaged ({e})") from None
    argon = nacl.pwhash.argon2id
    if kdf.get("name") != "argon2id" or len(salt) != argon.SALTBYTES or not _whole(ops, argon.OPSLIMIT_MIN, MAX_OPS) \
            or not _whole(mem, argon.MEMLIMIT_MIN, MAX_MEM):
        raise KeyFileError(f"{path} is damaged (its key stretch is not Argon2id with a {argon.SALTBYTES}-byte salt "
                           f"and at most {MAX_OPS} passes over {MAX_MEM // 2**20} MiB)")
    try:
        seed = nacl.secret.SecretBox(_box_key(passphrase.strip("\r\n"), salt, ops, mem)).decrypt(sealed)
    except nacl.exceptions.CryptoError:
        raise KeyFileError(f"the passphrase does not open {path}") from None
    if len(seed) != 32:                    # an Ed25519 seed
        raise KeyFileError(f"{path} is damaged (what it seals is not a key)")
    key = PrivateKey(str(body.get("role")), str(body.get("name", "")), nacl.signing.SigningKey(seed))
    if key.public.hex() != body.get("public"):
        raise KeyFileError(f"{path} is damaged (its private and public halves do not match)")
    return key


def certify(ward: PrivateKey, laptop_public: bytes, nurse: str, laptop: str, issued: datetime,
            days: int) -> signed.Document:
    """The ward authority's certificate for a nurse's laptop key: who, which laptop, until when."""
    if ward.role != "ward":
        raise KeyFileError("only the ward authority key certifies laptop keys")
    if not 1 <= days <= MAX_CERT_DAYS:
        raise KeyFileError(f"a laptop certificate lasts 1 to {MAX_CERT_DAYS} days")
    body = {"cert": os.urandom(8).hex(), "nurse": nurse.strip()[:80], "laptop": laptop.strip()[:80],
            "public": laptop_public.hex(), "key": signed.key_id(laptop_public),
            "issued": issued.isoformat(timespec="seconds"),
            "expires": (issued + timedelta(days=days)).isoformat(timespec="seconds")}
    return ward.sign("laptop", body)


def answer(laptop: PrivateKey, cert: signed.Document, unit: str, nonce: str) -> signed.Document:
    """The laptop's answer to a unit's challenge: the nonce and the unit's id, signed."""
    return laptop.sign("unlock", {"unit": unit, "nonce": nonce, "cert": str(cert.body.get("cert", ""))})
