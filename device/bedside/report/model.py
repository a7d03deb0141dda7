"""The adherence report: records in, an HTML report and a CSV of sessions out.

Callers (``bedside report``, the serial download tool, the stick export) use:

* ``load(path)`` — read a data directory (the journal, read-only) or an export file;
* ``make(records, header=...)`` — verdict and adherence model, pure;
* ``files.write(records, html_path, csv_path, header=...)`` — both files, each written to a
  temporary name, synced and renamed, so a reader never sees half a report.

``files.html_text`` and ``csv_text`` give the file contents without touching the disk.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bedside import sheet
from bedside.core.errors import BedsideError
from bedside.durable import MAX_LINE, TooLarge, json_loads, read_bounded
from bedside.journal import chain
from bedside.report import adherence
from bedside.report.adherence import Adherence

EXPORT_FORMAT = 1          # the ``bedside_export`` header version this reader understands


class ReportError(BedsideError):
    """The input cannot be read as a bedside record; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Loaded:
    records: list[dict[str, Any]]
    header: dict[str, Any] | None       # an export file's first line, if it has one
    damaged: list[str]                   # lines that are not records (shown as verification failures)
    source: str                          # the input's name, for the report's footer


@dataclass(frozen=True, slots=True)
class Verification:
    ok: bool
    checked: int
    head_seq: int | None
    head_hash: str | None
    problems: tuple[str, ...]
    method: str

    @property
    def head(self) -> str:
        """As the unit's nurse screen shows it: seq/first 8 hex digits."""
        if self.head_seq is None or self.head_hash is None:
            return "-"
        return f"{self.head_seq}/{chain.short(self.head_hash)}"


@dataclass(frozen=True, slots=True)
class Report:
    model: Adherence
    verdict: Verification
    header: Mapping[str, Any] | None
    source: str


# --- reading -------------------------------------------------------------------------

MAX_EXPORT = 256 * 2**20      # a unit records a few MiB a year: a larger "export" is something else

def load(path: Path) -> Loaded:
    """Records from a data directory or an export file. Raises ReportError (or JournalError)."""
    if path.is_dir():
        return _load_dir(path)
    if not path.exists():
        raise ReportError(f"{path} does not exist (give an export file or a unit's data directory)")
    try:
        # An endless first line (/dev/zero, a stray binary) is refused before reading the rest.
        with open(path, "rb") as f:
            head = f.read(MAX_LINE + 1)
        if len(head) > MAX_LINE and b"\n" not in head:
            raise ReportError(f"{path} is not a bedside export: its first line is longer than "
                              f"{MAX_LINE // 1024} KiB, far beyond any record")
        data = read_bounded(path, MAX_EXPORT)
    except TooLarge:
        raise ReportError(f"{path} is not a bedside export: it is larger than {MAX_EXPORT // 2**20} MiB, "
                          "more than a unit records in decades") from None
    except OSError as e:
        raise ReportError(f"cannot read {path}: {e.strerror}") from None
    return parse_export(data, path.name)


def _load_dir(path: Path) -> Loaded:
    from zoneinfo import ZoneInfo

    from bedside.journal.journal import Journal

    # Only reads: the time zone and boot id matter to writers alone.
    journal = Journal(path, ZoneInfo("UTC"), "report", readonly=True)
    try:
        return Loaded(list(journal.records()), None, [], path.name or str(path))
    finally:
        journal.close()


def parse_export(data: bytes, source: str = "export") -> Loaded:
    """An export: JSONL records, optionally after a ``{"bedside_export": 1, ...}`` header line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ReportError(f"{source} is not a bedside export (not UTF-8 text)") from None
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)]
    lines = [(n, line) for n, line in lines if line]
    if not lines:
        raise ReportError(f"{source} is empty: there are no records to report on")
    n0, line0 = lines[0]
    first = _json_object(line0)
    if first is None:
        if line0.startswith("seq,time,type"):
            raise ReportError(f"{source} is the CSV export; the report needs the JSONL export "
                              "(bedside log export --data DIR > FILE.jsonl)")
        raise ReportError(f"{source} is not a bedside export (line {n0} is not a JSON record)")
    header: dict[str, Any] | None = None
    if "bedside_export" in first:
        version = first["bedside_export"]
        if version != EXPORT_FORMAT:
            raise ReportError(f"{source} is in export format {version!r}; this bedside reads format "
                              f"{EXPORT_FORMAT}: use a newer bedside to read it")
        header, lines = first, lines[1:]
    records: list[dict[str, Any]] = []
    damaged: list[str] = []
    for n, line in lines:
        rec = _json_object(line)
        if rec is None or "seq" not in rec or "type" not in rec:
            damaged.append(f"line {n} of the file is not a record")
        else:
            records.append(rec)
    if not records and not damaged and header is None:
        raise ReportError(f"{source} holds no records")
    if not records and damaged:
        raise ReportError(f"{source} is not a bedside export (no line is a record)")
    return Loaded(records, header, damaged, source)


def _json_object(line: str) -> dict[str, Any] | None:
    try:
        v = json_loads(line) if len(line) <= MAX_LINE else None
    except ValueError:
        return None
    return v if isinstance(v, dict) else None


# --- judging the record --------------------------------------------------------------

def verdict(records: Sequence[Mapping[str, Any]], header: Mapping[str, Any] | None = None,
            damaged: Sequence[str] = ()) -> Verification:
    """Whether the record can be trusted, judged exactly as ``bedside log verify`` judges it.

    The journal's own checker (``bedside.verify``): every hash recomputed, every ``prev``
    link, gap-free ``seq``, boots and monotonic time, seal epochs, and an export header's
    head against the last record. An export that starts where a pruned journal starts is
    checked from the header's note of the record before it. Seals are counted but cannot
    be checked without the hospital's key (``bedside log verify --key``).
    """
    return verification(check(records, header, damaged))


def verification(v: Any) -> Verification:
    """The report's verdict from the journal checker's (``check``)."""
    head_seq, head_hash = v.head if v.head is not None else (None, None)
    method = "each checked against its hash and the record before it"
    if v.seals_unchecked:
        method += f"; {v.seals_unchecked} seals present (checked with the hospital's key by bedside log verify --key)"
    return Verification(v.ok, v.records, head_seq, head_hash, tuple(str(p) for p in v.problems), method)


def check(records: Sequence[Mapping[str, Any]], header: Mapping[str, Any] | None = None,
          damaged: Sequence[str] = (), source: str = "report", link: tuple[int, str] | None = None) -> Any:
    """The journal checker's own verdict (``bedside.journal.verify.Verification``) on these records;
    ``link``: the (seq, hash) the first record follows, when it is known but not from a header."""
    from bedside.journal import verify

    c = verify.Checker(link=link)
    if header is not None and records:
        first = header.get("first")
        seq0 = records[0].get("seq")
        if isinstance(first, Mapping) and isinstance(seq0, int) and seq0 > 1 and first.get("seq") == seq0:
            c.link = (seq0 - 1, str(first.get("prev")))
    for rec in records:
        c.feed(rec)
    return finish_check(c, header, damaged, bool(records), source)


def finish_check(c: Any, header: Mapping[str, Any] | None, damaged: Sequence[str], any_records: bool,
                 source: str = "report") -> Any:
    """``check``'s verdict once the checker ``c`` (``verify.Checker``) has been fed every record."""
    from bedside.journal import verify

    extra = [verify.Problem(None, "damage", d) for d in damaged]
    if header is not None:
        extra += verify.header_problems(header, c)
    if not any_records:
        extra.append(verify.Problem(None, "format", "there are no records"))
    return c.verdict(source, extra=extra)


# --- the report ----------------------------------------------------------------------

def make(records: Sequence[Mapping[str, Any]], *, header: Mapping[str, Any] | None = None,
         damaged: Sequence[str] = (), episode: str | None = None, source: str = "") -> Report:
    model = adherence.build(records, episode=episode)
    if episode is not None and all(e.id != episode for e in model.episodes):
        known = ", ".join(e.id for e in model.episodes)
        raise ReportError(f"episode {episode} is not in this record; " +
                          (f"it holds: {known}" if known else "no admission is recorded in it"))
    return Report(model, verdict(records, header, damaged), header, source)


CSV_FIELDS = ["session", "day", "kind", "episode", "post_op_day", "due", "offered", "outcome", "missed_reason",
              "deferred", "merged_into", "prompted", "started", "finished", "late_min", "late", "reps", "planned",
              "snoozes", "interrupted_by", "utc_offset"]


def csv_text(report: Report) -> str:
    """One row per scheduled session, times in the unit's local time as spreadsheets read them
    (``sheet.py``), the offset from UTC in a column of its own."""
    m = report.model
    episodes = {e.id: e for e in m.episodes}
    out = io.StringIO()
    out.write(sheet.BOM)
    w = csv.writer(out, lineterminator="\r\n")   # RFC 4180, as spreadsheets expect
    w.writerow(CSV_FIELDS)
    for s in m.sessions:
        ep = episodes.get(s.episode) if s.episode else None
        pod = ep.pod(s.day) if ep else None
        missed = s.reason if s.outcome == adherence.MISSED else None
        cut = s.reason if s.outcome == adherence.INTERRUPTED else None
        w.writerow([_cell(s.id), s.day.isoformat(), _cell(s.kind), _cell(s.episode), _num(pod), _iso(s.due),
                    _iso(s.offer), s.outcome, _cell(missed), "yes" if s.deferred else "no", _cell(s.merged_into),
                    _iso(s.prompted), _iso(s.started), _iso(s.finished), _num(s.late_min),
                    "yes" if s.late else "no", _reps(s), _num(s.planned), s.snoozes, _cell(cut), sheet.offset(s.due)])
    if m.more_sessions:
        # Past the model's budget (adherence.SESSIONS_A_DAY, SESSIONS_LISTED): said in the file itself.
        w.writerow([f"{m.more_sessions} more sessions are counted in the report but not listed here; every record "
                    "is in the journal itself (bedside log export)"] + [""] * (len(CSV_FIELDS) - 1))
    return out.getvalue()


def _reps(s: adherence.SessionOutcome) -> str:
    # A guide cut off before anything said how far it got: "unknown", never a guess or a blank.
    return "unknown" if s.outcome == adherence.INTERRUPTED and s.reps is None else _num(s.reps)


def _iso(t: datetime | None) -> str:
    return sheet.stamp(t)


def _num(v: int | None) -> str:
    return "" if v is None else str(v)


_cell = sheet.cell


def summary(report: Report) -> str:
    """One line for a terminal."""
    m, v = report.model, report.verdict
    trust = f"record verified, head {v.head}" if v.ok else f"RECORD FAILED VERIFICATION ({len(v.problems)} problem(s))"
    stays = m.stays if any(st.episode is not None for st in m.stays) else ()
    if not stays:
        return f"{len(m.days)} day(s), {_done_of(m.totals)}; {trust}"
    return f"{len(m.days)} day(s); " + "; ".join(f"{st.label}: {_done_of(st.totals)}" for st in stays) + f"; {trust}"


def _done_of(c: adherence.Counts) -> str:
    if not c.due and c.nobody:
        return f"{c.nobody} session(s) offered with no patient to do them (not counted)"
    rate = c.adherence
    return f"{c.done} of {c.due} sessions done ({f'{rate:.0%}' if rate is not None else 'no sessions due'})"


def iter_problems(v: Verification, limit: int = 5) -> Iterable[str]:
    yield from v.problems[:limit]
    if len(v.problems) > limit:
        yield f"... and {len(v.problems) - limit} more"
