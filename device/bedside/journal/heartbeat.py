"""The heartbeat: when the unit was last known to be running, for bounding a power cut.

The journal's last record says when the unit last did something; on a quiet night that
can be hours before the power went. Every few minutes without a record, the daemon
replaces ``alive.json`` (whole, never in place) with the time and the chain head it had,
so ``power_loss`` can say the outage began within minutes of ``last_known``. The chain
head in it also lets ``verify`` notice a journal that ends before the unit last saw it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bedside.durable import json_loads, read_text, write_atomic

FILE_NAME = "alive.json"
EVERY_S = 600.0          # at most this long between the last record or beat and the next beat


@dataclass(frozen=True, slots=True)
class Beat:
    time: datetime
    boot: str
    mono_ms: int
    seq: int | None
    hash: str | None


def write(data_dir: Path, beat: Beat) -> None:
    body = {"time": beat.time.isoformat(timespec="milliseconds"), "boot": beat.boot, "mono_ms": beat.mono_ms,
            "seq": beat.seq, "hash": beat.hash}
    write_atomic(Path(data_dir) / FILE_NAME, (json.dumps(body, sort_keys=True) + "\n").encode())


def read(data_dir: Path) -> Beat | None:
    """The last heartbeat, or None when there is none or it cannot be read (it only narrows a bound)."""
    try:
        text = read_text(Path(data_dir) / FILE_NAME)
        if text is None:
            return None
        body = json_loads(text)
        seq = body.get("seq")
        return Beat(datetime.fromisoformat(body["time"]), str(body["boot"]), int(body["mono_ms"]),
                    int(seq) if seq is not None else None, body.get("hash"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
