"""libgpiod 2's Python API (the ``gpiod`` package) played by a fake chip: there is no GPIO here.

It keeps what the kernel would: which lines are requested (a second request of a held line
fails with EBUSY, as the GPIO character device answers), each line's direction, bias and
level, and a request descriptor (a pipe) that is readable only when edges are queued, as a
line request's is. ``install`` puts it in ``sys.modules`` as ``gpiod`` and ``gpiod.line``.
"""

from __future__ import annotations

import enum
import errno
import os
import sys
import types
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

LINES = 54          # a BCM2835-family header chip's line count


class Value(enum.Enum):
    INACTIVE = 0
    ACTIVE = 1


Direction = enum.Enum("Direction", "AS_IS INPUT OUTPUT")
Bias = enum.Enum("Bias", "AS_IS DISABLED PULL_UP PULL_DOWN")
Edge = enum.Enum("Edge", "NONE RISING FALLING BOTH")
EdgeType = enum.Enum("EdgeType", "RISING_EDGE FALLING_EDGE")


@dataclass
class Line:
    settings: dict[str, Any]
    value: Value
    history: list[Value] = field(default_factory=list)


class Request:
    def __init__(self, chip: Chip, consumer: str, config: dict[int, dict[str, Any]]) -> None:
        self.chip = chip
        self.consumer = consumer
        self.offsets = list(config)
        self.fd, self._w = os.pipe()
        self.events: list[Any] = []
        self.released = False
        self.reconfigure_lines(config)

    def reconfigure_lines(self, config: dict[int, dict[str, Any]]) -> None:
        for offset, settings in config.items():
            value = settings.get("output_value", Value.INACTIVE)
            line = Line(settings, value, [value])
            if offset in self.chip.lines:
                line.history = [*self.chip.lines[offset].history, value]
            self.chip.lines[offset] = line

    def set_value(self, offset: int, value: Value) -> None:
        assert not self.released and offset in self.offsets
        assert self.chip.lines[offset].settings.get("direction") == Direction.OUTPUT, "set_value on an input"
        self.chip.lines[offset].value = value
        self.chip.lines[offset].history.append(value)
        self.chip.sets += 1

    def get_value(self, offset: int) -> Value:
        assert not self.released
        return self.chip.lines[offset].value

    def edge(self, rising: bool, stamp_ns: int) -> None:
        self.events.append(SimpleNamespace(event_type=EdgeType.RISING_EDGE if rising else EdgeType.FALLING_EDGE,
                                           timestamp_ns=stamp_ns))
        os.write(self._w, b"e")

    def read_edge_events(self) -> list[Any]:
        os.read(self.fd, 64)
        out, self.events = self.events, []
        return out

    def release(self) -> None:
        assert not self.released, "released twice"
        self.released = True
        for offset in self.offsets:
            self.chip.held.pop(offset, None)
        os.close(self.fd)
        os.close(self._w)


class Chip:
    def __init__(self, path: str = "/dev/gpiochip0") -> None:
        self.path = path
        self.lines: dict[int, Line] = {}
        self.held: dict[int, Request] = {}
        self.requests: list[Request] = []
        self.sets = 0

    def request_lines(self, chip: str, consumer: str, config: dict[int, dict[str, Any]]) -> Request:
        if chip != self.path:
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", chip)
        for offset in config:
            if offset >= LINES:
                raise OSError(errno.EINVAL, "Invalid argument")
            if offset in self.held:
                raise OSError(errno.EBUSY, "Device or resource busy")
        req = Request(self, consumer, config)
        self.requests.append(req)
        for offset in config:
            self.held[offset] = req
        return req

    def open_requests(self) -> list[Request]:
        return [r for r in self.requests if not r.released]

    def value(self, offset: int) -> Value:
        return self.lines[offset].value


def install(monkeypatch: pytest.MonkeyPatch, chip: Chip) -> None:
    gpiod = types.ModuleType("gpiod")
    line = types.ModuleType("gpiod.line")
    line.Value = Value  # type: ignore[attr-defined]
    line.Direction = Direction  # type: ignore[attr-defined]
    line.Bias = Bias  # type: ignore[attr-defined]
    line.Edge = Edge  # type: ignore[attr-defined]
    gpiod.line = line  # type: ignore[attr-defined]
    gpiod.EdgeEvent = SimpleNamespace(Type=EdgeType)  # type: ignore[attr-defined]
    gpiod.LineSettings = lambda **kw: kw  # type: ignore[attr-defined]
    gpiod.request_lines = chip.request_lines  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gpiod", gpiod)
    monkeypatch.setitem(sys.modules, "gpiod.line", line)
