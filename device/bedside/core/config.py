"""The unit's configuration: one TOML file, validated in full before anything starts.

Every setting is one row of the schema (core/schema.py), declared on the field that holds it:
its section and key, its type and bounds, its default and its help; an exercise's and a regimen
stage's keys are rows of ``Exercise`` and ``Stage`` the same way. The parser, the unknown-key
check, ``bedside config check``'s messages, the rules between keys, the annotated file
``config/bedside.toml`` (generated from the rows, and a test keeps it so) and the words a ward
stick's change is shown by all read those rows (docs/config.md). So a ward's file only needs the
keys it changes, and adding a setting is one field. Unknown keys are errors: a misspelt
``snooze_minuts`` must not silently fall back to the default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bedside.core import digest, exercises
from bedside.core.errors import USAGE, BedsideError
from bedside.core.panels import DEFAULT_PANEL, PANELS, Panel
from bedside.core.schema import (
    REQUIRED,
    Bool,
    Choice,
    Clock,
    Deferred,
    Int,
    Pattern,
    Pin,
    Reader,
    Section,
    Setting,
    Text,
    Times,
    Type,
    example,
    get,
    item_rows,
    read_item,
    required,
    rows,
    setting,
    whole,
)


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
class ExerciseName(Type):
    """Shown on the display in large type: 1 to 15 characters its fonts have."""

    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        if not isinstance(v, str) or not 1 <= len(v.strip()) <= 15:
            r.fail(s.where, "must be text of 1 to 15 characters (it is shown on the display in large type), "
                   f"got {v!r}")
            return None
        if not _displayable(v):
            r.fail(s.where, "has characters the display cannot show (it has Western European letters, digits and "
                   f"punctuation), got {v!r}")
            return None
        return v.strip()


@dataclass(frozen=True)
class Tip(Type):
    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        if not isinstance(v, str) or len(v) > 40 or not _displayable(v):
            r.fail(s.where, "must be text of at most 40 characters the display can show, such as "
                   f'"Raise your leg on a pillow", got {v!r}')
            return s.default
        return v.strip()


@dataclass(frozen=True)
class Kind(Type):
    """An exercise's kind (a key of exercises.KINDS): as written, or told from its name with a warning."""

    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        return self.named(r, s, v, None)

    def named(self, r: Reader, s: Setting, v: Any, name: Any) -> str | None:
        known = ", ".join(exercises.KINDS)
        if v is not REQUIRED:
            if v not in exercises.KINDS:
                r.fail(s.where, f"must be one of {known}, got {v!r}")
                return None
            return str(v)
        if not isinstance(name, str):
            return None
        told = exercises.from_name(name)
        if told is None:
            r.warnings.append(f'{s.within}: no kind, and the name {name.strip()!r} tells none, so it is guided as '
                              f'"{exercises.OTHER}" (its name, then relax, with no picture); add kind = one of '
                              f"{known}")
            return exercises.OTHER
        r.warnings.append(f'{s.within}: no kind; taken as "{told}" from the name {name.strip()!r} '
                          f'(add kind = "{told}")')
        return told


@dataclass(frozen=True)
class Exercise:
    """One exercise of a list ([hourly] exercises, [routine] exercises, a stage's): each field a row."""

    name: str = required(ExerciseName())
    reps: int = required(Int(1, 100))
    per_foot: bool = setting(False, Bool())
    hold_seconds: int = setting(0, Int(0, 30, "of seconds"))
    kind: str | None = setting(None, Kind())   # None: told from the name (exercises.from_name)
    sets: int = setting(1, Int(1, 5))           # sets of ``reps``, with a rest between them
    tip: str = setting("", Tip())               # shown before the exercise's guide: "Raise your leg on a pillow"


EXERCISE = item_rows(Exercise)
_NAME = next(s for s in EXERCISE if isinstance(s.type, ExerciseName))
_KIND = next(s for s in EXERCISE if isinstance(s.type, Kind))


# --- the value types of this file's own settings (the general ones are in core/schema.py) ------

@dataclass(frozen=True)
class Zone(Type):
    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        try:
            if not isinstance(v, str) or not v:
                raise ValueError
            _zone(v)
        except (ZoneInfoNotFoundError, ValueError):
            r.fail(s.where, f'must be an IANA time zone name such as "Europe/London", got {v!r}')
            return s.default
        return v


@dataclass(frozen=True)
class EveryMinutes(Type):
    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        return _every_minutes(r, s.where, v, s.default)


@dataclass(frozen=True)
class Exercises(Type):
    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        return _exercise_list(r, s.where, v, s.default)

    def toml(self, value: Any) -> str:
        """Inline tables, one a line when there are several, with the keys they all begin with lined up."""
        items = [_exercise_toml(e) for e in value]
        if len(items) == 1:
            return f"[{{ {', '.join(items[0])} }}]"
        widths: list[int] = []
        for col in range(min(len(i) for i in items) - 1):
            if len({i[col].split(" = ")[0] for i in items}) > 1:
                break
            widths.append(max(len(i[col]) for i in items))
        lines = ["  { " + "".join((p + ",").ljust(w + 1) + " " for p, w in zip(i, widths, strict=False))
                 + ", ".join(i[len(widths):]) + " }," for i in items]
        return "[\n" + "\n".join(lines) + "\n]"


def _exercise_toml(e: Exercise) -> list[str]:
    """An exercise's keys as the example file writes them: its name and kind first, then the others
    that it must say or that differ from their defaults."""
    first = sorted(EXERCISE, key=lambda s: (s is not _NAME, s is not _KIND))
    return [f"{s.key} = {s.type.toml(get(e, s.path))}" for s in first
            if s.default is REQUIRED or get(e, s.path) != s.default]


@dataclass(frozen=True)
class RegimenName(Type):
    """Any value; the row's check says whether a regimen has that name."""

    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        return v if isinstance(v, str) else repr(v)


@dataclass(frozen=True)
class Uri(Type):
    """The hospital's URI for a kind of identifier; the example names the key's first word."""

    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        if not isinstance(v, str) or (v and (":" not in v or any(c.isspace() or c in "|?#" for c in v))):
            r.fail(s.where, f"must be the hospital's URI for it, e.g. \"https://hospital.example/ids/"
                   f"{s.key.split('_')[0]}\", got {v!r}")
            return s.default
        return v


@dataclass(frozen=True)
class Wristband(Type):
    """A regular expression for a scanned wristband: group ``visit``, optional ``mrn``."""

    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        if not isinstance(v, str):
            r.fail(s.where, f"must be a regular expression in quotes, got {v!r}")
            return s.default
        if v:
            try:
                groups = re.compile(v).groupindex
            except re.error as e:
                r.fail(s.where, f"is not a regular expression: {e}")
                return s.default
            if "visit" not in groups:
                r.fail(s.where, 'must name the visit number\'s group: (?P<visit>...)')
                return s.default
            if set(groups) - {"visit", "mrn"}:
                r.fail(s.where, "may name only the groups visit and mrn (the unit keeps no name)")
                return s.default
        return v


# --- rules relating one key to others (run on the whole config once every key is read) ---------

def _layout_fits_panel(c: Config) -> str | None:
    options = ("", *c.hardware.panel.layouts)
    if c.display.layout not in options:
        return f"must be one of {', '.join(repr(o) for o in options)}, got {c.display.layout!r}"
    return None


def _chip_for_board(c: Config) -> str | None:
    if c.hardware.board and not c.hardware.gpio_chip:
        return (f'board = "{c.hardware.board}" is not a Raspberry Pi: name its GPIO chip too '
                "(its label, as `gpiodetect` prints it, or /dev/gpiochipN)")
    return None


def _names_a_regimen(c: Config) -> str | None:
    if not any(g.name == c.default_regimen for g in c.regimens):
        return f"must name one of the regimens ({', '.join(g.name for g in c.regimens)}), got {c.default_regimen!r}"
    return None


_EXERCISE_NOTE = """\
An exercise's kind says how each rep is guided and which picture it shows: ankle_pump,
quad_set, glute_set, ankle_circle, or other (its name, held, then relax; no picture).
Without a kind it is told from the name (a warning says so; bedside config check shows it).
Optional: sets = 2 (sets of reps with a 20 s rest between, "Set 1 of 2"), and a tip shown
before the exercise's guide, e.g. tip = "Raise your leg on a pillow" (at most 40 characters)."""


# --- the sections that are tables of settings -------------------------------------------------

# The pin backends a unit can use (hardware/README.md, the board matrix): lgpio on Bookworm and
# the only one a Pi 5 has; RPi.GPIO on Bullseye and older systems.
GPIO_BACKENDS = ("auto", "lgpio", "rpigpio")


@dataclass(frozen=True)
class Hardware:
    display: str = setting(DEFAULT_PANEL, Choice(tuple(PANELS)),      # a row of core/panels.py
                           'the panel fitted: ssd1309 (2.42", I2C, the one in hardware/bom.csv),\n'
                           'ssd1306 (0.96", I2C, the budget option: too small to read from the pillow),\n'
                           'sh1106 (1.3", I2C), ssd1322 (3.12" 256x64, SPI), ssd1327 (1.5" 128x128, I2C),\n'
                           'sh1107 (1.12" 128x128, I2C)')
    i2c_port: int = setting(1, Int(0, 22))
    i2c_address: int = setting(0x3C, Int(0x03, 0x77, hex=True), "0x3D on some boards (address jumper)")
    button_pin: int = setting(17, Pin(), "BCM numbers; see hardware/wiring.md")
    buzzer_pin: int = setting(18, Pin())
    buzzer: str = setting("active", Choice(("active", "passive")),
                          "active (on/off; recommended) | passive (tones via PWM: lgpio's timing\n"
                          "thread then wakes the unit 50 times a second for ever, docs/design.md)")
    led_pin: int | None = setting(27, Pin(optional=True, unit="(BCM GPIO number, or -1 for no LED)"),
                                  "optional status LED; -1 = none fitted")
    rotate: int = setting(0, Int(0, 3, "of quarter turns"),
                          "quarter turns of the display, for how the enclosure mounts it")
    volume: int = setting(50, Int(1, 100, "(percent; passive buzzers only)"),
                          "passive buzzers only: PWM duty in percent (lower is quieter)")
    tone: str = setting("normal", Choice(("low", "normal", "high")),
                        'passive buzzers only: "low", "normal" or "high" pitch (a fifth apart)')
    gpio: str = setting("auto", Choice(GPIO_BACKENDS),
                        'pin backend: "auto" (lgpio, else RPi.GPIO), "lgpio" (Bookworm; the only one\n'
                        'on a Pi 5) or "rpigpio" (Bullseye and older). The installer installs it.')
    spi_port: int = setting(0, Int(0, 6), "SPI panels (ssd1322) only: SPI bus and chip select (CE0) ...")
    spi_device: int = setting(0, Int(0, 2))
    dc_pin: int = setting(24, Pin(spi=True), "... and the data/command and reset pins (BCM)")
    reset_pin: int = setting(25, Pin(spi=True))
    vibration_pin: int | None = setting(None, Pin(optional=True, unit="(BCM GPIO number, or -1 for none)"),
                                        "optional vibration motor, pulsing with each prompt for a patient who "
                                        "cannot\nhear the chime (through a transistor, see hardware/wiring.md); "
                                        "-1 = none")
    board: str = setting("", Pattern(r"^[A-Za-z0-9][A-Za-z0-9 ._()+-]{0,39}$",
                                     '"" (a Raspberry Pi) or the name of another board, such as "Rock Pi 4" '
                                     "(letters, digits, spaces and ._()+-, at most 40)", empty=True),
                         '"" = a Raspberry Pi (the supported unit), named by its device tree. On another\n'
                         'Linux board with a GPIO chip, its name (docs/install.md, "Other boards"), and:')
    gpio_chip: str = setting("", Pattern(r"^(/dev/gpiochip[0-9]{1,3}|[A-Za-z0-9][A-Za-z0-9._:+-]{0,63})$",
                                         '"" (the Pi header\'s chip), a GPIO chip\'s label such as '
                                         '"pinctrl-bcm2711" or its device such as "/dev/gpiochip0"', empty=True),
                             "\"\" = the Pi header's chip; else that board's GPIO chip: its label (gpiodetect)\n"
                             "or /dev/gpiochipN. The pin numbers above are then the chip's line offsets.",
                             check=_chip_for_board)
    emulated_display: bool = setting(False, Bool(), "true: screens drawn into memory, no panel driven (a board "
                                     "under test only)",
                                     warn=lambda c: "= true: the screens are drawn into memory, and no panel shows "
                                     "them (a board under test only, never a unit on a ward)"
                                     if c.hardware.emulated_display else None)

    @property
    def panel(self) -> Panel:
        return PANELS[self.display]


@dataclass(frozen=True)
class Display:
    night: str = setting("off", Choice(("off", "dim")),
                         'outside the awake window: "off" (a press lights it, dimmed, for 15 s)\n'
                         'or "dim" (a dim clock all night)', called="display")
    dim_after_minutes: int = setting(10, Int(0, 1440, "of minutes (0 never dims)"),
                                     "by day the idle clock dims after this long untouched (saves the OLED); "
                                     "0 = never", called="display")
    layout: str = setting("", Deferred(),       # checked against the panel's own layouts
                          '"" = the panel\'s own: "large" on 128x64 panels (big type, few words), "wide" on\n'
                          'the ssd1322, "square" on 128x128; "standard" = more detail in smaller type\n'
                          "(128x64 panels only). docs/screens.md gives each one's text height at 1 m.",
                          check=_layout_fits_panel, called="display")


@dataclass(frozen=True)
class FromDay(Type):
    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        if not whole(v, -30, 365):
            r.fail(s.where, "must be the post-operative day the stage starts, a whole number from -30 to 365 "
                   f"(0 is the day of surgery), got {'nothing' if v is None else repr(v)}")
            return None
        return v


@dataclass(frozen=True)
class Stage:
    """Part of a regimen, from a post-operative day on; None keeps the [hourly]/[routine] setting.
    Each field is a row; a key written wrongly reads as no prompts (0) or nothing (an empty list)."""

    from_day: int = required(FromDay())
    hourly_every_minutes: int | None = setting(None, EveryMinutes(), fallback=0)
    hourly_exercises: tuple[Exercise, ...] | None = setting(None, Exercises(), fallback=())
    routine_at: tuple[time, ...] | None = setting(None, Times(), fallback=())
    routine_exercises: tuple[Exercise, ...] | None = setting(None, Exercises(), fallback=())


STAGE = item_rows(Stage)


@dataclass(frozen=True)
class Regimen:
    name: str
    stages: tuple[Stage, ...]


@dataclass(frozen=True)
class Serial:
    port: str = setting("", Text(rule='a device path such as "/dev/ttyGS0" or a pyserial URL'),
                        '"/dev/ttyGS0" (Zero 2 W gadget), "/dev/serial0" (GPIO14/15 on a Zero 2 W, 3 or 4),\n'
                        '"/dev/ttyAMA0" (GPIO14/15 on a Pi 5); "" = off. The installer sets the one it set up.')
    baud: int = setting(115200, Int(300, 4_000_000))


@dataclass(frozen=True)
class Ward:
    """How ``bedside ward`` judges this ward's beds (the units themselves ignore it): how far back
    attention looks (the last ``attention_hours``, or with ``handovers`` since the handover before
    the last one) and when a record is too old to say how a bed is doing."""

    attention_hours: int = setting(24, Int(1, 336, "hours"),
                                   "the page looks back this far for missed sessions and clock changes ...")
    handovers: tuple[time, ...] = setting((), Times(),
                                          '... or, given the ward\'s handover times (e.g. ["07:00", "19:00"]), '
                                          "since the\nhandover before the last one: at 07:00 the shift just "
                                          "ended, whole")
    stale_after_hours: int = setting(24, Int(1, 336, "hours"),
                                     'a bed whose newest record is older than this is flagged "old record"')


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

    visit_system: str = setting("", Uri(), "the URI of its visit (encounter) numbers, e.g. "
                                '"https://hospital.example/ids/visit":\nthen an admission\'s episode id is the '
                                "visit number, and the export points at\nthe hospital's own Encounter")
    mrn_system: str = setting("", Uri(), "the URI of its medical record numbers (an admission may give the MRN "
                              "too)")
    wristband: str = setting("", Wristband(), "a scanned wristband's text, e.g. "
                             '"^V(?P<visit>[0-9]{6,12})\\\\^(?P<mrn>[0-9]{6,10})$":\n'
                             "then episode admit takes the scan in place of the episode id")
    create_patient: bool = setting(False, Bool(), "may the export create a Patient (its MRN alone) the server "
                                   "does not have?")
    create_encounter: bool = setting(False, Bool(), "does the export own the Encounter (creates it, sets its "
                                     "status and end)?")


@dataclass(frozen=True)
class Config:
    unit_id: str = setting("ward7-bed12", Pattern(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$",
                                                  "1 to 32 letters, digits, '.', '_' or '-' (it names export "
                                                  "folders)"),
                           "printed on every export and names export folders (letters, digits, . _ -)",
                           section="unit", key="id", own=True)
    timezone: str = setting("Europe/London", Zone(),
                            "IANA name; all schedule times below are local wall-clock times", section="unit",
                            called="time zone")
    awake_start: time = setting(time(7, 0), Clock(), section="awake", key="start", called="quiet hours")
    awake_end: time = setting(time(22, 0), Clock(), 'may cross midnight (e.g. start "20:00", end "12:00");\n'
                              "start == end means awake around the clock", section="awake", key="end",
                              called="quiet hours")
    hourly_every_minutes: int = setting(60, EveryMinutes(), "sessions fall at awake.start + k x every_minutes, "
                                        "inside the window; 0 = off", section="hourly", key="every_minutes",
                                        called="hourly sessions")
    hourly_exercises: tuple[Exercise, ...] = setting(
        DEFAULT_HOURLY, Exercises(), section="hourly", key="exercises", note=_EXERCISE_NOTE, called="hourly sessions",
        check=lambda c: "must name at least one exercise while every_minutes is above 0"
        if c.hourly_every_minutes and not c.hourly_exercises else None)
    routine_at: tuple[time, ...] = setting((time(9, 0), time(19, 0)), Times(), section="routine", key="at",
                                            called="routine times")
    routine_exercises: tuple[Exercise, ...] = setting(
        DEFAULT_ROUTINE, Exercises(), section="routine", key="exercises", called="routine",
        check=lambda c: "must name at least one exercise while routine times are set"
        if c.routine_at and not c.routine_exercises else None)
    repeat_every_minutes: int = setting(10, Int(1, 120, "of minutes"),
                                        "soft repeat while a prompt is unanswered (never louder)", section="reminders",
                                        called="reminders")
    missed_after_minutes: int = setting(30, Int(1, 240, "of minutes"),
                                        "then the session is logged missed (snoozing pauses this count)",
                                        section="reminders", called="reminders")
    snooze_minutes: int = setting(10, Int(1, 60, "of minutes"), "long press (about 2 s, released before 5 s)",
                                  section="reminders", called="snooze")
    max_snoozes: int = setting(2, Int(0, 5), section="reminders", called="snooze")
    default_regimen: str = setting("standard", RegimenName(),
                                   "for an admission that names none, and while no one is admitted",
                                   section="episodes", check=_names_a_regimen, called="regimens")
    without_episode: str = setting("default", Choice(("default", "quiet")),
                                   'with no one ever admitted: "default" runs the default regimen as if the first\n'
                                   "start at this bed were the day of surgery, stepping down as it does, so a\n"
                                   'unit works out of the box; "quiet" prompts nothing. After a discharge the\n'
                                   'bed is silent ("Ready for next patient") until an admission or a press',
                                   section="episodes", called="regimens")
    regimens: tuple[Regimen, ...] = DEFAULT_REGIMENS     # [regimens.NAME] tables, read by _regimens
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


# --- the file's sections, and the schema -----------------------------------------------------------

# The default regimens as the annotated file writes them, with a word on each stage (a test reads the
# file back and compares it with DEFAULT_REGIMENS).
_REGIMENS_TEXT = """\
# A regimen steps down by post-operative day (day 0 = the day of surgery; days before the first
# stage follow it). A stage may set hourly_every_minutes, hourly_exercises, routine_at and
# routine_exercises; whatever it leaves out comes from [hourly] and [routine] above.
[regimens.standard]                              # the brief's regimen (docs/behaviour.md#the-regimen)
stages = [
  # before surgery (from admission): 20 ankle pumps a foot at the routine's times, nothing hourly
  { from_day = -30, hourly_every_minutes = 0, routine_exercises = [{ name = "Ankle pumps", kind = "ankle_pump", \
reps = 20, per_foot = true, hold_seconds = 3 }] },
  { from_day = 0 },                              # days 0-2: hourly ankle pumps and the routine
  { from_day = 3, hourly_every_minutes = 0 },    # from day 3: only the twice-daily routine
]"""

# The sections in the file's order; [regimens] is a table of named regimens, each read by _regimens.
SECTIONS = (
    Section("unit"),
    Section("awake", "prompts only inside this window; outside it the ward is asleep"),
    Section("hourly", "short ankle-pump prompt every waking hour"),
    Section("routine", "fuller routine at fixed times; replaces an hourly prompt at the same time"),
    Section("reminders"),
    Section("episodes", "one patient's stay: admitted with an episode id (never a name), the date of\n"
            "surgery and a regimen; discharged at the end (see docs/behaviour.md#episodes)"),
    Section("regimens", text=_REGIMENS_TEXT, called="regimens"),
    Section("hospital", "the hospital's own numbers, for bedside fhir (docs/fhir.md#the-hospitals-identifiers)"),
    Section("display"),
    Section("hardware", own=True),
    Section("serial", "nurse download link", own=True),
    Section("ward", "read by `bedside ward --config THIS_FILE` on the nurse's laptop; units ignore it"),
)
_ORDER = {s.name: i for i, s in enumerate(SECTIONS)}
# Every setting, in the file's order: section by section, each section's keys in its fields' order.
SCHEMA: tuple[Setting, ...] = tuple(sorted(rows(Config), key=lambda s: _ORDER[s.section]))
_AT = {s.where: i for i, s in enumerate(SCHEMA)}       # a problem's place in the list: its key's in the file
_REGIMENS_AT = min((_AT[s.where] for s in SCHEMA if _ORDER[s.section] > _ORDER["regimens"]), default=len(SCHEMA))
_SECTION_CLASS: dict[str, Any] = {f.name: f.default_factory for f in fields(Config)
                                  if isinstance(f.default_factory, type)}
_KEYS = {sec.name: {s.key for s in SCHEMA if s.section == sec.name} for sec in SECTIONS}
HOSPITAL = tuple(s for s in SCHEMA if s.path.startswith("hospital."))
# The config's parts that are the unit's own (its id, its hardware, its serial port): a ward's configuration
# from a stick lies over the unit's, but never over these.
_OWN_SECTIONS = {sec.name for sec in SECTIONS if sec.own}
OWN = tuple(dict.fromkeys(s.path.split(".")[0] for s in SCHEMA if s.own or s.section in _OWN_SECTIONS))

_HEADER = """\
# Bedside unit configuration.
#
# Every key below is shown with its default value: a ward's own file only needs the
# keys it changes. Unknown keys are an error (a typo must not fall back silently).
# Check a file with:  bedside config check /etc/bedside/bedside.toml"""


def changed(old: Config, new: Config) -> list[str]:
    """What a nurse or engineer calls each part that differs between two configurations, in the file's
    order (a ward's new configuration is shown, and recorded in ``config_changed``, by these)."""
    out: list[str] = []
    for sec in SECTIONS:
        parts = [(s.called, s.path) for s in SCHEMA if s.section == sec.name and s.called]
        for called, path in parts or ([(sec.called, sec.name)] if sec.called else []):
            if get(old, path) != get(new, path) and called not in out:
                out.append(called)
    return out


def example_file() -> str:
    """The annotated config file, config/bedside.toml: every key with its default and what it means."""
    return example(_HEADER, SECTIONS, SCHEMA)


# --- parsing -------------------------------------------------------------------------------

_EXERCISE_KEYS = {s.key for s in EXERCISE}
_EXERCISE_READ = tuple(s for s in EXERCISE if s is not _KIND)
_STAGE_KEYS = {s.key for s in STAGE}
# Regimen names are shown on the nurse screen and recorded on admission.
_REGIMEN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,11}$")
_MISSING: Any = object()


def parse(data: Mapping[str, Any], source: str = "<config>") -> Config:
    """Build a Config from parsed TOML, raising ConfigError listing every problem (in the file's order)."""
    r = Reader()
    for section, value in data.items():
        if section not in _KEYS:
            r.fail(f"[{section}]", f"unknown section (known: {', '.join(sorted(_KEYS))})")
        elif not isinstance(value, Mapping):
            r.fail(f"[{section}]", "must be a table (a [section] heading)")
        elif section != "regimens":     # its keys are the regimens' names
            for key in sorted(set(value) - _KEYS[section]):
                r.fail(f"[{section}] {key}", f"unknown key (known: {', '.join(sorted(_KEYS[section]))})")

    values: dict[str, Any] = {}
    for r.at, s in enumerate(SCHEMA):           # r.at: the row's place in the file, for the problems' order
        table = data.get(s.section, {})
        v = table.get(s.key, _MISSING) if isinstance(table, Mapping) else _MISSING
        values[s.path] = s.default if v is _MISSING else s.type.read(r, s, v)
    cfg = _build(values, source)
    r.at = _REGIMENS_AT
    cfg = replace(cfg, regimens=_regimens(r, data, cfg))    # a stage takes what it leaves out from cfg
    for r.at, s in enumerate(SCHEMA):
        if s.check is not None and (problem := s.check(cfg)) is not None:
            r.fail(s.where, problem)
        if s.warn is not None and (warning := s.warn(cfg)) is not None:
            r.warnings.append(f"{s.where} {warning}")
    _pins(r, cfg)
    if r.problems:
        raise ConfigError(source, r.listed())
    return replace(cfg, warnings=tuple(dict.fromkeys(r.warnings)))


def _build(values: Mapping[str, Any], source: str) -> Config:
    """The Config the rows' values make: the top-level ones, and each section dataclass from its own."""
    top: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for path, v in values.items():
        head, dot, name = path.partition(".")
        if dot:
            sections.setdefault(head, {})[name] = v
        else:
            top[path] = v
    return Config(**top, **{head: _SECTION_CLASS[head](**kw) for head, kw in sections.items()}, source=source)


_SPI_BUS, _I2C_BUS = (7, 8, 9, 10, 11), (2, 3)


def _pins(r: Reader, cfg: Config) -> None:
    """The pin rows in use against each other and the display's bus: each part needs a pin of its own."""
    spi = cfg.hardware.panel.bus == "spi"
    rows_ = sorted((s for s in SCHEMA if isinstance(s.type, Pin) and (spi or not s.type.spi)),
                   key=lambda s: isinstance(s.type, Pin) and s.type.spi)
    used = [(s, pin) for s in rows_ if (pin := get(cfg, s.path)) is not None]
    for s, pin in used:
        r.at = _AT[s.where]
        if spi and pin in _SPI_BUS:
            r.fail(s.where, f"GPIO {pin} is the SPI bus the display uses; choose another pin")
        if pin in _I2C_BUS:
            r.fail(s.where, f"GPIO {pin} is the I2C bus the display uses; choose another pin")
    pins = {s.key: pin for s, pin in used}
    if len(set(pins.values())) != len(pins):
        section = used[0][0].section
        r.at = max(_AT[s.where] for s in SCHEMA if s.section == section)
        r.fail(f"[{section}]", f"two parts share one GPIO pin: {pins}")


def parse_hospital(table: Mapping[str, Any], fail: Callable[[str, str], None]) -> Hospital:
    """The [hospital] table (the unit's file and the laptop's settings share it); ``fail(where, what)``
    is told every problem."""
    r = Reader()
    out = {s.path.split(".", 1)[1]: s.type.read(r, s, table[s.key]) for s in HOSPITAL if s.key in table}
    for _, where, what in r.problems:
        fail(where, what)
    return Hospital(**out)


def _every_minutes(r: Reader, key: str, v: Any, default: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 1440:
        r.fail(key, f"must be a whole number of minutes from 0 to 1440 (0 turns hourly prompts off), got {v!r}")
        return default
    if 0 < v < 15:
        r.fail(key, f"prompts less than 15 minutes apart would never let a session finish, got {v}")
        return default
    return v


def _exercise_list(r: Reader, key: str, v: Any, default: tuple[Exercise, ...]) -> tuple[Exercise, ...]:
    if not isinstance(v, list):
        r.fail(key, "must be a list of exercises like { name = \"Ankle pumps\", reps = 10 }")
        return default
    out = []
    for i, e in enumerate(v, 1):
        k = f"{key} #{i}"
        if not isinstance(e, Mapping):
            r.fail(k, "must be a table like { name = \"Ankle pumps\", reps = 10 }")
            continue
        for extra in sorted(set(e) - _EXERCISE_KEYS):
            r.fail(f"{k} {extra}", f"unknown key (known: {', '.join(sorted(_EXERCISE_KEYS))})")
        before = len(r.problems)
        values = read_item(r, _EXERCISE_READ, e, k)         # every key but the kind, told from the name
        kind = _KIND.type
        assert isinstance(kind, Kind)
        values[_KIND.path] = kind.named(r, _KIND.located(k), e.get(_KIND.key, REQUIRED), e.get(_NAME.key))
        if len(r.problems) == before and values[_KIND.path]:
            out.append(Exercise(**values))
    return tuple(out) if out or not v else default


def _displayable(text: str) -> bool:
    """True when the display's fonts (Latin-1) have every character and none is a control character."""
    return all(" " <= ch <= "~" or "\xa0" <= ch <= "\xff" for ch in text)



def _stage(r: Reader, key: str, v: Any) -> Stage | None:
    if not isinstance(v, Mapping):
        r.fail(key, "must be a table like { from_day = 3, hourly_every_minutes = 0 }")
        return None
    for extra in sorted(set(v) - _STAGE_KEYS):
        r.fail(f"{key} {extra}", f"unknown key (known: {', '.join(sorted(_STAGE_KEYS))})")
    before = len(r.problems)
    values = read_item(r, tuple(s for s in STAGE if s.default is REQUIRED), v, key)
    if len(r.problems) > before:
        return None                 # a stage without its day: its other keys are not read
    return Stage(**values, **read_item(r, tuple(s for s in STAGE if s.default is not REQUIRED), v, key))


def _regimens(r: Reader, data: Mapping[str, Any], base: Config) -> tuple[Regimen, ...]:
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
