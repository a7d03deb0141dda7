"""The unit's one loop: it owns the state, sleeps until the next deadline or input, and
carries out the core's effects (journal first, then sound, screen and LED).

gpiozero callbacks, signal handlers and the serial link's thread never touch the state:
they put stamped inputs on the inbox, or a ``Call`` that the loop runs and answers (how a
serial request reads the journal or asks for a change without blocking prompting).
Everything the loop talks to is injected (clock, journal, display, buzzer, LED), so the
same loop runs on a Pi, on mock pins in tests, and in fast-forwarded simulation. The
journal is reached through a ``Store`` (store.py), which checks it at start and keeps
records in memory while storage fails: prompting never depends on the disk, and no
confirmation is shown for a record that is not committed.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, ClassVar, Protocol

from bedside import __version__
from bedside.core import machine, restart, state, views
from bedside.core import screens as sc
from bedside.core.config import Config
from bedside.core.events import (
    ButtonEdge,
    ClockSet,
    Decided,
    Effect,
    Event,
    Instant,
    Led,
    Notice,
    Play,
    Record,
    SetClock,
    Show,
    Tick,
)
from bedside.core.records import T
from bedside.display.surface import Surface
from bedside.journal.journal import Journal
from bedside.journal.store import Store
from bedside.link.unit_port import Call, LinkHooks, TimedSource
from bedside.secret import WardSecret
from bedside.unit import host
from bedside.unit.clock import Clock
from bedside.unit.sounds import Player
from bedside.unit.systemlog import SystemLog

# Sounds that confirm something the journal must hold first.
CONFIRMING = frozenset({"done", "snooze"})
NOT_SAVED = sc.Hint("Not saved", "Tell a nurse")


@dataclass(frozen=True, slots=True)
class Input:
    """An event stamped with the monotonic time it happened (not when the loop got to it)."""

    event: Event | SetClock
    mono: float


@dataclass(frozen=True, slots=True)
class Stop:
    reason: str


class LedLike(Protocol):
    def set(self, mode: str) -> None: ...


def due_at(source: object) -> float | None:
    """From when a timed source may be fired: its ``earliest()`` if it has one (housekeeping
    that can wait for a wake-up the loop makes anyway: the watchdog's ping, the display's
    probe), else its ``deadline()``, which is always the latest the loop wakes for it."""
    earliest = getattr(source, "earliest", None)
    return earliest() if earliest is not None else source.deadline()  # type: ignore[attr-defined, no-any-return]


@dataclass
class Outputs:
    display: Surface
    player: Player
    led: LedLike | None = None
    observers: list[Callable[[Effect, Instant], None]] = field(default_factory=list)


# Screens whose trace name is not their class's (traces are read by scripts: the names stay).
TRACE_NAMES = {"EpisodeChange": "Episode"}


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
        if isinstance(effect, Decided):
            line.update(effect="decided", token=effect.token, outcome=effect.outcome)
        elif isinstance(effect, Show):
            if (effect.screen, effect.brightness) == self._last_show:
                return
            self._last_show = (effect.screen, effect.brightness)
            fields = {k: getattr(effect.screen, k) for k in effect.screen.__slots__}
            name = type(effect.screen).__name__
            line.update(effect="screen", screen=TRACE_NAMES.get(name, name), brightness=effect.brightness, **fields)
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
    def __init__(self, cfg: Config, clock: Clock, journal: Journal | None, outputs: Outputs, *,
                 time_quality: str = "unverified", boot: str | None = None, store: Store | None = None,
                 set_clock: Callable[[datetime], None] | None = None) -> None:
        self.cfg = cfg
        self.clock = clock
        self.out = outputs
        self.inbox: queue.Queue[Input | Stop | Call] = queue.Queue()
        self.sources: list[TimedSource] = []
        self.boot = boot or host.boot_id()
        if store is None:
            if journal is None:
                raise ValueError("a Unit needs a journal or a store")
            store = Store(journal.data, cfg.tz, self.boot, journal=journal)
        self.store = store
        # Setting the wall clock on command (the serial link's ``time set``); the virtual and
        # system clocks both can, a test may inject its own.
        self.set_clock = set_clock or getattr(clock, "set_wall", None)
        self.time_quality = time_quality
        self.state: state.State | None = None
        self.wakeups = 0
        self.timer_wakeups = 0     # wake-ups for a deadline, not an input (the watchdog's spin check)
        self.stopped: str | None = None
        self._link: LinkHooks | None = None
        self._loop_thread: int | None = None     # the thread that runs the loop (``handle`` checks it)
        # When the core next needs a step, and for which state and config (set by ``deadline``;
        # a pure function of the two); when its picture next moves without one; the instant of
        # the last picture drawn of this state.
        self._step_due = float("-inf")
        self._due_of: tuple[state.State | None, Config | None] = (None, None)
        self._redraw_due = float("-inf")
        self._drawn_at: Instant | None = None
        # The latest instant the loop has acted at (anything it did may have been recorded):
        # an input it gets to later is never stamped before it, so within one boot the
        # journal's seq order is the order of its monotonic stamps (verify checks it).
        self._acted_mono = float("-inf")

    @property
    def journal(self) -> Journal | None:
        return self.store.journal

    @property
    def unsaved(self) -> list[tuple[Record, Instant, str]]:
        """Records kept in memory because storage is failing (written when it recovers)."""
        return self.store.pending

    @property
    def journal_error(self) -> str | None:
        return self.store.error

    # --- the port (link/unit_port.py): what the link, the stick channel and supervision use ---

    @property
    def saved(self) -> bool:
        return not self.store.pending

    def head(self) -> tuple[int, str] | None:
        return self.store.head()

    def add_source(self, source: TimedSource) -> None:
        """Wake the loop at ``source``'s deadlines (added before the loop runs, or on it)."""
        self.sources.append(source)

    def attach_link(self, link: LinkHooks) -> None:
        self._link = link

    def observe(self, observer: Callable[[Effect, Instant], None]) -> None:
        """Call ``observer(effect, now)`` on the loop with each effect, after it is carried out
        (added before the loop runs, or on it)."""
        self.out.observers.append(observer)

    def call_soon(self, fn: Callable[[Instant], Any]) -> Call:
        """Queue ``fn`` as the loop's next piece of work (from the loop, or from any thread)."""
        c = Call(fn)
        self.inbox.put(c)
        return c

    def call(self, fn: Callable[[Instant], Any], timeout: float) -> Any:
        """Run ``fn(now)`` on the loop and wait for its answer (from another thread; ``LoopBusy`` on timeout)."""
        return self.call_soon(fn).wait(timeout)

    def seal(self, now: Instant) -> None:
        """Seal the journal so far (on the loop; e.g. before an export, so that it ends with a seal)."""
        if self.state is not None:
            self._acted_mono = max(self._acted_mono, now.mono)
            self.store.seal(now, self.state.time_quality)

    # Called from any thread (gpiozero callbacks, signal handlers).
    def post(self, event: Event, mono: float | None = None) -> None:
        self.inbox.put(Input(event, self.clock.now().mono if mono is None else mono))

    def request_stop(self, reason: str) -> None:
        self.inbox.put(Stop(reason))

    def set_time(self, wall: datetime, source: str = "nurse") -> None:
        """Ask the loop to set the wall clock (from any thread, e.g. the serial link's ``time set``)."""
        self.inbox.put(Input(SetClock(wall, source), self.clock.now().mono))

    def attach_button(self, button: Any) -> None:
        """Route the button's edges into the inbox, stamped when they happen (a gpiozero input
        device, active when pressed, or anything with the same two callbacks)."""
        if hasattr(button, "on_edge"):
            # Stamped by the kernel when the edge happened (pins.LineEventButton).
            button.on_edge = lambda pressed, mono: self.post(ButtonEdge(pressed), mono)
            return
        button.when_activated = lambda: self.post(ButtonEdge(True))
        button.when_deactivated = lambda: self.post(ButtonEdge(False))

    # --- the loop ------------------------------------------------------------------

    def start(self) -> None:
        self._loop_thread = threading.get_ident()
        now = self.clock.now()
        opened = self.store.start(now, self.time_quality)
        self.state, fx = restart.start(self.cfg, opened.past, now, time_quality=self.time_quality,
                                       version=__version__, boot=self.boot, alive=opened.alive)
        # What the journal check found is logged right after the start record.
        self._apply([*fx[:1], *opened.records, *fx[1:]], now)

    def deadline(self) -> float:
        assert self.state is not None
        st, cfg = self._due_of
        if self.state is not st or self.cfg is not cfg:
            self._step_due, self._due_of = machine.step_due(self.cfg, self.state), (self.state, self.cfg)
        drawn = self._drawn_at
        if drawn is None or drawn.mono < self.state.last.mono:
            drawn = self.state.last
        self._redraw_due = machine.redraw_due(self.cfg, self.state, drawn)
        cands = [self._step_due, self._redraw_due]
        d = self.out.player.deadline()
        if d is not None:
            cands.append(d)
        d = getattr(self.out.led, "deadline", lambda: None)()
        if d is not None:
            cands.append(d)
        d = self.store.deadline()
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
        self._loop_thread = threading.get_ident()
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
            at = self.clock.now()
            end = at.mono + (until - at.wall).total_seconds()
            deadline = min(deadline, end)
        item = self.clock.wait(self.inbox, deadline)
        self.wakeups += 1
        if item is None:
            self.timer_wakeups += 1
        if isinstance(item, Stop):
            self.shutdown(item.reason)
            return
        clock_set = self._set_clock(item.event) if isinstance(item, Input) and isinstance(item.event, SetClock) \
            else None
        now = self.clock.now()
        self.out.player.advance(now.mono)
        fire_led = getattr(self.out.led, "fire", None)
        if fire_led is not None:
            fire_led(now.mono)
        for s in self.sources:
            d = due_at(s)
            if d is not None and d <= now.mono:
                s.fire(now)
        if isinstance(item, Call):
            item.run(now)
            return
        if item is None and now.mono < self._step_due:
            # Nothing is due to the state. Woken for the shell's own timers (a note of a
            # chime, the light's blink, a source's deadline), or for the picture alone (a
            # frame of a hold's bar, the idle clock's minute): the core is not stepped, its
            # view is drawn if it moved; the journal's housekeeping and the parts' health still run.
            redraw = now.mono >= self._redraw_due
            fx = machine.redraw(self.cfg, self.state, now) if redraw else []
            if fx is not None:
                if redraw:
                    self._drawn_at = now     # the next picture is due after this one, never again now
                self._apply(fx, now)
                return
        event: Event = Tick()
        if clock_set is not None:
            event = clock_set
        elif isinstance(item, Input) and not isinstance(item.event, SetClock):
            event = item.event
            # Stamped when it happened, but never before the state's own time, nor before
            # anything the loop did (and may have recorded) while the input waited in the inbox.
            now = self.clock.at(max(item.mono, self.state.last.mono, self._acted_mono))
        self.handle(event, now)

    def _set_clock(self, req: SetClock) -> ClockSet:
        old = self.clock.now().wall
        if self.set_clock is None:
            return ClockSet(old, req.wall, req.source, "this unit's clock cannot be set from here")
        try:
            self.set_clock(req.wall)
        except (OSError, ValueError, OverflowError) as e:
            return ClockSet(old, req.wall, req.source, str(e))
        return ClockSet(old, self.clock.now().wall, req.source)

    def handle(self, event: Event, now: Instant) -> None:
        assert self.state is not None
        assert threading.get_ident() == self._loop_thread, "Unit.handle runs on the loop's thread only"
        self.state, fx = machine.step(self.cfg, self.state, event, now)
        self._drawn_at = now
        self._apply(fx, now)

    def shutdown(self, reason: str, *, record: bool = True) -> None:
        if self.stopped is not None or self.state is None:
            return
        now = self.clock.now()
        if record:
            if self._link is not None:
                self._apply(self._link.stopping(now), now)
            self._apply(machine.stop(self.cfg, self.state, now, reason), now)
            # A clean stop leaves the whole run sealed.
            self.store.seal(now, self.state.time_quality)
        if self.store.pending:
            # Storage never came back: say what is lost where an engineer will find it (the
            # system log), rather than let it vanish silently.
            lines = self.store.unsaved_lines()
            log = SystemLog()
            log.err(f"{len(lines)} journal records could not be saved ({self.store.error}):")
            for line in lines:
                log.err(f"unsaved {line}")
        self.out.player.output(0)
        if self.out.led is not None:
            self.out.led.set("off")
        self.stopped = reason

    # --- effects -------------------------------------------------------------------

    def _problem(self, part: str, problem: str | None) -> bool:
        """Note a part's trouble (or recovery) in the state; True if that changed anything."""
        assert self.state is not None
        before = self.state.problems
        self.state = machine.with_problem(self.state, part, problem)
        return self.state.problems is not before

    def _apply(self, effects: Iterable[Effect], now: Instant) -> None:
        assert self.state is not None
        tq = self.state.time_quality
        self._acted_mono = max(self._acted_mono, now.mono)
        # Everything kept in memory goes first; while anything is, new records queue behind it.
        saved = self.store.retry(now, tq)
        for fx in effects:
            if isinstance(fx, Record):
                if fx.type == T.ADMIT and not fx.data.get("amended"):
                    # A new patient's records start a segment of their own (docs/journal.md, Segments).
                    self.store.start_segment("episode", {"episode": fx.data.get("episode")}, now, tq)
                saved = self.store.write(fx, now, tq) and saved
            elif isinstance(fx, Play):
                # A chime that confirms a record is not played for one that is only in memory.
                if fx.sound in CONFIRMING and not saved:
                    continue
                self.out.player.play(fx.sound, now.mono)
            elif isinstance(fx, Show):
                if isinstance(fx.screen, sc.Done) and (not saved or self.store.pending):
                    # "Well done" would confirm a session the journal does not hold yet.
                    fx = Show(NOT_SAVED, fx.brightness)  # noqa: PLW2901 - what the patient saw
                self.out.display.show(fx.screen, fx.brightness)
            elif isinstance(fx, Led) and self.out.led is not None:
                self.out.led.set(fx.mode)
            elif isinstance(fx, Decided) and self._link is not None:
                self._link.decided(fx, now)
            for obs in self.out.observers:
                obs(fx, now)
        self.store.tick(now, tq)
        head = self.store.head()
        if head is not None and head[0] > 0:
            self.state = machine.with_head(self.state, *head)
        # The journal's own trouble is the store's to record (it cannot be written to itself).
        changed = self._problem("journal", self.store.notice)
        if changed:
            # Show the notice now rather than at the next wake-up.
            for fx in views.view(self.cfg, self.state, now):
                if isinstance(fx, Show):
                    if isinstance(fx.screen, sc.Done) and self.store.pending:
                        fx = Show(NOT_SAVED, fx.brightness)  # noqa: PLW2901 - as above
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
        assert threading.get_ident() == self._loop_thread, "Unit.record runs on the loop's thread only"
        self._apply([rec], now)

    def reconfigure(self, cfg: Config | None, ward: WardSecret | None, now: Instant, revoked: bool = False) -> None:
        """Ward settings from a stick, confirmed at the unit: the next step plans with the new
        configuration (sessions already under way finish as they began), and the serial link
        checks the new ward secret (or, ``revoked``, the new revocation list) from its next
        unlock: an unlocked session is locked."""
        assert threading.get_ident() == self._loop_thread, "Unit.reconfigure runs on the loop's thread only"
        if cfg is not None:
            self.cfg = cfg
        if ward is not None and self._link is not None:
            self._apply(self._link.ward_changed(ward), now)
        if revoked and self._link is not None:
            self._apply(self._link.revocations_changed(), now)
