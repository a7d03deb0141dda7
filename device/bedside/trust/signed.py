"""Signed documents: an Ed25519 signature by a named key over one kind of document.

Every file or message a unit trusts because of who made it is one of these::

    {"bedside_signed": 1, "kind": "settings", "key": "<key id>", "body": {…}, "sig": "<hex>"}

The signature covers ``MESSAGE_LABEL``, the kind and the body's canonical JSON (sorted keys,
no spaces, UTF-8), so a signature made for one kind of document (a nurse's answer to a
challenge, say) is never valid as another (ward settings). Which keys may sign which kinds
is the keyring's business (``keyring.py``); this module only parses and verifies.

**Verification runs in a short-lived child process** (``sys.executable -I``, the work on its
stdin): Ed25519 comes from libsodium through PyNaCl, and loading it would map libsodium and
cffi into the unit's daemon for good, against its memory goal (docs/performance.md), for a
check a nurse or a stick makes now and then. The child imports nothing of bedside's. A child
that cannot run is a ``VerifyError``, never a signature taken as good or as bad.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bedside.core.digest import sha256
from bedside.core.errors import BedsideError
from bedside.durable import json_loads

FORMAT = 1
MESSAGE_LABEL = b"bedside signed v1\x00"
_KEY_ID_LABEL = b"bedside key id v1\x00"
MAX_BYTES = 64 * 1024          # no signed document a unit reads is larger
CHILD_TIMEOUT_S = 60.0

# Why a document was refused (journal ``reason`` values).
MALFORMED, UNKNOWN_KEY, BAD_SIGNATURE, WRONG_KIND = "malformed", "unknown_key", "bad_signature", "wrong_kind"


class Untrusted(BedsideError):
    """A document is not trusted: ``reason`` for the journal, the message for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class VerifyError(BedsideError):
    """The signature check itself could not run (its child process failed)."""


def key_id(public: bytes) -> str:
    """The public name of a key (32 hex digits): what files and records call it."""
    return sha256(_KEY_ID_LABEL + public).hexdigest()[:32]


def canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def message(kind: str, body: Mapping[str, Any]) -> bytes:
    """The bytes a signature of ``kind`` covers."""
    return MESSAGE_LABEL + kind.encode("ascii") + b"\x00" + canonical(body)


@dataclass(frozen=True, slots=True)
class Document:
    kind: str
    key: str                      # the signer's key id
    body: dict[str, Any]
    sig: bytes

    def message(self) -> bytes:
        return message(self.kind, self.body)


def parse(raw: bytes | str, what: str) -> Document:
    """The signed document in ``raw`` (not yet verified), or Untrusted(MALFORMED)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    bad = Untrusted(MALFORMED, f"{what} is not a signed bedside document (damaged, or made by an older version)")
    if len(raw) > MAX_BYTES:
        raise bad
    try:
        doc = json_loads(raw.decode("utf-8"))     # nesting past the parser's limit is a ValueError too
    except (UnicodeDecodeError, ValueError):
        raise bad from None
    got = from_json(doc, what)
    try:
        got.message()         # a lone surrogate (``\\ud800``) has no UTF-8: no signature can cover it
    except (ValueError, RecursionError):
        raise bad from None
    return got


def from_json(doc: object, what: str) -> Document:
    bad = Untrusted(MALFORMED, f"{what} is not a signed bedside document (damaged, or made by an older version)")
    if not isinstance(doc, dict) or doc.get("bedside_signed") != FORMAT:
        raise bad
    kind, key, body, sig = doc.get("kind"), doc.get("key"), doc.get("body"), doc.get("sig")
    if not (isinstance(kind, str) and kind.isascii() and isinstance(key, str) and isinstance(body, dict)
            and isinstance(sig, str)):
        raise bad
    try:
        sig_bytes = bytes.fromhex(sig)
    except ValueError:
        raise bad from None
    if len(sig_bytes) != 64:
        raise bad
    return Document(kind, key, body, sig_bytes)


def to_json(doc: Document) -> dict[str, Any]:
    return {"bedside_signed": FORMAT, "kind": doc.kind, "key": doc.key, "body": doc.body, "sig": doc.sig.hex()}


def dumps(doc: Document) -> bytes:
    return (json.dumps(to_json(doc), indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


# The child: one "public message signature" line (hex) per check on stdin, one 1/0 per line out.
_CHILD = """\
import sys
from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
for line in sys.stdin.read().split():
    pub, msg, sig = (bytes.fromhex(x) for x in line.split(":"))
    try:
        VerifyKey(pub).verify(msg, sig)
        print(1)
    except (BadSignatureError, ValueError, TypeError):
        print(0)
"""


def verify(checks: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """For each (public key, message, signature): whether the signature is good. One child
    process for all of them; VerifyError when it cannot run."""
    if not checks:
        return []
    failed = "the signature check (Ed25519, in its helper process) could not run"
    if not sys.executable:
        raise VerifyError(f"{failed}: this Python does not know its own interpreter's path")
    work = "\n".join(f"{p.hex()}:{m.hex()}:{s.hex()}" for p, m, s in checks) + "\n"
    try:
        done = subprocess.run([sys.executable, "-I", "-c", _CHILD], input=work.encode("ascii"),
                              capture_output=True, timeout=CHILD_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise VerifyError(f"{failed} (it took over {CHILD_TIMEOUT_S:.0f} s)") from None
    except OSError as e:
        raise VerifyError(f"{failed} ({e})") from None
    answers = done.stdout.decode("ascii", "replace").split()
    if done.returncode != 0 or len(answers) != len(checks) or any(a not in ("0", "1") for a in answers):
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise VerifyError(f"{failed} ({said[-1] if said else f'exit status {done.returncode}'}); the software "
                          "installation needs repair (PyNaCl)")
    return [a == "1" for a in answers]
