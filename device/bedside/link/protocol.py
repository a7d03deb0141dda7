"""The serial link's wire format, as pure code: bytes in, typed items out, and back.

One link serves two kinds of peer (docs/serial.md):

* **People** at a terminal program (PuTTY, picocom, screen, miniterm) type commands; the
  unit echoes what they type, understands backspace, Ctrl-C and Ctrl-U, ignores arrow keys
  and answers in plain text lines ending in CR LF.
* **The nurse tool** sends *frames*: lines starting with ``~`` and ending in ``*`` plus the
  CRC-32 of the text between (``~17 get 120 128*1a2b3c4d``). Frames are never echoed, and
  every answer is a frame too, so the tool can pick them out of anything else on the wire
  (echo, a modem manager's ``AT`` probes, line noise) and retry what was lost or damaged.

Everything here is a pure function of its input or a small object fed bytes, so it can be
property-tested and fuzzed without a port. Buffers are bounded: a line longer than its
limit is discarded up to its end and reported once.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bedside.journal import chain

PROTOCOL = 1
MAX_LINE = 256            # a typed command (the longest is about 50 characters)
MAX_FRAME = 512           # a request frame from the tool
MAX_REPLY_LINE = 1 << 20  # a frame from the unit, as the tool accepts it (batches are ~5-20 kB)
EOL = b"\r\n"

_CTRL_C, _CTRL_U, _BS, _DEL, _ESC = 0x03, 0x15, 0x08, 0x7F, 0x1B
_FLOW = {0x11, 0x13}      # XON/XOFF from terminals with software flow control: not data


# --- reading what arrives at the unit -------------------------------------------------

@dataclass(frozen=True, slots=True)
class Line:
    """A typed line, complete (without its end-of-line), already echoed."""

    text: str


@dataclass(frozen=True, slots=True)
class Frame:
    """A ``~`` line from the tool, without the ``~``; not echoed, CRC not yet checked."""

    text: str


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Ctrl-C: the typed line is dropped, and whatever the person was waiting for is cancelled."""


@dataclass(frozen=True, slots=True)
class TooLong:
    """A line went past its limit; it was discarded up to its end."""

    machine: bool
    limit: int


@dataclass(frozen=True, slots=True)
class Garbage:
    """A line holding bytes no terminal sends (binary, stray control codes, broken UTF-8): dropped unanswered."""

    size: int


@dataclass(frozen=True, slots=True)
class Echo:
    """Bytes to send back so a person sees what they type (and their backspaces)."""

    data: bytes


Item = Line | Frame | Interrupt | TooLong | Garbage | Echo


class InputReader:
    """Splits the unit's incoming bytes into items. Memory is bounded by the line limits.

    The first byte of a line decides its kind: ``~`` starts a frame (never echoed), anything
    else a typed line (echoed as typed). CR, LF and CR LF each end a line once. ANSI escape
    sequences (arrow and function keys) are swallowed; other control bytes and invalid
    UTF-8 make the whole line garbage, which is dropped without an answer, so that two
    programs talking nonsense at each other cannot loop.
    """

    def __init__(self, max_line: int = MAX_LINE, max_frame: int = MAX_FRAME) -> None:
        self.max_line = max_line
        self.max_frame = max_frame
        self.buf = bytearray()
        self.machine = False
        self.started = False        # the line's first character has decided its kind
        self.overflow = False
        self.dirty = False          # the line holds garbage
        self.hide = False           # the next typed line is a secret: not echoed
        self.last_cr = False
        self.esc = 0                # 0 none, 1 after ESC, 2 inside ESC [ ... sequence
        self.utf8 = bytearray()     # a UTF-8 character still arriving (echoed once whole and valid)
        self.utf8_left = 0
        self.garbage_lines = 0
        self.long_lines = 0

    def hide_next_line(self) -> None:
        self.hide = True

    def pending(self) -> int:
        return len(self.buf)

    def feed(self, data: bytes) -> list[Item]:
        out: list[Item] = []
        echo = bytearray()
        for b in data:
            self._byte(b, out, echo)
        if echo:
            out.append(Echo(bytes(echo)))
        return _merge_echo(out)

    def _byte(self, b: int, out: list[Item], echo: bytearray) -> None:
        if self.esc:
            # ESC x, or ESC [ params final: keys a person pressed, never data.
            if self.esc == 1:
                self.esc = 2 if b in (0x5B, 0x4F) else 0
            elif 0x40 <= b <= 0x7E:
                self.esc = 0
            elif not 0x20 <= b <= 0x3F:
                self.esc = 0
                self.dirty = True
            return
        cr = self.last_cr
        self.last_cr = b == 0x0D
        if b in (0x0D, 0x0A):
            if b == 0x0A and cr:
                return
            self._end_line(out, echo)
            return
        if b == _CTRL_C:
            if not self.machine:
                echo += b"^C" + EOL
            self._reset()
            self.hide = False
            out.append(_flush(echo))
            out.append(Interrupt())
            return
        if b == _CTRL_U:
            # Clears the line; the tool sends it before every frame to drop any half line
            # left on the wire (a modem probe, noise).
            if not self.machine and not self.hide and not self.dirty:
                echo += b"\b \b" * _chars(self.buf)
            self._reset()
            return
        if b in (_BS, _DEL):
            if self.machine and not self.buf:
                self._reset()       # the "~" itself was rubbed out
            elif self.buf and not self.overflow:
                n = _last_char_len(self.buf)
                del self.buf[-n:]
                if not self.machine and not self.hide:
                    echo += b"\b \b"
            return
        if b == _ESC:
            self.esc = 1
            return
        if b in _FLOW:
            return
        if b == 0x09:
            b = 0x20
        if b < 0x20 or not self._utf8(b):
            self.dirty = True
            return
        if self.utf8_left:
            return                  # the rest of this character is still to come
        if not self.started:
            self.started = True
            self.machine = b == 0x7E     # "~"
            if self.machine:
                return
        limit = self.max_frame if self.machine else self.max_line
        if self.overflow or len(self.buf) >= limit:
            self.overflow = True
            return
        if b >= 0x80:
            data = bytes(self.utf8)
            self.utf8.clear()
        else:
            data = bytes([b])
        if len(self.buf) + len(data) > limit:
            self.overflow = True
            return
        self.buf += data
        if not self.machine and not self.hide and not self.dirty:
            echo += data

    def _utf8(self, b: int) -> bool:
        """Collect a multi-byte character; False for a byte no valid UTF-8 text has here."""
        if self.utf8_left:
            first = self.utf8[0]
            lo, hi = 0x80, 0xBF
            if len(self.utf8) == 1:
                # The second byte's range rules out overlong forms, surrogates and code points past U+10FFFF.
                lo, hi = {0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F), 0xF0: (0x90, 0xBF), 0xF4: (0x80, 0x8F)}.get(
                    first, (0x80, 0xBF))
            if not lo <= b <= hi:
                self.utf8.clear()
                self.utf8_left = 0
                return False
            self.utf8.append(b)
            self.utf8_left -= 1
            return True
        if b < 0x80:
            return True
        need = 1 if 0xC2 <= b <= 0xDF else 2 if 0xE0 <= b <= 0xEF else 3 if 0xF0 <= b <= 0xF4 else 0
        if not need:
            return False
        self.utf8[:] = bytes([b])
        self.utf8_left = need
        return True

    def _end_line(self, out: list[Item], echo: bytearray) -> None:
        machine = self.machine
        if not machine and not self.dirty and not self.overflow:
            echo += EOL
        if self.overflow:
            self.long_lines += 1
            out.append(_flush(echo))
            out.append(TooLong(machine, self.max_frame if machine else self.max_line))
        elif self.dirty:
            self.garbage_lines += 1
            out.append(Garbage(len(self.buf)))
        else:
            try:
                text = self.buf.decode("utf-8")
            except UnicodeDecodeError:
                self.garbage_lines += 1
                out.append(Garbage(len(self.buf)))
            else:
                out.append(_flush(echo))
                out.append(Frame(text) if machine else Line(text))
        self._reset()
        if not machine:
            self.hide = False

    def _reset(self) -> None:
        self.buf.clear()
        self.utf8.clear()
        self.utf8_left = 0
        self.machine = self.started = self.overflow = self.dirty = False


def _flush(echo: bytearray) -> Echo:
    data = bytes(echo)
    echo.clear()
    return Echo(data)


def _merge_echo(items: list[Item]) -> list[Item]:
    """Drop empty echoes and join neighbours, so callers write as little as possible."""
    out: list[Item] = []
    for it in items:
        if isinstance(it, Echo):
            if not it.data:
                continue
            if out and isinstance(out[-1], Echo):
                out[-1] = Echo(out[-1].data + it.data)
                continue
        out.append(it)
    return out


def _chars(buf: bytearray) -> int:
    """How many characters a terminal shows for these UTF-8 bytes (continuation bytes take no column)."""
    return sum(1 for b in buf if b & 0xC0 != 0x80)


def _last_char_len(buf: bytearray) -> int:
    n = 1
    while n < len(buf) and n < 4 and buf[-n] & 0xC0 == 0x80:
        n += 1
    return n


# --- frames ---------------------------------------------------------------------------

class FrameError(ValueError):
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
_ARG = re.compile(r"^[\x21-\x7e]{1,128}$")


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
    return frame(f"{request_id} {status} {_json(payload)}")


def _json(obj: Mapping[str, Any]) -> str:
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
    try:
        data = json.loads(rest)
    except ValueError:
        raise FrameError("bad", "malformed answer") from None
    if not isinstance(data, dict):
        raise FrameError("bad", "malformed answer")
    return Reply(int(parts[0]), status, data, payload)


class ReplyReader:
    """The tool's side: picks frames out of everything the unit sends. Memory is bounded."""

    @staticmethod
    def _frame_in(raw: bytes) -> str | None:
        """The frame in a line, after whatever noise came before it on the same line.

        The first ``~`` followed by a digit whose frame checks wins; if none checks, the first
        one is returned (damaged: the caller's check refuses it and the tool asks again).
        """
        first: str | None = None
        start = raw.find(b"~")
        while start >= 0:
            if raw[start + 1:start + 2].isdigit():
                try:
                    text = raw[start + 1:].decode("ascii")
                except UnicodeDecodeError:
                    text = None
                if text is not None:
                    try:
                        open_frame(text)
                        return text
                    except FrameError:
                        first = first if first is not None else text
            start = raw.find(b"~", start + 1)
        return first

    def __init__(self, max_line: int = MAX_REPLY_LINE) -> None:
        self.max_line = max_line
        self.buf = bytearray()
        self.skipping = False
        self.noise = 0              # bytes that were not part of a frame

    def feed(self, data: bytes) -> list[str]:
        """Complete ``~`` lines (without the ``~``); everything else is counted and dropped."""
        self.buf += data
        lines: list[str] = []
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                break
            raw = bytes(self.buf[:i])
            del self.buf[: i + 1]
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
            self.skipping = True
        return lines


# --- record batches -------------------------------------------------------------------

class BatchError(ValueError):
    """A batch that does not fit the chain the tool holds (or cannot be decoded)."""


@dataclass(frozen=True, slots=True)
class Batch:
    """Records ``first``..``last`` of the journal, packed for the wire."""

    meta: Mapping[str, Any]
    payload: str

    def encode(self, request_id: int) -> bytes:
        return frame(f"{request_id} batch {_json(self.meta)} {self.payload or '-'}")


def pack(records: Sequence[Mapping[str, Any]], *, head: tuple[int, str], lean: bool = True, level: int = 6) -> Batch:
    """Pack journal records (as exported) for the wire.

    In the lean form each record goes without ``prev`` and ``hash``: the tool recomputes
    both, and accepts the batch only if its recomputed hash of the last record equals
    ``last`` here (the unit's stored hash). The 64-hex-digit hashes do not compress and are
    most of a compressed record; leaving them off makes a download over three times faster.
    The full form sends records exactly as stored, for diagnosing a journal whose stored
    hashes do not match its records.
    """
    meta: dict[str, Any] = {"count": len(records), "head": [head[0], head[1]], "form": "lean" if lean else "full"}
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
        raise BatchError(f"record {first} does not follow the copy's last record {after[0]} (chain link differs)")
    if last - first + 1 != count or raw_len > 64 * MAX_REPLY_LINE:
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
        except ValueError:
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


def export_line(rec: Mapping[str, Any]) -> str:
    """A record exactly as ``bedside log export`` prints it (without the newline)."""
    return chain.canonical(rec)


# --- typed commands -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Command:
    """A typed command: its word and the rest of the line, split on spaces."""

    word: str
    args: tuple[str, ...] = field(default_factory=tuple)


def parse_command(text: str) -> Command:
    words = text.strip().split()
    if not words:
        return Command("")
    return Command(words[0].lower(), tuple(words[1:]))


def is_modem_probe(text: str) -> bool:
    """A modem manager's probe (``AT``, ``ATZ``, ``AT+GCAP``...): left unanswered, so it gives up.

    No command of the unit starts with "at", so nothing a person types is mistaken for one.
    """
    return text.strip()[:2].upper() == "AT"


def lines(texts: Iterable[str]) -> bytes:
    """Plain text for a terminal: each line ending in CR LF."""
    return b"".join(t.encode("utf-8", "replace") + EOL for t in texts)
