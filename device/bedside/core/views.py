"""What the patient and the nurse see, drawn from the session's state: ``view`` gives the
screen, its brightness and the status light for any state at any moment.

Pure like ``session``: the same state and time give the same screens, which is what the
golden images and the simulator's frames rely on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache

from bedside.core import episodes, guide, planner
from bedside.core import screens as sc
from bedside.core.config import Config
from bedside.core.episodes import Episode
from bedside.core.events import Effect, Instant, Led, Show
from bedside.core.extra import EXTRA
from bedside.core.memo import Span
from bedside.core.state import (
    DEFERRED,
    DONE,
    HOLD_FRAME_S,
    INTERRUPTED,
    MISSED,
    NURSE_PAGE_S,
    ORBIT,
    PAUSED,
    PROMPTED,
    Confirming,
    Guiding,
    Overlay,
    Prompting,
    State,
    hhmm,
    local_date,
    plan_episode,
)


def _id_time(cfg: Config, sid: str) -> datetime | None:
    """The scheduled instant in a session id ("2026-11-24T09:00 routine")."""
    try:
        return planner.to_instant(datetime.fromisoformat(sid[:16]), cfg.tz)
    except ValueError:
        return None


@lru_cache(maxsize=16)
def _planned_day(cfg: Config, ep: Episode | None, a: datetime, b: datetime) -> tuple[tuple[str, datetime], ...]:
    # The screen and the status light ask on every step; the answer changes once a day.
    return tuple((s.id, s.offer) for s in planner.offered_between(cfg, a, b, ep) if s.merged_into is None)


def _day_sessions(cfg: Config, st: State, a: datetime, b: datetime) -> list[tuple[str, datetime]]:
    """(id, offer time) of the sessions of the patient's day [a, b), in order.

    The plan gives them; when an admission or discharge changed the plan during that day,
    sessions already offered under the old plan are added, so nothing done is uncounted.
    """
    found = list(_planned_day(cfg, plan_episode(cfg, st), a, b))
    if st.plan_changed is not None and st.plan_changed > a:
        known = {sid for sid, _ in found}
        for sid, outcome in st.outcomes.items():
            if sid not in known and outcome not in (DEFERRED, EXTRA):
                t = _id_time(cfg, sid)
                if t is not None and a <= t < b:
                    found.append((sid, t))
        found.sort(key=lambda x: x[1])
    return found


# The screen and the light ask on every turn; the answer changes only with the outcomes, the
# plan, or when the time passes the next session's offer.
_today: Span[tuple[int, int, tuple[str, ...]]] = Span()


def today(cfg: Config, st: State, now: Instant) -> tuple[int, int, tuple[str, ...]]:
    """(done, offered so far, one mark per session) for the patient's current day."""
    t = now.wall
    key = (cfg, st.outcomes, st.plan_changed, st.episode, st.unadmitted_since)
    known = _today.get(key, t)
    if known is not None:
        return known
    a, b = planner.care_day(cfg, t)
    sessions = _day_sessions(cfg, st, a, b)
    later = [offer for _, offer in sessions if offer > t]
    return _today.put(key, t, min([b, *later]), _marks(st, sessions, t))


def _marks(st: State, sessions: list[tuple[str, datetime]], now: datetime) -> tuple[int, int, tuple[str, ...]]:
    marks = []
    for sid, offer in sessions:
        o = st.outcomes.get(sid)
        if o in (DONE, INTERRUPTED):
            # A guide a power cut stopped counts as begun, like one stopped early; the
            # journal and the report say it was interrupted.
            marks.append("done")
        elif o == MISSED:
            marks.append("missed")
        elif o == PAUSED:
            marks.append("paused")       # a nurse paused prompting: neither missed nor due
        elif offer <= now or o == PROMPTED:
            marks.append("open")
        else:
            marks.append("later")
    done = marks.count("done")
    due = sum(1 for m in marks if m not in ("later", "paused"))
    return done, due, tuple(marks)


def status(st: State, marks: tuple[str, ...]) -> str:
    """What the status light says: due (a prompt is up), missed or done (the day's latest outcome), or off."""
    a = st.active
    if isinstance(a, Prompting) and a.snoozed_until is None:
        return "due"
    for m in reversed(marks):
        if m in ("done", "missed"):
            return m
    return "off"


def since_admission(cfg: Config, st: State, now: Instant, marks: tuple[str, ...]) -> tuple[str, ...]:
    """The day's marks that speak of the bed's present occupant: after an admission or a discharge
    today, sessions offered before it were someone else's (or nobody's), so the light and the
    idle mark do not say "missed" to a nurse walking past an empty bed."""
    if st.plan_changed is None:
        return marks
    a, b = planner.care_day(cfg, now.wall)
    if not a < st.plan_changed < b:
        return marks
    offers = [offer for _, offer in _day_sessions(cfg, st, a, b)]
    return tuple(m for m, offer in zip(marks, offers, strict=True) if offer >= st.plan_changed)


def _label(s: planner.Session) -> str:
    return "Routine" if s.kind == planner.ROUTINE else s.exercises[0].name


# The idle screen's "next" for a plan and outcomes holds until that session's offer (no
# session can come before it meanwhile); the idle clock asks it every minute.
_next: Span[tuple[str, str]] = Span()


def next_session(cfg: Config, st: State, now: Instant) -> tuple[str, str] | None:
    t = now.wall
    ep = plan_episode(cfg, st)
    key = (cfg, ep, st.outcomes)
    known = _next.get(key, t)
    if known is not None:
        return known
    for s in planner.offered_between(cfg, t, t + timedelta(days=2), ep):
        if s.merged_into is None and s.id not in st.outcomes and s.offer > t:
            return _next.put(key, t, s.offer, (hhmm(s.offer, cfg), _label(s)))
    return None


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _date_time(t: datetime, cfg: Config, weekday: bool = True) -> str:
    """"Tue 24 Nov 09:41", in English whatever the system's locale."""
    lt = t.astimezone(cfg.tz)
    day = f"{_DAYS[lt.weekday()]} " if weekday else ""
    return f"{day}{lt.day} {_MONTHS[lt.month - 1]} {lt:%H:%M}"


def nurse_screen(cfg: Config, st: State, now: Instant) -> sc.Nurse:
    a, b = planner.care_day(cfg, now.wall)
    counts = []
    for lo, hi in ((a, b), (planner.care_day(cfg, a - timedelta(seconds=1))[0], a)):
        ids = [sid for sid, _ in _day_sessions(cfg, st, lo, hi)]
        outs = [st.outcomes.get(i) for i in ids]
        counts.append((sum(o in (DONE, INTERRUPTED) for o in outs), outs.count(MISSED)))
    ep = st.episode
    regimen = episodes.regimen_of(cfg, ep)
    return sc.Nurse(
        cfg.unit_id, _date_time(now.wall, cfg), st.time_quality, counts[0][0], counts[0][1], counts[1][0],
        counts[1][1], st.head,
        episode=ep.id if ep else None,
        day=episodes.post_op_day(ep, local_date(cfg, now)) if ep else _unadmitted_day(cfg, st, now),
        regimen=regimen.name if regimen else "",
        download=_date_time(st.last_export, cfg, weekday=False) if st.last_export else "never",
        notices=tuple(st.problems.values()),
        paused=paused_text(cfg, st, now),
        power_cut=_power_cut(cfg, st),
        storage=_date_time(st.storage_outage, cfg, weekday=False) if st.storage_outage else "")


def _unadmitted_day(cfg: Config, st: State, now: Instant) -> int | None:
    """With no one admitted: the regimen's day the unit runs (from its first start or the discharge)."""
    stand_in = plan_episode(cfg, st)
    return None if stand_in is None else episodes.post_op_day(stand_in, local_date(cfg, now))


def paused_text(cfg: Config, st: State, now: Instant) -> str | None:
    """"14:00" while a nurse's pause runs (with the day when it ends on another one)."""
    until = st.paused_until
    if until is None or until <= now.wall:
        return None
    if until - now.wall >= timedelta(hours=20):
        return _date_time(until, cfg)
    return hhmm(until, cfg)


def _power_cut(cfg: Config, st: State) -> str:
    if st.power_cut is None:
        return ""
    began, seconds = st.power_cut
    minutes = int(seconds // 60)
    length = f"{minutes // 60}h{minutes % 60:02d}" if minutes >= 60 else f"{minutes} min"
    return f"{_date_time(began, cfg, weekday=False)} {length}"


def _detail(s: planner.Session) -> str:
    if len(s.exercises) > 1:
        return f"{len(s.exercises)} exercises"
    e = s.exercises[0]
    return f"{e.reps} each foot" if e.per_foot else f"{e.reps} times"


LATE_AFTER = timedelta(minutes=1)   # a prompt says how late it is from then on (machine.deadline wakes for it)


def _prompt_screen(cfg: Config, a: Prompting, now: Instant) -> sc.Prompt:
    s = a.session
    first = s.exercises[0]
    title = first.name if len(s.exercises) == 1 else ("Full routine" if s.kind == planner.ROUTINE else "Exercises")
    late = s.deferred or now.wall - s.offer >= LATE_AFTER
    return sc.Prompt(s.kind, title, _detail(s), a.repeats, cfg.max_snoozes - a.snoozes, late,
                     guide.icon_for(first) or "bell", guide.minutes(s.exercises), orbit(now, PROMPT_ORBIT_S))


def _guide_screen(g: Guiding, now: Instant) -> sc.Screen:
    step = g.steps[g.index]
    if step.tip:
        return sc.Tip(step.exercise, step.text)
    if step.rest:
        return sc.Rest(step.exercise, step.set, step.sets)
    if step.intro:
        return sc.Intro(step.exercise, step.foot, step.reps, step.part, step.parts, step.icon or "", step.set,
                        step.sets)
    hold_left, fraction = None, 0.0
    if step.hold:
        left = max(0.0, g.step_started + step.seconds - now.mono)
        # Quantised so that the screen value (and the redraw) changes only every frame step.
        frames = int(left / HOLD_FRAME_S + 0.999)
        fraction = min(1.0, frames * HOLD_FRAME_S / step.seconds)
        hold_left = max(1, int(left + 0.999))
    return sc.Guide(step.exercise, step.foot, step.rep, step.reps, step.text, hold_left, round(fraction, 3),
                    step.icon)


# A prompt waiting for its press, or a snooze, shows no clock: its burn-in orbit moves every two
# minutes, so a session left unanswered wakes the loop about 30 times an hour, not 60.
PROMPT_ORBIT_S = 120.0


def orbit(now: Instant, every: float = 60.0) -> sc.Shift:
    """Where a long-lived screen sits now: the idle clock moves with its minute, so no extra frames;
    a prompt or a snooze, which show no clock, every ``PROMPT_ORBIT_S`` (``redraw_due`` agrees)."""
    return ORBIT[int(now.wall.timestamp() // every) % len(ORBIT)]


def _nurse_page(o: Overlay, screen: sc.Nurse, now: Instant) -> sc.Nurse:
    page = 1 + int((now.mono - o.since) // NURSE_PAGE_S) % screen.pages
    return screen if page == screen.page else replace(screen, page=page)


def _dimmed(cfg: Config, st: State, now: Instant) -> bool:
    """The daytime idle clock dims when nobody has touched the unit for a while (OLED wear)."""
    after = cfg.display.dim_after_minutes
    return after > 0 and now.mono - st.activity >= after * 60


def view(cfg: Config, st: State, now: Instant) -> list[Effect]:
    awake = planner.is_awake(cfg, now.wall)
    a = st.active
    _, _, marks = day = today(cfg, st, now)
    light = status(st, since_admission(cfg, st, now, marks))
    screen: sc.Screen
    idle = False
    if st.confirm is not None and (st.overlay is None or st.overlay.until != float("inf")):
        screen = _confirm_screen(cfg, st.confirm, now)
    elif st.overlay is not None:
        screen = st.overlay.screen
        if isinstance(screen, sc.Nurse):
            screen = _nurse_page(st.overlay, screen, now)
    elif isinstance(a, Guiding):
        screen = _guide_screen(a, now)
    elif isinstance(a, Prompting) and a.snoozed_until is not None:
        until = now.wall + timedelta(seconds=a.snoozed_until - now.mono)
        screen = sc.Snoozed(hhmm(until, cfg), _label(a.session), orbit(now, PROMPT_ORBIT_S))
    elif isinstance(a, Prompting):
        screen = _prompt_screen(cfg, a, now)
    else:
        idle = True
        nxt = next_session(cfg, st, now)
        notice = next(iter(st.problems.values()), None)
        screen = sc.Idle(hhmm(now.wall, cfg), nxt[0] if nxt else None, nxt[1] if nxt else None,
                         day[0], day[1], marks, night=not awake, notice=notice,
                         status="missed" if light == "missed" else None, shift=orbit(now),
                         paused=paused_text(cfg, st, now), ready=st.vacant and st.episode is None)
    if awake:
        brightness = "dim" if idle and _dimmed(cfg, st, now) else "normal"
    elif a is not None or st.overlay is not None or st.confirm is not None or now.mono < st.night_light_until \
            or cfg.display.night == "dim":
        brightness = "dim"
    else:
        brightness = "off"
    # A light on all night keeps patients awake; at night the nurse screen has the record.
    return [Show(screen, brightness), Led(light if awake else "off")]


def _confirm_screen(cfg: Config, c: Confirming, now: Instant) -> sc.Confirm:
    left = max(0, int(c.until - now.mono + 0.999))
    ask = c.ask
    if ask.clock is not None:
        t = (ask.clock + timedelta(seconds=now.mono - c.asked)).astimezone(cfg.tz)
        return sc.Confirm(ask.title, t.strftime("%a %d %b %Y"), t.strftime("%H:%M:%S"), left)
    return sc.Confirm(ask.title, ask.line1, ask.line2, left)


# --- a USB stick's export ------------------------------------------------------------

# What the display says of a stick's export (docs/stick.md): (title, what to do), under way
# and done, and when a stick got nothing, by its reason (stick/files.py).
STICK_WORDS: Mapping[str, tuple[str, str]] = {
    "busy": ("Exporting", "Keep stick in"),
    "done": ("Export done", "Remove the stick"),
}
STICK_PROBLEMS: Mapping[str, tuple[str, str]] = {
    "not_prepared": ("Stick not authorised", "Use a prepared ward stick"),
    "bad_authorisation": ("Stick not authorised", "Prepare it again"),
    "other_ward": ("Stick of another ward", "Use this ward's stick"),
    "no_ward_secret": ("No ward secret", "Tell the engineer"),
    "revoked": ("Stick revoked", "Use another ward stick"),
    "no_keys": ("No ward keys", "Tell the engineer"),
    "full": ("Stick full", "Free space or use another"),
    "read_only": ("Stick read-only", "Use another stick"),
    "unreadable": ("Stick unreadable", "Use a FAT32 or exFAT stick"),
    "removed": ("Stick removed", "Not finished: plug it in again"),
    "io_error": ("Stick failed", "Try another stick"),
    "interrupted": ("Export stopped", "Plug the stick in again"),
    "journal": ("Export failed", "Log unreadable: tell engineer"),
    "unit": ("Export failed", "Unit busy: try again"),
}
STICK_PROBLEM_UNKNOWN = ("Export failed", "Try again")


def stick_screen(state: str, reason: str = "") -> sc.Stick:
    """The screen of a stick's export: ``busy``, ``done``, or a ``problem`` with its reason."""
    title, detail = (STICK_PROBLEMS.get(reason, STICK_PROBLEM_UNKNOWN) if state == "problem"
                     else STICK_WORDS[state])
    return sc.Stick(state, title, detail)
