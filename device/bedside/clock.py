"""Clocks for the shell: the system's, and a virtual one for simulation.

Both give an ``Instant`` (wall + monotonic) and block until an input arrives or a
monotonic deadline passes. The virtual clock either follows real time scaled by a speed
factor or, with no speed, jumps straight to the next deadline (no sleeping, no polling).
"""

from __future__ import annotations

import queue
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from .events import Instant


class Clock(Protocol):
    def now(self) -> Instant: ...

    def at(self, mono: float) -> Instant:
        """The instant at an earlier monotonic reading (inputs are stamped when they happen)."""
        ...

    def wait(self, inbox: queue.Queue[Any], until: float) -> Any | None:
        """The next input, or None once monotonic time reaches ``until``."""
        ...


class SystemClock:
    def now(self) -> Instant:
        return Instant(datetime.now(UTC), time.monotonic())

    def mono(self) -> float:
        return time.monotonic()

    def set_wall(self, wall: datetime) -> None:
        """Set the system clock (needs CAP_SYS_TIME), and a real-time clock if there is one."""
        try:
            time.clock_settime(time.CLOCK_REALTIME, wall.timestamp())
        except PermissionError:
            raise PermissionError("the daemon may not set the system clock (it needs CAP_SYS_TIME)") from None
        if Path("/sys/class/rtc/rtc0").exists() and shutil.which("hwclock"):
            # Keep a battery-backed clock in step so the next boot starts right; best effort.
            subprocess.run(["hwclock", "--systohc", "--utc"], capture_output=True, timeout=20, check=False)

    def at(self, mono: float) -> Instant:
        now = self.now()
        return Instant(now.wall - timedelta(seconds=now.mono - mono), mono)

    def wait(self, inbox: queue.Queue[Any], until: float) -> Any | None:
        timeout = until - time.monotonic()
        try:
            if timeout <= 0:
                return inbox.get_nowait()
            return inbox.get(timeout=timeout)
        except queue.Empty:
            return None


class VirtualClock:
    """Simulated time starting at ``start``; ``speed`` None jumps from deadline to deadline."""

    def __init__(self, start: datetime, speed: float | None = None, mono0: float = 1000.0) -> None:
        self.speed = speed
        self._mono = mono0
        self._offset = start.astimezone(UTC) - datetime.fromtimestamp(0, UTC) - timedelta(seconds=mono0)
        self._real0 = time.monotonic()
        self._virt0 = mono0

    def mono(self) -> float:
        if self.speed is not None:
            return self._virt0 + (time.monotonic() - self._real0) * self.speed
        return self._mono

    def _wall(self, mono: float) -> datetime:
        return datetime.fromtimestamp(0, UTC) + self._offset + timedelta(seconds=mono)

    def now(self) -> Instant:
        m = self.mono()
        return Instant(self._wall(m), m)

    def at(self, mono: float) -> Instant:
        return Instant(self._wall(mono), mono)

    def set_wall(self, wall: datetime) -> None:
        """Set the simulated wall clock (as a nurse or NTP would); monotonic time is untouched."""
        m = self.mono()
        self._offset = wall.astimezone(UTC) - datetime.fromtimestamp(0, UTC) - timedelta(seconds=m)

    def set_speed(self, speed: float | None) -> None:
        m = self.mono()
        self._mono = self._virt0 = m
        self._real0 = time.monotonic()
        self.speed = speed

    def skip(self, seconds: float) -> None:
        """Move virtual time on by ``seconds`` at once (any speed); wall and monotonic move together."""
        if self.speed is None:
            self._mono += seconds
        else:
            self._virt0 += seconds

    def advance_to(self, mono: float) -> None:
        if self.speed is None and mono > self._mono:
            self._mono = mono

    def wait(self, inbox: queue.Queue[Any], until: float) -> Any | None:
        try:
            return inbox.get_nowait()
        except queue.Empty:
            pass
        if self.speed is None:
            self.advance_to(until)
            return None
        timeout = (until - self.mono()) / self.speed
        try:
            return inbox.get(timeout=max(0.0, timeout)) if timeout > 0 else None
        except queue.Empty:
            return None
