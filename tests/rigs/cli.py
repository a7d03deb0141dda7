"""The ``bedside`` command run as a person runs it: a real subprocess of this Python, from the
project's root, with no input and gpiozero left to choose its own pins (a test's
``GPIOZERO_PIN_FACTORY`` is not passed on)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT

BEDSIDE = [sys.executable, "-m", "bedside"]


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    e.update(env or {})
    return subprocess.run([*BEDSIDE, *args], capture_output=True, text=True, timeout=timeout, env=e, cwd=ROOT,
                          stdin=subprocess.DEVNULL)
