"""Hand-made, correctly chained journal records for pure tests of the report.

The scripted week (conftest ``week``) gives real journals from the simulator; these give
record shapes the simulator does not make yet (admissions, downloads, unknown types) and
random streams for properties.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bedside.journal import chain

OFFSET = "+01:00"


def t(local: str) -> str:
    """A record time, ``2026-11-24T09:00`` → ``2026-11-24T09:00:00.000+01:00``."""
    if len(local) == 16:
        local += ":00"
    return f"{local}.000{OFFSET}"


def sealed(bodies: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Number, link and hash record bodies exactly as the journal does."""
    out: list[dict[str, Any]] = []
    prev = chain.GENESIS
    for seq, body in enumerate(bodies, 1):
        rec = {"boot": "b1", "mono_ms": seq * 1000, "tq": "ntp", **body, "seq": seq, "prev": prev}
        rec.pop("hash", None)
        _, digest = chain.seal_body(rec)
        rec["hash"] = digest
        prev = digest
        out.append(rec)
    return out


def rec(type_: str, at: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "time": t(at), **fields}


def srec(type_: str, session: str, at: str, **fields: Any) -> dict[str, Any]:
    """A session record; ``due`` from the session id unless given."""
    fields.setdefault("due", t(session[:16]))
    return {"type": type_, "time": t(at), "session": session, **fields}


def done(session: str, at: str, *, reps: int = 20, planned: int = 20, late_min: int = 1, early: bool = False,
         snoozes: int = 0, duration_s: int = 100) -> dict[str, Any]:
    return srec("done", session, at, reps=reps, planned=planned, late_min=late_min, early=early, snoozes=snoozes,
                duration_s=duration_s, prompt_to_start_s=late_min * 60, kind=session.split()[1])
