"""Journals of a given age for the scaling benchmarks: N days of a realistic patient, sealed.

One simulated day of the real daemon (a patient who answers most sessions, snoozes some and
misses some) gives the day's records; they are appended again for each further day with
their times moved on, sealed about hourly with the unit's own seal key, as the unit would
have written them. Built once per size into a cache folder and copied for each run.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DAY_START = "2026-11-24T06:00"


def day_actions(cfg: Any, start: datetime) -> list[Any]:
    """Most sessions answered, every fifth snoozed first, one in five missed."""
    from bedside.core import planner
    from bedside.unit import simulate

    actions = []
    for n, s in enumerate(planner.sessions_between(cfg, start, start + timedelta(days=1))):
        t = s.offer.astimezone(cfg.tz) + timedelta(minutes=2)
        if n % 5 == 1:
            actions.append(simulate.Action(t, "hold", 2.5))
            actions.append(simulate.Action(t + timedelta(minutes=11), "press", 0.3))
        elif n % 5 != 3:
            actions.append(simulate.Action(t, "press", 0.3))
    return actions


def _one_day(cfg: Any, work: Path) -> list[dict[str, Any]]:
    from bedside.core.records import T
    from bedside.journal.journal import Journal
    from bedside.unit import simulate

    start = datetime.fromisoformat(DAY_START).replace(tzinfo=cfg.tz)
    sim = simulate.build(cfg, work, start, actions=day_actions(cfg, start))
    sim.unit.run(until=start + timedelta(days=1))
    sim.close()
    j = Journal(work, cfg.tz, "r", readonly=True)
    try:
        # The day's own checkpoints name seqs of that day's journal: the built one gets its own.
        return [r for r in j.records() if r["type"] not in (T.SEAL, T.START, T.STOP, T.VERIFIED)]
    finally:
        j.close()


def build(data: Path, days: int, key_out: Path, cfg: Any = None, *, stay_days: int = 0) -> int:
    """A commissioned unit's data directory holding ``days`` days of journal; its record count.

    ``stay_days``: a ward unit, whose patients stay that many days each; every stay starts a
    segment of its own, as an admission does on the unit (sealed, closed read-only), so a year
    of three-day stays is 122 segments."""
    from bedside.core import config
    from bedside.core.events import Instant, Record
    from bedside.core.records import ENVELOPE_KEYS, T
    from bedside.journal import seal
    from bedside.journal.journal import Journal

    cfg = cfg or config.Config()
    with tempfile.TemporaryDirectory() as w:
        day = _one_day(cfg, Path(w))
    seal.create(data, key_out, cfg.unit_id)
    sealer = seal.Sealer(data)
    j = Journal(data, cfg.tz, "bench-history")
    since = 0
    try:
        for d in range(days):
            if stay_days and d and d % stay_days == 0:
                at = Instant(datetime.fromisoformat(day[0]["time"]) + timedelta(days=d), d * 86400.0)
                seq, h = j.head()
                j.append(Record(T.SEAL, data=sealer.seal_data(seq, h)), at, "rtc")
                sealer.sealed()
                since = 0
                j.new_segment("episode", {"episode": f"stay-{d // stay_days + 1}"})
            for r in day:
                when = datetime.fromisoformat(r["time"]) + timedelta(days=d)
                at = Instant(when, d * 86400 + r["mono_ms"] / 1000)
                fields = {k: v for k, v in r.items() if k not in ENVELOPE_KEYS}
                j.append(Record(r["type"], r.get("session"), None, fields), at, "rtc")
                since += 1
                if since >= 12:          # about hourly, as the unit seals
                    seq, h = j.head()
                    j.append(Record(T.SEAL, data=sealer.seal_data(seq, h)), at, "rtc")
                    sealer.sealed()
                    since = 0
        # Where the last clean whole check left its checkpoint: at the head, as a unit that
        # ran its check after its last start would have.
        seq, h = j.head()
        j.append(Record(T.VERIFIED, data={"seq_checked": seq, "hash_checked": h, "records_checked": seq}), at, "rtc")
        return j.head()[0]
    finally:
        j.close()


def cached(days: int, cache: Path, *, stay_days: int = 0) -> Path:
    """The cached data directory for ``days`` (built on first use); copy it before running a unit on it."""
    src = cache / (f"days-{days}" + (f"-stays-{stay_days}" if stay_days else ""))
    if not (src / "ok").exists():
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        build(src / "data", days, src / "hospital-key.json", stay_days=stay_days)
        (src / "ok").write_text("")
    return src


def copy(days: int, cache: Path, dest: Path, *, stay_days: int = 0) -> Path:
    """A fresh copy of ``days`` of journal at ``dest`` (a data directory)."""
    shutil.copytree(cached(days, cache, stay_days=stay_days) / "data", dest)
    return dest
