"""The unit's configuration: one TOML file, validated in full before anything starts.

Every key has a default (the values in ``config/bedside.toml``, which a test keeps in
step with this module), so a ward's file only needs the keys it changes. Unknown keys
are errors: a misspelt ``snooze_minuts`` must not silently fall back to the default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bedside.core import digest, exercises
from bedside.core.errors import USAGE, BedsideError
from bedside.core.panels import DEFAULT_PANEL, PANELS, Panel


class ConfigError(BedsideError):
    """One or more problems in a config file, each naming the file, the key and the fix."""

    exit_code = USAGE

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(self.__str__())

    def __str__(self) -> str:
        lines = [f"{self.source}: {len(self.problems)} problem(s) in the configuration:"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


@dataclass(frozen=True)
class Exercise:
    name: str
    reps: int
    per_foot: bool = False
    hold_seconds: int = 0
    kind: str | None = None     # a key of exercises.KINDS; None: told from the name (exercises.from_name)
    sets: int = 1               # sets of ``reps``, with a rest between them
    tip: str = ""               # shown before the exercise's guide: "Raise your leg on a pillow"


@dataclass(frozen=True)
class Hardware:
    display: str = DEFAULT_PANEL   # a row of core/panels.py
    i2c_port: int = 1
    i2c_address: int = 0x3C
    spi_port: int = 0              # SPI panels (ssd1322): bus, chip select, data/command and reset pins
    spi_device: int = 0
    dc_pin: int = 24
    reset_pin: int = 25
    button_pin: int = 17
    buzzer_pin: int = 18
    buzzer: str = "active"
    led_pin: int | None = 27
    rotate: int = 0
    volume: int = 50
    tone: str = "normal"           # passive buzzers: low | normal | high pitch
    gpio: str = "auto"             # pin backend: auto (gpiozero's choice) | lgpio | rpigpio
    vibration_pin: int | None = None   # a vibration motor (through a transistor) that pulses with each prompt
    # "" = a Raspberry Pi, named by its device tree (the supported target). Another Linux board
    # with a GPIO chip is named here, with its chip in gpio_chip (docs/install.md, "Other boards").
    board: str = ""
    gpio_chip: str = ""            # "" = the Pi header's chip, found by its kernel label; else a label or /dev path
    emulated_display: bool = False     # draw into a panel in memory: a board under test with no panel fitted

    @property
    def panel(self) -> Panel:
        return PANELS[self.display]


@dataclass(frozen=True)
class Display:
    night: str = "off"             # outside the awake window: off (a press lights it) | dim (a dim clock)
    dim_after_minutes: int = 10    # daytime idle clock dims after this long untouched; 0 = never
    layout: str = ""               # "" = the panel's own default (core/panels.py)


@dataclass(frozen=True)
class Stage:
    """Part of a regimen, from a post-operative day on; None keeps the [hourly]/[routine] setting."""

    from_day: int
    hourly_every_minutes: int | None = None
    hourly_exercises: tuple[Exercise, ...] | None = None
    routine_at: tuple[time, ...] | None = None
    routine_exercises: tuple[Exercise, ...] | None = None


@dataclass(frozen=True)
class Regimen:
    name: str
    stages: tuple[Stage, ...]


@dataclass(frozen=True)
class Serial:
    port: str = ""
    baud: int = 115200


@dataclass(frozen=True)
class Ward:
    """How ``bedside ward`` judges this ward's beds (the units themselves ignore it): how far back
    attention looks (the last ``attention_hours``, or with ``handovers`` since the handover before
    the last one) and when a record is too old to say how a bed is doing."""

    attention_hours: int = 24
    handovers: tuple[time, ...] = ()
    stale_after_hours: int = 24


# The pin backends a unit can use (hardware/README.md, the board matrix): lgpio on Bookworm and
# the only one a Pi 5 has; RPi.GPIO on Bullseye and older systems.
GPIO_BACKENDS = ("auto", "lgpio", "rpigpio")

DEFAULT_HOURLY = (Exercise("Ankle pumps", 10, per_foot=True, hold_seconds=3, kind="ankle_pump"),)
DEFAULT_ROUTINE = (
    Exercise("Ankle pumps", 20, per_foot=True, hold_seconds=3, kind="ankle_pump"),
    Exercise("Quad sets", 10, hold_seconds=5, kind="quad_set", sets=2),
    Exercise("Glute sets", 10, hold_seconds=5, kind="glute_set", sets=2),
)
# Before surgery the brief asks for ankle pumps only: 20 per foot at the routine's times.
PRE_OP_ROUTINE = (Exercise("Ankle pumps", 20, per_foot=True, hold_seconds=3, kind="ankle_pump"),)


# Published regimens: ankle pumps every waking hour for the first 48 hours or so, and the
# fuller routine twice a day throughout; day 0 is the day of surgery.
DEFAULT_REGIMENS = (Regimen("standard", (Stage(-30, hourly_every_minutes=0, routine_exercises=PRE_OP_ROUTINE),
                                          Stage(0), Stage(3, hourly_every_minutes=0))),)


@dataclass(frozen=True, slots=True)
class Hospital:
    """The hospital's own identifier systems and what the FHIR export may create ([hospital] in the
    ward's file; the laptop's settings file may say the same). docs/fhir.md explains each."""

    visit_system: str = ""         # the URI of the hospital's visit (encounter) numbers
    mrn_system: str = ""           # the URI of its medical record numbers
    wristband: str = ""            # a regular expression for a scanned wristband: group "visit", optional "mrn"
    create_patient: bool = False   # the bundle may create a Patient (identifier only) the server lacks
    create_encounter: bool = False  # the bundle owns the Encounter (creates it, updates its status and end)


@dataclass(frozen=True)
class Config:
    unit_id: str = "ward7-bed12"
    timezone: str = "Europe/London"
    awake_start: time = time(7, 0)
    awake_end: time = time(22, 0)
    hourly_every_minutes: int = 60
    hourly_exercises: tuple[Exercise, ...] = DEFAULT_HOURLY
    routine_at: tuple[time, ...] = (time(9, 0), time(19, 0))
    routine_exercises: tuple[Exercise, ...] = DEFAULT_ROUTINE
    repeat_every_minutes: int = 10
    missed_after_minutes: int = 30
    snooze_minutes: int = 10
    max_snoozes: int = 2
    default_regimen: str = "standard"
    without_episode: str = "default"   # default: the default regimen, from first start or discharge | quiet
    regimens: tuple[Regimen, ...] = DEFAULT_REGIMENS
    display: Display = field(default_factory=Display)
    hardware: Hardware = field(default_factory=Hardware)
    serial: Serial = field(default_factory=Serial)
    hospital: Hospital = field(default_factory=Hospital)
    ward: Ward = field(default_factory=Ward)
    source: str = "built-in defaults"
    warnings: tuple[str, ...] = ()      # what the file should say more plainly (not errors: the unit runs)
    refused: tuple[str, ...] = ()       # what the shell could not use and ran without (the unit records it)

    @property
    def tz(self) -> ZoneInfo:
        return _zone(self.timezone)

    @property
    def layout(self) -> str:
        """The screen layout drawn: ``[display] layout``, else the panel's own."""
        return self.display.layout or self.hardware.panel.default_layout

    def __hash__(self) -> int:
        # The planner memoises on the config; hashing every field on each lookup dominated
        # a simulated day's CPU time, so the (immutable) config hashes once.
        h: int | None = self.__dict__.get("_hash")
        if h is None:
            h = hash(tuple(getattr(self, f) for f in self.__dataclass_fields__))
            object.__setattr__(self, "_hash", h)
        return h

    def regimen(self, name: str) -> Regimen | None:
        return next((r for r in self.regimens if r.name == name), None)

    def fingerprint(self) -> str:
        """A short stable hash of the settings (not the file's path), logged at start."""
        blob = json.dumps(_plain(self), sort_keys=True, default=str)
        return digest.sha256(blob.encode()).hexdigest()[:12]


def _plain(cfg: Config) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(cfg)
    d.pop("source")
    d.pop("warnings")
    d.pop("refused")
    if cfg.hospital == Hospital():
        d.pop("hospital")          # a unit that never had the section keeps the fingerprint it had
    return d


_ZONES: dict[str, ZoneInfo] = {}


def _zone(name: str) -> ZoneInfo:
    # ZoneInfo caches too, but keeping our own avoids its key normalisation cost on hot paths.
    z = _ZONES.get(name)
    if z is None:
        z = _ZONES[name] = ZoneInfo(name)
    return z


# --- parsing -------------------------------------------------------------------------

_SCHEMA: dict[str, set[str]] = {
    "unit": {"id", "timezone"},
    "awake": {"start", "end"},
    "hourly": {"every_minutes", "exercises"},
    "routine": {"at", "exercises"},
    "reminders": {"repeat_every_minutes", "missed_after_minutes", "snooze_minutes", "max_snoozes"},
    "episodes": {"default_regimen", "without_episode"},
    "hospital": {"visit_system", "mrn_system", "wristband", "create_patient", "create_encounter"},
    "regimens": set(),               # one table per regimen, checked on its own
    "display": {"night", "dim_after_minutes", "layout"},
    "hardware": {
        "display", "i2c_port", "i2c_address", "button_pin", "buzzer_pin", "buzzer", "led_pin", "rotate", "volume",
        "tone", "gpio", "spi_port", "spi_device", "dc_pin", "reset_pin", "vibration_pin", "board", "gpio_chip",
        "emulated_display",
    },
    "serial": {"port", "baud"},
    "ward": {"attention_hours", "handovers", "stale_after_hours"},
}
_EXERCISE_KEYS = {"name", "reps", "per_foot", "hold_seconds", "kind", "sets", "tip"}
_STAGE_KEYS = {"from_day", "hourly_every_minutes", "hourly_exercises", "routine_at", "routine_exercises"}
# Regimen names are shown on the nurse screen and recorded on admission.
_REGIMEN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,11}$")
_UNIT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_BOARD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._()+-]{0,39}$")
_GPIO_CHIP = re.compile(r"^(/dev/gpiochip[0-9]{1,3}|[A-Za-z0-9][A-Za-z0-9._:+-]{0,63})$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class _Reader:
    """Collects every problem instead of stopping at the first, so one edit fixes them all."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def fail(self, key: str, message: str) -> None:
        self.problems.append(f"{key}: {message}")

    def get(self, section: str, key: str) -> Any:
        sec = self.data.get(section, {})
        return sec.get(key, _MISSING) if isinstance(sec, Mapping) else _MISSING

    def integer(self, section: str, key: str, default: int, lo: int, hi: int, unit: str = "") -> int:
        v = self.get(section, key)
        if v is _MISSING:
            return default
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            what = f" {unit}" if unit else ""
            self.fail(f"[{section}] {key}", f"must be a whole number{what} from {lo} to {hi}, got {v!r}")
            return default
        return v

    def choice(self, section: str, key: str, default: str, options: tuple[str, ...]) -> str:
        v = self.get(section, key)
        if v is _MISSING:
            return default
        if v not in options:
            self.fail(f"[{section}] {key}", f"must be one of {', '.join(repr(o) for o in options)}, got {v!r}")
            return default
        return str(v)

    def clock_time(self, key: str, v: Any) -> time | None:
        m = _HHMM.match(v) if isinstance(v, str) else None
        if not m:
            self.fail(key, f'must be a 24-hour time written "HH:MM" such as "07:00", got {v!r}')
            return None
        return time(int(m.group(1)), int(m.group(2)))

    def exercises(self, section: str, default: tuple[Exercise, ...]) -> tuple[Exercise, ...]:
        v = self.get(section, "exercises")
        if v is _MISSING:
            return default
        return self.exercise_list(f"[{section}] exercises", v, default)

    def exercise_kind(self, key: str, v: Any, name: Any) -> str | None:
        """The exercise's kind: as written (checked), or told from its name with a warning."""
        known = ", ".join(exercises.KINDS)
        if v is not _MISSING:
            if v not in exercises.KINDS:
                self.fail(f"{key} kind", f"must be one of {known}, got {v!r}")
                return None
            return str(v)
        if not isinstance(name, str):
            return None
        told = exercises.from_name(name)
        if told is None:
            self.warnings.append(f'{key}: no kind, and the name {name.strip()!r} tells none, so it is guided as '
                                 f'"{exercises.OTHER}" (its name, then relax, with no picture); add kind = one of '
                                 f"{known}")
            return exercises.OTHER
        self.warnings.append(f'{key}: no kind; taken as "{told}" from the name {name.strip()!r} (add kind = "{told}")')
        return told

    def every_minutes(self, key: str, v: Any, default: int) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 1440:
            self.fail(key, f"must be a whole number of minutes from 0 to 1440 (0 turns hourly prompts off), got {v!r}")
            return default
        if 0 < v < 15:
            self.fail(key, f"prompts less than 15 minutes apart would never let a session finish, got {v}")
            return default
        return v

    def times(self, key: str, v: Any, default: tuple[time, ...]) -> tuple[time, ...]:
        if not isinstance(v, list):
            self.fail(key, 'must be a list of times such as ["09:00", "19:00"]')
            return default
        found = [self.clock_time(f"{key} #{i}", t) for i, t in enumerate(v, 1)]
        good = [t for t in found if t is not None]
        if len(set(good)) != len(good):
            self.fail(key, "lists the same time twice")
        return tuple(sorted(set(good)))

    def exercise_list(self, key: str, v: Any, default: tuple[Exercise, ...]) -> tuple[Exercise, ...]:
        if not isinstance(v, list):
            self.fail(key, "must be a list of exercises like { name = \"Ankle pumps\", reps = 10 }")
            return default
        out = []
        for i, e in enumerate(v, 1):
            k = f"{key} #{i}"
            if not isinstance(e, Mapping):
                self.fail(k, "must be a table like { name = \"Ankle pumps\", reps = 10 }")
                continue
            for extra in sorted(set(e) - _EXERCISE_KEYS):
                self.fail(f"{k} {extra}", f"unknown key (known: {', '.join(sorted(_EXERCISE_KEYS))})")
            name, reps = e.get("name"), e.get("reps")
            per_foot, hold = e.get("per_foot", False), e.get("hold_seconds", 0)
            ok = True
            if not isinstance(name, str) or not 1 <= len(name.strip()) <= 15:
                self.fail(f"{k} name", "must be text of 1 to 15 characters (it is shown on the display in large "
                          f"type), got {name!r}")
                ok = False
            elif not _displayable(name):
                self.fail(f"{k} name", f"has characters the display cannot show (it has Western European letters, "
                          f"digits and punctuation), got {name!r}")
                ok = False
            if isinstance(reps, bool) or not isinstance(reps, int) or not 1 <= reps <= 100:
                self.fail(f"{k} reps", f"must be a whole number from 1 to 100, got {reps!r}")
                ok = False
            if not isinstance(per_foot, bool):
                self.fail(f"{k} per_foot", f"must be true or false, got {per_foot!r}")
                ok = False
            if isinstance(hold, bool) or not isinstance(hold, int) or not 0 <= hold <= 30:
                self.fail(f"{k} hold_seconds", f"must be a whole number of seconds from 0 to 30, got {hold!r}")
                ok = False
            sets, tip = e.get("sets", 1), e.get("tip", "")
            if isinstance(sets, bool) or not isinstance(sets, int) or not 1 <= sets <= 5:
                self.fail(f"{k} sets", f"must be a whole number from 1 to 5, got {sets!r}")
                ok = False
            if not isinstance(tip, str) or len(tip) > 40 or not _displayable(tip):
                self.fail(f"{k} tip", "must be text of at most 40 characters the display can show, such as "
                          f'"Raise your leg on a pillow", got {tip!r}')
                ok = False
            kind = self.exercise_kind(k, e.get("kind", _MISSING), name)
            if ok and isinstance(name, str) and isinstance(reps, int) and isinstance(hold, int) and kind \
                    and isinstance(sets, int) and isinstance(tip, str):
                out.append(Exercise(name.strip(), reps, bool(per_foot), hold, kind, sets, tip.strip()))
        return tuple(out) if out or not v else default


_MISSING: Any = object()


def _displayable(text: str) -> bool:
    """True when the display's fonts (Latin-1) have every character and none is a control character."""
    return all(" " <= ch <= "~" or "\xa0" <= ch <= "\xff" for ch in text)


def _stage(r: _Reader, key: str, v: Any) -> Stage | None:
    if not isinstance(v, Mapping):
        r.fail(key, "must be a table like { from_day = 3, hourly_every_minutes = 0 }")
        return None
    for extra in sorted(set(v) - _STAGE_KEYS):
        r.fail(f"{key} {extra}", f"unknown key (known: {', '.join(sorted(_STAGE_KEYS))})")
    day = v.get("from_day", _MISSING)
    if isinstance(day, bool) or not isinstance(day, int) or not -30 <= day <= 365:
        r.fail(f"{key} from_day", "must be the post-operative day the stage starts, a whole number from -30 to 365 "
               f"(0 is the day of surgery), got {'nothing' if day is _MISSING else repr(day)}")
        return None
    every = v.get("hourly_every_minutes")
    if every is not None:
        every = r.every_minutes(f"{key} hourly_every_minutes", every, 0)
    at = r.times(f"{key} routine_at", v["routine_at"], ()) if "routine_at" in v else None
    hourly_ex = r.exercise_list(f"{key} hourly_exercises", v["hourly_exercises"], ()) \
        if "hourly_exercises" in v else None
    routine_ex = r.exercise_list(f"{key} routine_exercises", v["routine_exercises"], ()) \
        if "routine_exercises" in v else None
    return Stage(day, every, hourly_ex, at, routine_ex)


def _regimens(r: _Reader, data: Mapping[str, Any], base: Config) -> tuple[Regimen, ...]:
    raw = data.get("regimens", _MISSING)
    if raw is _MISSING or not isinstance(raw, Mapping):
        return DEFAULT_REGIMENS
    out = []
    for name, table in raw.items():
        key = f"[regimens.{name}]"
        if not _REGIMEN.match(name):
            r.fail(key, "a regimen's name must be 1 to 12 lower-case letters, digits, '-' or '_' (it is shown on the "
                   f"nurse screen), got {name!r}")
            continue
        if not isinstance(table, Mapping):
            r.fail(key, "must be a table with a stages list")
            continue
        for extra in sorted(set(table) - {"stages"}):
            r.fail(f"{key} {extra}", "unknown key (known: stages)")
        stages_raw = table.get("stages")
        if not isinstance(stages_raw, list) or not stages_raw:
            r.fail(f"{key} stages", "must be a list of stages such as [{ from_day = 0 }, { from_day = 3, "
                   "hourly_every_minutes = 0 }]")
            continue
        stages = [_stage(r, f"{key} stages #{i}", v) for i, v in enumerate(stages_raw, 1)]
        good = [st for st in stages if st is not None]
        days = [st.from_day for st in good]
        if days != sorted(set(days)):
            r.fail(f"{key} stages", f"must start on different days, in order, got from_day {days}")
        for i, st in enumerate(good, 1):
            every = base.hourly_every_minutes if st.hourly_every_minutes is None else st.hourly_every_minutes
            hourly = base.hourly_exercises if st.hourly_exercises is None else st.hourly_exercises
            at = base.routine_at if st.routine_at is None else st.routine_at
            routine = base.routine_exercises if st.routine_exercises is None else st.routine_exercises
            if every and not hourly:
                r.fail(f"{key} stages #{i}", "has hourly prompts but no hourly exercises")
            if at and not routine:
                r.fail(f"{key} stages #{i}", "has routine times but no routine exercises")
        if len(good) == len(stages):
            out.append(Regimen(name, tuple(good)))
    return tuple(out) if out else DEFAULT_REGIMENS


def parse(data: Mapping[str, Any], source: str = "<config>") -> Config:
    """Build a Config from parsed TOML, raising ConfigError listing every problem."""
    r = _Reader(data)
    d = Config()
    for section, value in data.items():
        if section not in _SCHEMA:
            r.fail(f"[{section}]", f"unknown section (known: {', '.join(sorted(_SCHEMA))})")
        elif not isinstance(value, Mapping):
            r.fail(f"[{section}]", "must be a table (a [section] heading)")
        elif section != "regimens":     # its keys are the regimens' names
            for key in sorted(set(value) - _SCHEMA[section]):
                r.fail(f"[{section}] {key}", f"unknown key (known: {', '.join(sorted(_SCHEMA[section]))})")

    unit_id = r.get("unit", "id")
    if unit_id is _MISSING:
        unit_id = d.unit_id
    elif not isinstance(unit_id, str) or not _UNIT_ID.match(unit_id):
        r.fail("[unit] id", "must be 1 to 32 letters, digits, '.', '_' or '-' (it names export folders), "
               f"got {unit_id!r}")
        unit_id = d.unit_id
    timezone = r.get("unit", "timezone")
    if timezone is _MISSING:
        timezone = d.timezone
    else:
        try:
            if not isinstance(timezone, str) or not timezone:
                raise ValueError
            _zone(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            r.fail("[unit] timezone", f'must be an IANA time zone name such as "Europe/London", got {timezone!r}')
            timezone = d.timezone

    def hhmm(section: str, key: str, default: time) -> time:
        v = r.get(section, key)
        if v is _MISSING:
            return default
        return r.clock_time(f"[{section}] {key}", v) or default

    awake_start = hhmm("awake", "start", d.awake_start)
    awake_end = hhmm("awake", "end", d.awake_end)

    every_raw = r.get("hourly", "every_minutes")
    every = d.hourly_every_minutes if every_raw is _MISSING else \
        r.every_minutes("[hourly] every_minutes", every_raw, d.hourly_every_minutes)
    hourly_ex = r.exercises("hourly", d.hourly_exercises)

    at_raw = r.get("routine", "at")
    routine_at = d.routine_at if at_raw is _MISSING else r.times("[routine] at", at_raw, d.routine_at)
    routine_ex = r.exercises("routine", d.routine_exercises)
    if every and not hourly_ex:
        r.fail("[hourly] exercises", "must name at least one exercise while every_minutes is above 0")
    if routine_at and not routine_ex:
        r.fail("[routine] exercises", "must name at least one exercise while routine times are set")

    repeat = r.integer("reminders", "repeat_every_minutes", d.repeat_every_minutes, 1, 120, "of minutes")
    missed = r.integer("reminders", "missed_after_minutes", d.missed_after_minutes, 1, 240, "of minutes")
    snooze = r.integer("reminders", "snooze_minutes", d.snooze_minutes, 1, 60, "of minutes")
    max_snoozes = r.integer("reminders", "max_snoozes", d.max_snoozes, 0, 5)

    base = Config(hourly_every_minutes=every, hourly_exercises=hourly_ex, routine_at=routine_at,
                  routine_exercises=routine_ex)
    regimens = _regimens(r, data, base)
    default_regimen = d.default_regimen
    dr = r.get("episodes", "default_regimen")
    if dr is not _MISSING:
        default_regimen = dr if isinstance(dr, str) else repr(dr)
    if not any(g.name == default_regimen for g in regimens):
        r.fail("[episodes] default_regimen", f"must name one of the regimens ({', '.join(g.name for g in regimens)}), "
               f"got {default_regimen!r}")
    without = r.choice("episodes", "without_episode", d.without_episode, ("default", "quiet"))
    dd = Display()
    hd = Hardware()
    hw_display = r.choice("hardware", "display", hd.display, tuple(PANELS))
    panel = PANELS.get(hw_display, PANELS[hd.display])
    layout = r.choice("display", "layout", "", ("", *panel.layouts))
    display = Display(r.choice("display", "night", dd.night, ("off", "dim")),
                      r.integer("display", "dim_after_minutes", dd.dim_after_minutes, 0, 1440,
                                "of minutes (0 never dims)"), layout)

    i2c_port = r.integer("hardware", "i2c_port", hd.i2c_port, 0, 22)
    i2c_address = r.integer("hardware", "i2c_address", hd.i2c_address, 0x03, 0x77)
    button_pin = r.integer("hardware", "button_pin", hd.button_pin, 0, 27, "(BCM GPIO number)")
    buzzer_pin = r.integer("hardware", "buzzer_pin", hd.buzzer_pin, 0, 27, "(BCM GPIO number)")
    buzzer = r.choice("hardware", "buzzer", hd.buzzer, ("active", "passive"))
    led_raw = r.get("hardware", "led_pin")
    led_pin: int | None = hd.led_pin
    if led_raw is not _MISSING:
        led_pin = r.integer("hardware", "led_pin", -1, -1, 27, "(BCM GPIO number, or -1 for no LED)")
        led_pin = None if led_pin == -1 else led_pin
    rotate = r.integer("hardware", "rotate", hd.rotate, 0, 3, "of quarter turns")
    volume = r.integer("hardware", "volume", hd.volume, 1, 100, "(percent; passive buzzers only)")
    tone = r.choice("hardware", "tone", hd.tone, ("low", "normal", "high"))
    gpio = r.choice("hardware", "gpio", hd.gpio, GPIO_BACKENDS)
    spi_port = r.integer("hardware", "spi_port", hd.spi_port, 0, 6)
    spi_device = r.integer("hardware", "spi_device", hd.spi_device, 0, 2)
    dc_pin = r.integer("hardware", "dc_pin", hd.dc_pin, 0, 27, "(BCM GPIO number)")
    reset_pin = r.integer("hardware", "reset_pin", hd.reset_pin, 0, 27, "(BCM GPIO number)")
    vib_raw = r.get("hardware", "vibration_pin")
    vibration_pin: int | None = hd.vibration_pin
    if vib_raw is not _MISSING:
        vibration_pin = r.integer("hardware", "vibration_pin", -1, -1, 27, "(BCM GPIO number, or -1 for none)")
        vibration_pin = None if vibration_pin == -1 else vibration_pin
    board = r.get("hardware", "board")
    if board is _MISSING:
        board = hd.board
    elif not isinstance(board, str) or (board and not _BOARD.match(board)):
        r.fail("[hardware] board", f'must be "" (a Raspberry Pi) or the name of another board, such as "Rock Pi 4" '
               f"(letters, digits, spaces and ._()+-, at most 40), got {board!r}")
        board = hd.board
    gpio_chip = r.get("hardware", "gpio_chip")
    if gpio_chip is _MISSING:
        gpio_chip = hd.gpio_chip
    elif not isinstance(gpio_chip, str) or (gpio_chip and not _GPIO_CHIP.match(gpio_chip)):
        r.fail("[hardware] gpio_chip", f'must be "" (the Pi header\'s chip), a GPIO chip\'s label such as '
               f'"pinctrl-bcm2711" or its device such as "/dev/gpiochip0", got {gpio_chip!r}')
        gpio_chip = hd.gpio_chip
    if board and not gpio_chip:
        r.fail("[hardware] gpio_chip", f'board = "{board}" is not a Raspberry Pi: name its GPIO chip too '
               '(its label, as `gpiodetect` prints it, or /dev/gpiochipN)')
    emulated = r.get("hardware", "emulated_display")
    if emulated is _MISSING:
        emulated = hd.emulated_display
    elif not isinstance(emulated, bool):
        r.fail("[hardware] emulated_display", f"must be true or false, got {emulated!r}")
        emulated = hd.emulated_display
    if emulated:
        r.warnings.append("[hardware] emulated_display = true: the screens are drawn into memory, and no panel "
                          "shows them (a board under test only, never a unit on a ward)")
    pins = {"button_pin": button_pin, "buzzer_pin": buzzer_pin}
    if led_pin is not None:
        pins["led_pin"] = led_pin
    if vibration_pin is not None:
        pins["vibration_pin"] = vibration_pin
    if panel.bus == "spi":
        pins |= {"dc_pin": dc_pin, "reset_pin": reset_pin}
        for name, pin in pins.items():
            if pin in (8, 9, 10, 11, 7):
                r.fail(f"[hardware] {name}", f"GPIO {pin} is the SPI bus the display uses; choose another pin")
    if len(set(pins.values())) != len(pins):
        r.fail("[hardware]", f"two parts share one GPIO pin: {pins}")
    for name, pin in pins.items():
        if pin in (2, 3):
            r.fail(f"[hardware] {name}", f"GPIO {pin} is the I2C bus the display uses; choose another pin")

    port = r.get("serial", "port")
    if port is _MISSING:
        port = Serial().port
    elif not isinstance(port, str):
        r.fail("[serial] port", f'must be a device path such as "/dev/ttyGS0" or a pyserial URL, got {port!r}')
        port = ""
    baud = r.integer("serial", "baud", Serial().baud, 300, 4_000_000)
    table = data.get("hospital")
    hospital = parse_hospital(table if isinstance(table, Mapping) else {}, r.fail)

    attention = r.integer("ward", "attention_hours", Ward().attention_hours, 1, 336, "hours")
    handovers_v = r.get("ward", "handovers")
    handovers = () if handovers_v is _MISSING else r.times("[ward] handovers", handovers_v, ())
    stale = r.integer("ward", "stale_after_hours", Ward().stale_after_hours, 1, 336, "hours")

    if r.problems:
        raise ConfigError(source, r.problems)
    return Config(
        warnings=tuple(dict.fromkeys(r.warnings)),
        unit_id=unit_id,
        timezone=timezone,
        awake_start=awake_start,
        awake_end=awake_end,
        hourly_every_minutes=every,
        hourly_exercises=hourly_ex,
        routine_at=routine_at,
        routine_exercises=routine_ex,
        repeat_every_minutes=repeat,
        missed_after_minutes=missed,
        snooze_minutes=snooze,
        max_snoozes=max_snoozes,
        default_regimen=default_regimen,
        without_episode=without,
        regimens=regimens,
        display=display,
        hardware=Hardware(display=hw_display, i2c_port=i2c_port, i2c_address=i2c_address, button_pin=button_pin,
                          buzzer_pin=buzzer_pin, buzzer=buzzer, led_pin=led_pin, rotate=rotate, volume=volume,
                          tone=tone, gpio=gpio, spi_port=spi_port, spi_device=spi_device, dc_pin=dc_pin,
                          reset_pin=reset_pin, vibration_pin=vibration_pin, board=board, gpio_chip=gpio_chip,
                          emulated_display=emulated),
        serial=Serial(port, baud),
        hospital=hospital,
        ward=Ward(attention, handovers, stale),
        source=source,
    )


def parse_hospital(table: Mapping[str, Any], fail: Callable[[str, str], None]) -> Hospital:
    """The [hospital] table (the unit's file and the laptop's settings share it); ``fail(where, what)``
    is told every problem."""
    out: dict[str, Any] = {}
    for key in ("visit_system", "mrn_system"):
        v = table.get(key, "")
        if not isinstance(v, str) or (v and (":" not in v or any(c.isspace() or c in "|?#" for c in v))):
            fail(f"[hospital] {key}", f"must be the hospital's URI for it, e.g. \"https://hospital.example/ids/"
                 f"{key.split('_')[0]}\", got {v!r}")
        else:
            out[key] = v
    band = table.get("wristband", "")
    if not isinstance(band, str):
        fail("[hospital] wristband", f"must be a regular expression in quotes, got {band!r}")
    elif band:
        try:
            groups = re.compile(band).groupindex
        except re.error as e:
            fail("[hospital] wristband", f"is not a regular expression: {e}")
        else:
            if "visit" not in groups:
                fail("[hospital] wristband", 'must name the visit number\'s group: (?P<visit>...)')
            elif set(groups) - {"visit", "mrn"}:
                fail("[hospital] wristband", "may name only the groups visit and mrn (the unit keeps no name)")
            else:
                out["wristband"] = band
    for key in ("create_patient", "create_encounter"):
        v = table.get(key, False)
        if not isinstance(v, bool):
            fail(f"[hospital] {key}", f"must be true or false, got {v!r}")
        else:
            out[key] = v
    return Hospital(**out)
