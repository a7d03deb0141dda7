"""The unit after a restart: its state rebuilt from the journal's recent records, the start
logged, and the catch-up after the outage (``start``).

Pure like the rest of the core: the shell hands in the records it read and an ``Instant``.
Sessions that fell due while the unit was off are offered late if still inside their missed
window, else logged missed with reason ``power_loss`` (or ``unit_off`` after a clean stop);
a prompt that was up is up again; a guide the outage cut short is logged interrupted, with
the reps its own pace had counted by the last sign of life (the heartbeat). Everything after
that is the state machine's own step (``machine.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from bedside.core import extra, guide, planner
from bedside.core.config import Config
from bedside.core.episodes import Episode
from bedside.core.events import (
    Effect,
    Instant,
    Past,
    Play,
    Record,
)
from bedside.core.extra import EXTRA

# A restart records and settles sessions as the step does.
from bedside.core.machine import OCCUPIED, episode_fields, may_sound, set_outcome, step
from bedside.core.records import OUTCOMES, Kind, T, of_kind
from bedside.core.state import (
    DEFERRED,
    INTERRUPTED,
    JUMP_S,
    MISSED,
    OUTAGE_LOOKBACK,
    PROMPTED,
    Prompting,
    State,
    iso,
    local_date,
    mono_at,
    plan_episode,
    seconds_between,
)


@dataclass(slots=True)
class _PastPrompt:
    session: str
    due: str | None
    first: datetime
    last_ring: datetime
    snoozes: int = 0
    snooze_until: datetime | None = None
    repeats: int = 0
    started: datetime | None = None     # the press that started its guide, if one did


def start(cfg: Config, past: Iterable[Past], now: Instant, *, time_quality: str,
          version: str, boot: str, alive: datetime | None = None) -> tuple[State, list[Effect]]:
    """Rebuild the state from recent journal records, log the start, and catch up.

    ``alive`` is when the unit was last known running (its heartbeat), if later than the
    last record: it bounds the outage more tightly than the last record does."""
    outcomes: dict[str, str] = {}
    prompts: dict[str, _PastPrompt] = {}
    extras: dict[str, tuple[datetime, object]] = {}   # extra sessions begun and not yet recorded
    last: Past | None = None
    episode: Episode | None = None
    plan_changed: datetime | None = None
    last_export: datetime | None = None
    paused_until: datetime | None = None
    power_cut: tuple[datetime, float] | None = None
    storage_outage: datetime | None = None
    unadmitted_since: date | None = None
    vacant = False
    gap_since_vacant = False          # a record is missing after the one that emptied the bed
    last_run: Past | None = None      # the newest record a running daemon wrote
    for r in past:
        if vacant and last is not None and r.seq != last.seq + 1:
            gap_since_vacant = True
        last = r
        if not offline_record(r):
            # Records written while the daemon was stopped (commissioning, a stick export,
            # a software update) say nothing of how its last run ended.
            last_run = r
        sid = r.session
        if r.type == T.PAUSE:
            paused_until = _parse(r.data.get("until")) if isinstance(r.data.get("until"), str) else None
        elif r.type == T.RESUME:
            paused_until = None
        elif r.type == T.POWER_LOSS and isinstance(r.data.get("last_known"), str):
            began = datetime.fromisoformat(r.data["last_known"])
            power_cut = (began, seconds_between(r.time, began))
        elif r.type == T.FAULT and r.data.get("part") == "journal" and storage_outage is None:
            storage_outage = r.time
        if r.type == T.START and isinstance(r.data.get("unadmitted_since"), str):
            unadmitted_since = _date(r.data["unadmitted_since"])
            vacant = r.data.get("vacant") is True
            gap_since_vacant = False
        elif r.type == T.DISCHARGE:
            unadmitted_since = planner.local(r.time, cfg.tz).date()
            # A discharge made by the next admission is followed by that admission in the same step:
            # were the admission lost with a damaged segment, the unit must not fall silent at a bed
            # that has a patient.
            vacant = r.data.get("reason") != "new admission"
            gap_since_vacant = False
        elif r.type == T.ADMIT:
            unadmitted_since = None
            vacant = False
        elif r.type == T.PRESS and r.data.get("action") == OCCUPIED:
            vacant = False
        if r.type in (T.ADMIT, T.DISCHARGE, T.START):
            # Every start restates the open episode, so it survives however old its admission is.
            before = episode
            episode = _episode_from(r.data) if r.type != T.DISCHARGE else None
            if r.type != T.START or episode != before:
                plan_changed = r.time
        elif r.type == T.EXPORT:
            last_export = r.time
            storage_outage = None
        if sid is None:
            continue
        if r.type == T.PROMPT:
            prompts[sid] = _PastPrompt(sid, r.data.get("due"), r.time, r.time)
            outcomes[sid] = PROMPTED
        elif r.type == T.REPEAT and sid in prompts:
            prompts[sid].last_ring = r.time
            prompts[sid].repeats += 1
        elif r.type == T.SNOOZE and sid in prompts:
            prompts[sid].snoozes += 1
            until = r.data.get("until")
            prompts[sid].snooze_until = datetime.fromisoformat(until) if isinstance(until, str) else None
        elif r.type == T.PRESS and r.data.get("action") == "start" and sid in prompts:
            prompts[sid].started = r.time
        elif r.type == T.PRESS and r.data.get("action") == "extra":
            extras[sid] = (r.time, r.data.get("variation"))
        elif r.type == EXTRA:
            extras.pop(sid, None)
        elif r.type in OUTCOMES:
            outcomes[sid] = r.type
            prompts.pop(sid, None)
        elif r.type == DEFERRED:
            outcomes.setdefault(sid, DEFERRED)

    fx: list[Effect] = []
    clean_stop = last_run is None or last_run.type == T.STOP
    stale_reason = "unit_off" if clean_stop else "power_loss"
    known = max(last.time, alive) if last is not None and alive is not None else (last.time if last else None)
    if last_run is not None and not clean_stop:
        seen = max(last_run.time, alive) if alive is not None else last_run.time
        lost = {"last_known": iso(seen, cfg), "last_seq": last_run.seq}
        if seen != last_run.time:
            lost["last_record"] = iso(last_run.time, cfg)
        fx.append(Record(T.POWER_LOSS, data=lost))
        power_cut = (seen, seconds_between(now.wall, seen))
    problems: dict[str, str] = {}
    tq = time_quality
    resume_from: datetime | None = None
    if tq == "distrusted":
        # The shell found the clock implausible (e.g. before the software was built).
        problems["clock"] = "Clock not set: set time"
        resume_from = known
    # A new unit offers a session whose window is still open, rather than waiting an hour.
    cursor = now.wall - timedelta(minutes=cfg.missed_after_minutes)
    if last is not None and known is not None:
        if now.wall < known - timedelta(seconds=JUMP_S):
            # The clock is behind the journal: it cannot be right, and catch-up would be guesswork.
            tq = "distrusted"
            cursor = now.wall
            resume_from = known
            problems["clock"] = "Clock behind log: set time"
            fx.append(Record(T.FAULT, data={"part": "clock", "problem": "clock is earlier than the last record",
                                            "last_record": iso(known, cfg), "now": iso(now.wall, cfg)}))
        elif tq == "distrusted":
            cursor = now.wall
        else:
            cursor = max(last.time, now.wall - OUTAGE_LOOKBACK)
    if episode is None and unadmitted_since is None:
        unadmitted_since = local_date(cfg, now)          # the first start at this bed
    # Every start restates when the unadmitted unit's days count from, like the open episode.
    since: dict[str, object] = {"unadmitted_since": unadmitted_since.isoformat()} \
        if episode is None and unadmitted_since else {}
    if vacant and gap_since_vacant:
        # Records are missing since the bed was emptied (a damaged segment): one of them may
        # have been an admission. A silent unit at a patient's bed is the worse mistake, so the
        # unit prompts again, as an unadmitted one.
        vacant = False
    if episode is None and vacant:
        since["vacant"] = True                             # ... and that the bed is empty since a discharge
    fx.insert(0, Record(T.START, data={"version": version, "config": cfg.fingerprint(), "unit": cfg.unit_id,
                                       **episode_fields(episode), **since}))
    if cfg.refused:
        # The ward's configuration could not be used: the unit runs on its own, and says so.
        problems["config"] = "Ward settings refused: using own"
        for problem in cfg.refused:
            fx.append(Record(T.FAULT, data={"part": "config", "problem": problem}))
    if episode is not None and cfg.regimen(episode.regimen) is None:
        problems["regimen"] = f"Regimen {episode.regimen} not in config: running {cfg.default_regimen}"
        fx.append(Record(T.FAULT, data={"part": "regimen", "problem": problems["regimen"]}))

    state = State(last=now, cursor=cursor, outcomes=outcomes, time_quality=tq, stale_reason=stale_reason,
                  problems=problems, episode=episode, plan_changed=plan_changed, last_export=last_export,
                  activity=now.mono, resume_from=resume_from, paused_until=paused_until, power_cut=power_cut,
                  storage_outage=storage_outage, unadmitted_since=unadmitted_since, vacant=vacant and episode is None)
    # A guide the outage cut short is settled as interrupted: the patient answered the prompt.
    for p in [p for p in prompts.values() if p.started is not None]:
        fx.append(_interrupted(cfg, p, episode, stale_reason, known))
        state = set_outcome(state, p.session, INTERRUPTED)
        del prompts[p.session]
    # So is an extra session (on request, never due): recorded as one, saying it was cut off.
    for sid, (started, variation) in extras.items():
        fx.append(_extra_interrupted(cfg, sid, started, variation, stale_reason, known))
        state = set_outcome(state, sid, EXTRA)
    # The newest unresolved prompt comes back if still inside its window; older ones are closed.
    pending = sorted(prompts.values(), key=lambda p: p.first)
    for p in pending[:-1]:
        fx.append(Record(MISSED, p.session, _parse(p.due), {"reason": "superseded"}))
        state = set_outcome(state, p.session, MISSED)
    if pending:
        p = pending[-1]
        session = _find_session(cfg, p.session, p.due, plan_episode(cfg, state))
        window = timedelta(minutes=cfg.missed_after_minutes + p.snoozes * cfg.snooze_minutes)
        # Only a clock that moved forward from the prompt can say how long it has been up.
        if session is not None and p.first - timedelta(seconds=JUMP_S) <= now.wall < p.first + window:
            snoozed = p.snooze_until if p.snooze_until and p.snooze_until > now.wall else None
            state = replace(state, active=Prompting(
                session, p.first, mono_at(now, p.first),
                next_repeat=max(now.mono, mono_at(now, p.last_ring) + cfg.repeat_every_minutes * 60),
                missed_at=mono_at(now, p.first + window), snoozes=p.snoozes,
                snoozed_until=mono_at(now, snoozed) if snoozed else None, repeats=p.repeats))
        else:
            fx.append(Record(MISSED, p.session, _parse(p.due), {"reason": stale_reason}))
            state = set_outcome(state, p.session, MISSED)
    if problems and may_sound(cfg, state, now):
        fx.append(Play("fault"))
    state, more = step(cfg, state, None, now)
    return state, fx + more


OFFLINE_TYPES = of_kind(Kind.OFFLINE)     # only ever written with the daemon stopped


def offline_record(r: Past) -> bool:
    """Written by the offline writer (unit/offline.py), not by a running daemon."""
    return r.data.get("offline") is True or r.type in OFFLINE_TYPES


def _interrupted(cfg: Config, p: _PastPrompt, ep: Episode | None, reason: str,
                 known: datetime | None) -> Record:
    """The record of a guided session the unit stopped in the middle of.

    No rep is recorded as it happens, so how many were done is known only up to the last
    sign of life after the start (a heartbeat): the guide's own pace gives the reps it had
    counted by then, the same count a finished session records. Without one: "unknown"."""
    assert p.started is not None
    session = _find_session(cfg, p.session, p.due, ep)
    data: dict[str, object] = {"reason": reason, "started": iso(p.started, cfg), "reps": "unknown",
                               "snoozes": p.snoozes}
    if session is not None:
        steps = guide.plan(session.exercises)
        data.update(kind=session.kind, planned=guide.total_reps(steps),
                    late_min=round(seconds_between(p.started, session.offer) / 60))
        if known is not None and known > p.started:
            data["reps"] = guide.reps_by(steps, seconds_between(known, p.started))
            data["reps_known_at"] = iso(known, cfg)
    return Record(INTERRUPTED, p.session, _parse(p.due), data)


def _extra_interrupted(cfg: Config, sid: str, started: datetime, variation: object, reason: str,
                       known: datetime | None) -> Record:
    """The ``extra`` record of an extra session the unit stopped in the middle of: the reps
    its pace gives up to the last sign of life, as for a prompted session (``_interrupted``)."""
    data: dict[str, object] = {"kind": EXTRA, "interrupted": True, "reason": reason, "started": iso(started, cfg),
                               "reps": "unknown", "early": True}
    chosen = extra.VARIATIONS.get(variation) if isinstance(variation, str) else None
    if chosen is not None:
        steps = guide.plan(chosen[0])
        data.update(exercises=[e.name for e in chosen[0]], planned=guide.total_reps(steps))
        if known is not None and known > started:
            data["reps"] = guide.reps_by(steps, seconds_between(known, started))
            data["reps_known_at"] = iso(known, cfg)
    return Record(EXTRA, sid, started, data)


def _episode_from(data: Mapping[str, object]) -> Episode | None:
    ep, surgery, regimen = data.get("episode"), data.get("surgery"), data.get("regimen")
    if not (isinstance(ep, str) and isinstance(surgery, str) and isinstance(regimen, str)):
        return None
    try:
        return Episode(ep, date.fromisoformat(surgery), regimen)
    except ValueError:
        return None


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _parse(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


def _find_session(cfg: Config, sid: str, due_iso: str | None, ep: Episode | None) -> planner.Session | None:
    due = _parse(due_iso)
    if due is None:
        return None
    for s in planner.sessions_between(cfg, due, due + timedelta(seconds=1), ep):
        if s.id == sid:
            return s
    return None
