from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from bedside.core import planner
from bedside.core.config import Config

UTC_DAY = timedelta(days=1)


def at(cfg: Config, text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=cfg.tz).astimezone(UTC)


def day_sessions(cfg: Config, d: str) -> list[planner.Session]:
    """Sessions of one local calendar day (23 or 25 hours long on DST days)."""
    a = at(cfg, d + "T00:00")
    b = at(cfg, (date.fromisoformat(d) + UTC_DAY).isoformat() + "T00:00")
    return planner.sessions_between(cfg, a, b)


def test_default_day_has_fifteen_sessions_with_routines_replacing_hourly() -> None:
    cfg = Config()
    got = [(s.id, s.kind) for s in day_sessions(cfg, "2026-11-24")]
    hours = [f"{h:02d}:00" for h in range(7, 22)]
    expected = [(f"2026-11-24T{h} {'routine' if h in ('09:00', '19:00') else 'hourly'}",
                 "routine" if h in ("09:00", "19:00") else "hourly") for h in hours]
    assert got == expected
    assert all(not s.deferred and s.merged_into is None for s in day_sessions(cfg, "2026-11-24"))


def test_window_crossing_midnight() -> None:
    cfg = Config(awake_start=time(20, 0), awake_end=time(12, 0), routine_at=(time(21, 0), time(8, 0)))
    a = at(cfg, "2026-11-24T20:00")
    got = [s.id for s in planner.sessions_between(cfg, a, at(cfg, "2026-11-25T12:00"))]
    assert got[0] == "2026-11-24T20:00 hourly"
    assert got[1] == "2026-11-24T21:00 routine"
    assert got[-1] == "2026-11-25T11:00 hourly"
    assert len(got) == 16
    assert planner.is_awake(cfg, at(cfg, "2026-11-25T03:00"))
    assert not planner.is_awake(cfg, at(cfg, "2026-11-25T15:00"))
    # The patient's day runs from 20:00 to 20:00, not midnight to midnight.
    assert planner.care_day(cfg, at(cfg, "2026-11-25T03:00")) == (a, at(cfg, "2026-11-25T20:00"))


def test_night_routine_is_deferred_to_the_opening_and_merged_with_the_hourly_there() -> None:
    cfg = Config(routine_at=(time(6, 0), time(19, 0)))
    ss = {s.id: s for s in day_sessions(cfg, "2026-11-24")}
    early = ss["2026-11-24T06:00 routine"]
    assert early.deferred and early.offer == at(cfg, "2026-11-24T07:00")
    assert early.merged_into is None
    # The 07:00 hourly shares the offer instant: one prompt, the routine's.
    assert ss["2026-11-24T07:00 hourly"].merged_into == early.id


def test_late_routine_is_offered_next_morning() -> None:
    cfg = Config(routine_at=(time(9, 0), time(23, 30)))
    s = next(s for s in day_sessions(cfg, "2026-11-24") if s.id == "2026-11-24T23:30 routine")
    assert s.offer == at(cfg, "2026-11-25T07:00")


def test_spring_forward_gap_moves_to_its_end_and_never_doubles() -> None:
    # London, 29 March 2026: 01:00 GMT jumps to 02:00 BST.
    cfg = Config(awake_start=time(0, 0), awake_end=time(0, 0), hourly_every_minutes=30, routine_at=(time(1, 30),))
    ss = day_sessions(cfg, "2026-03-29")
    prompts = [s.due for s in ss if s.merged_into is None]
    assert len(prompts) == len(set(prompts))
    # 01:00 and 01:30 do not exist: they happen at 02:00 BST, as one prompt, the routine's.
    gap_end = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    at_gap_end = {s.id: s.merged_into for s in ss if s.due == gap_end}
    assert at_gap_end == {"2026-03-29T01:00 hourly": "2026-03-29T01:30 routine",
                          "2026-03-29T01:30 routine": None,
                          "2026-03-29T02:00 hourly": "2026-03-29T01:30 routine"}


def test_two_routines_in_one_gap_are_merged_not_dropped() -> None:
    # New York, 8 March 2026: 02:00 EST jumps to 03:00 EDT; both routine times fall in the gap.
    cfg = Config(timezone="America/New_York", routine_at=(time(2, 0), time(2, 1)), hourly_every_minutes=0,
                 awake_start=time(0, 0), awake_end=time(0, 0))
    ss = day_sessions(cfg, "2026-03-08")
    gap_end = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert {s.id: (s.due, s.merged_into) for s in ss} == {
        "2026-03-08T02:00 routine": (gap_end, "2026-03-08T02:01 routine"),
        "2026-03-08T02:01 routine": (gap_end, None)}


def test_autumn_fold_uses_first_occurrence() -> None:
    cfg = Config(awake_start=time(0, 0), awake_end=time(0, 0), hourly_every_minutes=60, routine_at=())
    ss = day_sessions(cfg, "2026-10-25")
    one = next(s for s in ss if s.id == "2026-10-25T01:00 hourly")
    assert one.due == datetime(2026, 10, 25, 0, 0, tzinfo=UTC)  # 01:00 BST, not 01:00 GMT
    assert len(ss) == 24  # local wall-clock slots: the repeated hour is not prompted twice


def test_hourly_off_and_no_routine_means_nothing_scheduled() -> None:
    cfg = Config(hourly_every_minutes=0, routine_at=())
    assert day_sessions(cfg, "2026-11-24") == []
    assert planner.next_event_after(cfg, at(cfg, "2026-11-24T09:00")) is None


def test_to_instant_round_trips_existing_times() -> None:
    tz = ZoneInfo("America/New_York")
    for h in range(24):
        naive = datetime(2026, 7, 1, h, 15)
        assert planner.local(planner.to_instant(naive, tz), tz) == naive


# --- properties -----------------------------------------------------------------------

ZONES = ["UTC", "Europe/London", "America/New_York", "Australia/Lord_Howe", "America/Santiago",
         "Pacific/Chatham", "Asia/Kolkata", "America/St_Johns", "Africa/Casablanca", "Europe/Dublin"]
# Days around the DST changes of those zones, plus ordinary days.
DAYS = [date(2026, 3, 8), date(2026, 3, 29), date(2026, 4, 5), date(2026, 4, 19), date(2026, 9, 6),
        date(2026, 10, 4), date(2026, 10, 25), date(2026, 11, 1), date(2026, 11, 24), date(2027, 2, 14)]

times = st.builds(time, st.integers(0, 23), st.integers(0, 59))
configs = st.builds(
    lambda tz, start, end, every, routine: Config(timezone=tz, awake_start=start, awake_end=end,
                                                  hourly_every_minutes=every, routine_at=tuple(sorted(set(routine)))),
    st.sampled_from(ZONES), times, times, st.sampled_from([0, 15, 20, 30, 45, 60, 90, 120, 180, 1440]),
    st.lists(times, max_size=4))


def _window_contains(cfg: Config, t: datetime) -> bool:
    return planner.is_awake(cfg, t)


@given(configs, st.sampled_from(DAYS))
def test_property_sessions_are_ordered_unique_and_respect_the_window(cfg: Config, d: date) -> None:
    a = datetime.combine(d, time(0), tzinfo=cfg.tz).astimezone(UTC)
    ss = planner.sessions_between(cfg, a, a + 3 * UTC_DAY)
    assert [s.due for s in ss] == sorted(s.due for s in ss)
    assert len({s.id for s in ss}) == len(ss)
    # Two nominal times share an instant only inside a DST gap, and then one leads, the other is merged.
    leads = [s.due for s in ss if s.merged_into is None]
    assert len(leads) == len(set(leads))
    offers = [s.offer for s in ss if s.merged_into is None]
    assert len(offers) == len(set(offers)), "two prompts at one instant"
    for s in ss:
        if s.deferred:
            assert not _window_contains(cfg, s.due)
            assert s.offer > s.due
            assert s.offer - s.due <= UTC_DAY + timedelta(hours=3)
            assert s.offer == planner.next_opening(cfg, s.due)
        else:
            assert _window_contains(cfg, s.due)
        assert _window_contains(cfg, s.offer)
        if s.merged_into is not None:
            lead = next(x for x in planner.sessions_between(cfg, s.offer - 2 * UTC_DAY, s.offer + UTC_DAY)
                        if x.id == s.merged_into)
            assert lead.offer == s.offer and lead.merged_into is None


@given(configs, st.sampled_from(DAYS))
def test_property_hourly_slots_follow_the_local_grid(cfg: Config, d: date) -> None:
    a = datetime.combine(d, time(0), tzinfo=cfg.tz).astimezone(UTC)
    ss = planner.sessions_between(cfg, a, a + 2 * UTC_DAY)
    start_min = cfg.awake_start.hour * 60 + cfg.awake_start.minute
    for s in ss:
        if s.kind != planner.HOURLY:
            continue
        nominal = datetime.fromisoformat(s.id.split()[0])
        offset = (nominal.hour * 60 + nominal.minute - start_min) % 1440
        assert cfg.hourly_every_minutes and offset % cfg.hourly_every_minutes == 0
        assert offset < (((cfg.awake_end.hour * 60 + cfg.awake_end.minute) - start_min) % 1440 or 1440)
    # No routine instant also carries an hourly session.
    routine_dues = {s.due for s in ss if s.kind == planner.ROUTINE}
    assert not any(s.due in routine_dues for s in ss if s.kind == planner.HOURLY)


@given(configs, st.sampled_from(DAYS), st.integers(1, 47))
def test_property_ranges_split_cleanly(cfg: Config, d: date, cut_h: int) -> None:
    a = datetime.combine(d, time(0), tzinfo=cfg.tz).astimezone(UTC)
    b = a + timedelta(hours=cut_h)
    c = a + 2 * UTC_DAY
    assert planner.sessions_between(cfg, a, c) == planner.sessions_between(cfg, a, b) + planner.sessions_between(
        cfg, b, c)


@given(configs, st.sampled_from(DAYS))
def test_property_every_routine_time_is_represented_once_a_day(cfg: Config, d: date) -> None:
    a = datetime.combine(d, time(0), tzinfo=cfg.tz).astimezone(UTC)
    ss = planner.sessions_between(cfg, a - UTC_DAY, a + 2 * UTC_DAY)
    for t in cfg.routine_at:
        sid = f"{datetime.combine(d, t):%Y-%m-%dT%H:%M} routine"
        # A routine whose local time does not exist that day still happens, at the gap's end.
        assert sum(1 for s in ss if s.id == sid) == 1


@given(configs, st.sampled_from(DAYS), st.integers(0, 48 * 60))
def test_property_next_event_is_the_first_due_or_offer_after(cfg: Config, d: date, minutes: int) -> None:
    t = datetime.combine(d, time(0), tzinfo=cfg.tz).astimezone(UTC) + timedelta(minutes=minutes)
    nxt = planner.next_event_after(cfg, t)
    ss = planner.sessions_between(cfg, t - 2 * UTC_DAY, t + 3 * UTC_DAY)
    later = [x for s in ss for x in (s.due, s.offer) if x > t]
    assert nxt == (min(later) if later else None)


@given(configs, st.sampled_from(DAYS), st.integers(0, 48 * 60))
def test_property_care_day_contains_t_and_starts_at_an_opening(cfg: Config, d: date, minutes: int) -> None:
    t = datetime.combine(d, time(0), tzinfo=cfg.tz).astimezone(UTC) + timedelta(minutes=minutes)
    a, b = planner.care_day(cfg, t)
    assert a <= t < b
    assert planner.next_opening(cfg, a - timedelta(seconds=1)) == a
    assert planner.next_opening(cfg, a) == b


_MINUTES = st.builds(time, st.integers(0, 23), st.integers(0, 59))


@given(_MINUTES, _MINUTES, st.integers(1, 1440))
def test_the_window_arithmetic_is_the_clock_walked_minute_by_minute(start: time, end: time, every: int) -> None:
    """The one place for the awake window's arithmetic (length, middle, an hourly session's
    times of day) agrees with walking a clock from the start, a minute at a time, to the end
    (at least one whole turn of the clock when start == end)."""
    walked = [datetime.combine(date(2026, 1, 1), start)]
    while len(walked) == 1 or walked[-1].time() != end:
        walked.append(walked[-1] + timedelta(minutes=1))
    minutes = [t.time() for t in walked[:-1]]
    assert planner.window_minutes(start, end) == len(minutes)
    assert planner.window_middle(start, end) == minutes[len(minutes) // 2]
    assert planner.window_times(start, end, every) == minutes[::every]
