"""Partial frame updates, proved against a model of the controller fed by luma's real drivers."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from luma.core.device import dummy
from luma.oled.device import sh1106, sh1107, ssd1306, ssd1309
from PIL import Image, ImageChops

from bedside.core import planner
from bedside.core import screens as sc
from bedside.core.config import Config
from bedside.display import pages
from bedside.display.panel import DisplayOut
from bedside.unit import simulate
from tests.rigs.oled import Controller, ControllerError

DRIVERS = {"ssd1306": ssd1306, "sh1106": sh1106, "ssd1309": ssd1309}
# The SSD1309 (the 2.42-inch panel) takes the SSD1306's commands: the same model judges it.
MODEL = {"ssd1309": "ssd1306"}


def panel(kind: str, rotate: int = 0) -> tuple[Any, Controller]:
    bus = Controller(MODEL.get(kind, kind))
    return DRIVERS[kind](serial_interface=bus, width=128, height=64, rotate=rotate), bus


def whole_frame_bytes(kind: str) -> int:
    """Bus bytes of one frame as luma's driver sends it (1024 data bytes plus addressing and overhead)."""
    device, bus = panel(kind)
    before = bus.bus_bytes
    device.display(noise(0))
    return bus.bus_bytes - before


def same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a.convert("L"), b.convert("L")).getbbox() is None


def noise(seed: int, size: tuple[int, int] = (128, 64)) -> Image.Image:
    r = random.Random(seed)
    return Image.frombytes("1", size, bytes(r.getrandbits(8) for _ in range(size[0] * size[1] // 8)))


@pytest.mark.parametrize("kind", DRIVERS)
@pytest.mark.parametrize("rotate", [0, 2])
def test_the_model_shows_what_lumas_own_driver_draws(kind: str, rotate: int) -> None:
    # The model and luma's driver agree on a whole frame: the model is a fair judge of the writer.
    device, bus = panel(kind, rotate)
    for seed in range(3):
        image = noise(seed)
        device.display(image)
        assert same(bus.frame(), device.preprocess(image))
    assert bus.on and bus.contrast == 0xCF if kind != "sh1106" else bus.on


@pytest.mark.parametrize("kind", DRIVERS)
def test_pack_is_the_controllers_layout(kind: str) -> None:
    device, bus = panel(kind)
    image = noise(7)
    device.display(image)
    packed = pages.pack(image, 8)
    assert [bytes(bus.ram[p][bus.offset:bus.offset + 128]) for p in range(8)] == packed


@pytest.mark.parametrize("kind", DRIVERS)
@pytest.mark.parametrize("rotate", [0, 1, 2])
@given(steps=st.lists(st.tuples(st.integers(0, 127), st.integers(0, 63), st.integers(1, 40), st.integers(1, 20),
                                st.booleans()), min_size=1, max_size=12))
def test_partial_updates_leave_the_panel_equal_to_every_frame(kind: str, rotate: int,
                                                              steps: list[tuple[int, int, int, int, bool]]) -> None:
    size = (64, 128) if rotate % 2 else (128, 64)
    device, bus = panel(kind, rotate)
    out = pages.writer_for(device)
    assert isinstance(out, pages.PageWriter)
    image = noise(1, size)
    out.display(image)
    for x, y, w, h, fill in steps:
        image = image.copy()
        image.paste(255 if fill else 0, (x % size[0], y % size[1], min(size[0], x % size[0] + w),
                                         min(size[1], y % size[1] + h)))
        out.display(image)
        assert same(bus.frame(), device.preprocess(image))
    assert out.full_frames == 1


@pytest.mark.parametrize("kind", DRIVERS)
def test_a_small_change_sends_one_page_window(kind: str) -> None:
    device, bus = panel(kind)
    out = DisplayOut(device)
    writer = out.sink
    assert isinstance(writer, pages.PageWriter)
    image = Image.new("1", (128, 64))
    writer.display(image)
    before = bus.bus_bytes
    changed = image.copy()
    changed.paste(255, (60, 20, 70, 22))             # rows 20-21: page 2 only, columns 60-69
    writer.display(changed)
    assert writer.pages_sent == 1
    assert bus.bus_bytes - before == (2 + (3 if kind == "sh1106" else 6)) + (2 + 10)
    assert same(bus.frame(), changed)


@pytest.mark.parametrize("kind", DRIVERS)
def test_a_frame_the_panel_already_shows_sends_nothing_and_is_not_counted(kind: str) -> None:
    device, bus = panel(kind)
    frames: list[Image.Image] = []
    out = DisplayOut(device, on_frame=frames.append)
    writer = out.sink
    assert isinstance(writer, pages.PageWriter)
    assert writer.display(noise(1)) and writer.display(noise(2))
    before = bus.bus_bytes
    assert not writer.display(noise(2))
    assert bus.bus_bytes == before and writer.partial_frames == 1
    # Through DisplayOut: two screens drawn alike (a hold's bar too short to move a pixel) are one frame.
    out.sink.forget()
    assert out.show(sc.Guide("Ankle pumps", None, 1, 10, "Toes down", 3, 0.5, None), "normal")
    assert not out.show(sc.Guide("Ankle pumps", None, 1, 10, "Toes down", 3, 0.501, None), "normal")
    assert out.frames == 1 and len(frames) == 1


def test_a_failed_send_makes_the_next_frame_whole() -> None:
    device, bus = panel("ssd1306")
    writer = pages.writer_for(device)
    writer.display(noise(1))
    real = bus.data

    def broken(data: Any) -> None:
        raise OSError(121, "Remote I/O error")

    bus.data = broken  # type: ignore[method-assign]
    with pytest.raises(OSError):
        writer.display(noise(2))
    bus.data = real  # type: ignore[method-assign]
    writer.display(noise(3))
    assert writer.full_frames == 2
    assert same(bus.frame(), noise(3))


def test_controllers_without_a_row_get_whole_frames_from_their_driver() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.data_bytes = 0

        def command(self, *cmd: int) -> None:
            pass

        def data(self, data: Any) -> None:
            self.data_bytes += len(data)

        def cleanup(self) -> None:
            pass

    bus = Recorder()
    other = sh1107(serial_interface=bus, width=128, height=128)   # a controller not in the table
    assert pages.writer_for(other) is other
    d = dummy(width=128, height=64, mode="1")
    assert pages.writer_for(d) is d
    out = DisplayOut(other, layout="square")
    before = bus.data_bytes
    image = noise(4, (128, 128))
    out.sink.display(image)
    assert bus.data_bytes - before == 2048


def test_the_model_refuses_what_a_controller_would_misread() -> None:
    bus = Controller("ssd1306")
    with pytest.raises(ControllerError):
        bus.command(0x21, 0)               # a window needs both ends in the same write
    with pytest.raises(ControllerError):
        bus.command(0xFF)
    sh = Controller("sh1106")
    sh.command(0xB0, 0x03, 0x18)            # column 131, the last one
    sh.data([1])
    with pytest.raises(ControllerError):
        sh.data([1])


@pytest.mark.parametrize("kind", DRIVERS)
def test_a_guided_session_on_the_real_driver(tmp_path: Path, cfg: Config, kind: str) -> None:
    """A simulated day's first guided session: after every frame the panel's memory is that frame,
    the bus carries a third fewer bytes than whole frames would, and few transfers."""
    device, bus = panel(kind)
    drawn: list[Image.Image] = []
    wrong: list[int] = []

    def on_frame(image: Image.Image) -> None:
        drawn.append(image)
        if not same(bus.frame(), image):
            wrong.append(len(drawn))

    start = simulate.parse_local("2026-11-24T06:55", cfg.tz)
    first = planner.sessions_between(cfg, start, start + timedelta(days=1))[0].offer.astimezone(cfg.tz)
    actions = [simulate.Action(first + timedelta(minutes=1), "press", 0.3)]
    sim = simulate.build(cfg, tmp_path, start, actions=actions, on_frame=on_frame, device=device)
    after_init, writes_after_init = bus.bus_bytes, bus.writes
    try:
        sim.advance(first + timedelta(minutes=6))
    finally:
        sim.close()
    session_bytes = bus.bus_bytes - after_init
    transfers = bus.writes - writes_after_init
    whole = len(drawn) * whole_frame_bytes(kind)
    # A guided session: counters, hold bars (a frame a second, with the count), the done screen.
    assert 30 < len(drawn) <= 95, len(drawn)
    assert wrong == []
    assert session_bytes * 1.5 <= whole, (session_bytes, whole)
    # Transfers, each a wake-up of the Pi (docs/performance.md): an SSD1306/SSD1309 frame's
    # changes go as one rectangle (a command and its data); an SH1106 aims page by page.
    per_frame = 16 if kind == "sh1106" else 2.3
    assert transfers <= len(drawn) * per_frame, (transfers, len(drawn))
