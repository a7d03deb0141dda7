"""The one journal writer used while no loop runs: commissioning (``secret set``, ``keys
init``) and a stick export with the daemon stopped.

The loop is the journal's only writer while it runs; without it, this holds the data
directory's lock (so no daemon can start and write alongside), opens the journal, appends
records stamped with the system clock and the clock's trust as the daemon would stamp them,
and closes both. ``DataDirBusy`` means a daemon is running: the caller says what to do.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

from bedside.core.events import Instant, Record
from bedside.journal import chain
from bedside.journal.journal import Journal
from bedside.unit import host
from bedside.unit.clock import SystemClock


class OfflineWriter:
    """Holds the data directory's lock from creation to ``close``; the journal is opened on first use."""

    def __init__(self, data: Path, tz: ZoneInfo | None = None) -> None:
        self.data = data
        self.tz = tz or ZoneInfo("UTC")
        self._lock = host.lock_data_dir(data)     # DataDirBusy while a daemon runs; OSError if unusable
        self._journal: Journal | None = None
        self._boot = host.boot_id()

    @property
    def journal(self) -> Journal:
        """The journal, opened now if need be (``JournalError`` when it cannot be)."""
        if self._journal is None:
            self._journal = Journal(self.data, self.tz, self._boot)
        return self._journal

    def append(self, type_: str, data: dict[str, Any]) -> None:
        """Commit one record, stamped now (``JournalError`` when it cannot be written).

        A simulator's journal runs on virtual time: a record stamped with this computer's clock
        and boot would make its next run distrust its clock (a record later than its virtual
        time) or see a boot reappear. There the record is stamped as the simulator would stamp
        it: at the journal's last time, ``simulated``, in a boot of its own."""
        j = self.journal
        # Marked, so that the next start does not read the daemon's last run as ended by a
        # power cut because these came after its stop (core/restart.py).
        data = {**data, "offline": True}
        last = j.last_record()
        if last is not None and last.get("tq") == "simulated" and isinstance(last.get("time"), str):
            with contextlib.suppress(ValueError):
                j.boot = str(uuid.uuid4())
                at = Instant(chain.parse_time(last["time"]), 0.0)
                j.append(Record(type_, data=data), at, "simulated")
                return
        j.append(Record(type_, data=data), SystemClock().now(), host.detect_time_quality())

    def close(self) -> None:
        try:
            if self._journal is not None:
                self._journal.close()
        finally:
            self._lock.close()

    def __enter__(self) -> OfflineWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
