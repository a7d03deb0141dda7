"""The ward overview: many units with admissions and discharges on different days, broken,
stale, faulty and contradicting records, merged exports; the command, its CSV read back."""

from __future__ import annotations

import csv
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bedside.report import ward, ward_page
from bedside.report.model import Loaded, check
from tests.conftest import budget
from tests.rigs import ward_rig as wr
from tests.rigs.cli import run
from tests.rigs.ward_rig import Bed, aware, local

NOW = aware("2026-11-30T16:00")
END = local("2026-11-30T15:30")
TAKEN = aware("2026-11-30T15:35")


def beds() -> dict[str, Bed]:
    d30 = date(2026, 11, 30)
    return {b.unit: b for b in [
        Bed("bed01", date(2026, 11, 25), END, admits=[(local("2026-11-26T09:30"), "E1", date(2026, 11, 25))]),
        Bed("bed02", date(2026, 11, 26), END, admits=[(local("2026-11-27T07:30"), "E2", date(2026, 11, 27))],
            missed=lambda d, h: d == d30 and h in (10, 14)),
        Bed("bed03", date(2026, 11, 25), END, admits=[(local("2026-11-25T07:30"), "E3", date(2026, 11, 24))],
            discharges=[local("2026-11-29T11:00")], missed=lambda d, h: d >= date(2026, 11, 29) and h > 11),
        Bed("bed04", date(2026, 11, 27), END, admits=[(local("2026-11-27T08:30"), "E4", date(2026, 11, 26))]),
        Bed("bed05", date(2026, 11, 24), local("2026-11-28T12:00"),
            admits=[(local("2026-11-24T09:00"), "E5", date(2026, 11, 23))]),
        Bed("bed06", date(2026, 11, 28), END, admits=[(local("2026-11-28T07:30"), "E6", date(2026, 11, 28))],
            faults=[(local("2026-11-30T09:10"), "display", "no answer on I2C")]),
        Bed("bed07", date(2026, 11, 28), END, admits=[(local("2026-11-28T07:30"), "E7", date(2026, 11, 28))],
            faults=[(local("2026-11-29T09:10"), "buzzer", "stuck")], cleared=[(local("2026-11-29T10:00"), "buzzer")]),
        Bed("bed08", date(2026, 11, 26), END, admits=[(local("2026-11-26T07:30"), "E8", date(2026, 11, 25))],
            missed=lambda d, h: h == 9),
        Bed("bed09", date(2026, 11, 28), END, admits=[(local("2026-11-28T07:30"), "E9", date(2026, 11, 28))]),
        Bed("bed10", date(2026, 11, 28), END, missed=lambda d, h: d < d30 and h == 20),
        Bed("bed11", date(2026, 11, 29), END, admits=[(local("2026-11-30T12:30"), "E11", date(2026, 11, 30))],
            missed=lambda d, h: h < 12),
    ]}


@pytest.fixture
def ward_dir(tmp_path: Path) -> Path:
    """The nurse's laptop: a pull folder, a stick with its Bedside folder, loose export files."""
    b = beds()
    pulls, stick, loose = tmp_path / "pulls", tmp_path / "STICK", tmp_path / "loose"
    loose.mkdir()
    for unit in ("bed01", "bed02", "bed03", "bed06", "bed07", "bed11"):
        wr.as_pull(pulls, unit, wr.records(b[unit]), TAKEN)
    for unit in ("bed09", "bed10"):
        wr.as_stick(stick, unit, wr.records(b[unit]), TAKEN)
    wr.as_pull(pulls, "bed05", wr.records(b["bed05"]), aware("2026-11-28T12:05"), report=False)
    tampered = wr.records(b["bed04"])
    done = next(r for r in tampered if r["type"] == "done" and r["session"].startswith("2026-11-29T10"))
    done["reps"] = 3                                  # changed after the unit wrote it
    (loose / "bed04.jsonl").write_text(wr.export_text(tampered, TAKEN))
    # bed08: yesterday evening's pull and today's stick overlap: merged, never counted twice.
    full = wr.records(b["bed08"])
    cut = 1 + next(i for i, r in enumerate(full) if r["time"].startswith("2026-11-29T20:04"))
    wr.as_pull(pulls, "bed08", full[:cut], aware("2026-11-29T20:40"))
    wr.as_stick(stick, "bed08", full, TAKEN)
    # bed09 again: another chain under the same unit id (a re-imaged card), older.
    other = Bed("bed09", date(2026, 11, 27), local("2026-11-29T12:00"), boot="b-old")
    (loose / "bed09-old.jsonl").write_text(wr.export_text(wr.records(other), aware("2026-11-29T12:10")))
    (loose / "notes.txt").write_text("not an export")
    (loose / "empty.jsonl").write_text("")
    return tmp_path


def rows_of(top: Path) -> tuple[list[ward.Row], list[str]]:
    problems: list[str] = []
    sources = ward.find([top / "pulls", top / "STICK", top / "loose"], problems.append)
    return ward.rows(ward.merge(sources), NOW), problems


def test_beds_needing_attention_come_first(ward_dir: Path) -> None:
    rows, problems = rows_of(ward_dir)
    # Worst first: records that failed their check, then the most sessions missed in the last 24 h
    # (bed10 missed yesterday's 20:00: still inside the window), a fault, an old record.
    assert [(r.unit, r.flags) for r in rows] == [
        ("bed04", ("broken",)), ("bed09", ("broken",)), ("bed02", ("missed",)), ("bed08", ("missed",)),
        ("bed10", ("missed",)), ("bed06", ("fault",)), ("bed05", ("stale",)), ("bed01", ()), ("bed03", ()),
        ("bed07", ()), ("bed11", ())]
    why = {r.unit: r.reasons for r in rows}
    assert why["bed02"] == ("missed 2 of 8 today; last one done at 15:04",)
    assert why["bed10"] == ("missed 1 of 5 yesterday; last one done at 15:04",)
    assert why["bed05"] == ("no record since Sat 12:05: how this bed is doing now is unknown",)
    assert why["bed06"] == ("display: no answer on I2C",)
    assert problems == ["empty.jsonl is empty: there are no records to report on"]


def test_each_row_counts_the_patient_today_and_the_last_three_days(ward_dir: Path) -> None:
    r = {x.unit: x for x in rows_of(ward_dir)[0]}
    one = r["bed01"]
    assert (one.episode, one.pod, one.regimen, one.verdict) == ("E1", 5, "standard", "verified")
    assert (one.today.done, one.today.missed, one.today.due) == (8, 0, 8)      # 08:00-15:00 by 15:30
    # The strip is the three days before today (today has its own column).
    assert [(d.day.day, d.done, d.due) for d in one.strip] == [(27, 13, 13), (28, 13, 13), (29, 13, 13)]
    assert one.age == timedelta(minutes=25) and one.last_missed is None
    two = r["bed02"]
    assert (two.today.done, two.today.missed) == (6, 2)
    assert two.last_missed is not None and two.last_missed.id == "2026-11-30T14:00 hourly"
    assert two.missed_ago_min == 90
    # Discharged yesterday at 11:00: the empty bed's misses are nobody's.
    three = r["bed03"]
    assert not three.admitted and three.episode is None and three.last_missed is None and not three.flags
    assert (three.vacated, three.vacated_by) == (aware("2026-11-29T11:00"), "E3")
    # Admitted at 12:30 today: the morning's misses were before the patient.
    eleven = r["bed11"]
    assert (eleven.episode, eleven.pod, eleven.today.missed, eleven.today.done) == ("E11", 0, 0, 3)
    assert [(d.done, d.due) for d in eleven.strip] == [(0, 0), (0, 0), (0, 0)]
    # Never admitted: every session counts, as in its report.
    ten = r["bed10"]
    assert ten.never_admitted and [(d.done, d.missed) for d in ten.strip] == [(0, 0), (12, 1), (12, 1)]
    assert r["bed06"].faults == ("display: no answer on I2C",) and r["bed07"].faults == ()
    assert r["bed05"].age == timedelta(days=2, hours=3, minutes=55)


def test_exports_of_one_unit_merge_and_count_once(ward_dir: Path) -> None:
    r = {x.unit: x for x in rows_of(ward_dir)[0]}
    eight = r["bed08"]
    assert len(eight.exports) == 2 and eight.verdict == "verified"
    assert [(d.done, d.missed, d.due) for d in eight.strip] == [(12, 1, 13), (12, 1, 13), (12, 1, 13)]
    assert (eight.today.done, eight.today.missed, eight.today.due) == (7, 1, 8)
    assert eight.report is not None and eight.report.name == "report.html"     # the newest export's
    assert eight.taken == TAKEN


def test_broken_and_contradicting_records_are_flagged_with_where(ward_dir: Path) -> None:
    r = {x.unit: x for x in rows_of(ward_dir)[0]}
    four = r["bed04"]
    assert four.verdict == "BROKEN" and four.verdict_text.startswith("BROKEN at seq ")
    assert "bed04.jsonl" in four.verdict_text
    nine = r["bed09"]
    assert nine.verdict == "BROKEN" and nine.contradicting and nine.contradicting[0].endswith("bed09-old.jsonl")
    assert "another chain under the same unit id in bed09-old.jsonl" in nine.verdict_text
    assert len(nine.exports) == 1 and nine.episode == "E9"                       # the newest chain, alone


def test_an_export_that_cannot_be_joined_is_not_counted(tmp_path: Path) -> None:
    bed = Bed("bed20", date(2026, 11, 26), END)
    recs = wr.records(bed)
    wr.as_pull(tmp_path / "a", "bed20", recs[:40], aware("2026-11-26T12:00"))
    wr.as_pull(tmp_path / "b", "bed20", recs[60:], TAKEN)          # the unit pruned 41-60 in between
    (u,) = ward.merge(ward.find([tmp_path], print))
    assert len(u.exports) == 1 and len(u.apart) == 1 and next(iter(u.records))["seq"] == 61 and u.verdict.ok
    (row,) = ward.rows([u], NOW)
    assert row.apart and row.verdict == "verified"


def test_the_command_writes_the_page_and_a_csv_that_reads_back(ward_dir: Path) -> None:
    out, table = ward_dir / "ward.html", ward_dir / "ward.csv"
    r = run("ward", str(ward_dir / "pulls"), str(ward_dir / "STICK"), str(ward_dir / "loose"), "-o", str(out),
            "--csv", str(table), "--as-of", "2026-11-30T16:00+01:00")
    assert r.returncode == 3, r.stderr
    assert "11 unit(s) from 13 export(s), 7 needing attention" in r.stdout
    assert "bed04: record failed its check" in r.stdout and "bed09, bed04" not in r.stderr
    assert "bed02: missed 2 of 8 today; last one done at 15:04" in r.stdout
    assert "skipped: empty.jsonl is empty" in r.stderr
    assert table.read_bytes().startswith(b"\xef\xbb\xbf")          # a byte-order mark: Excel reads UTF-8
    with open(table, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert [x["unit"] for x in rows][:7] == ["bed04", "bed09", "bed02", "bed08", "bed10", "bed06", "bed05"]
    two = next(x for x in rows if x["unit"] == "bed02")
    assert (two["attention"], two["episode"], two["today_done"], two["today_missed"], two["today_due"]) == \
        ("missed sessions", "E2", "6", "2", "8")
    assert two["why"] == "missed 2 of 8 today; last one done at 15:04"
    assert two["last_missed_session"] == "2026-11-30T14:00 hourly" and two["minutes_since_missed"] == "90"
    assert two["last_missed_at"] == "2026-11-30 14:00:00" and two["utc_offset"] == "UTC+01:00"
    assert (two["done 2026-11-27"], two["due 2026-11-27"], two["done 2026-11-29"]) == ("13", "13", "13")
    assert (two["window_from"], two["window_done"], two["window_missed"]) == ("2026-11-29 16:00:00", "11", "2")
    three = next(x for x in rows if x["unit"] == "bed03")
    assert three["today_done"] == "" and (three["vacated"], three["vacated_episode"]) == ("2026-11-29 11:00:00", "E3")
    page = out.read_text()
    assert 'href="pulls/bed01-report.html"' in page
    assert re.search(r'href="STICK/Bedside/bed08_2026-11-30_1535/report.html"', page)
    assert "bed05-report.html" not in page                    # no report beside that pull: no link
    assert page.count("<tr") == 12 and "RECORD" not in page.split("<table>")[0]
    assert "7 need attention" in page and "empty</b><br><span class=\"small\">since yesterday 11:00: episode E3" in page


def test_nothing_readable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "x.jsonl").write_text("hello\n")
    r = run("ward", str(tmp_path), "-o", str(tmp_path / "w.html"))
    assert r.returncode == 2 and "no unit's record was found" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "w.html").exists()


def test_the_page_escapes_what_a_file_says(tmp_path: Path) -> None:
    bed = Bed("<b>x</b>", date(2026, 11, 29), END, faults=[(local("2026-11-30T09:00"), "=1+1", "<script>")])
    wr.as_pull(tmp_path, "evil", wr.records(bed), TAKEN)
    rows = ward.rows(ward.merge(ward.find([tmp_path], print)), NOW)
    page = ward_page.render(rows, NOW, tmp_path / "w.html")
    assert "<script>" not in page and "<b>x</b>" not in page
    assert "'=1+1" in ward_page.csv_text(rows)       # a formula in a spreadsheet would run


def test_a_bare_export_without_its_header_is_still_checked(tmp_path: Path) -> None:
    from bedside.journal import chain

    recs = wr.records(Bed("bed40", date(2026, 11, 29), END))
    (tmp_path / "bed40.jsonl").write_text("".join(chain.canonical(r) + "\n" for r in recs))
    recs = wr.records(Bed("bed41", date(2026, 11, 29), END))
    recs[5]["reps"] = 1
    (tmp_path / "bed41.jsonl").write_text("".join(chain.canonical(r) + "\n" for r in recs))
    rows = {r.unit: r for r in ward.rows(ward.merge(ward.find([tmp_path], print)), NOW)}
    assert rows["bed40"].verdict == "verified" and "broken" in rows["bed41"].flags


def test_a_units_data_directory_is_read_and_judged_as_log_verify_does(week: Path) -> None:
    (r,) = ward.rows(ward.merge(ward.find([week], print)), aware("2026-11-30T23:30"))
    assert r.unit == "ward7-bed12" and r.never_admitted and r.verdict == "verified"
    assert r.verdict_text.startswith("OK: chain intact")
    assert [(d.done, d.due) for d in r.strip] == [(12, 15), (14, 15), (15, 15)]


def test_report_ward_and_fhir_take_the_same_inputs(ward_dir: Path, tmp_path: Path) -> None:
    """A pull folder, a stick, one stick export folder, an export file: every laptop command reads each."""
    export_folder = next((ward_dir / "STICK" / "Bedside").glob("bed09_*"))
    forms = {"pull folder": ward_dir / "pulls", "stick": ward_dir / "STICK", "export folder": export_folder,
             "export file": ward_dir / "pulls" / "bed01-journal.jsonl"}
    for name, found in forms.items():
        w = run("ward", str(found), "-o", str(tmp_path / "w.html"))
        f = run("fhir", str(found), "-o", str(tmp_path / "b.json"), "--allow-broken")
        assert w.returncode in (0, 3) and f.returncode == 0, (name, w.stderr, f.stderr)
    # One unit: the report is written; several: the message names them and --unit chooses.
    for found in (export_folder, ward_dir / "pulls" / "bed01-journal.jsonl"):
        r = run("report", str(found), "-o", str(tmp_path / "r.html"))
        assert r.returncode == 0, r.stderr
    r = run("report", str(ward_dir / "pulls"), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 2 and "hold the records of 8 units (bed01, bed02, bed03, bed05" in r.stderr
    assert "choose one with --unit" in r.stderr and "Traceback" not in r.stderr
    r = run("report", str(ward_dir / "pulls"), "-o", str(tmp_path / "r.html"), "--unit", "bed02")
    assert r.returncode == 0 and "bed02" in (tmp_path / "r.html").read_text(), r.stderr
    # Yesterday's pull and today's stick of one unit: merged into one report, every record once.
    r = run("report", str(ward_dir / "pulls"), str(ward_dir / "STICK"), "-o", str(tmp_path / "r8.html"),
            "--unit", "bed08")
    assert r.returncode == 0, r.stderr
    assert "record verified" in r.stdout
    r = run("report", str(ward_dir / "pulls"), "-o", str(tmp_path / "r.html"), "--unit", "bed99")
    assert r.returncode == 2 and "no record of unit bed99" in r.stderr
    # log verify too: every export in a pull folder or on a stick, each as one file is checked.
    v = run("log", "verify", str(ward_dir / "STICK"))
    assert v.returncode == 0 and v.stdout.count(": OK: chain intact") + v.stdout.count("\n  OK: chain intact") == 3
    v = run("log", "verify", str(ward_dir / "loose"))
    assert v.returncode == 3 and "BROKEN at seq" in v.stdout and "1 of 2 export(s) FAILED" in v.stderr


@pytest.mark.parametrize(("now", "since"), [
    ("2026-11-30T07:00", "2026-11-29T19:00"),      # at the morning handover: the night just handed over
    ("2026-11-30T06:59", "2026-11-29T07:00"),      # a minute before it: the day before and the night so far
    ("2026-11-30T12:00", "2026-11-29T19:00"),
    ("2026-11-30T19:00", "2026-11-30T07:00"),
    ("2026-11-30T23:30", "2026-11-30T07:00"),
])
def test_the_handover_window(now: str, since: str) -> None:
    from datetime import time

    w = ward.Window(24, (time(7), time(19)))
    assert w.start(aware(now)) == aware(since)
    assert ward.Window(24).start(aware(now)) == aware(now) - timedelta(hours=24)


@budget(25)
@given(st.lists(st.tuples(st.sets(st.integers(8, 20), max_size=13), st.sets(st.integers(8, 20), max_size=13),
                          st.integers(0, 60), st.booleans()), min_size=1, max_size=6),
       st.sampled_from(["07:00", "12:00", "19:30"]))
def test_property_the_worst_beds_come_first_and_every_flag_says_why(
        fortunes: list[tuple[set[int], set[int], int, bool]], hm: str) -> None:
    """Random beds (hours missed yesterday and today, hours since the download, discharged or not):
    the order follows the rank, every flag has its words, and "missed" means a miss in the window."""
    now = aware(f"2026-11-30T{hm}")
    units = []
    for i, (yesterday, today, age_h, gone) in enumerate(fortunes):
        last = now.replace(tzinfo=None) - timedelta(hours=age_h, minutes=5)
        def missed(d: date, h: int, y: set[int] = yesterday, t: set[int] = today) -> bool:
            return h in (y if d == date(2026, 11, 29) else t if d == date(2026, 11, 30) else set())

        bed = Bed(f"bed{i:02d}", date(2026, 11, 27), last, admits=[(local("2026-11-27T07:30"), f"E{i}",
                                                                      date(2026, 11, 26))],
                  discharges=[local("2026-11-30T06:00")] if gone else [], quiet_when_empty=True, missed=missed)
        recs = wr.records(bed)
        units += ward.merge([ward.Source(Path(f"{bed.unit}.jsonl"), Loaded(recs, None, [], bed.unit), bed.unit,
                                         None, last.replace(tzinfo=now.tzinfo), check(recs))])
    rows = ward.rows(units, now)
    assert [r.rank for r in rows] == sorted(r.rank for r in rows)
    for r in rows:
        assert len(r.reasons) == len(r.flags)
        assert ("missed" in r.flags) == bool(r.window and r.window.missed)
        assert ("stale" in r.flags) == (r.age is not None and r.age > ward.STALE_AFTER)
        if r.vacated is not None:
            assert not r.admitted and "missed" not in r.flags and r.vacated_by is not None
    page = ward_page.render(rows, now, Path("ward.html"))
    need = sum(bool(r.flags) for r in rows)
    assert (f"{need} need" in page) if need else ("none needs attention" in page)
