"""systemd's notification protocol against a real AF_UNIX datagram socket, and the watchdog
as the daemon's loop drives it: pings while healthy, none while the loop is stuck."""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import pytest

from bedside.core.config import Config, Hardware
from bedside.core.events import Instant
from bedside.display import device
from bedside.display.panel import DisplayKeeper
from bedside.journal.journal import Journal
from bedside.unit.clock import SystemClock, VirtualClock
from bedside.unit.loop import Outputs, Unit
from bedside.unit.sdnotify import Notifier
from bedside.unit.sounds import Player
from bedside.unit.supervise import Watchdog
from tests.rigs.fake_bus import Bus

# Pings and spins measured over real time: run alone, after the parallel part of `make test`.
pytestmark = pytest.mark.serial


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield path, sock
    sock.close()


def drain(sock: socket.socket, wait: float = 0.05, most: float = 1.0) -> list[str]:
    """What has arrived, until the socket is quiet for ``wait`` s (or ``most`` s have passed:
    a sender that never pauses must not hang the test)."""
    out = []
    sock.settimeout(wait)
    end = time.monotonic() + most
    while time.monotonic() < end:
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            break
    return out


def test_messages_arrive_as_single_datagrams(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    n = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"}, pid=1234)
    assert n.enabled and n.watchdog_interval == pytest.approx(15.0)
    assert n.ready("unit ward7 running")
    assert n.ping()
    assert n.stopping("stopping (SIGTERM)")
    assert [sock.recv(4096).decode() for _ in range(3)] == [
        "READY=1\nSTATUS=unit ward7 running", "WATCHDOG=1", "STOPPING=1\nSTATUS=stopping (SIGTERM)"]
    n.close()


def test_abstract_namespace_socket() -> None:
    name = f"bedside-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        n = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        assert n.ping()
        assert sock.recv(100) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_outside_systemd_nothing_is_sent_and_nothing_fails() -> None:
    n = Notifier.from_env({})
    assert not n.enabled and n.watchdog_interval is None
    assert n.ready("x") is False and not n.sent


def test_the_watchdog_belongs_to_the_process_systemd_named() -> None:
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "99"}
    assert Notifier.from_env(env, pid=99).watchdog_interval == pytest.approx(15.0)
    assert Notifier.from_env(env, pid=100).watchdog_interval is None
    assert Notifier.from_env({**env, "WATCHDOG_USEC": "soon"}, pid=99).watchdog_interval is None


def test_a_vanished_socket_is_reported_not_raised(tmp_path: Path) -> None:
    n = Notifier(str(tmp_path / "gone"))
    assert n.ping() is False
    assert n.error is not None and "FileNotFoundError" in n.error


def test_a_receiver_that_does_not_read_never_blocks_the_sender(listener: tuple[str, socket.socket]) -> None:
    path, _sock = listener
    n = Notifier(path)
    t0 = time.monotonic()
    results = [n.ping() for _ in range(500)]   # far beyond the socket's queue
    assert time.monotonic() - t0 < 2
    assert results[0] and not results[-1] and n.error is not None


# --- the watchdog in the loop ------------------------------------------------------------

class BlockingBus(Bus):
    """A fake I2C bus whose frame transfer can hang, as a wedged bus does."""

    def __init__(self) -> None:
        super().__init__()
        self.hang = threading.Event()
        self.released = threading.Event()
        self.hanging = threading.Event()

    def data(self, data: list[int]) -> None:
        if self.hang.is_set():
            self.hanging.set()
            self.released.wait(10)
        super().data(data)


def make_unit(tmp_path: Path, clock: Any, bus: Bus) -> tuple[Unit, Journal]:
    cfg = Config(awake_start=dtime(0, 0), awake_end=dtime(0, 0))  # awake around the clock
    journal = Journal(tmp_path / "data", cfg.tz, "boot")
    keeper = DisplayKeeper(lambda: device.build_display(Hardware(), serial_interface=bus), clock.mono)
    unit = Unit(cfg, clock, journal, Outputs(keeper, Player(lambda f: None)), boot="boot")
    unit.add_source(keeper)
    return unit, journal


def test_pings_stop_while_the_loop_is_stuck_and_resume_after(tmp_path: Path,
                                                            listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    bus = BlockingBus()
    unit, journal = make_unit(tmp_path, SystemClock(), bus)
    dog = Watchdog(unit, Notifier(path), 0.05)
    unit.add_source(dog)
    unit.start()
    loop = threading.Thread(target=unit.run, daemon=True)
    loop.start()
    try:
        time.sleep(0.4)
        assert drain(sock).count("WATCHDOG=1") >= 2
        # A press makes the loop draw the progress screen; the transfer hangs.
        bus.hang.set()
        from bedside.core.events import ButtonEdge

        unit.post(ButtonEdge(True))
        time.sleep(0.1)
        unit.post(ButtonEdge(False))
        assert bus.hanging.wait(5)
        drain(sock)
        time.sleep(0.4)
        assert drain(sock) == []           # stuck: not one ping
        bus.hang.clear()
        bus.released.set()
        time.sleep(0.4)
        assert drain(sock).count("WATCHDOG=1") >= 2
    finally:
        bus.released.set()
        unit.request_stop("test")
        loop.join(5)
        journal.close()
    assert unit.stopped == "test"


def test_pings_stop_while_the_loop_spins(tmp_path: Path, listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    unit, journal = make_unit(tmp_path, SystemClock(), Bus())

    class Spinner:
        """A timed source whose deadline is always past (a bug that would spin the loop)."""

        on = False

        def deadline(self) -> float | None:
            return float("-inf") if self.on else None

        def fire(self, now: Instant) -> None:
            pass

    spinner = Spinner()
    dog = Watchdog(unit, Notifier(path), 0.05, log=open(os.devnull, "w"))  # noqa: SIM115
    unit.add_source(spinner)
    unit.add_source(dog)
    unit.start()
    loop = threading.Thread(target=unit.run, daemon=True)
    loop.start()
    try:
        time.sleep(0.3)
        assert "WATCHDOG=1" in drain(sock)
        spinner.on = True
        time.sleep(0.1)
        drain(sock)
        time.sleep(0.3)
        got = drain(sock)
        assert "WATCHDOG=1" not in got
        assert any(m.startswith("STATUS=unhealthy: loop: woke") for m in got) or dog.withheld
        # Told once, not at every interval while it goes on.
        assert sum(m.startswith("STATUS=unhealthy") for m in got) <= 1
    finally:
        spinner.on = False
        unit.request_stop("test")
        loop.join(5)
        journal.close()


def test_a_flood_of_inputs_is_work_not_a_spin(tmp_path: Path, listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    unit, journal = make_unit(tmp_path, SystemClock(), Bus())
    dog = Watchdog(unit, Notifier(path), 0.05, log=open(os.devnull, "w"))  # noqa: SIM115
    unit.add_source(dog)
    unit.start()
    loop = threading.Thread(target=unit.run, daemon=True)
    loop.start()
    try:
        from bedside.core.events import Tick

        end = time.monotonic() + 0.4
        while time.monotonic() < end:     # far more inputs a second than any timer could cause
            for _ in range(50):
                unit.post(Tick())
            time.sleep(0.002)
        time.sleep(0.1)
        assert "WATCHDOG=1" in drain(sock)
        assert not dog.withheld
        # Many more inputs than the spin limit allows timer wake-ups (even under qemu).
        assert unit.wakeups - unit.timer_wakeups > 10 * dog.MAX_TIMER_WAKEUPS_PER_S * 0.4
    finally:
        unit.request_stop("test")
        loop.join(5)
        journal.close()


def test_a_journal_that_cannot_commit_does_not_stop_the_pings(tmp_path: Path) -> None:
    """The store retries (reopening the database each time) and holds the records; a restart
    would add nothing but lose them, and on a full card it would loop. Only retries that are
    not being run withhold the ping."""
    start = datetime.fromisoformat("2026-11-24T06:50").replace(tzinfo=Config().tz)
    clock = VirtualClock(start)
    unit, journal = make_unit(tmp_path, clock, Bus())

    class Recorder(Notifier):
        """Notes each message's virtual time (the socket itself is tested above; virtual
        time outruns any real socket's queue)."""

        def __init__(self) -> None:
            super().__init__(None)
            self.log: list[tuple[datetime, str]] = []

        def notify(self, *lines: str) -> bool:
            self.log.append((clock.now().wall, "\n".join(lines)))
            return True

    rec = Recorder()
    dog = Watchdog(unit, rec, 10.0, log=open(os.devnull, "w"))  # noqa: SIM115
    unit.add_source(dog)
    unit.start()
    unit.run(until=start.replace(minute=55))
    assert not dog.withheld
    assert journal.db is not None
    journal.db.close()
    journal.path = tmp_path / "card-gone" / journal.path.name   # every write and reopen now fails
    unit.stopped = None
    unit.run(until=start.replace(hour=7, minute=5))   # the 07:00 prompt cannot be committed
    assert unit.unsaved and unit.journal_error
    assert not dog.withheld
    pings = [t for t, m in rec.log if m == "WATCHDOG=1"]
    assert all(b - a <= timedelta(seconds=10.01) for a, b in itertools.pairwise(pings))
    assert pings[-1].astimezone(Config().tz) >= start.replace(hour=7, minute=4, second=50)
    # Retries that stop being run (a loop that no longer reaches them) withhold the ping.
    now = clock.now()
    assert unit.store.retry_at is not None
    unit.store.retry_at = now.mono - 1000
    assert dog.unhealthy(now)[0].startswith("journal: ")


def test_watchdog_interval_fits_the_service_file() -> None:
    """Pings ride on the loop's own wake-ups, at most WatchdogSec/2 apart: the loop's longest
    sleep must fit inside that (so the watchdog adds no wake-up), and a hung loop is still
    restarted within ten minutes, inside the 30 minutes a prompt stays open."""
    from bedside.core.state import MAX_SLEEP_S
    from tests.conftest import ROOT

    text = (ROOT / "systemd" / "bedside.service").read_text()
    line = next(x for x in text.splitlines() if x.startswith("WatchdogSec="))
    seconds = int(line.split("=")[1].rstrip("s"))
    assert 60 <= seconds <= 600
    n = Notifier.from_env({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": str(seconds * 10**6)})
    assert n.watchdog_interval is not None and n.watchdog_interval >= MAX_SLEEP_S


def test_the_notifier_keeps_only_its_newest_messages(listener: tuple[str, socket.socket]) -> None:
    # A ping every few minutes for months: a list of every message sent grew for ever.
    path, sock = listener
    n = Notifier(path)
    for i in range(200):
        assert n.status(f"ping {i}")
        if i % 5 == 4:
            drain(sock, wait=0.01)     # the socket queues ten datagrams at most
    assert len(n.sent) <= 16 and n.sent[-1] == "STATUS=ping 199"
