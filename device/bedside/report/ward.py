"""The ward: every unit's record found in a pile of downloads, merged per unit, one row each.

Inputs are whatever a nurse has at hand: folders of pulls (``UNIT-journal.jsonl`` beside
``UNIT-report.html``), a ward stick or its ``Bedside`` folder (one folder per export, each
with ``journal.jsonl`` and ``report.html``), single export files, or a unit's data
directory. Several exports of one unit (yesterday's pull, today's stick) are merged by seq:
where two overlap they must agree record for record (same hashes), and then every record
counts once. An export whose records at the same seq differ (another chain under the same
unit id: a unit replaced, re-imaged or copied) is not merged: the row says so and counts
only the newest chain.

Each unit's record is judged with the journal's own verifier (as ``bedside log verify``):
every export on its own with its header, and the merged chain as a whole.

Exports are streamed, not held: an export file with its header is read a line at a time
each time its records are needed (``ExportRecords``: once to verify it, once for its row; a
bare file or a data directory, ``model.read``, likewise), so a ward of 200 units, or one export
of 400,000 records, costs the memory of one record and of the model of the unit being read,
not of the files. A unit's several exports are merged a record of each at a time: one pass
over each (its first and last seq), one over them all merged by seq (``heapq.merge``: where
they overlap, every record's hash compared), and the merged records are merged again from the
files each time they are read.

However many exports the inputs hold, the ward is read in two passes (``scan``, then ``units``):
the first keeps only each export's path and unit id (its header's first line is read for it),
the second reads, merges and lets go one unit at a time. A page holds at most ``MAX_UNITS``
units and a walk examines at most ``MAX_ENTRIES`` files and folders; ``Plan.incomplete`` names
what either leaves out (docs/ward.md, "A folder of many exports").
"""

from __future__ import annotations

import contextlib
import heapq
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, TypeVar

from bedside.core.records import T
from bedside.report import adherence as ad
from bedside.report.model import Given, Loaded, Records, ReportError, read

STALE_AFTER = timedelta(hours=24)      # a record older than this no longer tells the ward how a bed is doing
PARTIAL_AFTER = timedelta(hours=1)     # a record older than this speaks for part of the window only
STRIP_DAYS = 3
_T = TypeVar("_T")
_SKIP_DIRS = {".bedside", "System Volume Information", "$RECYCLE.BIN", ".Trashes", ".Spotlight-V100"}


class ExportRecords:
    """The records of an export file, read from the file a line at a time each time they are
    iterated (what ``parse_export`` would give as records), never held. The first pass that
    reads them all also verifies them, as ``bedside log verify`` does, so a ward's row parses
    each line once: ``verdict`` is that pass's, or makes one if none has been made."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._verdict: Any = None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from bedside.journal import export, verify

        try:
            if self._verdict is None:
                lines, finish = verify.export_check(self.path)
                yield from _records_of(lines)
                self._verdict = finish()          # reached only when every line has passed
            else:
                _, plain = export.read(self.path)
                yield from _records_of(plain)
        except export.NotAnExport:
            return          # changed since it was first read: the verdict already stands

    @property
    def verdict(self) -> Any:
        if self._verdict is None:
            for _ in self:
                pass
        return self._verdict


def _records_of(lines: Iterable[tuple[int, Any]]) -> Iterator[dict[str, Any]]:
    for _n, obj in lines:
        if isinstance(obj, dict) and "seq" in obj and "type" in obj:
            yield obj


class _Deferred:
    """A streamed export's (or merged exports') verdict, made when first asked for (by then,
    usually, by the pass that read the records for the row)."""

    __slots__ = ("_made", "_verdict")

    def __init__(self, made: Callable[[], Any]) -> None:
        self._made = made
        self._verdict: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._verdict is None:
            self._verdict = self._made()
        return getattr(self._verdict, name)


@dataclass(frozen=True, slots=True)
class Source:
    """One export (or data directory) found among the inputs."""

    path: Path
    loaded: Loaded                 # its header (and, for a data directory or a bare file, its records)
    unit: str | None
    report: Path | None            # the unit's own report beside it, if any
    taken: datetime | None         # when it was exported (else its last record's time)
    verdict: Any                   # the journal checker's verdict on this export alone
    records: Iterable[dict[str, Any]] = ()   # streamed from the file (ExportRecords), or ``loaded``'s

    @property
    def head(self) -> int:
        return max((r["seq"] for r in self.records if isinstance(r.get("seq"), int)), default=0)


@dataclass(frozen=True, slots=True)
class UnitRecord:
    """One unit of the ward, its exports merged."""

    unit: str
    records: Iterable[dict[str, Any]]          # in seq order; one export's are streamed from its file
    exports: list[Source]                      # merged into ``records``, newest first
    contradicting: list[Source]                # same unit id, another chain: flagged, not merged
    apart: list[Source]                        # could not be joined (a gap between them): not counted
    verdict: Any                               # the merged chain's verdict
    failed: list[tuple[Source | None, Any]] | None  # see ``broken``; None: judged when first asked

    @property
    def broken(self) -> list[tuple[Source | None, Any]]:
        """Exports (or the merged chain: None) that failed verification. A single streamed
        export's is asked after its row has read it, so it is verified in that same pass."""
        if self.failed is not None:
            return self.failed
        out: list[tuple[Source | None, Any]] = [(s, s.verdict) for s in self.exports if not s.verdict.ok]
        if not out and not self.verdict.ok:
            out.append((None, self.verdict))       # each export sound, the exports together not
        return out


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    done: int
    missed: int
    due: int                       # done + missed + still open


@dataclass(frozen=True, slots=True)
class Window:
    """How far back the ward page looks for what needs attention: the last ``hours``, or (with
    ``handovers``) since the handover before the last one, so a page printed at the 07:00 handover
    covers the night shift just handed over and the shift that begins. Each ward sets its own."""

    hours: float = 24.0
    handovers: tuple[time, ...] = ()

    def start(self, now: datetime) -> datetime:
        if not self.handovers:
            return now - timedelta(hours=self.hours)
        times = sorted(datetime.combine(now.date() - timedelta(days=back), h, now.tzinfo)
                       for back in range(3) for h in self.handovers)
        passed = [t for t in times if t <= now]
        return passed[-2] if len(passed) >= 2 else now - timedelta(hours=24)

    @property
    def text(self) -> str:
        if self.handovers:
            return "since the handover before the last (" + ", ".join(f"{h:%H:%M}" for h in self.handovers) + ")"
        return f"over the last {self.hours:g} h"


@dataclass(frozen=True, slots=True)
class Row:
    unit: str
    episode: str | None
    pod: int | None
    regimen: str | None
    admitted: bool                 # an admission is open now
    never_admitted: bool           # the unit has never recorded an admission: all its sessions count
    today: DayCount
    strip: tuple[DayCount, ...]    # the STRIP_DAYS days before today, oldest first
    last_missed: ad.SessionOutcome | None
    missed_ago_min: int | None
    taken: datetime | None
    age: timedelta | None
    verdict: str                   # verified | sealed | BROKEN
    verdict_text: str              # one line: the checker's, with where it broke
    faults: tuple[str, ...]        # faults reported and not cleared
    contradicting: tuple[str, ...]
    apart: tuple[str, ...]
    exports: tuple[str, ...]
    report: Path | None
    flags: tuple[str, ...] = field(default=())   # broken | missed | clock | fault | stale, in that order
    reasons: tuple[str, ...] = ()  # why, in a nurse's words, one line per flag
    window_start: datetime | None = None
    window: DayCount | None = None  # the patient's sessions in the attention window (day: its start)
    admitted_at: datetime | None = None
    vacated: datetime | None = None  # the bed's last discharge, when no one is admitted now
    vacated_by: str | None = None    # ... and the episode it closed

    @property
    def rank(self) -> tuple[float, ...]:
        """Worst first: a record that cannot be trusted, then the most sessions missed in the window
        (the larger share first), then a clock or fault, then an old record."""
        w = self.window
        share = w.missed / w.due if w is not None and w.due else 0.0
        return ("broken" not in self.flags, -(w.missed if w and "missed" in self.flags else 0), -share,
                "clock" not in self.flags, "fault" not in self.flags, "stale" not in self.flags)


DAY = Window()                     # the last 24 h: the default

FLAGS = ("broken", "missed", "clock", "fault", "stale")
FLAG_TEXT = {"broken": "record broken", "missed": "missed sessions", "clock": "clock", "fault": "fault",
             "stale": "old record"}
CLOCK_JUMP_S = 300                 # a clock moved by more than this in the window puts its times in doubt


# --- finding the exports ---------------------------------------------------------------------

MAX_UNITS = 200            # units on one page: a ward has about 30 beds, a laptop may hold several wards' pulls
MAX_ENTRIES = 250_000      # files and folders the walk examines: ten years of daily pulls of 30 units (2 files each)
NAMED_PAST_CAP = 10        # units past the cap named by id in the one line that counts them


@dataclass(slots=True)
class Plan:
    """What the first pass found: each export's path grouped under its unit id, and nothing more
    (no header, no verdict), so the first pass costs a path and a unit id per export (about
    300 bytes) whatever the exports hold; ``units`` then reads one unit's exports at a time."""

    groups: dict[str, list[str]] = field(default_factory=dict)   # unit id (or "(unknown: NAME)") -> paths
    exports: int = 0               # found by the first pass
    read: int = 0                  # read and described by ``units`` (the shown units' exports that could be)
    walk_capped: list[str] = field(default_factory=list)          # the tops whose walk stopped at MAX_ENTRIES

    @property
    def shown(self) -> list[str]:
        return sorted(self.groups)[:MAX_UNITS]

    @property
    def hidden(self) -> list[str]:
        return sorted(self.groups)[MAX_UNITS:]

    @property
    def incomplete(self) -> list[str]:
        """One line per cap reached (units past ``MAX_UNITS``, a walk stopped at ``MAX_ENTRIES``),
        for the page and standard error; empty when the page holds everything found."""
        out = []
        hidden = self.hidden
        if hidden:
            names = ", ".join(hidden[:NAMED_PAST_CAP]) + (", ..." if len(hidden) > NAMED_PAST_CAP else "")
            out.append(f"{len(hidden)} more units not shown (a page holds at most {MAX_UNITS}): {names}; "
                       "give a narrower folder")
        for top in self.walk_capped:
            out.append(f"{top}: stopped after examining {MAX_ENTRIES} files and folders, the rest not read; "
                       "give a narrower folder")
        return out


def scan(inputs: Sequence[Path], on_problem: Callable[[str], None]) -> Plan:
    """The first pass: every export under the inputs, grouped by unit. An export with a header is
    known by its first line alone (``export.read`` reads at most ``MAX_LINE`` of it); anything
    else (a data directory, a bare JSON-lines file) is read through once, as ``find`` would, to
    learn its unit, and dropped. An input or file that is not an export is told, not fatal."""
    plan = Plan()
    for p, unit in _each(inputs, on_problem, _unit_of, lambda top: plan.walk_capped.append(str(top))):
        plan.groups.setdefault(unit, []).append(str(p))
        plan.exports += 1
    return plan


def _each(inputs: Sequence[Path], on_problem: Callable[[str], None], read: Callable[[Path], _T],
          capped_at: Callable[[Path], None]) -> Iterator[tuple[Path, _T]]:
    """Each export under the inputs (a file, a data directory, or what ``_walk`` finds in a
    folder) with what ``read`` makes of it. An input or file that cannot be read is told, not
    fatal; an input whose walk stopped at ``MAX_ENTRIES`` is given to ``capped_at``."""
    for top in inputs:
        if not top.exists():
            on_problem(f"{top} does not exist")
            continue
        capped: list[bool] = []
        paths = iter([top]) if top.is_file() or is_data_dir(top) else _walk(top, capped, on_problem)
        any_path = False
        for p in paths:
            any_path = True
            try:
                got = read(p)
            except ReportError as e:
                on_problem(str(e))
                continue
            except OSError as e:
                on_problem(f"cannot read {p}: {e.strerror}")
                continue
            yield p, got
        if capped:
            capped_at(top)
        if not any_path:
            on_problem(f"{top} holds no bedside exports (*.jsonl) or journal")


def _unit_of(p: Path) -> str:
    """The unit an export belongs to, as ``merge`` groups it: its header's, else what reading it says."""
    from bedside.journal import export

    if not p.is_dir():
        try:
            header, lines = export.read(p)
        except export.NotAnExport:
            header = {}
        else:
            lines.close()           # type: ignore[attr-defined]  # a generator: closing it closes the file
        if isinstance(header.get("unit"), str):
            return _short(str(header["unit"]))
    return _short(_key(_source(p)))


def _key(s: Source) -> str:
    return s.unit or f"(unknown: {s.path.name})"


KEY_CHARS = 128            # a unit id longer than this (no bedside makes one) is kept by its start and a digest


def _short(unit: str) -> str:
    """The plan's key for a unit id: itself, or for an id a crafted header made huge, its first
    64 characters and a digest of the rest, so that the plan keeps a few hundred bytes an export
    whatever a header says (``units`` then groups by the id itself, as ``merge`` does)."""
    if len(unit) <= KEY_CHARS:
        return unit
    import hashlib

    digest = hashlib.sha256(unit.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{unit[:64]}...({len(unit)} characters, sha256 {digest})"


def units(plan: Plan, on_problem: Callable[[str], None]) -> Iterator[UnitRecord]:
    """The second pass: the shown units, one at a time, in order of unit id, each unit's exports
    read (``Source``) and merged only when it is its turn; nothing of a unit is kept by this
    iterator once the next one is asked for."""
    for unit in plan.shown:
        found: list[Source] = []
        for p in plan.groups[unit]:
            try:
                found.append(_source(Path(p)))
            except ReportError as e:
                on_problem(str(e))
            except OSError as e:
                on_problem(f"cannot read {p}: {e.strerror}")
        plan.read += len(found)
        yield from merge(found)


def find(inputs: Sequence[Path], on_problem: Callable[[str], None]) -> list[Source]:
    """Every export under the inputs (the walk capped at ``MAX_ENTRIES`` files and folders, which
    is told); an input or file that is not one is told, not fatal."""
    def capped_at(top: Path) -> None:
        on_problem(f"{top}: stopped after examining {MAX_ENTRIES} files and folders, the rest not read; "
                   "give a narrower folder")

    return [source for _, source in _each(inputs, on_problem, _source, capped_at)]


def is_data_dir(p: Path) -> bool:
    return p.is_dir() and any(p.glob("journal-*.sqlite"))


def _walk(top: Path, capped: list[bool], on_problem: Callable[[str], None] | None = None) -> Iterator[Path]:
    """The exports under ``top``, depth first, each folder's in name order, yielded as found. At
    most ``MAX_ENTRIES`` directory entries are examined in all (a folder of millions of files is not
    listed whole: only its ``*.jsonl`` names and subfolders, up to the budget, are held to be
    sorted); reaching it appends to ``capped``."""
    left = MAX_ENTRIES
    stack = [top]
    while stack:
        here = stack.pop()
        if is_data_dir(here):
            yield here
            continue
        files: list[str] = []
        dirs: list[str] = []
        try:
            with os.scandir(here) as it:
                for entry in it:
                    if left <= 0:
                        capped.append(True)
                        break
                    left -= 1
                    name = entry.name
                    if name.startswith("."):
                        continue
                    try:
                        is_dir = entry.is_dir()
                        link = entry.is_symlink()
                    except OSError:
                        continue
                    if is_dir:
                        if name not in _SKIP_DIRS and not link:      # a link to a folder is not followed
                            dirs.append(name)
                    elif name.endswith(".jsonl"):
                        if entry.is_file():
                            files.append(name)
                        elif on_problem is not None:   # a FIFO would block the open; a device is no export
                            on_problem(f"{here / name} is not a regular file: not read")
        except OSError:
            continue
        yield from (here / f for f in sorted(files))
        stack += [here / d for d in sorted(dirs, reverse=True)]
        if capped:
            return


def _source(p: Path) -> Source:
    from bedside.journal.segments import JournalError

    streamed = _streamed(p)
    if streamed is not None:
        return streamed
    try:
        records = read(p)
        for _ in records:      # the first pass: checks them, and refuses what only the whole file shows
            pass
    except JournalError as e:
        raise ReportError(f"{p}: {e}") from None
    return _described(p, Loaded([], records.header, [], records.source), records, _judge(p, records))


def _described(p: Path, loaded: Loaded, records: Iterable[dict[str, Any]], verdict: Any) -> Source:
    header = loaded.header or {}
    read_once = records if isinstance(records, Records) and records.read_once else None
    unit = header.get("unit") if isinstance(header.get("unit"), str) else None
    if unit is None:
        if read_once is not None:
            unit = read_once.unit or _unit_by_name(p)
        else:
            units = [r.get("unit") for r in records if r.get("type") == T.START and isinstance(r.get("unit"), str)]
            unit = units[-1] if units else _unit_by_name(p)
    taken = ad.parse_time(header.get("exported")) if isinstance(header.get("exported"), str) else None
    if taken is None:
        last = None
        if read_once is not None:
            last = read_once.last
        else:
            for last in records:       # noqa: B007 - the last record is the one wanted
                pass
        taken = ad.parse_time(last.get("time")) if last is not None else None
    return Source(p, loaded, unit, _report_beside(p, unit), taken, verdict, records)


def _streamed(p: Path) -> Source | None:
    """An export file with its header, verified and described while it is read a line at a
    time (its records stay in the file: ``ExportRecords``); None for anything else (a data
    directory, a bare JSON-lines file), which ``load`` reads whole as before."""
    from bedside.journal import export

    if p.is_dir():
        return None
    try:
        header, lines = export.read(p)
    except export.NotAnExport:
        return None
    with contextlib.closing(lines):      # type: ignore[type-var]  # a generator: closing it closes the file
        try:
            first = next(_records_of(lines), None)      # reads up to the first record only
        except export.NotAnExport:
            return None
    if first is None:
        return None          # no record at all: load() says what the file is
    records = ExportRecords(p)
    return _described(p, Loaded([], header, [], p.name), records, _Deferred(lambda: records.verdict))


def _judge(p: Path, records: Records) -> Any:
    """``bedside log verify``'s own verdict: the very function it runs on an export file or a data
    directory; a bare JSON-lines file without a header is checked record by record (by the pass
    that has read it)."""
    from bedside.journal import export, verify
    from bedside.journal.segments import JournalError

    try:
        return verify.verify_data(p) if p.is_dir() else verify.verify_export(p)
    except (export.NotAnExport, JournalError):
        return records.verdict(str(p))


def _unit_by_name(p: Path) -> str | None:
    """An export holding no ``start`` record (a later part of a long journal) is named by its unit."""
    if p.name.endswith("-journal.jsonl"):
        return p.name.removesuffix("-journal.jsonl")
    if p.name == "journal.jsonl" and p.parent.name.count("_") >= 2:
        return p.parent.name.rsplit("_", 2)[0]
    return None


def _report_beside(p: Path, unit: str | None) -> Path | None:
    """A stick export folder's ``report.html``, or a pull's ``UNIT-report.html``."""
    if p.is_dir():
        return None
    names = ["report.html"] if p.name == "journal.jsonl" else []
    if p.name.endswith("-journal.jsonl"):
        names.append(p.name.removesuffix("-journal.jsonl") + "-report.html")
    if unit:
        names.append(f"{unit}-report.html")
    for n in names:
        try:
            if (p.parent / n).is_file():
                return p.parent / n
        except OSError:          # a name a header made too long for the file system: no report there
            continue
    return None


# --- merging a unit's exports -----------------------------------------------------------------

def merge(sources: Iterable[Source]) -> list[UnitRecord]:
    by_unit: dict[str, list[Source]] = {}
    for s in sources:
        by_unit.setdefault(s.unit or f"(unknown: {s.path.name})", []).append(s)
    return [_merge(unit, group) for unit, group in sorted(by_unit.items())]


@dataclass(frozen=True, slots=True)
class _Span:
    """What one pass over an export's records says of it for the merge (records with a seq)."""

    lo: int | None = None            # its first seq ...
    lo_prev: Any = None              # ... and that record's prev
    hi: int | None = None            # its last seq ...
    hi_hash: Any = None              # ... and that record's hash
    ordered: bool = True             # each seq above the one before (as every export writes them)


def _span(s: Source) -> _Span:
    lo = lo_prev = hi = hi_hash = None
    ordered = True
    for r in s.records:
        seq = r.get("seq")
        if not isinstance(seq, int):
            continue
        if lo is None:
            lo, lo_prev = seq, r.get("prev")
        elif hi is not None and seq <= hi:
            ordered = False
        hi, hi_hash = seq, r.get("hash")
    return _Span(lo, lo_prev, hi, hi_hash, ordered)


def _seqs(s: Source, i: int) -> Iterator[tuple[int, int, str]]:
    return ((r["seq"], i, str(r.get("hash"))) for r in s.records if isinstance(r.get("seq"), int))


def _relations(group: list[Source]) -> tuple[set[tuple[int, int]], set[tuple[int, int]]]:
    """(pairs of exports holding a seq in common, pairs holding one with different hashes): one
    pass over the exports' seq-ordered records merged (``heapq.merge``), a record of each at a time."""
    common: set[tuple[int, int]] = set()
    differ: set[tuple[int, int]] = set()
    last: tuple[tuple[int, ...], bool] | None = None

    def judge(at: list[tuple[int, str]]) -> None:
        nonlocal last
        key = (tuple(i for i, _ in at), len({h for _, h in at}) == 1)
        if key == last and key[1]:
            return               # the same exports agreeing again, as at the seq before: known
        last = key
        for a, (i, hi) in enumerate(at):
            for j, hj in at[a + 1:]:
                common.update({(i, j), (j, i)})
                if hi != hj:
                    differ.update({(i, j), (j, i)})

    at: list[tuple[int, str]] = []
    seq0 = None
    for seq, i, h in heapq.merge(*(_seqs(s, i) for i, s in enumerate(group))):
        if seq != seq0:
            judge(at)
            at, seq0 = [], seq
        at.append((i, h))
    judge(at)
    return common, differ


def _merge(unit: str, group: list[Source]) -> UnitRecord:
    if len(group) == 1:
        # One export: its records as they are in the file, streamed (never all in memory).
        only = group[0]
        return UnitRecord(unit, only.records, [only], [], [], only.verdict, None)
    # A record at a time: one pass over each export (its first and last seq: it is verified on
    # the way), one over them all merged by seq (which overlap, which disagree), then the merged
    # records are given by merging them again each time they are read.
    spans = {id(s): _span(s) for s in group}
    # The newest export (most records, then latest taken) anchors the chain.
    order = sorted(group, key=lambda s: (spans[id(s)].hi or 0, s.taken.timestamp() if s.taken else 0.0),
                   reverse=True)
    # An export whose seqs do not rise (no bedside writes one: its own verdict says where) cannot
    # be merged by seq: it is kept apart, unless no export can be.
    ordered = [s for s in order if spans[id(s)].ordered] or order[:1]
    apart = [s for s in order if s not in ordered]
    base = ordered[0]
    index = {id(s): i for i, s in enumerate(ordered)}
    common, differ = _relations(ordered)
    used, contradicting = [base], []
    pending = ordered[1:]
    while pending:
        progress = False
        for s in list(pending):
            i = index[id(s)]
            if any((i, index[id(u)]) in differ for u in used):
                contradicting.append(s)
            elif any((i, index[id(u)]) in common for u in used) or _joins(spans[id(s)], [spans[id(u)] for u in used]):
                used.append(s)
            else:
                continue
            pending.remove(s)
            progress = True
        if not progress:
            apart += pending
            break
    if len(used) == 1:
        records: Iterable[dict[str, Any]] = _Only(base)
        verdict = base.verdict           # the export alone, already checked with its header
        return UnitRecord(unit, records, used, contradicting, apart, verdict, None)
    first = min(used, key=lambda s: spans[id(s)].lo or 0)
    lo = min(spans[id(s)].lo or 0 for s in used)
    merged = Given(_Merged(used), unit, link=_link(first, lo))
    return UnitRecord(unit, merged, used, contradicting, apart, _Deferred(lambda: merged.verdict(unit)), None)


class _Only:
    """One export's records with a seq, as merged alone."""

    def __init__(self, s: Source) -> None:
        self.s = s

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (r for r in self.s.records if isinstance(r.get("seq"), int))


class _Merged:
    """The exports' records merged by seq, each seq once: from the export merged first (the newest)."""

    def __init__(self, used: list[Source]) -> None:
        self.used = used

    def __iter__(self) -> Iterator[dict[str, Any]]:
        streams = [((r["seq"], rank, r) for r in s.records if isinstance(r.get("seq"), int))
                   for rank, s in enumerate(self.used)]
        seq0 = None
        for seq, _rank, r in heapq.merge(*streams, key=lambda t: (t[0], t[1])):
            if seq != seq0:
                seq0 = seq
                yield r


def _joins(s: _Span, used: list[_Span]) -> bool:
    """An export that ends just before the merged records begin, or begins just after they end."""
    if s.lo is None or s.hi is None:
        return False
    held = [u for u in used if u.lo is not None and u.hi is not None]
    if not held:
        return False
    lo = min(u.lo for u in held if u.lo is not None)
    hi = max(u.hi for u in held if u.hi is not None)
    lo_prev = next(u.lo_prev for u in held if u.lo == lo)     # the used agree where they overlap
    hi_hash = next(u.hi_hash for u in held if u.hi == hi)
    return (s.hi + 1 == lo and lo_prev == s.hi_hash) or (s.lo == hi + 1 and s.lo_prev == hi_hash)


def _link(first: Source, lo: int) -> tuple[int, str] | None:
    """The first export's note of where a pruned journal began: the merged records have no header of their own."""
    h = first.loaded.header
    note = h.get("first") if h is not None else None
    if not isinstance(note, dict) or note.get("seq") != lo:
        return None
    return (lo - 1, str(note.get("prev"))) if lo > 1 else None


# --- one row per unit -------------------------------------------------------------------------

def row(u: UnitRecord, now: datetime, stale_after: timedelta = STALE_AFTER, window: Window = DAY) -> Row:
    seen = _Seen()
    # One pass over the records (streamed from the file): the model, and on the way the
    # faults and the clock's marks that the row's words need.
    m = ad.build(_tap(u.records, seen), stay_now=True)
    last = m.last
    local_now = now.astimezone(last.tzinfo) if last is not None and last.tzinfo is not None else now
    today = local_now.date()
    since = window.start(local_now)
    open_ep = next((e for e in reversed(m.episodes) if e.discharged is None), None)
    never = not m.episodes
    if never:
        stay: ad.Stay | None = m.stays[0] if m.stays else None
    elif open_ep is not None:
        stay = next((s for s in m.stays if s.episode is not None and s.episode.id == open_ep.id), None)
    else:
        stay = None                # an empty bed: nothing of a patient to count
    days = {d.day: d for d in stay.days} if stay is not None else {}
    strip = tuple(_count(days.get(today - timedelta(days=n)), today - timedelta(days=n))
                  for n in range(STRIP_DAYS, 0, -1))
    sessions = [s for d in (stay.days if stay else ()) for s in d.sessions if s.offer <= local_now]
    missed = [s for s in sessions if s.outcome == ad.MISSED]
    last_missed = max(missed, key=lambda s: s.offer) if missed else None
    ago = None
    if last_missed is not None:
        ago = max(0, round((now - (last_missed.finished or last_missed.offer)).total_seconds() / 60))
    newest = u.exports[0]
    taken = max((s.taken for s in u.exports if s.taken is not None), default=None)
    age = now - taken if taken is not None else None
    verdict, text = _verdict(u)
    faults = _open_faults(seen.faults)
    clock_faults = tuple(f for f in faults if f.startswith("clock:"))
    other_faults = tuple(f for f in faults if not f.startswith("clock:"))
    in_window = [s for s in sessions if s.offer >= since]
    won = _count_of(in_window, since.date())
    flags: list[str] = []
    reasons: list[str] = []
    if verdict == "BROKEN" or u.contradicting:
        flags.append("broken")
        reasons.append("record failed its check: do not rely on it; download it again")
    if won.missed:
        flags.append("missed")
        reasons.append(_missed_words(in_window, local_now))
    clock = _clock_words(seen, since, clock_faults)
    if clock:
        flags.append("clock")
        reasons.append(clock)
    if other_faults:
        flags.append("fault")
        reasons.append("; ".join(other_faults))
    if age is None or age > stale_after:
        flags.append("stale")
        reasons.append("no record since " + (said_at(taken, local_now) if taken else "ever") +
                       ": how this bed is doing now is unknown")
    gone = next((e for e in reversed(m.episodes) if e.discharged is not None), None) if open_ep is None else None
    return Row(u.unit, open_ep.id if open_ep else None, open_ep.pod(today) if open_ep else None,
               open_ep.regimen if open_ep else None, open_ep is not None, never,
               _count(days.get(today), today), strip, last_missed, ago,
               taken, age, verdict, text, faults, tuple(str(s.path) for s in u.contradicting),
               tuple(str(s.path) for s in u.apart), tuple(str(s.path) for s in u.exports),
               newest.report, tuple(flags), tuple(reasons), since, won,
               open_ep.admitted if open_ep else None,
               gone.discharged if gone else None, gone.id if gone else None)


def said_at(t: datetime, now: datetime) -> str:
    """A time as a nurse says it: 19:00, yesterday 19:00, Sat 19:00, or 28 Nov 19:00."""
    t = t.astimezone(now.tzinfo) if now.tzinfo is not None and t.tzinfo is not None else t
    days = (now.date() - t.date()).days
    if days == 0:
        return f"{t:%H:%M}"
    if days == 1:
        return f"yesterday {t:%H:%M}"
    if 1 < days < 7:
        return f"{t:%a} {t:%H:%M}"
    return f"{t.day} {t:%b} {t:%H:%M}"


def _day_word(d: date, today: date) -> str:
    gap = (today - d).days
    return "today" if gap == 0 else "yesterday" if gap == 1 else f"on {d:%a}"


def _missed_words(sessions: list[ad.SessionOutcome], now: datetime) -> str:
    """E.g. "missed 14 of 15 yesterday, 1 of 2 today; none done since 19:04"."""
    per_day: dict[date, list[ad.SessionOutcome]] = {}
    for s in sessions:
        per_day.setdefault(s.day, []).append(s)
    parts = []
    for d, ss in sorted(per_day.items()):
        c = _count_of(ss, d)
        if c.missed:
            parts.append(f"{c.missed} of {c.done + c.missed} {_day_word(d, now.date())}")
    words = "missed " + ", ".join(parts)
    decided = [s for s in sessions if s.outcome in (ad.MISSED, *ad.DONE_LIKE)]
    if decided and decided[-1].outcome == ad.MISSED:
        done = [s for s in decided if s.outcome in ad.DONE_LIKE]
        if done:
            last_done = done[-1].finished or done[-1].started or done[-1].offer
            words += f"; none done since {said_at(last_done, now)}"
        else:
            words += f"; none done since {said_at(decided[0].offer, now)}"
    else:
        last = decided[-1] if decided else None
        if last is not None:
            words += f"; last one done at {said_at(last.finished or last.offer, now)}"
    return words


def _clock_words(seen: _Seen, since: datetime, faults: tuple[str, ...]) -> str | None:
    """Why the bed's times may be wrong: a clock fault not cleared, a distrusted clock, a big jump."""
    if faults:
        return faults[0].replace("clock: ", "clock fault: ", 1)
    jumps: list[str] = []
    for r in seen.clock_sets:
        t, jump = ad.parse_time(r.get("time")), r.get("jump_s")
        if t is None or t < since or not isinstance(jump, int | float) or abs(jump) < CLOCK_JUMP_S:
            continue
        size = f"{abs(jump) / 3600:.1f} h" if abs(jump) >= 5400 else f"{round(abs(jump) / 60)} min"
        jumps.append(f"clock moved {'forward' if jump > 0 else 'back'} {size} at {t:%H:%M}")
    if seen.tq == "distrusted":
        return "clock not trusted: the unit's times may be wrong; set its clock" + (f" ({jumps[-1]})" if jumps else "")
    if jumps:
        return jumps[-1] + ": check the times around it"
    return None


def _count_of(sessions: Iterable[ad.SessionOutcome], day: date) -> DayCount:
    done = missed = open_ = 0
    for s in sessions:
        done += s.outcome in ad.DONE_LIKE
        missed += s.outcome == ad.MISSED
        open_ += s.outcome in (ad.OPEN, ad.WAITING)
    return DayCount(day, done, missed, done + missed + open_)


def _count(d: ad.Day | None, day: date) -> DayCount:
    if d is None:
        return DayCount(day, 0, 0, 0)
    c = d.counts
    return DayCount(day, c.done, c.missed, c.due + c.open)


def _verdict(u: UnitRecord) -> tuple[str, str]:
    if u.broken:
        src, v = u.broken[0]
        where = f" ({src.path.name})" if src is not None else " (the exports together)"
        return "BROKEN", f"{v.verdict}{where}"
    v = u.verdict
    if u.contradicting:
        return "BROKEN", (f"another chain under the same unit id in {u.contradicting[0].path.name}: "
                          "not merged; the newest chain is shown")
    return ("sealed" if v.seals_unchecked or v.seals_checked else "verified"), v.verdict


@dataclass
class _Seen:
    """What a row needs beyond the model, gathered in the model's own pass over the records."""
    faults: list[dict[str, Any]] = field(default_factory=list)
    clock_sets: list[dict[str, Any]] = field(default_factory=list)
    tq: Any = None                 # the last time-quality mark of the record


def _tap(records: Iterable[dict[str, Any]], into: _Seen) -> Iterator[dict[str, Any]]:
    for r in records:
        typ = r.get("type")
        if typ in (T.FAULT, T.FAULT_CLEARED):
            into.faults.append(r)
        elif typ == T.CLOCK_SET:
            into.clock_sets.append(r)
        if "tq" in r:
            into.tq = r["tq"]
        yield r


def _open_faults(records: Iterable[dict[str, Any]]) -> tuple[str, ...]:
    """Faults the unit reported and has not reported cleared, by part."""
    open_: dict[str, str] = {}
    for r in records:
        part = str(r.get("part") or "a part")
        if r.get("type") == T.FAULT:
            open_[part] = f"{part}: {r.get('problem') or 'fault'}"
        elif r.get("type") == T.FAULT_CLEARED:
            open_.pop(part, None)
    return tuple(open_.values())


def rows(units: Iterable[UnitRecord], now: datetime, stale_after: timedelta = STALE_AFTER,
         window: Window = DAY) -> list[Row]:
    """The ward's rows, the worst beds first (``Row.rank``), then by unit id."""
    return sorted((row(u, now, stale_after, window) for u in units), key=lambda r: (r.rank, r.unit))
