"""The narrow port into the unit's loop: what the serial link and the stick channel may do
with the running unit, and nothing more.

The loop (``unit/loop.py``) owns the state and is the journal's only writer. Other parts
reach it only through ``UnitPort``:

* from any thread: ``post`` an event, ``set_time``, or ``call`` a function on the loop
  and wait for its answer (``Call``; ``LoopBusy`` when the loop does not get to it in time);
* on the loop: ``handle`` an event, ``record`` a record, ``seal``, ``call_soon`` (work for
  the loop's next turn), and read the status (``cfg``, ``state``, ``head``, the journal);
* once, before the loop runs: ``add_source`` (something that wakes the loop at a time),
  ``attach_link`` (the hooks the loop calls when a confirmation ends and at a clean stop)
  and ``observe`` (a function the loop calls with each effect it carries out, e.g. the stick
  channel hearing how a software update's confirmation ended).

It lives in the link because the link is what needs it; the unit implements it, so the
link never imports the unit.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from bedside.core.config import Config
from bedside.core.errors import BedsideError
from bedside.core.events import Decided, Effect, Event, Instant, Record
from bedside.core.state import State
from bedside.journal.journal import Journal
from bedside.secret import WardSecret


class LoopBusy(BedsideError):
    """The loop did not get to a call in time."""


class Call:
    """Work for the loop on behalf of another thread: ``fn(now)`` runs there, between events.

    The thread that posted it waits for the result with ``wait``; the loop never waits for
    that thread. ``fn`` must be quick (a journal read, a state change): it runs between a
    patient's button presses.
    """

    def __init__(self, fn: Callable[[Instant], Any]) -> None:
        self.fn = fn
        self._done: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def run(self, now: Instant) -> None:
        try:
            result: tuple[bool, Any] = (True, self.fn(now))
        except Exception as e:  # reported to the caller; the loop carries on
            result = (False, e)
        self._done.put_nowait(result)

    def wait(self, timeout: float) -> Any:
        try:
            ok, value = self._done.get(timeout=timeout)
        except queue.Empty:
            raise LoopBusy(f"no answer from the unit's loop within {timeout:g} s") from None
        if not ok:
            raise value
        return value


class TimedSource(Protocol):
    """Something besides the core that needs the loop to wake at a time (e.g. a test script)."""

    def deadline(self) -> float | None: ...

    def fire(self, now: Instant) -> None: ...


class LinkHooks(Protocol):
    """The serial link's loop-side part: told how confirmations ended, and of a clean stop."""

    def decided(self, effect: Decided, now: Instant) -> None: ...

    def stopping(self, now: Instant) -> list[Record]: ...

    def ward_changed(self, ward: WardSecret) -> list[Record]: ...

    def revocations_changed(self) -> list[Record]: ...


class UnitPort(Protocol):
    """The unit as the link and the stick channel see it (``unit.loop.Unit`` implements it)."""

    @property
    def cfg(self) -> Config: ...

    @property
    def state(self) -> State | None: ...

    @property
    def time_quality(self) -> str: ...

    @property
    def journal(self) -> Journal | None: ...

    @property
    def journal_error(self) -> str | None: ...

    @property
    def saved(self) -> bool:
        """Whether every record so far is committed (none kept in memory for failing storage)."""
        ...

    def head(self) -> tuple[int, str] | None: ...

    # From any thread.
    def post(self, event: Event, mono: float | None = None) -> None: ...

    def set_time(self, wall: datetime, source: str = "nurse") -> None: ...

    def call(self, fn: Callable[[Instant], Any], timeout: float) -> Any: ...

    # On the loop.
    def call_soon(self, fn: Callable[[Instant], Any]) -> Call: ...

    def handle(self, event: Event, now: Instant) -> None: ...

    def record(self, rec: Record, now: Instant) -> None: ...

    def reconfigure(self, cfg: Config | None, ward: WardSecret | None, now: Instant,
                    revoked: bool = False) -> None: ...

    def seal(self, now: Instant) -> None: ...

    # Before the loop runs.
    def add_source(self, source: TimedSource) -> None: ...

    def attach_link(self, link: LinkHooks) -> None: ...

    def observe(self, observer: Callable[[Effect, Instant], None]) -> None: ...
