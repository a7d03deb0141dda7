"""The ward overview as one self-contained page (like the unit report: no scripts, nothing
fetched, prints on A4) and as a CSV with one row per unit."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape
from pathlib import Path, PurePath
from urllib.parse import quote

from bedside import sheet
from bedside.report.html import CSP
from bedside.report.model import _cell
from bedside.report.svg import REASONS, hm, when
from bedside.report.ward import DAY, FLAG_TEXT, FLAGS, PARTIAL_AFTER, Row, Window, said_at

STYLE = """
:root { --ink:#1d2430; --muted:#5b6573; --line:#d5dae1; --done:#2e7d32; --late:#b35c00; --missed:#c62828;
        --grey:#7b8794; --ok-bg:#edf7ee; --bad-bg:#fdecea; --warn-bg:#fff6e8; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); margin: 0 auto; padding: 16px 20px 32px; max-width: 1400px; line-height: 1.35;
       font-size: 14px; background: #fff; }
h1 { font-size: 21px; margin: 0 0 4px; }
.muted { color: var(--muted); }
.summary { margin: 6px 0 12px; }
.summary b.bad { color: var(--missed); }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 4px 6px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: 12px; vertical-align: bottom; }
tr.attn td:first-child { border-left: 5px solid var(--late); }
tr.broken td:first-child { border-left: 5px solid var(--missed); }
tr.broken { background: var(--bad-bg); }
td:first-child { border-left: 5px solid transparent; font-weight: 600; white-space: nowrap; }
td.why { max-width: 340px; }
.why ul { margin: 0; padding-left: 16px; }
.why li { margin: 0 0 2px; }
.why .ok { color: var(--done); }
.flag { display: inline-block; font-size: 11px; font-weight: 600; border-radius: 3px; padding: 0 4px;
        margin: 1px 2px 0 0; color: #fff; background: var(--late); }
.flag.f-broken { background: var(--missed); }
.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.missed { color: var(--missed); font-weight: 600; }
.strip { display: flex; gap: 3px; }
.strip span { display: inline-block; min-width: 38px; text-align: center; font-size: 11px; border-radius: 3px;
              padding: 1px 2px; border: 1px solid var(--line); color: var(--muted); }
.strip .all { background: var(--done); color: #fff; border-color: var(--done); }
.strip .some { background: var(--late); color: #fff; border-color: var(--late); }
.strip .none { background: var(--missed); color: #fff; border-color: var(--missed); }
.verdict-ok { color: var(--done); font-weight: 600; }
.verdict-bad { color: var(--missed); font-weight: 700; }
.small { font-size: 11px; color: var(--muted); white-space: normal; }
a { color: inherit; }
footer { margin-top: 22px; font-size: 12px; color: var(--muted); border-top: 1px solid var(--line); padding-top: 6px; }
ul.problems { font-size: 12px; color: var(--muted); }
@page { size: A4 landscape; margin: 10mm; }
@media print {
  body { padding: 0; max-width: none; font-size: 11px; }
  table { font-size: 10px; } th, td { padding: 1px 4px; }
  .strip span { font-size: 9px; min-width: 30px; }
  tr { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
}
"""


def render(rows: Sequence[Row], generated: datetime, out: Path, problems: Sequence[str] = (),
           stale_after: timedelta = timedelta(hours=24), window: Window = DAY,
           incomplete: Sequence[str] = ()) -> str:
    """The page; ``incomplete`` names what a cap left out (``ward.Plan.incomplete``), said under the
    headline so that a page of fewer beds than were found never passes for the whole ward."""
    counts = {f: sum(f in r.flags for r in rows) for f in FLAGS}
    need = sum(bool(r.flags) for r in rows)
    since = rows[0].window_start if rows and rows[0].window_start else window.start(generated)
    bits = [f"<b>{len(rows)}</b> bed{'s' * (len(rows) != 1)}"]
    if need:
        bits.append(f'<b class="bad">{need} need{"s" * (need == 1)} attention</b> ('
                    + ", ".join(f"{counts[f]} {FLAG_TEXT[f]}" for f in FLAGS if counts[f]) + ")")
    else:
        bits.append("none needs attention")
    empty = sum(not (r.admitted or r.never_admitted) for r in rows)
    if empty:
        bits.append(f"{empty} empty")
    head = ("<tr><th>Bed</th><th>Needs attention because</th><th>Patient</th><th>Today<br>done / missed / due</th>"
            f"<th>{len(rows[0].strip) if rows else 3} days before today<br>done of due</th><th>Last missed</th>"
            "<th>Record taken</th><th>Journal</th><th>Fault</th></tr>")
    body = "".join(_row(r, generated, out) for r in rows)
    notes = "".join(f"<li>{escape(p)}</li>" for p in problems)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>Ward overview {escape(when(generated))}</title><style>{STYLE}</style></head><body>",
        f"<h1>Ward overview</h1><p class=\"muted\">As of {escape(when(generated))}. Attention looks back "
        f"{escape(window.text)}: since {escape(when(since))}. The worst beds come first: a record that failed its "
        "check, then the most sessions missed, a clock or other fault, a record older than "
        f"{_age(stale_after)}.</p>",
        f'<p class="summary">{"; ".join(bits)}.</p>',
        *(f'<p class="summary"><b class="bad">This page is incomplete:</b> {escape(line)}.</p>' for line in incomplete),
        f"<table><thead>{head}</thead><tbody>{body}</tbody></table>",
        (f'<p class="muted">Not read:</p><ul class="problems">{notes}</ul>' if notes else ""),
        "<footer>Made by bedside ward. Counts are the admitted patient's: sessions before the admission, after a "
        "discharge or while no patient was admitted are nobody's, and so is a session still open when a patient "
        "was admitted or discharged. Due = done + missed + still open. Each record is checked as bedside log "
        "verify checks it. No patient name is kept on a unit or here: the episode id links a bed to the "
        "patient's notes.</footer>",
        "</body></html>\n"])


def _row(r: Row, now: datetime, out: Path) -> str:
    cls = "broken" if "broken" in r.flags else "attn" if r.flags else ""
    unit = f'<span class="unit">{escape(r.unit)}</span>'
    if r.report is not None:
        unit = f'<a href="{escape(_href(r.report, out))}">{unit}</a>'
    flags = "".join(f'<span class="flag f-{f}">{escape(FLAG_TEXT[f])}</span>' for f in r.flags)
    cells = [f"{unit}<br>{flags}" if flags else unit, _why(r, now), _patient(r, now), _today(r), _strip(r), _missed(r),
             _taken(r), _journal(r), "<br>".join(escape(f) for f in r.faults) or '<span class="muted">none</span>']
    tds = "".join((f'<td class="why">{c}</td>' if i == 1 else f"<td>{c}</td>") for i, c in enumerate(cells))
    return (f'<tr class="{cls}">' if cls else "<tr>") + tds + "</tr>"


def _why(r: Row, now: datetime) -> str:
    if not r.reasons:
        if not (r.admitted or r.never_admitted):
            return '<span class="muted">empty bed</span>'
        w = r.window
        done = f": {w.done} of {w.due} done" if w is not None and w.due else ""
        if r.taken is not None and r.age is not None and r.age > PARTIAL_AFTER:
            # "Nothing" would speak for hours the record does not hold.
            return (f'<span class="ok">nothing{escape(done)}</span> <span class="muted">up to '
                    f'{escape(said_at(r.taken, now))}; not known since (no newer record)</span>')
        return f'<span class="ok">nothing{escape(done)}</span>'
    return "<ul>" + "".join(f"<li>{escape(x)}</li>" for x in r.reasons) + "</ul>"


def _patient(r: Row, now: datetime) -> str:
    if r.admitted:
        bits = [f"<b>{escape(r.episode or '')}</b>"]
        if r.pod is not None:
            bits.append(f"post-op day {r.pod}")
        if r.regimen:
            bits.append(f"regimen {escape(r.regimen)}")
        if r.admitted_at is not None and r.window_start is not None and r.admitted_at >= r.window_start:
            bits.append(f'<span class="small">admitted {escape(said_at(r.admitted_at, now))}</span>')
        return "<br>".join(bits)
    if r.never_admitted:
        return '<span class="muted">no admissions recorded (all sessions counted)</span>'
    if r.vacated is not None:
        return (f'<b>empty</b><br><span class="small">since {escape(said_at(r.vacated, now))}: episode '
                f'{escape(r.vacated_by or "?")} discharged</span>')
    return '<span class="muted">no patient admitted</span>'


def _today(r: Row) -> str:
    if not (r.admitted or r.never_admitted):
        return '<span class="muted">-</span>'
    t = r.today
    missed = f'<span class="missed">{t.missed}</span>' if t.missed else "0"
    return f'<span class="num">{t.done} / {missed} / {t.due}</span>'


def _strip(r: Row) -> str:
    if not (r.admitted or r.never_admitted):
        return '<span class="muted">-</span>'
    cells = []
    for d in r.strip:
        cls = "" if not d.due else "all" if d.done == d.due else "none" if d.done == 0 else "some"
        label = f"{d.done}/{d.due}" if d.due else "-"
        cells.append(f'<span class="{cls}" title="{d.day:%a %d %b}: {d.done} done, {d.missed} missed, '
                     f'{d.due} due">{d.day:%a}<br>{label}</span>')
    return f'<div class="strip">{"".join(cells)}</div>'


def _missed(r: Row) -> str:
    s = r.last_missed
    if s is None:
        return '<span class="muted">none</span>'
    reason = REASONS.get(s.reason or "", s.reason or "")
    ago = f"{_age(timedelta(minutes=r.missed_ago_min))} ago" if r.missed_ago_min is not None else ""
    return (f"{escape(f'{s.offer:%a} {hm(s.due)} {s.kind}')}<br><span class=\"small\">{escape(reason)}; "
            f"{escape(ago)} ({r.missed_ago_min} min)</span>")


def _taken(r: Row) -> str:
    if r.taken is None:
        return '<span class="verdict-bad">unknown</span>'
    age = _age(r.age) + " old" if r.age is not None else ""
    cls = ' class="missed"' if "stale" in r.flags else ""
    return f"{escape(when(r.taken))}<br><span{cls}>{escape(age)}</span>"


def _journal(r: Row) -> str:
    if r.verdict == "BROKEN":
        out = f'<span class="verdict-bad">BROKEN</span><br><span class="small">{escape(r.verdict_text)}</span>'
    else:
        out = f'<span class="verdict-ok">{escape(r.verdict)}</span>'
    if r.apart:
        out += (f'<br><span class="small">{len(r.apart)} older export(s) not joined (records missing between '
                "them): not counted</span>")
    if len(r.exports) > 1:
        out += f'<br><span class="small">{len(r.exports)} exports merged</span>'
    return out


def _age(d: timedelta) -> str:
    mins = max(0, round(d.total_seconds() / 60))
    if mins < 120:
        return f"{mins} min"
    hours = mins // 60
    if hours < 48:
        return f"{hours} h"
    return f"{hours // 24} days"


def _href(report: Path, out: Path) -> str:
    """A link that works wherever the ward page and the reports travel together (a stick)."""
    try:
        rel = os.path.relpath(report.resolve(), out.resolve().parent)
    except ValueError:           # another drive on Windows
        return report.resolve().as_uri()
    return "/".join(quote(part) for part in PurePath(rel).parts)


CSV_FIELDS = ["unit", "attention", "why", "episode", "post_op_day", "regimen", "admitted", "vacated",
              "vacated_episode", "today_done", "today_missed", "today_due", "window_from", "window_done",
              "window_missed", "window_due"]
CSV_TAIL = ["last_missed_session", "last_missed_at", "last_missed_reason", "minutes_since_missed", "record_taken",
            "record_age_hours", "journal", "journal_detail", "faults", "contradicting_exports", "exports", "report",
            "utc_offset"]


def csv_fields(rows: Sequence[Row]) -> list[str]:
    """The header: a done and a due column for each day of the strip, named by its date."""
    days = rows[0].strip if rows else ()
    return [*CSV_FIELDS, *(f"{what} {d.day.isoformat()}" for d in days for what in ("done", "due")), *CSV_TAIL]


def csv_text(rows: Sequence[Row]) -> str:
    """One row per bed, in the page's order, as spreadsheets read it (``sheet.py``)."""
    out = io.StringIO()
    out.write(sheet.BOM)
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(csv_fields(rows))
    for r in rows:
        counted = r.admitted or r.never_admitted
        win = r.window if counted else None
        days = [v for d in r.strip for v in ((d.done, d.due) if counted else ("", ""))]
        w.writerow([
            _cell(r.unit), ", ".join(FLAG_TEXT[f] for f in r.flags), _cell("; ".join(r.reasons)), _cell(r.episode),
            "" if r.pod is None else r.pod, _cell(r.regimen), sheet.stamp(r.admitted_at), sheet.stamp(r.vacated),
            _cell(r.vacated_by),
            r.today.done if counted else "", r.today.missed if counted else "", r.today.due if counted else "",
            sheet.stamp(r.window_start), *((win.done, win.missed, win.due) if win else ("", "", "")), *days,
            _cell(r.last_missed.id if r.last_missed else None),
            sheet.stamp(r.last_missed.offer if r.last_missed else None),
            _cell(r.last_missed.reason if r.last_missed else None),
            "" if r.missed_ago_min is None else r.missed_ago_min, sheet.stamp(r.taken),
            f"{r.age.total_seconds() / 3600:.1f}" if r.age is not None else "", r.verdict, _cell(r.verdict_text),
            _cell("; ".join(r.faults)), _cell("; ".join(r.contradicting)), _cell("; ".join(r.exports)),
            _cell(str(r.report) if r.report else None), sheet.offset(r.taken or r.window_start)])
    return out.getvalue()
