"""systemd's service notification protocol (sd_notify), in the few lines it takes.

The daemon runs as ``Type=notify``: systemd passes a datagram socket in ``$NOTIFY_SOCKET``
and, with ``WatchdogSec=``, the watchdog period in ``$WATCHDOG_USEC``. Each message is
one datagram of ``KEY=value`` lines (``READY=1``, ``STATUS=...``, ``WATCHDOG=1``,
``STOPPING=1``). Written here rather than pulled in as a dependency: it is a socket and a
string. Outside systemd (a laptop, the simulator, tests) every call does nothing.
"""

from __future__ import annotations

import collections
import os
import socket
from collections.abc import Mapping

SENT_KEPT = 16      # the newest messages, for tests and diagnosis: every ping would grow a list for ever


class Notifier:
    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        # A leading "@" names a socket in the abstract namespace (a NUL byte on the wire).
        self.address = "\0" + address[1:] if address and address.startswith("@") else address
        self.watchdog_usec = watchdog_usec
        self.sent: collections.deque[str] = collections.deque(maxlen=SENT_KEPT)
        self.error: str | None = None
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, pid: int | None = None) -> Notifier:
        """The notifier systemd asked for, or one that does nothing when not run by systemd."""
        env = os.environ if env is None else env
        pid = os.getpid() if pid is None else pid
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        try:
            usec = int(env.get("WATCHDOG_USEC", "")) or None
        except ValueError:
            usec = None
        # WATCHDOG_PID names the process the watchdog is for; a child must not ping for it.
        wpid = env.get("WATCHDOG_PID")
        if usec is not None and wpid and wpid != str(pid):
            usec = None
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """The longest gap between pings: half the period, so one slow wake-up never costs a restart."""
        return self.watchdog_usec / 2e6 if self.watchdog_usec else None

    def notify(self, *lines: str) -> bool:
        """Send one message; False (and ``error`` set) if it could not be delivered."""
        if self.address is None:
            return False
        text = "\n".join(lines)
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # Never block the loop on a receiver that is not reading: a lost ping is
                # better than a frozen unit (and a full queue is systemd's problem to report).
                self._sock.setblocking(False)
            self._sock.sendto(text.encode("utf-8"), self.address)
        except OSError as e:
            # systemd going away must never take the unit down with it.
            self.error = f"{type(e).__name__}: {e}"
            return False
        self.error = None
        self.sent.append(text)
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={status}")

    def ping(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str) -> bool:
        return self.notify("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
