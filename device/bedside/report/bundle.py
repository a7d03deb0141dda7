"""What a nurse takes away from a unit, however it leaves (``bedside pull`` over the serial
link, or a USB stick): the export file, the sessions CSV and the report, made together here
so that both ways give the same three files from the same records.

The report is made from the export's own bytes (as ``bedside report`` would read the file),
so what it says is what the export holds.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bedside.journal import export
from bedside.report import model
from bedside.report.html import render


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
