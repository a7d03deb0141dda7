"""Serving a built unit: what ``bedside run`` and ``bedside simulate`` do around the loop.

A unit serves while it holds its data directory's lock (one writer per journal, simulated
or not), stops cleanly on SIGTERM, SIGINT and SIGHUP, and, once its loop has started,
serves the nurse link on its serial port and any listeners it was given (the stick
channel); when the loop ends they stop in the reverse order. ``run_on_pi`` is all of it for
a Pi under systemd.

The stick channel is a listener passed in, not built here: the stick wing uses the unit
(an export needs a unit's journal and the offline writer), so the unit does not import it.
The command line, which may import both, hands ``stick.channel.listen`` in.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Protocol

from bedside import __version__
from bedside.core.config import Config
from bedside.core.errors import BedsideError
from bedside.link.unit_port import UnitPort
from bedside.unit import host
from bedside.unit import pins as hardware
from bedside.unit.loop import Unit

Say = Callable[[str], None]


class Service(Protocol):
    """Something serving the unit from a thread of its own, stopped when the unit stops."""

    def stop(self) -> None: ...


# Started once the unit has started, given where its messages and faults go; None when it
# has nothing to serve or could not start (it says why: prompting never depends on a listener).
Listener = Callable[[UnitPort, Say, Say], Service | None]


class CannotServe(BedsideError):
    """The unit cannot serve here; the message says why and what to do."""


class NoHardware(CannotServe):
    """No Raspberry Pi GPIO header, no other board named ([hardware] board) and no gpiozero pin
    factory chosen instead."""


def lock(data: Path, say: Say) -> IO[bytes] | None:
    """The data directory's lock, held while the unit runs; None when the card cannot be
    written (the unit runs anyway and its journal shows the fault)."""
    try:
        return host.lock_data_dir(data)
    except host.DataDirBusy as e:
        raise CannotServe(str(e)) from None
    except OSError as e:
        if e.errno not in (errno.EROFS, errno.ENOSPC, errno.EIO):
            raise CannotServe(f"cannot use the data directory {data}: {e.strerror}") from None
        # A card that cannot be written must not stop the prompts (nor make systemd restart us
        # in a loop): no second daemon can write it either.
        say(f"cannot lock {data} ({e.strerror}); running, the journal will show the fault")
        return None


def stop_on_signals(unit: Unit) -> None:
    """SIGTERM, SIGINT (Ctrl-C) and SIGHUP stop the unit cleanly, with a ``stop`` record.

    Set explicitly, so that a unit or simulator started with SIGINT ignored (nohup, a
    background job, some CI runners) still stops when asked. The handler only hands the
    request to a short thread: the inbox's lock may be held by the very code the signal
    interrupted, and taking it again here would hang."""
    def handler(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        threading.Thread(target=unit.request_stop, args=(name,), name="stop-on-signal", daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, handler)


def serial_link(unit: Unit, data: Path, port: str, baud: int, say: Say, warn: Say) -> Service | None:
    """Serve the nurse link on ``port`` (nothing when it is empty), once the unit has started."""
    if not port:
        return None
    from bedside import secret
    from bedside.link.on_loop import LinkService
    from bedside.link.port import SerialLink
    from bedside.trust import keyring

    ward = None
    ring_problem = None
    try:
        ring = keyring.load()
    except keyring.KeyringError as e:
        # Never back to a ward secret: a keyring once pinned is trusted or nothing is.
        ring, ring_problem = None, e
        warn(f"{e}; the serial link stays locked")
    if ring is None and ring_problem is None:
        try:
            ward = secret.load(data)
        except secret.SecretError as e:
            warn(f"{e}; the serial link stays locked")
        if ward is None:
            warn("no keys pinned (bedside trust pin) and no ward secret set: the serial link cannot be unlocked")
    svc = LinkService(unit, ward, ring)
    svc.attach(unit.clock.now())
    link = SerialLink(unit, svc, port, baud, ward=ward, log=say, warn=warn)
    link.start()
    return link


@contextlib.contextmanager
def serving(unit: Unit, data: Path, *, port: str, baud: int, listeners: Sequence[Listener] = (),
            say: Say, warn: Say) -> Iterator[None]:
    """The unit started (its ``start`` record), then its nurse link and listeners; on leaving,
    whatever started stops, in the reverse order."""
    stop_on_signals(unit)
    started: list[Service] = []
    try:
        unit.start()
        link = serial_link(unit, data, port, baud, say, warn)
        if link is not None:
            started.append(link)
        for begin in listeners:
            service = begin(unit, say, warn)
            if service is not None:
                started.append(service)
        yield
    finally:
        for service in reversed(started):
            service.stop()


def run_on_pi(cfg: Config, data: Path, *, port: str, listeners: Sequence[Listener] = ()) -> str:
    """``bedside run``: the unit on a Pi's own parts (``wiring.on_pi``) under its data
    directory's lock, telling systemd when it is ready and stopping; returns why it stopped."""
    from bedside.unit import wiring
    from bedside.unit.systemlog import SystemLog

    # Under systemd each line carries its priority: journalctl -u bedside -p warning shows the faults.
    log = SystemLog()
    model = hardware.pi_model()
    board = cfg.hardware.board
    if model is None and not board and not hardware.pins_chosen_explicitly():
        raise NoHardware("this computer has no Raspberry Pi GPIO header (/proc/device-tree/model does not name one)")
    if board:
        # The named board's chip, found before anything else is built: a wrong name is the fault.
        hardware.header_chip(cfg.hardware.gpio_chip)
    held = lock(data, log.err)
    try:
        wired, notifier = wiring.on_pi(cfg, data, warn=log.warning, err=log.err)
    except BaseException:
        if held is not None:
            held.close()
        raise
    where = f"{board} ({cfg.hardware.gpio_chip})" if board else (model or "GPIO")
    log.info(f"version {__version__}, unit {cfg.unit_id} on {where}, config {cfg.source}, data {data}")
    for warning in cfg.warnings:
        log.warning(f"config {cfg.source}: {warning}")
    for problem in cfg.refused:
        log.err(problem)
    reason = "error"
    try:
        with serving(wired.unit, data, port=port, baud=cfg.serial.baud, listeners=listeners,
                     say=log.notice, warn=log.warning):
            notifier.ready(f"unit {cfg.unit_id} running")
            reason = wired.unit.run()
    finally:
        notifier.stopping(f"stopping ({reason})")
        wired.close()
        if held is not None:
            held.close()
        notifier.close()
    log.notice(f"stopped ({reason})")
    return reason
