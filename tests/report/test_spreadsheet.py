"""Every CSV bedside writes, opened by a real spreadsheet program: LibreOffice Calc, headless
(Debian's libreoffice-calc-nogui), converts each to a flat OpenDocument sheet, and the cells'
types are read back. Dates must be dates, numbers numbers, one value per cell, and letters
beyond ASCII must survive.

The import options are the ones LibreOffice's Text Import dialog shows for these files: UTF-8
(it reads the byte-order mark) and comma-separated, with "Detect special numbers" ticked for
date-times (docs/ward.md says why; without the tick dates and numbers are still typed, and the
test checks that too). Excel on Windows reads the same files as they are: the byte-order mark
tells it UTF-8, and ``YYYY-MM-DD HH:MM:SS`` is a date-time to it in every locale.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest

from bedside.journal import export
from bedside.report import model as report
from bedside.report import ward, ward_page
from tests.report.test_ward import NOW, TAKEN, ward_dir
from tests.rigs import ward_rig as wr
from tests.rigs.ward_rig import Bed, local

SOFFICE = shutil.which("soffice")
pytestmark = pytest.mark.skipif(SOFFICE is None, reason="needs Debian's libreoffice-calc-nogui (make test "
                                "installs it)")

NS = {"table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
      "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
      "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0"}
# UTF-8, comma, double quote, from line 1, standard columns, English (US), quoted not forced to text,
# detect special numbers on / off.
WITH_TICK, WITHOUT_TICK = "CSV:44,34,76,1,,1033,false,true", "CSV:44,34,76,1,,1033,false,false"

Cell = tuple[str, str]          # (value type, value: the date, the number or the text)


def calc(files: list[Path], out: Path, options: str) -> dict[str, list[list[Cell]]]:
    """Open the CSVs in LibreOffice Calc and save them as flat OpenDocument: each sheet's rows of cells."""
    assert SOFFICE is not None
    out.mkdir(exist_ok=True)
    subprocess.run([SOFFICE, "--headless", "--norestore", f"-env:UserInstallation={(out / 'profile').as_uri()}",
                    f"--infilter={options}", "--convert-to", "fods", "--outdir", str(out), *map(str, files)],
                   check=True, capture_output=True, timeout=300)
    return {f.name: _sheet(out / f.with_suffix(".fods").name) for f in files}


def _sheet(path: Path) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for tr in ET.parse(path).getroot().iter(f"{{{NS['table']}}}table-row"):
        row: list[Cell] = []
        for td in tr.findall("table:table-cell", NS):
            kind = td.get(f"{{{NS['office']}}}value-type") or "empty"
            value = (td.get(f"{{{NS['office']}}}date-value") or td.get(f"{{{NS['office']}}}value") or
                     "".join("".join(p.itertext()) for p in td.findall("text:p", NS)))
            row += [(kind, value)] * int(td.get(f"{{{NS['table']}}}number-columns-repeated", "1"))
        while row and row[-1][0] == "empty":
            row.pop()
        if row:
            rows.append(row)
    return rows


def columns(rows: list[list[Cell]]) -> list[dict[str, Cell]]:
    head = [v for _, v in rows[0]]
    assert all(len(r) <= len(head) for r in rows[1:])          # never more cells than the header names
    return [dict(zip(head, r + [("empty", "")] * (len(head) - len(r)), strict=True)) for r in rows[1:]]


@pytest.fixture(scope="module")
def sheets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The three CSVs: the ward's, a unit's sessions and a journal's, with a fault text beyond ASCII."""
    top = tmp_path_factory.mktemp("sheets")
    made = ward_dir.__wrapped__(top)                              # type: ignore[attr-defined]
    odd = Bed("bed12", date(2026, 11, 27), local("2026-11-30T15:30"),
              admits=[(local("2026-11-27T08:00"), "E12", date(2026, 11, 26))],
              faults=[(local("2026-11-30T09:00"), "buzzer", "no sound – check the lead (Ω)")],
              missed=lambda d, h: h in (10, 20))
    recs = wr.records(odd)
    wr.as_pull(made / "pulls", "bed12", recs, TAKEN)
    rows = ward.rows(ward.merge(ward.find([made / "pulls", made / "STICK", made / "loose"], print)), NOW)
    files = [top / "ward.csv", top / "sessions.csv", top / "journal.csv"]
    files[0].write_text(ward_page.csv_text(rows), encoding="utf-8")
    files[1].write_text(report.csv_text(report.make(recs)), encoding="utf-8")
    with open(files[2], "w", encoding="utf-8", newline="") as f:
        export.write_csv(f, recs)
    return top, files


def test_every_csv_opens_with_dates_as_dates_and_numbers_as_numbers(sheets: tuple[Path, list[Path]]) -> None:
    top, files = sheets
    got = calc(files, top / "calc", WITH_TICK)
    for f in files:
        assert f.read_bytes().startswith(b"\xef\xbb\xbf"), f.name           # Excel then reads UTF-8
        assert got[f.name][0][0] == ("string", f.read_text(encoding="utf-8-sig").split(",")[0])  # no stray BOM

    wardrows = columns(got["ward.csv"])
    assert len(wardrows) == 12
    b12 = next(r for r in wardrows if r["unit"][1] == "bed12")
    assert b12["faults"] == ("string", "buzzer: no sound – check the lead (Ω)")
    assert b12["why"][1].startswith("missed 1 of 5 yesterday, 1 of 8 today") and b12["attention"][0] == "string"
    for name in ("admitted", "window_from", "last_missed_at", "record_taken"):
        assert b12[name][0] == "date", name
    assert b12["record_taken"][1] == "2026-11-30T15:35:00"
    for name in ("post_op_day", "today_done", "today_missed", "today_due", "window_done", "window_missed",
                 "window_due", "minutes_since_missed", "record_age_hours"):
        assert b12[name][0] == "float", name
    assert (b12["today_missed"][1], b12["record_age_hours"][1]) == ("1", "0.4")
    # One column per day, each a number, named by its date.
    days = [k for k in b12 if k.startswith(("done ", "due "))]
    assert days == ["done 2026-11-27", "due 2026-11-27", "done 2026-11-28", "due 2026-11-28", "done 2026-11-29",
                    "due 2026-11-29"]
    assert [b12[k] for k in days] == [("float", "11"), ("float", "13")] * 3
    empty = next(r for r in wardrows if r["unit"][1] == "bed03")
    assert empty["vacated"] == ("date", "2026-11-29T11:00:00") and empty["vacated_episode"] == ("string", "E3")

    sessions = columns(got["sessions.csv"])
    recs = [line for line in files[2].read_text(encoding="utf-8-sig").splitlines()[1:]]
    assert len(sessions) == sum(1 for line in recs if ",prompt," in line)
    one = next(r for r in sessions if r["session"][1] == "2026-11-28T10:00 hourly")
    assert one["day"] == ("date", "2026-11-28") and one["due"] == ("date", "2026-11-28T10:00:00")
    assert one["outcome"] == ("string", "missed") and one["finished"][0] == "date"
    assert one["post_op_day"] == ("float", "2") and one["snoozes"] == ("float", "0")
    assert one["utc_offset"] == ("string", "UTC+01:00")

    journal = columns(got["journal.csv"])
    assert len(journal) == len(recs)
    assert all(r["seq"][0] == "float" and r["time"][0] == "date" for r in journal)
    fault = next(r for r in journal if r["type"][1] == "fault")
    assert "no sound – check the lead (Ω)" in fault["details"][1]


def test_without_detect_special_numbers_dates_and_numbers_are_still_typed(sheets: tuple[Path, list[Path]]) -> None:
    """LibreOffice's dialog as it first opens: the days and counts are still dates and numbers (only the
    date-times then stay text until "Detect special numbers" is ticked, as docs/ward.md tells)."""
    top, files = sheets
    got = calc(files[:2], top / "calc-plain", WITHOUT_TICK)
    b12 = next(r for r in columns(got["ward.csv"]) if r["unit"][1] == "bed12")
    assert b12["today_done"][0] == "float" and b12["done 2026-11-28"] == ("float", "11")
    one = next(r for r in columns(got["sessions.csv"]) if r["session"][1] == "2026-11-28T10:00 hourly")
    assert one["day"] == ("date", "2026-11-28") and one["late_min"][0] in ("empty", "float")


def test_the_files_read_back_in_pythons_csv_module(sheets: tuple[Path, list[Path]]) -> None:
    import csv

    _, files = sheets
    for f in files:
        rows = list(csv.reader(io.StringIO(f.read_text(encoding="utf-8-sig"))))
        assert len({len(r) for r in rows}) == 1, f.name                 # a rectangle: one value per cell
