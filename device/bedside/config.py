"""The unit's configuration: one TOML file, validated in full before anything starts.

Every key has a default (the values in ``config/bedside.toml``, which a test keeps in
step with this module), so a ward's file only needs the keys it changes. Unknown keys
are errors: a misspelt ``snooze_minuts`` must not silently fall back to the default.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_PATHS = (Path("/etc/bedside/bedside.toml"),)


class ConfigError(Exception):
    """One or more problems in a config file, each naming the file, the key and the fix."""

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


@dataclass(frozen=True)
class Hardware:
    display: str = "ssd1306"
    i2c_port: int = 1
    i2c_address: int = 0x3C
    button_pin: int = 17
    buzzer_pin: int = 18
    buzzer: str = "active"
    led_pin: int | None = 27
    rotate: int = 0
    volume: int = 50


@dataclass(frozen=True)
class Serial:
    port: str = ""
    baud: int = 115200


DEFAULT_HOURLY = (Exercise("Ankle pumps", 10, per_foot=True, hold_seconds=3),)
DEFAULT_ROUTINE = (
    Exercise("Ankle pumps", 20, per_foot=True, hold_seconds=3),
    Exercise("Quad sets", 10, hold_seconds=5),
    Exercise("Glute sets", 10, hold_seconds=5),
)


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
    hardware: Hardware = field(default_factory=Hardware)
    serial: Serial = field(default_factory=Serial)
    source: str = "built-in defaults"

    @property
    def tz(self) -> ZoneInfo:
        return _zone(self.timezone)

    def __hash__(self) -> int:
        # The planner memoises on the config; hashing every field on each lookup dominated
        # a simulated day's CPU time, so the (immutable) config hashes once.
        h: int | None = self.__dict__.get("_hash")
        if h is None:
            h = hash(tuple(getattr(self, f) for f in self.__dataclass_fields__))
            object.__setattr__(self, "_hash", h)
        return h

    def fingerprint(self) -> str:
        """A short stable hash of the settings (not the file's path), logged at start."""
        blob = json.dumps(_plain(self), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _plain(cfg: Config) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(cfg)
    d.pop("source")
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
    "hardware": {
        "display", "i2c_port", "i2c_address", "button_pin", "buzzer_pin", "buzzer", "led_pin", "rotate", "volume",
    },
    "serial": {"port", "baud"},
}
_EXERCISE_KEYS = {"name", "reps", "per_foot", "hold_seconds"}
_UNIT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class _Reader:
    """Collects every problem instead of stopping at the first, so one edit fixes them all."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.problems: list[str] = []

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
        key = f"[{section}] exercises"
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
            if not isinstance(name, str) or not 1 <= len(name.strip()) <= 20:
                self.fail(f"{k} name", f"must be text of 1 to 20 characters (it is shown on the display), got {name!r}")
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
            if ok and isinstance(name, str) and isinstance(reps, int) and isinstance(hold, int):
                out.append(Exercise(name.strip(), reps, bool(per_foot), hold))
        return tuple(out) if out or not v else default


_MISSING: Any = object()


def parse(data: Mapping[str, Any], source: str = "<config>") -> Config:
    """Build a Config from parsed TOML, raising ConfigError listing every problem."""
    r = _Reader(data)
    d = Config()
    for section, value in data.items():
        if section not in _SCHEMA:
            r.fail(f"[{section}]", f"unknown section (known: {', '.join(sorted(_SCHEMA))})")
        elif not isinstance(value, Mapping):
            r.fail(f"[{section}]", "must be a table (a [section] heading)")
        else:
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

    every = r.integer("hourly", "every_minutes", d.hourly_every_minutes, 0, 1440,
                      "of minutes (0 turns hourly prompts off)")
    if 0 < every < 15:
        r.fail("[hourly] every_minutes",
               f"prompts less than 15 minutes apart would never let a session finish, got {every}")
    hourly_ex = r.exercises("hourly", d.hourly_exercises)

    at_raw = r.get("routine", "at")
    routine_at = d.routine_at
    if at_raw is not _MISSING:
        if not isinstance(at_raw, list):
            r.fail("[routine] at", 'must be a list of times such as ["09:00", "19:00"]')
        else:
            times = [r.clock_time(f"[routine] at #{i}", v) for i, v in enumerate(at_raw, 1)]
            good = [t for t in times if t is not None]
            if len(set(good)) != len(good):
                r.fail("[routine] at", "lists the same time twice")
            routine_at = tuple(sorted(set(good)))
    routine_ex = r.exercises("routine", d.routine_exercises)
    if every and not hourly_ex:
        r.fail("[hourly] exercises", "must name at least one exercise while every_minutes is above 0")
    if routine_at and not routine_ex:
        r.fail("[routine] exercises", "must name at least one exercise while routine times are set")

    repeat = r.integer("reminders", "repeat_every_minutes", d.repeat_every_minutes, 1, 120, "of minutes")
    missed = r.integer("reminders", "missed_after_minutes", d.missed_after_minutes, 1, 240, "of minutes")
    snooze = r.integer("reminders", "snooze_minutes", d.snooze_minutes, 1, 60, "of minutes")
    max_snoozes = r.integer("reminders", "max_snoozes", d.max_snoozes, 0, 5)

    hd = Hardware()
    display = r.choice("hardware", "display", hd.display, ("ssd1306", "sh1106"))
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
    pins = {"button_pin": button_pin, "buzzer_pin": buzzer_pin}
    if led_pin is not None:
        pins["led_pin"] = led_pin
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

    if r.problems:
        raise ConfigError(source, r.problems)
    return Config(
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
        hardware=Hardware(display, i2c_port, i2c_address, button_pin, buzzer_pin, buzzer, led_pin, rotate, volume),
        serial=Serial(port, baud),
        source=source,
    )


def load(path: Path | str) -> Config:
    """Read and validate a config file; every failure is a ConfigError a person can act on."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError(str(p), ["the file does not exist; copy config/bedside.toml there and edit it"]) from None
    except OSError as e:
        raise ConfigError(str(p), [f"cannot be read ({e.strerror}); check its permissions"]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(p), ["is not UTF-8 text; save it as plain UTF-8"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(str(p), [f"is not valid TOML: {e}"]) from None
    return parse(data, str(p))


def find(path: Path | str | None) -> Config:
    """The config named on the command line, else the system one, else the built-in defaults."""
    if path is not None:
        return load(path)
    for candidate in DEFAULT_PATHS:
        if candidate.exists():
            return load(candidate)
    return Config()
