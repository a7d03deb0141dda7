"""Every format the journal leaves the unit in: the export file, and the journal CSV.

The export file is a header line, then every record exactly as the journal holds it.

JSONL. Line 1 is the header, an object with ``"bedside_export": 1``; every following line
is one record in canonical JSON (``chain.canonical``, including its ``hash``). The header
says whose journal it is and where its chain ends (``head``), so a file cut short is
caught, and a later export can be checked as an extension of this one
(``bedside log verify --extends``). docs/journal.md describes every header field.

The journal CSV (``bedside log export --format csv``) is for reading the records in a
spreadsheet: one row per record, its envelope in columns and its own fields in ``details``;
it is not verifiable (the export file is).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bedside import __version__, sheet
from bedside.core import wall
from bedside.core.errors import BedsideError
from bedside.core.records import ENVELOPE_KEYS, T
from bedside.durable import MAX_LINE, json_loads, refuse_constant
from bedside.journal import chain
from bedside.journal.journal import Journal

FORMAT = 1


class NotAnExport(BedsideError):
    """The file is not a bedside export, or cannot be read; the message says which."""


def collect(journal: Journal, since_seq: int = 0, exported: datetime | None = None) -> tuple[dict[str, Any], list[str]]:
    """(header, record lines) for the records after ``since_seq`` up to the journal's head now."""
    head_seq, head_hash = journal.head()
    records: list[dict[str, Any]] = []
    for rec in journal.records(since_seq):
        if rec["seq"] > head_seq:
            break       # written after we looked: the next export has it
        records.append(rec)
    lo = records[0]["seq"] if records else head_seq + 1
    hi = records[-1]["seq"] if records else head_seq
    header = header_for(records, since_seq=since_seq, segments=_overlapping(journal, lo, hi), exported=exported,
                        empty_head=(head_seq, head_hash))
    if journal.gaps:
        header["unreadable"] = [g.header() for g in journal.gaps]
    return header, [chain.canonical(rec) for rec in records]


class _Summary:
    """What the header says of the records, taken one record at a time."""

    def __init__(self) -> None:
        self.unit: str | None = None
        self.first: dict[str, Any] | None = None
        self.seals: dict[str, Any] = {}
        self.last: Mapping[str, Any] | None = None
        self.count = 0

    def add(self, rec: Mapping[str, Any]) -> None:
        if self.first is None:
            self.first = {"seq": rec["seq"], "prev": rec["prev"]}
        if rec["type"] == T.START and isinstance(rec.get("unit"), str):
            self.unit = rec["unit"]
        if rec["type"] == T.SEAL:
            seals = self.seals
            if not seals:
                seals.update(key_id=rec.get("key_id"), count=0, first_epoch=rec.get("epoch"))
            seals["count"] += 1
            seals.update(last_epoch=rec.get("epoch"), last_sealed_seq=rec["seq"] - 1, key_id=rec.get("key_id"))
        self.last = rec
        self.count += 1

    def header(self, *, since_seq: int, segments: list[dict[str, Any]], exported: datetime | None,
               empty_head: tuple[int, str] | None) -> dict[str, Any]:
        last = self.last
        head_seq, head_hash = (last["seq"], last["hash"]) if last else (empty_head or (0, chain.GENESIS))
        return {
            "bedside_export": FORMAT,
            "unit": self.unit,
            "exported": (exported or datetime.now(UTC)).isoformat(timespec="seconds"),
            "head": {"seq": head_seq, "hash": head_hash},
            "first": self.first,
            "records": self.count,
            "since_seq": since_seq,
            "segments": segments,
            "seals": self.seals or None,
            "version": __version__,
        }


def header_for(records: Iterable[Mapping[str, Any]], *, since_seq: int = 0, segments: list[dict[str, Any]],
               exported: datetime | None = None, empty_head: tuple[int, str] | None = None) -> dict[str, Any]:
    """The header line for these records (as exported), wherever they came from: the unit's own
    journal, or a copy downloaded over the serial link (``segments`` then as the unit reported them)."""
    summary = _Summary()
    for rec in records:
        summary.add(rec)
    return summary.header(since_seq=since_seq, segments=segments, exported=exported, empty_head=empty_head)


class ExportChanged(BedsideError):
    """The journal gave other records the second time it was read for one export."""


def stream(journal: Journal, out: IO[str], since_seq: int = 0, exported: datetime | None = None,
           ) -> dict[str, Any]:
    """``collect`` and ``write`` holding one record at a time, not the export: a first pass over
    the records makes the header (it comes first and counts them), a second writes them. The
    same bytes as ``write(out, *collect(...))``; returns the header. Raises ExportChanged if the
    second pass does not give the records the first did (a damaged file changed between)."""
    first = summarise(journal, since_seq, exported)
    write_summarised(journal, out, first)
    return first.header


class Summarised:
    """The first pass of a streamed export: its header, and what the second pass must give again."""

    def __init__(self, header: dict[str, Any], summary: _Summary, since_seq: int) -> None:
        self.header = header
        self.summary = summary
        self.since_seq = since_seq


def _drain(records: Iterator[Mapping[str, Any]]) -> None:
    for _ in records:
        pass


def summarise(journal: Journal, since_seq: int = 0, exported: datetime | None = None,
              consume: Callable[[Iterator[Mapping[str, Any]]], object] = _drain) -> Summarised:
    """The first pass of ``stream``: every record up to the head now, one at a time, for the
    header. ``consume`` is given the records as they are read (an iterator: the stick export
    makes its report from them in the same pass); whatever it leaves is read after it."""
    head_seq, head_hash = journal.head()
    summary = _Summary()

    def records() -> Iterator[Mapping[str, Any]]:
        for rec in journal.records(since_seq):
            if rec["seq"] > head_seq:
                break       # written after we looked: the next export has it
            summary.add(rec)
            yield rec

    given = records()
    consume(given)
    _drain(given)
    gaps = [g.header() for g in journal.gaps]
    lo = summary.first["seq"] if summary.first else head_seq + 1
    hi = summary.last["seq"] if summary.last else head_seq
    header = summary.header(since_seq=since_seq, segments=_overlapping(journal, lo, hi), exported=exported,
                            empty_head=(head_seq, head_hash))
    if gaps:
        header["unreadable"] = gaps
    return Summarised(header, summary, since_seq)


def write_summarised(journal: Journal, out: IO[str], first: Summarised) -> None:
    """The second pass of ``stream``: the header line, then the same records, one at a time."""
    summary = first.summary
    out.write(json.dumps(first.header, sort_keys=True, separators=(",", ":")) + "\n")
    again = _Summary()
    if summary.last is not None:
        hi = summary.last["seq"]
        for rec in journal.records(first.since_seq):
            if rec["seq"] > hi:
                break
            again.add(rec)
            out.write(chain.canonical(rec) + "\n")
    if (again.count, again.last and again.last["hash"]) != (summary.count, summary.last and summary.last["hash"]):
        raise ExportChanged(f"the journal gave {again.count} records the second time it was read for this export, "
                            f"{summary.count} the first: a damaged file changed while it was read; export again")


def _overlapping(journal: Journal, lo: int, hi: int) -> list[dict[str, Any]]:
    """The segments holding records lo..hi (a segment runs up to the next one's first seq)."""
    segs = journal.segments()
    out = []
    for i, s in enumerate(segs):
        end = segs[i + 1].first_seq - 1 if i + 1 < len(segs) else hi
        if s.first_seq <= hi and end >= lo:
            out.append(s.header())
    return out


def write(out: IO[str], header: dict[str, Any], lines: list[str]) -> None:
    out.write(json.dumps(header, sort_keys=True, separators=(",", ":")) + "\n")
    for line in lines:
        out.write(line + "\n")


# A line as ``json_loads`` reads it, without json.loads' wrappers for the usual line (JSON from
# its first character to a newline): a ward reads hundreds of thousands. Anything else, and
# every failure, is left to ``json_loads`` itself, which gives the same value or error.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(parse_constant=refuse_constant).scan_once  # type: ignore[attr-defined]


def _line_json(text: str) -> Any:
    try:
        obj, end = _scan(text, 0)
    except (StopIteration, RecursionError):
        return json_loads(text)
    if end == len(text) or text[end:] == "\n":
        return obj
    return json_loads(text)


def read(path: Path) -> tuple[dict[str, Any], Iterator[tuple[int, Any]]]:
    """The header and an iterator of (line number, parsed line or the raw text if it is not JSON).

    Lines are read with a bound (``MAX_LINE``): a file with an endless line, or a device such
    as /dev/zero, is refused as not an export instead of filling the memory."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the generator
    except FileNotFoundError:
        raise NotAnExport(f"{path} does not exist") from None
    except IsADirectoryError:
        raise NotAnExport(f"{path} is a directory, not a bedside export (give --data DIR for a data directory)") \
            from None
    except OSError as e:
        raise NotAnExport(f"{path} cannot be read ({e.strerror})") from None

    def line(n: int) -> bytes:
        try:
            raw: bytes = f.readline(MAX_LINE + 1)
        except OSError as e:
            f.close()
            raise NotAnExport(f"{path} cannot be read at line {n} ({e.strerror})") from None
        if len(raw) > MAX_LINE:
            f.close()
            raise NotAnExport(f"{path} is not a bedside export: line {n} is longer than "
                              f"{MAX_LINE // 1024} KiB, far beyond any record")
        return raw

    try:
        header = json_loads(line(1).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        f.close()
        raise NotAnExport(f"{path} is not a bedside export (its first line is not a bedside_export header)") \
            from None
    if not isinstance(header, dict) or "bedside_export" not in header:
        f.close()
        raise NotAnExport(f"{path} is not a bedside export (its first line has no bedside_export key)")
    if header["bedside_export"] != FORMAT:
        f.close()
        raise NotAnExport(f"{path} is a bedside export of format {header['bedside_export']!r}; "
                          f"this version reads format {FORMAT}")

    def lines() -> Iterator[tuple[int, Any]]:
        with f:
            n = 1
            while raw := line(n := n + 1):
                text = raw.decode("utf-8", errors="replace")
                if not text.strip():
                    continue
                try:
                    yield n, _line_json(text)
                except ValueError:
                    yield n, text.rstrip("\n")

    return header, lines()


CSV_FIELDS = ["seq", "time", "utc_offset", "type", "session", "due", "tq", "details", "hash"]


def write_csv(out: IO[str], records: Iterable[Mapping[str, Any]]) -> None:
    """The journal CSV: a header row, then one row per record. Made for spreadsheets as the
    reports' CSVs are (a byte-order mark, local date-times a spreadsheet reads as dates, the
    offset beside them, nothing that starts a formula); the export file is the exact record."""
    out.write(sheet.BOM)
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_FIELDS)
    for rec in records:
        details = "; ".join(f"{k}={json.dumps(v) if not isinstance(v, str) else v}"
                            for k, v in sorted(rec.items()) if k not in ENVELOPE_KEYS)
        t, due = wall.aware(rec.get("time")), wall.aware(rec.get("due"))
        text = sheet.cell
        w.writerow([rec["seq"], sheet.stamp(t) or text(str(rec["time"])), sheet.offset(t), text(str(rec["type"])),
                    text(rec.get("session")), sheet.stamp(due) or text(rec.get("due")), text(str(rec["tq"])),
                    text(details), rec["hash"]])


