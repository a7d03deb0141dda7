"""The stick export holds one record at a time, not the export (issue 22: a reader's memory is
bounded by the largest record, not the file), and gives the same three files as before: the
raw export, the sessions CSV and the report made from the whole export in memory
(``bundle.make``), byte for byte."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bedside.core import config
from bedside.core.records import T
from bedside.journal import export
from bedside.journal.journal import Journal
from bedside.report import bundle
from bedside.stick import export as stick_export
from bedside.unit.offline import OfflineWriter
from tests.conftest import ROOT
from tests.rigs import hostile

MIB = 2**20
NOW = datetime(2026, 12, 7, 9, 41, tzinfo=UTC)


def whole_in_memory(data: Path, cfg: config.Config) -> list[bytes]:
    """The three files as the stick export made them before: every record in memory."""
    journal = Journal(data, ZoneInfo("UTC"), "export", readonly=True)
    try:
        header, lines = export.collect(journal, exported=NOW)
    finally:
        journal.close()
    made = bundle.make(header, lines, source="f/journal.jsonl", generated=NOW.astimezone(cfg.tz))
    return [made.export, made.csv, made.html]


def streamed(data: Path, cfg: config.Config) -> list[bytes]:
    with stick_export.collect(data, cfg, NOW, "f") as got:
        raw, csv_file, html = got.files
        assert raw.writer is not None
        buf = io.StringIO(newline="")
        raw.writer(buf)
        out = [buf.getvalue().encode("utf-8"), csv_file.data, html.data]
        assert raw.size == len(out[0])       # the size the free-space check was given
    return out


def test_a_week_gives_the_same_three_files_byte_for_byte(week: Path, tmp_path: Path) -> None:
    data = shutil.copytree(week, tmp_path / "data")
    # A record whose canonical line holds characters a line reader splits at (U+2028, U+0085):
    # the report must see what the file's reader sees.
    with OfflineWriter(data) as writer:
        writer.append(T.SETTINGS_REFUSED, {"reason": "not_confirmed", "problem": "one\u2028two\x85three"})
    cfg = config.Config()
    assert streamed(data, cfg) == whole_in_memory(data, cfg)


def test_damaged_segments_give_the_same_three_files_byte_for_byte(tmp_path: Path) -> None:
    data = tmp_path / "data"
    hostile.damaged_journal(data, MIB, 2)
    cfg = config.Config()
    assert streamed(data, cfg) == whole_in_memory(data, cfg)


PEAK = """
import os, sys, tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from bedside.core import config
from bedside.stick import export, files
data, out = Path(sys.argv[1]), sys.argv[2]
root = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
tracemalloc.start()
with export.collect(data, config.Config(), datetime.now(UTC), "x") as got:
    written = files.write_export(root, "x", got.files)
print(tracemalloc.get_traced_memory()[1], got.header["records"], written.bytes)
"""


def traced_peak(data: Path, out: Path) -> tuple[int, int, int]:
    """(peak traced bytes, records, bytes written) of one stick export's reading and writing,
    in a process of its own."""
    out.mkdir()
    got = subprocess.run([sys.executable, "-c", PEAK, str(data), str(out)], capture_output=True, text=True,
                         check=True, cwd=ROOT, timeout=300).stdout.split()
    peak, records, size = (int(x) for x in got)
    return peak, records, size


@pytest.mark.timeout(600)
def test_the_peak_is_the_same_bound_for_a_small_and_a_six_times_larger_journal(tmp_path: Path) -> None:
    small, large = tmp_path / "small", tmp_path / "large"
    hostile.damaged_journal(small, MIB, 1)
    hostile.damaged_journal(large, 6 * MIB, 1)
    peak_small, records_small, bytes_small = traced_peak(small, tmp_path / "out-small")
    peak_large, records_large, bytes_large = traced_peak(large, tmp_path / "out-large")
    assert records_large >= 5 * records_small and bytes_large >= 4 * bytes_small
    # Before, the peak was about 4 KiB a record (some 60 MiB here for the larger journal).
    assert peak_large <= 6 * MIB, (peak_small, peak_large)
    print(f"traced peak {peak_small / MIB:.1f} MiB for {records_small} records, "
          f"{peak_large / MIB:.1f} MiB for {records_large}")
    assert peak_large <= peak_small + MIB, (peak_small, peak_large)


def test_a_card_of_many_crafted_names_costs_the_export_their_count_not_their_memory(
        week: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Names listed whole held about 380 bytes each, with their descriptions about 5 KiB: a
    million crafted ones would pass the service's memory limit, and the export would never be
    made. The export's listing is a budget's (``salvage.LIST_FILES``), and the unit's records
    are all exported. Held by the count of names a listing held (tracemalloc would count other
    threads' allocations too, when the suite runs)."""
    from bedside.journal import salvage, segments
    from tests.conftest import journal_records

    monkeypatch.setattr(salvage, "LIST_FILES", 100)      # each listed file is opened: kept few, for time
    monkeypatch.setitem(segments.counts, "names_held", 0)
    cfg = config.Config()
    data = shutil.copytree(week, tmp_path / "data")
    seqs = [r["seq"] for r in journal_records(data)]
    for n in range(100, 3_100):
        (data / f"journal-{n:06d}.sqlite").write_bytes(b"x" * 100)
    salvage.forget()
    raw = streamed(data, cfg)[0]
    lines = raw.decode("utf-8").splitlines()[1:]
    assert [json.loads(line)["seq"] for line in lines] == seqs            # every record of the unit's
    assert segments.counts["names_held"] <= 100 + 3          # listed whole: 3,000 and more


def test_lines_that_are_not_records_are_named_up_to_the_readers_limit_and_counted(
        week: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record whose canonical line a line reader splits (U+2028) leaves pieces that are not
    records: the stick's report names them as `bedside report` does, the first few and a count,
    rather than holding a name for each (a crafted journal of them grew the list without end)."""
    from bedside.report import model

    monkeypatch.setattr(model, "MAX_DAMAGED", 3)
    data = shutil.copytree(week, tmp_path / "data")
    with OfflineWriter(data) as writer:
        for _ in range(5):
            writer.append(T.SETTINGS_REFUSED, {"reason": "not_confirmed", "problem": "one\u2028two"})
    journal = Journal(data, ZoneInfo("UTC"), "export", readonly=True)
    try:
        made = bundle.stream(journal, exported=NOW, source="f/journal.jsonl", generated=NOW)
    finally:
        journal.close()
    problems = [str(p) for p in made.report.verdict.problems]
    assert sum("of the file is not a record" in p for p in problems) == 3
    # Each such record is two pieces: the line before U+2028 and the one after.
    assert "and 7 more lines of the file are not records (counted, not listed)" in problems
