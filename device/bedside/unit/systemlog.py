"""The daemon's lines for the system log, with their priorities when journald reads them.

Under systemd the daemon's standard error is a stream into journald, which says so in
``$JOURNAL_STREAM`` (``device:inode`` of that stream). journald then reads a leading ``<N>``
on each line as its syslog priority (sd-daemon(3)), so ``journalctl -u bedside -p warning``
shows the faults and nothing else. Anywhere else (a terminal, a test, a pipe) the prefix
would only be noise, so it is written only when the stream is the one journald named:
a child whose standard error was redirected inherits the variable but not the stream.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import IO

# The syslog priorities the daemon uses (sd-daemon.h's SD_ERR ... SD_INFO).
ERR, WARNING, NOTICE, INFO = 3, 4, 5, 6


def is_journal(stream: IO[str], env: Mapping[str, str] | None = None) -> bool:
    """True when ``stream`` is the journald stream ``$JOURNAL_STREAM`` names."""
    value = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(part) for part in value.split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


class SystemLog:
    """Writes ``bedside: message`` lines to ``stream`` (standard error by default)."""

    def __init__(self, stream: IO[str] | None = None, env: Mapping[str, str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.prefixed = is_journal(self.stream, env)

    def __call__(self, message: str, priority: int = INFO) -> None:
        prefix = f"<{priority}>" if self.prefixed else ""
        # One line per write: a message with a newline must not leave a line without priority.
        text = "".join(f"{prefix}bedside: {line}\n" for line in message.splitlines() or [""])
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass      # the log going away must never take the unit down with it

    def err(self, message: str) -> None:
        self(message, ERR)

    def warning(self, message: str) -> None:
        self(message, WARNING)

    def notice(self, message: str) -> None:
        self(message, NOTICE)

    def info(self, message: str) -> None:
        self(message, INFO)
