"""A person's terminal program on the laptop end: picocom, and pyserial's miniterm, each run
under a pty as in a terminal window, typing help and status to the running unit."""

from __future__ import annotations

import os
import pty
import select
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.link.test_serial_link import START, local
from tests.rigs.serial_rig import Cable, RunningUnit, cheap_ward


class Screen:
    """A terminal program running under a pty: keys in, what it shows out."""

    def __init__(self, argv: list[str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execvp(argv[0], argv)
        self.shown = b""

    def wait_for(self, text: bytes, timeout: float = 10.0, since: int = 0) -> str:
        """What the program has shown since ``since``, once it includes ``text``."""
        end = time.monotonic() + timeout
        while text not in self.shown[since:] and time.monotonic() < end:
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    self.shown += os.read(self.fd, 65536)
                except OSError:
                    break
        assert text in self.shown[since:], self.shown.decode("utf-8", "replace")[-2000:]
        return self.shown[since:].decode("utf-8", "replace")

    def keys(self, text: str, pause: float = 0.02) -> None:
        for ch in text:       # one key at a time, as typed
            os.write(self.fd, ch.encode())
            time.sleep(pause)

    def close(self, quit_keys: bytes) -> None:
        os.write(self.fd, quit_keys)
        end = time.monotonic() + 5
        while time.monotonic() < end:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.05)
        else:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


CLIENTS = {
    "picocom": (["picocom", "--baud", "115200", "--databits", "8", "--parity", "n", "--stopbits", "1", "--quiet"],
                b"\x01\x18"),                      # C-a C-x: leave picocom
    "miniterm": ([sys.executable, "-m", "serial.tools.miniterm", "--raw", "--eol", "CR", "--quiet"], b"\x1d"),
}


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_help_and_status_from_a_terminal_program(client: str, tmp_path: Path) -> None:
    argv, quit_keys = CLIENTS[client]
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed (make test installs it)")
    cable = Cable(tmp_path).plug()
    data = tmp_path / "unit"
    try:
        with RunningUnit(data, cable.unit_path, local(START), ward=cheap_ward(data)):
            extra = [str(cable.laptop_path)] if client == "picocom" else [str(cable.laptop_path), "115200"]
            screen = Screen(argv + extra)
            time.sleep(0.5)
            screen.keys("\r")
            screen.wait_for(b"ward7-bed12> ")
            screen.keys("help\r")
            shown = screen.wait_for(b"Ctrl-C cancels.")
            assert "help" in shown and "time set YYYY-MM-DD HH:MM" in shown   # what was typed is echoed back
            screen.keys("status\r")
            shown = screen.wait_for(b"Downloaded  never")
            assert "Unit        ward7-bed12 (bedside" in shown and "Next        10:00 Ankle pumps" in shown
            mark = len(screen.shown)
            screen.keys("stauts\x7f\x7f\x7ftus\r")      # a typo corrected with backspace
            assert "Unit        ward7-bed12" in screen.wait_for(b"Link        locked", since=mark)
            screen.close(quit_keys)
    finally:
        cable.unplug()
