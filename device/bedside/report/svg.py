"""The day timeline as inline SVG, and the words for times and reasons the page shares with it.

No fonts, images or scripts: shapes and text that any browser draws, and that print in
colour and still read in black and white (each outcome has its own shape).
"""

from __future__ import annotations

from datetime import date, datetime
from html import escape

from bedside.core.records import T
from bedside.report import adherence as ad

REASONS = {
    "unanswered": "no answer",
    "superseded": "replaced by the next prompt",
    "power_loss": "power cut",
    "unit_off": "unit switched off",
    "clock_jump": "clock moved past it",
    "busy": "another session was running",
    "late": "too late to offer",
    "discharged": "open when the patient was discharged",
    "changeover": "open when a patient was admitted or discharged",
}

# Timeline geometry (SVG user units; the SVG scales to the page width).
W, LEFT, RIGHT = 760, 62, 18
PLOT = W - LEFT - RIGHT
LANE_Y = {"routine": 18, "hourly": 40}
AXIS_Y = 54
H = 68


def day_name(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b %Y}"


def when(t: datetime | None) -> str:
    return f"{day_name(t.date())} {t:%H:%M}" if t is not None else "-"


def hm(t: datetime | None) -> str:
    return f"{t:%H:%M}" if t is not None else "?"


def hm_of(session_id: str | None) -> str:
    return (session_id or "?")[11:16] or "?"


# --- the timeline --------------------------------------------------------------------

def _x(t: datetime | None, d: date) -> float | None:
    """Horizontal position of a wall-clock time on day ``d`` (None if on another day)."""
    if t is None:
        return None
    wall = t.replace(tzinfo=None)
    start = datetime.combine(d, datetime.min.time())
    minutes = (wall - start).total_seconds() / 60
    if minutes < 0 or minutes > 1440:
        return None
    return LEFT + PLOT * minutes / 1440


def _lane(kind: str) -> float:
    return LANE_Y.get(kind, LANE_Y["hourly"])


def timeline(d: ad.Day) -> str:
    """One day from 00:00 to 24:00: a mark where each session happened (or was missed)."""
    out = [f'<svg class="timeline" viewBox="0 0 {W} {H}" role="img" '
           f'aria-label="Timeline of {day_name(d.day)}"><title>Sessions on {day_name(d.day)}</title>']
    for g in d.gaps:
        part = ad.clip(g, d.day)
        if part is None:
            continue
        x0, x1 = _x(part[0], d.day) or LEFT, _x(part[1], d.day) or LEFT + PLOT
        fill = "#e3e6ea" if g.kind == "power_loss" else "#eef0f3"
        what = "power cut" if g.kind == "power_loss" else "switched off"
        out.append(f'<rect class="gap" x="{x0:.1f}" y="6" width="{max(1.0, x1 - x0):.1f}" height="{AXIS_Y - 6}" '
                   f'fill="{fill}"><title>{what}: {when(g.start)} to {when(g.end)}</title></rect>')
        if x1 - x0 > 60:
            out.append(f'<text class="lbl" x="{(x0 + x1) / 2:.1f}" y="33" text-anchor="middle">'
                       f"{what}</text>")
    for h in range(25):
        x = LEFT + PLOT * h / 24
        major = h % 3 == 0
        out.append(f'<line x1="{x:.1f}" y1="{8 if major else AXIS_Y - 4}" x2="{x:.1f}" y2="{AXIS_Y}" '
                   f'stroke="{"#e1e5ea" if major else "#c9ced6"}" stroke-width="1"/>')
        if major:
            out.append(f'<text class="tick" x="{x:.1f}" y="{H - 3}" text-anchor="middle">{h:02d}:00</text>')
    out.append(f'<line x1="{LEFT}" y1="{AXIS_Y}" x2="{LEFT + PLOT}" y2="{AXIS_Y}" stroke="#9aa3ad"/>')
    for kind, y in LANE_Y.items():
        out.append(f'<text class="lbl" x="4" y="{y + 4}">{kind.capitalize()}</text>')
    for e in d.events:
        if e.kind == T.CLOCK_SET:
            xc = _x(e.at, d.day)
            if xc is not None:
                out.append(f'<line class="clock" x1="{xc:.1f}" y1="4" x2="{xc:.1f}" y2="{AXIS_Y}" stroke="#1565c0" '
                           f'stroke-dasharray="3 2"><title>{escape(e.text)}</title></line>')
    for e in d.events:
        if e.kind in (T.ADMIT, T.DISCHARGE):
            xc = _x(e.at, d.day)
            if xc is not None:
                word = "admitted" if e.kind == T.ADMIT else "discharged"
                out.append(f'<g class="ep-{e.kind}"><line x1="{xc:.1f}" y1="2" x2="{xc:.1f}" y2="{AXIS_Y}" '
                           f'stroke="#37474f" stroke-width="2"/><text class="lbl" x="{xc + 3:.1f}" y="10">'
                           f'{word} {hm(e.at)}</text><title>{escape(e.text)}</title></g>')
    for s in d.held:
        out.append(_night_mark(s, d.day))
    for s in d.sessions:
        out.append(_mark(s, d.day))
    out.append("</svg>")
    return "".join(out)


def _night_mark(s: ad.SessionOutcome, d: date) -> str:
    """Where a session fell due at night (its outcome is drawn where it was offered)."""
    x = _x(s.due, d)
    if x is None:
        return ""
    y = _lane(s.kind)
    tip = f"{s.kind} due {hm(s.due)}: at night, held over to {when(s.offer)}"
    return (f'<rect class="m-due" x="{x - 3.5:.1f}" y="{y - 3.5}" width="7" height="7" fill="#fff" stroke="#7b8794" '
            f'stroke-width="1.5" transform="rotate(45 {x:.1f} {y})"><title>{escape(tip)}</title></rect>')


def _mark(s: ad.SessionOutcome, d: date) -> str:
    y = _lane(s.kind)
    tip = f"<title>{escape(_tip(s))}</title>"
    parts: list[str] = []
    if s.deferred and s.due.date() == d:
        parts.append(_night_mark(s, d))
    if s.is_done:
        x = _x(s.started, d) or _x(s.offer, d)
        if x is None:
            return "".join(parts)
        colour = "#b35c00" if s.late else "#2e7d32"
        xo = _x(s.offer, d)
        if s.late and xo is not None:
            parts.append(f'<line x1="{xo:.1f}" y1="{y}" x2="{x:.1f}" y2="{y}" stroke="{colour}" stroke-width="2" '
                         'stroke-dasharray="2 2"/>')
            parts.append(f'<text class="lateno" x="{x:.1f}" y="{y - 8}" text-anchor="middle">+{s.late_min}</text>')
        if s.outcome in (ad.PARTIAL, ad.INTERRUPTED):
            parts.append(f'<g class="m-partial"><circle cx="{x:.1f}" cy="{y}" r="5.5" fill="#fff" stroke="{colour}" '
                         f'stroke-width="2"/><path d="M{x:.1f} {y - 5.5} A5.5 5.5 0 0 0 {x:.1f} {y + 5.5} Z" '
                         f'fill="{colour}"/>{tip}</g>')
        else:
            cls = "m-late" if s.late else "m-done"
            parts.append(f'<circle class="{cls}" cx="{x:.1f}" cy="{y}" r="5.5" fill="{colour}">{tip}</circle>')
        return "".join(parts)
    x = _x(s.offer, d)
    if x is None:
        return "".join(parts)
    if s.outcome == ad.MISSED:
        parts.append(f'<g class="m-missed" stroke="#c62828" stroke-width="2.4" stroke-linecap="round">'
                     f'<path d="M{x - 4.5:.1f} {y - 4.5} L{x + 4.5:.1f} {y + 4.5} M{x - 4.5:.1f} {y + 4.5} '
                     f'L{x + 4.5:.1f} {y - 4.5}"/>{tip}</g>')
    elif s.outcome == ad.MERGED:
        parts.append(f'<circle class="m-merged" cx="{x:.1f}" cy="{y}" r="3" fill="#7b8794">{tip}</circle>')
    elif s.outcome == ad.EXTRA:
        parts.append(f'<g class="m-extra" stroke="#2e7d32" stroke-width="2.4" stroke-linecap="round">'
                     f'<path d="M{x - 5:.1f} {y} L{x + 5:.1f} {y} M{x:.1f} {y - 5} L{x:.1f} {y + 5}"/>{tip}</g>')
    elif s.outcome in (ad.CHANGEOVER, ad.NO_ONE):
        parts.append(f'<circle class="m-nobody" cx="{x:.1f}" cy="{y}" r="4" fill="none" stroke="#7b8794" '
                     f'stroke-width="1.5">{tip}</circle>')
    elif s.outcome == ad.PAUSED:
        parts.append(f'<g class="m-paused" fill="#7b8794"><rect x="{x - 4:.1f}" y="{y - 4.5}" width="3" height="9"/>'
                     f'<rect x="{x + 1:.1f}" y="{y - 4.5}" width="3" height="9"/>{tip}</g>')
    else:
        parts.append(f'<circle class="m-open" cx="{x:.1f}" cy="{y}" r="5" fill="none" stroke="#7b8794" '
                     f'stroke-width="1.5" stroke-dasharray="2 2">{tip}</circle>')
    return "".join(parts)


def _tip(s: ad.SessionOutcome) -> str:
    base = f"{s.kind} due {hm(s.due)}"
    if s.outcome == ad.DONE:
        return f"{base}: done, started {hm(s.started)}" + (f" ({s.late_min} min late)" if s.late else "")
    if s.outcome == ad.PARTIAL:
        return f"{base}: partly done, {s.reps} of {s.planned} reps, started {hm(s.started)}"
    if s.outcome == ad.INTERRUPTED:
        reps = f"{s.reps} of {s.planned} reps known done" if s.reps is not None else "reps unknown"
        why = REASONS.get(s.reason or "", s.reason or "?")
        return f"{base}: started {hm(s.started)}, interrupted ({why}), {reps}"
    if s.outcome == ad.MISSED:
        return f"{base}: missed ({REASONS.get(s.reason or '', s.reason or '?')})"
    if s.outcome == ad.MERGED:
        return f"{base}: held over the night, shared the {hm_of(s.merged_into)} prompt"
    if s.outcome == ad.PAUSED:
        return f"{base}: paused by a nurse (not due)"
    if s.outcome == ad.CHANGEOVER:
        return f"{base}: {REASONS.get(s.reason or '', 'open at an admission or discharge')}: nobody's (not due)"
    if s.outcome == ad.NO_ONE:
        return f"{base}: no patient admitted, no one answered (not due)"
    if s.outcome == ad.EXTRA:
        return f"extra session at {hm(s.started)}, on request: {s.reps} of {s.planned} reps"
    return f"{base}: still open when the record ends"


def legend() -> str:
    items = [
        ('<circle cx="8" cy="8" r="5.5" fill="#2e7d32"/>', "done"),
        ('<circle cx="8" cy="8" r="5.5" fill="#fff" stroke="#2e7d32" stroke-width="2"/>'
         '<path d="M8 2.5 A5.5 5.5 0 0 0 8 13.5 Z" fill="#2e7d32"/>', "partly done"),
        ('<circle cx="8" cy="8" r="5.5" fill="#b35c00"/>', f"done late (+minutes, {ad.LATE_AFTER_MIN}+)"),
        ('<path d="M3.5 3.5 L12.5 12.5 M3.5 12.5 L12.5 3.5" stroke="#c62828" stroke-width="2.4" '
         'stroke-linecap="round"/>', "missed"),
        ('<rect x="5" y="5" width="6" height="6" fill="none" stroke="#7b8794" transform="rotate(45 8 8)"/>',
         "fell due at night (held over)"),
        ('<circle cx="8" cy="8" r="3" fill="#7b8794"/>', "shared another prompt"),
        ('<rect x="4" y="3.5" width="3" height="9" fill="#7b8794"/><rect x="9" y="3.5" width="3" height="9" '
         'fill="#7b8794"/>', "paused by a nurse (not due)"),
        ('<path d="M3 8 L13 8 M8 3 L8 13" stroke="#2e7d32" stroke-width="2.4" stroke-linecap="round"/>',
         "extra session on request"),
        ('<rect x="0" y="2" width="16" height="12" fill="#e3e6ea"/>', "no power"),
        ('<line x1="8" y1="0" x2="8" y2="16" stroke="#1565c0" stroke-dasharray="3 2"/>', "clock changed"),
        ('<line x1="8" y1="0" x2="8" y2="16" stroke="#37474f" stroke-width="2"/>', "admitted / discharged"),
        ('<circle cx="8" cy="8" r="4" fill="none" stroke="#7b8794" stroke-width="1.5"/>',
         "nobody's: no patient, or open at an admission or discharge"),
    ]
    body = "".join(f'<span><svg viewBox="0 0 16 16" aria-hidden="true">{svg}</svg> {escape(text)}</span>'
                   for svg, text in items)
    return f'<div class="legend">{body}</div>'
