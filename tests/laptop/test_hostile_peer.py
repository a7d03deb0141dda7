"""A device on the port that misbehaves without end: ``bedside pull`` stops within its limits
and says in one line what the device did (issue: a device streaming bytes without end kept
the pull busy past 150 s with nothing printed)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import pytest

from bedside.laptop import client, pull
from bedside.link import frames
from tests.rigs.procs import bedside, child


class Streamer:
    """The master side of a pty that writes ``chunk`` for ever (or until closed), answering nothing."""

    def __init__(self, chunk: bytes, pause_s: float = 0.0) -> None:
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self.chunk, self.pause_s = chunk, pause_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                os.write(self.master, self.chunk)
                with contextlib.suppress(BlockingIOError, OSError):
                    os.set_blocking(self.master, False)
                    while os.read(self.master, 65536):       # swallow what the laptop sends
                        pass
                os.set_blocking(self.master, True)
            except OSError:
                return
            if self.pause_s:
                time.sleep(self.pause_s)

    def close(self) -> None:
        self.stop.set()
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.mark.parametrize("chunk", [b"A" * 4096, b"~1~1~1~1" * 512, b"~7 ok {" + b"x" * 4000, b"\r\n" * 2048])
def test_pull_stops_a_device_that_streams_without_end(tmp_path: Path, chunk: bytes) -> None:
    dev = Streamer(chunk)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("correct horse battery staple\n")
    try:
        with child(bedside("pull", "--port", dev.path, "--out", str(tmp_path / "out"),
                           "--secret-file", str(secret_file))) as p:
            _out, err = p.communicate(timeout=120)
    finally:
        dev.close()
    assert p.returncode == 1, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert "not behaving as a bedside unit" in lines[0] or "no unit answered" in lines[0], err


class Script:
    """A transport on a fake clock: ``read`` gives ``each`` bytes after ``step_s`` seconds, for ever."""

    def __init__(self, each: bytes, step_s: float) -> None:
        self.now = 0.0
        self.each, self.step_s = each, step_s
        self.read_bytes = 0

    def write(self, data: bytes) -> None:
        pass

    def read(self, timeout: float) -> bytes:
        if self.step_s > timeout or not self.each:
            self.now += timeout
            return b""
        self.now += self.step_s
        self.read_bytes += len(self.each)
        return self.each

    def close(self) -> None:
        pass

    def monotonic(self) -> float:
        return self.now


def test_a_byte_every_second_is_not_an_answer_for_ever() -> None:
    """The wait was extended by each byte: a drip kept the laptop waiting past any limit."""
    t = Script(b"x", 0.2)
    c = client.Client(t, monotonic=t.monotonic)
    with pytest.raises(client.Misbehaved, match="kept sending for"):
        c.request("hello")
    assert t.now <= client.ANSWER_S + client.ANSWER_GRACE_S + 1


def test_a_flood_is_refused_at_the_byte_cap() -> None:
    t = Script(b"y" * 65536, 0.0)
    c = client.Client(t, monotonic=t.monotonic)
    with pytest.raises(client.Misbehaved, match="KiB without a whole answer"):
        c.request("hello")
    assert t.read_bytes <= client.ANSWER_MAX_BYTES + 65536


def test_a_wait_longer_than_any_unit_asks_is_cut() -> None:
    """A ``wait`` answer asking for a year: the laptop waits what a unit could ask, then asks again."""
    reply = frames.reply(1, "wait", {"seconds": 3e7})

    class Waiter(Script):
        def __init__(self) -> None:
            super().__init__(b"", 1.0)
            self.sent = False

        def read(self, timeout: float) -> bytes:
            self.now += timeout
            if not self.sent:
                self.sent = True
                return reply
            return b""

    t = Waiter()
    c = client.Client(t, monotonic=t.monotonic, retries=1)
    c._id = 0
    with pytest.raises(client.NoAnswer):
        c.request("time", "x")
    assert t.now <= 60 + 10 + client.ANSWER_S + 1


def test_the_whole_exchange_has_a_deadline() -> None:
    t = Script(b"", 10.0)
    c = client.Client(t, monotonic=t.monotonic, deadline=7.0, retries=100)
    with pytest.raises(client.TimedOut):
        c.request("hello")
    assert t.now < 20


def test_pull_turns_a_deadline_into_one_line(tmp_path: Path) -> None:
    t = Script(b"", 10.0)
    with pytest.raises(pull.PullError, match="stopped after 10 s"):
        pull.pull(lambda: t, tmp_path, lambda u, n: "s", monotonic=t.monotonic, deadline_s=10.0, say=lambda m: None)


def test_a_line_of_marks_costs_a_few_checks() -> None:
    """``~1~1~1…`` on one line was one CRC check of the rest of the line per mark."""
    r = frames.ReplyReader()
    calls = 0
    real = frames.open_frame

    def counted(text: str) -> str:
        nonlocal calls
        calls += 1
        return real(text)

    import bedside.link.frames as fr

    old = fr.open_frame
    fr.open_frame = counted
    try:
        r.feed(b"~1" * 200_000 + b"\n")
        for _ in range(1000):                        # a long line arriving a byte at a time
            r.feed(b"z")
    finally:
        fr.open_frame = old
    assert calls <= 2 * frames.ReplyReader.TRIES
    assert r.searched == 1000
