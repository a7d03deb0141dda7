"""SHA-256, HMAC-SHA256 and a constant-time comparison, without OpenSSL.

``hashlib``, ``hmac`` and ``secrets`` each load OpenSSL's ``_hashlib`` and with it libcrypto:
about 3.5 MiB of the unit's resident memory, for a few hashes of small records. CPython
carries its own SHA-256 (``_sha256``; ``_sha2`` from 3.12 on), a built-in of Debian's
python3.11, and the constant-time comparison that ``hmac.compare_digest`` re-exports lives in
``_operator``. So the unit hashes with these, and its process never maps libcrypto (a test
reads ``bedside run``'s memory map to keep it so). Random bytes come from ``os.urandom``,
which is all ``secrets.token_bytes`` is; scrypt runs in a short-lived child process of its
own (``bedside.secret``).

HMAC is RFC 2104 over SHA-256 (64-byte blocks), as ``hmac.new(key, msg, hashlib.sha256)``
computes it; the tests check it against the standard library and RFC 4231's vectors.
"""

from __future__ import annotations

import importlib
from _operator import _compare_digest
from typing import Protocol, cast

__all__ = ["BLOCK", "Hash", "compare_digest", "hmac_sha256", "sha256"]

BLOCK = 64          # SHA-256's block size in bytes: HMAC pads its key to it


def compare_digest(a: str | bytes, b: str | bytes) -> bool:
    """Whether ``a`` equals ``b``, in time that does not depend on where they differ.

    Text is compared as its UTF-8 bytes: ``_compare_digest`` refuses text with a character
    outside ASCII (a TypeError), and a crafted file's MAC or key id may hold one (a lone
    surrogate from a ``\\ud800`` escape included)."""
    if isinstance(a, str):
        a = a.encode("utf-8", "surrogatepass")
    if isinstance(b, str):
        b = b.encode("utf-8", "surrogatepass")
    return _compare_digest(a, b)


class Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...

    def hexdigest(self) -> str: ...

    def copy(self) -> Hash: ...


class _Constructor(Protocol):
    def __call__(self, data: bytes = b"", /) -> Hash: ...


def _builtin() -> _Constructor:
    for name in ("_sha2", "_sha256"):        # 3.12 merged the SHA-2 family into _sha2
        try:
            return cast(_Constructor, importlib.import_module(name).sha256)
        except ImportError:
            continue
    raise ImportError("this Python has no built-in SHA-256 module (_sha256 or _sha2); bedside needs CPython 3.11+")


sha256: _Constructor = _builtin()

_OUTER = bytes(x ^ 0x5C for x in range(256))
_INNER = bytes(x ^ 0x36 for x in range(256))


def hmac_sha256(key: bytes, msg: bytes) -> bytes:
    """HMAC-SHA256(key, msg) by RFC 2104: a key longer than a block is hashed first, then padded
    with zeros to a block; H((K ^ opad) ‖ H((K ^ ipad) ‖ msg))."""
    if len(key) > BLOCK:
        key = sha256(key).digest()
    key = key.ljust(BLOCK, b"\0")
    inner = sha256(key.translate(_INNER))
    inner.update(msg)
    outer = sha256(key.translate(_OUTER))
    outer.update(inner.digest())
    return outer.digest()
