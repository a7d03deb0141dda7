"""The laptop's settings for ``bedside fhir``: a TOML file an integration engineer writes once.

    [hospital]            the same table as in the ward's configuration (core.config.Hospital)
    [fhir]                base_url, identifier_system, organization, per_session, max_entries, timeout_seconds
    [auth]                method = none | token | client_credentials | smart_backend, and what it needs
    [units.UNIT-ID]       serial, location: the hospital's asset register for each unit

Every problem is named with its key; unknown keys are errors (a typo must not fall back silently).
docs/fhir.md shows a whole file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bedside.core.config import HOSPITAL, Hospital, parse_hospital
from bedside.core.errors import BedsideError
from bedside.durable import CONFIG_FILE, TooLarge, read_bounded
from bedside.laptop.fhir_post import MAX_ANSWER, TIMEOUT_S, Auth
from bedside.report.fhir import DEFAULT_SYSTEM, UnitInfo

KEYS = {
    "hospital": {s.key for s in HOSPITAL},       # the same rows as the ward's file
    "fhir": {"base_url", "identifier_system", "organization", "per_session", "max_entries", "timeout_seconds",
             "max_answer_mib"},
    "auth": {"method", "token_file", "token_url", "client_id", "client_secret_file", "private_key_file", "key_id",
             "scope"},
    "units": set(),
}
METHODS = ("none", "token", "client_credentials", "smart_backend")


class SettingsError(BedsideError):
    """The settings file is wrong; the message lists every problem."""


@dataclass(frozen=True, slots=True)
class LaptopSettings:
    hospital: Hospital | None = None          # None: the file has no [hospital] table
    base_url: str = ""
    identifier_system: str = ""
    organization: str = ""
    per_session: bool = False
    max_entries: int = 0
    timeout: float = TIMEOUT_S
    max_answer: int = MAX_ANSWER
    auth: Auth = field(default_factory=Auth)
    units: Mapping[str, UnitInfo] = field(default_factory=dict)


def load(path: Path) -> LaptopSettings:
    try:
        data = tomllib.loads(read_bounded(path, CONFIG_FILE).decode("utf-8"))   # a fifo is not waited on
    except OSError as e:
        raise SettingsError(f"cannot read the settings file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{path} is not TOML: {e}") from None
    except (TooLarge, UnicodeDecodeError, RecursionError) as e:
        why = "it is nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise SettingsError(f"{path} is not a settings file: {why}") from None
    return parse(data, path)


def parse(data: Mapping[str, Any], path: Path) -> LaptopSettings:
    problems: list[str] = []

    def fail(where: str, what: str) -> None:
        problems.append(f"{where}: {what}")

    for section, value in data.items():
        if section not in KEYS:
            fail(f"[{section}]", f"unknown section (known: {', '.join(sorted(KEYS))})")
        elif not isinstance(value, Mapping):
            fail(f"[{section}]", "must be a table")
        elif section != "units":
            for key in sorted(set(value) - KEYS[section]):
                fail(f"[{section}] {key}", f"unknown key (known: {', '.join(sorted(KEYS[section]))})")

    def table(name: str) -> Mapping[str, Any]:
        v = data.get(name, {})
        return v if isinstance(v, Mapping) else {}

    def text(sec: str, key: str, default: str = "") -> str:
        v = table(sec).get(key, default)
        if not isinstance(v, str):
            fail(f"[{sec}] {key}", f"must be text in quotes, got {v!r}")
            return default
        return v

    def number(sec: str, key: str, default: float, lo: float, hi: float) -> float:
        v = table(sec).get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
            fail(f"[{sec}] {key}", f"must be a number from {lo:g} to {hi:g}, got {v!r}")
            return default
        return float(v)

    def file(sec: str, key: str) -> Path | None:
        v = text(sec, key)
        return (path.parent / Path(v).expanduser()) if v else None

    hospital = parse_hospital(table("hospital"), fail) if "hospital" in data else None
    fhir = table("fhir")
    base = text("fhir", "base_url")
    if base and not base.startswith(("http://", "https://")):
        fail("[fhir] base_url", f"must be the FHIR server's http:// or https:// base URL, got {base!r}")
    system = text("fhir", "identifier_system")
    if system and (":" not in system or any(c.isspace() for c in system)):
        fail("[fhir] identifier_system", f"must be a URI, got {system!r}")
    per_session = fhir.get("per_session", False)
    if not isinstance(per_session, bool):
        fail("[fhir] per_session", f"must be true or false, got {per_session!r}")
        per_session = False
    method = text("auth", "method", "none")
    if method not in METHODS:
        fail("[auth] method", f"must be one of {', '.join(METHODS)}, got {method!r}")
        method = "none"
    auth = Auth(method, file("auth", "token_file"), text("auth", "token_url"), text("auth", "client_id"),
                file("auth", "client_secret_file"), file("auth", "private_key_file"), text("auth", "key_id"),
                text("auth", "scope", Auth().scope))
    need = {"token": ("token_file",), "client_credentials": ("token_url", "client_id", "client_secret_file"),
            "smart_backend": ("token_url", "client_id", "private_key_file")}.get(method, ())
    for key in need:
        if not table("auth").get(key):
            fail(f"[auth] {key}", f"is needed for method = \"{method}\"")
    units: dict[str, UnitInfo] = {}
    for unit, row in table("units").items():
        if not isinstance(row, Mapping) or set(row) - {"serial", "location"}:
            fail(f"[units.{unit}]", "must be a table of serial and location")
            continue
        if not all(isinstance(v, str) for v in row.values()):
            fail(f"[units.{unit}]", "serial and location must be text in quotes")
            continue
        units[unit] = UnitInfo(row.get("serial", ""), row.get("location", ""))
    out = LaptopSettings(
        hospital=hospital, base_url=base, identifier_system=system or "",
        organization=text("fhir", "organization"), per_session=per_session,
        max_entries=int(number("fhir", "max_entries", 0, 0, 100_000)),
        timeout=number("fhir", "timeout_seconds", TIMEOUT_S, 1, 3600),
        max_answer=int(number("fhir", "max_answer_mib", MAX_ANSWER / 2**20, 1, 4096) * 2**20),
        auth=auth, units=units)
    if problems:
        raise SettingsError(f"{path}: " + "; ".join(problems))
    return out


__all__ = ["DEFAULT_SYSTEM", "LaptopSettings", "SettingsError", "load", "parse"]
