"""What a unit keeps of the ward's signed settings it applied last (``DATA/ward-settings.json``):
their counter (``freshness.py``) and the revocation list the serial link and the stick export
check against. Written by ``stick/settings.py`` after a press; read here by whoever checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bedside.durable import KEY_FILE, json_loads, read_bounded

STATE_FILE = "ward-settings.json"
# What the ward may revoke: laptop certificates by id, laptop keys by key id, sticks by id.
REVOCABLE = ("certs", "laptop_keys", "sticks")


def read(data: Path) -> dict[str, Any]:
    try:
        # Bounded, never waiting on a fifo, and no crash on nesting too deep (a damaged card).
        body = json_loads(read_bounded(data / STATE_FILE, KEY_FILE))
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def trusted_counter(data: Path) -> int:
    c = read(data).get("counter")
    return c if isinstance(c, int) and not isinstance(c, bool) and c >= 0 else 0


def revoked(data: Path) -> dict[str, frozenset[str]]:
    """The revocation list the unit applied last (empty sets when none)."""
    r = read(data).get("revoked")
    r = r if isinstance(r, dict) else {}
    lists = {k: r.get(k) for k in REVOCABLE}
    # A list that is not one (a damaged card): nothing revoked by it, never a TypeError.
    return {k: frozenset(x for x in v if isinstance(x, str)) if isinstance(v, list) else frozenset()
            for k, v in lists.items()}
