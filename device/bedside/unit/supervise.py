"""What keeps a unit on a ward honest about its own health: systemd's watchdog, the
self-test at start and every day, and a buzzer whose failures are reported, not raised.

All of these are timed sources of the daemon's one loop (``deadline``/``fire``), so they
run on the loop's thread, between its other work, in real or simulated time; none of them
is a thread of its own. In particular the watchdog is pinged *by the loop*: a loop stuck
anywhere (a hung I2C transfer, a blocked write, a deadlock) stops the pings and systemd
restarts the daemon.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING

from bedside.core import planner
from bedside.core.events import Instant, Notice, Record
from bedside.core.records import T
from bedside.unit.systemlog import ERR, INFO, SystemLog

if TYPE_CHECKING:
    from bedside.display.panel import DisplayKeeper
    from bedside.unit.loop import Unit
    from bedside.unit.sdnotify import Notifier


class GuardedTone:
    """The buzzer's on/off (or tone) call, with a failure noted in ``error`` instead of
    raised: a GPIO error must not stop the loop that still drives the display and LED."""

    def __init__(self, tone: Callable[[int], None]) -> None:
        self.tone = tone
        self.error: str | None = None

    def __call__(self, freq: int) -> None:
        try:
            self.tone(freq)
        except Exception as e:
            self.error = f"{type(e).__name__}: {e}"
        else:
            # Only a sound that played shows the buzzer works again; switching off proves little.
            if freq:
                self.error = None


class Watchdog:
    """Pings systemd's watchdog from the loop, at most ``interval`` apart, while the unit is healthy.

    A ping rides on a wake-up the loop makes anyway (the idle clock's minute, the loop's own
    longest sleep) once ``min_gap`` has passed since the last; only if none comes by
    ``interval`` does the watchdog wake the loop itself. With ``interval`` half of
    ``WatchdogSec`` and the loop's longest sleep no longer than that, the watchdog adds no
    wake-up of its own.

    Healthy means: the loop came round (it is the loop that calls ``fire``) without
    spinning; the journal's retries are on schedule (records kept in memory while storage
    fails are retried by the store itself, reopening the database each time, so a restart
    would add nothing but lose them); and the display either answers or its recovery is on schedule
    (a missing display is a recorded, handled fault: the unit prompts by sound and LED,
    and restarting would not bring the display back). When not healthy, the pings stop and
    systemd restarts the daemon after ``WatchdogSec``: a restart reopens the journal and the
    bus, which is what is left to try.
    """

    # Wake-ups for a deadline (not for an input: a burst of presses or serial traffic is work,
    # not a spin). The busiest real use, a guide's hold bar with its ticks, is under 10 a
    # second; a loop whose deadline stays in the past manages hundreds even on a Zero 2 W.
    MAX_TIMER_WAKEUPS_PER_S = 50.0

    def __init__(self, unit: Unit, notifier: Notifier, interval: float, *, min_gap: float | None = None,
                 journal_grace_s: float = 120.0, log: IO[str] | None = None) -> None:
        self.unit = unit
        self.notifier = notifier
        self.interval = interval
        # Not more often than this: each ping also wakes systemd.
        self.min_gap = interval / 5 if min_gap is None else min_gap
        self.journal_grace_s = journal_grace_s
        self.log = SystemLog(log)
        now = unit.clock.now().mono
        self.last = now - self.interval          # the first ping goes at the loop's first turn
        self._last_mono = now
        self._last_wakeups = unit.timer_wakeups
        self._spin: str | None = None
        self.withheld: list[str] = []
        self.pings = 0

    def earliest(self) -> float:
        return self.last + self.min_gap

    def deadline(self) -> float:
        return self.last + self.interval

    def fire(self, now: Instant) -> None:
        self.last = now.mono
        reasons = self.unhealthy(now)
        # Told again only when the kind of trouble changes: a spin's count differs at every
        # ping, and a status line (and a warning) per interval would flood the log.
        if _kinds(reasons) != _kinds(self.withheld):
            if reasons:
                self.log.warning(f"watchdog not pinged: {'; '.join(reasons)}")
                self.notifier.status("unhealthy: " + "; ".join(reasons))
            elif self.withheld:
                self.log.notice("healthy again; watchdog pings resumed")
                self.notifier.status("running")
        self.withheld = reasons
        if not reasons and self.notifier.ping():
            self.pings += 1

    def unhealthy(self, now: Instant) -> list[str]:
        reasons = []
        u = self.unit
        # The rate is judged over at least one ping interval (pings may come closer together).
        elapsed = max(now.mono - self._last_mono, 1e-3)
        woke = u.timer_wakeups - self._last_wakeups
        if woke > self.MAX_TIMER_WAKEUPS_PER_S * max(elapsed, self.interval):
            self._spin = f"loop: woke {woke} times in {elapsed:.1f} s with nothing to do (spinning)"
        elif elapsed >= self.interval:
            self._spin = None
        if elapsed >= self.interval or self._spin is not None:
            self._last_mono, self._last_wakeups = now.mono, u.timer_wakeups
        if self._spin is not None:
            reasons.append(self._spin)
        if u.store.overdue(now.mono, max(self.journal_grace_s, 2 * self.interval)):
            reasons.append(f"journal: {len(u.unsaved)} record(s) not committed and their retry is overdue "
                           f"({u.journal_error})")
        display = u.out.display
        overdue = getattr(display, "overdue", None)
        if overdue is not None and overdue(now.mono, 2 * self.interval):
            reasons.append("display: its recovery is not being run")
        return reasons


def _kinds(reasons: list[str]) -> list[str]:
    return [r.split(":", 1)[0] for r in reasons]


def daily_time(cfg_start: time, cfg_end: time) -> time:
    """The daily self-test's local time: the middle hour of the awake window, at a quarter to
    (07:00-22:00 gives 14:45): well away from night, and after an hour's prompt has been
    answered or, with the default 30 minutes, recorded missed."""
    return time(planner.window_middle(cfg_start, cfg_end).hour, 45)


class SelfTest:
    """At start and once a day: is the display answering, does the buzzer's pin drive (with
    a short chirp, by day only), is the journal taking records with room to spare?

    The results are one ``selftest`` journal record. A failed part becomes a ``fault``
    through the core, which puts it on whatever still works: the display's notice line and
    nurse screen, and by day the buzzer's low fault note.
    """

    LOW_SPACE_MB = 50
    BUSY_RETRY_S = 600.0        # a daily chirp that would talk over a session waits this long
    BUSY_TRIES = 6

    def __init__(self, unit: Unit, data_dir: Path, *, display: DisplayKeeper | None = None,
                 log: IO[str] | None = None) -> None:
        self.unit = unit
        self.data_dir = data_dir
        self.display = display
        self.log = SystemLog(log)
        self.at = daily_time(unit.cfg.awake_start, unit.cfg.awake_end)
        self.trigger = "start"
        self.due: datetime | None = None       # None: the start test, at the loop's first turn
        self.due_mono = float("-inf")
        self.busy_tries = 0

    def next_daily(self, after: datetime) -> datetime:
        tz = self.unit.cfg.tz
        local = after.astimezone(tz)
        candidate = datetime.combine(local.date(), self.at, tz)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), self.at, tz)
        return candidate

    def deadline(self) -> float:
        # Fixed in monotonic time when scheduled (a deadline that moved with each reading of
        # the clock could stay a hair ahead of the loop's "now" and never fire). A clock set
        # later shifts one test by at most a day; the next is planned on the new time.
        return float("-inf") if self.due is None else self.due_mono

    def _schedule(self, now: Instant, due: datetime) -> None:
        self.due = due
        self.due_mono = now.mono + (due - now.wall).total_seconds()

    def fire(self, now: Instant) -> None:
        self.run(now, self.trigger)

    def run(self, now: Instant, trigger: str) -> dict[str, object]:
        u = self.unit
        assert u.state is not None
        awake = planner.is_awake(u.cfg, now.wall)
        busy = u.state.active is not None or u.out.player.playing is not None
        if trigger == "daily" and awake and busy and self.busy_tries < self.BUSY_TRIES:
            self.busy_tries += 1
            self._schedule(now, now.wall + timedelta(seconds=self.BUSY_RETRY_S))
            return {}
        self.busy_tries = 0
        self.trigger = "daily"
        self._schedule(now, self.next_daily(now.wall))

        if self.display is not None and trigger == "daily":
            # A display that lost power and came back is blank and uninitialised: start it afresh.
            self.display.refresh()
        display_error = u.out.display.error
        display = "ok" if display_error is None else f"fault: {display_error}"

        tone = u.out.player.output
        if not awake:
            buzzer = "skipped: night"
        elif busy:
            buzzer = "skipped: a session or sound was in progress"
        else:
            u.out.player.play("tick", now.mono)
            error = getattr(tone, "error", None)
            buzzer = "chirped" if error is None else f"fault: {error}"

        free_mb: int | None
        try:
            free_mb = shutil.disk_usage(self.data_dir).free // 2**20
        except OSError:
            free_mb = None
        if u.unsaved:
            journal = f"fault: {u.journal_error}"
        elif free_mb is not None and free_mb < self.LOW_SPACE_MB:
            journal = f"low space: {free_mb} MB free"
        else:
            journal = "ok"

        result: dict[str, object] = {"trigger": trigger, "display": display, "buzzer": buzzer, "journal": journal,
                                     "free_mb": free_mb}
        u.record(Record(T.SELFTEST, data=result), now)
        # Low space is not yet a failure, but the nurse should hear of it before it is one.
        storage = f"{free_mb} MB free on the card" if journal.startswith("low space") else None
        if ("storage" in u.state.problems) != (storage is not None):
            u.handle(Notice("storage", "Card nearly full: tell nurse" if storage else None, storage), now)
        ok = all(str(v).startswith(("ok", "chirped", "skipped")) for v in (display, buzzer, journal))
        self.log(f"self-test ({trigger}): display {display}; buzzer {buzzer}; journal {journal}"
                 f"{'' if ok else ' - FAILED'}", INFO if ok else ERR)
        return result
