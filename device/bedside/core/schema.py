"""A declarative config schema: every setting is one row ``(section, key, type, bounds, default, help)``.

A row is declared on the dataclass field that holds the setting (``setting(...)``, or ``required``
for a key an item of a list must say), so a key is named in one place: the parser, the unknown-key
check, ``bedside config check``'s messages, the rules between keys, the annotated example file
(``config/bedside.toml``, written by ``example``) and the words a changed setting is shown by all
read the rows. This is Mopidy's ``ConfigSchema`` idea (a section's keys, each with a value type that
reads and checks it), kept on the dataclasses the rest of the code already uses, typed. Pure: no
clock, no disk. docs/config.md describes it for whoever adds a setting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import time
from typing import Any, TypeVar

T = TypeVar("T")
SETTING = "bedside.setting"        # the dataclass field's metadata key that holds its row
REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()   # a row with no default
COLUMN = 31                        # where the example file's comments start

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


class Reader:
    """Collects every problem instead of stopping at the first, so one edit fixes them all.

    Each problem is kept with ``at``, the position in the file's order of the row being read, so
    the list comes out in the order a reader of the file meets the keys."""

    def __init__(self) -> None:
        self.problems: list[tuple[int, str, str]] = []     # (at, where, what)
        self.warnings: list[str] = []
        self.at = -1

    def fail(self, key: str, message: str) -> None:
        self.problems.append((self.at, key, message))

    def listed(self) -> list[str]:
        return [f"{where}: {what}" for _, where, what in sorted(self.problems, key=lambda p: p[0])]

    def clock_time(self, key: str, v: Any) -> time | None:
        m = _HHMM.match(v) if isinstance(v, str) else None
        if not m:
            self.fail(key, f'must be a 24-hour time written "HH:MM" such as "07:00", got {v!r}')
            return None
        return time(int(m.group(1)), int(m.group(2)))

    def times(self, key: str, v: Any, default: tuple[time, ...]) -> tuple[time, ...]:
        if not isinstance(v, list):
            self.fail(key, 'must be a list of times such as ["09:00", "19:00"]')
            return default
        found = [self.clock_time(f"{key} #{i}", t) for i, t in enumerate(v, 1)]
        good = [t for t in found if t is not None]
        if len(set(good)) != len(good):
            self.fail(key, "lists the same time twice")
        return tuple(sorted(set(good)))


# --- value types: how one key's TOML value is read, and written in the example file -----------

class Type:
    """A key's value type. ``read`` returns the value, or reports the problem and returns the default."""

    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        raise NotImplementedError

    def toml(self, value: Any) -> str:
        return toml_value(value)


def whole(v: Any, lo: int, hi: int) -> bool:
    """A TOML integer (not a boolean, which Python counts as one) from ``lo`` to ``hi``."""
    return not isinstance(v, bool) and isinstance(v, int) and lo <= v <= hi


@dataclass(frozen=True)
class Int(Type):
    lo: int
    hi: int
    unit: str = ""                 # "of minutes", "(BCM GPIO number)": said after "a whole number"
    hex: bool = False              # written 0x3C in the example file

    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        if not whole(v, self.lo, self.hi):
            what = f" {self.unit}" if self.unit else ""
            r.fail(s.where, f"must be a whole number{what} from {self.lo} to {self.hi}, got {v!r}")
            return s.default
        return v

    def toml(self, value: Any) -> str:
        return f"0x{value:02X}" if self.hex else toml_value(value)


@dataclass(frozen=True)
class Pin(Int):
    """A BCM GPIO number. ``optional``: -1 (None) when the part is not fitted; ``spi``: used only
    with an SPI panel. The parser checks every pin row against the others and the buses."""

    lo: int = 0
    hi: int = 27
    unit: str = "(BCM GPIO number)"
    optional: bool = False
    spi: bool = False

    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        if not self.optional:
            return super().read(r, s, v)
        if not whole(v, -1, self.hi):
            r.fail(s.where, f"must be a whole number {self.unit} from -1 to {self.hi}, got {v!r}")
            return None            # not the default: a part named wrongly is not counted as fitted
        return None if v == -1 else v

    def toml(self, value: Any) -> str:
        return "-1" if value is None else str(value)


@dataclass(frozen=True)
class Choice(Type):
    options: tuple[str, ...]

    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        if v not in self.options:
            r.fail(s.where, f"must be one of {', '.join(repr(o) for o in self.options)}, got {v!r}")
            return s.default
        return str(v)


@dataclass(frozen=True)
class Bool(Type):
    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        if not isinstance(v, bool):
            r.fail(s.where, f"must be true or false, got {v!r}")
            return s.default
        return v


@dataclass(frozen=True)
class Pattern(Type):
    """Text matching a regular expression; ``rule`` says it in words ("must be " + rule + ", got …").
    ``empty``: "" is allowed too (and means the default's own meaning)."""

    pattern: str
    rule: str
    empty: bool = False

    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        if not isinstance(v, str) or ((v or not self.empty) and not re.match(self.pattern, v)):
            r.fail(s.where, f"must be {self.rule}, got {v!r}")
            return s.default
        return v


@dataclass(frozen=True)
class Text(Pattern):
    """Any text; ``rule`` says what it is."""

    pattern: str = ""
    rule: str = "text in quotes"
    empty: bool = True


@dataclass(frozen=True)
class Clock(Type):
    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        return r.clock_time(s.where, v) or s.default


@dataclass(frozen=True)
class Times(Type):
    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        return r.times(s.where, v, s.default)


@dataclass(frozen=True)
class Deferred(Type):
    """Taken as written; the row's ``check`` judges it against the other keys (a layout against the panel)."""

    def read(self, r: Reader, s: Setting, v: Any) -> Any:
        return v


def toml_value(value: Any) -> str:
    """A default as the example file writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, time):
        return f'"{value:%H:%M}"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# --- rows -------------------------------------------------------------------------------------

Check = Callable[[Any], "str | None"]     # (the whole config) -> a problem with this key, or None


@dataclass(frozen=True)
class Setting:
    """One row of the schema."""

    section: str
    key: str
    type: Type
    default: Any
    help: str = ""                 # the example file's comment: first line beside the key, the rest under it
    note: str = ""                 # a comment block after the key, from the line's start
    check: Check | None = None     # a rule relating this key to others, run on the whole config
    warn: Check | None = None      # a warning (not an error) about the whole config, said for this key
    called: str = ""               # what a nurse or engineer calls it (a ward's new configuration names its changes)
    own: bool = False              # the unit's own: never taken from a ward's configuration offered by a stick
    fallback: Any = REQUIRED       # taken when the key is written wrongly, if not the default (items only)
    path: str = ""                 # the attribute on the config: "snooze_minutes", "hardware.button_pin"
    within: str = ""               # for a key of a list's item: where the item is ("[hourly] exercises #2")

    @property
    def where(self) -> str:
        return f"{self.within} {self.key}" if self.within else f"[{self.section}] {self.key}"

    def located(self, within: str) -> Setting:
        """This row as read in one item of a list: its problems say where the item is, and a key written
        wrongly reads as its fallback."""
        if self.fallback is REQUIRED:
            return replace(self, within=within)
        return replace(self, within=within, default=self.fallback)


def setting(default: T, type_: Type, help: str = "", *, section: str = "", key: str = "", note: str = "",
            check: Check | None = None, warn: Check | None = None, called: str = "", own: bool = False,
            fallback: Any = REQUIRED) -> T:
    """A dataclass field that is a row of the schema. ``section`` and ``key`` default to the section's
    dataclass and the field's own name."""
    row = Setting(section, key, type_, default, help, note, check, warn, called, own, fallback)
    out: T = field(default=default, metadata={SETTING: row})
    return out


def required(type_: Type, help: str = "") -> Any:
    """A dataclass field that is a row with no default: an item (an exercise) must say it."""
    return field(metadata={SETTING: Setting("", "", type_, REQUIRED, help)})


def item_rows(item_class: type) -> tuple[Setting, ...]:
    """The rows of a table that is an item of a list (an exercise, a stage): one per field, keyed by its name."""
    return tuple(_complete(f.metadata[SETTING], "", f.name, f.name) for f in fields(item_class))


def read_item(r: Reader, item_rows: tuple[Setting, ...], table: Any, within: str) -> dict[str, Any]:
    """Each row's value from an item's table, by field name: as written and read by its type, or its
    default when absent (a required key absent is read as None, so its type says what it wants)."""
    out: dict[str, Any] = {}
    for s in item_rows:
        v = table.get(s.key, REQUIRED)
        if v is REQUIRED and s.default is not REQUIRED:
            out[s.path] = s.default
        else:
            out[s.path] = s.type.read(r, s.located(within), None if v is REQUIRED else v)
    return out


def rows(config_class: type) -> Iterator[Setting]:
    """Every row, in field order: the config class's own fields that are rows, and the fields of each
    section dataclass it holds (the section named by the field)."""
    for f in fields(config_class):
        row = f.metadata.get(SETTING)
        section: Any = f.default_factory          # a section dataclass, or no factory (MISSING) at all
        if row is not None:
            yield _complete(row, row.section, row.key or f.name, f.name)
        elif isinstance(section, type) and is_dataclass(section):
            for g in fields(section):
                sub = g.metadata.get(SETTING)
                if sub is not None:
                    yield _complete(sub, sub.section or f.name, sub.key or g.name, f"{f.name}.{g.name}")


def _complete(row: Setting, section: str, key: str, path: str) -> Setting:
    return replace(row, section=section, key=key, path=path)


def get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


# --- the annotated example file -------------------------------------------------------------------

@dataclass(frozen=True)
class Section:
    """A section of the file: its heading's comment, or (a section of named tables) its text as written."""

    name: str
    help: str = ""
    text: str = ""
    called: str = ""               # for a section of named tables: what a nurse or engineer calls it
    own: bool = False              # every key of it is the unit's own (Setting.own)


def _commented(head: str, help: str) -> list[str]:
    """``head`` with its comment beside it, the comment's further lines aligned under the first."""
    if not help:
        return [head]
    first, *more = help.split("\n")
    return [f"{head.ljust(COLUMN - 1)} # {first}"] + [f"{'':{COLUMN}}# {line}" for line in more]


def example(header: str, sections: tuple[Section, ...], schema: tuple[Setting, ...]) -> str:
    """The annotated config file: every key with its default and its help, section by section."""
    out = header.rstrip("\n").split("\n")
    for sec in sections:
        out.append("")
        if sec.text:
            out += sec.text.rstrip("\n").split("\n")
            continue
        out += _commented(f"[{sec.name}]", sec.help)
        for s in schema:
            if s.section == sec.name:
                out += _commented(f"{s.key} = {s.type.toml(s.default)}", s.help)
                out += [f"# {line}".rstrip() for line in s.note.split("\n")] if s.note else []
    return "\n".join(out) + "\n"
