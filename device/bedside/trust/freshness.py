"""Monotonic counters against rollback and freeze (docs/security.md, "Rollback and freeze").

Every stream of signed documents a unit takes in order (the ward's settings, releases)
carries a counter its signer raises by one each time. A unit keeps the highest counter it
has applied per stream and takes a document only when:

* its counter is **above** that one (an older genuine document, replayed, is refused:
  ``older``), and
* not **implausibly far** above it (more than ``MAX_STEP``), nor issued implausibly far in
  the unit's future (``MAX_AHEAD``): a counter of 10⁹ or a date of 2099, even correctly
  signed by mistake, would make every later genuine document look old and freeze the ward
  (``implausible``).

Dates alone are never the order: a unit's clock may be wrong, and a date proves nothing
about what came first.

**Recovery.** If a stream is frozen all the same (a signer's slip), the ward authority signs
a document that names the counter the unit is stuck at (``recovery_from``): a unit whose
counter is exactly that takes it whatever its own counter, and from then on counts from the
new one. It cannot be replayed to roll a unit back, because once applied the unit's counter
is no longer the one it names; and only the ward authority's key makes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bedside.trust.signed import MALFORMED, Untrusted

MAX_STEP = 1000
MAX_AHEAD = timedelta(days=30)

OLDER, IMPLAUSIBLE = "older", "implausible"


def counter_of(body: dict[str, Any], what: str) -> int:
    c = body.get("counter")
    if not isinstance(c, int) or isinstance(c, bool) or c < 1:
        raise Untrusted(MALFORMED, f"{what} carries no counter (a whole number from 1)")
    return c


def check(what: str, body: dict[str, Any], trusted: int, now: datetime) -> int:
    """The document's counter if ``body`` may follow a unit at ``trusted``; Untrusted otherwise."""
    counter = counter_of(body, what)
    issued_text = body.get("issued")
    try:
        issued = datetime.fromisoformat(str(issued_text))
    except ValueError:
        raise Untrusted(MALFORMED, f"{what} carries no issue time") from None
    if issued.tzinfo is None:
        raise Untrusted(MALFORMED, f"{what}'s issue time has no time zone")
    if issued > now + MAX_AHEAD:
        raise Untrusted(IMPLAUSIBLE, f"{what} says it was issued {issued_text}, over {MAX_AHEAD.days} days after "
                        f"this unit's clock ({now.isoformat(timespec='minutes')}): it is refused, so that it cannot "
                        "freeze the unit; check the unit's clock, or have it signed again")
    recovery = body.get("recovery_from")
    if recovery is not None:
        if not isinstance(recovery, int) or isinstance(recovery, bool):
            raise Untrusted(MALFORMED, f"{what}'s recovery counter is not a whole number")
        if recovery == trusted:
            return counter
    if counter <= trusted:
        raise Untrusted(OLDER, f"{what} has counter {counter}, not after the {trusted} this unit has applied: an "
                        "older document is never applied again")
    if counter > trusted + MAX_STEP:
        raise Untrusted(IMPLAUSIBLE, f"{what} has counter {counter}, more than {MAX_STEP} after the {trusted} this "
                        "unit has applied: it is refused so that it cannot freeze the unit (if the unit is stuck "
                        f"at {trusted}, the ward authority signs a recovery from {trusted})")
    return counter
