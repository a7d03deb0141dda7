"""The serial link on the unit: a thread that owns the port and moves bytes, never the state.

* ``Connection`` is one opened port's conversation: bytes in (``feed``), bytes out (its
  ``write``), with every answer that needs the journal, the state or a change produced on
  the loop through ``call`` (``on_loop.LinkService``). It holds only what the wire needs:
  the input reader, what it is waiting for, and the last answers for retried requests.
* ``SerialLink`` is the thread: it opens the port (retrying, with clear messages, while it
  does not exist yet: a USB gadget enumerates late), reads, feeds the connection, and on
  any port error (cable pulled, port gone) tells the loop, closes and opens it again.

The loop never waits for this thread. This thread waits for the loop at most
``LOOP_TIMEOUT_S`` per request, and for the port at most ``WRITE_TIMEOUT_S`` per write.
pyserial is imported only when a port is opened.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import itertools
import os
import queue
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from bedside import __version__
from bedside.core.events import Instant
from bedside.link import certified, changes, commands, frames, lines, texts
from bedside.link.on_loop import LinkService, Refused
from bedside.link.unit_port import LoopBusy, UnitPort
from bedside.secret import SecretError, WardSecret
from bedside.trust.signed import VerifyError

LOOP_TIMEOUT_S = 10.0
WRITE_TIMEOUT_S = 5.0
MAX_READ = 4096
CACHE = 8
RETRY_S = (1.0, 2.0, 5.0, 10.0)

LoopCall = Callable[[Callable[[Instant], Any]], Any]


def _log(message: str) -> None:
    print(f"bedside: {message}", file=sys.stderr, flush=True)


class Connection:
    """One conversation over an open port. ``feed`` and ``poll`` run on the serial thread."""

    def __init__(self, conn: int, svc: LinkService, call: LoopCall, write: Callable[[bytes], None], *,
                 ward: WardSecret | None, unit: str) -> None:
        self.conn = conn
        self.svc = svc
        self.call = call
        self.write = write
        self.ward = ward
        self.unit = unit
        self.tz = svc.cfg.tz
        self.reader = lines.InputReader()
        self.events: queue.Queue[tuple[int, str, Mapping[str, Any]]] = queue.Queue()
        self.waiting: dict[int, int | None] = {}      # token -> request id (None: the person at the terminal)
        self.typed_kinds: dict[int, changes.Kind[Any]] = {}   # token -> the kind of a change typed at the terminal
        self.asked_by: dict[int, str] = {}            # token -> the request frame's text, to update its cached answer
        self.cache: OrderedDict[str, bytes] = OrderedDict()
        self.secret_next = False
        self.wake: Callable[[], None] = lambda: None
        self.probes = 0
        self.bytes_in = 0

    # --- called on the loop --------------------------------------------------------------

    def notify(self, token: int, outcome: str, detail: Mapping[str, Any]) -> None:
        """How a change ended; runs on the loop, so it only queues and wakes the thread."""
        self.events.put((token, outcome, detail))
        self.wake()

    # --- the serial thread's side ----------------------------------------------------------

    def busy(self) -> bool:
        return bool(self.waiting) or not self.events.empty()

    def feed(self, data: bytes) -> None:
        self.bytes_in += len(data)
        for item in self.reader.feed(data):
            if isinstance(item, lines.Echo):
                self.write(item.data)
            elif isinstance(item, lines.Line):
                self._line(item.text)
            elif isinstance(item, lines.Frame):
                self._frame(item.text)
            elif isinstance(item, lines.Interrupt):
                self._interrupt()
            elif isinstance(item, lines.Garbage) and self.secret_next:
                # Unreadable where the secret was expected: start again rather than take the next line as it.
                self.secret_next = False
                self._say(["That could not be read as a secret; type unlock to try again."])
            elif isinstance(item, lines.TooLong):
                if item.machine:
                    self.write(frames.reply(0, "err", {"error": "too_long", "message": "request too long"}))
                else:
                    self.secret_next = False
                    self._say([f"That line is longer than {item.limit} characters; nothing was done."])

    def poll(self) -> None:
        while True:
            try:
                token, outcome, detail = self.events.get_nowait()
            except queue.Empty:
                return
            if token not in self.waiting:
                continue
            rid = self.waiting.pop(token)
            text = self.asked_by.pop(token, "")
            if rid is None:
                kind = self.typed_kinds.pop(token, None)
                self._say(texts.decision_lines(outcome, detail, kind.sentence if kind is not None else None))
                continue
            if outcome == "confirmed":
                out = frames.reply(rid, "ok", {"outcome": outcome, **detail})
            else:
                out = frames.reply(rid, "err", {"error": "not_confirmed", "outcome": outcome,
                                                  "message": texts.decision_lines(outcome, detail)[0]})
            if text in self.cache:
                self.cache[text] = out
            self.write(out)

    def _unlock_key(self, rid: int, args: tuple[str, ...]) -> bytes:
        """A certified laptop key's answer: the challenge from the loop, the signatures checked
        here (a child process: never on the loop), the verdict counted and recorded on the loop."""
        if len(args) != 2:
            raise commands.Unknown
        nonce, wall, refused = self.call(lambda now: self.svc.challenge(self.conn, now))
        if refused is not None:
            return commands.unlocked_answer(rid, None, refused)
        try:
            verdict = certified.judge(self.svc.ring, args[0], args[1], self.svc.cfg.unit_id, nonce, wall,
                                      certified.revoked_on(self.svc.data_dir()))
        except VerifyError as e:
            _log(f"a laptop's answer could not be checked: {e}")
            return frames.reply(rid, "err", {"error": "unchecked", "message": f"the answer could not be checked: {e}"})
        outcome = self.call(lambda now: self.svc.unlock_key(self.conn, verdict, now))
        if not verdict.ok and outcome.outcome == "denied":
            return frames.reply(rid, "err", {"error": "denied", "why": verdict.why, "left": outcome.left,
                                             "message": f"not unlocked ({verdict.why.replace('_', ' ')}); "
                                             f"{outcome.left} attempts left"})
        return commands.unlocked_answer(rid, None, outcome)

    def close(self) -> None:
        """The port is gone: the loop locks the link and stops waiting for this connection's presses."""
        with contextlib.suppress(LoopBusy, Refused):
            self.call(lambda now: self.svc.closed(self.conn, now))

    # --- a person at a terminal ------------------------------------------------------------

    def _say(self, said: list[str], prompt: bool = True) -> None:
        self.write(lines.crlf(said) + (texts.prompt(self.unit) if prompt else b""))

    def _ask_loop(self, fn: Callable[[Instant], Any]) -> tuple[Any, list[str] | None]:
        """Run ``fn`` on the loop; (result, None), or (None, lines saying why not)."""
        try:
            return self.call(fn), None
        except Refused as e:
            return None, [_sentence(str(e))]
        except changes.ChangeError as e:
            return None, [_sentence(str(e))]
        except LoopBusy:
            return None, ["The unit is busy; try again in a moment."]
        except Exception as e:
            _log(f"serial request failed: {type(e).__name__}: {e}")
            return None, ["Something went wrong on the unit; it carries on. Try again."]

    def _line(self, text: str) -> None:
        if self.secret_next:
            self.secret_next = False
            self._unlock_typed(text)
            return
        if any(rid is None for rid in self.waiting.values()):
            self._say(["Still waiting for the press on the unit (Ctrl-C cancels)."], prompt=False)
            return
        if lines.is_modem_probe(text):
            self.probes += 1          # a modem manager probing a new port: silence makes it give up
            return
        cmd = lines.parse_command(text)
        if not cmd.word:
            self._say(texts.banner(self.unit, __version__))
            return
        change = changes.typed_change(cmd.word, cmd.args)
        if change is not None:
            kind, args = change
            self._ask_change(kind, lambda now: kind.read_typed(args, self.tz, now.wall.astimezone(self.tz).date()))
            return
        verb = commands.TYPED.get(cmd.word)
        if verb is None:
            self._say([f"Unknown command {cmd.word!r}. Type help for the list."])
            return
        getattr(self, f"_typed_{verb.word}")(cmd.args)

    def _typed_help(self, args: tuple[str, ...]) -> None:
        self._say(commands.help_lines())

    def _typed_status(self, args: tuple[str, ...]) -> None:
        st, why = self._ask_loop(lambda now: self.svc.status(self.conn, now))
        self._say(why or texts.status_lines(st.as_json()))

    def _typed_unlock(self, args: tuple[str, ...]) -> None:
        if args:
            self._say(["Type unlock alone, then the secret when asked (so it is not shown)."])
            return
        if self.svc.ring is not None:
            self._say(["This unit unlocks only with a nurse's certified laptop key: use bedside pull or bedside "
                       "set-time with --laptop-key (docs/serial.md)."])
            return
        if self.ward is None:
            self._say(["No ward secret has been set on this unit; an engineer sets it with 'bedside secret set'."])
            return
        self.write(b"Ward secret (not shown): ")
        self.reader.hide_next_line()
        self.secret_next = True

    def _unlock_typed(self, text: str) -> None:
        assert self.ward is not None
        try:
            right = self.ward.check(text)      # scrypt: slow on purpose, so here and not on the loop
        except SecretError as e:
            _log(f"a typed secret could not be checked: {e}")
            self._say([_sentence(f"The secret could not be checked: {e}")])
            return
        verdict, why = self._ask_loop(lambda now: self.svc.unlock_typed(self.conn, right, now))
        self._say(why or texts.verdict_lines(verdict.outcome, verdict.left, verdict.seconds))

    def _typed_log(self, args: tuple[str, ...]) -> None:
        usage = ["Type log (the last 20), log N (the last N), log all, or log from SEQ."]
        start: int
        if not args:
            start = -20
        elif len(args) == 1 and args[0].isdigit() and int(args[0]) > 0:
            start = -min(int(args[0]), texts.LOG_LIMIT)
        elif len(args) == 1 and args[0].lower() == "all":
            start = 1
        elif len(args) == 2 and args[0].lower() == "from" and args[1].isdigit():
            start = max(1, int(args[1]))
        else:
            self._say(usage)
            return
        shown = 0
        while shown < texts.LOG_LIMIT:
            page, why = self._ask_loop(functools.partial(self._page, start))
            if why:
                self._say(why)
                return
            if page.unread:
                self.write(lines.crlf(texts.unread_line(u) for u in page.unread))
            if not page.records:
                break
            self.write(lines.crlf(texts.record_line(r) for r in page.records))
            shown += len(page.records)
            start = page.records[-1]["seq"] + 1
            if start > page.head[0]:
                break
        else:
            self._say([f"(more records: type log from {start})"], prompt=False)
        self._say([] if shown else ["The journal is empty."])

    def _page(self, start: int, now: Instant) -> Any:
        return self.svc.page(self.conn, start, 100, now)

    # ``time set`` and ``episode admit``/``discharge`` are changes (``_line`` finds their kind);
    # these are the rest of what is typed with those words.
    def _typed_time(self, args: tuple[str, ...]) -> None:
        if not args:
            st, why = self._ask_loop(lambda now: self.svc.status(self.conn, now))
            self._say(why or [f"{texts.clock_text(st.time, st.zone)}, {texts.quality(st.time_quality)}"])
            return
        self._say(["Type time, or time set YYYY-MM-DD HH:MM."])

    def _typed_episode(self, args: tuple[str, ...]) -> None:
        if not args:
            st, why = self._ask_loop(lambda now: self.svc.status(self.conn, now))
            self._say(why or [texts.episode_line(st.as_json()["episode"])])
        else:
            self._say(["Type episode, episode admit EPISODE-ID SURGERY-DATE [REGIMEN] [mrn=NUMBER] "
                       "or episode discharge."])

    def _ask_change(self, kind: changes.Kind[Any], read: Callable[[Instant], changes.Change]) -> None:
        """A change typed at the terminal: read on the loop (a time typed without a date is today's there)."""
        token, why = self._ask_loop(lambda now: self.svc.ask(self.conn, read(now), self.notify, now))
        if why:
            self._say(why)
            return
        self.waiting[token] = None
        self.typed_kinds[token] = kind
        self._say([f"The unit's screen shows the change. Press its button within {changes.CONFIRM_S:.0f} s to "
                   "confirm (hold it 2 s to cancel)."], prompt=False)

    def _typed_lock(self, args: tuple[str, ...]) -> None:
        _, why = self._ask_loop(lambda now: self.svc.lock(self.conn, "command", now))
        self._say(why or ["Locked."])

    def _interrupt(self) -> None:
        self.secret_next = False
        mine = [t for t, rid in self.waiting.items() if rid is None]
        for token in mine:
            self._ask_loop(functools.partial(self.svc.withdraw, self.conn, token))
        if not mine:
            self.write(texts.prompt(self.unit))

    # --- the nurse tool ----------------------------------------------------------------------

    def _frame(self, text: str) -> None:
        try:
            req = frames.parse_request(text)
        except frames.FrameError as e:
            self.write(frames.reply(e.request_id, "err", {"error": e.code, "message": str(e)}))
            return
        cached = self.cache.get(text)
        if cached is not None:
            # A retry of a request whose answer was lost: the same answer, not a second action.
            self.write(cached)
            return
        out = self._request(req, text)
        if req.verb != "get":
            self.cache[text] = out
            while len(self.cache) > CACHE:
                self.cache.popitem(last=False)
        self.write(out)

    def _request(self, req: frames.Request, text: str) -> bytes:
        rid = req.id
        try:
            if req.verb == certified.VERB:
                return self._unlock_key(rid, req.args)
            verb = commands.FRAMED.get(req.verb)
            if verb is None:
                raise commands.Unknown
            assert verb.parse is not None and verb.on_loop is not None
            parsed = verb.parse(req.args)
            result = self.call(functools.partial(verb.on_loop, self.svc, self, parsed))
            if verb.press:
                self.waiting[result] = rid
                self.asked_by[result] = text
            return verb.answer(rid, parsed, result)
        except commands.Unknown:
            return frames.reply(rid, "err", {"error": "unknown", "message": f"unknown request {req.verb!r}"})
        except Refused as e:
            return frames.reply(rid, "err", {"error": e.code, "message": str(e), **e.detail})
        except changes.ChangeError as e:
            return frames.reply(rid, "err", {"error": "bad", "message": str(e)})
        except LoopBusy:
            return frames.reply(rid, "err", {"error": "busy", "message": "the unit is busy; try again"})
        except Exception as e:
            _log(f"serial request {req.verb} failed: {type(e).__name__}: {e}")
            return frames.reply(rid, "err", {"error": "internal", "message": "the request failed on the unit"})


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


# --- the thread -------------------------------------------------------------------------------

# pyserial on Windows makes no OSError of a failed open: the Windows error is only in its
# message, as the repr of ctypes.WinError() (``PermissionError(13, 'Access is denied.', None, 5)``:
# errno first, the Windows code last) or, as str, ``[WinError 5] …`` (the Windows code).
_REPR_ERRNO = re.compile(r"\b[A-Za-z]*Error\((\d+), ")
_WINERROR = re.compile(r"\[WinError (\d+)\]")
_WINDOWS_ERRNO = {2: errno.ENOENT, 5: errno.EACCES}      # ERROR_FILE_NOT_FOUND, ERROR_ACCESS_DENIED


def port_errno(e: BaseException) -> int | None:
    """The OS's errno behind a port error, or None: never told from the message's words.

    pyserial's SerialException is an OSError and carries the errno when it made one from an
    OSError (opening and locking the port: ``SerialException(errno, text)``); otherwise the errno
    is on the error it was raised while handling (``__cause__``/``__context__``): an OSError, or
    termios.error, whose args are (errno, text) though it is no OSError. The one case with no
    code anywhere but the text is pyserial on Windows: the number is read out of its message."""
    cur: BaseException | None = e
    for _ in range(8):                 # a chain is short; a cycle is not followed for ever
        if cur is None:
            break
        code = getattr(cur, "errno", None)
        if isinstance(code, int):
            return code
        if type(cur).__module__ == "termios" and cur.args and isinstance(cur.args[0], int):
            return int(cur.args[0])
        cur = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
    if (m := _REPR_ERRNO.search(str(e))) is not None:
        return int(m.group(1))
    if (m := _WINERROR.search(str(e))) is not None:
        return _WINDOWS_ERRNO.get(int(m.group(1)))
    return None


def explain_port_error(port: str, e: BaseException) -> str:
    """A port problem in words an engineer can act on."""
    code = port_errno(e)
    if code == errno.ENOENT:
        return (f"{port} does not exist (yet): a USB gadget port appears once the gadget driver is up; "
                "a UART needs enable_uart=1")
    if code == errno.EACCES:
        return f"no permission to open {port}: the unit's user needs to be in the dialout group"
    if code in (errno.EAGAIN, errno.EBUSY):      # EAGAIN: pyserial's exclusive lock is held by another
        return f"{port} is in use by another program (a login console on it? see docs/serial.md)"
    return f"{port} cannot be used: {e}"


class SerialLink:
    """The thread that serves the serial link. ``start`` after the unit has started; ``stop`` before closing."""

    def __init__(self, unit: UnitPort, svc: LinkService, port: str, baud: int, *, ward: WardSecret | None,
                 log: Callable[[str], None] = _log, warn: Callable[[str], None] | None = None,
                 fault_after_s: float = 60.0, retry_s: tuple[float, ...] = RETRY_S) -> None:
        self.unit = unit
        self.svc = svc
        self.port = port
        self.baud = baud
        self.ward = ward
        self.log = log
        # A port that is missing or drops is a fault for the engineer (the system log's warnings).
        self.warn = warn if warn is not None else log
        self.fault_after_s = fault_after_s
        self.retry_s = retry_s
        self._stop = threading.Event()
        self._ser: Any = None
        self._thread: threading.Thread | None = None
        self.connections = 0
        self.connection: Connection | None = None

    def call(self, fn: Callable[[Instant], Any]) -> Any:
        return self.unit.call(fn, LOOP_TIMEOUT_S)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="serial-link", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self._stop.set()
        ser = self._ser
        if ser is not None and hasattr(ser, "cancel_read"):
            with contextlib.suppress(OSError, ValueError):
                ser.cancel_read()
        if self._thread is not None:
            self._thread.join(timeout)

    def _open(self) -> Any:
        import serial

        ser = serial.serial_for_url(self.port, do_not_open=True)
        ser.baudrate = self.baud
        ser.bytesize, ser.parity, ser.stopbits = serial.EIGHTBITS, serial.PARITY_NONE, serial.STOPBITS_ONE
        ser.xonxoff = ser.rtscts = ser.dsrdtr = False
        ser.timeout = None
        ser.write_timeout = WRITE_TIMEOUT_S
        if "://" not in self.port and os.name == "posix":
            ser.exclusive = True       # a second program on the unit's port would garble both
        ser.open()
        return ser

    def _run(self) -> None:
        ids = itertools.count(1)
        missing_since: float | None = None
        said: set[str] = set()           # logged since the last real conversation: each once, not every retry
        faulted = False
        tries = 0
        while not self._stop.is_set():
            try:
                ser = self._open()
            except Exception as e:
                msg = f"serial link: {explain_port_error(self.port, e)}; retrying"
                if msg not in said:
                    self.warn(msg)
                    said.add(msg)
                now = time.monotonic()
                missing_since = missing_since if missing_since is not None else now
                if not faulted and now - missing_since >= self.fault_after_s:
                    faulted = self._tell_fault(msg)
                self._stop.wait(self.retry_s[min(tries, len(self.retry_s) - 1)])
                tries += 1
                continue
            missing_since = None
            if faulted:
                faulted = not self._tell_fault(None)
            self._ser = ser
            self.connections += 1
            msg = f"serial link open on {self.port} at {self.baud} baud"
            if msg not in said:
                self.log(msg)
                said.add(msg)
            # The service's secret: a ward stick may have changed it since the link started.
            conn = Connection(next(ids), self.svc, self.call, ser.write, ward=self.svc.ward,
                              unit=self.unit.cfg.unit_id)
            self.connection = conn
            opened = time.monotonic()
            try:
                self._serve(ser, conn)
            except Exception as e:
                # pyserial raises SerialException (an OSError subclass on some paths) on unplug.
                msg = f"serial link on {self.port} closed ({e}); opening it again"
                if msg not in said:
                    self.warn(msg)
                    said.add(msg)
            finally:
                self._ser = None
                conn.wake = lambda: None
                if not self._stop.is_set():
                    conn.close()
                with contextlib.suppress(Exception):
                    ser.close()
            # A port that opens and fails at once, with nothing said on it (a gadget whose host
            # has gone), is retried more and more slowly, like one that does not open.
            quick = time.monotonic() - opened < 2.0 and conn.bytes_in == 0
            tries = tries + 1 if quick else 0
            if not quick:
                said.clear()
            self._stop.wait(min(0.5, self.retry_s[0]) if not quick else self.retry_s[min(tries, len(self.retry_s) - 1)])

    def _tell_fault(self, problem: str | None) -> bool:
        try:
            self.call(lambda now: self.svc.port_fault(problem, now))
            return True
        except (LoopBusy, Refused):
            return False

    def _serve(self, ser: Any, conn: Connection) -> None:
        can_cancel = hasattr(ser, "cancel_read")

        def wake() -> None:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                ser.cancel_read()

        conn.wake = wake if can_cancel else (lambda: None)
        while not self._stop.is_set():
            # Blocks without polling; a decision from the loop wakes it through cancel_read.
            ser.timeout = None if can_cancel else (0.2 if conn.busy() else 1.0)
            data = ser.read(1)
            if data:
                n = ser.in_waiting
                if n:
                    data += ser.read(min(n, MAX_READ))
                conn.feed(data)
            conn.poll()
