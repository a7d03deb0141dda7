"""The public keys a unit trusts, pinned at commissioning (docs/security.md, "Roles and keys").

``/etc/bedside/keys/keyring.json``, written by ``bedside keys pin`` (root) and never by the
daemon: the file and its folder belong to root and nobody else may write them, so the
unprivileged daemon, the stick export and anything they run can read the keys and change
none. A keyring that is not so (a file the daemon could have written, or a link) is refused
whole, and the unit says why: it trusts nothing from it rather than something it should not.

Which role may sign which kind of document is a table (``SIGNS``), so a key of one role never
counts as another's: a ward authority key cannot sign a release, a release key cannot
authorise a stick, and a nurse's laptop key (certified by the ward authority, never pinned)
can only answer a unit's challenge.

The unit holds no private key and no secret that would let it, or whoever reads its card,
sign anything another unit would trust.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bedside.core.errors import BedsideError
from bedside.durable import KEY_FILE, fsync_dir, json_loads, read_bounded, write_atomic
from bedside.trust import signed
from bedside.trust.signed import BAD_SIGNATURE, UNKNOWN_KEY, WRONG_KIND, Document, Untrusted

KEYS_DIR = Path("/etc/bedside/keys")
FILE_NAME = "keyring.json"
FORMAT = 1

RELEASE, WARD = "release", "ward"
# Which pinned role signs which kinds of document. Adding a kind is a row here.
SIGNS: dict[str, tuple[str, ...]] = {
    RELEASE: ("release",),
    WARD: ("settings", "stick", "laptop", "release_recovery"),
}

class KeyringError(BedsideError):
    """The pinned keyring cannot be trusted or read; the message says what to do."""

@dataclass(frozen=True, slots=True)
class PinnedKey:
    role: str
    id: str
    public: bytes
    name: str

@dataclass(frozen=True)
class Keyring:
    ward_name: str
    keys: tuple[PinnedKey, ...]

    def of(self, role: str) -> list[PinnedKey]:
        return [k for k in self.keys if k.role == role]

    def signer(self, doc: Document, kind: str, what: str) -> PinnedKey:
        """The pinned key that may sign ``doc`` as ``kind``, or Untrusted saying why none may."""
        if doc.kind != kind:
            raise Untrusted(WRONG_KIND, f"{what} is a signed {doc.kind!r} document, not {kind!r}")
        for k in self.keys:
            if k.id == doc.key and kind in SIGNS.get(k.role, ()):
                return k
        if any(k.id == doc.key for k in self.keys):
            raise Untrusted(WRONG_KIND, f"{what} was signed by this ward's {self._role_of(doc.key)} key, which does "
                            f"not sign {kind!r} documents")
        raise Untrusted(UNKNOWN_KEY, f"{what} was signed by key {doc.key[:16]}…, which this unit does not trust "
                        "(another ward's, or not a ward authority or release key)")

    def _role_of(self, key: str) -> str:
        return next(k.role for k in self.keys if k.id == key)

    def verify(self, doc: Document, kind: str, what: str) -> dict[str, Any]:
        """The body of ``doc`` if a pinned key allowed to sign ``kind`` signed it; Untrusted otherwise."""
        key = self.signer(doc, kind, what)
        if not signed.verify([(key.public, doc.message(), doc.sig)])[0]:
            raise Untrusted(BAD_SIGNATURE, f"{what} does not carry a good signature by {key.name or key.role}: "
                            "it was changed after it was signed, or forged")
        return doc.body

    def fingerprints(self) -> list[str]:
        return [f"{k.role:8} {k.id}  {k.name}" for k in self.keys]

def _key_from(entry: object, roles: tuple[str, ...] = tuple(SIGNS)) -> PinnedKey:
    if not isinstance(entry, dict):
        raise ValueError("a key is not an object")
    role, public, name = entry.get("role"), entry.get("public"), entry.get("name", "")
    if role not in roles or not isinstance(public, str) or not isinstance(name, str):
        raise ValueError("a key has no role or public key")
    pub = bytes.fromhex(public)
    if len(pub) != 32:
        raise ValueError("a public key is not 32 bytes")
    return PinnedKey(role, signed.key_id(pub), pub, name)

def _unsafe(st: os.stat_result, what: str, owner: int) -> str | None:
    if st.st_uid != owner:
        return f"{what} belongs to uid {st.st_uid}, not root"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{what} may be written by others than root (mode {stat.S_IMODE(st.st_mode):o})"
    return None

def load(directory: Path = KEYS_DIR, owner: int = 0) -> Keyring | None:
    """The pinned keyring, or None when none has been pinned (a unit still on its ward secret).
    KeyringError when it exists and cannot be trusted or read."""
    path = directory / FILE_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)      # a fifo: never waited on
    except FileNotFoundError:
        return None
    except OSError as e:
        raise KeyringError(f"the unit's pinned keys ({path}) cannot be read ({e.strerror or e}); pin them again "
                           "(bedside keys pin, as root)") from None
    try:
        st = os.fstat(fd)
        problem = _unsafe(os.stat(directory), str(directory), owner) or _unsafe(st, str(path), owner)
        if problem is None and not stat.S_ISREG(st.st_mode):
            problem = f"{path} is not a file"
        if problem:
            raise KeyringError(f"the unit's pinned keys cannot be trusted: {problem}; nothing signed is accepted "
                               "until they are pinned again (bedside keys pin, as root)")
        raw = os.read(fd, signed.MAX_BYTES + 1)
    finally:
        os.close(fd)
    try:
        if len(raw) > signed.MAX_BYTES:
            raise ValueError(f"it is larger than {signed.MAX_BYTES // 1024} KiB")
        body = json_loads(raw)
        if not isinstance(body, dict) or body.get("bedside_keyring") != FORMAT:
            raise ValueError("not a bedside keyring")
        keys = tuple(_key_from(e) for e in body.get("keys", []))
        ward = body.get("ward", "")
        if not isinstance(ward, str):
            raise ValueError("the ward's name is not text")
    except (ValueError, TypeError) as e:
        raise KeyringError(f"the unit's pinned keys ({path}) are damaged ({e}); pin them again") from None
    return Keyring(ward, keys)

def public_key_file(role: str, name: str, public: bytes) -> dict[str, Any]:
    """What a ``.pub`` file holds: the key, its role and name, and its id to compare by eye."""
    return {"bedside_public_key": 1, "role": role, "name": name, "public": public.hex(),
            "id": signed.key_id(public)}

def read_public_key(path: Path, role: str) -> PinnedKey:
    """A ``.pub`` file written by ``bedside keys new``, of the given role."""
    try:
        body = json_loads(read_bounded(path, KEY_FILE))
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise KeyringError(f"{path} cannot be read as a public key ({e})") from None
    if not isinstance(body, dict) or body.get("bedside_public_key") != 1:
        raise KeyringError(f"{path} is not a bedside public key file")
    if body.get("role") != role:
        raise KeyringError(f"{path} is a {str(body.get('role'))[:20]} key, not a {role} key")
    try:
        return _key_from(body, (*SIGNS, "laptop"))
    except ValueError as e:
        raise KeyringError(f"{path}: {e}") from None

def pin(directory: Path, ward_name: str, keys: Sequence[PinnedKey]) -> Keyring:
    """Write the keyring (root, at commissioning): the folder and the file root's, readable by all."""
    if not any(k.role == WARD for k in keys) or not any(k.role == RELEASE for k in keys):
        raise KeyringError("a unit needs at least one ward authority key and one release key pinned")
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)
    body = {"bedside_keyring": FORMAT, "ward": ward_name,
            "keys": [{"role": k.role, "name": k.name, "public": k.public.hex(), "id": k.id} for k in keys]}
    write_atomic(directory / FILE_NAME, (json.dumps(body, indent=1) + "\n").encode("utf-8"), mode=0o644)
    os.chmod(directory / FILE_NAME, 0o644)
    fsync_dir(directory)
    return Keyring(ward_name, tuple(keys))

def merge(keys: Iterable[PinnedKey]) -> list[PinnedKey]:
    """Keys without repeats (the same key pinned twice is pinned once)."""
    out: dict[str, PinnedKey] = {}
    for k in keys:
        out.setdefault(k.id, k)
    return list(out.values())
