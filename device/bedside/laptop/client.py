"""The nurse tool's end of the serial link: requests, retries and plain-language errors.

``Client`` sends one request frame at a time and waits for the frame that answers it,
ignoring everything else on the wire (the unit's echo and prompts, a modem manager's
probes, noise). A damaged or missing answer is asked for again with the same request id,
so the unit answers a retried request without doing it twice. It works over anything with
``read``/``write`` (``Transport``); ``open_port`` gives a pyserial one with messages a nurse
can act on (Linux, macOS and Windows port names all work).
"""

from __future__ import annotations

import contextlib
import errno
import platform
import random
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from bedside.core.digest import hmac_sha256
from bedside.core.errors import FAILED, BedsideError
from bedside.link import frames
from bedside.link.port import port_errno
from bedside.secret import kdf_problem, scrypt

ANSWER_S = 3.0          # a small answer takes milliseconds; allow for a busy unit
RETRIES = 6
# Once bytes arrive, an answer may take this much longer than ANSWER_S to finish (the largest
# batch, 56 KiB as stored, takes 5 s at 115200 baud) and may bring at most this many bytes,
# noise included (a frame is at most frames.MAX_REPLY_LINE). A peer past either is not
# answering: it is refused at once, named, and not asked again.
ANSWER_GRACE_S = 30.0
ANSWER_MAX_BYTES = 2 * frames.MAX_REPLY_LINE
WAIT_MAX_S = 120.0      # the longest "wait" a unit asks for (a press to confirm is 60 s)


class LinkError(BedsideError):
    """The link failed in a way a person can act on; the message says how."""

    exit_code = FAILED


class Disconnected(LinkError):
    """The port went away (cable pulled, unit restarted)."""


class NoAnswer(LinkError):
    """The port is open but the unit does not answer."""


class Misbehaved(LinkError):
    """The peer did something no bedside unit does (bytes without end, an answer that never
    ends); the message says what, in one line."""


class TimedOut(LinkError):
    """The whole exchange passed its total deadline."""


class Refused(LinkError):
    """The unit answered with an error (``code``: locked, denied, lockout, not_confirmed ...)."""

    def __init__(self, code: str, message: str, data: dict[str, Any]) -> None:
        super().__init__(message)
        self.code = code
        self.data = data


class Transport(Protocol):
    def write(self, data: bytes) -> None: ...

    def read(self, timeout: float) -> bytes:
        """What has arrived, waiting at most ``timeout`` for the first byte; b"" if nothing."""
        ...

    def close(self) -> None: ...


def list_ports() -> list[str]:
    try:
        from serial.tools import list_ports as lp

        return [f"{p.device} ({p.description})" if p.description and p.description != "n/a" else p.device
                for p in sorted(lp.comports(), key=lambda p: p.device)]
    except Exception:
        return []


def port_problem(port: str, e: BaseException) -> str:
    """What went wrong opening ``port``, for a nurse (by the errno behind it: ``port_errno``)."""
    code = port_errno(e)
    found = list_ports()
    ports = f" Ports on this computer: {', '.join(found)}." if found else " This computer shows no serial ports."
    if code == errno.ENOENT:
        return f"There is no port called {port}: is the unit's cable plugged in?{ports}"
    if code == errno.EACCES:
        if platform.system() == "Linux":
            return (f"No permission to open {port}. Add yourself to the dialout group (sudo adduser $USER "
                    "dialout), then log out and in again. If the unit was plugged in just now, ModemManager "
                    "may be probing it: wait half a minute (see docs/serial.md).")
        return f"{port} is in use by another program (a terminal program?): close it and try again."
    if code in (errno.EBUSY, errno.EAGAIN):      # EAGAIN: the exclusive lock is held by another program
        return (f"{port} is in use by another program (a terminal program, or ModemManager probing a newly "
                "plugged unit): close it or wait half a minute, then try again.")
    return f"{port} cannot be opened: {e}"


class SerialTransport:
    """A pyserial port at ``baud`` 8N1 (ignored by USB gadget ports, which run at USB speed)."""

    def __init__(self, port: str, baud: int = 115200) -> None:
        import serial

        self.port = port
        self._serial_error: type[Exception] = serial.SerialException
        try:
            ser = serial.serial_for_url(port, do_not_open=True)
            ser.baudrate = baud
            ser.bytesize, ser.parity, ser.stopbits = serial.EIGHTBITS, serial.PARITY_NONE, serial.STOPBITS_ONE
            ser.xonxoff = ser.rtscts = ser.dsrdtr = False
            ser.timeout = 0.1
            ser.write_timeout = 5.0
            if "://" not in port and sys.platform != "win32":
                ser.exclusive = True
            ser.open()
        except (serial.SerialException, OSError, ValueError) as e:
            raise LinkError(port_problem(port, e)) from None
        self.ser = ser

    def write(self, data: bytes) -> None:
        try:
            self.ser.write(data)
        except (self._serial_error, OSError) as e:
            raise Disconnected(f"the connection to the unit on {self.port} was lost ({e})") from None

    def read(self, timeout: float) -> bytes:
        try:
            self.ser.timeout = max(0.0, timeout)
            data: bytes = self.ser.read(1)
            if data:
                n = self.ser.in_waiting
                if n:
                    data += self.ser.read(n)
            return data
        except (self._serial_error, OSError) as e:
            raise Disconnected(f"the connection to the unit on {self.port} was lost ({e})") from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ser.close()


class WeakKdf(BedsideError, ValueError):
    """The device asked for a key derivation no bedside unit uses; the message says why."""


def unlock_answer(secret: str, kdf: dict[str, Any], nonce: str) -> str:
    """The answer to the unit's challenge: HMAC-SHA256(scrypt(secret, the unit's salt), nonce).

    Only for a cost between the floor and the ceiling (``bedside.secret.kdf_problem``): an
    answer at a cheap cost would let whoever asked guess the ward secret quickly."""
    problem = kdf_problem(kdf)
    if problem is not None:
        raise WeakKdf(problem)
    key = scrypt(secret, [bytes.fromhex(str(kdf["salt"]))], int(kdf["n"]), int(kdf["r"]), int(kdf["p"]))[0]
    return hmac_sha256(key, nonce.encode("ascii")).hex()


class Client:
    def __init__(self, transport: Transport, *, answer_s: float = ANSWER_S, retries: int = RETRIES,
                 monotonic: Callable[[], float] = time.monotonic, deadline: float | None = None) -> None:
        self.t = transport
        self.deadline = deadline          # monotonic time past which nothing more is asked or awaited
        self.answer_s = answer_s
        self.retries = retries
        self.monotonic = monotonic
        self.reader = frames.ReplyReader()
        # A fresh, random start, so that a request id is never one the unit answered for an earlier run.
        self._id = random.SystemRandom().randrange(1, 10**8)
        self.sent = 0
        self.received = 0
        self.resent = 0

    def next_id(self) -> int:
        self._id = self._id % (10**9 - 2) + 1
        return self._id

    def request(self, verb: str, *args: str, on_wait: Callable[[dict[str, Any]], None] | None = None,
                answer_s: float | None = None) -> frames.Reply:
        """Send a request and return its answer (ok or batch); an error answer raises Refused.

        A request the unit answers with ``wait`` (a change waiting for a press) is not sent
        again; the final answer arrives with the same id.
        """
        rid = self.next_id()
        frame = frames.Request(rid, verb, tuple(args)).encode()
        base = answer_s if answer_s is not None else self.answer_s
        for _attempt in range(self.retries):
            if self.deadline is not None and self.monotonic() >= self.deadline:
                raise TimedOut("the exchange with the unit passed its time limit")
            self.t.write(frame)
            self.sent += len(frame)
            rep = self._await(rid, base, on_wait)
            if rep is None:
                self.resent += 1
                continue
            if rep.status == "err":
                code = str(rep.data.get("error", "error"))
                if code == "crc":
                    self.resent += 1
                    continue
                raise Refused(code, str(rep.data.get("message", code)), dict(rep.data))
            return rep
        raise NoAnswer("the unit does not answer")

    def _await(self, rid: int, base: float, on_wait: Callable[[dict[str, Any]], None] | None
               ) -> frames.Reply | None:
        now = started = self.monotonic()
        deadline = now + base
        hard = now + base + ANSWER_GRACE_S           # however the bytes keep coming
        got = 0
        while now < deadline:
            if self.deadline is not None and now >= self.deadline:
                raise TimedOut("the exchange with the unit passed its time limit")
            data = self.t.read(min(0.25, deadline - now))
            now = self.monotonic()
            if not data:
                continue
            self.received += len(data)
            got += len(data)
            if got > ANSWER_MAX_BYTES:
                raise Misbehaved(f"the device sent {got // 1024} KiB without a whole answer (a unit's answer is at "
                                 f"most {frames.MAX_REPLY_LINE // 1024} KiB): it is not behaving as a bedside unit")
            # An answer still arriving (a big batch on a slow line) keeps the wait going, up to ``hard``.
            deadline = min(max(deadline, now + 1.0), hard)
            for text in self.reader.feed(data):
                try:
                    rep = frames.parse_reply(text)
                except frames.FrameError:
                    if frames.leading_id(text) == rid:
                        return None          # our answer, damaged: ask again at once
                    continue
                if rep.id == 0 and rep.status == "err":
                    return None              # the unit could not read our request
                if rep.id != rid:
                    continue                 # a late answer to an earlier try
                if rep.status == "wait":
                    if on_wait is not None:
                        on_wait(dict(rep.data))
                    deadline = now + _wait_s(rep.data.get("seconds")) + 10.0
                    hard = deadline + ANSWER_GRACE_S
                    got = 0
                    continue
                return rep
        if got and deadline >= hard:
            raise Misbehaved(f"the device kept sending for {now - started:.0f} s without a whole answer: "
                             "it is not behaving as a bedside unit")
        return None


def _wait_s(value: object) -> float:
    """The seconds a unit asks to wait for a press, within what any unit asks."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= WAIT_MAX_S:
        return float(value)
    return 60.0
