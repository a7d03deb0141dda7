"""The adherence report of a real scripted week, its inputs, its verdict, its CSV and the command."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from bedside.journal import chain
from bedside.report import adherence as ad
from bedside.report import files as report_files
from bedside.report import model as report
from tests.rigs.cli import run

# day: due, done, partly done, late, snoozed, missed, held over the night, power cuts
EXPECTED = {
    "2026-11-24": (15, 15, 0, 1, 1, 0, 1, 0),
    "2026-11-25": (15, 13, 1, 0, 0, 2, 1, 0),
    "2026-11-26": (15, 14, 0, 1, 1, 1, 1, 0),
    "2026-11-27": (15, 12, 0, 0, 0, 3, 1, 1),
    "2026-11-28": (15, 14, 0, 1, 0, 1, 1, 0),
    "2026-11-29": (15, 15, 0, 1, 0, 0, 1, 0),
    "2026-11-30": (15, 13, 1, 0, 0, 2, 1, 0),
}
GENERATED = datetime.fromisoformat("2026-12-01T08:00:00+01:00")


@pytest.fixture(scope="module")
def made(week: Path) -> report.Report:
    loaded = report.load(week)
    return report.make(loaded.records, source=loaded.source)


def test_the_scripted_week_day_by_day(made: report.Report) -> None:
    m = made.model
    got = {d.day.isoformat(): (d.counts.due, d.counts.done, d.counts.partial, d.counts.late, d.counts.snoozed,
                               d.counts.missed, d.counts.deferred, d.counts.gaps) for d in m.days}
    assert got == EXPECTED
    assert (m.totals.due, m.totals.done) == (105, 96)
    assert m.totals.missed_reasons == {"unanswered": 5, "power_loss": 3, "clock_jump": 1}
    late = {s.id: s.late_min for s in m.sessions if s.late}
    assert late == {"2026-11-24T10:00 hourly": 20, "2026-11-26T12:00 hourly": 17,
                    "2026-11-28T14:00 hourly": 22, "2026-11-29T19:00 routine": 25}
    snoozed_on_time = next(s for s in m.sessions if s.id == "2026-11-24T08:00 hourly")
    assert (snoozed_on_time.snoozes, snoozed_on_time.late_min, snoozed_on_time.late) == (1, 14, False)
    partial = {s.id: (s.reps, s.planned) for s in m.sessions if s.outcome == ad.PARTIAL}
    assert partial == {"2026-11-25T09:00 routine": (11, 60), "2026-11-30T11:00 hourly": (10, 20)}
    # Local time as recorded: Berlin, an hour ahead of UTC; the 06:00 routine is offered at 07:00.
    r6 = next(s for s in m.sessions if s.id == "2026-11-26T06:00 routine")
    assert r6.deferred and r6.outcome == ad.MISSED and r6.offer.isoformat() == "2026-11-26T07:00:00+01:00"
    [gap] = m.gaps
    assert gap.kind == "power_loss" and gap.end.isoformat().startswith("2026-11-27T16:40:")
    assert gap.start.isoformat().startswith("2026-11-27T13:0") and gap.start.utcoffset() == r6.offer.utcoffset()


def test_the_page_says_it(made: report.Report) -> None:
    page = report_files.html_text(made, GENERATED)
    assert "unit ward7-bed12" in page and "Record verified" in page and made.verdict.head in page
    assert "91%" in page and "96 of 105 sessions done" in page
    assert "Tue 24 Nov 2026 to Mon 30 Nov 2026 (7 days)" in page
    assert "(UTC+01:00)" in page
    assert page.count('<svg class="timeline"') == 7
    assert page.count('class="m-missed"') == 9 and page.count('class="m-partial"') == 2
    assert page.count('class="m-late"') + page.count('class="m-done"') == 94
    assert "Late: 10:00 hourly started 10:20 (+20 min)" in page
    assert "Partly done: 09:00 routine 11 of 60 reps" in page
    assert "Missed: power cut: 14:00 hourly, 15:00 hourly, 16:00 hourly" in page
    assert "Power cut: no record from Fri 27 Nov 2026 13:0" in page and "to Fri 27 Nov 2026 16:40 (3 h 3" in page
    assert "Clock changed from 12:3" in page and "Held over the night: 06:00 routine offered 07:00" in page
    assert "Simulated unit" in page and "FAILED" not in page
    # Self-contained: no address outside the page, and a policy that forbids fetching any.
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "default-src 'none'" in page


def test_csv_has_one_row_per_scheduled_session(made: report.Report) -> None:
    text = report.csv_text(made)
    assert text.startswith("\ufeff")                  # a byte-order mark: Excel then reads UTF-8
    rows = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    # 105 due, and each morning's 07:00 hourly session merged into the held-over 06:00 routine.
    assert len(rows) == 112 == len({r["session"] for r in rows})
    merged = [r for r in rows if r["outcome"] == "merged"]
    assert len(merged) == 7 and all(r["session"].endswith("T07:00 hourly") for r in merged)
    late = next(r for r in rows if r["session"] == "2026-11-28T14:00 hourly")
    assert (late["outcome"], late["late_min"], late["late"], late["day"]) == ("done", "22", "yes", "2026-11-28")
    assert late["due"] == "2026-11-28 14:00:00" and late["started"].startswith("2026-11-28 14:22:")
    assert late["utc_offset"] == "UTC+01:00"
    cut = next(r for r in rows if r["session"] == "2026-11-27T15:00 hourly")
    assert (cut["outcome"], cut["missed_reason"], cut["started"]) == ("missed", "power_loss", "")
    assert {r["outcome"] for r in rows} == {"done", "partial", "missed", "merged"}


def test_command_from_a_data_directory_and_from_its_export_agree(week: Path, tmp_path: Path) -> None:
    r = run("report", str(week), "-o", str(tmp_path / "dir.html"))
    assert r.returncode == 0, r.stderr
    assert "96 of 105 sessions done (91%); record verified, head" in r.stdout
    export = run("log", "export", "--data", str(week))
    (tmp_path / "week.jsonl").write_text(export.stdout)
    r = run("report", str(tmp_path / "week.jsonl"), "-o", str(tmp_path / "file.html"), "--csv",
            str(tmp_path / "sessions.csv"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "dir.csv").read_text() == (tmp_path / "sessions.csv").read_text()
    a, b = ((tmp_path / n).read_text() for n in ("dir.html", "file.html"))
    # The export's header adds when it was exported; everything else is the same.
    b = re.sub(r"<dt>Exported</dt><dd>[^<]*</dd>", "", b)
    assert a.split("<footer>")[0] == b.split("<footer>")[0]
    assert not list(tmp_path.glob(".*.tmp"))


def export_lines(week: Path) -> list[str]:
    from zoneinfo import ZoneInfo

    from bedside.journal.journal import Journal

    j = Journal(week, ZoneInfo("UTC"), "test", readonly=True)
    try:
        return [chain.canonical(r) for r in j.records()]
    finally:
        j.close()


def header(lines: list[str], **more: object) -> str:
    last = json.loads(lines[-1])
    return json.dumps({"bedside_export": 1, "unit": "ward7-bed12", "exported": "2026-12-01T08:00:00.000+01:00",
                       "head": {"seq": last["seq"], "hash": last["hash"]}, **more})


def test_export_files_with_and_without_the_header(week: Path) -> None:
    lines = export_lines(week)
    plain = report.parse_export("\n".join(lines).encode())
    assert plain.header is None and len(plain.records) == len(lines)
    loaded = report.parse_export(("\n".join([header(lines, boots=3), *lines]) + "\n").encode())
    assert loaded.header is not None and loaded.header["boots"] == 3
    made = report.make(loaded.records, header=loaded.header)
    assert made.verdict.ok and made.verdict.head_seq == len(lines)
    assert "Exported</dt><dd>Tue 1 Dec 2026 08:00" in report_files.html_text(made, GENERATED)
    # A file cut short after its header was written: the header's head tells.
    short = report.parse_export("\n".join([header(lines), *lines[:-3]]).encode())
    v = report.make(short.records, header=short.header).verdict
    assert not v.ok and "records cut from the end" in " ".join(v.problems)


def test_a_changed_or_cut_record_fails_verification_loudly(week: Path) -> None:
    lines = export_lines(week)
    i = next(n for n, line in enumerate(lines) if '"type":"missed"' in line)
    forged = json.loads(lines[i])
    forged.update({"type": "done", "reps": 20, "planned": 20, "early": False, "late_min": 1})
    changed = [*lines[:i], json.dumps(forged), *lines[i + 1:]]
    loaded = report.parse_export("\n".join(changed).encode())
    made = report.make(loaded.records)
    assert not made.verdict.ok
    assert made.verdict.problems == (f"seq {i + 1}: its contents do not match its hash: it was changed after "
                                     "it was written",)
    page = report_files.html_text(made, GENERATED)
    assert "FAILED VERIFICATION" in page.split("</title>")[0]
    body = page.split("<body>", 1)[1]
    assert body.index("FAILED verification: do not rely on it") < body.index('<dl class="facts">')
    assert "Totals <span class=\"failtag\">from a record that FAILED verification" in page
    assert "Record verified" not in page
    removed = report.parse_export("\n".join([*lines[:i], *lines[i + 1:]]).encode())
    problems = report.verdict(removed.records).problems
    assert problems[0] == f"seq {i + 2}: seq jumps from {i}: 1 record missing"
    assert "does not link to the record before it" in problems[1]
    damaged = report.parse_export("\n".join([*lines[:i], "{not json", *lines[i + 1:]]).encode())
    assert damaged.damaged == [f"line {i + 1} of the file is not a record"]
    assert not report.make(damaged.records, damaged=damaged.damaged).verdict.ok


def test_a_journal_edited_behind_the_units_back(week: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(week, copy)
    db = sqlite3.connect(next(copy.glob("journal-*.sqlite")))
    db.execute("DROP TRIGGER records_append_only_update")
    body = db.execute("SELECT body FROM records WHERE type = 'missed' ORDER BY seq LIMIT 1").fetchone()[0]
    db.execute("UPDATE records SET body = ? WHERE body = ?", (body.replace('"unanswered"', '"busy"'), body))
    db.commit()
    db.close()
    r = run("report", str(copy), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 3
    assert "FAILED VERIFICATION" in r.stdout and "do not match its hash" in r.stderr
    assert "FAILED verification" in (tmp_path / "r.html").read_text()


def test_inputs_a_person_might_give(tmp_path: Path, week: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "sheet.csv").write_text("seq,time,type,session,due,tq,details,hash\n1,x,start,,,,,\n")
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 not text \x00\xff")
    (tmp_path / "notes.txt").write_text("shopping list\n")
    (tmp_path / "newer.jsonl").write_text('{"bedside_export": 2, "unit": "u"}\n')
    (tmp_path / "nodata").mkdir()
    cases = {
        "empty.jsonl": "is empty",
        "sheet.csv": "is the CSV export; the report needs the JSONL export",
        "photo.jpg": "not a bedside export (not UTF-8 text)",
        "notes.txt": "not a bedside export (line 1 is not a JSON record)",
        "newer.jsonl": "export format 2; this bedside reads format 1",
        "nodata": "holds no bedside exports",
        "missing.jsonl": "does not exist",
    }
    for name, message in cases.items():
        r = run("report", str(tmp_path / name), "-o", str(tmp_path / "out.html"))
        assert r.returncode == 2, name           # nothing could be read: the README's table
        assert message in r.stderr, (name, r.stderr)
        assert "Traceback" not in r.stderr
    r = run("report", str(week), "-o", str(tmp_path / "no" / "such" / "r.html"))
    assert r.returncode == 2 and "does not exist" in r.stderr
    assert not (tmp_path / "out.html").exists()


def test_an_unknown_episode_is_an_error_not_an_empty_report(week: Path, tmp_path: Path) -> None:
    r = run("report", str(week), "-o", str(tmp_path / "r.html"), "--episode", "E2026-9999")
    assert r.returncode == 2, r.stdout
    assert "episode E2026-9999 is not in this record; no admission is recorded in it" in r.stderr
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "r.csv").exists()
