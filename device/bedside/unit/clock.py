"""Clocks for the shell: the system's, and a virtual one for simulation.

Both give an ``Instant`` (wall + monotonic) and block until an input arrives or a
monotonic deadline passes. The virtual clock either follows real time scaled by a speed
factor or, with no speed, jumps straight to the next deadline (no sleeping, no polling).
"""

from __future__ import annotations

import os
import queue
import struct
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from bedside.core.events import Instant


class Clock(Protocol):
    def now(self) -> Instant: ...

    def at(self, mono: float) -> Instant:
        """The instant at an earlier monotonic reading (inputs are stamped when they happen)."""
        ...

    def wait(self, inbox: queue.Queue[Any], until: float) -> Any | None:
        """The next input, or None once monotonic time reaches ``until``."""
        ...


# ioctl RTC_SET_TIME = _IOW('p', 0x0a, struct rtc_time), where struct rtc_time is nine ints.
RTC_SET_TIME = (1 << 30) | (struct.calcsize("9i") << 16) | (ord("p") << 8) | 0x0A
RTC_DEVICE = Path("/dev/rtc0")


def rtc_time(wall: datetime) -> bytes:
    """``struct rtc_time`` for a UTC instant (the Pi keeps its RTC in UTC)."""
    t = wall.astimezone(UTC)
    return struct.pack("9i", t.second, t.minute, t.hour, t.day, t.month - 1, t.year - 1900,
                       (t.weekday() + 1) % 7, t.timetuple().tm_yday - 1, 0)


def write_rtc(wall: datetime, device: Path = RTC_DEVICE) -> bool:
    """Set the real-time clock directly (no hwclock, which Bookworm packages separately)."""
    import fcntl

    try:
        fd = os.open(device, os.O_RDONLY)
    except OSError:
        return False          # no RTC fitted, or no access: the system clock is still set
    try:
        fcntl.ioctl(fd, RTC_SET_TIME, rtc_time(wall))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


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
        # Keep a battery-backed clock in step so the next boot starts right; best effort
        # (the kernel only does this by itself while NTP is synchronised, never on a ward).
        write_rtc(wall)

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
        self.base = start.astimezone(UTC) - timedelta(seconds=mono0)   # the wall time at mono 0
        self._real0 = time.monotonic()
        self._virt0 = mono0
        self._last: Instant | None = None      # the loop asks several times a turn at one instant

    def mono(self) -> float:
        if self.speed is not None:
            return self._virt0 + (time.monotonic() - self._real0) * self.speed
        return self._mono

    def _wall(self, mono: float) -> datetime:
        return self.base + timedelta(seconds=mono)

    def mono_of(self, wall: datetime) -> float:
        """The monotonic time at which the simulated wall clock shows ``wall`` (if not set meanwhile)."""
        return (wall - self.base).total_seconds()

    def now(self) -> Instant:
        return self.at(self.mono())

    def at(self, mono: float) -> Instant:
        last = self._last
        if last is not None and last.mono == mono:
            return last
        self._last = last = Instant(self._wall(mono), mono)
        return last

    def set_wall(self, wall: datetime) -> None:
        """Set the simulated wall clock (as a nurse or NTP would); monotonic time is untouched."""
        m = self.mono()
        self.base = wall.astimezone(UTC) - timedelta(seconds=m)
        self._last = None

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
        if inbox.qsize():
            # The loop is the inbox's one reader: what is there stays there until it takes it.
            return inbox.get_nowait()
        if self.speed is None:
            self.advance_to(until)
            return None
        timeout = (until - self.mono()) / self.speed
        try:
            return inbox.get(timeout=max(0.0, timeout)) if timeout > 0 else None
        except queue.Empty:
            return None
