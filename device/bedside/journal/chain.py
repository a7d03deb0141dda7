"""The canonical record encoding and hash chain, shared by the journal, exports and verification.

A record is a flat JSON object. Its canonical form is ``json.dumps`` with sorted keys,
no spaces and UTF-8 text, without the ``hash`` key; ``hash`` is the SHA-256 hex digest
of that form, and every record's ``prev`` is the previous record's ``hash`` (64 zeros
for the first). Changing, removing, reordering or inserting a record breaks the chain.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from bedside.core.digest import sha256

GENESIS = "0" * 64


# json.dumps with these arguments builds an encoder at every call; the same encoder, made once,
# gives the same text (a laptop checking a ward's exports hashes hundreds of thousands of records).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical(body: Mapping[str, Any]) -> str:
    return _ENCODER.encode(body)


def digest(text: str) -> str:
    return sha256(text.encode("utf-8")).hexdigest()


def seal_body(body: Mapping[str, Any]) -> tuple[str, str]:
    """(canonical text, its hash) of a record body that has no ``hash`` key yet."""
    text = canonical(body)
    return text, digest(text)


# ``_ENCODER.encode`` makes its C encoder afresh at every call, with a table to catch cycles; a
# record read back from JSON text can hold no cycle, so its check uses one made once (the same
# text: the same C encoder, arguments and float repr). Elsewhere (no C encoder): ``canonical``.
_c_make = getattr(json.encoder, "c_make_encoder", None)
_PARSED = _c_make(None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", True, False, False) \
    if _c_make is not None else None


def record_hash(rec: Mapping[str, Any]) -> str:
    """Recompute the hash of an exported record (its ``hash`` key is ignored). ``rec`` is one
    read from JSON text (an export's line, a journal's stored text), never one holding itself."""
    body = dict(rec)
    body.pop("hash", None)
    if _PARSED is None:
        return digest(canonical(body))
    return digest("".join(_PARSED(body, 0)))


def format_time(t: datetime, tz: ZoneInfo) -> str:
    """ISO 8601 local time with its UTC offset, to the millisecond: readable and exact."""
    return t.astimezone(tz).isoformat(timespec="milliseconds")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def short(h: str) -> str:
    return h[:8]
