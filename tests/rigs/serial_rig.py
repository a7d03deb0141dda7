"""Test rig for the serial link: real pty pairs, a cable that can be pulled and made noisy,
and the real daemon running in a thread on simulated pins and a virtual clock.

``Cable`` joins two pty pairs with a relay thread: the unit opens one stable path, the
laptop the other (symlinks, like a udev name), so a cable can be pulled (both masters
closed: each side's reads and writes fail as on a real unplug) and plugged in again (new
ptys behind the same paths). The relay can drop, flip and duplicate bytes on the way.
"""

from __future__ import annotations

import contextlib
import os
import random
import select
import threading
import time
import tty
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from bedside import secret
from bedside.core import config
from bedside.journal.journal import Journal
from bedside.link.on_loop import LinkService
from bedside.link.port import SerialLink
from bedside.unit import simulate

SECRET = "correct horse battery"


def cheap_ward(data: Path, value: str = SECRET, n: int = 16) -> secret.WardSecret:
    """A ward secret with a tiny scrypt cost, so tests do not spend seconds hashing (same code path).

    The laptop refuses to answer a cost below the unit's own: an in-process test that unlocks
    with the laptop's code uses the ``cheap_kdf`` fixture (tests/conftest.py); one that runs ``bedside pull`` as a
    process of its own makes its ward with ``n=secret.N``."""
    import hashlib
    import json

    salt = os.urandom(16)
    r, p = 8, 1
    unlock = hashlib.scrypt(value.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    # The stick key is not used by the serial link; a stand-in keeps the file complete.
    ws = secret.WardSecret(salt, unlock, hashlib.sha256(value.encode()).digest(), n, r, p)
    data.mkdir(parents=True, exist_ok=True)
    (data / secret.FILE_NAME).write_text(json.dumps({
        "version": 1, "kdf": "scrypt", "n": n, "r": r, "p": p, "salt": salt.hex(), "unlock": unlock.hex(),
        "stick_key": ws.stick_key.hex()}))
    return ws


class Cable:
    def __init__(self, folder: Path, seed: int = 1, baud: int | None = None) -> None:
        self.baud = baud                            # emulate a UART's speed (ptys have none)
        self.unit_path = folder / "unit-port"
        self.laptop_path = folder / "laptop-port"
        self.rng = random.Random(seed)
        self.drop = self.flip = self.dup = 0.0      # per chunk probabilities
        self.to_laptop = 0
        self.to_unit = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._fds: list[int] = []
        self.masters: tuple[int, int] | None = None

    def plug(self) -> Cable:
        ma, sa = os.openpty()
        mb, sb = os.openpty()
        for fd in (sa, sb):
            tty.setraw(fd)
        self._fds = [ma, sa, mb, sb]
        self.masters = (ma, mb)
        for link, slave in ((self.unit_path, sa), (self.laptop_path, sb)):
            tmp = link.with_name(link.name + ".new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(os.ttyname(slave))
            tmp.replace(link)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._relay, args=(ma, mb, self._stop), daemon=True)
        self._thread.start()
        return self

    def unplug(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []
        self.unit_path.unlink(missing_ok=True)
        self.laptop_path.unlink(missing_ok=True)

    def _mangle(self, data: bytes) -> bytes:
        r = self.rng
        if self.drop and r.random() < self.drop:
            i = r.randrange(len(data))
            data = data[:i] + data[i + r.randint(1, 40):]
        if self.flip and data and r.random() < self.flip:
            i = r.randrange(len(data))
            data = data[:i] + bytes([data[i] ^ (1 << r.randrange(8))]) + data[i + 1:]
        if self.dup and data and r.random() < self.dup:
            i = r.randrange(len(data))
            data = data[:i] + data[i:i + r.randint(1, 40)] + data[i:]
        return data

    def _relay(self, ma: int, mb: int, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                ready, _, _ = select.select([ma, mb], [], [], 0.05)
                for fd in ready:
                    data = os.read(fd, 1024 if self.baud else 4096)
                    data = self._mangle(data)
                    other = mb if fd == ma else ma
                    if fd == ma:
                        self.to_laptop += len(data)
                    else:
                        self.to_unit += len(data)
                    if self.baud:
                        time.sleep(len(data) * 10 / self.baud)    # 8N1: ten bits a byte
                    while data:
                        n = os.write(other, data)
                        data = data[n:]
            except OSError:
                time.sleep(0.01)


class Laptop:
    """The test's own raw terminal on the laptop end (no pyserial): what a person types and sees."""

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self.seen = b""

    def type(self, text: str | bytes) -> None:
        os.write(self.fd, text.encode() if isinstance(text, str) else text)

    def read_until(self, marker: bytes, timeout: float = 5.0) -> bytes:
        end = time.monotonic() + timeout
        start = len(self.seen)
        while marker not in self.seen[start:] and time.monotonic() < end:
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    self.seen += os.read(self.fd, 65536)
                except OSError:
                    break
        return self.seen[start:]

    def quiet(self, seconds: float = 0.3) -> bytes:
        """Everything that arrives within ``seconds``."""
        return self.read_until(b"\0never\0", seconds)

    def say(self, line: str, timeout: float = 5.0) -> str:
        """Type a command and return the answer up to the next prompt."""
        self.type(line + "\r")
        return self.read_until(b"> ", timeout).decode("utf-8", "replace")

    def close(self) -> None:
        os.close(self.fd)


class RunningUnit:
    """The daemon on mock pins in its own thread (the loop owns its SQLite connection, as on a Pi)."""

    def __init__(self, data: Path, port: Path | str, start: datetime, *, speed: float = 1.0,
                 cfg: config.Config | None = None, ward: secret.WardSecret | None = None,
                 fault_after_s: float = 60.0, actions: list[simulate.Action] | None = None,
                 ring: Any = None) -> None:
        self.cfg = cfg or config.Config()
        self.data = data
        self.port = str(port)
        self.start_at = start
        self.speed = speed
        self.ward = ward
        self.ring = ring                   # pinned keys (tests/rigs/trust_rig.py): laptop keys unlock
        self.fault_after_s = fault_after_s
        self.actions = actions
        self.logs: list[str] = []
        self.ready = threading.Event()
        self.sim: Any = None
        self.link: SerialLink | None = None
        self.svc: LinkService | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="unit-loop", daemon=True)

    def __enter__(self) -> RunningUnit:
        self.thread.start()
        assert self.ready.wait(10), "the unit did not start"
        if self.error is None and os.path.exists(self.port):
            # pyserial empties the input buffer when it opens a port: type only once it is open.
            wait_for(lambda: self.link is not None and self.link.connections >= 1, timeout=15,
                     what="the unit to open its port")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        try:
            self.sim = simulate.build(self.cfg, self.data, self.start_at, speed=self.speed, actions=self.actions)
            self.sim.unit.start()
            self.svc = LinkService(self.sim.unit, self.ward, self.ring)
            self.svc.attach(self.sim.clock.now())
            self.link = SerialLink(self.sim.unit, self.svc, self.port, self.cfg.serial.baud, ward=self.ward,
                                   log=self.logs.append, fault_after_s=self.fault_after_s, retry_s=(0.1,))
            self.link.start()
            self.ready.set()
            self.sim.unit.run()
        except BaseException as e:   # surfaced by the test
            self.error = e
            self.ready.set()
        finally:
            if self.link is not None:
                self.link.stop()
            if self.sim is not None:
                self.sim.close()

    def press(self, seconds: float = 0.3) -> None:
        self.sim.finger.keys.put(seconds)
        simulate.wake(self.sim.unit)

    def on_loop(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(now)`` on the unit's loop and return its result."""
        return self.sim.unit.call(fn, 10)

    def stop(self) -> None:
        if self.thread.is_alive():
            self.sim.unit.request_stop("test over")
            self.thread.join(10)
        if self.error is not None:
            raise self.error

    def records(self) -> list[dict[str, Any]]:
        j = Journal(self.data, self.cfg.tz, "reader", readonly=True)
        try:
            return list(j.records())
        finally:
            j.close()

    def types(self) -> list[str]:
        return [r["type"] for r in self.records()]


def wait_for(cond: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def unit_with_days(d: Path, start: datetime, until: datetime, segment_bytes: int | None = None) -> Path:
    """A unit's data directory with its default regimen run from ``start`` to ``until`` (a
    ward secret at the unit's own cost, so ``bedside pull`` as a process answers it)."""
    cheap_ward(d, n=secret.N)
    sim = simulate.build(config.Config(), d, start)
    if segment_bytes is not None:
        sim.unit.store.segment_bytes = segment_bytes
    sim.unit.run(until=until)
    sim.close()
    return d
