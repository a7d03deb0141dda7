"""The serial link's access rules: unlock, idle lock, five strikes and a ten-minute lockout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from bedside.core import config
from bedside.core.events import Instant, Past
from bedside.link import access
from bedside.link.access import Access

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def at(s: float) -> Instant:
    return Instant(T0 + timedelta(seconds=s), 1000.0 + s)


def types(recs: list) -> list[str]:  # type: ignore[type-arg]
    return [r.type for r in recs]


def test_unlock_then_idle_lock(cfg: config.Config) -> None:
    a, fx, v = access.attempt(cfg, Access(), 1, True, "tool", at(0))
    assert v.outcome == "unlocked" and types(fx) == ["unlock"] and fx[0].data == {"via": "tool"}
    assert access.is_unlocked(a, 1, at(10)) and not access.is_unlocked(a, 2, at(10))
    a = access.touch(a, 1, at(500))
    assert access.deadline(a) == at(500).mono + access.IDLE_S
    a, fx = access.tick(a, at(500 + access.IDLE_S))
    assert types(fx) == ["lock"] and fx[0].data == {"reason": "idle"}
    assert not access.is_unlocked(a, 1, at(500 + access.IDLE_S))


def test_five_wrong_secrets_lock_the_port_out_for_ten_minutes(cfg: config.Config) -> None:
    a = Access()
    for n in range(1, 5):
        a, fx, v = access.attempt(cfg, a, 1, False, "terminal", at(n))
        assert v.outcome == "denied" and v.left == 5 - n
        assert types(fx) == ["unlock_failed"] and fx[0].data["failures"] == n
    a, fx, v = access.attempt(cfg, a, 1, False, "terminal", at(5))
    assert v.outcome == "lockout" and v.seconds == 600
    assert types(fx) == ["unlock_failed", "lockout"] and fx[1].data["until"] == "2026-11-24T09:10:05+00:00"
    # During the lockout even the right secret is refused, unchecked and unrecorded, but counted.
    for s in (6, 300, 604):
        a, fx, v = access.attempt(cfg, a, 1, True, "tool", at(s))
        assert v.outcome == "lockout" and fx == []
    assert access.lockout_left(a, at(300)) == 305
    a, fx = access.tick(a, at(605))
    assert types(fx) == ["lockout_end"] and fx[0].data == {"refused": 3}
    a, fx, v = access.attempt(cfg, a, 1, True, "tool", at(606))
    assert v.outcome == "unlocked"


def test_a_wrong_secret_on_an_unlocked_link_locks_it(cfg: config.Config) -> None:
    a, _, _ = access.attempt(cfg, Access(), 1, True, "tool", at(0))
    a, fx, _v = access.attempt(cfg, a, 1, False, "tool", at(1))
    assert types(fx) == ["lock", "unlock_failed"] and not access.is_unlocked(a, 1, at(2))


def test_lock_only_records_when_it_was_unlocked(cfg: config.Config) -> None:
    a, fx = access.lock(Access(), "command")
    assert fx == []
    a, _, _ = access.attempt(cfg, a, 3, True, "tool", at(0))
    assert access.lock(a, "unplugged", conn=4)[1] == []
    a, fx = access.lock(a, "unplugged", conn=3)
    assert fx[0].data == {"reason": "unplugged"}


def test_a_restart_keeps_the_count_and_a_running_lockout() -> None:
    past = [Past(1, "unlock_failed", T0, None, {"failures": 1}), Past(2, "unlock", T0, None, {}),
            Past(3, "unlock_failed", T0, None, {"failures": 1}), Past(4, "unlock_failed", T0, None, {"failures": 2})]
    a = access.restore(past, at(60))
    assert a.failures == 2 and a.lockout_until is None
    past.append(Past(5, "lockout", T0, None, {"until": (T0 + timedelta(seconds=600)).isoformat()}))
    a = access.restore(past, at(100))
    assert access.lockout_left(a, at(100)) == 500
    # A clock set far back while the unit was off never makes a lockout longer than ten minutes.
    a = access.restore(past, Instant(T0 - timedelta(days=3), 5.0))
    assert access.lockout_left(a, Instant(T0, 5.0)) == 600
    past.append(Past(6, "lockout_end", T0, None, {"refused": 0}))
    assert access.restore(past, at(700)) == Access()


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 2000)), max_size=40))
def test_never_more_than_five_checked_failures_per_lockout(tries: list[tuple[bool, float]]) -> None:
    cfg = config.Config()
    a, t, run = Access(), 0.0, 0
    for ok, gap in tries:
        t += gap
        a, fx = access.tick(a, at(t))
        a, fx, v = access.attempt(cfg, a, 1, ok, "tool", at(t))
        if "unlock_failed" in types(fx):
            run += 1
            assert run <= access.MAX_FAILURES
        if "unlock" in types(fx) or "lockout" in types(fx):
            run = 0
        if v.outcome == "unlocked":
            assert ok
