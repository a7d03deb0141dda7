"""The stick's own rules, without a mount: the authorisation file, names Windows accepts,
files written whole, and what the core records and shows for an export."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bedside import secret
from bedside.core import config, machine, restart, state, views
from bedside.core import screens as sc
from bedside.core.events import ButtonEdge, Exported, Instant, Record, Show, StickExport, Tick
from bedside.stick import auth
from bedside.stick import files as stick_files
from tests.rigs.stick_rig import windows_name

KEY = secret.stick_key("correct horse battery")
OTHER = secret.stick_key("another ward's secret")
WHEN = datetime(2026, 11, 24, 9, 41, tzinfo=UTC)


def _raw(body: dict[str, object]) -> bytes:
    return json.dumps(body).encode()


# --- the authorisation file ----------------------------------------------------------

def test_a_prepared_stick_is_accepted_by_the_ward_that_prepared_it() -> None:
    body = auth.authorisation(KEY, WHEN, "Ward 7 stick 2")
    got = auth.check(_raw(body), KEY)
    assert got.stick == body["stick"] and len(got.stick) == 32 and got.label == "Ward 7 stick 2"
    assert body["bedside_stick"] == 1 and body["ward_key"] == auth.key_id(KEY)
    # Two sticks of one ward have different ids.
    assert auth.authorisation(KEY, WHEN)["stick"] != body["stick"]


@pytest.mark.parametrize(("raw", "reason"), [
    (None, stick_files.NOT_PREPARED),
    (b"", stick_files.BAD_AUTHORISATION),
    (b"\xff\xfe not text", stick_files.BAD_AUTHORISATION),
    (b"[1, 2]", stick_files.BAD_AUTHORISATION),
    (b'{"hello": "world"}', stick_files.BAD_AUTHORISATION),
])
def test_a_stick_without_a_readable_authorisation_is_refused(raw: bytes | None, reason: str) -> None:
    with pytest.raises(stick_files.StickProblem) as e:
        auth.check(raw, KEY)
    assert e.value.reason == reason and e.value.refused


def test_another_wards_stick_is_refused_as_such() -> None:
    with pytest.raises(stick_files.StickProblem) as e:
        auth.check(_raw(auth.authorisation(OTHER, WHEN)), KEY)
    assert e.value.reason == stick_files.OTHER_WARD and "another ward" in str(e.value)


@pytest.mark.parametrize("field", ["stick", "label", "prepared", "ward_key", "mac"])
def test_any_change_to_the_file_is_refused(field: str) -> None:
    body = auth.authorisation(KEY, WHEN, "Ward 7")
    body[field] = str(body[field])[:-1] + ("0" if not str(body[field]).endswith("0") else "1")
    with pytest.raises(stick_files.StickProblem) as e:
        auth.check(_raw(body), KEY)
    # A changed ward key id reads as another ward; anything else as tampering.
    assert e.value.reason == (stick_files.OTHER_WARD if field == "ward_key" else stick_files.BAD_AUTHORISATION)


def test_an_added_field_or_a_new_version_is_refused() -> None:
    body = auth.authorisation(KEY, WHEN)
    with pytest.raises(stick_files.StickProblem, match="changed"):
        auth.check(_raw({**body, "extra": "x"}), KEY)
    with pytest.raises(stick_files.StickProblem, match="version 2"):
        auth.check(_raw({**body, "bedside_stick": 2}), KEY)
    with pytest.raises(stick_files.StickProblem, match="damaged"):
        auth.check(_raw({**body, "stick": 7}), KEY)


def test_prepare_writes_the_authorisation_and_a_readme(tmp_path: Path) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        body = auth.prepare(fd, KEY, WHEN, "Ward\x07 7\n")
        assert auth.check(auth.read_authorisation(fd), KEY).stick == body["stick"]
        assert body["label"] == "Ward 7"
        # Too big to be a unit's file: read no further than the limit, and refuse it.
        (tmp_path / "Bedside" / "authorisation.json").write_bytes(b" " * (auth.MAX_AUTH_BYTES + 10))
        with pytest.raises(stick_files.StickProblem, match="damaged"):
            auth.check(auth.read_authorisation(fd), KEY)
    finally:
        os.close(fd)
    readme = (tmp_path / "Bedside" / "README.txt").read_bytes()
    assert b"\r\n" in readme and b"report.html" in readme and b"authorisation.json" in readme
    assert sorted(p.name for p in (tmp_path / "Bedside").iterdir()) == ["README.txt", "authorisation.json"]


# --- names ----------------------------------------------------------------------------

@given(st.text(max_size=300))
def test_every_name_is_one_windows_accepts(text: str) -> None:
    name = stick_files.safe_name(text)
    assert windows_name(name), name


@given(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}", fullmatch=True))
def test_every_unit_id_gives_a_folder_windows_accepts(unit: str) -> None:
    name = stick_files.folder_name(unit, WHEN)
    assert windows_name(name) and name.endswith("_2026-11-24_0941")


def test_folder_names() -> None:
    assert stick_files.folder_name("ward7-bed12", WHEN) == "ward7-bed12_2026-11-24_0941"
    assert stick_files.safe_name("con") == "_con" and stick_files.safe_name("aux.txt") == "_aux.txt"
    assert stick_files.safe_name('a<b>c:d"e/f\\g|h?i*j') == "a_b_c_d_e_f_g_h_i_j"
    assert stick_files.safe_name("bed. ") == "bed" and stick_files.safe_name("...") == "_"


# --- writing ---------------------------------------------------------------------------

def test_an_export_is_written_whole_into_a_new_folder_each_time(tmp_path: Path) -> None:
    files = [stick_files.File("journal.jsonl", b"j" * 5000), stick_files.File("sessions.csv", b"c"),
             stick_files.File("report.html", b"<html></html>")]
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    seen: list[str] = []
    try:
        first = stick_files.write_export(fd, "u_2026-11-24_0941", files, seen.append)
        second = stick_files.write_export(fd, "u_2026-11-24_0941", files)
    finally:
        os.close(fd)
    assert seen == ["folder", "journal.jsonl", "sessions.csv", "report.html"]
    assert first.folder == "Bedside/u_2026-11-24_0941" and second.folder == "Bedside/u_2026-11-24_0941_2"
    assert first.files == ("journal.jsonl", "sessions.csv", "report.html") and first.bytes == 5014
    for w in (first, second):
        assert {p.name: p.read_bytes() for p in (tmp_path / w.folder).iterdir()} == {f.name: f.data for f in files}


def test_leftovers_of_an_export_cut_short_are_removed(tmp_path: Path) -> None:
    old = tmp_path / "Bedside" / "u_2026-11-23_1000"
    old.mkdir(parents=True)
    (old / ".report.html.tmp").write_bytes(b"half a rep")
    (old / "journal.jsonl").write_bytes(b"whole")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        stick_files.write_export(fd, "u_2026-11-24_0941", [stick_files.File("a.txt", b"a")])
    finally:
        os.close(fd)
    assert sorted(p.name for p in old.iterdir()) == ["journal.jsonl"]


@pytest.mark.parametrize(("code", "reason"), [
    (errno.ENOSPC, stick_files.FULL), (errno.EROFS, stick_files.READ_ONLY), (errno.ENOTCONN, stick_files.REMOVED),
    (errno.ENODEV, stick_files.REMOVED), (errno.EIO, stick_files.IO_ERROR), (errno.EPERM, stick_files.IO_ERROR)])
def test_errors_are_told_apart(code: int, reason: str) -> None:
    p = stick_files.problem(OSError(code, os.strerror(code)), "writing report.html")
    assert p.reason == reason and not p.refused and "writing report.html" in str(p)


# --- what the core records and shows --------------------------------------------------

@pytest.fixture
def unit(cfg: config.Config) -> tuple[config.Config, state.State, Instant]:
    now = Instant(datetime(2026, 11, 24, 11, 30, tzinfo=UTC), 5000.0)   # between hourly sessions
    st, _ = restart.start(cfg, [], now, time_quality="rtc", version="test", boot="b")
    return cfg, st, now


def _screen(fx: Sequence[object]) -> object:
    return next(e.screen for e in reversed(fx) if isinstance(e, Show))


def _later(now: Instant, s: float) -> Instant:
    from datetime import timedelta

    return Instant(now.wall + timedelta(seconds=s), now.mono + s)


def test_an_export_shows_its_progress_then_done_and_is_the_last_download(
        unit: tuple[config.Config, state.State, Instant]) -> None:
    cfg, st, now = unit
    st, fx = machine.step(cfg, st, StickExport("started", details={"device": "sda1"}), now)
    assert _screen(fx) == sc.Stick("busy", "Exporting", "Keep stick in")
    assert not [e for e in fx if isinstance(e, Record)]          # nothing to record yet
    t = _later(now, 2)
    st, fx = machine.step(cfg, st, Exported("stick", {"to_seq": 9}), t)
    assert [(e.type, dict(e.data)) for e in fx if isinstance(e, Record)] == [("export", {"to_seq": 9, "via": "stick"})]
    assert _screen(fx) == sc.Stick("done", "Export done", "Remove the stick")
    assert st.last_export == t.wall
    st, fx = machine.step(cfg, st, Tick(), _later(t, state.STICK_S + 1))
    assert isinstance(_screen(fx), sc.Idle)
    assert views.nurse_screen(cfg, st, t).download == "24 Nov 11:30"


@pytest.mark.parametrize(("stage", "reason", "kind", "title"), [
    ("refused", "not_prepared", "export_refused", "Stick not authorised"),
    ("refused", "other_ward", "export_refused", "Stick of another ward"),
    ("failed", "full", "export_failed", "Stick full"),
    ("failed", "removed", "export_failed", "Stick removed"),
    ("failed", "something new", "export_failed", "Export failed"),
])
def test_a_stick_that_got_nothing_is_recorded_and_shown(unit: tuple[config.Config, state.State, Instant],
                                                         stage: str, reason: str, kind: str, title: str) -> None:
    cfg, st, now = unit
    st, fx = machine.step(cfg, st, StickExport(stage, reason, {"problem": "why"}), now)
    [rec] = [e for e in fx if isinstance(e, Record)]
    assert (rec.type, dict(rec.data)) == (kind, {"problem": "why", "via": "stick", "reason": reason})
    screen = _screen(fx)
    assert isinstance(screen, sc.Stick) and screen.state == "problem" and screen.title == title and screen.detail
    assert st.last_export is None


def test_a_press_only_puts_the_stick_screen_away(unit: tuple[config.Config, state.State, Instant]) -> None:
    cfg, st, now = unit
    st, _ = machine.step(cfg, st, StickExport("failed", "full"), now)
    st, _ = machine.step(cfg, st, ButtonEdge(True), _later(now, 1))
    st, fx = machine.step(cfg, st, ButtonEdge(False), _later(now, 1.3))
    assert [(e.type, e.data["action"]) for e in fx if isinstance(e, Record)] == [("press", "dismiss")]
    assert isinstance(_screen(fx), sc.Idle)


def test_a_patient_in_a_guided_session_is_not_interrupted(cfg: config.Config) -> None:
    now = Instant(datetime(2026, 11, 24, 10, 0, 5, tzinfo=UTC), 5000.0)
    st, _ = restart.start(cfg, [], now, time_quality="rtc", version="test", boot="b")
    st, _ = machine.step(cfg, st, ButtonEdge(True), _later(now, 1))
    st, fx = machine.step(cfg, st, ButtonEdge(False), _later(now, 1.2))
    assert isinstance(_screen(fx), sc.Intro | sc.Guide)
    for ev in (StickExport("started"), Exported("stick", {"to_seq": 3})):
        st, fx = machine.step(cfg, st, ev, _later(now, 2))
        assert isinstance(_screen(fx), sc.Intro | sc.Guide)
    assert [e.type for e in fx if isinstance(e, Record)] == ["export"]


def test_a_download_over_the_serial_link_shows_no_stick_screen(
        unit: tuple[config.Config, state.State, Instant]) -> None:
    cfg, st, now = unit
    st, fx = machine.step(cfg, st, Exported("serial", {"to_seq": 3}), now)
    assert not isinstance(_screen(fx), sc.Stick)


def test_the_stick_guide_shows_every_problem_in_the_unit_s_own_words() -> None:
    """docs/stick.md's table of what the display says when a stick got nothing is the core's
    own table of those words (core/views.py), row for row."""
    import re

    from tests.conftest import ROOT

    text = (ROOT / "docs" / "stick.md").read_text(encoding="utf-8")
    rows = set(re.findall(r"^\| (.+?) — (.+?) \|", text, re.M))
    assert rows == set(views.STICK_PROBLEMS.values())
