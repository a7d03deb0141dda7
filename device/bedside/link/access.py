"""Who may read the journal and change the unit over the serial link: the rules, as pure code.

* The link starts locked. Unlocking takes the ward secret; it then stays unlocked for the
  connection that unlocked it until ``lock``, ``IDLE_S`` without a request, or the port
  closing (a replugged cable starts locked again).
* ``MAX_FAILURES`` wrong secrets in a row lock the port out for ``LOCKOUT_S``: attempts
  during a lockout are refused without being checked, and counted; the count is recorded
  once, when the lockout ends, so a program hammering the port cannot fill the journal.
* Every attempt and every change of state is a ``Record`` effect; the state is rebuilt from
  those records after a restart, so pulling the plug does not reset the count.

The loop owns an ``Access`` value and steps it with these functions, like the session core.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bedside.core.config import Config
from bedside.core.events import Instant, Past, Record
from bedside.core.records import T

MAX_FAILURES = 5
LOCKOUT_S = 600.0
IDLE_S = 600.0


@dataclass(frozen=True, slots=True)
class Access:
    conn: int | None = None                # the connection that is unlocked, if any
    idle_until: float = 0.0                # monotonic; it locks itself then
    failures: int = 0                      # wrong secrets in a row
    lockout_until: float | None = None     # monotonic
    refused: int = 0                       # attempts refused during this lockout


@dataclass(frozen=True, slots=True)
class UnlockOutcome:
    outcome: str                           # unlocked | denied | lockout
    left: int = 0                          # attempts left before a lockout
    seconds: int = 0                       # of lockout left


def _iso(t: datetime, cfg: Config) -> str:
    return t.astimezone(cfg.tz).isoformat(timespec="seconds")


def is_unlocked(a: Access, conn: int, now: Instant) -> bool:
    return a.conn == conn and now.mono < a.idle_until


def lockout_left(a: Access, now: Instant) -> int:
    """Whole seconds of lockout left (0 when not locked out)."""
    if a.lockout_until is None or now.mono >= a.lockout_until:
        return 0
    return int(a.lockout_until - now.mono + 0.999)


def attempts_left(a: Access) -> int:
    return max(0, MAX_FAILURES - a.failures)


def attempt(cfg: Config, a: Access, conn: int, ok: bool, via: str,
            now: Instant) -> tuple[Access, list[Record], UnlockOutcome]:
    """One try at the ward secret (``ok``: it was right), from ``via`` (terminal or tool)."""
    left = lockout_left(a, now)
    if left:
        return replace(a, refused=a.refused + 1), [], UnlockOutcome("lockout", seconds=left)
    fx: list[Record] = []
    if a.conn is not None and a.conn != conn:
        fx.append(Record(T.LOCK, data={"reason": "other_connection"}))
    if ok:
        a = replace(a, conn=conn, idle_until=now.mono + IDLE_S, failures=0)
        fx.append(Record(T.UNLOCK, data={"via": via}))
        return a, fx, UnlockOutcome("unlocked")
    failures = a.failures + 1
    if a.conn == conn:
        fx.append(Record(T.LOCK, data={"reason": "wrong_secret"}))
    fx.append(Record(T.UNLOCK_FAILED, data={"via": via, "failures": failures,
                                            "left": max(0, MAX_FAILURES - failures)}))
    a = replace(a, conn=None, failures=failures)
    if failures >= MAX_FAILURES:
        until = now.wall + timedelta(seconds=LOCKOUT_S)
        fx.append(Record(T.LOCKOUT, data={"failures": failures, "minutes": round(LOCKOUT_S / 60),
                                          "until": _iso(until, cfg)}))
        a = replace(a, lockout_until=now.mono + LOCKOUT_S, refused=0)
        return a, fx, UnlockOutcome("lockout", seconds=int(LOCKOUT_S))
    return a, fx, UnlockOutcome("denied", left=MAX_FAILURES - failures)


def touch(a: Access, conn: int, now: Instant) -> Access:
    """A request from the unlocked connection: the idle time starts again."""
    if a.conn == conn and now.mono < a.idle_until:
        return replace(a, idle_until=now.mono + IDLE_S)
    return a


def lock(a: Access, reason: str, conn: int | None = None) -> tuple[Access, list[Record]]:
    """Lock (for ``conn`` only, when given); recorded only if it was unlocked."""
    if a.conn is None or (conn is not None and a.conn != conn):
        return a, []
    return replace(a, conn=None), [Record(T.LOCK, data={"reason": reason})]


def tick(a: Access, now: Instant) -> tuple[Access, list[Record]]:
    """Idle time and lockouts running out."""
    fx: list[Record] = []
    if a.conn is not None and now.mono >= a.idle_until:
        a, more = lock(a, "idle")
        fx += more
    if a.lockout_until is not None and now.mono >= a.lockout_until:
        fx.append(Record(T.LOCKOUT_END, data={"refused": a.refused}))
        a = replace(a, lockout_until=None, failures=0, refused=0)
    return a, fx


def deadline(a: Access) -> float | None:
    cands = [t for t in (a.idle_until if a.conn is not None else None, a.lockout_until) if t is not None]
    return min(cands) if cands else None


def restore(past: Iterable[Past], now: Instant) -> Access:
    """The access state a restarted unit resumes with: failures and a running lockout carry over.

    An unlocked link does not survive a restart (the daemon records ``lock`` when it stops;
    after a power cut the link simply starts locked).
    """
    failures = 0
    lockout_wall: datetime | None = None
    for r in past:
        if r.type == T.UNLOCK:
            failures, lockout_wall = 0, None
        elif r.type == T.UNLOCK_FAILED:
            failures = int(r.data.get("failures", failures + 1))
        elif r.type == T.LOCKOUT:
            try:
                lockout_wall = datetime.fromisoformat(str(r.data.get("until")))
            except ValueError:
                lockout_wall = r.time + timedelta(seconds=LOCKOUT_S)
        elif r.type == T.LOCKOUT_END:
            failures, lockout_wall = 0, None
    a = Access(failures=min(failures, MAX_FAILURES))
    if lockout_wall is not None:
        # Never longer than one lockout, whatever the wall clock did while the unit was off.
        left = min(LOCKOUT_S, max(0.0, (lockout_wall - now.wall).total_seconds()))
        a = replace(a, lockout_until=now.mono + left)
    return a
