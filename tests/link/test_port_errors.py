"""Port errors told apart by the OS's errno behind them, never by their words: real pyserial
opening real ptys, files and missing paths (as another user, for a port without permission)."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from bedside.laptop.client import port_problem
from bedside.link.port import explain_port_error, port_errno


def opened(port: str, *, exclusive: bool = True) -> serial.Serial:
    ser = serial.serial_for_url(port, do_not_open=True)
    ser.exclusive = exclusive
    ser.open()
    return ser


def open_error(port: str) -> BaseException:
    try:
        opened(port).close()
    except OSError as e:              # pyserial's SerialException is an OSError
        return e
    raise AssertionError(f"{port} opened")


@pytest.fixture
def pty() -> Iterator[str]:
    main, side = os.openpty()
    try:
        yield os.ttyname(side)
    finally:
        os.close(side)
        os.close(main)


def test_a_missing_port(tmp_path: Path) -> None:
    port = str(tmp_path / "ttyNOPE")
    e = open_error(port)
    assert port_errno(e) == errno.ENOENT
    assert explain_port_error(port, e).startswith(f"{port} does not exist (yet)")
    assert port_problem(port, e).startswith(f"There is no port called {port}")


def test_a_port_held_by_another_program(pty: str) -> None:
    first = opened(pty)
    try:
        e = open_error(pty)            # pyserial's exclusive lock (flock): EAGAIN, "Could not exclusively lock"
    finally:
        first.close()
    assert port_errno(e) == errno.EAGAIN
    assert "is in use by another program" in explain_port_error(pty, e)
    assert "is in use by another program" in port_problem(pty, e)


def test_a_file_that_is_no_port(tmp_path: Path) -> None:
    """pyserial raises a SerialException with no errno while handling termios.error
    (ENOTTY): the errno is found on the error it was raised from."""
    port = tmp_path / "not-a-tty"
    port.write_bytes(b"")
    e = open_error(str(port))
    assert getattr(e, "errno", None) is None and port_errno(e) == errno.ENOTTY
    assert explain_port_error(str(port), e) == f"{port} cannot be used: {e}"
    assert port_problem(str(port), e) .startswith(f"{port} cannot be opened: ")


def test_the_words_of_a_message_decide_nothing(tmp_path: Path) -> None:
    """A port whose name says "busy", "lock" and "Permission denied" is still only missing."""
    port = str(tmp_path / "busy-lock-Permission denied-No such file")
    e = open_error(port)
    assert port_errno(e) == errno.ENOENT and "does not exist" in explain_port_error(port, e)
    worded = serial.SerialException("device busy, locked: Permission denied, No such file or directory")
    assert port_errno(worded) is None
    assert explain_port_error("/dev/ttyX", worded).startswith("/dev/ttyX cannot be used: ")


def test_windows_messages_give_their_codes() -> None:
    """pyserial on Windows makes no OSError: the error's codes are only in its message (the
    repr of ctypes.WinError(): errno first, the Windows code last). Not reproducible off
    Windows, so these are pyserial's messages as serialwin32.py words them."""
    missing = serial.SerialException(
        "could not open port 'COM7': FileNotFoundError(2, 'The system cannot find the file specified.', None, 2)")
    denied = serial.SerialException("could not open port 'COM7': PermissionError(13, 'Zugriff verweigert', None, 5)")
    assert port_errno(missing) == errno.ENOENT and port_errno(denied) == errno.EACCES
    assert port_errno(serial.SerialException("could not open port 'COM7': [WinError 5] Access is denied")) \
        == errno.EACCES
    assert port_problem("COM7", missing).startswith("There is no port called COM7")


@pytest.mark.skipif(not (hasattr(os, "geteuid") and os.geteuid() == 0), reason="becoming another user needs root")
def test_a_port_without_permission(pty: str) -> None:
    """As an unprivileged user (nobody, in a forked child), opening root's pty (mode 0600)
    fails with EACCES."""
    os.chmod(pty, 0o600)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:                                  # the child: never back into pytest
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                opened(pty, exclusive=False).close()
                said = "opened"
            except serial.SerialException as e:
                said = "\n".join((str(port_errno(e)), explain_port_error(pty, e), port_problem(pty, e)))
            os.write(write, said.encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        out = f.read().decode()
    os.waitpid(child, 0)
    code, unit, laptop = out.splitlines()[:3]
    assert int(code) == errno.EACCES
    assert unit == f"no permission to open {pty}: the unit's user needs to be in the dialout group"
    assert laptop.startswith(f"No permission to open {pty}. Add yourself to the dialout group")
