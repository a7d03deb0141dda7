from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from bedside import config

from .conftest import ROOT


def test_shipped_defaults_file_matches_the_code_defaults() -> None:
    loaded = config.load(ROOT / "config" / "bedside.toml")
    assert loaded == config.Config(source=loaded.source)
    assert loaded.fingerprint() == config.Config().fingerprint()


def test_partial_file_takes_defaults(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[unit]\nid = "ward3-bed4"\n[awake]\nstart = "20:00"\nend = "12:00"\n[hardware]\nled_pin = -1\n')
    c = config.load(p)
    assert (c.unit_id, c.awake_start, c.awake_end, c.hardware.led_pin) == ("ward3-bed4", time(20), time(12), None)
    assert c.routine_at == config.Config().routine_at


@pytest.mark.parametrize(("text", "message"), [
    ('[unit]\nid = ""', "[unit] id: must be 1 to 32 letters"),
    ('[unit]\ntimezone = "Mars/Olympus"', '[unit] timezone: must be an IANA time zone name'),
    ('[awake]\nend = "24:00"', '[awake] end: must be a 24-hour time'),
    ("[hourly]\nevery_minutes = 5", "[hourly] every_minutes: prompts less than 15 minutes apart"),
    ('[hourly]\nexercises = [{ name = "Pumps", reps = 0 }]', "[hourly] exercises #1 reps: must be a whole number"),
    ('[hourly]\nexercises = [{ name = "A", reps = 5, sets = 2 }]', "[hourly] exercises #1 sets: unknown key"),
    ("[hourly]\nexercises = []", "[hourly] exercises: must name at least one exercise"),
    ('[routine]\nat = ["09:00", "09:00"]', "[routine] at: lists the same time twice"),
    ("[reminders]\nmax_snoozes = -1", "[reminders] max_snoozes: must be a whole number from 0 to 5"),
    ("[reminders]\nsnooze_minutes = true", "[reminders] snooze_minutes: must be a whole number"),
    ('[hardware]\ndisplay = "st7735"', "[hardware] display: must be one of 'ssd1306', 'sh1106'"),
    ("[hardware]\nbutton_pin = 18", "[hardware]: two parts share one GPIO pin"),
    ("[hardware]\nled_pin = 3", "[hardware] led_pin: GPIO 3 is the I2C bus"),
    ("[serial]\nport = 5", "[serial] port: must be a device path"),
    ("[nurse]\nx = 1", "[nurse]: unknown section"),
    ("unit = 3", "[unit]: must be a table"),
])
def test_each_problem_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text + "\n")
    with pytest.raises(config.ConfigError) as e:
        config.load(p)
    assert message in str(e.value)
    assert str(p) in str(e.value)


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(config.ConfigError) as e:
        config.parse({"reminders": {"snooze_minutes": 0, "max_snoozes": 9}, "unit": {"id": "a b"}}, "x.toml")
    assert len(e.value.problems) == 3


def test_config_is_hashable_and_stable() -> None:
    a, b = config.Config(), config.Config()
    assert hash(a) == hash(b) and a == b
    assert {a: 1}[b] == 1
