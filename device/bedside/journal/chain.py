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


def record_hash(rec: Mapping[str, Any]) -> str:
    """Recompute the hash of an exported record (its ``hash`` key is ignored)."""
    body = dict(rec)
    body.pop("hash", None)
    return digest(canonical(body))


def format_time(t: datetime, tz: ZoneInfo) -> str:
    """ISO 8601 local time with its UTC offset, to the millisecond: readable and exact."""
    return t.astimezone(tz).isoformat(timespec="milliseconds")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def short(h: str) -> str:
    return h[:8]
