"""The report's two files on disk: the HTML page and the sessions CSV, each written whole
(the records read a record at a time, ``write_from``, or given as a list, ``write``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bedside.durable import write_text_atomic
from bedside.report.html import render
from bedside.report.model import Records, Report, csv_text, make, make_from


def html_text(report: Report, generated: datetime) -> str:
    return render(report, generated)


def write(records: Sequence[Mapping[str, Any]], html_path: Path, csv_path: Path | None = None, *,
          header: Mapping[str, Any] | None = None, damaged: Sequence[str] = (), episode: str | None = None,
          source: str = "", generated: datetime | None = None) -> Report:
    """Write the HTML report (and the sessions CSV if ``csv_path``); returns what was reported."""
    report = make(records, header=header, damaged=damaged, episode=episode, source=source)
    when = generated or datetime.now().astimezone()
    write_text_atomic(html_path, render(report, when))
    if csv_path is not None:
        write_text_atomic(csv_path, csv_text(report))
    return report


def write_from(records: Records, html_path: Path, csv_path: Path | None = None, *, episode: str | None = None,
               generated: datetime | None = None) -> Report:
    """``write`` for records read a record at a time (``model.read``): the same files."""
    report = make_from(records, episode=episode)
    when = generated or datetime.now().astimezone()
    write_text_atomic(html_path, render(report, when))
    if csv_path is not None:
        write_text_atomic(csv_path, csv_text(report))
    return report
