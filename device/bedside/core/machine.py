"""The unit's behaviour as a pure state machine: ``step(config, state, event, now)``.

Nothing here reads a clock, a pin or a file. The shell hands in an ``Instant`` (wall and
monotonic time) with every event and carries out the returned effects in order: journal
records first, then sound, screen and LED, so a patient never sees a confirmation for
something that was not committed.

Timing rules (docs/behaviour.md has the nurse-facing version):

* Waits (repeats, snooze, missed, holds, the guide's pace) run on monotonic time, so a
  wall-clock jump never stretches or shortens them.
* Which sessions exist comes from the planner on wall-clock time. A jump of more than
  ``JUMP_S`` against monotonic time is logged as ``clock_set``. Every session is offered at
  most once (ids are remembered), so a backward jump never doubles a prompt; sessions a
  forward jump passed over are offered late if still inside their missed window, else
  logged missed with reason ``clock_jump``; none is skipped silently.
* After a restart (``restart.py``) the same catch-up applies with reason ``power_loss`` (or ``unit_off``
  after a clean stop), and a prompt that was up is up again.
* The open episode (``episodes.py``) decides which sessions each day has; admitting and
  discharging arrive as events and are recorded like everything else.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from bedside.core import button, episodes, extra, guide, pause, planner
from bedside.core import screens as sc
from bedside.core.config import Config
from bedside.core.episodes import Episode
from bedside.core.events import (
    Admit,
    ButtonEdge,
    ClockSet,
    Confirm,
    Decided,
    Discharge,
    Effect,
    Event,
    Exported,
    Instant,
    Notice,
    Pause,
    Play,
    Record,
    Resume,
    StickExport,
    Withdraw,
)
from bedside.core.records import OUTCOMES, T
from bedside.core.state import (
    DEFERRED,
    DONE,
    DONE_S,
    EPISODE_S,
    HINT_S,
    HOLD_FRAME_S,
    JUMP_S,
    LONG_S,
    MAX_SLEEP_S,
    MISSED,
    NIGHT_WAKE_S,
    NURSE_PAGE_S,
    NURSE_S,
    OUTAGE_LOOKBACK,
    PAUSED,
    PROGRESS_S,
    PROMPTED,
    STICK_BUSY_S,
    STICK_S,
    Confirming,
    Guiding,
    Overlay,
    Prompting,
    State,
    iso,
    local_date,
    mono_at,
    plan_episode,
    replace,
    seconds_between,
)
from bedside.core.views import LATE_AFTER, PROMPT_ORBIT_S, next_session, nurse_screen, stick_screen, today, view

# --- the records' helpers (shared with restart.py) ----------------------------------

def episode_fields(ep: Episode | None) -> dict[str, str]:
    if ep is None:
        return {}
    return {"episode": ep.id, "surgery": ep.surgery.isoformat(), "regimen": ep.regimen}


# --- stepping ------------------------------------------------------------------------

def step(cfg: Config, state: State, event: Event | None, now: Instant) -> tuple[State, list[Effect]]:
    """Advance the unit to ``now`` and apply ``event``; returns the new state and effects."""
    fx: list[Effect] = []
    st = _clock_set(cfg, state, event, now, fx) if isinstance(event, ClockSet) else state
    st = _check_clock(cfg, st, now, fx)
    st = _timers(cfg, st, now, fx)
    # A pause that ran out is recorded ended first, so its resume comes before the next prompt;
    # the plan still settles the sessions that fell inside it.
    ended = st.paused_until
    st = _pause_ends(cfg, st, now, fx)
    st = _plan(cfg, st, now, fx, ended)
    if isinstance(event, ButtonEdge):
        st = _edge(cfg, st, event.pressed, now, fx)
    elif isinstance(event, Notice):
        st = _notice(cfg, st, event, now, fx)
    elif isinstance(event, Admit):
        st = _admit(cfg, st, event, now, fx)
    elif isinstance(event, Discharge):
        st = _discharge(cfg, st, event, now, fx)
    elif isinstance(event, Pause):
        st = _pause(cfg, st, event.duration, event.via, now, fx)
    elif isinstance(event, Resume):
        st = _resume(cfg, st, event.via, now, fx)
    elif isinstance(event, Exported):
        fx.append(Record(T.EXPORT, data={**event.details, "via": event.via}))
        # A storage outage is shown to the nurse until the records have been downloaded since.
        st = replace(st, last_export=now.wall, storage_outage=st.storage_outage if "journal" in st.problems else None)
        if event.via == "stick":
            st = _stick_screen(st, stick_screen("done"), STICK_S, now)
    elif isinstance(event, Confirm | Withdraw):
        st = _confirm_event(st, event, now, fx)
    elif isinstance(event, StickExport):
        st = _stick(st, event, now, fx)
    st = replace(st, last=now)
    fx.extend(view(cfg, st, now))
    return st, fx


def with_head(state: State, seq: int, digest: str) -> State:
    """The shell tells the core the journal's chain head after commits (for the nurse screen)."""
    head = f"{seq}/{digest[:8]}"
    # Called after every turn of the loop: most turns commit nothing, and keep the same state.
    return state if head == state.head else replace(state, head=head)


def stop(cfg: Config, state: State, now: Instant, reason: str) -> list[Effect]:
    return [Record(T.STOP, data={"reason": reason})]


def with_problem(state: State, part: str, problem: str | None) -> State:
    """Note that a part is in trouble (shown to the nurse) or, with None, healthy again."""
    if state.problems.get(part) == problem:
        return state
    problems = dict(state.problems)
    if problem is None:
        del problems[part]
    else:
        problems[part] = problem
    return replace(state, problems=problems)


def _notice(cfg: Config, st: State, ev: Notice, now: Instant, fx: list[Effect]) -> State:
    """A part failed or recovered: shown to the nurse and, when that is news, recorded.
    A failure sounds one low note by day, so a unit whose display is dead still says so.
    The journal's own trouble cannot be recorded in it; the shell keeps those records."""
    was_faulty = ev.part in st.problems
    st = with_problem(st, ev.part, ev.problem)
    if ev.part == "journal" and ev.problem is not None and st.storage_outage is None:
        st = replace(st, storage_outage=now.wall)
    if ev.part == "journal" or was_faulty == (ev.problem is not None):
        return st
    if ev.problem is not None:
        fx.append(Record(T.FAULT, data={"part": ev.part, "problem": ev.detail or ev.problem}))
        if may_sound(cfg, st, now):
            fx.append(Play("fault"))   # once when a part fails; never repeated, never at night
    else:
        fx.append(Record(T.FAULT_CLEARED, data={"part": ev.part}))
    return st


# --- USB stick exports --------------------------------------------------------------

def stick_record(event: StickExport) -> Record | None:
    """The journal record of a stick export that ended without exporting (``export_refused``
    or ``export_failed``); None for one under way. An export itself is recorded as ``export``."""
    if event.stage not in ("refused", "failed"):
        return None
    kind = T.EXPORT_REFUSED if event.stage == "refused" else T.EXPORT_FAILED
    return Record(kind, data={**event.details, "via": "stick", "reason": event.reason})


def _stick(st: State, ev: StickExport, now: Instant, fx: list[Effect]) -> State:
    rec = stick_record(ev)
    if rec is not None:
        fx.append(rec)
        return _stick_screen(st, stick_screen("problem", ev.reason), STICK_S, now)
    return _stick_screen(st, stick_screen("busy"), STICK_BUSY_S, now)


def _stick_screen(st: State, screen: sc.Stick, seconds: float, now: Instant) -> State:
    """Show a stick's progress to the nurse who plugged it in, for ``seconds`` or until a press.

    A patient in the middle of a guided session is not interrupted: the export goes on, its
    record is written, and the nurse screen shows the last download."""
    if isinstance(st.active, Guiding):
        return st
    return replace(st, overlay=Overlay(screen, now.mono + seconds, now.mono), activity=now.mono)


# --- episodes ------------------------------------------------------------------------

def _refuse(st: State, command: str, problem: str, via: str, now: Instant, fx: list[Effect]) -> State:
    # The refused id is neither recorded nor shown: it may be exactly what was wrong (a name).
    fx.append(Record(T.REFUSED, data={"command": command, "problem": problem, "via": via}))
    return replace(st, overlay=Overlay(sc.EpisodeChange("refused", command.capitalize(), problem=problem),
                                       now.mono + EPISODE_S, now.mono))


def _admit(cfg: Config, st: State, ev: Admit, now: Instant, fx: list[Effect]) -> State:
    today = local_date(cfg, now)
    problem = episodes.admit_problem(cfg, ev.episode, ev.surgery, ev.regimen, today, ev.mrn)
    if problem is not None:
        return _refuse(st, "admit", problem, ev.via, now, fx)
    visit, scanned_mrn = episodes.from_wristband(cfg, ev.episode)
    old = st.episode
    if old is not None and old.id != visit:
        st = _close_episode(cfg, st, now, fx, ev.via, reason="new admission")
    ep = Episode(visit, ev.surgery, ev.regimen or cfg.default_regimen)
    day = episodes.post_op_day(ep, today)
    data: dict[str, object] = {**episode_fields(ep), "day": day, "via": ev.via}
    # The hospital's numbers and their systems, so the record alone says what the episode id is.
    h, mrn = cfg.hospital, ev.mrn or scanned_mrn
    data.update({k: v for k, v in (("mrn", mrn), ("visit_system", h.visit_system),
                                   ("mrn_system", h.mrn_system if mrn else "")) if v})
    if old is not None and old.id == ep.id:
        data["amended"] = True      # a correction (say, of the surgery date): records are never rewritten
    fx.append(Record(T.ADMIT, data=data))
    problems = {k: v for k, v in st.problems.items() if k != "regimen"}
    return replace(st, episode=ep, plan_changed=now.wall, activity=now.mono, problems=problems, vacant=False,
                   overlay=Overlay(sc.EpisodeChange("admitted", ep.id, day, ep.regimen), now.mono + EPISODE_S,
                                   now.mono))


def _discharge(cfg: Config, st: State, ev: Discharge, now: Instant, fx: list[Effect]) -> State:
    problem = episodes.discharge_problem(st.episode, ev.episode)
    if problem is not None or st.episode is None:
        return _refuse(st, "discharge", problem or "", ev.via, now, fx)
    ep = st.episode
    st = _close_episode(cfg, st, now, fx, ev.via)
    return replace(st, overlay=Overlay(sc.EpisodeChange("discharged", ep.id), now.mono + EPISODE_S, now.mono))


def _close_episode(cfg: Config, st: State, now: Instant, fx: list[Effect], via: str,
                   reason: str | None = None) -> State:
    """Settle every session of the episode, then record its discharge: nothing is left open."""
    ep = st.episode
    assert ep is not None
    for s in st.waiting:
        fx.append(Record(MISSED, s.id, s.due, {"reason": "discharged", "kind": s.kind}))
        st = set_outcome(st, s.id, MISSED)
    st = replace(st, waiting=())
    a = st.active
    if isinstance(a, Guiding):
        st = _finish_guide(cfg, st, a, now, fx, early=True)
    elif isinstance(a, Prompting):
        fx.append(Record(MISSED, a.session.id, a.session.due, {"reason": "discharged", "kind": a.session.kind}))
        st = replace(set_outcome(st, a.session.id, MISSED), active=None)
    data: dict[str, object] = {"episode": ep.id, "day": episodes.post_op_day(ep, local_date(cfg, now)), "via": via}
    if reason:
        data["reason"] = reason
    fx.append(Record(T.DISCHARGE, data=data))
    # The bed is empty: silent, showing it is ready for the next patient, until an admission or a press.
    return replace(st, episode=None, plan_changed=now.wall, activity=now.mono, unadmitted_since=local_date(cfg, now),
                   vacant=True)


def _expected_wall(st: State, now: Instant) -> datetime:
    """The wall time ``now`` should show had the wall clock kept pace with the monotonic one
    since the state's last step (a step or a redraw measures a jump against it)."""
    return st.last.wall + timedelta(seconds=now.mono - st.last.mono)


def _check_clock(cfg: Config, st: State, now: Instant, fx: list[Effect]) -> State:
    expected = _expected_wall(st, now)
    drift = seconds_between(now.wall, expected)
    if abs(drift) <= JUMP_S:
        return st
    fx.append(Record(T.CLOCK_SET, data={"old": iso(expected, cfg), "new": iso(now.wall, cfg),
                                        "jump_s": round(drift, 1), "source": "detected"}))
    if st.resume_from is not None and drift > 0 and now.wall >= st.resume_from:
        # A distrusted clock set past the journal's last record (e.g. by NTP): plausible now,
        # though nobody vouched for it; catch up from the last known time.
        problems = dict(st.problems)
        problems.pop("clock", None)
        return replace(st, cursor=max(st.resume_from, now.wall - OUTAGE_LOOKBACK), stale_reason="clock_jump",
                       resume_from=None, time_quality="unverified", problems=problems)
    return _jumped(st, drift, now)


def _jumped(st: State, drift: float, now: Instant) -> State:
    if drift < 0:
        # Back in time: plan events after the new time are looked at again; remembered
        # outcomes keep any session from being offered twice.
        return replace(st, cursor=now.wall)
    # Forward: sessions passed over are resolved, but never more than the outage look-back
    # (a clock set from 1970 to today must not plan fifty years).
    return replace(st, stale_reason="clock_jump", cursor=max(st.cursor, now.wall - OUTAGE_LOOKBACK))


def _clock_set(cfg: Config, st: State, ev: ClockSet, now: Instant, fx: list[Effect]) -> State:
    """The clock was set on command (a nurse): logged with its source, and the time now trusted."""
    if ev.error is not None:
        fx.append(Record(T.FAULT, data={"part": "clock", "problem": f"the clock could not be set: {ev.error}",
                                        "source": ev.source}))
        return st
    expected = st.last.wall + timedelta(seconds=now.mono - st.last.mono)
    drift = seconds_between(now.wall, expected)
    fx.append(Record(T.CLOCK_SET, data={"old": iso(ev.old, cfg), "new": iso(ev.new, cfg),
                                        "jump_s": round(drift, 1), "source": ev.source}))
    problems = dict(st.problems)
    problems.pop("clock", None)
    tq = "set-by-nurse" if ev.source == "nurse" else ev.source
    if st.resume_from is not None:
        # The clock was not trusted until now: sessions since the journal's last known time
        # are resolved like after an outage (offered if still due, else missed).
        st = replace(st, cursor=max(min(st.resume_from, now.wall), now.wall - OUTAGE_LOOKBACK),
                     stale_reason="clock_jump", resume_from=None)
    elif abs(drift) > JUMP_S:
        st = _jumped(st, drift, now)
    # The jump is accounted for here, so the detector does not log it a second time.
    return replace(st, time_quality=tq, problems=problems, last=now)


def set_outcome(st: State, sid: str, outcome: str) -> State:
    outcomes = dict(st.outcomes)
    outcomes[sid] = outcome
    if len(outcomes) > 400:
        # Remember about three weeks; ids carry their date, so the oldest sort first.
        for old in sorted(outcomes)[: len(outcomes) - 400]:
            del outcomes[old]
    return replace(st, outcomes=outcomes)


def _plan(cfg: Config, st: State, now: Instant, fx: list[Effect], paused_until: datetime | None = None) -> State:
    if now.wall <= st.cursor:
        return st
    if now.wall - st.cursor < timedelta(days=1):
        # Most steps fall between plan events: nothing to offer, defer or miss.
        nxt = planner.next_event_after(cfg, st.cursor, ep=plan_episode(cfg, st))
        if nxt is None or nxt > now.wall:
            return replace(st, cursor=now.wall, stale_reason=None)
    start = st.cursor + timedelta(microseconds=1)
    end = now.wall + timedelta(microseconds=1)
    events: list[tuple[datetime, int, planner.Session]] = []
    for s in planner.sessions_between(cfg, start - timedelta(days=2), end, plan_episode(cfg, st)):
        if (s.deferred or s.merged_into is not None) and start <= s.due < end:
            # Held over the night, or joined to another time's prompt (a DST gap): recorded at its time.
            events.append((s.due, 0, s))
        if start <= s.offer < end and s.merged_into is None:
            events.append((s.offer, 1, s))
    events.sort(key=lambda e: (e[0], e[1], e[2].kind == planner.ROUTINE, e[2].due))
    missed_window = timedelta(minutes=cfg.missed_after_minutes)
    for at, kind, s in events:
        known = st.outcomes.get(s.id)
        if kind == 0:
            if known is None:
                fx.append(Record(DEFERRED, s.id, s.due, {"offer": iso(s.offer, cfg), "kind": s.kind,
                                                        **({"merged_into": s.merged_into} if s.merged_into else {})}))
                st = set_outcome(st, s.id, DEFERRED)
            continue
        if known in (*OUTCOMES, PROMPTED) or _active_id(st) == s.id or any(w.id == s.id for w in st.waiting):
            continue
        until = st.paused_until or paused_until
        if until is not None and at < until:
            fx.append(_paused(cfg, s, until))
            st = set_outcome(st, s.id, PAUSED)
            continue
        if now.wall - at >= missed_window:
            fx.append(Record(MISSED, s.id, s.due, {"reason": st.stale_reason or "late", "kind": s.kind}))
            st = set_outcome(st, s.id, MISSED)
            continue
        st = _offer(cfg, st, s, now, fx)
    return replace(st, cursor=now.wall, stale_reason=None)


def may_sound(cfg: Config, st: State, now: Instant) -> bool:
    """Whether anything may sound now: by day, and not while a nurse has paused prompting."""
    return planner.is_awake(cfg, now.wall) and (st.paused_until is None or now.wall >= st.paused_until)


# --- a nurse's pause -----------------------------------------------------------------

def _paused(cfg: Config, s: planner.Session, until: datetime) -> Record:
    return Record(PAUSED, s.id, s.due, {"kind": s.kind, "until": iso(until, cfg)})


def _pause(cfg: Config, st: State, duration: str, via: str, now: Instant, fx: list[Effect]) -> State:
    """Stop prompting until the pause ends: a session already up or waiting is ``paused``, not
    missed; a guided session under way ends there, its reps counted."""
    if duration not in pause.CHOICES:
        return st
    until = pause.until(cfg, duration, now.wall)
    fx.append(Record(T.PAUSE, data={"until": iso(until, cfg), "duration": duration, "via": via}))
    st = replace(st, paused_until=until, activity=now.mono)
    for s in st.waiting:
        fx.append(_paused(cfg, s, until))
        st = set_outcome(st, s.id, PAUSED)
    st = replace(st, waiting=())
    a = st.active
    if isinstance(a, Guiding):
        st = _finish_guide(cfg, st, a, now, fx, early=True)
    elif isinstance(a, Prompting):
        fx.append(_paused(cfg, a.session, until))
        st = replace(set_outcome(st, a.session.id, PAUSED), active=None)
    return replace(st, overlay=None) if via == "button" else st


def _resume(cfg: Config, st: State, via: str, now: Instant, fx: list[Effect]) -> State:
    if st.paused_until is None:
        return st
    fx.append(Record(T.RESUME, data={"via": via, "early": True, "until": iso(st.paused_until, cfg)}))
    return replace(st, paused_until=None, activity=now.mono)


def _pause_ends(cfg: Config, st: State, now: Instant, fx: list[Effect]) -> State:
    """A pause that has run its time ends by itself (after the sessions inside it were settled)."""
    if st.paused_until is None or now.wall < st.paused_until:
        return st
    fx.append(Record(T.RESUME, data={"via": "timer", "early": False, "until": iso(st.paused_until, cfg)}))
    return replace(st, paused_until=None)


def _active_id(st: State) -> str | None:
    a = st.active
    if a is None:
        return None
    return (a.prompt if isinstance(a, Guiding) else a).session.id


def _offer(cfg: Config, st: State, s: planner.Session, now: Instant, fx: list[Effect]) -> State:
    a = st.active
    if isinstance(a, Guiding):
        return replace(st, waiting=(*st.waiting, s))
    if isinstance(a, Prompting):
        fx.append(Record(MISSED, a.session.id, a.session.due, {"reason": "superseded", "by": s.id,
                                                                 "kind": a.session.kind}))
        st = set_outcome(st, a.session.id, MISSED)
    late_s = max(0.0, seconds_between(now.wall, s.offer))
    data: dict[str, object] = {"kind": s.kind, "exercises": [e.name for e in s.exercises], "reps": s.reps}
    if s.deferred:
        data["deferred"] = True
    if late_s >= 60:
        data["late_s"] = round(late_s)
    fx.append(Record(T.PROMPT, s.id, s.due, data))
    if may_sound(cfg, st, now):
        fx.append(Play("prompt"))
    remaining = cfg.missed_after_minutes * 60 - late_s
    p = Prompting(s, now.wall, now.mono, next_repeat=now.mono + cfg.repeat_every_minutes * 60,
                  missed_at=now.mono + remaining)
    keep = st.overlay if st.overlay is not None and isinstance(st.overlay.screen, sc.Done) else None
    return replace(set_outcome(st, s.id, PROMPTED), active=p, overlay=keep, activity=now.mono)


def _next_waiting(cfg: Config, st: State, now: Instant, fx: list[Effect]) -> State:
    st = replace(st, active=None)
    window = timedelta(minutes=cfg.missed_after_minutes)
    while st.waiting and st.active is None:
        s, rest = st.waiting[0], st.waiting[1:]
        st = replace(st, waiting=rest)
        if now.wall - s.offer >= window and not rest:
            fx.append(Record(MISSED, s.id, s.due, {"reason": "busy", "kind": s.kind}))
            st = set_outcome(st, s.id, MISSED)
        elif rest:
            # Only the newest waiting session is worth offering; the others were overtaken.
            fx.append(Record(MISSED, s.id, s.due, {"reason": "superseded", "by": rest[-1].id, "kind": s.kind}))
            st = set_outcome(st, s.id, MISSED)
        else:
            st = _offer(cfg, st, s, now, fx)
    return st


# --- timers --------------------------------------------------------------------------

def _timers(cfg: Config, st: State, now: Instant, fx: list[Effect]) -> State:
    t = now.mono
    if button.settled(st.button, t):
        st = _accept(cfg, st, st.button.raw, now, fx)
    if button.reached(st.button, button.HINT, t):
        st = _hold_hint(cfg, st, now)
    if button.reached(st.button, button.NURSE, t):
        nurse = nurse_screen(cfg, st, now)
        st = replace(st, button=replace(st.button, stage=button.NURSE),
                     overlay=Overlay(nurse, t + 2 * nurse.pages * NURSE_PAGE_S, t))
    if button.reached(st.button, button.STUCK, t):
        fx.append(Record(T.FAULT, data={"part": "button",
                                        "problem": "held down over 60 s; ignored until released"}))
        if "button" not in st.problems and may_sound(cfg, st, now):
            fx.append(Play("fault"))
        problems = {**st.problems, "button": "Button stuck"}
        st = replace(st, button=replace(st.button, stage=button.STUCK), overlay=None, problems=problems)

    a = st.active
    if isinstance(a, Prompting):
        if a.snoozed_until is not None:
            if t >= a.snoozed_until:
                fx.append(Record(T.REPEAT, a.session.id, a.session.due, {"after_snooze": True}))
                if may_sound(cfg, st, now):
                    fx.append(Play("prompt"))
                st = replace(st, active=replace(a, snoozed_until=None, repeats=a.repeats + 1,
                                                next_repeat=t + cfg.repeat_every_minutes * 60))
        elif t >= a.missed_at:
            fx.append(Record(MISSED, a.session.id, a.session.due, {
                "reason": "unanswered", "repeats": a.repeats, "snoozes": a.snoozes, "kind": a.session.kind}))
            st = set_outcome(st, a.session.id, MISSED)
            st = _next_waiting(cfg, st, now, fx)
        elif t >= a.next_repeat:
            fx.append(Record(T.REPEAT, a.session.id, a.session.due, {"n": a.repeats + 1}))
            if may_sound(cfg, st, now):
                fx.append(Play("repeat"))
            st = replace(st, active=replace(a, repeats=a.repeats + 1,
                                            next_repeat=t + cfg.repeat_every_minutes * 60))
    elif isinstance(a, Guiding):
        st = _advance_guide(cfg, st, a, now, fx)

    if st.confirm is not None and t >= st.confirm.until:
        fx.append(Decided(st.confirm.ask.token, "timeout"))
        st = replace(st, confirm=None)
    if st.overlay is not None and t >= st.overlay.until:
        st = replace(st, overlay=None)
    return st


def _advance_guide(cfg: Config, st: State, g: Guiding, now: Instant, fx: list[Effect]) -> State:
    index, started, ticked = g.index, g.step_started, False
    while index < len(g.steps) and now.mono >= started + g.steps[index].seconds:
        ticked = ticked or g.steps[index].ends_rep
        started += g.steps[index].seconds
        index += 1
    if index == g.index:
        return st
    if index >= len(g.steps):
        return _finish_guide(cfg, st, g, now, fx, early=False)
    if ticked and may_sound(cfg, st, now):
        fx.append(Play("tick"))
    return replace(st, active=replace(g, index=index, step_started=started))


def _finish_guide(cfg: Config, st: State, g: Guiding, now: Instant, fx: list[Effect], *, early: bool) -> State:
    s = g.prompt.session
    done = guide.reps_before(g.steps, min(g.index, len(g.steps))) if early else guide.total_reps(g.steps)
    planned = guide.total_reps(g.steps)
    if s.kind == extra.EXTRA:
        # Done on request, never due: its own record, so no count of sessions offered includes it.
        fx.append(Record(extra.EXTRA, s.id, s.due, {
            "kind": s.kind, "exercises": [e.name for e in s.exercises], "reps": done, "planned": planned,
            "early": early, "duration_s": round(now.mono - g.started_mono)}))
    else:
        fx.append(Record(DONE, s.id, s.due, {
            "kind": s.kind, "reps": done, "planned": planned, "early": early,
            "prompt_to_start_s": round(g.started_mono - g.prompt.offered_mono),
            "late_min": round(seconds_between(g.started_wall, s.offer) / 60),
            "duration_s": round(now.mono - g.started_mono), "snoozes": g.prompt.snoozes,
        }))
    if may_sound(cfg, st, now):
        fx.append(Play("done"))
    st = replace(set_outcome(st, s.id, extra.EXTRA if s.kind == extra.EXTRA else DONE), activity=now.mono,
                 overlay=Overlay(sc.Done(done, planned, early), now.mono + DONE_S, now.mono))
    return _next_waiting(cfg, st, now, fx)


# --- the button ----------------------------------------------------------------------

def _edge(cfg: Config, st: State, pressed: bool, now: Instant, fx: list[Effect]) -> State:
    b, counts = button.edge(st.button, pressed, now.mono)
    st = replace(st, button=b)
    if not counts:
        # Same level, or inside the bounce window: _timers settles it when the window ends.
        return st
    return _accept(cfg, st, pressed, now, fx)


def _accept(cfg: Config, st: State, pressed: bool, now: Instant, fx: list[Effect]) -> State:
    b = st.button
    st = replace(st, activity=now.mono)
    if pressed:
        return replace(st, button=button.pressed(b, now.mono))
    let_go, held = button.released(b, now.mono)
    st = replace(st, button=let_go)
    if b.stage >= button.STUCK:
        fx.append(Record(T.FAULT_CLEARED, data={"part": "button", "held_s": round(held, 1)}))
        problems = dict(st.problems)
        problems.pop("button", None)
        return replace(st, problems=problems)
    if b.stage >= button.NURSE:
        fx.append(Record(T.PRESS, data={"kind": "nurse", "held_s": round(held, 2), "action": "nurse_screen"}))
        return st
    if st.confirm is not None and b.down_at >= st.confirm.asked:
        # The question asked over the serial link is on the screen: the press answers it.
        overlay = st.overlay if st.overlay is None or st.overlay.until != float("inf") else None
        return _confirm_press(replace(st, overlay=overlay), held, fx)
    if st.overlay is not None and isinstance(st.overlay.screen, sc.Nurse | sc.PauseMenu) and held < NURSE_S:
        return _nurse_press(cfg, st, st.overlay.screen, held, now, fx)
    if st.overlay is not None and isinstance(st.overlay.screen, sc.Nurse | sc.EpisodeChange | sc.Stick):
        # Screens for the nurse: any press only puts them away, whatever else is going on.
        fx.append(_press(held, "long" if held >= LONG_S else "short", "dismiss"))
        return replace(st, overlay=None)
    if st.vacant:
        # Someone is at the empty bed: from now on the unit runs as an unadmitted one (its sessions
        # nobody's), from the next session on; the press itself shows the day as any press does.
        fx.append(_press(held, "long" if held >= LONG_S else "short", OCCUPIED))
        st = replace(st, vacant=False, cursor=max(st.cursor, now.wall), plan_changed=now.wall)
    offered = _extra_offered(st)
    if isinstance(st.overlay, Overlay) and st.overlay.until == float("inf"):
        st = replace(st, overlay=None)
    if offered and st.active is None:
        return _start_extra(cfg, st, "circles" if held >= LONG_S else "pumps", held, now, fx)
    if held >= LONG_S:
        return _long_press(cfg, st, held, now, fx)
    return _short_press(cfg, st, held, now, fx)


CIRCLES_HINT = sc.Hint("Let go for", "circles")


def _extra_offered(st: State) -> bool:
    """Today's progress is up with its offer of more (or the hold on it is showing its hint)."""
    o = st.overlay
    return o is not None and ((isinstance(o.screen, sc.Progress) and o.screen.offer) or o.screen == CIRCLES_HINT)


def _start_extra(cfg: Config, st: State, variation: str, held: float, now: Instant, fx: list[Effect]) -> State:
    """An extra session on request: guided at once, recorded ``extra`` when it ends."""
    s = extra.session(cfg, variation, now.wall)
    fx.append(Record(T.PRESS, s.id, None, {"kind": "long" if held >= LONG_S else "short", "held_s": round(held, 2),
                                           "action": "extra", "variation": variation}))
    never = float("inf")
    prompt = Prompting(s, now.wall, now.mono, next_repeat=never, missed_at=never)
    return replace(st, active=Guiding(prompt, guide.plan(s.exercises), 0, now.mono, now.wall, now.mono),
                   overlay=None, activity=now.mono)


def _nurse_press(cfg: Config, st: State, screen: sc.Nurse | sc.PauseMenu, held: float, now: Instant,
                 fx: list[Effect]) -> State:
    """The nurse screen's one control, with the button alone: a press pauses prompting (a menu
    of lengths: a press shows the next, a hold takes it) or, while paused, resumes it."""
    kind = "long" if held >= LONG_S else "short"
    if isinstance(screen, sc.Nurse):
        if kind == "long":
            fx.append(_press(held, kind, "dismiss"))
            return replace(st, overlay=None)
        if st.paused_until is not None:
            fx.append(_press(held, kind, "resume"))
            st = _resume(cfg, st, "button", now, fx)
            return replace(st, overlay=Overlay(sc.Hint("Prompts", "resumed"), now.mono + HINT_S, now.mono))
        fx.append(_press(held, kind, "pause_menu"))
        return replace(st, overlay=_menu(0, now))
    if kind == "short":
        fx.append(_press(held, kind, "pause_menu"))
        return replace(st, overlay=_menu(screen.index % len(pause.MENU), now))
    duration = pause.MENU[screen.index - 1]
    if duration == pause.CANCEL:
        fx.append(_press(held, kind, "dismiss"))
        return replace(st, overlay=None)
    fx.append(_press(held, kind, "pause"))
    return _pause(cfg, st, duration, "button", now, fx)


def _menu(index: int, now: Instant) -> Overlay:
    screen = sc.PauseMenu(pause.label(pause.MENU[index]), index + 1, len(pause.MENU))
    return Overlay(screen, now.mono + pause.MENU_S, now.mono)


OCCUPIED = "occupied"      # a press at a bed a discharge left empty: someone is there (restart reads it back)


def _press(held: float, kind: str, action: str, session: str | None = None) -> Record:
    return Record(T.PRESS, session, None, {"kind": kind, "held_s": round(held, 2), "action": action})


def _short_press(cfg: Config, st: State, held: float, now: Instant, fx: list[Effect]) -> State:
    a = st.active
    if isinstance(a, Guiding):
        fx.append(_press(held, "short", "stop", a.prompt.session.id))
        return _finish_guide(cfg, st, a, now, fx, early=True)
    if isinstance(a, Prompting):
        fx.append(_press(held, "short", "start", a.session.id))
        steps = guide.plan(a.session.exercises)
        return replace(st, active=Guiding(a, steps, 0, now.mono, now.wall, now.mono), overlay=None)
    if st.overlay is not None and isinstance(st.overlay.screen, sc.Done):
        fx.append(_press(held, "short", "dismiss"))
        return replace(st, overlay=None)
    return _show_progress(cfg, st, held, "short", now, fx)


def _long_press(cfg: Config, st: State, held: float, now: Instant, fx: list[Effect]) -> State:
    a = st.active
    if isinstance(a, Guiding):
        fx.append(_press(held, "long", "stop", a.prompt.session.id))
        return _finish_guide(cfg, st, a, now, fx, early=True)
    if isinstance(a, Prompting):
        if a.snoozes >= cfg.max_snoozes:
            fx.append(_press(held, "long", "snooze_refused", a.session.id))
            return replace(st, overlay=Overlay(sc.Hint("No more", "snoozes"), now.mono + HINT_S))
        snooze_s = cfg.snooze_minutes * 60
        base = a.snoozed_until if a.snoozed_until is not None else now.mono
        until_mono = base + snooze_s
        until_wall = now.wall + timedelta(seconds=until_mono - now.mono)
        fx.append(Record(T.SNOOZE, a.session.id, a.session.due, {
            "until": iso(until_wall, cfg), "n": a.snoozes + 1, "held_s": round(held, 2)}))
        if may_sound(cfg, st, now):
            fx.append(Play("snooze"))
        return replace(st, active=replace(a, snoozes=a.snoozes + 1, snoozed_until=until_mono,
                                          missed_at=a.missed_at + snooze_s))
    return _show_progress(cfg, st, held, "long", now, fx)


def _show_progress(cfg: Config, st: State, held: float, kind: str, now: Instant, fx: list[Effect]) -> State:
    fx.append(_press(held, kind, "progress"))
    done, due, marks = today(cfg, st, now)
    nxt = next_session(cfg, st, now)
    # By day, with nothing due and no pause, the patient may do more (core/extra.py).
    offer = st.active is None and may_sound(cfg, st, now)
    screen = sc.Progress(done, due, marks, nxt[0] if nxt else None, nxt[1] if nxt else None, offer)
    return replace(st, overlay=Overlay(screen, now.mono + PROGRESS_S),
                   night_light_until=now.mono + NIGHT_WAKE_S)


def _hold_hint(cfg: Config, st: State, now: Instant) -> State:
    st = replace(st, button=replace(st.button, stage=button.HINT))
    if st.confirm is not None and st.button.down_at >= st.confirm.asked:
        return replace(st, overlay=Overlay(sc.Hint("Let go to", "cancel"), float("inf")))
    a = st.active
    if st.overlay is not None and isinstance(st.overlay.screen, sc.Nurse | sc.PauseMenu | sc.EpisodeChange | sc.Stick):
        return st    # the release answers the nurse's screen (pause menu) or puts it away
    if _extra_offered(st):
        return replace(st, overlay=Overlay(CIRCLES_HINT, float("inf")))
    if isinstance(a, Prompting):
        left = cfg.max_snoozes - a.snoozes
        hint = sc.Hint("Let go to", "snooze", "zz") if left > 0 else sc.Hint("No more", "snoozes")
        return replace(st, overlay=Overlay(hint, float("inf")))
    return st


# --- deadlines -----------------------------------------------------------------------

def next_on_grid(origin: float, period: float, t: float) -> float:
    """The first ``origin + k * period`` (k whole) after ``t``: a frame's or page's next turn.

    Strictly after ``t``: where float rounding puts ``t - origin`` a hair below a whole number
    of periods (131072.05 - 131070.3 is 6.99999... quarter seconds), the plain formula gives
    ``t`` itself, and a loop woken at its deadline would be woken at that instant for ever."""
    # floor, not int: the origin may lie ahead of ``t`` (a hold's frames are on the grid of its end).
    at = origin + (math.floor((t - origin) / period) + 1) * period
    return at if at > t else at + period


def deadline(cfg: Config, st: State) -> float:
    """The monotonic time at which the core next needs a Tick, whatever else happens."""
    return min(step_due(cfg, st), redraw_due(cfg, st, st.last))


def step_due(cfg: Config, st: State) -> float:
    """The monotonic time at which the core next needs a step: something happens to the state
    (a plan event, a prompt's repeat, the end of a step of an exercise, a hold of the button,
    a pause, an overlay's end), or ``MAX_SLEEP_S`` after the last step (a wall clock set or
    slewed from outside is measured against the state's own clock). A pure function of the
    state: until then only its picture moves."""
    now = st.last
    t = now.mono
    cands = [t + MAX_SLEEP_S]
    nxt = planner.next_event_after(cfg, max(st.cursor, now.wall), ep=plan_episode(cfg, st))
    if nxt is not None:
        cands.append(mono_at(now, nxt))
    if st.paused_until is not None:
        cands.append(mono_at(now, st.paused_until))
    cands += button.deadlines(st.button)
    a = st.active
    if isinstance(a, Prompting):
        cands.append(a.snoozed_until if a.snoozed_until is not None else min(a.next_repeat, a.missed_at))
        late_at = mono_at(now, a.session.offer + LATE_AFTER)
        if late_at > t and not a.session.deferred:
            cands.append(late_at)       # the prompt's screen turns to "late"
    elif isinstance(a, Guiding) and a.index < len(a.steps):
        step_ = a.steps[a.index]
        cands.append(a.step_started + step_.seconds)
    o = st.overlay
    if o is not None:
        cands.append(o.until)
    if st.night_light_until > t:
        cands.append(st.night_light_until)
    if st.confirm is not None:
        cands.append(st.confirm.until)
    if planner.is_awake(cfg, now.wall) and a is None and o is None and cfg.display.dim_after_minutes:
        dim_at = st.activity + cfg.display.dim_after_minutes * 60
        if dim_at > t:
            cands.append(dim_at)
    return max(t, min(cands))


def redraw_due(cfg: Config, st: State, now: Instant) -> float:
    """The first monotonic time after ``now`` (the last picture drawn) at which the picture of
    ``st`` changes with the state standing still (a hold's bar, the idle clock's minute, a
    nurse page, a countdown's second); infinity if it does not. ``redraw`` draws it: no step."""
    t = now.mono
    cands = [float("inf")]
    a = st.active
    if isinstance(a, Guiding) and a.index < len(a.steps) and a.steps[a.index].hold:
        # On the grid of the hold's end, where its count of seconds changes (views._guide_screen).
        cands.append(next_on_grid(a.step_started + a.steps[a.index].seconds, HOLD_FRAME_S, t))
    o = st.overlay
    if o is not None and isinstance(o.screen, sc.Nurse):
        cands.append(next_on_grid(o.since, NURSE_PAGE_S, t))
    if st.confirm is not None:
        # The countdown (and a clock being set) moves on every second.
        cands.append(next_on_grid(st.confirm.asked, 1.0, t))
    # The idle clock changes every minute; a prompt's (or a snooze's) burn-in orbit every two.
    if o is None and isinstance(a, Prompting):
        cands.append(t + PROMPT_ORBIT_S - now.wall.timestamp() % PROMPT_ORBIT_S)
    elif o is None and a is None and (st.night_light_until > t or cfg.display.night == "dim"
                                      or planner.is_awake(cfg, now.wall)):
        cands.append(t + 60 - (now.wall.second + now.wall.microsecond / 1e6))
    return min(cands)


# A redraw this close to ``step_due``'s five-minute look at the wall clock is that step instead,
# so the look rides on the idle clock's minute rather than waking the loop on its own.
LOOK_EARLY_S = 60.0


def redraw(cfg: Config, st: State, now: Instant) -> list[Effect] | None:
    """What ``step`` with a Tick at ``now`` would show, without the step, for a ``now`` before
    ``step_due``: ``view`` alone, as nothing is due (a frame of a hold's bar costs a view, not
    a step). None if a step is wanted after all: the wall clock moved against the monotonic one
    since the last step (a jump that only a step records and plans around), or the step's
    periodic look at the clock is less than ``LOOK_EARLY_S`` away."""
    if now.mono - st.last.mono >= MAX_SLEEP_S - LOOK_EARLY_S:
        return None
    if abs(seconds_between(now.wall, _expected_wall(st, now))) > JUMP_S:
        return None
    return view(cfg, st, now)


# --- confirmations: a change made over the serial link needs a press at the unit --------

def _confirm_event(st: State, ev: Confirm | Withdraw, now: Instant, fx: list[Effect]) -> State:
    if isinstance(ev, Withdraw):
        if st.confirm is not None and st.confirm.ask.token == ev.token:
            fx.append(Decided(ev.token, "withdrawn"))
            return replace(st, confirm=None)
        return st
    if isinstance(st.active, Guiding):
        # A patient in the middle of their exercises must not be interrupted (or confirm by accident).
        fx.append(Decided(ev.token, "busy"))
        return st
    if st.confirm is not None:
        fx.append(Decided(st.confirm.ask.token, "superseded"))
    # A hint left from an earlier hold would hide the question.
    overlay = st.overlay if st.overlay is None or st.overlay.until != float("inf") else None
    return replace(st, confirm=Confirming(ev, now.mono, now.mono + ev.seconds), overlay=overlay,
                   night_light_until=max(st.night_light_until, now.mono + ev.seconds))


def _confirm_press(st: State, held: float, fx: list[Effect]) -> State:
    """A press that began while the question was shown: short confirms, long cancels."""
    assert st.confirm is not None
    outcome, action = ("cancelled", "cancel") if held >= LONG_S else ("confirmed", "confirm")
    fx.append(_press(held, "long" if held >= LONG_S else "short", action))
    fx.append(Decided(st.confirm.ask.token, outcome))
    return replace(st, confirm=None)
