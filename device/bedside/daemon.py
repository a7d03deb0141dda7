"""The unit's one loop: it owns the state, sleeps until the next deadline or input, and
carries out the core's effects (journal first, then sound, screen and LED).

gpiozero callbacks, signal handlers and (later) the serial reader never touch the state:
they put stamped inputs on the inbox. Everything the loop talks to is injected (clock,
journal, display, buzzer, LED), so the same loop runs on a Pi, on mock pins in tests, and
in fast-forwarded simulation.
"""

from __future__ import annotations

import json
import queue
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol

from . import __version__, session
from .clock import Clock
from .config import Config
from .events import ButtonEdge, Effect, Event, Instant, Led, Notice, Play, Record, Show, Tick
from .journal import Journal, JournalError
from .sounds import Player


@dataclass(frozen=True, slots=True)
class Input:
    """An event stamped with the monotonic time it happened (not when the loop got to it)."""

    event: Event
    mono: float


@dataclass(frozen=True, slots=True)
class Stop:
    reason: str


class TimedSource(Protocol):
    """Something besides the core that needs the loop to wake at a time (e.g. a test script)."""

    def deadline(self) -> float | None: ...

    def fire(self, now: Instant) -> None: ...


class LedLike(Protocol):
    def set(self, mode: str) -> None: ...


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return str(uuid.uuid4())


class DisplayLike(Protocol):
    @property
    def error(self) -> str | None: ...

    def show(self, screen: Any, brightness: str) -> bool: ...


@dataclass
class Outputs:
    display: DisplayLike
    player: Player
    led: LedLike | None = None
    observers: list[Callable[[Effect, Instant], None]] = field(default_factory=list)


class Trace:
    """One JSON line per effect with its (virtual) time: what a patient would have seen and heard."""

    def __init__(self, out: IO[str], cfg: Config) -> None:
        self.out = out
        self.tz = cfg.tz
        self._last_show: tuple[Any, str] | None = None
        self._last_led: str | None = None

    def __call__(self, effect: Effect, now: Instant) -> None:
        line: dict[str, Any] = {"time": now.wall.astimezone(self.tz).isoformat(timespec="milliseconds"),
                                "mono": round(now.mono, 3)}
        if isinstance(effect, Show):
            if (effect.screen, effect.brightness) == self._last_show:
                return
            self._last_show = (effect.screen, effect.brightness)
            fields = {k: getattr(effect.screen, k) for k in effect.screen.__slots__}
            line.update(effect="screen", screen=type(effect.screen).__name__, brightness=effect.brightness, **fields)
        elif isinstance(effect, Led):
            if effect.mode == self._last_led:
                return
            self._last_led = effect.mode
            line.update(effect="led", mode=effect.mode)
        elif isinstance(effect, Play):
            line.update(effect="sound", sound=effect.sound)
        else:
            line.update(effect="record", type=effect.type, session=effect.session, **dict(effect.data))
        self.out.write(json.dumps(line, default=str) + "\n")


class Unit:
    def __init__(self, cfg: Config, clock: Clock, journal: Journal, outputs: Outputs, *,
                 time_quality: str = "unverified", boot: str | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.journal = journal
        self.out = outputs
        self.inbox: queue.Queue[Input | Stop] = queue.Queue()
        self.sources: list[TimedSource] = []
        self.boot = boot or boot_id()
        self.time_quality = time_quality
        self.state: session.State | None = None
        self.unsaved: list[tuple[Record, Instant, str]] = []
        self.journal_error: str | None = None
        self.wakeups = 0
        self.timer_wakeups = 0     # wake-ups for a deadline, not an input (the watchdog's spin check)
        self.stopped: str | None = None

    # Called from any thread (gpiozero callbacks, signal handlers).
    def post(self, event: Event, mono: float | None = None) -> None:
        self.inbox.put(Input(event, self.clock.now().mono if mono is None else mono))

    def request_stop(self, reason: str) -> None:
        self.inbox.put(Stop(reason))

    def attach_button(self, button: Any) -> None:
        """Route a gpiozero Button's edges into the inbox, stamped when they happen."""
        button.when_pressed = lambda: self.post(ButtonEdge(True))
        button.when_released = lambda: self.post(ButtonEdge(False))

    # --- the loop ------------------------------------------------------------------

    def start(self) -> None:
        now = self.clock.now()
        past = self.journal.recent()
        self.state, fx = session.start(self.cfg, past, now, time_quality=self.time_quality,
                                       version=__version__, boot=self.boot)
        self._apply(fx, now)

    def deadline(self) -> float:
        assert self.state is not None
        cands = [session.deadline(self.cfg, self.state)]
        d = self.out.player.deadline()
        if d is not None:
            cands.append(d)
        for s in self.sources:
            d = s.deadline()
            if d is not None:
                cands.append(d)
        return min(cands)

    def run(self, until: datetime | None = None) -> str:
        """Run until a Stop arrives (or simulated time reaches ``until``); returns why it stopped."""
        if self.state is None:
            self.start()
        while self.stopped is None:
            self.run_once(until)
            if until is not None and self.stopped is None and self.clock.now().wall >= until:
                # The end of a simulated period is a power cut, not a stop: a later run on the
                # same data continues the unit as a restart after an outage would.
                self.shutdown("end of simulation", record=False)
        return self.stopped

    def run_once(self, until: datetime | None = None) -> None:
        assert self.state is not None
        deadline = self.deadline()
        if until is not None:
            end = self.clock.now().mono + (until - self.clock.now().wall).total_seconds()
            deadline = min(deadline, end)
        item = self.clock.wait(self.inbox, deadline)
        self.wakeups += 1
        if item is None:
            self.timer_wakeups += 1
        if isinstance(item, Stop):
            self.shutdown(item.reason)
            return
        now = self.clock.now()
        self.out.player.advance(now.mono)
        for s in self.sources:
            d = s.deadline()
            if d is not None and d <= now.mono:
                s.fire(now)
        event: Event = Tick()
        if isinstance(item, Input):
            event = item.event
            # Stamped when it happened, but never before the state's own time.
            now = self.clock.at(max(item.mono, self.state.last.mono))
        self.handle(event, now)

    def handle(self, event: Event, now: Instant) -> None:
        assert self.state is not None
        self.state, fx = session.step(self.cfg, self.state, event, now)
        self._apply(fx, now)

    def shutdown(self, reason: str, *, record: bool = True) -> None:
        if self.stopped is not None or self.state is None:
            return
        now = self.clock.now()
        if record:
            self._apply(session.stop(self.cfg, self.state, now, reason), now)
        self.out.player.output(0)
        if self.out.led is not None:
            self.out.led.set("off")
        self.stopped = reason

    # --- effects -------------------------------------------------------------------

    def _commit(self, rec: Record, at: Instant, tq: str) -> bool:
        try:
            self.journal.append(rec, at, tq)
        except JournalError as e:
            self.unsaved.append((rec, at, tq))
            self._problem("journal", "Log not saved: tell nurse")
            self.journal_error = str(e)
            return False
        return True

    def _flush_unsaved(self) -> bool:
        while self.unsaved:
            rec, at, tq = self.unsaved[0]
            try:
                self.journal.append(rec, at, tq)
            except JournalError:
                return False
            self.unsaved.pop(0)
        return True

    def _problem(self, part: str, problem: str | None) -> bool:
        """Note a part's trouble (or recovery) in the state; True if that changed anything."""
        assert self.state is not None
        before = self.state.problems
        self.state = session.with_problem(self.state, part, problem)
        return self.state.problems is not before

    def _apply(self, effects: Iterable[Effect], now: Instant) -> None:
        assert self.state is not None
        changed = False
        saved = self._flush_unsaved()
        if saved:
            changed |= self._problem("journal", None)
        tq = self.state.time_quality
        committed = False
        for fx in effects:
            if isinstance(fx, Record):
                if saved:
                    saved = self._commit(fx, now, tq)
                    committed |= saved
                    changed |= not saved
                else:
                    self.unsaved.append((fx, now, tq))
            elif isinstance(fx, Play):
                # The "done" chime confirms a record; it is not played for one that did not commit.
                if fx.sound != "done" or saved:
                    self.out.player.play(fx.sound, now.mono)
            elif isinstance(fx, Show):
                self.out.display.show(fx.screen, fx.brightness)
            elif isinstance(fx, Led) and self.out.led is not None:
                self.out.led.set(fx.mode)
            for obs in self.out.observers:
                obs(fx, now)
        if committed:
            seq, digest = self.journal.head()
            self.state = session.with_head(self.state, seq, digest)
        if changed:
            # Show the notice now rather than at the next wake-up.
            for fx in session.view(self.cfg, self.state, now):
                if isinstance(fx, Show):
                    self.out.display.show(fx.screen, fx.brightness)
                for obs in self.out.observers:
                    obs(fx, now)
        self._check_parts(now)

    # Short texts for the display's notice line and the nurse screen; the journal's fault
    # record carries the full error.
    PART_TEXT: ClassVar[dict[str, str]] = {"display": "Display fault", "buzzer": "Buzzer fault: tell nurse"}

    def _check_parts(self, now: Instant) -> None:
        """Turn a part's failure or recovery into a Notice for the core (which records it)."""
        assert self.state is not None
        parts = (("display", self.out.display.error), ("buzzer", getattr(self.out.player.output, "error", None)))
        for part, error in parts:
            if (part in self.state.problems) != (error is not None):
                self.handle(Notice(part, self.PART_TEXT[part] if error else None, error), now)

    def record(self, rec: Record, now: Instant) -> None:
        """Commit a record the shell itself produces (e.g. a self-test's results)."""
        self._apply([rec], now)


def detect_time_quality() -> str:
    """How far the system clock can be trusted at start: synchronised, battery-backed, or neither."""
    if Path("/run/systemd/timesync/synchronized").exists():
        return "ntp"
    if Path("/sys/class/rtc/rtc0").exists():
        return "rtc"
    return "unverified"


class DataDirBusy(Exception):
    pass


def lock_data_dir(data: Path) -> IO[bytes]:
    """Hold an exclusive lock so that two daemons never write one journal."""
    import fcntl

    data.mkdir(parents=True, exist_ok=True)
    f = open(data / "daemon.lock", "wb")  # noqa: SIM115 - held open for the daemon's lifetime
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise DataDirBusy(f"another bedside daemon is already using {data}") from None
    return f
