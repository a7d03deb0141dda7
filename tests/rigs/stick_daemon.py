"""The running daemon for a stick's tests: the real loop in a thread (mock pins, virtual clock
at real speed, the week's config) with its stick channel on a real Unix socket, and
``bedside stick export`` as a real subprocess against it."""

from __future__ import annotations

import subprocess
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from bedside.core import screens as sc
from bedside.core.events import Effect, Instant, Led, Show
from bedside.stick.channel import StickChannel
from bedside.unit import host, simulate
from tests.conftest import DATA
from tests.rigs.cli import run

CFG = host.load(DATA / "week.toml")


class Daemon:
    """The unit's loop in a thread, listening on a stick channel; every screen and light it shows is kept."""

    def __init__(self, data: Path, sock: Path, start: str) -> None:
        self.data = data
        self.sock = sock
        self.start_at = datetime.fromisoformat(start).replace(tzinfo=CFG.tz)
        self.screens: list[Any] = []
        self.leds: list[str] = []
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.sim: Any = None
        self.channel: StickChannel | None = None
        self.logs: list[str] = []
        self.thread = threading.Thread(target=self._main, daemon=True)

    def _observe(self, fx: Effect, now: Instant) -> None:
        if isinstance(fx, Show) and (not self.screens or self.screens[-1] != fx.screen):
            self.screens.append(fx.screen)
        elif isinstance(fx, Led) and (not self.leds or self.leds[-1] != fx.mode):
            self.leds.append(fx.mode)

    def _main(self) -> None:
        try:
            self.sim = simulate.build(CFG, self.data, self.start_at, speed=1.0, observers=[self._observe])
            self.sim.unit.start()
            self.channel = StickChannel(self.sim.unit, self.sock, self.logs.append)
            self.channel.start()
            self.ready.set()
            self.sim.unit.run()
        except BaseException as e:   # surfaced by the test
            self.error = e
            self.ready.set()
        finally:
            if self.channel is not None:
                self.channel.stop()
            if self.sim is not None:
                self.sim.close()

    def __enter__(self) -> Daemon:
        self.thread.start()
        assert self.ready.wait(20) and self.error is None, self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self.thread.is_alive():
            self.sim.unit.request_stop("test over")
            self.thread.join(10)
        if self.error is not None:
            raise self.error

    def stick_screens(self) -> list[sc.Stick]:
        return [s for s in self.screens if isinstance(s, sc.Stick)]


def export(mnt: Path, data: Path, sock: Path) -> subprocess.CompletedProcess[str]:
    return run("stick", "export", str(mnt), "--data", str(data), "--socket", str(sock),
               "--config", str(DATA / "week.toml"))


def question(d: Daemon, title: str = "Ward settings?") -> sc.Confirm:
    """The question titled ``title`` once the daemon's display shows it (within a minute)."""
    end = time.monotonic() + 60
    while time.monotonic() < end:
        shown = [s for s in d.screens if isinstance(s, sc.Confirm) and s.title == title]
        if shown:
            return shown[-1]
        time.sleep(0.05)
    raise AssertionError(f"no question on the display: {d.screens[-5:]}")


def press(d: Daemon, seconds: float) -> None:
    """The patient's (or the nurse's) finger on the daemon's button for ``seconds``."""
    pin = d.sim.button_pin
    pin.drive_low()
    time.sleep(seconds)
    pin.drive_high()
