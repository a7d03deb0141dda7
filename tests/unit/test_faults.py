"""Hardware faults the unit survives, through the real daemon loop: luma's real SSD1306 driver
over a fake I2C bus that fails and recovers, gpiozero's MockFactory pins, a real journal."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from bedside import __version__
from bedside.core import screens as sc
from bedside.core.config import Config, Hardware
from bedside.core.events import Instant, Led
from bedside.display import device
from bedside.display.panel import DisplayKeeper
from bedside.journal.journal import Journal
from bedside.unit import pins as hardware
from bedside.unit.clock import VirtualClock
from bedside.unit.loop import Outputs, Unit
from bedside.unit.sounds import Player
from bedside.unit.supervise import GuardedTone, SelfTest, daily_time
from tests.conftest import ROOT
from tests.rigs.fake_bus import Bus
from tests.rigs.procs import reap


class FlakyBus(Bus):
    """The fake bus, counting what a rebuild does to it (probes, closes)."""

    def __init__(self) -> None:
        super().__init__()
        self.probes = 0
        self.closed = 0

    def command(self, *cmd: int) -> None:
        if cmd == (0xE3,):
            self.probes += 1
        super().command(*cmd)

    def cleanup(self) -> None:
        self.closed += 1


@dataclass
class Script:
    """A timed source that does things to the hardware at given local times."""

    clock: VirtualClock
    steps: list[tuple[datetime, Callable[[], None]]] = field(default_factory=list)

    def deadline(self) -> float | None:
        if not self.steps:
            return None
        now = self.clock.now()
        return now.mono + (self.steps[0][0] - now.wall).total_seconds()

    def fire(self, now: Instant) -> None:
        while self.steps and self.steps[0][0] <= now.wall:
            self.steps.pop(0)[1]()


@dataclass
class Rig:
    unit: Unit
    clock: VirtualClock
    bus: FlakyBus
    keeper: DisplayKeeper
    factory: Any
    journal: Journal
    script: Script
    pins: hardware.Pins       # held: gpiozero keeps only a weak reference to a device's edge handler

    def records(self, *types: str) -> list[dict[str, Any]]:
        return [r for r in self.journal.records() if not types or r["type"] in types]


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Callable[..., Rig]]:
    made: list[Rig] = []

    def make(start: str = "2026-11-24T06:55", *, display_ok: bool = True, selftest: bool = False) -> Rig:
        cfg = Config()
        clock = VirtualClock(datetime.fromisoformat(start).replace(tzinfo=cfg.tz))
        bus = FlakyBus()
        bus.fail = not display_ok
        keeper = DisplayKeeper(lambda: device.build_display(Hardware(), serial_interface=bus), clock.mono)
        factory = MockFactory()
        pins = hardware.build_pins(cfg.hardware, pin_factory=factory)
        journal = Journal(tmp_path / "data", cfg.tz, "boot-1")
        led = hardware.LedOut(pins.led, clock.mono)
        unit = Unit(cfg, clock, journal, Outputs(keeper, Player(GuardedTone(pins.tone)), led),
                    time_quality="rtc", boot="boot-1")
        unit.attach_button(pins.button)
        script = Script(clock)
        unit.add_source(keeper)
        unit.add_source(script)
        if selftest:
            unit.add_source(SelfTest(unit, tmp_path, display=keeper))
        r = Rig(unit, clock, bus, keeper, factory, journal, script, pins)
        made.append(r)
        return r

    yield make
    for r in made:
        r.pins.close()
        r.journal.close()
        r.factory.reset()


def at(r: Rig, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=r.unit.cfg.tz)


def test_display_missing_at_start_keeps_prompting_then_recovers(rig: Callable[..., Rig]) -> None:
    r = rig(display_ok=False)
    first_error = r.keeper.error
    assert first_error is not None
    r.script.steps.append((at(r, "2026-11-24T07:20"), lambda: setattr(r.bus, "fail", False)))
    leds: list[str] = []
    r.unit.out.observers.append(lambda fx, now: leds.append(fx.mode) if isinstance(fx, Led) else None)
    r.unit.run(until=at(r, "2026-11-24T07:25"))

    types = [x["type"] for x in r.records()]
    assert types[:2] == ["start", "fault"]
    fault = r.records("fault")[0]
    assert fault["part"] == "display" and "check the wiring" in fault["problem"]
    # The 07:00 prompt still happened, with its chime, the repeat and the blinking LED.
    assert "prompt" in types and "repeat" in types
    assert "prompt" in r.unit.out.player.played
    assert "due" in leds
    # Back at 07:20: one fault_cleared, the prompt redrawn on the real driver.
    cleared = r.records("fault_cleared")
    assert [c["part"] for c in cleared] == ["display"]
    assert cleared[0]["time"] < "2026-11-24T07:21"
    assert r.keeper.error is None and r.bus.frames >= 1
    assert r.unit.state is not None and "display" not in r.unit.state.problems
    # Backoff: 2, 4, 8, 16, 32, then every 60 s: about 25 attempts in 25 minutes, not thousands.
    assert 15 <= r.keeper.attempts <= 35


def test_bus_errors_later_are_a_fault_and_the_loop_does_not_touch_the_dead_bus(rig: Callable[..., Rig]) -> None:
    r = rig()
    r.script.steps += [(at(r, "2026-11-24T07:00:30"), lambda: setattr(r.bus, "fail", True)),
                       (at(r, "2026-11-24T07:10"), lambda: setattr(r.bus, "fail", False))]
    # The patient starts the guide while the display is failing: the guide's many frames
    # must not each hit the dead bus.
    r.script.steps[1:1] = [(at(r, "2026-11-24T07:01"), r.factory.pin(17).drive_low),
                           (at(r, "2026-11-24T07:01:00.300"), r.factory.pin(17).drive_high)]
    r.unit.run(until=at(r, "2026-11-24T07:12"))
    assert [x["part"] for x in r.records("fault")] == ["display"]
    assert [x["part"] for x in r.records("fault_cleared")] == ["display"]
    assert r.records("press")[0]["action"] == "start"
    # Rebuilds while down: backoff, one attempt each (2+4+8+16+32+60... s in 9.5 min).
    assert r.keeper.attempts < 20


def test_probe_notices_an_unplugged_display_whose_picture_is_not_changing(rig: Callable[..., Rig]) -> None:
    r = rig("2026-11-24T23:00")  # night: the display is off and nothing is redrawn
    r.script.steps.append((at(r, "2026-11-24T23:01"), lambda: setattr(r.bus, "fail", True)))
    r.unit.run(until=at(r, "2026-11-24T23:20"))
    faults = r.records("fault")
    assert faults and faults[0]["part"] == "display"
    assert faults[0]["time"] <= "2026-11-24T23:06:01"
    assert r.bus.probes >= 2
    # No fault note at night.
    assert "fault" not in r.unit.out.player.played


def test_a_failed_rebuild_closes_the_bus_and_builds_no_driver() -> None:
    bus = FlakyBus()
    bus.fail = True
    with pytest.raises(device.HardwareError, match="check the wiring"):
        device.build_display(Hardware(), serial_interface=bus)
    assert bus.closed == 1 and bus.commands == []


def test_held_button_is_ignored_and_logged_through_the_real_pins(rig: Callable[..., Rig]) -> None:
    r = rig()
    r.script.steps += [(at(r, "2026-11-24T07:01"), r.factory.pin(17).drive_low),
                       (at(r, "2026-11-24T07:03"), r.factory.pin(17).drive_high)]
    r.unit.run(until=at(r, "2026-11-24T07:04"))
    fault = r.records("fault")
    assert [f["part"] for f in fault] == ["button"]
    assert fault[0]["time"].startswith("2026-11-24T07:02:00")
    assert [f["part"] for f in r.records("fault_cleared")] == ["button"]
    # It confirmed nothing: no snooze, no start, no done; the prompt is still up.
    assert r.records("snooze", "done") == []
    assert all(p.get("action") != "start" for p in r.records("press"))
    assert isinstance(r.keeper.wanted[0] if r.keeper.wanted else None, sc.Prompt)


def test_selftest_at_start_by_day_chirps_and_records(rig: Callable[..., Rig]) -> None:
    r = rig("2026-11-24T10:30", selftest=True)
    r.unit.run(until=at(r, "2026-11-24T10:31"))
    (st,) = r.records("selftest")
    assert st["trigger"] == "start"
    assert st["display"] == "ok" and st["buzzer"] == "chirped" and st["journal"] == "ok"
    assert isinstance(st["free_mb"], int)
    assert "tick" in r.unit.out.player.played
    # The buzzer pin really went high and low again.
    assert [s.state for s in r.factory.pin(18).states][-2:] == [True, False]


def test_selftest_never_chirps_at_night_and_runs_daily_by_day(rig: Callable[..., Rig]) -> None:
    r = rig("2026-11-24T02:00", selftest=True)
    r.unit.run(until=at(r, "2026-11-25T16:00"))
    tests = r.records("selftest")
    assert [t["trigger"] for t in tests] == ["start", "daily", "daily"]
    assert tests[0]["buzzer"] == "skipped: night"
    assert [t["time"][11:16] for t in tests[1:]] == ["14:45", "14:45"]
    assert all(t["buzzer"] == "chirped" for t in tests[1:])
    # The daily test re-initialises the display (a full init sequence each time).
    assert r.keeper.attempts >= 3


def test_daily_time_is_in_the_middle_of_the_awake_window() -> None:
    from datetime import time as t

    assert daily_time(t(7), t(22)) == t(14, 45)
    assert daily_time(t(20), t(12)) == t(4, 45)     # a window across midnight
    assert daily_time(t(0), t(0)) == t(12, 45)      # awake around the clock


def test_selftest_shows_a_failed_buzzer_on_the_display_and_records_it(rig: Callable[..., Rig]) -> None:
    r = rig("2026-11-24T10:30", selftest=True)
    tone = r.unit.out.player.output
    assert isinstance(tone, GuardedTone)
    inner = tone.tone

    def broken(freq: int) -> None:
        if freq:
            raise OSError(5, "Input/output error")
        inner(freq)

    tone.tone = broken
    r.unit.run(until=at(r, "2026-11-24T10:31"))
    (st,) = r.records("selftest")
    assert st["buzzer"].startswith("fault: OSError")
    assert [f["part"] for f in r.records("fault")] == ["buzzer"]
    assert r.unit.state is not None and r.unit.state.problems["buzzer"].startswith("Buzzer fault")
    # The idle screen carries the notice for whoever looks.
    assert r.keeper.wanted is not None
    screen = r.keeper.wanted[0]
    assert isinstance(screen, sc.Idle) and screen.notice is not None and "Buzzer" in screen.notice


# --- `bedside run` as systemd runs it ----------------------------------------------------

@pytest.mark.serial
def test_bedside_run_without_a_display_notifies_systemd_and_stops_cleanly(tmp_path: Path) -> None:
    sock_path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(20)
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    env.update(GPIOZERO_PIN_FACTORY="mock", NOTIFY_SOCKET=str(sock_path), WATCHDOG_USEC="600000")
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "bedside", "run", "--data", str(data)], env=env, cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    messages: list[str] = []
    try:
        messages.append(sock.recv(4096).decode())
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            messages.append(sock.recv(4096).decode())
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
        sock.settimeout(0.5)
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                break
    finally:
        reap(proc)
        sock.close()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert "display not available, prompting with sound and LED" in err
    assert messages[0].startswith("READY=1")
    # Pinged about every 0.2 s while running, even with the display missing (a handled fault).
    assert messages.count("WATCHDOG=1") >= 3
    assert messages[-1].startswith("STOPPING=1")
    export = subprocess.run([sys.executable, "-m", "bedside", "log", "export", "--data", str(data)],
                            capture_output=True, text=True, cwd=ROOT, timeout=30)
    import json

    header, *recs = [json.loads(line) for line in export.stdout.splitlines()]   # line 1: the export header
    assert header["bedside_export"] == 1
    types = [x["type"] for x in recs]
    assert types[0] == "start" and types[-1] == "stop"
    assert recs[-1]["reason"] == "SIGTERM"
    assert "fault" in types and "selftest" in types
    assert next(x for x in recs if x["type"] == "fault")["part"] == "display"


def _run_until_ready(tmp_path: Path, env_extra: dict[str, str], stderr: Any, *args: str) -> int:
    """``bedside run`` on mock pins until READY=1, then SIGTERM; its exit code."""
    tmp_path.mkdir(exist_ok=True)
    sock_path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(30)
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "JOURNAL_STREAM")}
    env.update(GPIOZERO_PIN_FACTORY="mock", NOTIFY_SOCKET=str(sock_path), **env_extra)
    proc = subprocess.Popen([sys.executable, "-m", "bedside", "run", "--data", str(tmp_path / "data"), *args],
                            env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        assert sock.recv(4096).decode().startswith("READY=1")
        time.sleep(0.5)     # the serial link's first try at its port
        proc.send_signal(signal.SIGTERM)
        return proc.wait(timeout=30)
    finally:
        reap(proc)
        sock.close()


def test_under_journald_each_line_carries_its_priority(tmp_path: Path) -> None:
    """With standard error the stream ``$JOURNAL_STREAM`` names, every line starts with its
    sd-daemon priority, so ``journalctl -p warning`` picks out the faults; anywhere else the
    lines are plain."""
    log = tmp_path / "stderr"
    with log.open("w") as f:
        st = os.fstat(f.fileno())
        rc = _run_until_ready(tmp_path, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, f,
                              "--serial", str(tmp_path / "no-such-port"))
    lines = log.read_text().splitlines()
    assert rc == 0, lines
    assert lines and all(re.match(r"^<[3-6]>bedside", line) for line in lines), lines

    def at(priority: int, text: str) -> bool:
        return any(line.startswith(f"<{priority}>") and text in line for line in lines)

    assert at(6, f"bedside: version {__version__}, unit ward7-bed12 on GPIO")
    assert at(4, "display not available, prompting with sound and LED")
    assert at(4, "no ward secret set") and at(4, "serial link: ") and at(4, "retrying")
    assert at(3, "self-test (start): display") and at(3, "FAILED")
    assert at(5, "stopped (SIGTERM)")
    # What journalctl -p warning shows: the faults and nothing else.
    warnings = [line for line in lines if int(line[1]) <= 4]
    assert not any("stopped" in line or "unit ward7-bed12" in line for line in warnings)

    # The variable without its stream (a child whose stderr was redirected): no prefixes.
    with (tmp_path / "plain").open("w") as f:
        assert _run_until_ready(tmp_path / "second", {"JOURNAL_STREAM": "1:2"}, f) == 0
    plain = (tmp_path / "plain").read_text().splitlines()
    assert plain and all(line.startswith("bedside") for line in plain), plain


def test_a_ward_configuration_the_unit_cannot_use_does_not_stop_it(tmp_path: Path) -> None:
    """A damaged ``ward-config.toml`` (or one put there by hand): the unit runs on its own
    configuration, logs why at err and records a config fault; the file is left as it was."""
    data = tmp_path / "data"
    data.mkdir()
    bad = data / "ward-config.toml"
    bad.write_bytes(b"[unit\x00garbage")
    log = tmp_path / "stderr"
    with log.open("w") as f:
        assert _run_until_ready(tmp_path, {}, f) == 0
    err = log.read_text()
    assert "the ward's configuration was refused" in err and "Traceback" not in err
    assert bad.read_bytes() == b"[unit\x00garbage"
    import json

    export = subprocess.run([sys.executable, "-m", "bedside", "log", "export", "--data", str(data)],
                            capture_output=True, text=True, cwd=ROOT, timeout=30)
    recs = [json.loads(line) for line in export.stdout.splitlines()[1:]]
    (fault,) = [r for r in recs if r["type"] == "fault" and r.get("part") == "config"]
    assert "running on the unit's own" in fault["problem"] and "ward-config.toml" in fault["problem"]
