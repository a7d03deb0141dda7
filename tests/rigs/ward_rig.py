"""A ward of made-up units: correctly chained journals with admissions, discharges, misses and
faults on given days, written as pull folders, stick export folders or export files.

The simulator makes one real unit's week (conftest ``week``); a ward of 30 or 200 units is
made here in milliseconds, record shapes as the unit writes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from bedside.journal import chain, export

OFFSET = "+01:00"
HOURS = range(8, 21)               # an hourly session 08:00-20:00: 13 a day


def at(d: date, h: int, m: int = 0) -> str:
    return f"{d.isoformat()}T{h:02d}:{m:02d}:00.000{OFFSET}"


@dataclass
class Bed:
    unit: str
    first: date                                   # the first day of the record
    last: datetime                                # the record ends here (local, naive)
    admits: list[tuple[datetime, str, date]] = field(default_factory=list)       # when, episode, surgery
    discharges: list[datetime] = field(default_factory=list)
    missed: Callable[[date, int], bool] = lambda d, h: False
    faults: list[tuple[datetime, str, str]] = field(default_factory=list)      # when, part, problem
    cleared: list[tuple[datetime, str]] = field(default_factory=list)
    boot: str = "b1"
    events: list[tuple[datetime, dict[str, Any]]] = field(default_factory=list)   # any other record, as written
    quiet_when_empty: bool = False                # after a discharge no prompts until the next admission


def records(bed: Bed) -> list[dict[str, Any]]:
    """The unit's journal, sealed as the journal seals it."""
    events: list[tuple[datetime, int, dict[str, Any]]] = []

    def add(when: datetime, order: int, body: dict[str, Any]) -> None:
        if when <= bed.last:
            events.append((when, order, {"time": at(when.date(), when.hour, when.minute), **body}))

    add(datetime.combine(bed.first, datetime.min.time()).replace(hour=7), 0,
        {"type": "start", "unit": bed.unit, "version": "test", "config": "c1"})
    for when, ep, surgery in bed.admits:
        add(when, 1, {"type": "admit", "episode": ep, "surgery": surgery.isoformat(), "regimen": "standard",
                      "day": (when.date() - surgery).days, "via": "serial"})
    for when in bed.discharges:
        add(when, 1, {"type": "discharge", "via": "serial"})
    for when, part, problem in bed.faults:
        add(when, 1, {"type": "fault", "part": part, "problem": problem})
    for when, part in bed.cleared:
        add(when, 1, {"type": "fault_cleared", "part": part})
    for when, body in bed.events:
        add(when, 1, body)
    vacant = [(gone, min((a for a, _, _ in bed.admits if a > gone), default=datetime(9999, 1, 1)))
              for gone in bed.discharges] if bed.quiet_when_empty else []
    d = bed.first
    while d <= bed.last.date():
        for h in HOURS:
            if any(a <= datetime.combine(d, datetime.min.time()).replace(hour=h) < b for a, b in vacant):
                continue
            sid = f"{d.isoformat()}T{h:02d}:00 hourly"
            base = {"session": sid, "due": at(d, h), "kind": "hourly"}
            prompt = datetime.combine(d, datetime.min.time()).replace(hour=h)
            add(prompt, 2, {"type": "prompt", **base, "reps": 10})
            if bed.missed(d, h):
                add(prompt + timedelta(minutes=30), 2, {"type": "missed", **base, "reason": "unanswered"})
            else:
                add(prompt + timedelta(minutes=4), 2, {"type": "done", **base, "reps": 10, "planned": 10,
                                                      "late_min": 2, "early": False, "snoozes": 0,
                                                      "duration_s": 120})
        d += timedelta(days=1)
    events.sort(key=lambda e: (e[0], e[1]))
    return seal([e[2] for e in events], bed.boot)


def seal(bodies: list[dict[str, Any]], boot: str = "b1", first_seq: int = 1,
         prev: str = chain.GENESIS) -> list[dict[str, Any]]:
    out = []
    for i, body in enumerate(bodies):
        rec = {"boot": boot, "mono_ms": (i + 1) * 1000, "tq": "rtc", **body, "seq": first_seq + i, "prev": prev}
        _, digest = chain.seal_body(rec)
        rec["hash"] = digest
        prev = digest
        out.append(rec)
    return out


def export_text(recs: list[dict[str, Any]], exported: datetime, via: str = "serial") -> str:
    """An export file as ``bedside log export --out``, a pull or a stick writes it."""
    header = export.header_for(recs, since_seq=recs[0]["seq"] - 1 if recs else 0, segments=[], exported=exported)
    header["via"] = via
    return json.dumps(header, sort_keys=True) + "\n" + "".join(chain.canonical(r) + "\n" for r in recs)


def as_pull(folder: Path, unit: str, recs: list[dict[str, Any]], exported: datetime, report: bool = True) -> Path:
    """A pull folder's files for a unit: the export, and the report beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{unit}-journal.jsonl"
    path.write_text(export_text(recs, exported))
    if report:
        (folder / f"{unit}-report.html").write_text(f"<!DOCTYPE html><title>{unit}</title>")
    return path


def as_stick(stick: Path, unit: str, recs: list[dict[str, Any]], exported: datetime) -> Path:
    """A stick export folder: Bedside/UNIT_DATE_TIME/journal.jsonl and report.html."""
    folder = stick / "Bedside" / f"{unit}_{exported:%Y-%m-%d_%H%M}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "journal.jsonl").write_text(export_text(recs, exported, via="stick"))
    (folder / "report.html").write_text(f"<!DOCTYPE html><title>{unit}</title>")
    return folder / "journal.jsonl"


def local(text: str) -> datetime:
    return datetime.fromisoformat(text)


def aware(text: str) -> datetime:
    return datetime.fromisoformat(text + OFFSET)
