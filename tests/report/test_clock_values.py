"""Times no clock gives are refused at the boundary and named; a record whose clock ran years
ahead makes a report of the record's size that says what happened (issue: a ``done`` at
23:59:60 was counted as not done under "Record verified"; a unit once 20 years ahead made a
21.9 MB report with 7,306 day sections)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bedside.core import wall
from bedside.journal import chain
from bedside.report import files as report_files
from bedside.report import model as report
from tests.report.test_report import GENERATED, export_lines


def rechained(recs: list[dict[str, Any]]) -> list[str]:
    """The records with their chain recomputed from the first: what a forger with the code does."""
    out, prev = [], recs[0]["prev"]
    for given in recs:
        r = {k: v for k, v in given.items() if k != "hash"}
        r["prev"] = prev
        r["hash"] = chain.record_hash(r)
        prev = r["hash"]
        out.append(chain.canonical(r))
    return out


def test_a_leap_second_is_refused_and_named_not_verified(week: Path) -> None:
    recs = [json.loads(x) for x in export_lines(week)]
    i = next(n for n, r in enumerate(recs) if r["type"] == "done")
    recs[i]["time"] = recs[i]["time"][:11] + "23:59:60.000" + recs[i]["time"][23:]
    loaded = report.parse_export("\n".join(rechained(recs)).encode())
    made = report.make(loaded.records)
    assert not made.verdict.ok
    assert any("leap second" in p for p in made.verdict.problems)
    assert made.model.impossible_times == 1 and "leap second" in (made.model.impossible_example or "")
    page = report_files.html_text(made, GENERATED)
    assert "Record verified" not in page and "with a time no clock gives" in page


def test_a_unit_twenty_years_ahead_makes_a_report_of_the_records_size(week: Path) -> None:
    recs = [json.loads(x) for x in export_lines(week)]
    base = report.make(report.parse_export("\n".join(rechained(recs)).encode()).records)
    ahead = [n for n, r in enumerate(recs) if "2026-11-26T09:00" <= r["time"] < "2026-11-26T11:00"]
    assert ahead
    for n in ahead:                         # two hours of records with the clock 20 years ahead
        t = datetime.fromisoformat(recs[n]["time"]) + timedelta(days=20 * 365)
        recs[n]["time"] = t.isoformat(timespec="milliseconds")
    made = report.make(report.parse_export("\n".join(rechained(recs)).encode()).records)
    m = made.model
    assert m.clock_fault is not None and "longer than any stay" in m.clock_fault
    assert len(m.days) <= len(base.model.days) + 2                 # not 7,306
    page = report_files.html_text(made, GENERATED)
    assert len(page) < 2 * len(report_files.html_text(base, GENERATED))
    assert "Clock fault." in page


def test_the_boundary_values() -> None:
    for bad, why in [("2026-11-24T23:59:60+00:00", "leap second"), ("2026-11-24T09:00:00", "no offset"),
                     ("2150-01-01T00:00:00+00:00", "outside the range"), ("0001-01-01T00:00:00+05:00", "calendar"),
                     ("x" * 100, "at most"), (12, "must be text"), ("2026-13-01T00:00:00+00:00", "not a time")]:
        try:
            wall.parse(bad)
        except wall.ImpossibleTime as e:
            assert why in str(e), (bad, e)
        else:
            raise AssertionError(f"{bad!r} was accepted")
    assert wall.parse("1970-01-01T00:00:05+00:00").year == 1970       # a clock that did not keep time: honest
    assert wall.parse("2026-11-24T09:00:00.000+01:00").utcoffset() == timedelta(hours=1)


def test_numbers_no_unit_writes_are_refused_at_the_boundary_not_a_traceback(week: Path, tmp_path: Path) -> None:
    """``Infinity`` and ``NaN`` (which Python's parser takes, and no bedside writer emits) make a
    line that is not a record; a duration of 10**20 seconds is no duration. Before, each made
    `bedside report`, `ward` and `fhir` end in a traceback."""
    import subprocess
    import sys

    from bedside.report import adherence

    recs = [json.loads(x) for x in export_lines(week)]
    i = next(n for n, r in enumerate(recs) if r["type"] == "done")
    recs[i]["duration_s"] = 10**20
    made = adherence.build(json.loads(line) for line in rechained(recs))
    assert made.days                                            # built: the duration was not used
    lines = rechained(recs)
    lines[i] = lines[i][:-1] + ',"jump_s":Infinity}'
    path = tmp_path / "e.jsonl"
    path.write_text("\n".join(lines) + "\n")
    for args in (["report", str(path), "-o", str(tmp_path / "r.html")],
                 ["ward", str(path), "-o", str(tmp_path / "w.html")]):
        got = subprocess.run([sys.executable, "-m", "bedside", *args], capture_output=True, text=True)
        assert got.returncode == 3 and "Traceback" not in got.stderr, got.stderr
    assert f"line {i + 1} of the file is not a record" in (tmp_path / "r.html").read_text()
