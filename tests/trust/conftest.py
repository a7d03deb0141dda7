"""Keys for the trust tests: real Ed25519 keys, sealed under a cheap Argon2id so each test is quick."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nacl.pwhash
import pytest

from bedside.trust import keyring, keys


@dataclass(frozen=True)
class Ward:
    authority: keys.PrivateKey
    release: keys.PrivateKey
    keys_dir: Path


@pytest.fixture
def cheap_argon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "OPS", nacl.pwhash.argon2id.OPSLIMIT_MIN)
    monkeypatch.setattr(keys, "MEM", nacl.pwhash.argon2id.MEMLIMIT_MIN)


def pin_ward(folder: Path, authority: keys.PrivateKey, release: keys.PrivateKey) -> Path:
    keys_dir = folder / "etc-bedside-keys"
    keyring.pin(keys_dir, "Ward 7", [keyring.PinnedKey("ward", authority.id, authority.public, authority.name),
                                      keyring.PinnedKey("release", release.id, release.public, release.name)])
    os.chmod(folder, 0o755)
    return keys_dir


@pytest.fixture
def ward(tmp_path: Path) -> Iterator[Ward]:
    authority, release = keys.generate("ward", "Ward 7 authority"), keys.generate("release", "Bedside releases")
    yield Ward(authority, release, pin_ward(tmp_path, authority, release))
