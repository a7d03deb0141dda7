"""The adherence report: records in, an HTML report and a CSV of sessions out.

Callers (``bedside report``, the serial download tool, the stick export) use:

* ``read(path)`` — a data directory (the journal, read-only) or an export file, its records
  read a record at a time each time they are iterated; ``make_from(records)`` — its verdict
  and adherence model in one pass;
* ``load(path)`` and ``make(records, header=...)`` — the same, the records held in a list (no
  command reads a unit's record so now; kept as what the reading a record at a time is tested against);
* ``files.write(records, html_path, csv_path, header=...)`` — both files, each written to a
  temporary name, synced and renamed, so a reader never sees half a report.

``files.html_text`` and ``csv_text`` give the file contents without touching the disk.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from bedside import sheet
from bedside.core.errors import BedsideError
from bedside.core.records import T
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


def _not_an_export(source: str, n: int, line: str) -> ReportError:
    """Why a file whose first line ``n`` is not a JSON record is no export (the CSV export is named)."""
    if line.startswith("seq,time,type"):
        return ReportError(f"{source} is the CSV export; the report needs the JSONL export "
                           "(bedside log export --data DIR > FILE.jsonl)")
    return ReportError(f"{source} is not a bedside export (line {n} is not a JSON record)")


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
        raise _not_an_export(source, n0, line0)
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


# --- reading a record at a time -------------------------------------------------------

MAX_DAMAGED = 1_000        # lines that are not records named in a streamed read; the rest counted
_CHUNK = 4 * MAX_LINE      # a line's bytes read at once: MAX_LINE characters are at most this many


class Records:
    """One unit's records, read again from where they are each time they are iterated, never
    held: an export file a line at a time (``ExportFile``), a data directory's journal
    (``DataDir``), or records given (``Given``). The first pass that reads them all also
    checks them as ``check`` does (``verdict``); what ``make_from`` and ``files.write_from``
    make of them is what ``make`` makes of ``load``'s list."""

    def __init__(self, source: str, header: dict[str, Any] | None = None, link: tuple[int, str] | None = None,
                 ) -> None:
        self.source = source
        self.header = header
        self.link = link                 # (seq, hash) the first record follows, when known but not from a header
        self.damaged: list[str] = []     # lines that are not records (the first MAX_DAMAGED)
        self.damaged_more = 0            # ... and how many more
        self.count = 0                   # records given by the first pass
        self.unit: str | None = None     # the last ``start`` record's unit, as the first pass saw it
        self.last: Mapping[str, Any] | None = None   # the last record the first pass gave
        self._checker: Any = None
        self._done = False

    def _given(self) -> Iterable[dict[str, Any]]:
        raise NotImplementedError

    @property
    def read_once(self) -> bool:
        """Whether a pass has read them all (``count``, ``unit``, ``last`` and the verdict are its)."""
        return self._done

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._done:
            yield from self._given()
            return
        from bedside.journal import verify

        c = verify.Checker(link=self.link)
        self.damaged, self.damaged_more, self.count, self.unit, self.last = [], 0, 0, None, None
        for rec in self._given():
            if self.count == 0 and self.header is not None:
                # As ``check`` links an export's first record to the header's note of the one before.
                first, seq0 = self.header.get("first"), rec.get("seq")
                if isinstance(first, Mapping) and isinstance(seq0, int) and seq0 > 1 and first.get("seq") == seq0:
                    c.link = (seq0 - 1, str(first.get("prev")))
            c.feed(rec)
            self.count += 1
            if rec.get("type") == T.START and isinstance(rec.get("unit"), str):
                self.unit = rec["unit"]
            self.last = rec
            yield rec
        self._finished()
        self._checker, self._done = c, True

    def _finished(self) -> None:
        """At the end of the first pass: what ``parse_export`` refuses once it has read every line."""

    def _not_record(self, n: int) -> None:
        if len(self.damaged) < MAX_DAMAGED:
            self.damaged.append(f"line {n} of the file is not a record")
        else:
            self.damaged_more += 1

    @property
    def all_damaged(self) -> list[str]:
        more = [f"and {self.damaged_more} more lines of the file are not records (counted, not listed)"] \
            if self.damaged_more else []
        return [*self.damaged, *more]

    def verdict(self, source: str = "report") -> Any:
        """The journal checker's verdict (``check``'s), from the first pass (made now if there was none)."""
        if not self._done:
            for _ in self:
                pass
        return finish_check(self._checker, self.header, self.all_damaged, self.count > 0, source)


class Given(Records):
    """Records already being read by someone else (a ward's merged exports), iterated once or more."""

    def __init__(self, records: Iterable[dict[str, Any]], source: str, link: tuple[int, str] | None = None) -> None:
        super().__init__(source, link=link)
        self._records = records

    def _given(self) -> Iterable[dict[str, Any]]:
        return self._records


class DataDir(Records):
    """A unit's data directory: its journal opened (read-only) for each pass."""

    def __init__(self, path: Path) -> None:
        super().__init__(path.name or str(path))
        self.path = path

    def _given(self) -> Iterator[dict[str, Any]]:
        from zoneinfo import ZoneInfo

        from bedside.journal.journal import Journal

        # Only reads: the time zone and boot id matter to writers alone.
        journal = Journal(self.path, ZoneInfo("UTC"), "report", readonly=True)
        try:
            yield from journal.records()
        finally:
            journal.close()


class ExportFile(Records):
    """An export file (or bare JSON lines), read a line at a time: the records and damaged lines
    ``parse_export`` gives for the whole file, split and parsed as it splits and parses them.
    The file's first line is read (and refused, as ``load`` refuses it) when this is made; what
    only the whole file shows (not UTF-8, larger than MAX_EXPORT, no record) ends the first pass
    with the same ReportError. (A line of more than 4 MiB between newlines is one damaged line,
    where ``parse_export`` would also split it at other line breaks.)"""

    def __init__(self, path: Path) -> None:
        super().__init__(path.name)
        self.path = path
        self._skip = 0                 # lines before the first record (blank lines and the header)
        with self._open() as f:
            for n, raw in self._lines(f):
                line = raw.strip()
                if not line:
                    continue
                first = _json_object(line)
                if first is None:
                    raise _not_an_export(self.source, n, line)
                if "bedside_export" in first:
                    version = first["bedside_export"]
                    if version != EXPORT_FORMAT:
                        raise ReportError(f"{self.source} is in export format {version!r}; this bedside reads "
                                          f"format {EXPORT_FORMAT}: use a newer bedside to read it")
                    self.header, self._skip = first, n
                else:
                    self._skip = n - 1
                return
        raise ReportError(f"{self.source} is empty: there are no records to report on")

    def _open(self) -> IO[bytes]:
        path = self.path
        if not path.exists():
            raise ReportError(f"{path} does not exist (give an export file or a unit's data directory)")
        try:
            # Without blocking: a fifo in the file's place gives nothing, never a wait.
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
            return open(fd, "rb")
        except OSError as e:
            raise ReportError(f"cannot read {path}: {e.strerror}") from None

    def _lines(self, f: IO[bytes]) -> Iterator[tuple[int, str]]:
        """(line number, text) as ``parse_export`` numbers the lines of the decoded file."""
        n, size = 0, 0
        while True:
            try:
                raw = f.readline(_CHUNK + 1)
            except OSError as e:
                raise ReportError(f"cannot read {self.path}: {e.strerror}") from None
            if not raw:
                return
            size += len(raw)
            if len(raw) > _CHUNK and not raw.endswith(b"\n"):
                if n == 0:
                    raise ReportError(f"{self.path} is not a bedside export: its first line is longer than "
                                      f"{MAX_LINE // 1024} KiB, far beyond any record")
                ended = False
                while not ended:                         # the rest of the line, never held
                    raw = b""
                    raw = f.readline(MAX_LINE)
                    size += len(raw)
                    ended = not raw or raw.endswith(b"\n")
                n += 1
                yield n, "\x00"                            # one line that is not a record
                raw = b""
            if size > MAX_EXPORT:
                raise ReportError(f"{self.path} is not a bedside export: it is larger than "
                                  f"{MAX_EXPORT // 2**20} MiB, more than a unit records in decades")
            if not raw:
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ReportError(f"{self.source} is not a bedside export (not UTF-8 text)") from None
            # (a newline never falls inside a UTF-8 character: the file's lines are these lines' lines)
            for piece in text.splitlines():
                n += 1
                if n == 1 and len(piece) > MAX_LINE:
                    raise ReportError(f"{self.path} is not a bedside export: its first line is longer than "
                                      f"{MAX_LINE // 1024} KiB, far beyond any record")
                yield n, piece

    def _given(self) -> Iterator[dict[str, Any]]:
        with self._open() as f:
            for n, raw in self._lines(f):
                if n <= self._skip:
                    continue
                line = raw.strip()
                if not line:
                    continue
                rec = _json_object(line)
                if rec is None or "seq" not in rec or "type" not in rec:
                    if not self._done:
                        self._not_record(n)
                    continue
                yield rec

    def _finished(self) -> None:
        if not self.count and not self.damaged and self.header is None:
            raise ReportError(f"{self.source} holds no records")
        if not self.count and self.damaged:
            raise ReportError(f"{self.source} is not a bedside export (no line is a record)")


def read(path: Path) -> Records:
    """``load`` a record at a time: a data directory or an export file, its records read again
    from it each time they are iterated. Raises ReportError for a file that is not an export
    (or JournalError for a data directory, when its records are first read)."""
    if path.is_dir():
        return DataDir(path)
    return ExportFile(path)


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
        # (and, as ``bedside log verify`` names them, the files the unit had not read or could not)
        extra += verify.header_problems(header, c) + verify.unreadable(header)
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


def make_from(records: Records, *, episode: str | None = None) -> Report:
    """``make`` for records read a record at a time (``read``): one pass makes the model and
    checks the records; the same Report as ``make`` of the whole list."""
    model = adherence.build(records, episode=episode)
    if episode is not None and all(e.id != episode for e in model.episodes):
        known = ", ".join(e.id for e in model.episodes)
        raise ReportError(f"episode {episode} is not in this record; " +
                          (f"it holds: {known}" if known else "no admission is recorded in it"))
    return Report(model, verification(records.verdict()), records.header, records.source)


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
