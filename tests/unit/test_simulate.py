"""The whole daemon on gpiozero mock pins, luma's dummy display and a virtual clock."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bedside.core import config, views
from bedside.core import screens as sc
from bedside.display import render
from bedside.unit import simulate
from bedside.unit.sounds import SOUNDS
from tests.conftest import ROOT, journal_records


def local(cfg: config.Config, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=cfg.tz)


def records(data: Path, cfg: config.Config) -> list[dict[str, Any]]:
    return journal_records(data)


def test_scripted_morning_on_mock_pins(tmp_path: Path) -> None:
    cfg = config.Config()
    script = simulate.parse_script("2026-11-24T07:01:00 press\n2026-11-24T08:03:00 hold 2.5\n", cfg.tz)
    sim = simulate.build(cfg, tmp_path, local(cfg, "2026-11-24T06:50"), actions=script)
    buzzer = sim.buzzer_pin
    sim.advance(local(cfg, "2026-11-24T07:00:02"))
    # The prompt chime on the real gpiozero Buzzer: on/off pattern from the sound definition.
    states = [s.state for s in buzzer.states]
    assert states == [0, 1, 0, 1, 0]   # two notes of the prompt chime, on an active buzzer
    times = [s.timestamp for s in buzzer.states]
    assert len(times) == 5
    prompt = render.render(sc.Prompt("hourly", "Ankle pumps", "10 each foot", 0, 2, icon="foot", minutes=2,
                                     shift=views.orbit(sim.clock.now(), views.PROMPT_ORBIT_S)), cfg.layout)
    assert sim.device.image.tobytes() == prompt.tobytes()
    sim.advance(local(cfg, "2026-11-24T08:20"))
    sim.close()
    recs = records(tmp_path, cfg)
    types = [r["type"] for r in recs if r["type"] != "verified"]     # the journal check's checkpoint
    assert types[:3] == ["start", "prompt", "press"]
    assert "done" in types and "snooze" in types
    done = next(r for r in recs if r["type"] == "done")
    assert done["session"] == "2026-11-24T07:00 hourly" and done["reps"] == 20


def test_restart_on_the_same_data_continues_the_unit(tmp_path: Path) -> None:
    cfg = config.Config()
    sim = simulate.build(cfg, tmp_path, local(cfg, "2026-11-24T06:50"))
    sim.unit.run(until=local(cfg, "2026-11-24T07:12"))   # power cut with the prompt up
    sim.close()
    sim = simulate.build(cfg, tmp_path, local(cfg, "2026-11-24T07:13"))
    sim.unit.start()
    assert isinstance(sim.unit.state.active, object)
    prompt = render.render(sc.Prompt("hourly", "Ankle pumps", "10 each foot", 1, 2, True, icon="foot", minutes=2,
                                     shift=views.orbit(sim.clock.now(), views.PROMPT_ORBIT_S)), cfg.layout)
    assert sim.device.image.tobytes() == prompt.tobytes()
    sim.button_pin.drive_low()
    sim.unit.run_once()
    sim.clock.advance_to(sim.clock.mono() + 0.3)
    sim.button_pin.drive_high()
    sim.unit.run_once()
    assert isinstance(sim.unit.state.active, object)
    sim.unit.run(until=local(cfg, "2026-11-24T07:20"))
    sim.close()
    recs = records(tmp_path, cfg)
    assert [r["type"] for r in recs if r.get("session") == "2026-11-24T07:00 hourly"].count("prompt") == 1
    assert any(r["type"] == "power_loss" for r in recs)
    assert any(r["type"] == "done" and r["session"] == "2026-11-24T07:00 hourly" for r in recs)


def test_press_reaches_the_display_through_gpiozero(tmp_path: Path) -> None:
    cfg = config.Config()
    sim = simulate.build(cfg, tmp_path, local(cfg, "2026-11-24T07:00:30"))
    sim.unit.start()
    before = sim.device.image.tobytes()
    sim.button_pin.drive_low()
    sim.unit.run_once()
    sim.clock.advance_to(sim.clock.mono() + 0.2)
    sim.button_pin.drive_high()
    sim.unit.run_once()
    after = sim.device.image.tobytes()
    assert after != before
    assert sim.device.image.tobytes() == render.render(sc.Intro("Ankle pumps", "left", 10, 1, 1, "foot"),
                                                          sim.unit.cfg.layout).tobytes()
    sim.close()


def test_led_pin_blinks_while_due_and_stays_on_after_a_miss(tmp_path: Path) -> None:
    cfg = config.Config()
    sim = simulate.build(cfg, tmp_path, local(cfg, "2026-11-24T06:59"))
    sim.advance(local(cfg, "2026-11-24T07:00:05"))
    led = sim.factory.pin(27)
    assert sim.unit.out.led is not None and sim.unit.out.led.mode == "due"
    sim.advance(local(cfg, "2026-11-24T07:31"))
    assert sim.unit.out.led.mode == "missed"
    assert led.state == 1
    sim.close()


def test_headless_cli_week_is_quiet_at_night(tmp_path: Path) -> None:
    from bedside.cli.main import main

    trace = tmp_path / "trace.jsonl"
    frames = tmp_path / "frames"
    script = tmp_path / "presses.txt"
    script.write_text("# two sessions done\n2026-11-24T09:02:00 press\n2026-11-25T19:05:00 press\n")
    rc = main(["simulate", "--headless", "--start", "2026-11-24T06:00", "--days", "2", "--data",
               str(tmp_path / "d"), "--script", str(script), "--trace", str(trace), "--frames", str(frames)])
    assert rc == 0
    cfg = config.Config()
    lines = [json.loads(x) for x in trace.read_text().splitlines()]
    sounds = [x for x in lines if x["effect"] == "sound"]
    assert sounds
    for s in sounds:
        hhmm = s["time"][11:16]
        assert "07:00" <= hhmm < "22:00", s
    assert {s["sound"] for s in sounds} <= set(SOUNDS)
    done = [x for x in lines if x["effect"] == "record" and x["type"] == "done"]
    assert [d["session"] for d in done] == ["2026-11-24T09:00 routine", "2026-11-25T19:00 routine"]
    assert len(list(frames.glob("*.png"))) > 100
    recs = records(tmp_path / "d", cfg)
    assert recs[-1]["time"] < "2026-11-26T06:00"
    assert len([r for r in recs if r["type"] == "prompt"]) == 30


def test_script_errors_name_the_line() -> None:
    tz = config.Config().tz
    with pytest.raises(simulate.ScriptError, match="line 2"):
        simulate.parse_script("2026-11-24T09:00 press\n2026-11-24T09:05 jump\n", tz)
    with pytest.raises(simulate.ScriptError, match=r"line 1.*date-time"):
        simulate.parse_script("tomorrow press\n", tz)
    acts = simulate.parse_script("2026-11-24T09:00 hold  # comment\n2026-11-24T08:00 press 0.5\n", tz)
    assert [(a.kind, a.seconds) for a in acts] == [("press", 0.5), ("hold", 2.5)]


def test_scripted_clock_jump_is_logged(tmp_path: Path) -> None:
    cfg = config.Config()
    script = simulate.parse_script("2026-11-24T08:30:00 clock 2026-11-24T09:45:00\n", cfg.tz)
    sim = simulate.build(cfg, tmp_path, local(cfg, "2026-11-24T08:20"), actions=script)
    sim.unit.run(until=local(cfg, "2026-11-24T10:40"))
    sim.close()
    recs = records(tmp_path, cfg)
    (cs,) = [r for r in recs if r["type"] == "clock_set"]
    assert cs["jump_s"] == pytest.approx(4500, abs=1)
    prompted = [r["session"] for r in recs if r["type"] == "prompt"]
    assert len(prompted) == len(set(prompted))
    # The routine was jumped over by 45 minutes, past its 30-minute window: accounted for, not offered.
    missed = {r["session"]: r["reason"] for r in recs if r["type"] == "missed"}
    assert missed["2026-11-24T09:00 routine"] == "clock_jump"
    assert "2026-11-24T10:00 hourly" in prompted


def test_keys_admit_a_demo_patient_operated_on_today_and_discharge() -> None:
    from datetime import UTC

    from bedside.core.events import Admit, Discharge, Instant

    tz = config.Config().tz
    now = Instant(datetime(2026, 11, 24, 9, 41, tzinfo=UTC), 1.0)
    a = simulate.demo_episode_event("a", now, tz)
    assert a == Admit("DEMO-11240941", datetime(2026, 11, 24).date(), None, via="simulator")
    assert simulate.describe(a) == "admit DEMO-11240941, surgery 2026-11-24"
    assert simulate.demo_episode_event("d", now, tz) == Discharge(None, via="simulator")


def test_config_check_lists_each_regimen_step_down(capsys: pytest.CaptureFixture[str]) -> None:
    from bedside.cli.main import main

    assert main(["config", "check", str(ROOT / "config/examples/hip-and-knee.toml")]) == 0
    out = capsys.readouterr().out
    assert "  regimen hip (default):\n    up to day 2: every 60 min; routine at 09:00, 19:00\n" in out
    assert "    days 3 to 5: every 120 min" in out and "    from day 6: no hourly prompts" in out
    assert "    up to day -1: no hourly prompts; routine at 10:00" in out
    assert "with no patient admitted: no prompts" in out


# --- the terminal --------------------------------------------------------------------------------

def _terminal(size: tuple[int, int] = (128, 64)) -> simulate.Terminal:
    from zoneinfo import ZoneInfo

    from bedside.unit.clock import VirtualClock

    tz = ZoneInfo("Europe/London")
    return simulate.Terminal(VirtualClock(datetime(2026, 11, 24, 6, 58, tzinfo=tz), 1.0), tz, size=size)


def test_an_80_by_24_terminal_shows_the_panel_and_every_line_fits() -> None:
    term = _terminal()
    term.image = render.render(sc.Prompt("hourly", "Ankle pumps", "10 each foot"), "large")
    term.sound = "♪ chime at 07:00:00"
    term.message = "data: " + "x" * 200
    lines = term.lines(80, 24)
    assert len(lines) <= 24
    assert all(len(line.replace("\x1b[0m", "")) <= 80 for line in lines)
    assert lines[0].startswith("┌") and any("█" in line or "▀" in line or "▄" in line for line in lines)
    assert any("[space] press" in line for line in lines) and any("[q] quit" in line for line in lines)


def test_a_terminal_too_small_says_the_size_it_needs() -> None:
    lines = _terminal().lines(50, 15)
    assert "50 x 15" in lines[0] and "at least 68 columns by 23 lines" in lines[1]
    assert all(len(line) <= 80 for line in lines)
    square = _terminal((128, 128)).lines(80, 24)
    assert "at least 68 columns by 39 lines" in square[1]
    assert _terminal((128, 128)).lines(80, 40)[0].startswith("┌")


def test_night_says_the_display_is_off_and_when_the_next_prompt_is() -> None:
    term = _terminal()
    term.screen = sc.Idle("06:58", "07:00", "Ankle pumps", 0, 0, (), night=True)
    term.brightness = "off"
    text = "\n".join(term.lines(80, 24))
    assert "The display is off" in text and "Next prompt 07:00" in text and "[space] lights it" in text


@pytest.mark.parametrize("panel", ["ssd1306", "ssd1322", "ssd1327"])
def test_the_simulator_draws_any_panel(panel: str, tmp_path: Path) -> None:
    import dataclasses

    base = config.Config()
    cfg = dataclasses.replace(base, hardware=dataclasses.replace(base.hardware, display=panel))
    frames: list[Any] = []
    sim = simulate.build(cfg, tmp_path / "d", datetime(2026, 11, 24, 6, 59, tzinfo=cfg.tz), on_frame=frames.append)
    try:
        sim.advance(datetime(2026, 11, 24, 7, 0, 30, tzinfo=cfg.tz))
    finally:
        sim.close()
    p = cfg.hardware.panel
    assert frames and frames[-1].size == (p.width, p.height)
    assert frames[-1].tobytes() == render.render(sim.unit.out.display._screen, p.default_layout).tobytes()


def test_vibration_motor_pulses_with_each_prompt_and_never_at_night(tmp_path: Path) -> None:
    import dataclasses
    import time

    base = config.Config()
    cfg = dataclasses.replace(base, hardware=dataclasses.replace(base.hardware, vibration_pin=22))
    sim = simulate.build(cfg, tmp_path / "d", datetime(2026, 11, 24, 5, 0, tzinfo=cfg.tz))
    try:
        motor = sim.factory.pin(22)
        sim.advance(datetime(2026, 11, 24, 6, 59, tzinfo=cfg.tz))
        assert [s.state for s in motor.states] == [False]          # silent night: still
        sim.advance(datetime(2026, 11, 24, 7, 0, 5, tzinfo=cfg.tz))
        deadline = time.monotonic() + 5
        while len(motor.states) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)                                         # gpiozero blinks on its own thread
        assert [s.state for s in motor.states] == [False, True, False, True, False]
    finally:
        sim.close()


def test_the_nurse_screens_titles_stay_readable_in_80_by_24() -> None:
    """Quarter blocks smear a title drawn dark on light into solid blocks: it is written as text."""
    import re

    from bedside.display.gallery import EXAMPLES

    shown = {}
    for e in EXAMPLES:
        if e.name in ("nurse-1", "nurse-3", "pause-menu"):
            term = _terminal()
            term.image, term.screen = render.render(e.screen, "large"), e.screen
            lines = term.lines(80, 24)
            plain = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in lines]
            assert all(len(line) <= 80 for line in plain) and len(lines) <= 24
            assert len({len(line) for line in plain[: 1 + 16 + 1]}) == 1        # the frame stays square
            shown[e.name] = plain[1]
    assert "ward7-bed12" in shown["nurse-1"] and "1/3" in shown["nurse-1"]
    assert "Prompts and power" in shown["nurse-3"] and "Pause prompts?" in shown["pause-menu"]
    assert not any("███" in line for line in shown.values())


def test_after_a_discharge_the_simulated_unit_is_silent_counted_from_its_trace(tmp_path: Path) -> None:
    """The default settings, an afternoon discharge: before, the hourly prompts sound with their
    repeats; after it, until the next morning and a press, not one sound and no prompt."""
    from bedside.cli.main import main

    trace = tmp_path / "trace.jsonl"
    script = tmp_path / "nurse.txt"
    script.write_text("2026-11-24T06:30:00 admit E2026-0042 2026-11-23\n"
                      "2026-11-24T13:00:20 discharge E2026-0042\n"     # the 13:00 prompt 20 s old
                      "2026-11-25T10:30:00 press\n")                    # someone at the empty bed
    rc = main(["simulate", "--headless", "--start", "2026-11-24T06:00", "--until", "2026-11-25T12:30", "--data",
               str(tmp_path / "d"), "--script", str(script), "--trace", str(trace)])
    assert rc == 0
    lines = [json.loads(x) for x in trace.read_text().splitlines()]
    gone = next(x["time"] for x in lines if x["effect"] == "record" and x["type"] == "discharge")
    pressed = next(x["time"] for x in lines if x["effect"] == "record" and x.get("action") == "occupied")
    before = [x for x in lines if x["effect"] == "sound" and x["time"] < gone]
    between = [x for x in lines if x["effect"] == "sound" and gone < x["time"] < pressed]
    after = [x for x in lines if x["effect"] == "sound" and x["time"] > pressed]
    assert len(before) >= 6 and between == []
    assert [x for x in lines if x["effect"] == "record" and x["type"] in ("prompt", "repeat", "missed")
            and gone < x["time"] < pressed and x.get("reason") != "discharged"] == []
    ready = [x for x in lines if x["effect"] == "screen" and x["screen"] == "Idle" and gone < x["time"] < pressed]
    assert ready and all(x["ready"] for x in ready)
    # The press: someone is there; the 11:00 and 12:00 sessions are offered (recorded as no one's admission).
    prompts = [x["session"] for x in lines if x["effect"] == "record" and x["type"] == "prompt" and x["time"] > pressed]
    assert prompts == ["2026-11-25T11:00 hourly", "2026-11-25T12:00 hourly"] and after
