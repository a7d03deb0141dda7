"""A scripted ward of seven beds with different fortunes, as it stands at any hour of one day
(Wednesday 2 December 2026): the records each unit would hold then, as pull folders and a stick.

* bed01: a diligent patient, every session done.
* bed02: a patient who ignores the prompts: did only the 19:00 session yesterday, nothing today.
* bed03: discharged today at 14:05; the bed is quiet after that.
* bed04: re-admitted: the last patient (who missed sessions) was discharged yesterday at 10:00,
  a new one admitted at 15:00; the new patient has done everything.
* bed05: a clock moved two hours forward at 09:12 today.
* bed06: missed every session this morning (08:00-11:00), then did them again from 12:00.
* bed07: last downloaded yesterday at 12:05: nothing known since.

``tools/ward_screenshots.py`` draws the page at 07:00, 12:00, 14:10 and 19:00 into docs/, and
``tests/report/test_ward_day.py`` checks those pages in headless Chromium.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from tests.rigs import ward_rig as wr
from tests.rigs.ward_rig import Bed

DAY = date(2026, 12, 2)
YESTERDAY = DAY - timedelta(days=1)
TIMES = ("07:00", "12:00", "14:10", "19:00")


def at(d: date, hm: str) -> datetime:
    return datetime.fromisoformat(f"{d.isoformat()}T{hm}")


def beds(now: datetime) -> list[Bed]:
    """Every bed's record up to ``now`` (local, naive)."""
    last = now - timedelta(minutes=5)
    return [
        Bed("bed01", date(2026, 11, 28), last, admits=[(at(date(2026, 11, 28), "09:30"), "E1", date(2026, 11, 27))]),
        Bed("bed02", date(2026, 11, 30), last, admits=[(at(date(2026, 11, 30), "08:30"), "E2", date(2026, 11, 29))],
            missed=lambda d, h: d == DAY or (d == YESTERDAY and h != 19)),
        Bed("bed03", date(2026, 11, 28), last, admits=[(at(date(2026, 11, 28), "07:30"), "E3", date(2026, 11, 27))],
            discharges=[at(DAY, "14:05")], quiet_when_empty=True),
        Bed("bed04", date(2026, 11, 29), last,
            admits=[(at(date(2026, 11, 29), "07:30"), "E4", date(2026, 11, 28)),
                    (at(YESTERDAY, "15:00"), "E4B", YESTERDAY)],
            discharges=[at(YESTERDAY, "10:00")], quiet_when_empty=True,
            missed=lambda d, h: d == YESTERDAY and h < 10),
        Bed("bed05", date(2026, 11, 29), last, admits=[(at(date(2026, 11, 29), "08:00"), "E5", date(2026, 11, 28))],
            events=[(at(DAY, "09:12"), {"type": "clock_set", "old": f"{DAY}T07:12:00+01:00",
                                        "new": f"{DAY}T09:12:00+01:00", "jump_s": 7200.0, "source": "detected"})]),
        Bed("bed06", date(2026, 11, 29), last, admits=[(at(date(2026, 11, 29), "08:00"), "E6", date(2026, 11, 28))],
            missed=lambda d, h: d == DAY and 8 <= h <= 11),
        Bed("bed07", date(2026, 11, 29), min(last, at(YESTERDAY, "12:00")),
            admits=[(at(date(2026, 11, 29), "08:00"), "E7", date(2026, 11, 28))]),
    ]


def as_of(hm: str) -> datetime:
    """The page's time, aware (the rig's offset)."""
    return datetime.fromisoformat(f"{DAY.isoformat()}T{hm}{wr.OFFSET}")


def write(top: Path, hm: str) -> list[Path]:
    """The ward's downloads at ``hm``: a pull folder (each unit pulled a few minutes ago, bed07
    yesterday) and a stick holding bed05's export. Returns the inputs for ``bedside ward``."""
    now = datetime.fromisoformat(f"{DAY.isoformat()}T{hm}")
    pulls, stick = top / "pulls", top / "STICK"
    for bed in beds(now):
        taken = datetime.fromisoformat((bed.last + timedelta(minutes=3)).isoformat() + wr.OFFSET)
        recs = wr.records(bed)
        if bed.unit == "bed05":
            wr.as_stick(stick, bed.unit, recs, taken)
        else:
            wr.as_pull(pulls, bed.unit, recs, taken)
    return [pulls, stick] if stick.exists() else [pulls]
