"""The serial link's top layer: journal records packed into a frame, and checked on arrival.

A ``get`` is answered with a batch: records as exported, compressed, in the lean form
without their hashes (the tool recomputes the chain and checks it ends where the unit
says) or the full form as stored. Pure code, like the layers below it.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bedside.core.errors import BedsideError
from bedside.journal import chain
from bedside.link.frames import MAX_REPLY_LINE, Reply, compact_json, frame

# A batch's records, uncompressed: 128 of the unit's records are about 50 KiB; a header that
# claims more than this is refused before anything is inflated (a small payload can inflate a
# thousandfold).
MAX_BATCH_RAW = 8 * MAX_REPLY_LINE


class BatchError(BedsideError, ValueError):
    """A batch that does not fit the chain the tool holds (or cannot be decoded)."""


class ChainLinkDiffers(BatchError):
    """The batch's first record does not follow the last record the tool holds: the unit's
    journal differs from the copy (tampering before what the copy held, damage after)."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Records ``first``..``last`` of the journal, packed for the wire."""

    meta: Mapping[str, Any]
    payload: str

    def encode(self, request_id: int) -> bytes:
        return frame(f"{request_id} batch {compact_json(self.meta)} {self.payload or '-'}")


def pack(records: Sequence[Mapping[str, Any]], *, head: tuple[int, str], lean: bool = True, level: int = 6,
         unread: Sequence[Mapping[str, Any]] = ()) -> Batch:
    """Pack journal records (as exported) for the wire.

    In the lean form each record goes without ``prev`` and ``hash``: the tool recomputes
    both, and accepts the batch only if its recomputed hash of the last record equals
    ``last`` here (the unit's stored hash). The 64-hex-digit hashes do not compress and are
    most of a compressed record; leaving them off makes a download over three times faster.
    The full form sends records exactly as stored, for diagnosing a journal whose stored
    hashes do not match its records.

    ``unread``: records the unit passed over because their file was not read yet (docs/serial.md);
    named in the header only when there are any, so a healthy journal's batch is as before.
    """
    meta: dict[str, Any] = {"count": len(records), "head": [head[0], head[1]], "form": "lean" if lean else "full"}
    if unread:
        meta["unread"] = [dict(u) for u in unread]
    if not records:
        return Batch(meta, "")
    lines = []
    for rec in records:
        body = {k: v for k, v in rec.items() if not (lean and k in ("prev", "hash"))}
        lines.append(chain.canonical(body))
    raw = ("\n".join(lines) + "\n").encode("utf-8")
    meta.update({"first": int(records[0]["seq"]), "last": int(records[-1]["seq"]), "prev": records[0]["prev"],
                 "hash": records[-1]["hash"], "raw": len(raw)})
    return Batch(meta, base64.b64encode(zlib.compress(raw, level)).decode("ascii"))


def unpack(reply_: Reply, after: tuple[int, str] | None) -> list[dict[str, Any]]:
    """The records of a batch reply, rebuilt and checked against the chain head ``after``.

    Every record must follow on (``seq`` one more, ``prev`` the previous ``hash``) and, in
    the lean form, the recomputed hash of the last record must equal the unit's; anything
    else raises BatchError and the tool keeps nothing of the batch. ``after`` None is an
    empty copy: it starts wherever the unit's journal starts (after retention pruned
    exported records, that is past record 1), linked as the unit says.
    """
    meta = reply_.data
    try:
        count = int(meta["count"])
    except (KeyError, TypeError, ValueError):
        raise BatchError("batch without a record count") from None
    if count == 0:
        return []
    try:
        first, last, prev, want = int(meta["first"]), int(meta["last"]), str(meta["prev"]), str(meta["hash"])
        form, raw_len = str(meta["form"]), int(meta["raw"])
    except (KeyError, TypeError, ValueError):
        raise BatchError("batch header incomplete") from None
    if after is None:
        if first < 1 or (first == 1 and prev != chain.GENESIS):
            raise BatchError("the first batch does not start a chain")
        after = (first - 1, prev)
    if first != after[0] + 1:
        raise BatchError(f"batch starts at record {first}, expected {after[0] + 1}")
    if prev != after[1]:
        raise ChainLinkDiffers(f"record {first} does not follow the copy's last record {after[0]} "
                               "(chain link differs)")
    if last - first + 1 != count or raw_len > MAX_BATCH_RAW:
        raise BatchError("batch header inconsistent")
    try:
        d = zlib.decompressobj()
        raw = d.decompress(base64.b64decode(reply_.payload, validate=True), raw_len + 1)
        if len(raw) != raw_len or not d.eof:
            raise BatchError("batch size differs from its header")
        lines = raw.decode("utf-8").split("\n")
    except (binascii.Error, zlib.error, UnicodeDecodeError):
        raise BatchError("batch payload damaged") from None
    if lines[-1] != "" or len(lines) - 1 != count:
        raise BatchError("batch holds a different number of records than its header says")
    out: list[dict[str, Any]] = []
    seq, h = after
    for text in lines[:-1]:
        try:
            rec = json.loads(text)
        except (ValueError, RecursionError):
            raise BatchError("batch holds a record that is not JSON") from None
        if not isinstance(rec, dict) or rec.get("seq") != seq + 1:
            raise BatchError(f"record {seq + 1} missing from the batch")
        if form == "lean":
            if "prev" in rec or "hash" in rec:
                raise BatchError("lean batch carries hashes")
            rec["prev"] = h
            rec["hash"] = chain.record_hash(rec)
        elif rec.get("prev") != h or rec.get("hash") != chain.record_hash(rec):
            raise BatchError(f"record {seq + 1} breaks the chain (its stored hash does not match)")
        seq, h = rec["seq"], rec["hash"]
        out.append(rec)
    if h != want:
        raise BatchError(f"records {first}-{last} do not hash to the unit's chain ({chain.short(want)})")
    return out


def unpack_as_given(reply_: Reply) -> list[dict[str, Any]]:
    """The records of a full-form batch as the unit sent them, without any chain check.

    For a journal that is already known to be broken: every record the unit can read is
    kept, and judged afterwards (``verify``) rather than refused here. Lines that are not
    JSON objects cannot be kept as records and are left out (the gap they leave is named).
    Raises BatchError only when the payload itself cannot be decoded."""
    meta = reply_.data
    if not meta.get("count"):
        return []
    try:
        raw_len = int(meta["raw"])
        if raw_len > MAX_BATCH_RAW:
            raise BatchError("batch header inconsistent")
        d = zlib.decompressobj()
        raw = d.decompress(base64.b64decode(reply_.payload, validate=True), raw_len + 1)
        if len(raw) != raw_len or not d.eof:
            raise BatchError("batch size differs from its header")
        lines = raw.decode("utf-8").split("\n")
    except (KeyError, TypeError, ValueError, binascii.Error, zlib.error, UnicodeDecodeError):
        raise BatchError("batch payload damaged") from None
    out: list[dict[str, Any]] = []
    for text in lines:
        try:
            rec = json.loads(text) if text else None
        except (ValueError, RecursionError):
            rec = None
        if isinstance(rec, dict) and isinstance(rec.get("seq"), int):
            out.append(rec)
    return out


def export_line(rec: Mapping[str, Any]) -> str:
    """A record exactly as ``bedside log export`` prints it (without the newline)."""
    return chain.canonical(rec)
