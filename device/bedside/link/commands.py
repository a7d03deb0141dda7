"""The serial link's verbs, as one table that both dispatchers and ``help`` read.

A row says what a verb is: the forms a person types at a terminal and what each does (the
``help`` list is made from them), how a frame's arguments are parsed for the nurse tool,
what runs on the unit's loop (a ``LinkService`` method, between a patient's presses), how
its result goes back as a frame, and whether it is a change the unit shows and does only
after a press of its button. The terminal's side of a typed verb is ``Connection._typed_WORD``
in ``port.py`` (a person gets sentences, pages of records, a prompt for the secret).

Adding a command is a row here plus its handlers: the ``LinkService`` method it calls on
the loop and, if people type it, its ``_typed_`` method. ``tests/link/test_commands.py``
checks that every row has them. A change that needs a press is not a row here: it is
registered once as a kind in ``changes.py``, and its row is made from that (a kind whose
word is already a row's, as ``time``, lends that row its frame).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from bedside.core.errors import BedsideError
from bedside.core.events import Instant
from bedside.link import batch, changes, frames, texts
from bedside.link.on_loop import LinkService, Notify


class Unknown(BedsideError):
    """Not a request this unit knows: its verb, or its number and kind of arguments."""


class Asker(Protocol):
    """The connection a request came on: its number and where a change's outcome goes."""

    conn: int

    def notify(self, token: int, outcome: str, detail: Mapping[str, Any]) -> None: ...


Parse = Callable[[tuple[str, ...]], Any]
OnLoop = Callable[[LinkService, Asker, Any, Instant], Any]
Answer = Callable[[int, Any, Any], bytes]


def _ok(rid: int, parsed: Any, result: Any) -> bytes:
    return frames.reply(rid, "ok", result)


@dataclass(frozen=True)
class Verb:
    word: str
    typed: tuple[tuple[str, str], ...] = ()        # (form, what it does), as help lists them; () = not typed
    parse: Parse | None = None                     # a frame's arguments -> what the loop needs; None = not framed
    on_loop: OnLoop | None = None                  # the loop-side work for a frame (``LinkService``), given now
    answer: Answer = _ok                           # the result as a frame (on the serial thread)
    press: bool = False                            # a change: done only after a press on the unit
    also: tuple[str, ...] = ()                     # other words typed for it


# --- frame arguments ---------------------------------------------------------------------

def _none(args: tuple[str, ...]) -> None:
    if args:
        raise Unknown


def _nonce(args: tuple[str, ...]) -> str:
    _none(args)
    return os.urandom(16).hex()     # made here, on the serial thread


def _one(args: tuple[str, ...]) -> str:
    if len(args) != 1:
        raise Unknown
    return args[0]


def _get(args: tuple[str, ...]) -> tuple[int, int, bool]:
    """``get FIRST LIMIT [full]``: records from FIRST, at most LIMIT, lean unless ``full``."""
    if len(args) in (2, 3) and args[0].isdigit() and args[1].isdigit():
        return max(1, int(args[0])), int(args[1]), len(args) == 2 or args[2] != "full"
    raise Unknown


def _done(args: tuple[str, ...]) -> tuple[int, int, str]:
    """``done FROM TO HASH``: the tool holds and has verified records up to TO."""
    if len(args) == 3 and args[0].isdigit() and args[1].isdigit():
        return int(args[0]), int(args[1]), args[2]
    raise Unknown


# --- answers -------------------------------------------------------------------------------

def unlocked_answer(rid: int, parsed: Any, v: Any) -> bytes:
    if v.outcome == "unlocked":
        return frames.reply(rid, "ok", {"unlocked": True})
    msg = texts.verdict_lines(v.outcome, v.left, v.seconds)[0]
    return frames.reply(rid, "err", {"error": "denied" if v.outcome == "denied" else "lockout",
                                     "left": v.left, "seconds": v.seconds, "message": msg})


def _page(rid: int, parsed: tuple[int, int, bool], page: Any) -> bytes:
    # Packing (compression) happens here, on the serial thread, not on the loop.
    return batch.pack(page.records, head=page.head, lean=parsed[2], unread=page.unread).encode(rid)


def _waiting(rid: int, parsed: Any, token: int) -> bytes:
    return frames.reply(rid, "wait", {"token": token, "seconds": changes.CONFIRM_S})


def _ask(svc: LinkService, c: Asker, change: changes.Change, now: Instant) -> int:
    notify: Notify = c.notify
    return svc.ask(c.conn, change, notify, now)


# --- the table -------------------------------------------------------------------------------

_ROWS: tuple[Verb, ...] = (
    Verb("help", typed=(("help", "this list"),), also=("?",)),
    Verb("hello", parse=_nonce, on_loop=lambda svc, c, nonce, now: svc.hello(c.conn, nonce, now)),
    Verb("status", typed=(("status", "unit, time, next session, today, journal head"),), parse=_none,
         on_loop=lambda svc, c, _, now: svc.status(c.conn, now),
         answer=lambda rid, _, st: frames.reply(rid, "ok", st.as_json())),
    Verb("unlock", typed=(("unlock", "unlock with the ward secret (not shown)"),), parse=_one,
         on_loop=lambda svc, c, mac, now: svc.unlock_mac(c.conn, mac, now), answer=unlocked_answer),
    Verb("log", typed=(("log [N | all | from SEQ]", "records, one a line (default: the last 20)"),)),
    Verb("get", parse=_get, on_loop=lambda svc, c, p, now: svc.page(c.conn, p[0], p[1], now), answer=_page),
    Verb("done", parse=_done, on_loop=lambda svc, c, p, now: svc.downloaded(c.conn, p[0], p[1], p[2], now),
         answer=lambda rid, _, seq: frames.reply(rid, "ok", {"recorded": seq})),
    Verb("time", typed=(("time", "the unit's clock and how far to trust it"),)),
    Verb("episode", typed=(("episode", "the current episode"),)),
)
_LAST: tuple[Verb, ...] = (
    Verb("lock", typed=(("lock", "lock again (also after 10 idle minutes)"),), parse=_none,
         on_loop=lambda svc, c, _, now: svc.lock(c.conn, "command", now),
         answer=lambda rid, _, __: frames.reply(rid, "ok", {"locked": True})),
)


def _with_changes(rows: tuple[Verb, ...], last: tuple[Verb, ...]) -> tuple[Verb, ...]:
    """The rows, with each registered change's frame (``changes.KINDS``): on the row of its word
    when there is one (``time``), else on a row of its own before ``last``."""
    def framed(v: Verb, kind: changes.Kind[Any]) -> Verb:
        return replace(v, parse=kind.parse, on_loop=_ask, answer=_waiting, press=True)

    words = {v.word for v in rows + last}
    kinds = changes.KINDS
    return (*(framed(v, kinds[v.word]) if v.word in kinds else v for v in rows),
            *(framed(Verb(k.word), k) for k in kinds.values() if k.word not in words),
            *(framed(v, kinds[v.word]) if v.word in kinds else v for v in last))


VERBS: tuple[Verb, ...] = _with_changes(_ROWS, _LAST)

TYPED: dict[str, Verb] = {w: v for v in VERBS if v.typed for w in (v.word, *v.also)}
FRAMED: dict[str, Verb] = {v.word: v for v in VERBS if v.parse is not None}

_COLUMN = 29


def help_lines() -> list[str]:
    """``help`` at a terminal: every typed form and what it does, then what needs what."""
    out = ["Commands (press Enter after each):"]
    for v in VERBS:
        # A change's typed forms follow the verb typed first (``time``, then ``time set``).
        kinds = [form for k in changes.KINDS.values() if k.typed[0] == v.word for form in k.forms]
        for form, what in (*v.typed, *kinds):
            if len(form) < _COLUMN:
                out.append(f"  {form:<{_COLUMN}}{what}")
            else:
                out += [f"  {form}", f"  {'':<{_COLUMN}}{what}"]
    return [*out, "log and every change need unlock first; changes also need a press",
            "of the unit's button while its screen shows the change. Ctrl-C cancels."]
