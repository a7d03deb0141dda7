"""A nurse's pause: from the nurse screen with the button alone, from the link, ended early or by itself."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bedside.core import pause
from bedside.core import screens as sc
from bedside.core.config import Config
from bedside.core.events import Notice, Pause, Resume
from tests.rigs.driver import Driver


def t(cfg: Config, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=cfg.tz)


def nurse_pause(d: Driver, at: datetime, presses: int) -> None:
    """Hold 6 s for the nurse screen, a press for the menu, ``presses`` more to step, a hold to pick."""
    d.press(at, 6)
    for n in range(presses + 1):
        d.press(at + timedelta(seconds=8 + 2 * n), 0.3)
    d.press(at + timedelta(seconds=8 + 2 * (presses + 1)), 2.5)


def test_the_button_alone_pauses_for_two_hours_and_sessions_inside_are_paused_not_missed() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T11:50"))
    nurse_pause(d, t(cfg, "2026-11-24T11:55"), presses=1)        # 1 hour -> 2 hours
    d.run_until(t(cfg, "2026-11-24T11:56"))
    (_, rec), = d.records("pause")
    assert dict(rec.data) == {"until": "2026-11-24T13:55:14+00:00", "duration": "2h", "via": "button"}
    screen = d.screen()
    assert isinstance(screen, sc.Idle) and screen.paused == "13:55"
    d.run_until(t(cfg, "2026-11-24T14:20"))
    assert d.sessions("paused") == ["2026-11-24T12:00 hourly", "2026-11-24T13:00 hourly"]
    assert not d.sessions("missed")
    assert [s for w, s in d.sounds() if w < t(cfg, "2026-11-24T13:55:14")] == []
    (_, resumed), = d.records("resume")
    assert resumed.data["via"] == "timer" and resumed.data["early"] is False
    assert "2026-11-24T14:00 hourly" in d.sessions("prompt")     # prompting again after the pause
    assert any(s == "prompt" for w, s in d.sounds() if w >= t(cfg, "2026-11-24T14:00"))


def test_a_press_on_the_nurse_screen_resumes_early_and_says_so() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T11:50"))
    d.send(t(cfg, "2026-11-24T11:51"), Pause("4h", via="serial"))
    d.press(t(cfg, "2026-11-24T12:30"), 6)
    d.press(t(cfg, "2026-11-24T12:30:08"), 0.3)
    d.run_until(t(cfg, "2026-11-24T12:30:09"))
    assert d.screen() == sc.Hint("Prompts", "resumed")
    (_, rec), = d.records("resume")
    assert dict(rec.data) == {"via": "button", "early": True, "until": "2026-11-24T15:51:00+00:00"}
    d.run_until(t(cfg, "2026-11-24T13:01"))
    assert d.sessions("paused") == ["2026-11-24T12:00 hourly"]
    assert "2026-11-24T13:00 hourly" in d.sessions("prompt")


def test_pausing_a_prompt_that_is_up_pauses_it_and_the_menu_can_be_cancelled() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T09:59"))
    d.run_until(t(cfg, "2026-11-24T10:00:30"))
    assert isinstance(d.screen(), sc.Prompt)
    nurse_pause(d, t(cfg, "2026-11-24T10:01"), presses=4)         # round to "Don't pause": nothing changes
    d.run_until(t(cfg, "2026-11-24T10:01:30"))
    assert not d.records("pause") and isinstance(d.screen(), sc.Prompt)
    d.send(t(cfg, "2026-11-24T10:02"), Pause("morning", via="simulator"))
    assert d.sessions("paused") == ["2026-11-24T10:00 hourly"]
    (_, rec), = d.records("pause")
    assert rec.data["until"] == "2026-11-25T07:00:00+00:00"
    d.run_until(t(cfg, "2026-11-25T07:20"))
    assert not d.sessions("missed")
    assert len(d.sessions("paused")) == 12    # 10:00 (up when paused), then 11:00 to 21:00 (19:00 the routine)
    assert d.sessions("prompt")[-1] == "2026-11-25T07:00 hourly"


def test_no_sound_during_a_pause_not_even_a_fault() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T09:00:30"))
    d.send(t(cfg, "2026-11-24T09:01"), Pause("1h", via="serial"))
    d.send(t(cfg, "2026-11-24T09:10"), Notice("display", "Display: OSError"))
    d.run_until(t(cfg, "2026-11-24T10:01:30"))
    assert [s for w, s in d.sounds() if t(cfg, "2026-11-24T09:01") <= w < t(cfg, "2026-11-24T10:01")] == []
    assert d.records("fault")


def test_a_pause_survives_a_power_cut_and_the_nurse_sees_the_cut() -> None:
    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T11:50"))
    d.send(t(cfg, "2026-11-24T11:51"), Pause("4h", via="serial"))
    d.run_until(t(cfg, "2026-11-24T12:10"))
    d.restart(after=timedelta(hours=2, minutes=5))      # the last record: the paused 12:00 session
    d.run_until(t(cfg, "2026-11-24T16:20"))
    assert d.sessions("paused") == [f"2026-11-24T{h}:00 hourly" for h in (12, 13, 14, 15)]
    assert not d.sessions("missed")
    d.press(t(cfg, "2026-11-24T16:21"), 6)
    d.run_until(t(cfg, "2026-11-24T16:21:20"))
    n = d.screen()
    assert isinstance(n, sc.Nurse) and n.power_cut == "24 Nov 12:00 2h15" and n.paused is None


def test_storage_outage_is_shown_until_the_next_download() -> None:
    from bedside.core.events import Exported
    from bedside.core.views import nurse_screen

    cfg = Config()
    d = Driver(cfg, t(cfg, "2026-11-24T09:00"))
    d.send(t(cfg, "2026-11-24T09:10"), Notice("journal", "Log not saved: tell nurse"))
    d.send(t(cfg, "2026-11-24T09:20"), Notice("journal", None))
    assert nurse_screen(cfg, d.state, d.now).storage == "24 Nov 09:10"
    d.send(t(cfg, "2026-11-24T10:20"), Exported("usb"))
    assert nurse_screen(cfg, d.state, d.now).storage == ""


def test_pause_lengths() -> None:
    cfg = Config()
    now = t(cfg, "2026-11-24T02:30")
    assert pause.until(cfg, "morning", now) == t(cfg, "2026-11-24T07:00")
    assert pause.until(cfg, "2h", now) == now + timedelta(hours=2)
    assert pause.parse("2 h") == "2h" and pause.parse("Morning") == "morning"
    with pytest.raises(pause.PauseError, match="1h, 2h, 4h, morning"):
        pause.parse("3h")
    assert Resume().via == "serial"
