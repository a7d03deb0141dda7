"""Drives the pure core through simulated time, as the daemon's loop does, for tests.

It wakes at each deadline the core asks for and injects button edges at given times; it
records every effect with the instant it happened. No shell code is involved.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bedside.core import machine, restart
from bedside.core.config import Config
from bedside.core.events import ButtonEdge, Decided, Effect, Event, Instant, Led, Past, Play, Record, Show, Tick


@dataclass
class Happened:
    at: Instant
    effect: Effect


@dataclass
class Driver:
    cfg: Config
    start: datetime
    past: list[Past] = field(default_factory=list)
    mono0: float = 5000.0
    log: list[Happened] = field(default_factory=list)
    wakeups: int = 0

    def __post_init__(self) -> None:
        self.offset = self.start.astimezone(UTC) - timedelta(seconds=self.mono0)
        self.now = Instant(self.start.astimezone(UTC), self.mono0)
        self.state, fx = restart.start(self.cfg, self.past, self.now, time_quality="rtc", version="test", boot="b")
        self._record(fx)
        self.edges: list[tuple[float, bool]] = []

    def _record(self, fx: Iterable[Effect]) -> None:
        for e in fx:
            self.log.append(Happened(self.now, e))

    def at_wall(self, wall: datetime) -> float:
        return (wall.astimezone(UTC) - self.offset).total_seconds()

    def _step(self, mono: float, event: Event) -> None:
        mono = max(mono, self.now.mono)
        self.now = Instant(self.offset + timedelta(seconds=mono), mono)
        self.state, fx = machine.step(self.cfg, self.state, event, self.now)
        self.wakeups += 1
        self._record(fx)

    def press(self, at: datetime, seconds: float = 0.3) -> None:
        t = self.at_wall(at)
        self.edges += [(t, True), (t + seconds, False)]
        self.edges.sort()

    def send(self, at: datetime, event: Event) -> None:
        """Run up to ``at`` and hand the core ``event`` then (e.g. a confirmation asked over the serial link)."""
        self.run_until(at)
        self._step(self.at_wall(at), event)

    def bounce(self, at: datetime, levels: list[tuple[float, bool]]) -> None:
        """Raw edges at offsets (seconds) from ``at``, e.g. contact bounce."""
        t = self.at_wall(at)
        self.edges += [(t + dt, lvl) for dt, lvl in levels]
        self.edges.sort()

    def run_until(self, until: datetime) -> None:
        end = self.at_wall(until)
        while True:
            d = machine.deadline(self.cfg, self.state)
            nxt_edge = self.edges[0][0] if self.edges else float("inf")
            if min(d, nxt_edge) > end:
                break
            if nxt_edge <= d:
                t, level = self.edges.pop(0)
                self._step(t, ButtonEdge(level))
            else:
                self._step(d, Tick())
        self._step(end, Tick())

    def jump_clock(self, by: timedelta) -> None:
        """The wall clock is set forward or back; monotonic time is untouched."""
        self.offset += by

    def restart(self, after: timedelta = timedelta(0), clean: bool = False, alive: datetime | None = None) -> None:
        """Power cut (or clean stop) and restart ``after`` later, rebuilding state from the records so far
        (``alive``: the last heartbeat, if one was written after the last record)."""
        if clean:
            self._record(machine.stop(self.cfg, self.state, self.now, "test"))
        past = journal_view(self.records(), self.cfg)
        wall = self.now.wall + after
        self.mono0 = 7.0  # a new boot: monotonic time starts again
        self.offset = wall - timedelta(seconds=self.mono0)
        self.now = Instant(wall, self.mono0)
        self.state, fx = restart.start(self.cfg, past, self.now, time_quality="rtc", version="test", boot="b2",
                                          alive=alive)
        self._record(fx)

    # --- what happened ---------------------------------------------------------------

    def records(self, type_: str | None = None) -> list[tuple[datetime, Record]]:
        return [(h.at.wall, h.effect) for h in self.log
                if isinstance(h.effect, Record) and (type_ is None or h.effect.type == type_)]

    def decisions(self) -> list[tuple[int, str]]:
        return [(h.effect.token, h.effect.outcome) for h in self.log if isinstance(h.effect, Decided)]

    def sounds(self) -> list[tuple[datetime, str]]:
        return [(h.at.wall, h.effect.sound) for h in self.log if isinstance(h.effect, Play)]

    def screens(self) -> list[tuple[datetime, object]]:
        out: list[tuple[datetime, object]] = []
        for h in self.log:
            if isinstance(h.effect, Show) and (not out or out[-1][1] != h.effect.screen):
                out.append((h.at.wall, h.effect.screen))
        return out

    def screen(self) -> object:
        return next(h.effect.screen for h in reversed(self.log) if isinstance(h.effect, Show))

    def brightness(self) -> str:
        return next(h.effect.brightness for h in reversed(self.log) if isinstance(h.effect, Show))

    def led(self) -> str:
        return next(h.effect.mode for h in reversed(self.log) if isinstance(h.effect, Led))

    def sessions(self, type_: str) -> list[str]:
        return [r.session for _, r in self.records(type_) if r.session is not None]


def journal_view(records: list[tuple[datetime, Record]], cfg: Config) -> list[Past]:
    """Records as the journal would hand them back after a restart."""
    out = []
    for n, (t, r) in enumerate(records, 1):
        data = dict(r.data)
        if r.due is not None:
            data["due"] = r.due.astimezone(cfg.tz).isoformat()
        out.append(Past(n, r.type, t, r.session, data))
    return out
