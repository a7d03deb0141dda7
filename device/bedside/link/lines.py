"""The serial link's bottom layer: what a person types at a terminal, as pure code.

People at a terminal program (PuTTY, picocom, screen, miniterm) type commands; the unit
echoes what they type, understands backspace, Ctrl-C and Ctrl-U, ignores arrow keys and
answers in plain text lines ending in CR LF. ``InputReader`` splits the incoming bytes into
typed lines and the nurse tool's frames (``~`` lines, handed on to ``frames.py`` unechoed),
so one port serves both (docs/serial.md).

Everything here is a pure function of its input or a small object fed bytes, so it can be
property-tested and fuzzed without a port. Buffers are bounded: a line longer than its
limit is discarded up to its end and reported once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

MAX_LINE = 256            # a typed command (the longest is about 50 characters)
MAX_FRAME = 2048          # a request frame from the tool (a laptop's certificate and answer: about 1 kB)
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


def crlf(texts: Iterable[str]) -> bytes:
    """Plain text for a terminal: each line ending in CR LF."""
    return b"".join(t.encode("utf-8", "replace") + EOL for t in texts)
