"""Structural mutators for the small JSON files a ward USB stick carries (the authorisation,
the ward settings, an update's manifest and recovery): the fuzzers' material
(tests/stick/test_fuzz_stick_files.py).

Each mutator takes a random source and a document (a dict, as the file's JSON gives it) or its
bytes and returns a changed copy. The object-level ones change one field somewhere in the
tree (drop it, give it another type or an extreme value, add an unknown one); the text-level
ones change the bytes in ways no dict can hold (nesting past the parser's limit, a key twice,
bytes that are not UTF-8, a lone surrogate, ``NaN``, a number of thousands of digits, a cut).
The caller may sign the mutated document again, so that the checks after the signature are
reached too (someone who holds the ward secret, or a stolen key).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

Doc = dict[str, Any]

# Values no bedside tool writes, each of a type or size a field may not expect.
ODD_VALUES: list[Any] = [None, True, False, 0, -1, 2**63, 2**70, -(2**70), 1e308, -0.0, 0.5, "", "x" * 5000,
                         "\u202e\u0000\ufeff", "../../etc/passwd", "NUL", [], [None], {}, {"a": {"b": []}},
                         "2026-13-45T99:99:99", "9" * 400, "ff" * 31, "ff" * 64, ["x"] * 300,
                         "é" * 32, "\ud800", "ab\udfff" * 16, float("nan"), float("inf")]


def _paths(doc: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the tree (keys of objects, indexes of arrays), the root excepted."""
    out: list[tuple[Any, ...]] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((*at, k))
            out += _paths(v, (*at, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:50]):
            out.append((*at, i))
            out += _paths(v, (*at, i))
    return out


def _parent(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path[:-1]:
        doc = doc[k]
    return doc


def drop(rng: random.Random, doc: Doc) -> Doc:
    out = copy.deepcopy(doc)
    paths = _paths(out)
    if paths:
        path = rng.choice(paths)
        parent = _parent(out, path)
        del parent[path[-1]]
    return out


def retype(rng: random.Random, doc: Doc) -> Doc:
    out = copy.deepcopy(doc)
    paths = _paths(out)
    if paths:
        path = rng.choice(paths)
        _parent(out, path)[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
    return out


def add_field(rng: random.Random, doc: Doc) -> Doc:
    out = copy.deepcopy(doc)
    targets = [out, *(v for p in _paths(out) if isinstance(v := _get(out, p), dict))]
    rng.choice(targets)[rng.choice(["extra", "__proto__", "mac", "kind", "body", "x" * 200])] = copy.deepcopy(
        rng.choice(ODD_VALUES))
    return out


def swap_string(rng: random.Random, doc: Doc) -> Doc:
    """A string field changed by a byte or cut: the shape a flipped bit on the stick leaves."""
    out = copy.deepcopy(doc)
    strings = [p for p in _paths(out) if isinstance(_get(out, p), str) and _get(out, p)]
    if strings:
        path = rng.choice(strings)
        s: str = _get(out, path)
        i = rng.randrange(len(s))
        _parent(out, path)[path[-1]] = rng.choice([s[:i], s[:i] + chr(rng.randrange(32, 0x2FFF)) + s[i + 1:],
                                                   s + s, s.upper()])
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for k in path:
        doc = doc[k]
    return doc


DOC_MUTATORS: dict[str, Callable[[random.Random, Doc], Doc]] = {
    "drop": drop, "retype": retype, "add_field": add_field, "swap_string": swap_string}


# --- on the bytes ---------------------------------------------------------------------------

def nest(rng: random.Random, raw: bytes) -> bytes:
    """A value replaced by arrays or objects nested past the parser's limit (or just under it)."""
    depth = rng.choice([900, 1100, 5000, 20000])
    deep = (b"[" * depth + b"0" + b"]" * depth) if rng.random() < 0.5 else (b'{"a":' * depth + b"0" + b"}" * depth)
    at = raw.find(b":")
    if at < 0:
        return deep
    end = raw.find(b",", at)
    return raw[:at + 1] + deep + (raw[end:] if end > 0 else b"}")


def twice(rng: random.Random, raw: bytes) -> bytes:
    """A key given twice (JSON keeps the last): a field changed after the one that was checked."""
    body = raw.rstrip().rstrip(b"}")
    key = rng.choice([b"stick", b"mac", b"ward_key", b"body", b"sig", b"kind", b"issued", b"config"])
    return body + b', "' + key + b'": ' + rng.choice([b'"x"', b"1", b"null", b"{}"]) + b"}"


def not_utf8(rng: random.Random, raw: bytes) -> bytes:
    i = rng.randrange(len(raw) + 1)
    return raw[:i] + rng.choice([b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xfe\xff"]) + raw[i:]


def surrogate(rng: random.Random, raw: bytes) -> bytes:
    i = raw.find(b'"', rng.randrange(len(raw) + 1))
    return raw if i < 0 else raw[:i + 1] + b"\\ud800" + raw[i + 1:]


def constant(rng: random.Random, raw: bytes) -> bytes:
    """A number replaced by a constant JSON does not have (Python's parser takes them) or one of
    thousands of digits."""
    digits = [i for i in range(len(raw)) if raw[i:i + 1].isdigit() and raw[i - 1:i] in (b":", b" ")]
    if not digits:
        return raw
    i = rng.choice(digits)
    return raw[:i] + rng.choice([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"9" * 5000]) + raw[i + 1:]


def cut(rng: random.Random, raw: bytes) -> bytes:
    return raw[:rng.randrange(len(raw) + 1)]


def flip(rng: random.Random, raw: bytes) -> bytes:
    out = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        if out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def pad(rng: random.Random, raw: bytes) -> bytes:
    """Whitespace to around the readers' limits (64 KiB and 4 KiB), or a BOM in front."""
    if rng.random() < 0.3:
        return b"\xef\xbb\xbf" + raw
    return raw + b" " * rng.choice([4096 - len(raw), 48 * 1024 - len(raw), 64 * 1024, 200_000])


RAW_MUTATORS: dict[str, Callable[[random.Random, bytes], bytes]] = {
    "nest": nest, "twice": twice, "not_utf8": not_utf8, "surrogate": surrogate, "constant": constant,
    "cut": cut, "flip": flip, "pad": pad}


def dumps(doc: Doc) -> bytes:
    return json.dumps(doc, indent=1, sort_keys=True).encode("utf-8")


def encoded(doc: Doc) -> bytes:
    """A mutated document's bytes: ``dumps``, or, for what JSON cannot hold as it is (a lone
    surrogate, a key that is no string), every such value as its text."""
    try:
        return dumps(doc)
    except (TypeError, ValueError):
        return json.dumps(doc, default=str).encode()
