from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pytest

from bedside.core import config, schema
from bedside.unit import host
from tests.conftest import ROOT


def test_shipped_defaults_file_matches_the_code_defaults() -> None:
    loaded = host.load(ROOT / "config" / "bedside.toml")
    assert loaded == config.Config(source=loaded.source)
    assert loaded.fingerprint() == config.Config().fingerprint()


def test_partial_file_takes_defaults(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[unit]\nid = "ward3-bed4"\n[awake]\nstart = "20:00"\nend = "12:00"\n[hardware]\nled_pin = -1\n')
    c = host.load(p)
    assert (c.unit_id, c.awake_start, c.awake_end, c.hardware.led_pin) == ("ward3-bed4", time(20), time(12), None)
    assert c.routine_at == config.Config().routine_at


@pytest.mark.parametrize(("text", "message"), [
    ('[unit]\nid = ""', "[unit] id: must be 1 to 32 letters"),
    ('[unit]\ntimezone = "Mars/Olympus"', '[unit] timezone: must be an IANA time zone name'),
    ('[awake]\nend = "24:00"', '[awake] end: must be a 24-hour time'),
    ("[hourly]\nevery_minutes = 5", "[hourly] every_minutes: prompts less than 15 minutes apart"),
    ('[hourly]\nexercises = [{ name = "Pumps", reps = 0 }]', "[hourly] exercises #1 reps: must be a whole number"),
    ('[hourly]\nexercises = [{ name = "A", reps = 5, rounds = 2 }]', "[hourly] exercises #1 rounds: unknown key"),
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
    ('[hourly]\nexercises = [{ name = "Ankle pumps, both feet", reps = 5 }]', "#1 name: must be text of 1 to 15"),
    ('[episodes]\ndefault_regimen = "hip"', "[episodes] default_regimen: must name one of the regimens (standard)"),
    ('[episodes]\nwithout_episode = "off"', "[episodes] without_episode: must be one of 'default', 'quiet'"),
    ('[episodes]\nregimen = "x"', "[episodes] regimen: unknown key"),
    ("[regimens.Hip]\nstages = [{ from_day = 0 }]", "[regimens.Hip]: a regimen's name must be 1 to 12 lower-case"),
    ("[regimens.hip]\nstages = []", "[regimens.hip] stages: must be a list of stages"),
    ("[regimens.hip]\nsteps = []", "[regimens.hip] steps: unknown key (known: stages)"),
    ("[regimens.hip]\nstages = [{ hourly_every_minutes = 0 }]", "[regimens.hip] stages #1 from_day: must be the"),
    ("[regimens.hip]\nstages = [{ from_day = 400 }]", "from_day: must be the post-operative day"),
    ("[regimens.hip]\nstages = [{ from_day = 3 }, { from_day = 0 }]", "[regimens.hip] stages: must start on "
     "different days, in order"),
    ("[regimens.hip]\nstages = [{ from_day = 0, every = 30 }]", "[regimens.hip] stages #1 every: unknown key"),
    ("[regimens.hip]\nstages = [{ from_day = 0, hourly_every_minutes = 10 }]", "stages #1 hourly_every_minutes: "
     "prompts less than 15 minutes apart"),
    ('[regimens.hip]\nstages = [{ from_day = 0, routine_at = ["9:00"] }]', "stages #1 routine_at #1: must be a "
     "24-hour time"),
    ("[regimens.hip]\nstages = [{ from_day = 0, hourly_exercises = [] }]", "stages #1: has hourly prompts but "
     "no hourly exercises"),
    ('[regimens.hip]\nstages = [{ from_day = 0, routine_exercises = [{ name = "A", reps = 0 }] }]',
     "stages #1 routine_exercises #1 reps: must be a whole number"),
    ('[display]\nnight = "bright"', "[display] night: must be one of 'off', 'dim'"),
    ("[display]\ndim_after_minutes = -1", "[display] dim_after_minutes: must be a whole number of minutes"),
    ('[hardware]\ntone = "treble"', "[hardware] tone: must be one of 'low', 'normal', 'high'"),
])
def test_each_problem_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text + "\n")
    with pytest.raises(config.ConfigError) as e:
        host.load(p)
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


def test_regimens_replace_the_default_and_stages_override_only_what_they_name() -> None:
    c = config.parse({
        "episodes": {"default_regimen": "hip", "without_episode": "quiet"},
        "regimens": {
            "hip": {"stages": [{"from_day": -2, "routine_at": ["10:00"], "hourly_every_minutes": 0},
                               {"from_day": 0},
                               {"from_day": 4, "hourly_every_minutes": 120,
                                "hourly_exercises": [{"name": "Quad sets", "reps": 5, "hold_seconds": 5}]}]},
            "knee": {"stages": [{"from_day": 0}]},
        },
    })
    assert [r.name for r in c.regimens] == ["hip", "knee"]
    hip = c.regimen("hip")
    assert hip is not None and c.default_regimen == "hip" and c.without_episode == "quiet"
    assert hip.stages[0] == config.Stage(-2, 0, None, (time(10),), None)
    assert hip.stages[1] == config.Stage(0)
    assert hip.stages[2].hourly_exercises == (config.Exercise("Quad sets", 5, False, 5, "quad_set"),)
    assert c.regimen("standard") is None


def test_a_regimen_may_rely_on_sections_set_elsewhere_in_the_file() -> None:
    # Hourly prompts come back in a stage even though [hourly] turns them off, using [hourly] exercises.
    c = config.parse({"hourly": {"every_minutes": 0},
                      "regimens": {"standard": {"stages": [{"from_day": 0, "hourly_every_minutes": 60}]}}})
    assert c.regimens[0].stages[0].hourly_every_minutes == 60


def test_panels_layouts_and_the_vibration_motor() -> None:
    assert config.Config().layout == "large" and config.Config().hardware.display == "ssd1309"
    c = config.parse({"hardware": {"display": "ssd1322", "vibration_pin": 22}}, "x.toml")
    assert c.layout == "wide" and c.hardware.vibration_pin == 22
    assert config.parse({"hardware": {"display": "ssd1306"}, "display": {"layout": "standard"}}, "x").layout \
        == "standard"
    with pytest.raises(config.ConfigError) as e:
        config.parse({"hardware": {"display": "ssd1327", "vibration_pin": 17}, "display": {"layout": "wide"}}, "x")
    text = str(e.value)
    assert "[display] layout: must be one of '', 'square'" in text and "share one GPIO pin" in text
    with pytest.raises(config.ConfigError, match="SPI bus"):
        config.parse({"hardware": {"display": "ssd1322", "led_pin": 10}}, "x")
    with pytest.raises(config.ConfigError, match="display: must be one of"):
        config.parse({"hardware": {"display": "st7735"}}, "x")


# --- the schema: one row per setting feeds the parser, the key check, the messages and the annotated file ---

def test_the_annotated_file_is_the_schema_written_out() -> None:
    """config/bedside.toml is generated from the rows (tools/config_example.py), so its keys, defaults
    and comments cannot drift from what the parser reads."""
    assert (ROOT / "config" / "bedside.toml").read_text(encoding="utf-8") == config.example_file(), \
        "config/bedside.toml differs from the schema: run python tools/config_example.py"


def test_every_row_is_a_field_default_and_a_known_key() -> None:
    c = config.Config()
    for s in config.SCHEMA:
        assert schema.get(c, s.path) == s.default, s.where
        with pytest.raises(config.ConfigError, match=rf"\[{s.section}\] {s.key}x: unknown key \(known: .*{s.key}"):
            config.parse({s.section: {s.key + "x": 1}})
    assert len({s.where for s in config.SCHEMA}) == len(config.SCHEMA)


@pytest.mark.parametrize("where", [s.where for s in config.SCHEMA])
def test_every_key_refuses_a_value_of_the_wrong_kind_and_names_itself(where: str) -> None:
    s = next(s for s in config.SCHEMA if s.where == where)
    with pytest.raises(config.ConfigError) as e:
        config.parse({s.section: {s.key: {"a": 1}}}, "x.toml")
    assert [p for p in e.value.problems if p.startswith(f"{where}: ")], e.value.problems


def test_problems_come_in_the_files_order() -> None:
    # [display] comes before [hardware] in the file, so its layout's problem is listed first.
    with pytest.raises(config.ConfigError) as e:
        config.parse({"hardware": {"display": "bogus", "led_pin": 3}, "display": {"layout": "wide"},
                      "unit": {"id": ""}, "nurse": {}}, "x")
    assert [p.split(":")[0] for p in e.value.problems] == [
        "[nurse]", "[unit] id", "[display] layout", "[hardware] display", "[hardware] led_pin"]


@pytest.mark.parametrize(("key", "good", "bad"), [
    ("board", "Rock Pi 4 (v1.4)", "Rock/Pi"),
    ("gpio_chip", "/dev/gpiochip4", "/dev/gpiochip"),
    ("gpio_chip", "pinctrl-rp1", "pinctrl rp1"),
])
def test_board_and_chip_are_text_matching_a_pattern(key: str, good: str, bad: str) -> None:
    chip = {"gpio_chip": "c"} if key == "board" else {}
    assert getattr(config.parse({"hardware": {key: good, **chip}}).hardware, key) == good
    assert config.parse({"hardware": {key: ""}}).hardware == config.Hardware()     # "": a Raspberry Pi's own
    with pytest.raises(config.ConfigError, match=rf"\[hardware\] {key}: must be .*got '{re.escape(bad)}'"):
        config.parse({"hardware": {key: bad, **chip}})


def test_the_laptop_reads_the_hospital_table_by_the_same_rows() -> None:
    problems: list[tuple[str, str]] = []
    h = config.parse_hospital({"visit_system": "urn:x", "wristband": "(", "create_patient": 1},
                              lambda where, what: problems.append((where, what)))
    assert h == config.Hospital(visit_system="urn:x")
    assert [w for w, _ in problems] == ["[hospital] wristband", "[hospital] create_patient"]


def test_a_change_is_named_in_a_nurses_words_and_the_units_own_parts_are_marked() -> None:
    new = config.parse({"display": {"night": "dim"}, "reminders": {"max_snoozes": 0, "snooze_minutes": 5},
                        "unit": {"timezone": "Europe/Paris", "id": "other"}, "hardware": {"rotate": 2},
                        "regimens": {"standard": {"stages": [{"from_day": 0}]}}})
    assert config.changed(config.Config(), new) == ["time zone", "snooze", "regimens", "display"]
    assert config.OWN == ("unit_id", "hardware", "serial")       # a ward's configuration never sets these
