"""Episodes and regimens: which sessions a patient's post-operative day calls for. Pure.

An episode is one patient's stay at this bed: admitting starts it (an episode id, the date
of surgery and a regimen), discharging closes it. The unit never holds a name: the id is
the hospital's reference, and the rules below refuse anything that looks like a name.

A regimen is a list of stages by post-operative day (day 0 is the day of surgery); each
stage keeps or overrides the [hourly] and [routine] settings, so the default regimen
prompts every waking hour on days 0-2 and then only twice a day. With no episode the unit
runs the default regimen counted from its first start at the bed or the last discharge
(``state.plan_episode``; so it works out of the box and steps down), or nothing when
``[episodes] without_episode = "quiet"``. After a discharge the bed is empty: the unit is
silent and shows that it is ready for the next patient until an admission, or until a press
says someone is there (its sessions are then the unadmitted unit's, never a patient's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time
from functools import lru_cache

from bedside.core.config import Config, Exercise, Regimen, Stage
from bedside.core.memo import DAYS_KEPT

# Letters, digits and . _ -, with at least one digit: hospital references are numbered, and
# the digit rule keeps a surname typed into the id field from ever being stored.
_EPISODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,17}$")
SURGERY_PAST_DAYS = 365      # an admission may name a surgery up to a year ago ...
SURGERY_FUTURE_DAYS = 60     # ... or up to two months ahead (exercises before surgery)


@dataclass(frozen=True, slots=True)
class Episode:
    id: str
    surgery: date
    regimen: str


@dataclass(frozen=True, slots=True)
class Rules:
    """What one local date's sessions are, after the regimen's stage is applied."""

    every_minutes: int
    hourly_exercises: tuple[Exercise, ...]
    routine_at: tuple[time, ...]
    routine_exercises: tuple[Exercise, ...]


QUIET = Rules(0, (), (), ())
UNADMITTED = ""    # the id of the stand-in episode a unit with no one admitted follows (state.plan_episode)
VACANT = "-"       # ... and of the one a bed left empty by a discharge follows: nothing, until someone is there


def post_op_day(ep: Episode, d: date) -> int:
    """Day 0 is the day of surgery; days before it are negative."""
    return (d - ep.surgery).days


def regimen_of(cfg: Config, ep: Episode | None) -> Regimen | None:
    """The regimen that runs: the episode's (the default if the config no longer has it), or None when quiet."""
    if ep is None:
        return None if cfg.without_episode == "quiet" else cfg.regimen(cfg.default_regimen)
    if ep.id == VACANT:
        return None
    return cfg.regimen(ep.regimen) or cfg.regimen(cfg.default_regimen)


def stage_of(regimen: Regimen, day: int) -> tuple[int, Stage]:
    """(1-based number, stage) in force on post-operative ``day``; days before the first use the first."""
    n, chosen = 1, regimen.stages[0]
    for i, s in enumerate(regimen.stages, 1):
        if s.from_day <= day:
            n, chosen = i, s
    return n, chosen


@lru_cache(maxsize=DAYS_KEPT)
def rules(cfg: Config, ep: Episode | None, d: date) -> Rules:
    regimen = regimen_of(cfg, ep)
    if regimen is None:
        return QUIET
    day = 0 if ep is None else post_op_day(ep, d)
    if ep is not None and ep.id == UNADMITTED:
        day = max(0, day)          # a clock set back before the first start: day 0, not "before surgery"
    _, s = stage_of(regimen, day)
    return Rules(
        cfg.hourly_every_minutes if s.hourly_every_minutes is None else s.hourly_every_minutes,
        cfg.hourly_exercises if s.hourly_exercises is None else s.hourly_exercises,
        cfg.routine_at if s.routine_at is None else s.routine_at,
        cfg.routine_exercises if s.routine_exercises is None else s.routine_exercises,
    )


def from_wristband(cfg: Config, typed: str) -> tuple[str, str | None]:
    """(visit number, MRN or None) from what the nurse typed or scanned in place of the episode id:
    a scan matching the ward's ``[hospital] wristband`` pattern gives its groups; anything else is
    the episode id itself."""
    pattern = cfg.hospital.wristband
    m = re.fullmatch(pattern, typed) if pattern else None
    if m is None:
        return typed, None
    return m["visit"], m.groupdict().get("mrn")


def mrn_problem(mrn: str | None) -> str | None:
    if mrn is not None and (not _EPISODE_ID.match(mrn) or not any(ch.isdigit() for ch in mrn)):
        return "MRN must be 1 to 18 letters, digits, '.', '_' or '-' with a digit (a number, never a name)"
    return None


def admit_problem(cfg: Config, episode: str, surgery: date, regimen: str | None, today: date,
                  mrn: str | None = None) -> str | None:
    """Why an admission cannot be accepted, in words for the nurse; None when it can.

    The serial link can call this to answer the laptop at once; the core checks again.
    ``episode`` may be a scanned wristband (``from_wristband``).
    """
    episode, scanned_mrn = from_wristband(cfg, episode)
    problem = mrn_problem(mrn or scanned_mrn)
    if problem is not None:
        return problem
    if not _EPISODE_ID.match(episode):
        return "episode id must be 1 to 18 letters, digits, '.', '_' or '-', starting with a letter or digit"
    if not any(ch.isdigit() for ch in episode):
        return "episode id must contain a digit (it is the hospital's reference, never a name)"
    if regimen is not None and cfg.regimen(regimen) is None:
        known = ", ".join(r.name for r in cfg.regimens)
        return f"no regimen called {regimen!r} in this unit's configuration (it has {known})"
    days = (today - surgery).days
    if days > SURGERY_PAST_DAYS:
        return f"surgery date {surgery.isoformat()} is more than a year ago"
    if -days > SURGERY_FUTURE_DAYS:
        return f"surgery date {surgery.isoformat()} is more than {SURGERY_FUTURE_DAYS} days ahead"
    return None


def discharge_problem(current: Episode | None, episode: str | None) -> str | None:
    """Why a discharge cannot be accepted; None when it can. Naming the episode guards the wrong bed."""
    if current is None:
        return "no patient is admitted to this unit"
    if episode is not None and episode != current.id:
        return f"this unit's episode is {current.id}, not {episode}"
    return None
