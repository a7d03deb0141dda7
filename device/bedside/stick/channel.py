"""The stick channel: how the export process tells the running daemon what it is doing.

The export runs in a process of its own (started by the stick service when a stick is
plugged in, or by hand), but only the daemon writes the journal and drives the display. So
the daemon listens on a Unix stream socket in its runtime directory,
``/run/bedside/stick.sock`` (mode 0660, in a directory only the ``bedside`` user and group
can enter; the peer's credentials are checked too: root or the daemon's own user). One
connection is one export; each message is one line of JSON, answered with one line:

    → {"v": 1, "op": "begin", "device": "sda1"}
    ← {"ok": true, "head": [233, "9f2c…"]}      the daemon sealed the journal and shows "Exporting"
    → {"v": 1, "op": "end", "stage": "done", "details": {"to_seq": 233, "to_hash": "9f2c…", …}}
    ← {"ok": true, "saved": true}                ``export`` committed, "Export done" on screen
    → {"v": 1, "op": "end", "stage": "refused" | "failed", "reason": "full", "details": {…}}
    ← {"ok": true, "saved": true}                ``export_refused`` / ``export_failed`` committed

A software update (``stick/software.py``) uses two more requests, each on a connection of its own:

    → {"v": 1, "op": "confirm", "title": "Install update?", "line1": "0.1.0 → 0.2.0", "seconds": 60}
    ← {"ok": true, "outcome": "confirmed"}      a short press; or cancelled, timeout, busy …
    → {"v": 1, "op": "record", "type": "software_update_refused", "data": {…}}
    ← {"ok": true, "saved": true}                only the update's own record types

Ward settings on the stick (``stick/settings.py``) come on a connection of their own, after
the export; the daemon checks them, asks for the press, applies them and records the outcome:

    → {"v": 1, "op": "settings", "raw": "{…settings.json…}", "stick": "9c1e…"}
    ← {"ok": true, "outcome": "applied" | "refused" | "already", "message": "…"}

A connection that closes after ``begin`` without ``end`` (the export process was killed) is
recorded as ``export_failed`` with reason ``interrupted``. The listening thread never
touches the unit's state: the work runs on the loop, called through the unit's port
(``link/unit_port.py``; quick: a seal, a lookup of one record, a state change), so
prompting is never held up by a stick.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import socket
import stat
import struct
import sys
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bedside.core.errors import BedsideError
from bedside.core.events import Confirm, Decided, Effect, Exported, Instant, Record, StickExport, Withdraw
from bedside.core.records import T
from bedside.durable import json_loads
from bedside.journal import retention
from bedside.journal.segments import JournalError
from bedside.link.unit_port import LoopBusy, UnitPort
from bedside.trust.keyring import KEYS_DIR

SOCKET = Path("/run/bedside/stick.sock")
VERSION = 1
MAX_LINE = 64 * 1024
LOOP_TIMEOUT_S = 30.0          # the loop answers in milliseconds; a Pi Zero under load, in a few seconds
EXPORT_TIMEOUT_S = 600.0       # an export that says nothing for this long is taken as interrupted
MAX_CONNECTIONS = 4
# What an update may record through the daemon (its switch and rollback are written while the
# daemon is stopped, by the offline writer).
SOFTWARE_RECORDS = frozenset({T.SOFTWARE_UPDATE_REFUSED, T.SOFTWARE_UPDATE_FAILED})
# Confirmation tokens of their own, far from the serial link's (which count from 1).
_TOKENS = itertools.count(1 << 40)


class ChannelError(BedsideError):
    """The daemon could not be reached, or said no; the message says why."""


def _log(message: str) -> None:
    print(f"bedside: {message}", file=sys.stderr, flush=True)


# --- the daemon's end ------------------------------------------------------------------

def listen(unit: UnitPort, say: Callable[[str], None], warn: Callable[[str], None], path: str) -> StickChannel | None:
    """The running unit's channel on ``path`` (nothing when it is empty), once the unit has started."""
    if not path:
        return None
    channel = StickChannel(unit, Path(path), say)
    try:
        channel.start()
    except OSError as e:
        # Prompting never depends on the stick: exports are refused (unrecorded) until a restart.
        warn(f"cannot listen for USB stick exports on {path} ({e.strerror}); sticks get nothing until this is fixed")
        return None
    return channel


def confirm_seconds(value: object) -> float:
    """How long a confirmation asked on the channel waits for its press: 10–120 s, 60 when the
    request gives no finite number (a NaN or infinity would reach the loop as a deadline)."""
    try:
        seconds = float(value or 60)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        seconds = 60.0
    return min(max(seconds if math.isfinite(seconds) else 60.0, 10.0), 120.0)


class StickChannel:
    """Listens for export processes and turns what they report into the unit's records and screens."""

    def __init__(self, unit: UnitPort, path: Path = SOCKET, log: Callable[[str], None] = _log,
                 data: Path | None = None) -> None:
        self.unit = unit
        self.data = data
        self.path = Path(path)
        self.log = log
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._busy = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.exports = 0
        self._waiting: dict[int, tuple[threading.Event, list[str]]] = {}
        self.keys_dir = KEYS_DIR          # the pinned keys (docs/security.md); tests point it elsewhere

    def start(self) -> None:
        """Listen (before the unit's loop runs, or on it): ``OSError`` when the socket cannot be made."""
        if self.path.is_socket():
            # Left by a daemon that was killed; a live one holds the data directory's lock.
            self.path.unlink()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(str(self.path))
            os.chmod(self.path, stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IWGRP)
            s.listen(MAX_CONNECTIONS)
        except OSError:
            s.close()
            raise
        self._sock = s
        # A software update's confirmation is a press: the channel hears how it ended.
        self.unit.observe(self.observe)
        self._thread = threading.Thread(target=self._accept, name="stick-channel", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return          # closed by stop()
            if not self._allowed(conn) or not self._busy.acquire(blocking=False):
                conn.close()
                continue
            threading.Thread(target=self._serve, args=(conn,), name="stick-export", daemon=True).start()

    def _allowed(self, conn: socket.socket) -> bool:
        """Only root (the service by hand) or the daemon's own user may report an export."""
        try:
            _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                   struct.calcsize("3i")))
        except OSError:
            return False
        if uid in (0, os.getuid()):
            return True
        self.log(f"stick channel: refused a connection from uid {uid}")
        return False

    def _call(self, fn: Callable[[Instant], Any]) -> Any:
        return self.unit.call(fn, LOOP_TIMEOUT_S)

    def _serve(self, conn: socket.socket) -> None:
        begun = ended = False
        try:
            conn.settimeout(EXPORT_TIMEOUT_S)
            with conn, conn.makefile("rb") as rfile:
                while True:
                    line = rfile.readline(MAX_LINE + 1)
                    if not line or len(line) > MAX_LINE:
                        break
                    try:
                        msg = json_loads(line)      # nesting too deep is a ValueError too
                        if not isinstance(msg, dict) or msg.get("v") != VERSION:
                            raise ValueError("not a version 1 message")
                        answer = self._answer(msg, begun)
                    except (ValueError, TypeError) as e:
                        answer = {"ok": False, "error": f"bad message: {e}"}
                    except LoopBusy as e:
                        answer = {"ok": False, "error": str(e)}
                    if answer.get("ok"):
                        begun = begun or msg.get("op") == "begin"
                        ended = ended or msg.get("op") == "end"
                    conn.sendall(json.dumps(answer).encode() + b"\n")
                    if ended:
                        break
        except OSError:
            pass                # the export process went away; below says what that means
        finally:
            self._busy.release()
            if begun and not ended:
                self.unit.post(StickExport("failed", "interrupted", {
                    "problem": "the export process stopped before it reported an outcome"}))

    def _answer(self, msg: Mapping[str, Any], begun: bool) -> dict[str, Any]:
        op = msg.get("op")
        if op == "begin" and not begun:
            device = str(msg.get("device") or "")[:32]
            head = self._call(lambda now: self._begin(device, now))
            return {"ok": True, "head": head}
        if op == "end" and begun:
            stage = msg.get("stage")
            details = msg.get("details") if isinstance(msg.get("details"), dict) else {}
            assert isinstance(details, dict)
            if stage == "done":
                saved = self._call(lambda now: self._done(details, now))
            elif stage in ("refused", "failed"):
                ev = StickExport(str(stage), str(msg.get("reason") or "")[:40], details)
                saved = self._call(lambda now: self._ended(ev, now))
            else:
                raise ValueError(f"unknown stage {stage!r}")
            self.exports += 1
            return {"ok": True, "saved": saved}
        if op == "settings" and not begun:
            return {"ok": True, **self._settings(str(msg.get("raw") or ""), str(msg.get("stick") or "")[:64])}
        if op == "confirm" and not begun:
            return {"ok": True, "outcome": self._confirm(msg)}
        if op == "record" and not begun and msg.get("type") in SOFTWARE_RECORDS:
            data = msg.get("data") if isinstance(msg.get("data"), dict) else {}
            rec = Record(str(msg["type"]), data=dict(data or {}))
            return {"ok": True, "saved": self._call(lambda now: self._record(rec, now))}
        raise ValueError(f"unexpected {op!r}")

    def _confirm(self, msg: Mapping[str, Any]) -> str:
        """Show the question and wait for the press (or its absence): how it ended."""
        title, line1, line2 = (str(msg.get(k) or "")[:24] for k in ("title", "line1", "line2"))
        seconds = confirm_seconds(msg.get("seconds"))
        token = next(_TOKENS)
        done, outcome = threading.Event(), list[str]()
        self._waiting[token] = (done, outcome)
        try:
            self.unit.post(Confirm(token, title, line1, line2, None, seconds))
            if not done.wait(seconds + LOOP_TIMEOUT_S):
                self.unit.post(Withdraw(token))
                return "timeout"
            return outcome[0]
        finally:
            self._waiting.pop(token, None)

    def _settings(self, raw: str, stick: str) -> dict[str, str]:
        """Check the ward settings from a stick, ask for the press, apply: the outcome in words."""
        from bedside import secret
        from bedside.stick import settings

        data = self.data or (self.unit.journal.data if self.unit.journal is not None else None)

        def refuse(reason: str, message: str) -> dict[str, str]:
            rec = Record(T.SETTINGS_REFUSED, data={"reason": reason, "problem": message[:300],
                                                   **({"stick": stick} if stick else {})})
            self._call(lambda now: self._record(rec, now))
            self.log(f"ward settings from a stick refused: {message}")
            return {"outcome": "refused", "reason": reason, "message": message}

        if data is None:
            return refuse(settings.NO_SECRET, "the unit's data directory is not open; nothing is applied")
        from bedside.trust import keyring
        from bedside.trust.signed import VerifyError

        try:
            ring = keyring.load(self.keys_dir)
        except keyring.KeyringError as e:
            return refuse(settings.NO_KEYS, str(e))
        try:
            if ring is not None:
                # Pinned keys: only the ward authority's signature counts; a ward secret is never read.
                offer = settings.check_signed(raw.encode("utf-8"), ring, self.unit.cfg, data, datetime.now(UTC))
            else:
                try:
                    ward = secret.load(data)
                except secret.SecretError as e:
                    return refuse(settings.NO_SECRET, str(e))
                if ward is None:
                    return refuse(settings.NO_SECRET, "this unit has no pinned keys and no ward secret, so it "
                                  "cannot check the settings")
                offer = settings.check(raw.encode("utf-8"), ward.stick_key, self.unit.cfg, data)
        except settings.SettingsRefused as e:
            if e.reason == settings.OLDER and (settings.already_signed(raw.encode("utf-8"), data) if ring is not None
                                               else settings.already(raw.encode("utf-8"), data)):
                return {"outcome": "already", "message": "these settings are already applied on this unit"}
            return refuse(e.reason, str(e))
        except VerifyError as e:
            return refuse("failed", str(e))
        outcome = self._confirm({"title": "Ward settings?", "line1": offer.line1, "line2": offer.line2,
                                 "seconds": 60})
        if outcome != "confirmed":
            return refuse(settings.NOT_CONFIRMED, f"not applied: the change was {outcome} at the unit "
                          f"({offer.summary})")
        current = self.unit.cfg
        settings_before = settings.revoked(data)
        try:
            records = settings.apply(offer, data, current, stick)
        except OSError as e:
            return refuse("failed", f"the settings could not be written ({e.strerror or e}); nothing changed")
        new_cfg = offer.config

        def on_loop(now: Instant) -> bool:
            # The unit carries on with the new settings from its next step: no restart, no gap.
            before = settings_before
            revoked = offer.revoked is not None and any(set(offer.revoked.get(k, [])) - before.get(k, frozenset())
                                                        for k in offer.revoked)
            self.unit.reconfigure(new_cfg, offer.ward, now, revoked)
            for type_, body in records:
                self.unit.record(Record(type_, data=body), now)
            return self.unit.saved

        self._call(on_loop)
        self.log(f"ward settings applied: {offer.summary}")
        return {"outcome": "applied", "message": f"applied: {offer.summary}"}

    def observe(self, effect: Effect, now: Instant) -> None:
        """The unit's effects (an observer, on the loop): how a confirmation asked here ended."""
        if isinstance(effect, Decided) and effect.token in self._waiting:
            done, outcome = self._waiting[effect.token]
            outcome.append(effect.outcome)
            done.set()

    # --- on the loop ---------------------------------------------------------------------

    def _begin(self, device: str, now: Instant) -> list[Any] | None:
        """Seal first, so that the export ends with a seal; then show that it is under way."""
        u = self.unit
        u.seal(now)
        u.handle(StickExport("started", details={"device": device} if device else {}), now)
        head = u.head()
        return [head[0], head[1]] if head is not None else None

    def _done(self, details: dict[str, Any], now: Instant) -> bool:
        u = self.unit
        journal = u.journal
        to_seq, digest = details.get("to_seq"), details.get("to_hash")
        problem = None
        if journal is None:
            problem = "the journal could not be read to check the export"
        elif isinstance(to_seq, int) and isinstance(digest, str) and to_seq >= 1:
            try:
                rec = next(iter(journal.records(to_seq - 1)), None)
            except JournalError as e:
                rec, problem = None, f"the journal could not be read to check the export ({e})"
            if problem is None and (rec is None or rec["seq"] != to_seq or rec["hash"] != digest):
                problem = f"the stick's copy ends at record {to_seq}, which does not match the journal"
            elif problem is None:
                # Retention may one day delete what the stick holds, and only that (docs/journal.md).
                try:
                    retention.mark_exported(journal.data, to_seq, digest, f"stick {details.get('folder', '')}",
                                            now.wall)
                except OSError as e:
                    self.log(f"stick export: could not note the export for retention ({e.strerror})")
        if problem is not None:
            return self._ended(StickExport("failed", "journal", {**details, "problem": problem}), now)
        u.handle(Exported("stick", details), now)
        return u.saved

    def _ended(self, ev: StickExport, now: Instant) -> bool:
        self.unit.handle(ev, now)
        return self.unit.saved

    def _record(self, rec: Record, now: Instant) -> bool:
        self.unit.record(rec, now)
        return self.unit.saved


# --- the export process's end ------------------------------------------------------------

class ChannelClient:
    """One export's conversation with the daemon."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.rfile = sock.makefile("rb")

    @classmethod
    def connect(cls, path: Path = SOCKET, timeout: float = LOOP_TIMEOUT_S + 5) -> ChannelClient | None:
        """A connection to the running daemon, or None when no daemon listens there."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            return None
        except OSError as e:
            s.close()
            raise ChannelError(f"cannot reach the unit's daemon at {path}: {e.strerror}") from None
        return cls(s)

    def _ask(self, msg: dict[str, Any]) -> dict[str, Any]:
        try:
            self.sock.sendall(json.dumps({"v": VERSION, **msg}).encode() + b"\n")
            line = self.rfile.readline(MAX_LINE + 1)
        except OSError as e:
            raise ChannelError(f"the unit's daemon did not answer ({e.strerror or e})") from None
        if not line:
            raise ChannelError("the unit's daemon closed the connection (is it stopping?)")
        try:
            answer = json_loads(line)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ChannelError("the unit's daemon gave an answer this version does not understand")
        if not answer.get("ok"):
            raise ChannelError(f"the unit's daemon refused: {answer.get('error')}")
        return answer

    def begin(self, device: str) -> tuple[int, str] | None:
        head = self._ask({"op": "begin", "device": device}).get("head")
        return (int(head[0]), str(head[1])) if isinstance(head, list) and len(head) == 2 else None

    def end(self, stage: str, reason: str, details: Mapping[str, Any]) -> bool:
        """Report the outcome; True when the unit committed its record (False: kept in memory)."""
        return bool(self._ask({"op": "end", "stage": stage, "reason": reason, "details": dict(details)}).get("saved"))

    def confirm(self, title: str, line1: str, line2: str = "", seconds: float = 60.0) -> str:
        """Ask for a press at the unit: confirmed, cancelled, timeout, busy, superseded or withdrawn."""
        self.sock.settimeout(seconds + 2 * LOOP_TIMEOUT_S)
        answer = self._ask({"op": "confirm", "title": title, "line1": line1, "line2": line2, "seconds": seconds})
        return str(answer.get("outcome"))

    def settings(self, raw: bytes, stick: str, seconds: float = 60.0) -> dict[str, Any]:
        """Hand the stick's ward settings to the unit; how it ended (after the press, or none)."""
        self.sock.settimeout(seconds + 3 * LOOP_TIMEOUT_S)
        return self._ask({"op": "settings", "raw": raw.decode("utf-8", "replace"), "stick": stick})

    def record(self, type_: str, data: Mapping[str, Any]) -> bool:
        return bool(self._ask({"op": "record", "type": type_, "data": dict(data)}).get("saved"))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.rfile.close()
            self.sock.close()
