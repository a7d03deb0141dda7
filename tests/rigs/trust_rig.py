"""A ward's keys for the tests: real Ed25519 keys (libsodium), the public halves pinned in a
keyring as ``bedside trust pin`` writes it (root's, not writable by others)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bedside.trust import keyring, keys


@dataclass(frozen=True)
class Ward:
    authority: keys.PrivateKey
    release: keys.PrivateKey
    keys_dir: Path

    def ring(self) -> keyring.Keyring:
        ring = keyring.load(self.keys_dir)
        assert ring is not None
        return ring


def pin_ward(folder: Path, authority: keys.PrivateKey, release: keys.PrivateKey) -> Path:
    keys_dir = folder / "etc-bedside-keys"
    keyring.pin(keys_dir, "Ward 7", [keyring.PinnedKey("ward", authority.id, authority.public, authority.name),
                                      keyring.PinnedKey("release", release.id, release.public, release.name)])
    os.chmod(folder, 0o755)
    return keys_dir


def make_ward(folder: Path) -> Ward:
    folder.mkdir(parents=True, exist_ok=True)
    authority, release = keys.generate("ward", "Ward 7 authority"), keys.generate("release", "Bedside releases")
    return Ward(authority, release, pin_ward(folder, authority, release))


def resigned(key: keys.PrivateKey) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """For the fuzzers: a mutated signed document signed again with ``key``, so that the checks
    after the signature are reached; a document with no body or kind to sign is left as it is."""
    def sign(doc: dict[str, Any]) -> dict[str, Any]:
        body, kind = doc.get("body"), doc.get("kind")
        if not isinstance(body, dict) or not isinstance(kind, str):
            return doc
        try:
            return {**doc, "sig": key.sign(kind, body).sig.hex()}
        except (TypeError, ValueError):
            return doc
    return sign
