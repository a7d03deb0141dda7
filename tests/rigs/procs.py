"""Child processes that tests start: always killed and reaped, whatever way the test ends.

A test that fails, times out or is interrupted must not leave a ``bedside simulate`` running
for ever. ``child`` starts the process in its own session (so a Ctrl-C at the test's terminal
reaches only pytest, and the test decides what the child gets), and on every exit path sends
SIGKILL to the child's whole process group and waits for it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent


def bedside(*args: str) -> list[str]:
    return [sys.executable, "-m", "bedside", *args]


@contextmanager
def child(argv: Sequence[str], **kw: Any) -> Iterator[subprocess.Popen[Any]]:
    kw.setdefault("cwd", ROOT)
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("text", True)
    kw.setdefault("start_new_session", True)
    proc = subprocess.Popen(list(argv), **kw)
    try:
        yield proc
    finally:
        reap(proc)


def reap(proc: subprocess.Popen[Any]) -> None:
    """Kill the child's process group (it may have started its own children) and wait for it."""
    if proc.poll() is None:
        with suppress(ProcessLookupError, PermissionError):
            # The whole group when the child leads its own session, else the child alone.
            if os.getpgid(proc.pid) == proc.pid:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
    try:
        proc.communicate(timeout=30)
    except (subprocess.TimeoutExpired, ValueError):
        proc.kill()
        proc.wait(timeout=30)
