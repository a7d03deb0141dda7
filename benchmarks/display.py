"""Benchmark of the display path: bytes on the I2C bus and the cost of a frame, over a guided day.

A simulated day in which the patient answers all 15 sessions and finishes each guide runs on
luma's real SSD1306 and SH1106 drivers, over a model of the controller (tests/rigs/oled.py)
that counts every byte luma's I2C interface would put on the bus and checks after every
frame that the panel's memory is the frame drawn. The baseline is the same day with the
page writer off (luma's driver sends every changed frame whole), in the same run.

Frame cost is render + pack + send: each screen the day showed is replayed through the
renderer and the page writer, timed stage by stage; the bus time is the bytes a frame put
on the bus at 9 bits a byte (8 data bits and the acknowledge) at 100 and 400 kHz.

Run alone with ``python benchmarks/display.py`` or through ``make bench``.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from luma.oled.device import sh1106, ssd1306
from PIL import Image, ImageChops
from tests.rigs.oled import Controller

from bedside.core import config, planner
from bedside.core.events import Effect, Instant, Show
from bedside.display import pages, render
from bedside.unit import simulate
from benchmarks import docs

DRIVERS = {"ssd1306": ssd1306, "sh1106": sh1106}
DAY_START = "2026-11-24T06:00"


def _guided_actions(cfg: config.Config, start: datetime) -> list[simulate.Action]:
    sessions = planner.sessions_between(cfg, start, start + timedelta(days=1))
    return [simulate.Action(s.offer.astimezone(cfg.tz) + timedelta(minutes=2), "press", 0.3) for s in sessions]


def bus_ms(n_bytes: float, hz: int) -> float:
    return n_bytes * 9 / hz * 1000


def guided_day(kind: str, partial: bool) -> dict[str, Any]:
    """Bus bytes, frames and the screens shown over a guided simulated day on ``kind``."""
    cfg = config.Config()
    start = datetime.fromisoformat(DAY_START).replace(tzinfo=cfg.tz)
    bus = Controller(kind)
    device = DRIVERS[kind](serial_interface=bus, width=128, height=64)
    screens: list[Any] = []
    wrong = 0

    def on_frame(image: Image.Image) -> None:
        nonlocal wrong
        if ImageChops.difference(bus.frame().convert("L"), image.convert("L")).getbbox() is not None:
            wrong += 1

    def observe(effect: Effect, now: Instant) -> None:
        if isinstance(effect, Show) and effect.brightness != "off":
            screens.append(effect.screen)

    with tempfile.TemporaryDirectory() as d:
        sim = simulate.build(cfg, Path(d), start, actions=_guided_actions(cfg, start), on_frame=on_frame,
                             observers=[observe], device=device)
        if not partial:
            sim.unit.out.display.sink = device       # luma's own whole frames
        base = bus.bus_bytes
        try:
            sim.advance(start + timedelta(days=1))
            frames = sim.unit.out.display.frames
        finally:
            sim.close()
    return {"bytes": bus.bus_bytes - base, "frames": frames, "wrong": wrong, "screens": screens}


def frame_costs(kind: str, screens: list[Any]) -> dict[str, float]:
    """Median and worst milliseconds per changed frame: render, pack, send (Python's side), bus bytes."""
    layout = config.Config().layout          # as the unit draws them
    bus = Controller(kind)
    device = DRIVERS[kind](serial_interface=bus, width=128, height=64)
    writer = pages.writer_for(device)
    rend, pack, send, sizes = [], [], [], []
    last: bytes | None = None
    for screen in screens:
        t0 = time.perf_counter()
        image = render.render(screen, layout)
        t1 = time.perf_counter()
        data = image.tobytes()
        if data == last:
            continue
        last = data
        pages.pack(device.preprocess(image), 8)
        t2 = time.perf_counter()
        before = bus.bus_bytes
        writer.display(image)       # packs again: the send's own figure includes its packing
        t3 = time.perf_counter()
        rend.append((t1 - t0) * 1000)
        pack.append((t2 - t1) * 1000)
        send.append((t3 - t2) * 1000)
        sizes.append(bus.bus_bytes - before)
    sizes_sorted = sorted(sizes[1:])       # the first frame is whole by design
    return {"render_ms": statistics.median(rend), "pack_ms": statistics.median(pack),
            "send_ms": statistics.median(send), "bytes_median": statistics.median(sizes_sorted),
            "bytes_p95": sizes_sorted[int(len(sizes_sorted) * 0.95) - 1], "bytes_max": sizes_sorted[-1],
            "frames": len(sizes)}


def main() -> None:
    rows: list[tuple[str, str, str]] = []
    for kind in DRIVERS:
        print(f"{kind}: guided day, page writer ...", flush=True)
        part = guided_day(kind, partial=True)
        print(f"{kind}: guided day, whole frames (baseline) ...", flush=True)
        whole = guided_day(kind, partial=False)
        if part["wrong"] or whole["wrong"]:
            raise SystemExit(f"{kind}: the panel's memory differed from the frame drawn "
                             f"({part['wrong']} / {whole['wrong']} frames)")
        costs = frame_costs(kind, part["screens"])
        ratio = whole["bytes"] / part["bytes"]
        rows += [
            (f"**{kind.upper()}**: a day with all 15 sessions guided, bytes on the I2C bus",
             "≥ 4× fewer than whole frames",
             f"{part['bytes'] / 1024:.0f} KiB in {part['frames']} frames; whole frames "
             f"{whole['bytes'] / 1024:.0f} KiB: **{ratio:.1f}× fewer**; the panel's memory equalled every frame"),
            ("  bus time for the day at 400 kHz / 100 kHz", "—",
             f"{bus_ms(part['bytes'], 400_000) / 1000:.1f} s / {bus_ms(part['bytes'], 100_000) / 1000:.1f} s "
             f"(whole frames: {bus_ms(whole['bytes'], 400_000) / 1000:.1f} s / "
             f"{bus_ms(whole['bytes'], 100_000) / 1000:.1f} s)"),
            ("  a changed frame: render + pack + send (Python), median", "—",
             f"{costs['render_ms']:.3f} + {costs['pack_ms']:.3f} + {costs['send_ms']:.3f} ms "
             f"over {costs['frames']} changed frames (send includes its own packing)"),
            ("  a changed frame on the bus: median / p95 / most", "—",
             f"{costs['bytes_median']:.0f} / {costs['bytes_p95']} / {costs['bytes_max']} bytes = "
             f"{bus_ms(costs['bytes_median'], 400_000):.2f} / {bus_ms(costs['bytes_p95'], 400_000):.2f} / "
             f"{bus_ms(costs['bytes_max'], 400_000):.1f} ms at 400 kHz "
             f"(a whole frame: {whole['bytes'] / max(whole['frames'], 1):.0f} bytes, "
             f"{bus_ms(whole['bytes'] / max(whole['frames'], 1), 400_000):.1f} ms)"),
        ]
    note = ("Counts of bytes are exact and do not depend on the machine; the Python times do "
            "(plan ×10 on a Pi Zero 2 W). The installer sets `dtparam=i2c_arm_baudrate=400000`.")
    print(docs.write_section("display", "Display transfer",
                             [docs.measured_on("make bench", note), "", *docs.table(rows)]))


if __name__ == "__main__":
    main()
