"""The adherence model from records alone: outcomes, days, gaps, episodes, and properties."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bedside.report import adherence as ad
from bedside.report import files as report_files
from bedside.report import model as report
from tests.rigs.records import done, rec, sealed, srec, t


def by_id(m: ad.Adherence) -> dict[str, ad.SessionOutcome]:
    return {s.id: s for s in m.sessions}


def test_every_kind_of_session_outcome() -> None:
    h7, r9, h10, h11, h12, h13 = ("2026-11-24T07:00 hourly", "2026-11-24T09:00 routine", "2026-11-24T10:00 hourly",
                                  "2026-11-24T11:00 hourly", "2026-11-24T12:00 hourly", "2026-11-24T13:00 hourly")
    night, r6 = "2026-11-23T23:00 routine", "2026-11-24T06:00 routine"
    m = ad.build(sealed([
        rec("start", "2026-11-23T22:00", unit="ward7-bed12", version="0.1.0", config="x"),
        srec("deferred", night, "2026-11-23T23:00", offer=t("2026-11-24T07:00"), merged_into=r6, kind="routine"),
        srec("deferred", r6, "2026-11-24T06:00", offer=t("2026-11-24T07:00"), kind="routine"),
        srec("prompt", r6, "2026-11-24T07:00", deferred=True, kind="routine", reps=60),
        done(r6, "2026-11-24T07:09", reps=60, planned=60, late_min=3),
        srec("prompt", h7, "2026-11-24T08:00", kind="hourly"),   # a late offer: due 07:00
        done(h7, "2026-11-24T08:03", late_min=61),
        srec("prompt", r9, "2026-11-24T09:00", kind="routine"),
        srec("snooze", r9, "2026-11-24T09:02", n=1, until=t("2026-11-24T09:12")),
        srec("snooze", r9, "2026-11-24T09:13", n=2, until=t("2026-11-24T09:23")),
        done(r9, "2026-11-24T09:30", reps=11, planned=60, early=True, late_min=24, snoozes=2, duration_s=60),
        srec("prompt", h10, "2026-11-24T10:00", kind="hourly"),
        srec("missed", h10, "2026-11-24T10:30", reason="unanswered", kind="hourly"),
        srec("prompt", h11, "2026-11-24T11:00", kind="hourly"),
        done(h11, "2026-11-24T11:16", late_min=14),
        srec("prompt", h12, "2026-11-24T12:00", kind="hourly"),
        done(h12, "2026-11-24T12:17", late_min=15),
        srec("prompt", h13, "2026-11-24T13:00", kind="hourly"),
    ]))
    s = by_id(m)
    assert s[night].outcome == ad.MERGED and s[night].day == date(2026, 11, 24) and s[night].deferred
    assert s[r6].outcome == ad.DONE and s[r6].deferred and s[r6].offer == datetime.fromisoformat(t("2026-11-24T07:00"))
    assert s[h7].late and s[h7].late_min == 61
    assert s[r9].outcome == ad.PARTIAL and (s[r9].reps, s[r9].planned, s[r9].snoozes) == (11, 60, 2) and s[r9].late
    assert s[r9].started == datetime.fromisoformat(t("2026-11-24T09:29"))
    assert s[h10].outcome == ad.MISSED and s[h10].reason == "unanswered"
    assert not s[h11].late and s[h12].late          # the threshold is 15 minutes, inclusive
    assert s[h13].outcome == ad.OPEN
    [day] = m.days[1:]                               # the first record was the evening before
    c = day.counts
    assert (c.due, c.done, c.partial, c.late, c.snoozed, c.snoozes, c.missed, c.deferred, c.merged, c.open) == \
        (6, 5, 1, 3, 1, 2, 1, 2, 1, 1)
    assert c.adherence == 5 / 6
    assert m.days[0].day == date(2026, 11, 23) and m.days[0].counts.due == 0
    assert [x.id for x in m.days[0].held] == [night]
    assert m.totals == m.days[0].counts + c


def test_a_power_cut_over_midnight_is_one_gap_on_two_days() -> None:
    m = ad.build(sealed([
        rec("start", "2026-11-24T21:00", unit="u1"),
        rec("power_loss", "2026-11-25T02:00", last_known="2026-11-24T22:30:00+01:00", last_seq=1),
        rec("start", "2026-11-25T02:00", unit="u1"),
        rec("stop", "2026-11-25T03:00", reason="SIGTERM"),
        rec("start", "2026-11-25T03:40", unit="u1"),
    ]))
    assert [(g.kind, g.minutes) for g in m.gaps] == [("power_loss", 210), ("unit_off", 40)]
    d1, d2 = m.days
    assert (d1.counts.gaps, d1.counts.gap_minutes) == (1, 90)
    assert (d2.counts.gaps, d2.counts.gap_minutes) == (1, 120)
    assert (m.totals.gaps, m.totals.gap_minutes) == (1, 210)
    assert ad.clip(m.gaps[0], d2.day) == (datetime(2026, 11, 25, 0, 0), datetime(2026, 11, 25, 2, 0))


def test_episodes_post_operative_days_and_one_episode_alone() -> None:
    a, b = "2026-11-24T10:00 hourly", "2026-11-26T10:00 hourly"
    recs = sealed([
        rec("start", "2026-11-24T08:00", unit="u1"),
        rec("admit", "2026-11-24T08:05", episode="EP-1", surgery="2026-11-23", regimen="hip"),
        srec("prompt", a, "2026-11-24T10:00"), done(a, "2026-11-24T10:02"),
        rec("discharge", "2026-11-25T11:00", episode="EP-1"),
        rec("export", "2026-11-25T11:01", via="stick"),
        rec("secret_set", "2026-11-25T11:30", replaced=True),
        rec("refused", "2026-11-25T11:40", command="admit", problem="episode id must contain a digit", via="serial"),
        rec("admit", "2026-11-26T08:00", episode="EP-2", surgery="2026-11-26", regimen={"hourly": 60}),
        srec("prompt", b, "2026-11-26T10:00"), srec("missed", b, "2026-11-26T10:30", reason="unanswered"),
        rec("mystery", "2026-11-26T11:00", detail=[1, 2]),
    ])
    m = ad.build(recs)
    assert [e.id for e in m.episodes] == ["EP-1", "EP-2"]
    assert by_id(m)[a].episode == "EP-1" and by_id(m)[b].episode == "EP-2"
    assert [(d.day.day, [(e.id, e.pod(d.day)) for e in d.episodes]) for d in m.days] == [
        (24, [("EP-1", 1)]), (25, [("EP-1", 2)]), (26, [("EP-2", 0)])]
    assert m.unknown_types == {"mystery": 1}
    assert [e.text for e in m.days[1].events if e.kind in ("export", "secret_set", "refused")] == [
        "Record downloaded (stick)", "Ward secret changed", "Not accepted (admit): episode id must contain a digit"]
    one = ad.build(recs, episode="EP-2")
    assert [s.id for s in one.sessions] == [b] and [d.day.day for d in one.days] == [26]
    assert (one.totals.due, one.totals.done) == (1, 0)
    rows = report.csv_text(report.make(recs)).splitlines()
    assert rows[1].split(",")[3:5] == ["EP-1", "1"]
    assert rows[2].split(",")[3:5] == ["EP-2", "0"]


def _discharge_day() -> list[dict[str, Any]]:
    """Admitted the day before at 09:30 with a session missed before it; discharged at 11:00; then an
    empty bed prompted every hour (the default regimen) until the evening."""
    bodies = [rec("start", "2026-11-29T07:00", unit="u1"),
              srec("prompt", "2026-11-29T08:00 hourly", "2026-11-29T08:00"),
              srec("missed", "2026-11-29T08:00 hourly", "2026-11-29T08:30", reason="unanswered"),
              rec("admit", "2026-11-29T09:30", episode="E2026-0042", surgery="2026-11-23", regimen="standard")]
    for day, hours in (("2026-11-29", range(10, 21)), ("2026-11-30", range(7, 11))):
        for h in hours:
            sid = f"{day}T{h:02d}:00 hourly"
            bodies += [srec("prompt", sid, f"{day}T{h:02d}:00"), done(sid, f"{day}T{h:02d}:05")]
    sid = "2026-11-30T11:00 hourly"
    bodies += [srec("prompt", sid, "2026-11-30T10:59"), srec("missed", sid, "2026-11-30T11:00", reason="discharged"),
               rec("discharge", "2026-11-30T11:00", episode="E2026-0042")]
    for h in range(12, 22):
        sid = f"2026-11-30T{h:02d}:00 hourly"
        bodies += [srec("prompt", sid, f"2026-11-30T{h:02d}:00"),
                   srec("missed", sid, f"2026-11-30T{h:02d}:30", reason="unanswered")]
    return sealed(bodies)


def test_a_patient_is_counted_apart_from_the_empty_bed_before_and_after() -> None:
    m = ad.build(_discharge_day())
    patient, empty = m.stays
    assert patient.episode is not None and patient.episode.id == "E2026-0042" and empty.episode is None
    assert empty.label == "no patient admitted"
    # The 11:00 prompt was open at the discharge: nobody's, not the patient's miss.
    assert [(d.day.day, patient.pod(d.day), d.counts.done, d.counts.due) for d in patient.days] == [
        (29, 6, 11, 11), (30, 7, 4, 4)]
    assert (patient.totals.done, patient.totals.due, patient.totals.missed_reasons) == (15, 15, {})
    # With no patient admitted, nobody missed anything: offered, never due.
    assert [(d.day.day, d.counts.done, d.counts.due, d.counts.missed, d.counts.nobody) for d in empty.days] == [
        (29, 0, 0, 0, 1), (30, 0, 0, 0, 10)]
    # The bed's day still holds everything, for the timeline.
    assert [(d.day.day, d.counts.due, d.counts.nobody) for d in m.days] == [(29, 11, 1), (30, 4, 11)]
    made = report.make(_discharge_day())
    line = report.summary(made)
    assert "episode E2026-0042: 15 of 15 sessions done (100%)" in line
    assert "no patient admitted: 11 session(s) offered with no patient to do them (not counted)" in line
    html = report_files.html_text(made, datetime(2026, 12, 1, 9, 0).astimezone())
    assert "episode E2026-0042, post-op day 7: 4 of 4 done (100%)" in html
    assert "no patient admitted: 10 offered, nobody's (not counted)" in html
    assert "Total, no patient admitted" in html and 'class="m-missed"' not in html.split("Sun 30")[-1]
    assert html.count('class="ep-discharge"') == 1 and html.count('class="ep-admit"') == 1


def test_a_prompt_open_at_an_admission_is_nobodys_and_the_empty_bed_misses_nothing() -> None:
    """Prompted with no one admitted, answered after the nurse admitted a patient: neither the
    empty bed's nor the new patient's. And at a bed that records admissions, an unanswered prompt
    with no patient is never "missed"."""
    bodies = [rec("start", "2026-11-29T07:00", unit="u1"),
              srec("prompt", "2026-11-29T08:00 hourly", "2026-11-29T08:00"),
              srec("missed", "2026-11-29T08:00 hourly", "2026-11-29T08:30", reason="unanswered"),
              srec("prompt", "2026-11-29T09:00 hourly", "2026-11-29T09:00"),
              rec("admit", "2026-11-29T09:05", episode="E7", surgery="2026-11-28", regimen="standard"),
              done("2026-11-29T09:00 hourly", "2026-11-29T09:07"),
              srec("prompt", "2026-11-29T10:00 hourly", "2026-11-29T10:00"),
              done("2026-11-29T10:00 hourly", "2026-11-29T10:04")]
    m = ad.build(sealed(bodies))
    s = by_id(m)
    assert (s["2026-11-29T08:00 hourly"].outcome, s["2026-11-29T09:00 hourly"].outcome,
            s["2026-11-29T10:00 hourly"].outcome) == (ad.NO_ONE, ad.CHANGEOVER, ad.DONE)
    patient = next(st for st in m.stays if st.episode is not None)
    assert (patient.totals.done, patient.totals.due, patient.totals.missed) == (1, 1, 0)
    assert (m.totals.due, m.totals.missed, m.totals.nobody) == (1, 0, 2)
    # A unit never used with admissions counts every session, as before.
    alone = ad.build(sealed([b for b in bodies if b["type"] != "admit"]))
    assert (alone.totals.due, alone.totals.missed, alone.totals.nobody) == (3, 1, 0)


def test_an_episode_not_in_the_record_is_an_error() -> None:
    try:
        report.make(_discharge_day(), episode="E2026-9999")
    except report.ReportError as e:
        assert str(e) == "episode E2026-9999 is not in this record; it holds: E2026-0042"
    else:
        raise AssertionError("an unknown episode gave a report")


def test_without_episodes_and_without_records() -> None:
    m = ad.build([])
    assert m.days == () and m.totals.adherence is None and m.episodes == ()


# --- properties ----------------------------------------------------------------------

LIVES = ("done", "partial", "missed", "merged", "open", "waiting", "deferred_done")


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """A random record stream: sessions with random lives among outages, clock changes and strangers."""
    n = draw(st.integers(1, 30))
    base = datetime(2026, 11, 24, 7, 0)
    lives = draw(st.lists(st.sampled_from(LIVES), min_size=n, max_size=n))
    bodies: list[dict[str, Any]] = [rec("start", "2026-11-24T06:00", unit="u1")]
    expect: dict[str, str] = {}
    for i, drawn in enumerate(lives):
        life = drawn
        due = base + timedelta(minutes=37 * i)
        sid = f"{due:%Y-%m-%dT%H:%M} hourly"
        at = f"{due:%Y-%m-%dT%H:%M}"
        later = f"{due + timedelta(minutes=5):%Y-%m-%dT%H:%M}"
        if life in ("merged", "deferred_done", "waiting"):
            fields: dict[str, Any] = {"offer": t(later)}
            if life == "merged":
                fields["merged_into"] = "2026-11-24T00:00 routine"
            bodies.append(srec("deferred", sid, at, **fields))
        if life not in ("merged", "waiting"):
            bodies.append(srec("prompt", sid, later if life == "deferred_done" else at, kind="hourly"))
            bodies.extend(srec("snooze", sid, later, n=k + 1) for k in range(draw(st.integers(0, 2))))
        if life in ("done", "deferred_done"):
            bodies.append(done(sid, later, late_min=draw(st.integers(0, 40))))
        elif life == "partial":
            bodies.append(done(sid, later, reps=draw(st.integers(0, 19)), early=True))
        elif life == "missed":
            reason = draw(st.sampled_from(sorted(report_reasons())))
            bodies.append(srec("missed", sid, later, reason=reason))
            if reason == "discharged":
                life = "changeover"      # settled by a discharge: nobody's
        extra = draw(st.sampled_from(("", "", "", "power", "clock", "stranger")))
        if extra == "power":
            bodies.append(rec("power_loss", later, last_known=t(at)))
        elif extra == "clock":
            bodies.append(rec("clock_set", later, old=t(at), new=t(later), jump_s=300))
        elif extra == "stranger":
            bodies.append(rec("future_thing", later, anything={"x": [1]}))
        expect[sid] = {"deferred_done": "done", "partial": "partial"}.get(life, life)
    return sealed(bodies), expect


def report_reasons() -> set[str]:
    from bedside.report.svg import REASONS

    return set(REASONS)


@given(streams())
def test_model_over_random_streams(case: tuple[list[dict[str, Any]], dict[str, str]]) -> None:
    recs, expect = case
    m = ad.build(recs)
    assert {s.id: s.outcome for s in m.sessions} == expect
    assert sum(len(d.sessions) for d in m.days) == len(m.sessions)      # each session on exactly one day
    t_ = m.totals
    assert t_.due == t_.done + t_.missed == sum(1 for o in expect.values() if o in ad.DECIDED and o != ad.CHANGEOVER)
    assert t_.done == sum(1 for o in expect.values() if o in (ad.DONE, ad.PARTIAL))
    for name in ("due", "done", "partial", "late", "snoozed", "snoozes", "missed", "deferred", "merged", "open"):
        assert getattr(t_, name) == sum(getattr(d.counts, name) for d in m.days), name
    assert t_.adherence is None or 0 <= t_.adherence <= 1
    assert sum(t_.missed_reasons.values()) == t_.missed
    made = report.make(recs)
    assert made.verdict.ok
    assert len(report.csv_text(made).splitlines()) == len(m.sessions) + 1
    assert "<svg" in report_files.html_text(made, datetime(2026, 12, 1).astimezone())


junk = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=8)
fields = st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["prompt", "done", "missed", "deferred", "snooze", "power_loss", "start", "stop",
                             "clock_set", "admit", "discharge", "fault", "x"]) | junk,
    "time": st.sampled_from([t("2026-11-24T09:00"), "2026-11-24T09:00", "garbage"]) | junk,
    "session": st.sampled_from(["2026-11-24T09:00 hourly", "nonsense", ""]) | junk,
    "due": st.sampled_from([t("2026-11-24T09:00"), "bad"]) | junk,
    "offer": junk, "merged_into": junk, "reps": junk, "planned": junk, "early": junk, "late_min": junk,
    "duration_s": junk, "snoozes": junk, "reason": junk, "last_known": junk, "episode": junk, "surgery": junk,
    "old": junk, "new": junk, "jump_s": junk, "seq": junk, "hash": junk, "prev": junk, "unit": junk,
})


@given(st.lists(fields, max_size=12))
def test_odd_records_never_stop_the_report(bodies: list[dict[str, Any]]) -> None:
    made = report.make(bodies)
    report_files.html_text(made, datetime(2026, 12, 1).astimezone())
    report.csv_text(made)
    assert not made.verdict.ok


def test_sessions_inside_a_nurses_pause_are_paused_not_due_in_every_report() -> None:
    h10, h11, h12 = "2026-11-24T10:00 hourly", "2026-11-24T11:00 hourly", "2026-11-24T12:00 hourly"
    records = sealed([
        rec("start", "2026-11-24T09:00", unit="ward7-bed12", version="0.1.0", config="x"),
        srec("prompt", h10, "2026-11-24T10:00", kind="hourly"),
        done(h10, "2026-11-24T10:03"),
        rec("pause", "2026-11-24T10:30", until=t("2026-11-24T12:30"), duration="2h", via="button"),
        srec("paused", h11, "2026-11-24T11:00", kind="hourly", until=t("2026-11-24T12:30")),
        srec("paused", h12, "2026-11-24T12:00", kind="hourly", until=t("2026-11-24T12:30")),
        rec("resume", "2026-11-24T12:30", via="timer", early=False, until=t("2026-11-24T12:30")),
    ])
    m = ad.build(records)
    s = by_id(m)
    assert s[h11].outcome == s[h12].outcome == ad.PAUSED and not s[h11].is_done
    c = m.days[0].counts
    assert (c.due, c.done, c.missed, c.paused, c.adherence) == (1, 1, 0, 2, 1.0)
    r = report.make(records)
    html = report_files.html_text(r, datetime.fromisoformat(t("2026-11-25T09:00")))
    assert "paused by a nurse (not due)" in html and 'class="m-paused"' in html
    csv = report.csv_text(r)
    assert csv.count(",paused,") == 2


def test_software_updates_are_events_of_their_day() -> None:
    recs = sealed([
        rec("start", "2026-11-24T08:00", unit="u1"),
        rec("software_update_refused", "2026-11-24T09:00", current="0.1.0", version="0.0.9", reason="downgrade"),
        rec("software_update", "2026-11-24T09:10", old="0.1.0", new="0.3.0"),
        rec("software_rollback", "2026-11-24T09:11", **{"from": "0.3.0", "to": "0.1.0", "reason": "self-test"}),
    ])
    m = ad.build(recs)
    assert m.unknown_types == {}
    assert [e.text for e in m.days[0].events if e.kind.startswith("software")] == [
        "Software update refused (downgrade)", "Software updated from 0.1.0 to 0.3.0",
        "Software 0.3.0 failed its check; back on 0.1.0"]


def test_an_extra_session_on_request_is_done_and_never_due() -> None:
    h10, x = "2026-11-24T10:00 hourly", "2026-11-24T10:30:03 extra"
    records = sealed([
        rec("start", "2026-11-24T09:00", unit="ward7-bed12", version="0.1.0", config="x"),
        srec("prompt", h10, "2026-11-24T10:00", kind="hourly"),
        srec("missed", h10, "2026-11-24T10:30", reason="unanswered", kind="hourly"),
        rec("press", "2026-11-24T10:30:03", session=x, kind="short", held_s=0.3, action="extra", variation="pumps"),
        srec("extra", x, "2026-11-24T10:36", kind="extra", exercises=["Ankle pumps"], reps=20, planned=20,
             early=False, duration_s=330),
    ])
    m = ad.build(records)
    assert by_id(m)[x].outcome == ad.EXTRA and by_id(m)[x].reps == 20
    c = m.days[0].counts
    assert (c.due, c.done, c.missed, c.extra, c.adherence) == (1, 0, 1, 1, 0.0)
    r = report.make(records)
    html = report_files.html_text(r, datetime.fromisoformat(t("2026-11-25T09:00")))
    assert "extra sessions on request (not due)" in html and 'class="m-extra"' in html
    assert report.csv_text(r).count(",extra,") >= 1


def test_an_extra_session_a_power_cut_stopped_says_so_and_stays_never_due() -> None:
    x = "2026-11-24T10:30:03 extra"
    records = sealed([
        rec("start", "2026-11-24T09:00", unit="ward7-bed12", version="0.1.0", config="x"),
        rec("admit", "2026-11-24T09:01", episode="E7", surgery="2026-11-23", regimen="standard"),
        rec("press", "2026-11-24T10:30:03", session=x, kind="short", held_s=0.3, action="extra", variation="pumps"),
        rec("power_loss", "2026-11-24T10:35", last_known=t("2026-11-24T10:30:50"), last_seq=3),
        rec("start", "2026-11-24T10:35", unit="ward7-bed12", version="0.1.0", config="x", episode="E7",
            surgery="2026-11-23", regimen="standard"),
        srec("extra", x, "2026-11-24T10:35", due=t("2026-11-24T10:30:03"), kind="extra", interrupted=True,
             reason="power_loss", started="2026-11-24T10:30:03.000+00:00", reps=8, early=True,
             exercises=["Ankle pumps"], planned=20, reps_known_at="2026-11-24T10:30:50+00:00"),
    ])
    m = ad.build(records)
    s = by_id(m)[x]
    assert (s.outcome, s.reps, s.planned, s.reason, s.finished) == (ad.EXTRA, 8, 20, "power_loss", None)
    assert s.started == datetime.fromisoformat("2026-11-24T10:30:03+00:00")
    c = m.days[0].counts
    assert (c.due, c.extra) == (0, 1)
    r = report.make(records)
    html = report_files.html_text(r, datetime.fromisoformat(t("2026-11-25T09:00")))
    assert "(interrupted, power cut, 8 of 20 reps known done)" in html
