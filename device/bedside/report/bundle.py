"""What a nurse takes away from a unit, however it leaves (``bedside pull`` over the serial
link, or a USB stick): the export file, the sessions CSV and the report, made together here
so that both ways give the same three files from the same records.

The report is made from the export's own bytes (as ``bedside report`` would read the file),
so what it says is what the export holds.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from bedside.durable import json_loads
from bedside.journal import chain, export
from bedside.report import adherence, model
from bedside.report.html import render

if TYPE_CHECKING:
    from bedside.journal.journal import Journal


@dataclass(frozen=True)
class Bundle:
    export: bytes              # the export file: its header line, then one record a line
    csv: bytes                 # one row per scheduled session
    html: bytes                # the adherence report
    report: model.Report


def make(header: Mapping[str, Any], lines: Sequence[str], *, source: str, generated: datetime) -> Bundle:
    """The three files for these records (``lines``: canonical JSON, as exported) under ``header``.

    ``source`` names the export file in the report; ``generated`` is when, in local time.
    Raises ``model.ReportError`` when the records cannot be read back.
    """
    buf = io.StringIO()
    export.write(buf, dict(header), list(lines))
    raw = buf.getvalue().encode("utf-8")
    loaded = model.parse_export(raw, source)
    made = model.make(loaded.records, header=loaded.header, damaged=loaded.damaged, source=source)
    return Bundle(raw, model.csv_text(made).encode("utf-8"), render(made, generated).encode("utf-8"), made)


# --- one record at a time -----------------------------------------------------------

class _Lines:
    """The records as the export's lines give them to ``bedside report`` (``model.parse_export``
    reading the file), taken one at a time: each record's canonical line, split and parsed as
    that reader splits and parses the whole file, so the report says what the file holds."""

    def __init__(self) -> None:
        from bedside.journal import verify

        self.n = 1                       # line 1 is the header
        self.size = 0                    # bytes of the record lines
        self.count = 0                   # lines that are records
        self.damaged: list[str] = []     # lines that are not records: the first model.MAX_DAMAGED named
        self.damaged_more = 0            # ... and the rest counted, as ``bedside report`` reads the file
        self.checker = verify.Checker()
        self.first: tuple[int, str] | None = None     # the first record's (seq, prev), as the header says

    def records(self, given: Iterator[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
        for rec in given:
            if self.first is None:
                self.first = (rec["seq"], str(rec["prev"]))
            line = chain.canonical(rec)
            self.size += len(line.encode("utf-8")) + 1
            # (canonical JSON leaves U+2028, U+0085 … unescaped: the file's reader splits lines there)
            for raw in line.splitlines():
                self.n += 1
                piece = raw.strip()
                if not piece:
                    continue
                parsed = model._json_object(piece)
                if parsed is None or "seq" not in parsed or "type" not in parsed:
                    if len(self.damaged) < model.MAX_DAMAGED:
                        self.damaged.append(f"line {self.n} of the file is not a record")
                    else:
                        self.damaged_more += 1
                    continue
                if self.count == 0:
                    seq0 = parsed.get("seq")
                    # As model.check links an export's first record to the header's note of the one before.
                    if isinstance(seq0, int) and seq0 > 1 and self.first[0] == seq0:
                        self.checker.link = (seq0 - 1, self.first[1])
                self.count += 1
                self.checker.feed(parsed)
                yield parsed


@dataclass(frozen=True)
class Streamed:
    header: dict[str, Any]
    size: int                  # bytes of the export file, which ``write`` writes
    csv: bytes
    html: bytes
    report: model.Report
    write: Callable[[IO[str]], None]


def stream(journal: Journal, *, exported: datetime, source: str, generated: datetime) -> Streamed:
    """``make`` for the unit's own journal, holding one record at a time rather than the export:
    the report is made in a first pass over the records (its model keeps what each day and
    session came to, within its own budget, not the records), and ``write`` writes the export
    file in a second pass (``export.stream``'s, checked to give the same records). The same
    three files as ``make`` (lines that are not records: the first ``model.MAX_DAMAGED`` named,
    the rest counted, as ``bedside report`` names them). Raises ``model.ReportError`` when the
    records cannot be read back."""
    lines = _Lines()
    built: list[adherence.Adherence] = []
    first = export.summarise(journal, exported=exported,
                             consume=lambda given: built.append(adherence.build(lines.records(given))))
    header_line = json.dumps(first.header, sort_keys=True, separators=(",", ":"))
    if not lines.count and lines.damaged:
        raise model.ReportError(f"{source} is not a bedside export (no line is a record)")
    write = lambda out: export.write_summarised(journal, out, first)  # noqa: E731
    size = len(header_line) + 1 + lines.size
    header = json_loads(header_line)          # as the file's reader has it
    more = ([f"and {lines.damaged_more} more lines of the file are not records (counted, not listed)"]
            if lines.damaged_more else [])
    v = model.finish_check(lines.checker, header, [*lines.damaged, *more], lines.count > 0)
    made = model.Report(built[0], model.verification(v), header, source)
    return Streamed(first.header, size, model.csv_text(made).encode("utf-8"), render(made, generated).encode("utf-8"),
                    made, write)
