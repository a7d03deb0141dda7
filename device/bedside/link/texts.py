"""What a person at a terminal sees on the serial link: status, one line per record, the
outcome of a change (``help`` is made from the verbs' table, ``commands.py``).

Pure text formatting (no port, no clock), so it is tested by comparing strings. Lines fit
an 80-column terminal where they can; a record's line can run longer with its details.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from bedside.core.records import ENVELOPE_KEYS
from bedside.journal import chain

LOG_LIMIT = 500


def banner(unit: str, version: str) -> list[str]:
    return [f"Bedside unit {unit} (bedside {version}). Type help and press Enter."]


def prompt(unit: str) -> bytes:
    return f"{unit}> ".encode()


def status_lines(s: Mapping[str, Any]) -> list[str]:
    """The ``status`` answer from the service's status (as JSON, the same the tool gets)."""
    nxt = s["next"]
    today = s["today"]
    head_seq, head_hash = s["head"]
    if s["lockout_s"]:
        link = f"locked out for {(s['lockout_s'] + 59) // 60} more minutes after too many wrong secrets"
    elif s["unlocked"]:
        link = "unlocked (locks after 10 minutes without a command, or with lock)"
    elif s.get("keys"):
        link = (f"locked; a nurse's certified laptop key unlocks it (bedside pull --laptop-key; {s['left']} attempts "
                "left before a 10-minute lockout)")
    elif not s["secret"]:
        link = "locked; no ward secret set on this unit (set one with 'bedside secret set')"
    else:
        link = f"locked ({s['left']} attempts left before a 10-minute lockout)"
    missed = f", {today['missed']} missed" if today["missed"] else ""
    lines = [
        f"Unit        {s['unit']} (bedside {s['version']})",
        f"Time        {clock_text(s['time'], s['zone'])}, {quality(s['tq'])}",
        f"Next        {nxt[0]} {nxt[1]}" if nxt[0] else "Next        nothing scheduled",
        f"Today       {today['done']} of {today['due']} done so far{missed}",
        f"Journal     {head_seq} records, head {head_seq}/{chain.short(head_hash)}" if head_seq else
        "Journal     empty",
        f"Episode     {episode_line(s.get('episode'))}",
        f"Link        {link}",
    ]
    dl = s.get("last_download")
    lines.append(f"Downloaded  {dl['time'][:19].replace('T', ' ')} up to record {dl.get('to_seq', '?')}" if dl else
                 "Downloaded  never")
    for part, problem in sorted((s.get("problems") or {}).items()):
        lines.append(f"Problem     {part}: {problem}")
    return lines


def episode_line(ep: Mapping[str, Any] | None) -> str:
    if not ep:
        return "none: no patient admitted"
    day = ep["day"]
    when = f"post-operative day {day}" if day >= 0 else f"{-day} day{'s' if day != -1 else ''} before surgery"
    return f"{ep['id']}, surgery {ep['surgery']}, regimen {ep['regimen']}, {when}"


def clock_text(iso: str, zone: str) -> str:
    """``2026-11-24 09:30:01 Europe/London (UTC+00:00)`` from a local ISO time with its offset."""
    return f"{iso[:19].replace('T', ' ')} {zone} (UTC{iso[19:25]})"


def quality(tq: str) -> str:
    return {
        "ntp": "time from the network",
        "rtc": "time from the battery clock",
        "set-by-nurse": "time set by a nurse",
        "unverified": "time not verified (no battery clock; set it with time set)",
        "distrusted": "TIME WRONG: earlier than the journal; set it with time set",
        "simulated": "simulated time",
    }.get(tq, f"time quality {tq}")


def record_line(rec: Mapping[str, Any]) -> str:
    """One record on one line: seq, local time, type, session, details."""
    when = str(rec.get("time", ""))[:19].replace("T", " ")
    sid = str(rec.get("session") or "")
    if sid[:10] == when[:10]:
        sid = sid[11:]          # same day: the time and kind say it
    details = " ".join(f"{k}={_value(v)}" for k, v in sorted(rec.items()) if k not in ENVELOPE_KEYS)
    flag = " [time distrusted]" if rec.get("tq") == "distrusted" else ""
    sid = f"{sid}  " if sid else ""
    return f"{rec.get('seq', '?'):>6}  {when}  {rec.get('type', '?'):<13} {sid}{details}{flag}".rstrip()


def seqs_text(lo: Any, hi: Any) -> str:
    """"records 11–14", "record 11", "records from 11" or "records" (range not known)."""
    if not isinstance(lo, int):
        return "records"
    if not isinstance(hi, int):
        return f"records from {lo}"
    return f"record {lo}" if lo == hi else f"records {lo}–{hi}"


def mib(size: Any) -> str:
    return f"{size / 2**20:.1f} MiB" if isinstance(size, int) else "? MiB"


def unread_line(u: Mapping[str, Any]) -> str:
    """A file a page passed over, at the terminal: which records, which file, what to do."""
    return (f"     (not shown: {seqs_text(u.get('first_seq'), u.get('last_seq'))}, in {u.get('file')} "
            f"({mib(u.get('size'))}): {u.get('problem')})")


def _value(v: Any) -> str:
    if isinstance(v, str):
        if len(v) == 64 and all(c in "0123456789abcdef" for c in v):
            return v[:12]         # a hash: the start identifies it for a person
        return v if v and " " not in v else json.dumps(v)
    if isinstance(v, list):
        return ",".join(_value(x) for x in v)
    return json.dumps(v)


def verdict_lines(outcome: str, left: int = 0, seconds: int = 0) -> list[str]:
    if outcome == "unlocked":
        return ["Unlocked. It locks again after 10 minutes without a command, or type lock."]
    if outcome == "denied":
        return [f"Wrong secret. {left} attempt{'s' if left != 1 else ''} left before the port locks for 10 minutes."]
    return [f"Locked out after too many wrong secrets: try again in {(seconds + 59) // 60} minutes."]


def decision_lines(outcome: str, detail: Mapping[str, Any],
                   sentence: Callable[[Mapping[str, Any]], str] | None = None) -> list[str]:
    """How a change ended; ``sentence`` is its kind's words for it done (``changes.Kind.sentence``)."""
    if outcome == "confirmed":
        return [f"Confirmed on the unit. {sentence(detail) if sentence is not None else 'Done.'}"]
    if outcome == "failed":
        return [f"Not changed: {detail.get('problem', 'the unit could not make the change')}."]
    if outcome == "refused":
        return [f"Not changed: the unit refused it ({detail.get('problem', 'no reason given')})."]
    reason = {
        "timeout": "nobody pressed the button in time",
        "cancelled": "it was cancelled on the unit (button held)",
        "busy": "the patient is doing their exercises; try again when they have finished",
        "superseded": "another change was asked for",
        "withdrawn": "cancelled here",
        "stopped": "the unit stopped",
    }.get(outcome, outcome)
    return [f"Not changed: {reason}."]
