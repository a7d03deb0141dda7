"""The unit's own SHA-256 and HMAC-SHA256 (core/digest.py) against the standard library's
(OpenSSL's, here in the test process) and RFC 4231's published vectors."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bedside.core import digest
from tests.conftest import ROOT

# RFC 4231 section 4: HMAC-SHA-256 test cases 1-7 (key, data, HMAC; case 5 is truncated to 128 bits).
RFC4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (b"\x0c" * 20, b"Test With Truncation", "a3b6167473100ee06e0c796c2955552b"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than block-size data. The key "
     b"needs to be hashed before being used by the HMAC algorithm.",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
]


@pytest.mark.parametrize(("key", "data", "want"), RFC4231)
def test_hmac_matches_rfc_4231(key: bytes, data: bytes, want: str) -> None:
    assert digest.hmac_sha256(key, data).hex()[:len(want)] == want


@given(st.binary(max_size=200), st.binary(max_size=300))
def test_hmac_matches_the_standard_library(key: bytes, msg: bytes) -> None:
    assert digest.hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


@pytest.mark.parametrize("size", [0, 63, 64, 65, 128, 129])
def test_hmac_matches_at_the_block_boundaries(size: int) -> None:
    key = bytes(range(size % 256)) * (size // 256) + bytes(range(size % 256))
    assert digest.hmac_sha256(key, b"m" * size) == hmac.new(key, b"m" * size, hashlib.sha256).digest()


@given(st.lists(st.binary(max_size=150), max_size=5))
def test_sha256_matches_the_standard_library_in_pieces(pieces: list[bytes]) -> None:
    h = digest.sha256()
    for piece in pieces:
        h.update(piece)
    whole = b"".join(pieces)
    assert h.hexdigest() == hashlib.sha256(whole).hexdigest()
    assert digest.sha256(whole).digest() == hashlib.sha256(whole).digest()


def test_compare_digest_compares() -> None:
    assert digest.compare_digest("ab" * 32, "ab" * 32) and digest.compare_digest(b"\x00\x01", b"\x00\x01")
    assert not digest.compare_digest("ab" * 32, "ab" * 31 + "ac") and not digest.compare_digest(b"a", b"ab")


def test_hashing_loads_no_openssl() -> None:
    """What the unit's modules hash with maps no libcrypto: checked in a fresh process."""
    code = ("import json, sys\nfrom bedside.core import digest\n"
            "digest.hmac_sha256(b'k', digest.sha256(b'x').digest()); digest.compare_digest(b'a', b'a')\n"
            "maps = open('/proc/self/maps').read()\n"
            "print(json.dumps([m for m in ('_hashlib', 'hashlib', 'hmac', 'secrets') if m in sys.modules]"
            " + ['libcrypto'] * ('libcrypto' in maps)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT / "device",
                       timeout=60, check=True)
    assert json.loads(r.stdout) == []
