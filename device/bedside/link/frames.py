"""The serial link's middle layer: the nurse tool's frames, as pure code.

The tool sends *frames*: lines starting with ``~`` and ending in ``*`` plus the CRC-32 of
the text between (``~17 get 120 128*1a2b3c4d``). Frames are never echoed, and every answer
is a frame too, so the tool can pick them out of anything else on the wire (echo, a modem
manager's ``AT`` probes, line noise) and retry what was lost or damaged. A request is
``id verb args...``; an answer ``id status {json}`` (status ok, err, wait or batch; a
batch's records are ``batch.py``'s).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bedside.core.errors import BedsideError
from bedside.durable import json_loads
from bedside.link.lines import EOL

PROTOCOL = 1
MAX_REPLY_LINE = 1 << 20  # a frame from the unit, as the tool accepts it (batches are ~5-20 kB)


class FrameError(BedsideError, ValueError):
    """A frame that cannot be trusted (damaged, cut short) or understood."""

    def __init__(self, code: str, message: str, request_id: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.request_id = request_id


def crc(text: str) -> str:
    return f"{zlib.crc32(text.encode('utf-8')):08x}"


def frame(body: str) -> bytes:
    """``~body*crc`` and CR LF: one frame on the wire."""
    return f"~{body}*{crc(body)}".encode() + EOL


def open_frame(text: str) -> str:
    """The body of a frame (the text after ``~``) once its CRC checks; FrameError otherwise."""
    body, star, check = text.rpartition("*")
    if not star or crc(body) != check:
        rid = leading_id(body or text)
        raise FrameError("crc", "damaged frame (CRC mismatch)", rid)
    return body


def leading_id(text: str) -> int:
    m = re.match(r"(\d{1,9}) ", text)
    return int(m.group(1)) if m else 0


@dataclass(frozen=True, slots=True)
class Request:
    """A checked request frame: ``id verb args...``."""

    id: int
    verb: str
    args: tuple[str, ...] = ()

    def body(self) -> str:
        return " ".join([str(self.id), self.verb, *self.args])

    def encode(self) -> bytes:
        # Ctrl-U first: it clears any half line (noise, a probe) the unit has buffered.
        return b"\x15" + frame(self.body())


_VERB = re.compile(r"^[a-z]{2,12}$")
# An argument is printable ASCII; a laptop's certificate (keyunlock) is the longest, about 700.
_ARG = re.compile(r"^[\x21-\x7e]{1,1500}$")


def parse_request(text: str) -> Request:
    """A request from a frame's text (after ``~``); FrameError says what was wrong."""
    body = open_frame(text)
    parts = body.split(" ")
    if len(parts) < 2 or not parts[0].isdigit() or len(parts[0]) > 9:
        raise FrameError("bad", "a request is: ID VERB [ARGS...]")
    rid = int(parts[0])
    if not _VERB.match(parts[1]) or not all(_ARG.match(a) for a in parts[2:]) or len(parts) > 8:
        raise FrameError("bad", "a request is: ID VERB [ARGS...]", rid)
    return Request(rid, parts[1], tuple(parts[2:]))


def reply(request_id: int, status: str, payload: Mapping[str, Any]) -> bytes:
    """An answer frame: ``id status {json}``; status is ok, err or wait."""
    return frame(f"{request_id} {status} {compact_json(payload)}")


def compact_json(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=True, allow_nan=False)


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    status: str                     # ok | err | wait | batch
    data: Mapping[str, Any]
    payload: str = ""               # batch only: base64 of the compressed records


def parse_reply(text: str) -> Reply:
    """An answer frame from the unit (the text after ``~``); FrameError if damaged or malformed."""
    body = open_frame(text)
    parts = body.split(" ", 2)
    if len(parts) < 3 or not parts[0].isdigit() or parts[1] not in ("ok", "err", "wait", "batch"):
        raise FrameError("bad", "malformed answer")
    status, rest, payload = parts[1], parts[2], ""
    if status == "batch":
        # The header's JSON has no spaces outside strings, and its strings have none; the payload has none.
        rest, _, payload = rest.rpartition(" ")
    if len(parts[0]) > 9 or not parts[0].isascii():
        raise FrameError("bad", "malformed answer")     # request ids have at most nine digits
    try:
        data = json_loads(rest)                          # nesting past the parser's limit is a ValueError too
    except ValueError:
        raise FrameError("bad", "malformed answer") from None
    if not isinstance(data, dict):
        raise FrameError("bad", "malformed answer")
    return Reply(int(parts[0]), status, data, payload)


class ReplyReader:
    """The tool's side: picks frames out of everything the unit sends.

    Budget: memory at most ``max_line`` bytes buffered; time linear in the bytes fed (each
    byte is searched for a line end once, and each line's CRC is checked for at most
    ``TRIES`` of its ``~`` marks, so a line of ``~1~1~1…`` costs a few passes, not one per mark)."""

    TRIES = 4          # ``~`` marks tried per line, from each end

    @classmethod
    def _frame_in(cls, raw: bytes) -> str | None:
        """The frame in a line, after whatever noise came before it on the same line.

        The first ``~`` followed by a digit whose frame checks wins (only the first and last
        few are tried); if none checks, the first one is returned (damaged: the caller's
        check refuses it and the tool asks again).
        """
        starts: list[int] = []
        start = raw.find(b"~")
        while start >= 0 and len(starts) < cls.TRIES:
            if raw[start + 1:start + 2].isdigit():
                starts.append(start)
            start = raw.find(b"~", start + 1)
        if start >= 0:              # more marks: the last few too (noise before a frame is short)
            tail: list[int] = []
            end = len(raw)
            while len(tail) < cls.TRIES:
                at = raw.rfind(b"~", starts[-1] + 1 if starts else 0, end)
                if at < 0:
                    break
                if raw[at + 1:at + 2].isdigit():
                    tail.append(at)
                end = at
            starts += reversed(tail)
        first: str | None = None
        for start in starts:
            try:
                text = raw[start + 1:].decode("ascii")
            except UnicodeDecodeError:
                continue
            try:
                open_frame(text)
                return text
            except FrameError:
                first = first if first is not None else text
        return first

    def __init__(self, max_line: int = MAX_REPLY_LINE) -> None:
        self.max_line = max_line
        self.buf = bytearray()
        self.searched = 0           # bytes of ``buf`` already known to hold no line end
        self.skipping = False
        self.noise = 0              # bytes that were not part of a frame

    def feed(self, data: bytes) -> list[str]:
        """Complete ``~`` lines (without the ``~``); everything else is counted and dropped."""
        self.buf += data
        lines: list[str] = []
        while True:
            i = self.buf.find(b"\n", self.searched)
            if i < 0:
                self.searched = len(self.buf)
                break
            raw = bytes(self.buf[:i])
            del self.buf[: i + 1]
            self.searched = 0
            if self.skipping:
                self.skipping = False
                self.noise += len(raw)
                continue
            text = self._frame_in(raw.rstrip(b"\r"))
            if text is None:
                self.noise += len(raw)
            else:
                self.noise += len(raw) - len(text) - 1
                lines.append(text)
        if len(self.buf) > self.max_line:
            self.noise += len(self.buf)
            self.buf.clear()
            self.searched = 0
            self.skipping = True
        return lines
