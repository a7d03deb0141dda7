"""The serial link's part that lives on the unit's loop.

The serial thread (``port.py``) only moves bytes. Whenever a request needs the journal,
the unit's state or a change, it calls the loop (``unit_port.Call``) and this service answers
it on the loop, between a patient's button presses, with quick work only (a page of
records, a status, a decision). It owns the link's access state (``access.py``), asks the
core for physical confirmation of changes (``events.Confirm``) and commits every attempt,
success and change to the journal through the loop, the journal's only writer. Each step
that reads the journal salvages at most ``salvage.STEP_BYTES`` of files SQLite refuses
(``_step``); a file past that is named in the answer as not read yet (``unread``), never
silently left out.

Methods taking ``now`` run on the loop; ``Refused`` is raised for anything the caller may
not do, with a message for a person.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bedside import __version__
from bedside.core import episodes, views
from bedside.core.digest import compare_digest, hmac_sha256
from bedside.core.errors import BedsideError
from bedside.core.events import Confirm, Decided, Event, Exported, Instant, Record, SetClock, Withdraw
from bedside.core.records import T
from bedside.journal import retention, salvage
from bedside.journal.journal import Journal
from bedside.journal.segments import Gap, JournalError
from bedside.link import access, changes
from bedside.link.certified import Verdict
from bedside.link.unit_port import UnitPort
from bedside.secret import WardSecret
from bedside.trust.keyring import Keyring

NONCE_S = 120.0
PAGE_MAX = 256                 # records per page or batch (about 100 kB of JSON at most)
SET_SLACK_S = 2.0              # a clock set on command lands within this of the time asked
# Files a step's salvage budget left unread, named in one answer at most (the rest counted):
# a data directory of thousands of crafted files keeps an answer within a frame.
UNREAD_MAX = 32
# Segment files listed in a hello at most: the newest, the rest counted (``segments_more``); a
# field of a description longer than FIELD_MAX characters of JSON (a crafted file's ``meta``
# table can hold megabytes) is cut there (text) or replaced by ``{"too_long": true}``. A
# data directory of thousands of files keeps the answer within a frame (frames.MAX_REPLY_LINE):
# at most SEGMENTS_MAX × 8 fields × FIELD_MAX, about 600 KiB (tests/link/test_hello_bounded.py).
SEGMENTS_MAX = 256
FIELD_MAX = 300
# How a segment left unread is described (``segments.describe``: "its raw pages are read ...").
LATER = "later, in the background (the unit's journal check) or at a later request"
NOT_READ_YET = "not read yet: the unit reads it in its background check; pull again later"


class Refused(BedsideError):
    """The request is not allowed now; ``code`` for the tool, the message for a person."""

    def __init__(self, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail


Notify = Callable[[int, str, Mapping[str, Any]], None]


@dataclass
class Pending:
    conn: int
    kind: changes.Kind[Any]
    change: changes.Change
    notify: Notify
    asked: float               # monotonic


@dataclass(frozen=True)
class Page:
    records: list[dict[str, Any]]
    head: tuple[int, str]
    # Records the page passed over because their file was not read yet (past this step's salvage
    # budget): {segment, file, size, first_seq, last_seq, problem}; the page goes on after them.
    unread: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Status:
    unit: str
    version: str
    time: str                  # local ISO time with offset
    zone: str
    time_quality: str
    next_time: str | None
    next_what: str | None
    done: int
    due: int
    missed: int
    head: tuple[int, str]
    unlocked: bool
    lockout_s: int
    attempts_left: int
    secret_set: bool
    last_download: Mapping[str, Any] | None = None
    problems: Mapping[str, str] = field(default_factory=dict)
    episode: Mapping[str, Any] | None = None
    keys: bool = False         # the unit has pinned keys: certified laptop keys unlock it

    def as_json(self) -> dict[str, Any]:
        return {"unit": self.unit, "version": self.version, "time": self.time, "zone": self.zone,
                "tq": self.time_quality, "next": [self.next_time, self.next_what],
                "today": {"done": self.done, "due": self.due, "missed": self.missed},
                "head": [self.head[0], self.head[1]], "unlocked": self.unlocked, "lockout_s": self.lockout_s,
                "left": self.attempts_left, "secret": self.secret_set, "last_download": self.last_download,
                "problems": dict(self.problems), "episode": dict(self.episode) if self.episode else None,
                "keys": self.keys}


class LinkService:
    def __init__(self, unit: UnitPort, ward: WardSecret | None, ring: Keyring | None = None) -> None:
        self.unit = unit
        self.cfg = unit.cfg
        # Pinned keys (docs/security.md): nurses unlock with certified laptop keys, and a ward
        # secret is never asked for or accepted.
        self.ring = ring
        self.ward = ward if ring is None else None
        self.access = access.Access()
        self.pending: dict[int, Pending] = {}
        self.tokens = itertools.count(1)
        self.nonces: dict[int, tuple[str, float]] = {}
        self.last_download: dict[str, Any] | None = None
        # (conn, to_seq) of the last download recorded, so that a retried request is not recorded twice.
        self.exported: tuple[int, int] | None = None
        self.port_problem: str | None = None
        # What the salvage of each recent step spent (``_step``): the counted figures tests and benchmarks hold.
        self.salvaged: deque[salvage.Budget] = deque(maxlen=64)

    def attach(self, now: Instant) -> None:
        """Join the unit (after its start, before its loop runs): resume lockouts and failures from the journal."""
        try:
            with self._step():
                past = self.unit.journal.recent(2000) if self.unit.journal is not None else []
        except JournalError:
            past = []          # storage trouble: the link starts from scratch (locked) rather than not at all
        self.access = access.restore(past, now)
        for r in reversed(past):
            if r.type == T.EXPORT:
                self.last_download = {"time": r.time.astimezone(self.cfg.tz).isoformat(timespec="seconds"),
                                      **{k: r.data[k] for k in ("via", "to_seq") if k in r.data}}
                break
        self.unit.attach_link(self)
        self.unit.add_source(self)

    # --- the loop's hooks --------------------------------------------------------------

    def deadline(self) -> float | None:
        return access.deadline(self.access)

    def fire(self, now: Instant) -> None:
        self.access, fx = access.tick(self.access, now)
        self._record(fx, now)

    def decided(self, effect: Decided, now: Instant) -> None:
        p = self.pending.pop(effect.token, None)
        if p is None:
            return
        # Called while the loop carries out the core's effects: the change itself (which
        # steps the core again) is done as the loop's next piece of work.
        if effect.outcome == "confirmed":
            self.unit.call_soon(lambda t: self._apply(effect.token, p, t))
        else:
            self.unit.call_soon(lambda t: self._declined(effect.token, p, effect.outcome, t))

    def ward_changed(self, ward: WardSecret) -> list[Record]:
        """A new ward secret from a ward stick: the old one unlocks nothing from now on."""
        self.ward = ward
        self.access, fx = access.lock(self.access, "secret changed")
        return fx

    def revocations_changed(self) -> list[Record]:
        """New revocations from the ward's settings: whoever is unlocked unlocks again, and is checked."""
        self.access, fx = access.lock(self.access, "revoked")
        return fx

    def stopping(self, now: Instant) -> list[Record]:
        fx: list[Record] = []
        for p in self.pending.values():
            fx.append(_declined_record(p, "stopped", self.cfg))
        self.pending.clear()
        self.access, more = access.lock(self.access, "stopped")
        return fx + more

    # --- requests (run on the loop) ----------------------------------------------------

    def hello(self, conn: int, nonce: str, now: Instant) -> dict[str, Any]:
        """Who this unit is, and a fresh challenge for the tool's unlock."""
        self.nonces[conn] = (nonce, now.mono + NONCE_S)
        seq, digest = self._head()
        out: dict[str, Any] = {
            "proto": 1, "unit": self.cfg.unit_id, "version": __version__, "zone": self.cfg.timezone,
            "time": now.wall.astimezone(self.cfg.tz).isoformat(timespec="milliseconds"),
            "tq": self._tq(), "head": [seq, digest], "unlocked": access.is_unlocked(self.access, conn, now),
            "lockout_s": access.lockout_left(self.access, now), "left": access.attempts_left(self.access),
            "secret": self.ward is not None, "nonce": nonce, "confirm_s": changes.CONFIRM_S, "page_max": PAGE_MAX,
            "keys": self.ring is not None,
        }
        journal = self.unit.journal
        if journal is not None:
            # Which segment files the records are in, for the export header the laptop writes
            # (a file past this step's salvage budget described as unreadable for now, and named).
            with contextlib.suppress(JournalError), self._step() as spent:
                segs = journal.segments()
                out["segments"] = [_listed(seg.header()) for seg in segs[-SEGMENTS_MAX:]]
                # (Files left out of a step's file list, salvage.LIST_FILES, are counted in both.)
                more = max(0, len(segs) - SEGMENTS_MAX) + spent.not_listed
                if more:
                    out["segments_more"] = more
                if spent.deferred or spent.not_listed:
                    out["unread"] = [self._unread(journal.data, name) for name in spent.deferred[:UNREAD_MAX]]
                    if len(spent.deferred) + spent.not_listed > UNREAD_MAX:
                        out["unread_more"] = len(spent.deferred) + spent.not_listed - UNREAD_MAX
        if self.ward is not None:
            out["kdf"] = {"name": "scrypt", "salt": self.ward.salt.hex(), "n": self.ward.n, "r": self.ward.r,
                          "p": self.ward.p}
        return out

    def unlock_typed(self, conn: int, right: bool, now: Instant) -> access.UnlockOutcome:
        """A secret typed at a terminal, checked by the serial thread (scrypt is slow: never on the loop)."""
        self._ward()
        return self._attempt(conn, right, "terminal", now)

    def unlock_mac(self, conn: int, mac_hex: str, now: Instant) -> access.UnlockOutcome:
        """The tool's answer to the challenge: HMAC-SHA256 keyed with the scrypt of the secret.

        The secret itself never crosses the wire, and a recorded answer is useless later.
        """
        ward = self._ward()
        nonce, until = self.nonces.pop(conn, ("", 0.0))
        if not nonce or now.mono > until:
            raise Refused("stale", "no current challenge: ask again (hello)")
        want = hmac_sha256(ward.unlock, nonce.encode("ascii")).hex()
        return self._attempt(conn, compare_digest(want, mac_hex.lower()), "tool", now)

    def challenge(self, conn: int, now: Instant) -> tuple[str, datetime, access.UnlockOutcome | None]:
        """Before a laptop's answer is checked (off the loop): the challenge it must have signed,
        used up; or, during a lockout, the refusal, without checking anything."""
        if self.ring is None:
            raise Refused("no_keys", "this unit has no pinned keys: it unlocks with the ward secret")
        if access.lockout_left(self.access, now):
            return "", now.wall, self._attempt(conn, False, "laptop", now)
        nonce, until = self.nonces.pop(conn, ("", 0.0))
        if not nonce or now.mono > until:
            raise Refused("stale", "no current challenge: ask again (hello)")
        return nonce, now.wall, None

    def unlock_key(self, conn: int, verdict: Verdict, now: Instant) -> access.UnlockOutcome:
        """The judged answer of a certified laptop key (``link/certified.py``), as an attempt."""
        self.access, fx, outcome = access.attempt(self.cfg, self.access, conn, verdict.ok, "laptop", now)
        named = verdict.fields()
        self._record([Record(r.type, r.session, r.due, {**r.data, **named})
                      if r.type in (T.UNLOCK, T.UNLOCK_FAILED) else r for r in fx], now)
        return outcome

    def data_dir(self) -> Path | None:
        return self.unit.journal.data if self.unit.journal is not None else None

    def status(self, conn: int, now: Instant) -> Status:
        st = self.unit.state
        assert st is not None
        done, due, marks = views.today(self.cfg, st, now)
        nxt = views.next_session(self.cfg, st, now)
        problems = dict(st.problems)
        if self.port_problem:
            problems["serial"] = self.port_problem
        ep = st.episode
        episode = None if ep is None else {
            "id": ep.id, "surgery": ep.surgery.isoformat(), "regimen": ep.regimen,
            "day": episodes.post_op_day(ep, now.wall.astimezone(self.cfg.tz).date())}
        return Status(
            self.cfg.unit_id, __version__, now.wall.astimezone(self.cfg.tz).isoformat(timespec="seconds"),
            self.cfg.timezone, self._tq(), nxt[0] if nxt else None, nxt[1] if nxt else None, done, due,
            marks.count("missed"), self._head(), access.is_unlocked(self.access, conn, now),
            access.lockout_left(self.access, now), access.attempts_left(self.access), self.ward is not None,
            self.last_download, problems, episode, self.ring is not None)

    def page(self, conn: int, from_seq: int, limit: int, now: Instant) -> Page:
        """Records from ``from_seq`` on (or, when it is 0 or less, the last ``-from_seq``)."""
        self._require(conn, now)
        journal = self._journal()
        head = journal.head()
        if from_seq <= 0:
            from_seq = max(1, head[0] + from_seq + 1)
        limit = max(0, min(limit, PAGE_MAX))
        recs: list[dict[str, Any]] = []
        unread: list[dict[str, Any]] = []
        if from_seq > head[0] or limit == 0:
            return Page(recs, head)
        try:
            with self._step() as spent:
                for e in journal.entries(from_seq - 1):
                    if isinstance(e, Gap):
                        # Records of a file this step's budget left unread: named with their seqs
                        # (as far as known), and the page goes on after them; past UNREAD_MAX
                        # named, the page ends there. (A gap of damage goes unnamed here, as
                        # before: the laptop finds it as a break.)
                        if e.file in spent.deferred:
                            if len(unread) >= UNREAD_MAX:
                                break
                            lo = e.first if e.first is not None else recs[-1]["seq"] + 1 if recs else from_seq
                            unread.append({**self._unread(journal.data, e.file, e.segment), "first_seq": lo,
                                           "last_seq": e.last})
                        continue
                    if not isinstance(e, dict):
                        continue
                    for u in unread:
                        if u["last_seq"] is None:
                            u["last_seq"] = e["seq"] - 1       # the gap ends where the records go on
                    recs.append(e)
                    if len(recs) >= limit:
                        break
        except JournalError as e:
            raise Refused("unavailable", f"the journal cannot be read now ({e})") from None
        return Page(recs, head, tuple(unread))

    def downloaded(self, conn: int, from_seq: int, to_seq: int, digest: str, now: Instant) -> int:
        """The tool holds and has verified records up to ``to_seq``: record the download."""
        self._require(conn, now)
        journal = self._journal()
        if self.exported == (conn, to_seq):
            return journal.head()[0]
        try:
            with self._step() as spent:
                rec = next(iter(journal.records(to_seq - 1)), None) if to_seq >= 1 else None
        except JournalError as e:
            raise Refused("unavailable", f"the journal cannot be read now ({e})") from None
        if (rec is None or rec["seq"] != to_seq) and any(
                g.file in spent.deferred and (g.first is None or g.first <= to_seq)
                and (g.last is None or to_seq <= g.last) for g in journal.gaps):
            raise Refused("unread", f"record {to_seq} is in a file the unit has {NOT_READ_YET}",
                          unread=[self._unread(journal.data, name) for name in spent.deferred[:UNREAD_MAX]])
        if rec is None or rec["seq"] != to_seq or rec["hash"] != digest:
            raise Refused("mismatch", f"record {to_seq} on the unit does not match the copy")
        # Retention may one day prune what the laptop holds, and only that (docs/journal.md).
        try:
            retention.mark_exported(journal.data, to_seq, digest, "serial", now.wall)
        except OSError as e:
            raise Refused("unavailable", f"the unit could not note the download ({e.strerror})") from None
        # The core records it (``export``) and shows it on the nurse screen as the last download.
        self.unit.handle(Exported("serial", {"from_seq": from_seq, "to_seq": to_seq, "to_hash": digest}), now)
        self.exported = (conn, to_seq)
        self.last_download = {"time": now.wall.astimezone(self.cfg.tz).isoformat(timespec="seconds"),
                              "via": "serial", "to_seq": to_seq}
        return journal.head()[0]

    def ask(self, conn: int, change: changes.Change, notify: Notify, now: Instant) -> int:
        """Show ``change`` on the unit for a press; ``notify(token, outcome, detail)`` tells how it ended."""
        self._require(conn, now)
        kind = changes.kind_of(change)
        problem = self._problem(kind, change, now)
        if problem is not None:
            if kind.core_checks:
                # Refusing changes nothing, so it needs no press; the core records it (``refused``,
                # without the id, which may be a name typed into the wrong field) and shows it.
                self.unit.handle(self._core_event(kind, change, 0.0), now)
            raise Refused("refused", problem)
        token = next(self.tokens)
        self.pending[token] = Pending(conn, kind, change, notify, now.mono)
        line1, line2 = change.lines(self.cfg.tz)
        self.unit.handle(Confirm(token, kind.title, line1, line2, kind.clock(change), changes.CONFIRM_S), now)
        return token

    def withdraw(self, conn: int, token: int, now: Instant) -> None:
        p = self.pending.get(token)
        if p is not None and p.conn == conn:
            self.unit.handle(Withdraw(token), now)

    def lock(self, conn: int, reason: str, now: Instant) -> None:
        self.access, fx = access.lock(self.access, reason, conn)
        self._record(fx, now)

    def closed(self, conn: int, now: Instant) -> None:
        """The port closed (cable pulled, port gone): lock, and stop waiting for that connection's presses."""
        self.nonces.pop(conn, None)
        self.lock(conn, "unplugged", now)
        for token, p in list(self.pending.items()):
            if p.conn == conn:
                self.unit.handle(Withdraw(token), now)

    def port_fault(self, problem: str | None, now: Instant) -> None:
        """The configured port is missing (or back): a fault for the engineer, not for the patient."""
        if problem == self.port_problem:
            return
        if problem is not None:
            self.unit.record(Record(T.FAULT, data={"part": "serial", "problem": problem}), now)
        elif self.port_problem is not None:
            self.unit.record(Record(T.FAULT_CLEARED, data={"part": "serial"}), now)
        self.port_problem = problem

    # --- helpers -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _step(self) -> Iterator[salvage.Budget]:
        """This loop step's salvage budget (``salvage.STEP_BYTES``): whatever the data directory
        holds, one request's salvage reads at most that many bytes of files SQLite refuses."""
        with salvage.bounded(salvage.STEP_BYTES, later=LATER, files=salvage.STEP_FILES) as spent:
            assert spent is not None
            try:
                yield spent
            finally:
                self.salvaged.append(spent)
                journal = self.unit.journal
                if journal is not None and (spent.read or spent.deferred):
                    # What this step left is asked of the journal check: read on its worker
                    # thread, for the next request (what it read is in the cache now).
                    salvage.unwant(journal.data / name for name in spent.read)
                    salvage.want(journal.data / name for name in spent.deferred)

    @staticmethod
    def _unread(data: Path, name: str, segment: int | None = None) -> dict[str, Any]:
        """A file left unread, as an answer names it: its segment number, name, bytes (and its WAL's)."""
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                size += os.stat(data / (name + suffix)).st_size
        if segment is None:
            digits = name.removeprefix("journal-").removesuffix(".sqlite")
            segment = int(digits) if digits.isdigit() else None
        return {"segment": segment, "file": name, "size": size, "problem": NOT_READ_YET}

    def _record(self, records: list[Record], now: Instant) -> None:
        for rec in records:
            self.unit.record(rec, now)

    def _journal(self) -> Journal:
        journal = self.unit.journal
        if journal is None:
            why = self.unit.journal_error or "storage fault"
            raise Refused("unavailable", f"the journal cannot be read now ({why})")
        return journal

    def _head(self) -> tuple[int, str]:
        head = self.unit.head()
        return head if head is not None else (0, "")

    def _tq(self) -> str:
        st = self.unit.state
        return st.time_quality if st is not None else self.unit.time_quality

    def _ward(self) -> WardSecret:
        if self.ring is not None:
            raise Refused("no_secret", "this unit unlocks only with a nurse's certified laptop key (keyunlock); it "
                          "has no ward secret")
        if self.ward is None:
            raise Refused("no_secret", "no ward secret has been set on this unit; an engineer sets it with "
                          "'bedside secret set' at commissioning")
        return self.ward

    def _attempt(self, conn: int, ok: bool, via: str, now: Instant) -> access.UnlockOutcome:
        self.access, fx, verdict = access.attempt(self.cfg, self.access, conn, ok, via, now)
        self._record(fx, now)
        return verdict

    def _require(self, conn: int, now: Instant) -> None:
        left = access.lockout_left(self.access, now)
        if left:
            raise Refused("lockout", f"locked out for {_minutes(left)} after {access.MAX_FAILURES} wrong secrets",
                          seconds=left)
        if not access.is_unlocked(self.access, conn, now):
            raise Refused("locked", "locked: unlock with the ward secret first")
        self.access = access.touch(self.access, conn, now)

    @staticmethod
    def _core_event(kind: changes.Kind[Any], change: changes.Change, waited_s: float) -> Event:
        event = kind.event(change, waited_s)
        assert not isinstance(event, SetClock), f"{kind.word}: a clock change is set, not checked by the core"
        return event

    def _problem(self, kind: changes.Kind[Any], change: changes.Change, now: Instant) -> str | None:
        """Why the unit would refuse ``change`` (the core's own rules, asked before the press)."""
        st = self.unit.state
        assert st is not None
        return kind.problem(change, self.cfg, st, now)

    def _apply(self, token: int, p: Pending, now: Instant) -> None:
        kind, change = p.kind, p.change
        event = kind.event(change, now.mono - p.asked)
        if isinstance(event, SetClock):
            # The loop sets the clock (the journal's commanded clock change: ``clock_set``, source
            # nurse, time quality set-by-nurse); the next piece of its work tells the asker how it went.
            old = now.wall
            self.unit.set_time(event.wall, event.source)
            asked = now.mono
            self.unit.call_soon(lambda t: self._clock_outcome(token, p, old, event.wall, asked, t))
            return
        # The state may have moved on while the press was awaited: a kind the core checks is checked again.
        problem = self._problem(kind, change, now) if kind.core_checks else None
        self.unit.handle(event, now)
        st = self.unit.state
        if problem is not None or st is None:
            p.notify(token, "refused", {"problem": problem or "refused"})
        else:
            p.notify(token, "confirmed", kind.outcome(self.cfg, st, now))

    def _clock_outcome(self, token: int, p: Pending, old: datetime, new: datetime, asked: float,
                       now: Instant) -> None:
        expected = new + timedelta(seconds=now.mono - asked)
        if abs((now.wall - expected).total_seconds()) > SET_SLACK_S:
            # The setter failed (the core recorded a ``fault`` saying why): nothing changed.
            self.unit.record(_declined_record(p, "failed", self.cfg), now)
            p.notify(token, "failed", {"problem": "the unit could not set its clock (see its faults)"})
            return
        tz = self.cfg.tz
        p.notify(token, "confirmed", {"old": old.astimezone(tz).isoformat(timespec="milliseconds"),
                                      "new": now.wall.astimezone(tz).isoformat(timespec="milliseconds")})

    def _declined(self, token: int, p: Pending, outcome: str, now: Instant) -> None:
        self.unit.record(_declined_record(p, outcome, self.cfg), now)
        p.notify(token, outcome, {})


def _listed(header: Mapping[str, Any]) -> dict[str, Any]:
    """A segment's description as a hello lists it: each field at most FIELD_MAX characters of
    JSON (measured without encoding more than that much of it)."""
    out: dict[str, Any] = {}
    for key, value in header.items():
        if _json_size(value) <= FIELD_MAX:
            out[key] = value
        elif isinstance(value, str):
            cut = value[:FIELD_MAX]
            while (size := _json_size(cut)) > FIELD_MAX - 3:      # (an escape is up to 12 characters)
                cut = cut[:min(len(cut) - 1, len(cut) * (FIELD_MAX - 3) // size)]
            out[key] = cut + "…"
        else:
            out[key] = {"too_long": True}
    return out


def _json_size(value: Any) -> int:
    """The length of ``value``'s JSON, or some number past FIELD_MAX once it is longer."""
    total, todo = 0, [value]
    while todo and total <= FIELD_MAX:
        v = todo.pop()
        if isinstance(v, str):
            total += len(json.dumps(v[:FIELD_MAX + 1]))
        elif isinstance(v, Mapping):
            total += 2 + 2 * len(v)
            todo.extend(itertools.islice(itertools.chain.from_iterable(v.items()), FIELD_MAX))
        elif isinstance(v, list | tuple):
            total += 2 + len(v)
            todo.extend(itertools.islice(v, FIELD_MAX))
        else:
            total += len(json.dumps(v)) if not isinstance(v, int) or abs(v) < 10**FIELD_MAX else FIELD_MAX + 1
    return total


def _declined_record(p: Pending, reason: str, cfg: Any) -> Record:
    return Record(T.CHANGE_DECLINED, data={"what": p.kind.word, "change": p.change.text(cfg.tz), "reason": reason})


def _minutes(seconds: int) -> str:
    m = (seconds + 59) // 60
    return f"{m} more minute{'s' if m != 1 else ''}"
