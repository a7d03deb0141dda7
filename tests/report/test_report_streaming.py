"""``bedside report`` reads a unit's record a record at a time (``model.read``), not the file
(issue 22: a reader's memory is bounded by the largest record), and writes the same two files
as when the records were read whole (``model.load``), byte for byte."""

from __future__ import annotations

import json
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bedside.journal import chain, export
from bedside.journal.journal import Journal
from bedside.report import files as report_files
from bedside.report import model as report

GENERATED = datetime.fromisoformat("2026-12-01T08:00:00+01:00")


def _both(path: Path, tmp: Path, episode: str | None = None) -> tuple[list[bytes], list[bytes]]:
    """(the files made from the records held in a list, the files made a record at a time)."""
    out = []
    for how in ("held", "read"):
        html, csv_path = tmp / f"{how}.html", tmp / f"{how}.csv"
        if how == "held":
            loaded = report.load(path)
            report_files.write(loaded.records, html, csv_path, header=loaded.header, damaged=loaded.damaged,
                               episode=episode, source=loaded.source, generated=GENERATED)
        else:
            report_files.write_from(report.read(path), html, csv_path, episode=episode, generated=GENERATED)
        out.append([html.read_bytes(), csv_path.read_bytes()])
    return out[0], out[1]


def _export_of(data: Path, into: Path) -> Path:
    from zoneinfo import ZoneInfo

    j = Journal(data, ZoneInfo("UTC"), "export", readonly=True)
    try:
        with open(into, "w", encoding="utf-8", newline="") as f:
            export.stream(j, f, exported=GENERATED)
    finally:
        j.close()
    return into


def test_a_data_directory_and_its_export_give_the_same_files(week: Path, tmp_path: Path) -> None:
    held, read = _both(week, tmp_path)
    assert held == read
    path = _export_of(week, tmp_path / "week.jsonl")
    held, read = _both(path, tmp_path)
    assert held == read and b"verified" in read[0]


def test_damage_in_the_file_gives_the_same_files(week: Path, tmp_path: Path) -> None:
    lines = _export_of(week, tmp_path / "week.jsonl").read_text("utf-8").split("\n")
    # A record holding characters a line reader splits at, a line that is not JSON, blank
    # lines, CR line ends, a record with a changed field, and one cut short.
    odd = json.loads(lines[5])
    odd["problem"] = "one\u2028two\x85three"
    lines[5] = chain.canonical(odd)
    lines[9] = "{not json"
    lines[12] = lines[12] + "\r"
    lines.insert(20, "")
    lines[30] = lines[30].replace('"type"', '"typ"')
    lines[40] = lines[40][:50]
    path = tmp_path / "damaged.jsonl"
    path.write_text("\n".join(lines), "utf-8")
    held, read = _both(path, tmp_path)
    assert held == read and b"FAILED" in read[0]
    # without a header: bare JSON lines
    path.write_text("\n".join(lines[1:]), "utf-8")
    held, read = _both(path, tmp_path)
    assert held == read


def test_an_episode_alone_gives_the_same_files(tmp_path: Path) -> None:
    from datetime import timedelta

    from tests.rigs import ward_rig as wr

    end = wr.local("2026-11-30T15:30")
    first = end.date() - timedelta(days=12)
    second = first + timedelta(days=6)
    admits = [(datetime.combine(first, datetime.min.time()).replace(hour=9), "E1", first),
              (datetime.combine(second, datetime.min.time()).replace(hour=9), "E2", second)]
    bed = wr.Bed("bed01", first, end, admits=admits, missed=lambda d, h: (d.day + h) % 7 == 0)
    path = wr.as_pull(tmp_path / "pull", bed.unit, wr.records(bed), wr.aware("2026-11-30T15:35"))
    for episode in ("E1", "E2", None):
        held, read = _both(path, tmp_path, episode=episode)
        assert held == read
    with pytest.raises(report.ReportError, match="episode E9 is not in this record"):
        report.make_from(report.read(path), episode="E9")


@pytest.mark.parametrize(("text", "says"), [
    (b"", "is empty"), (b"seq,time,type\n1,2,3\n", "CSV export"), (b"\xff\xfe{}\n", "not UTF-8"),
    (b'{"bedside_export": 9}\n', "format 9"), (b'{"a": 1}\n{"b": 2}\n', "no line is a record"),
    (b"[1]\n", "line 1 is not a JSON record"),
])
def test_what_is_not_an_export_is_refused_as_before(tmp_path: Path, text: bytes, says: str) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(text)
    with pytest.raises(report.ReportError) as held:
        report.load(path)
    with pytest.raises(report.ReportError) as read:
        report.make_from(report.read(path))
    assert says in str(held.value) and str(read.value) == str(held.value)


def test_a_line_past_the_limit_is_one_damaged_line_never_held(week: Path, tmp_path: Path) -> None:
    lines = _export_of(week, tmp_path / "week.jsonl").read_text("utf-8").split("\n")
    path = tmp_path / "long.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines[:10]) + "\n" + "x" * (32 * 2**20) + "\n" + "\n".join(lines[10:]))
    records = report.read(path)
    tracemalloc.start()
    try:
        made = report.make_from(records)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 * 2**20, peak          # the 32 MiB line is read in pieces of at most 4 MiB
    assert not made.verdict.ok and any("line 11 of the file is not a record" in p for p in made.verdict.problems)


def _locks(path: Path, n: int) -> Path:
    """An export of n records the report's model keeps nothing of, so that what is measured is
    the reading, not the model (issue 22's bound on the model is its own)."""
    from datetime import timedelta

    from bedside.core.records import T
    from tests.rigs import ward_rig as wr

    t0 = wr.aware("2026-11-01T08:00")
    bodies = [{"type": T.LOCK, "time": (t0 + timedelta(seconds=i)).isoformat(timespec="milliseconds"),
               "via": "serial", "note": "x" * 200} for i in range(n)]
    path.write_text(wr.export_text(wr.seal(bodies), t0), "utf-8")
    return path


def _peak(path: Path) -> int:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        made = report.make_from(report.read(path))
        assert made.verdict.ok, made.verdict.problems
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_four_times_the_records_take_no_more_memory(tmp_path: Path) -> None:
    small, large = _locks(tmp_path / "small.jsonl", 3_000), _locks(tmp_path / "large.jsonl", 12_000)
    _peak(small)                      # imports and caches: not counted
    p_small, p_large = _peak(small), _peak(large)
    assert p_large < p_small + 2**20, (p_small, p_large)
    assert p_large < large.stat().st_size / 4, (p_large, large.stat().st_size)   # held: several times the file


def test_the_fhir_bundle_is_checked_a_part_at_a_time_and_still_whole() -> None:
    """``bedside fhir`` checks the Bundle around its entries a part at a time (the models of every
    resource at once took about 60 KiB an entry): an entry's fault in a later part is still found."""
    from bedside.report import fhir

    def entry(n: int, request: dict[str, str]) -> dict[str, Any]:
        return {"fullUrl": f"urn:uuid:00000000-0000-0000-0000-{n:012d}", "request": request,
                "resource": {"resourceType": "Basic", "code": {"text": "x"}}}

    doc: dict[str, Any] = {"resourceType": "Bundle", "type": "transaction",
                           "entry": [entry(n, {"method": "PUT", "url": f"Basic/{n}"}) for n in range(450)]}
    assert fhir.validate(doc) == []
    doc["entry"][420] = entry(420, {"method": "PUT"})            # a request without its url
    problems = fhir.validate(doc)
    assert problems and problems[0].startswith(f"the Bundle (entries from {2 * fhir.VALIDATE_ENTRIES + 1})")
