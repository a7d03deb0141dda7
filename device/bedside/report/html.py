"""The report as one self-contained HTML page: inline CSS and SVG, no scripts, nothing fetched.

A strict Content-Security-Policy (``default-src 'none'``) makes the browser refuse any
fetch, so the page behaves the same from a USB stick on a locked-down laptop as anywhere.
Everything from the record is escaped: a file a person edited must not become markup.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta
from html import escape

from bedside.report import adherence as ad
from bedside.report.model import Report
from bedside.report.svg import REASONS, day_name, hm, hm_of, legend, timeline, when

# Day sections drawn at most (the newest): a record longer than any stay is a clock fault, and
# its other days keep their row in the day table. 401 is every day of the longest stay.
DAYS_DRAWN = 401
WHERE = "the journal itself has every record (`bedside log export` on the unit, or the export beside this report)"

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

STYLE = """
:root { --ink:#1d2430; --muted:#5b6573; --line:#d5dae1; --done:#2e7d32; --late:#b35c00; --missed:#c62828;
        --grey:#7b8794; --gap:#e3e6ea; --clock:#1565c0; --ok-bg:#edf7ee; --bad-bg:#fdecea; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); margin: 0 auto; padding: 20px 24px 40px; max-width: 980px; line-height: 1.4;
       font-size: 15px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 15px; margin: 0; display: flex; flex-wrap: wrap; gap: 4px 14px; align-items: baseline; }
.muted, .sub { color: var(--muted); }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 10px 0 14px; }
.facts dt { color: var(--muted); } .facts dd { margin: 0; }
.mono { font-family: ui-monospace, "SF Mono", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 13px; }
.verdict { border: 2px solid var(--done); background: var(--ok-bg); border-radius: 6px; padding: 10px 14px;
           margin: 10px 0 16px; }
.verdict.bad { border: 4px solid var(--missed); background: var(--bad-bg); }
.verdict.bad strong.big { font-size: 20px; color: var(--missed); display: block; }
.verdict ul { margin: 6px 0 0 18px; padding: 0; }
.failtag { color: var(--missed); font-size: 14px; }
.notice { border-left: 4px solid var(--late); background: #fff6e8; padding: 6px 12px; margin: 8px 0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0 4px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; min-width: 116px; }
.card .n { font-size: 24px; font-weight: 600; display: block; }
.card.main .n { font-size: 34px; }
.card .l { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { padding: 4px 6px; border-bottom: 1px solid var(--line); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { font-weight: 600; color: var(--muted); font-size: 12px; vertical-align: bottom; white-space: normal; }
tfoot td { font-weight: 600; border-top: 2px solid var(--ink); }
td.zero { color: #b3bac4; }
.bar { display: inline-block; width: 54px; height: 8px; background: var(--gap); margin-left: 6px;
       vertical-align: middle; }
.bar i { display: block; height: 8px; background: var(--done); }
tr.stay th { text-align: left; color: var(--ink); font-size: 13px; padding-top: 10px; }
tr.sub td { font-style: italic; }
h3.stay { margin: 10px 0 0; font-size: 14px; }
.day { border-top: 1px solid var(--line); padding: 10px 0 6px; break-inside: avoid; page-break-inside: avoid; }
.day svg { width: 100%; height: auto; display: block; margin: 6px 0 2px; }
.day ul { margin: 2px 0 0; padding-left: 18px; font-size: 14px; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 13px; color: var(--muted); margin: 4px 0 8px; }
.legend svg { width: 16px; height: 16px; vertical-align: -3px; }
.lbl { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: var(--muted); }
.tick { font: 10px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: var(--muted); }
.lateno { font: 600 10px system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; fill: var(--late); }
footer { margin-top: 28px; font-size: 13px; color: var(--muted); border-top: 1px solid var(--line);
         padding-top: 8px; }
.printmark { display: none; }
@page { size: A4; margin: 14mm 12mm 16mm; }
@media print {
  body { padding: 0; max-width: none; font-size: 12px; }
  h1 { font-size: 18px; } h2 { font-size: 14px; margin-top: 16px; break-after: avoid; page-break-after: avoid; }
  table { font-size: 11px; } th, td { padding: 2px 4px; }
  .card .n { font-size: 18px; } .card.main .n { font-size: 24px; } .card { padding: 4px 8px; min-width: 90px; }
  .day { padding: 6px 0 4px; } .day ul { font-size: 11px; }
  tr { break-inside: avoid; page-break-inside: avoid; }
  .printmark { display: block; position: fixed; top: 0; right: 0; color: var(--missed); font-weight: 700;
               border: 2px solid var(--missed); padding: 1px 6px; background: #fff; }
}
"""


def render(report: Report, generated: datetime) -> str:
    m, v = report.model, report.verdict
    unit = _unit(report)
    title = f"Exercise record {unit}" + ("" if v.ok else " - FAILED VERIFICATION")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="referrer" content="no-referrer">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
    ]
    parts.append(f"<h1>Exercise record: unit {escape(unit)}</h1>")
    if v.ok:
        parts += [_facts(report), _verdict(report)]
    else:
        # The first thing a nurse sees, and on every printed page.
        parts += ['<div class="printmark">RECORD FAILED VERIFICATION</div>', _verdict(report), _facts(report)]
    parts.extend(_notices(report))
    parts.append(_totals(m, v.ok))
    parts.append(_day_table(m))
    parts.append("<h2>Day by day</h2>")
    drawn = m.days[-DAYS_DRAWN:]
    if len(drawn) < len(m.days):
        parts.append(f'<p class="notice">The newest {len(drawn)} of {len(m.days)} days are drawn below; the '
                     f"{len(m.days) - len(drawn)} days before them have their numbers in the table above, and "
                     f"{escape(WHERE)}.</p>")
    parts.append(legend())
    on: dict[date, list[tuple[ad.Stay, ad.Day]]] = {}
    for st in m.stays:
        for x in st.days:
            on.setdefault(x.day, []).append((st, x))
    parts.extend(_day(d, m, on.get(d.day, [])) for d in drawn)
    parts.append(_footer(report, generated))
    parts.append("</body></html>\n")
    return "\n".join(parts)


# --- header --------------------------------------------------------------------------

def _unit(report: Report) -> str:
    h = report.header
    if h is not None and isinstance(h.get("unit"), str):
        return str(h["unit"])
    return report.model.units[-1] if report.model.units else "(unknown unit)"


def _offset(t: datetime) -> str:
    off = t.utcoffset() or timedelta(0)
    mins = round(off.total_seconds() / 60)
    sign = "+" if mins >= 0 else "-"
    return f"UTC{sign}{abs(mins) // 60:02d}:{abs(mins) % 60:02d}"


def _facts(report: Report) -> str:
    m = report.model
    rows: list[tuple[str, str]] = []
    unit = _unit(report)
    others = [u for u in m.units if u != unit]
    rows.append(("Unit", escape(unit) + (f' <span class="muted">(also recorded as {escape(", ".join(others))})</span>'
                                         if others else "")))
    rows.append(("Episode", _episodes(m)))
    if m.days:
        n = len(m.days)
        span = f"{day_name(m.days[0].day)} to {day_name(m.days[-1].day)} ({n} day{'s' * (n != 1)})"
    else:
        span = "no days"
    rows.append(("Period", span))
    if m.first is not None and m.last is not None:
        rows.append(("First and last record", f"{when(m.first)} and {when(m.last)}"))
    offsets = sorted({_offset(t) for t in (m.first, m.last, *(s.due for s in m.sessions)) if t is not None})
    if offsets:
        rows.append(("Times", "the unit's local time as recorded (" + " and ".join(offsets) + ")"))
    h = report.header
    if h is not None and isinstance(h.get("exported"), str):
        t = ad.parse_time(h["exported"])
        rows.append(("Exported", when(t) if t is not None else escape(str(h["exported"]))))
    body = "".join(f"<dt>{k}</dt><dd>{val}</dd>" for k, val in rows)
    return f'<dl class="facts">{body}</dl>'


def _episodes(m: ad.Adherence) -> str:
    eps = m.episodes if m.episode_filter is None else tuple(e for e in m.episodes if e.id == m.episode_filter)
    if not eps:
        if m.episode_filter is not None:
            return f"{escape(m.episode_filter)} (not found in this record)"
        return '<span class="muted">no admission recorded on this unit</span>'
    out = []
    for e in eps:
        bits = [f"<strong>{escape(e.id)}</strong>"]
        if e.surgery is not None:
            bits.append(f"surgery {day_name(e.surgery)}")
        if e.admitted is not None:
            bits.append(f"admitted {when(e.admitted)}")
        if e.discharged is not None:
            bits.append(f"discharged {when(e.discharged)}")
        if e.regimen:
            bits.append(f"regimen {escape(e.regimen)}")
        out.append(", ".join(bits))
    text = "<br>".join(out)
    if len(eps) > 1:
        text += ('<br><span class="muted">More than one admission: each day shows its episode; '
                 "use <span class=mono>--episode</span> for a report on one.</span>")
    return text


def _verdict(report: Report) -> str:
    v = report.verdict
    if v.ok:
        return (f'<div class="verdict"><strong>&#10003; Record verified.</strong> {v.checked} records, '
                f"{escape(v.method)}: nothing changed, removed or added. "
                f'Chain head <span class="mono">{escape(v.head)}</span> '
                '<span class="muted">(compare with the nurse screen on the unit; full hash '
                f'<span class="mono">{escape(v.head_hash or "-")}</span>)</span></div>')
    items = "".join(f"<li>{escape(p)}</li>" for p in _first(v.problems, 12))
    return ('<div class="verdict bad" role="alert"><strong class="big">&#10007; This record FAILED verification: '
            "do not rely on it.</strong> It may have been changed or damaged after the unit wrote it. "
            "Keep the unit and this file for the ward's engineer, and take a fresh download from the unit."
            f'<ul>{items}</ul><div class="muted">Last record {escape(v.head)}; {v.checked} records read.</div></div>')


def _first(items: tuple[str, ...], n: int) -> list[str]:
    out = list(items[:n])
    if len(items) > n:
        out.append(f"... and {len(items) - n} more")
    return out


def _notices(report: Report) -> Iterable[str]:
    m = report.model
    tq = m.time_quality
    total = sum(tq.values())
    if total and tq.get("simulated", 0) == total:
        yield ('<p class="notice"><strong>Simulated unit.</strong> This record was made by the simulator, '
               "not at a bedside.</p>")
    doubtful = tq.get("unverified", 0) + tq.get("distrusted", 0)
    if doubtful:
        yield (f'<p class="notice">{doubtful} of {total} records were written while the unit could not confirm '
               "its clock: their times may be off.</p>")
    if m.unknown_types:
        names = ", ".join(f"{k} ({n})" for k, n in sorted(m.unknown_types.items()))
        yield f'<p class="muted">Also in the record, not used in this report: {escape(names)}.</p>'
    if m.skipped:
        yield f'<p class="notice">{m.skipped} records had no readable type or time and are not counted.</p>'
    if m.impossible_times:
        yield (f'<p class="notice"><strong>{m.impossible_times} record{"s" if m.impossible_times != 1 else ""} '
               f'with a time no clock gives</strong> ({escape(m.impossible_example or "")}): not counted. '
               "The unit never writes such a time: the record was changed by something else.</p>")
    if m.clock_fault:
        yield f'<p class="notice"><strong>Clock fault.</strong> {escape(m.clock_fault)}</p>'
    if m.more_sessions or m.more_events:
        what = " and ".join(x for x in (f"{m.more_sessions} sessions" * bool(m.more_sessions),
                                          f"{m.more_events} events" * bool(m.more_events)) if x)
        yield (f'<p class="notice"><strong>More than a report can list.</strong> {what} are counted in the days '
               f"and totals below but not listed one by one (a day lists at most {ad.SESSIONS_A_DAY} sessions and "
               f"{ad.EVENTS_A_DAY} events, the report {ad.SESSIONS_LISTED} and {ad.EVENTS_LISTED}); "
               f"{escape(WHERE)}.</p>")
    if m.more_gaps:
        yield (f'<p class="notice">{m.more_gaps} more power cuts and switch-offs are counted in the numbers but not '
               f"listed (the report lists {ad.GAPS_LISTED}; each is counted on the day it began); {escape(WHERE)}.</p>")
    if m.more_episodes:
        yield (f'<p class="notice">{m.more_episodes} admissions after the first {ad.EPISODES_LISTED} are counted '
               f'together as "{escape(ad.MORE_EPISODES)}"; {escape(WHERE)}.</p>')
    if m.folded:
        yield (f'<p class="notice">{m.folded} sessions spread over more days and admissions than a report counts '
               f'apart are counted on their days with "{escape(ad.MORE_EPISODES)}"; {escape(WHERE)}.</p>')
    if m.settled_open:
        yield (f'<p class="notice">{m.settled_open} sessions were still open when {ad.OPEN_AT_MOST} newer sessions '
               "had begun: the unit never leaves a session open that long, so they are counted as open "
               "(not decided), as at the end of a record.</p>")


# --- totals and table ----------------------------------------------------------------

def _pct(c: ad.Counts) -> str:
    rate = c.adherence
    return "-" if rate is None else f"{rate:.0%}"


def _totals(m: ad.Adherence, verified: bool) -> str:
    warn = "" if verified else ' <span class="failtag">from a record that FAILED verification</span>'
    stays = m.stays or (ad.Stay(None, m.days, m.totals),)
    if m.episode_filter:
        head = f"<h2>Totals for episode {escape(m.episode_filter)}{warn}</h2>"
    else:
        head = f"<h2>Totals{warn}</h2>"
        if len(stays) > 1 or stays[0].episode is not None:
            head += ('<p class="muted">Each admission is counted apart: a patient\'s numbers never include '
                     "sessions offered before the admission, after the discharge or while no patient was admitted.</p>")
    return head + "".join(_cards(st, titled=not m.episode_filter and len(stays) > 1) for st in stays)


def _cards(st: ad.Stay, titled: bool) -> str:
    t = st.totals
    cards = [
        ("main", _pct(t), f"adherence: {t.done} of {t.due} sessions done"),
        ("", str(t.partial), "of them partly (ended early)"),
        ("", str(t.late), f"done late ({ad.LATE_AFTER_MIN}+ min)"),
        ("", str(t.missed), "missed"),
        ("", str(t.snoozed), "snoozed"),
        ("", str(t.deferred), "held over the night"),
        ("", str(t.gaps), "power cuts" + (f" ({_dur(t.gap_minutes)})" if t.gaps else "")),
    ]
    if t.interrupted:
        cards.insert(2, ("", str(t.interrupted), "of them begun, then cut off by a power cut"))
    if t.paused:
        cards.append(("", str(t.paused), "paused by a nurse (not due)"))
    if t.extra:
        cards.append(("", str(t.extra), "extra sessions on request (not due)"))
    if t.open:
        cards.append(("", str(t.open), "still open at the end"))
    if t.nobody:
        cards.append(("", str(t.nobody), "nobody's: no patient, or open at an admission or discharge (not due)"))
    body = "".join(f'<div class="card {c}"><span class="n">{n}</span><span class="l">{escape(lab)}</span></div>'
                   for c, n, lab in cards)
    title = f'<h3 class="stay">{escape(_stay_title(st))}</h3>' if titled else ""
    return f'{title}<div class="cards">{body}</div>'


def _stay_title(st: ad.Stay) -> str:
    e = st.episode
    if e is None:
        return "No patient admitted (sessions the unit offered with no admission open)"
    bits = [f"Episode {e.id}"]
    if e.admitted is not None:
        bits.append(f"admitted {day_name(e.admitted.date())}")
    if e.discharged is not None:
        bits.append(f"discharged {day_name(e.discharged.date())}")
    return ", ".join(bits)


def _dur(minutes: int) -> str:
    h, mi = divmod(minutes, 60)
    return f"{h} h {mi:02d} min" if h else f"{mi} min"


def _num(n: int) -> str:
    return '<td class="zero">0</td>' if n == 0 else f"<td>{n}</td>"


def _row(label: str, pod: str | None, c: ad.Counts, tag: str = "td", cls: str = "") -> str:
    rate = c.adherence
    bar = f'<span class="bar"><i style="width:{rate * 100:.0f}%"></i></span>' if rate is not None else ""
    gaps = f"<td>{c.gaps} ({_dur(c.gap_minutes)})</td>" if c.gaps else _num(0)
    cells = [f"<{tag}>{label}</{tag}>", *([] if pod is None else [f"<td>{pod}</td>"]),
             _num(c.due), _num(c.done), _num(c.partial + c.interrupted), _num(c.late),
             _num(c.snoozed), _num(c.missed), _num(c.deferred), gaps, f"<td>{_pct(c)}{bar}</td>"]
    return (f'<tr class="{cls}">' if cls else "<tr>") + "".join(cells) + "</tr>"


def _day_table(m: ad.Adherence) -> str:
    stays = m.stays or (ad.Stay(None, m.days, m.totals),)
    pods = any(st.episode is not None for st in stays)   # the column only where admissions are recorded
    head = ("<tr><th>Day</th>" + ("<th>Post-op day</th>" if pods else "") + "<th>Due</th><th>Done</th>"
            "<th>of which partly</th>"
            f"<th>Late ({ad.LATE_AFTER_MIN}+ min)</th><th>Snoozed</th><th>Missed</th><th>Held over night</th>"
            "<th>Power cuts</th><th>Adherence</th></tr>")
    width = 11 if pods else 10
    body = []
    for st in stays:
        if len(stays) > 1 or st.episode is not None:
            body.append(f'<tr class="stay"><th colspan="{width}">{escape(_stay_title(st))}</th></tr>')
        for d in st.days:
            pod = st.pod(d.day)
            body.append(_row(day_name(d.day), ("-" if pod is None else str(pod)) if pods else None, d.counts))
        if len(stays) > 1:
            body.append(_row("Total, " + escape(st.label), "" if pods else None, st.totals, cls="sub"))
    foot = "" if len(stays) > 1 else f"<tfoot>{_row('Total', '' if pods else None, stays[0].totals)}</tfoot>"
    return (f"<h2>Each day</h2><table><thead>{head}</thead><tbody>{''.join(body)}</tbody>{foot}</table>")


# --- one day -------------------------------------------------------------------------

def _day(d: ad.Day, m: ad.Adherence, on: list[tuple[ad.Stay, ad.Day]]) -> str:
    head = [f"<span>{day_name(d.day)}</span>"]
    parts = on if m.stays else [(ad.Stay(None, (d,), d.counts), d)]
    for st, x in parts:
        c = x.counts
        pod = st.pod(d.day)
        label = escape(st.label) + (f", post-op day {pod}" if pod is not None else "")
        if st.episode is None and len(parts) == 1 and not any(s.episode for s in m.stays):
            label = ""       # a unit never used with admissions: nothing to tell apart
        done = (f"{c.done} of {c.due} done ({_pct(c)})" if c.due else
                f"{c.nobody} offered, nobody's (not counted)" if c.nobody else "no sessions due")
        head.append(f'<span class="sub">{label + ": " if label else ""}{done}</span>')
    if not parts:
        head.append('<span class="sub">no sessions due</span>')
    notes = _notes(d)
    items = "".join(f"<li>{n}</li>" for n in notes)
    return (f'<section class="day" id="day-{d.day.isoformat()}"><h3>{"".join(head)}</h3>'
            f"{timeline(d)}" + (f"<ul>{items}</ul>" if items else "") + "</section>")


def _label(s: ad.SessionOutcome) -> str:
    return f"{hm(s.due)} {escape(s.kind)}"


def _extra_note(s: ad.SessionOutcome) -> str:
    if s.finished is None and s.reason is not None:
        # Cut off by a power cut: as far as its reps are known.
        done = f"{s.reps} of {s.planned} reps known done" if s.reps is not None else "reps unknown"
        return f"{hm(s.started)} (interrupted, {escape(REASONS.get(s.reason, s.reason))}, {done})"
    return f"{hm(s.started)} ({s.reps} reps)"


def _notes(d: ad.Day) -> list[str]:
    notes: list[str] = []
    late = [s for s in d.sessions if s.late]
    if late:
        notes.append("Late: " + ", ".join(f"{_label(s)} started {hm(s.started)} (+{s.late_min} min)" for s in late))
    part = [s for s in d.sessions if s.outcome == ad.PARTIAL]
    if part:
        notes.append("Partly done: " + ", ".join(f"{_label(s)} {s.reps} of {s.planned} reps" for s in part))
    cut = [s for s in d.sessions if s.outcome == ad.INTERRUPTED]
    if cut:
        notes.append("Begun, then interrupted: " + ", ".join(
            f"{_label(s)} started {hm(s.started)}, {escape(REASONS.get(s.reason or '', s.reason or '?'))}, "
            + (f"{s.reps} of {s.planned} reps known done" if s.reps is not None else "reps unknown") for s in cut))
    by_reason: dict[str, list[ad.SessionOutcome]] = {}
    for s in d.sessions:
        if s.outcome == ad.MISSED:
            by_reason.setdefault(s.reason or "unknown", []).append(s)
    if by_reason:
        notes.append("Missed: " + "; ".join(
            f"{escape(REASONS.get(r, r))}: " + ", ".join(_label(s) for s in group) for r, group in by_reason.items()))
    extras = [s for s in d.sessions if s.outcome == ad.EXTRA]
    if extras:
        notes.append("Extra, on request: " + ", ".join(_extra_note(s) for s in extras))
    paused = [s for s in d.sessions if s.outcome == ad.PAUSED]
    if paused:
        notes.append("Paused by a nurse (not due): " + ", ".join(_label(s) for s in paused))
    snoozed = [s for s in d.sessions if s.snoozes]
    if snoozed:
        notes.append("Snoozed: " + ", ".join(f"{_label(s)} ×{s.snoozes}" for s in snoozed))
    held = [s for s in d.sessions if s.deferred]
    if held:
        notes.append("Held over the night: " + ", ".join(
            f"{_label(s)} " + (f"(shared the {escape(hm_of(s.merged_into))} prompt)" if s.merged_into
                               else f"offered {hm(s.offer)}") for s in held))
    still = [s for s in d.sessions if s.outcome in (ad.OPEN, ad.WAITING)]
    if still:
        notes.append("Still open when the record ends: " + ", ".join(_label(s) for s in still))
    for g in d.gaps:
        what = "Power cut" if g.kind == "power_loss" else "Unit switched off"
        notes.append(f"{what}: no record from {when(g.start)} to {when(g.end)} ({_dur(g.minutes)})")
    for e in d.events:
        notes.append(f"{hm(e.at)} {escape(e.text)}")
    if d.more_sessions:
        notes.append(f"{d.more_sessions} more sessions this day are counted above but not listed; {escape(WHERE)}")
    if d.more_gaps:
        notes.append(f"{d.more_gaps} more power cuts or switch-offs began this day and are counted above but not "
                     f"listed; {escape(WHERE)}")
    if d.more_events:
        notes.append(f"{d.more_events} more events this day are not listed; {escape(WHERE)}")
    return notes


def _footer(report: Report, generated: datetime) -> str:
    src = f" from {escape(report.source)}" if report.source else ""
    return (f"<footer>Made {when(generated)}{src} by the bedside report. Due = sessions done or missed; "
            "done includes partly done; adherence = done ÷ due. Sessions count on the day they were offered. "
            "No patient name is kept on the unit or in this report; the episode id links it to the patient's "
            "notes. Per-session details are in the CSV made with this report.</footer>")
