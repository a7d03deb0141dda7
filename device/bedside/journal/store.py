"""The daemon's side of the journal: checking it at start, writing through storage faults,
sealing, the heartbeat and retention.

The daemon's loop owns one ``Store`` and calls it from its own thread only.

* **Start** — open the journal and rebuild the state from its newest records (a bounded
  number, plus the latest records that set the episode: start-up does not grow with the
  journal). The check of every segment file (SQLite's integrity check) and the whole chain
  runs either before anything (``check=True``: tools and tests) or, in the daemon, after the
  first frame, off the loop's thread (``check="background"``, unit/journal_check.py), whose
  verdict comes back through ``checked``. Damage is never repaired by deleting: a damaged
  active file is kept read-only and a new segment continues the chain; anything found is a
  ``fault`` record and a notice for the nurse. A clean check leaves a ``verified`` record
  (its seq and hash, chained and sealed like every record): the checkpoint the next start's
  quick check of the newest records starts from. If the journal cannot be opened at all
  (read-only card, I/O errors) the unit still starts and prompts, rebuilding what it can
  from a read-only view.
* **Writing** — a record that cannot be committed (disk full, read-only, I/O error) is
  kept in memory, in order, and retried with a growing pause (1 s … 60 s); everything
  after it waits behind it, so the journal's order is the order things happened. The
  daemon shows no confirmation for a record that is only in memory. When storage comes
  back, a ``fault`` (with the time it began), the kept records and a ``fault_cleared`` are
  written.
* **Seals** every ``SEAL_EVERY_S`` of running time when anything was written, and at a clean
  stop; **heartbeat** after ``heartbeat.EVERY_S`` without a record; **retention** after writes.
  Seals and beats are done at the first wake-up after they are due, within
  ``HOUSEKEEPING_SLACK_S``: they never wake an otherwise sleeping unit of their own.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bedside.core import wall
from bedside.core.events import Instant, Past, Record
from bedside.core.records import Kind, T, of_kind
from bedside.journal import heartbeat, outage, retention, salvage, seal, verify
from bedside.journal.journal import Journal
from bedside.journal.seal import Sealer, SealError
from bedside.journal.segments import (
    JournalDamaged,
    JournalError,
    chain_shown,
    create_segment,
    make_read_only,
    not_a_file,
    segment_files,
    to_past,
)

SEAL_EVERY_S = seal.EVERY_S
# A seal or heartbeat that is due waits up to this long for a wake-up the loop makes anyway
# (the idle clock's minute, the loop's longest sleep) rather than waking the unit itself.
HOUSEKEEPING_SLACK_S = 300.0
TRUSTED_CLOCKS = ("ntp", "rtc", "set-by-nurse", "simulated")   # time qualities a time "later than now" contradicts
MAX_PENDING = 20000            # records kept in memory while storage is failing (weeks of a ward's events)
RETENTION_EVERY_S = 60.0      # how often segment sizes are looked at (after writes)
RETRY_FIRST_S = 1.0
RETRY_MAX_S = 60.0
# Records written back per turn of the loop once storage returns, and the pause between turns.
# Each is a commit (an fsync): on a slow card 64 take about a second, so a press is answered
# between turns, and weeks of kept records (MAX_PENDING) never hold one turn past the watchdog.
# The pause keeps the turns under the watchdog's spin limit (supervise.Watchdog).
CATCH_UP_RECORDS = 64
CATCH_UP_GAP_S = 0.1
NOTICE = "Log not saved: tell nurse"
DAMAGE_NOTICE = "Log damaged: tell engineer"
KEY_NOTICE = "Seal key unreadable"
# How a file left unread by a loop step's salvage budget is described (read by the journal check's passes).
LATER = "at the next pass of the journal check"
KEY_LOST_NOTICE = "Seal key lost: tell engineer"
# Records that hold no session state: skipped when handing the past to the core.
BOOKKEEPING = of_kind(Kind.BOOKKEEPING)
# The newest records the state is rebuilt from: sessions, outcomes and repeats of the last
# days (a day is 30-130 records); older facts that still matter (the open episode, the last
# download) come from the newest record of each of EPISODE_TYPES.
PAST_RECORDS = 600
EPISODE_TYPES = (T.ADMIT, T.DISCHARGE, T.START, T.EXPORT)
CHECKPOINT = T.VERIFIED


def not_examined(spent: salvage.Budget, when: str) -> dict[str, Any]:
    """A ``fault`` record's data naming the files named as segments that a budget with a file
    count did not look at (salvage.START_FILES, LIST_FILES): how many, which, and why."""
    parts = []
    if spent.not_examined:
        parts.append(f"{spent.not_examined} not opened (at most {spent.files} files not remembered are opened)")
    if spent.not_listed and spent.not_listed_range is not None:
        lo, hi = spent.not_listed_range
        parts.append(f"{spent.not_listed} numbered {lo}–{hi} not listed (at most {salvage.LIST_FILES} are "
                     "looked at)")
    return {"part": "journal", "not_examined": spent.not_examined + spent.not_listed,
            "problem": f"files named as segments were not examined {when}: {'; '.join(parts)}, so that the unit "
                       f"prompts within its start timeout whatever the data directory holds; any records in "
                       f"them are read {LATER}"}


@dataclass
class Opened:
    """What the daemon needs from the journal to start."""

    past: list[Past]
    alive: datetime | None                 # last heartbeat, when later than the last record
    records: list[Record] = field(default_factory=list)    # to write after the start record
    notice: str | None = None


def _signature(p: verify.Problem) -> str:
    # Damage to a file is the same damage however much of the chain has been read past it.
    return f"{p.kind}:{p.seq}:{p.segment}" + ("" if p.kind == "file" else f":{p.text[:60]}")


class Store:
    def __init__(self, data_dir: Path, tz: ZoneInfo, boot: str, *, journal: Journal | None = None,
                 check: bool | str = True, seal_every_s: float = SEAL_EVERY_S, heartbeat_s: float = heartbeat.EVERY_S,
                 opener: Callable[[], Journal] | None = None, segment_bytes: int = retention.SEGMENT_BYTES,
                 keep_bytes: int = retention.KEEP_BYTES) -> None:
        self.data = Path(data_dir)
        self.tz = tz
        self.boot = boot
        self.journal = journal
        self.opener = opener or (lambda: Journal(self.data, self.tz, self.boot))
        self.check = check
        self.seal_every_s = seal_every_s
        self.heartbeat_s = heartbeat_s
        self.segment_bytes = segment_bytes
        self.keep_bytes = keep_bytes
        self.sealer: Sealer | None = None
        self.key_problem: str | None = None
        self.key_lost = False                      # the journal was commissioned but its key is gone
        self.pending: list[tuple[Record, Instant, str]] = []
        self._pending_types: Counter[str] = Counter()   # of ``pending`` but its journal faults (the reserve's)
        self._reserve_fit: int | None = None           # how many kept records the reserve held last time
        self.error: str | None = None              # the storage problem now, for people
        self.damage: str | None = None             # damage found at start, for the nurse
        self.lost: Counter[str] = Counter()
        self.written_late = 0
        self.retry_at: float | None = None
        self.retry_delay = RETRY_FIRST_S
        self.failed_at: tuple[Instant, str] | None = None     # a failure whose fault record is not yet kept
        self._failed_record: Record | None = None             # the record whose write failed then, if any
        self.last_seal_mono: float | None = None
        self.since_seal = 0
        self.last_durable_mono: float | None = None
        self.flood = retention.FloodGuard()
        self.since_retention = 0
        self.last_retention_mono: float | None = None
        self.on_commit: list[Callable[[dict[str, Any]], None]] = []
        self.beats = heartbeat.Writer(self.data)
        self._seal_uncertain = False
        self._outage_gen = 0

    # --- starting --------------------------------------------------------------------

    def start(self, now: Instant, time_quality: str = "unverified") -> Opened:
        # Salvage of files SQLite refuses has a budget while the unit starts (salvage.START_BYTES),
        # unless the whole check runs first (check=True): then the start takes what the check takes.
        # Files not remembered are opened at most ``salvage.START_FILES`` (each charged
        # ``salvage.FILE_BYTES``): a data directory of many small files named as segments
        # cannot hold the start either. Those not examined are named in a fault record.
        with salvage.bounded(salvage.START_BYTES if self.check is not True else None,
                             files=salvage.START_FILES) as spent:
            opened = self._start(now, time_quality)
        if spent is not None and (spent.not_examined or spent.not_listed):
            opened.records.append(Record(T.FAULT, data=not_examined(spent, "while the unit started")))
        return opened

    def _start(self, now: Instant, time_quality: str) -> Opened:
        records: list[Record] = []
        if self.journal is None:
            try:
                self.journal = self.opener()
            except JournalError as e:
                if isinstance(e, JournalDamaged) and self.check:
                    records += self._recover_unopenable(str(e))
                else:
                    self._failing(str(e), now)
        try:
            if self.journal is not None and self.check is not False:
                # Cheap, and before anything is written: a journal that ends before a record
                # the heartbeat or the export marker saw goes on after that record.
                shown = chain_shown(self.data)
                if shown is not None and shown[0] > self.journal.head()[0]:
                    records += self._start_after_loss(self.journal.active.n, shown)
            if self.journal is not None and self.check is True:
                records += self._check(records)
        except Exception as e:        # whatever the files hold, the unit starts and prompts
            self.damage = DAMAGE_NOTICE
            records.append(Record(T.FAULT, data={"part": "journal", "damage": True,
                                                 "problem": f"the start-up check failed: {type(e).__name__}: {e}"}))
        records += self._key_check()
        records += self._from_reserve(now, time_quality)
        past, alive = self._past()
        if alive is not None and time_quality in TRUSTED_CLOCKS and alive > now.wall + timedelta(minutes=1):
            # A heartbeat from the future: no clock that kept time wrote it. It bounds nothing.
            records.append(Record(T.FAULT, data={"part": "journal", "problem": f"the heartbeat's time "
                                                 f"({alive.isoformat()}) is later than now; it was not used"}))
            alive = None
        self.last_seal_mono = now.mono
        if self._inherited_unsealed():
            # The last run ended without a seal (a power cut): its newest records are sealed
            # at the first chance, not an hour into this run.
            self.since_seal = 1
            self.last_seal_mono = now.mono - self.seal_every_s
        self.last_durable_mono = now.mono
        return Opened(past, alive, records, self.notice)

    def _key_check(self) -> list[Record]:
        """The seal key: readable, and present wherever the journal says the unit was commissioned."""
        try:
            self.sealer = Sealer(self.data)
        except SealError as e:
            self.key_problem = str(e)
            return [Record(T.FAULT, data={"part": "seal", "problem": str(e)})]
        if self.journal is None:
            return []
        caught = None
        try:
            commissioned = self.journal.last_of_type(T.SEAL_KEY)
            if self.sealer.available:
                caught = self.sealer.catch_up(self.journal.last_of_type(T.SEAL))
        except JournalError:
            return []
        if caught is not None:
            return [Record(T.FAULT, data={"part": "seal", "problem": caught})]
        key = self.sealer.key
        if commissioned is None:
            return []
        if key is None:
            why = (f"the seal key is missing ({self.sealer.path.name}): the journal says this unit was given key "
                   f"{commissioned.get('key_id')} (seq {commissioned.get('seq')}), so its records are no longer "
                   "sealed; the engineer must find out why (a unit is commissioned once)")
        elif key.key_id != commissioned.get("key_id"):
            why = (f"the seal key ({key.key_id}) is not the one the journal was commissioned with "
                   f"({commissioned.get('key_id')}, seq {commissioned.get('seq')})")
            self.sealer.key = None           # sealing with a key nobody holds would prove nothing
        else:
            return []
        self.key_problem = why
        self.key_lost = True
        return [Record(T.FAULT, data={"part": "seal", "problem": why, "key_id": commissioned.get("key_id")})]

    def _from_reserve(self, now: Instant, time_quality: str) -> list[Record]:
        """An outage the last run could only write to the reserve (outage.py): into the journal now,
        in its place, before this run's records; the ``fault_cleared`` comes after the start record.

        Every value is checked first (``outage.read_checked``): a slot or record the unit would
        not have written is refused by name in a ``fault`` record and the rest is still written;
        nothing in the file can stop the unit starting. A kept record later than now is refused
        when the clock is trusted; otherwise (fake-hwclock can restart an hour behind) only when
        it is later than any stay could reach."""
        if self.journal is None or self.error is not None:
            return []
        trusted = time_quality in TRUSTED_CLOCKS
        limit = now.wall if trusted else max(now.wall, wall.PLAUSIBLE_FROM) + wall.LONGEST_SPAN
        try:
            found = outage.read_checked(self.data, limit)
        except Exception as e:        # whatever the file holds, the unit starts and prompts
            found = outage.Reading(refused=[f"the reserve could not be read: {type(e).__name__}: {e}"])
        refusal = ([Record(T.FAULT, data={"part": "journal", "reserve_refused": found.refused[:6],
                                          "problem": "the outage reserve held values the unit does not write; "
                                                     "they were refused and not written into the journal"})]
                   if found.refused else [])
        head = self.journal.head()
        if found.body is None or found.head != head:
            outage.clear(self.data)            # nothing there, or the journal moved on after it
            outage.reserve(self.data)
            return refusal
        body = found.body
        kept: list[outage.Kept] = [*([found.since] if found.since is not None else []), *found.records]
        written, boot = 0, self.journal.boot
        try:
            self.journal.boot = str(body.get("boot") or boot)[:64]
            for i, r in enumerate(kept):
                details = ({"part": "journal", "problem": body.get("why"), "outage": True}
                           if i == 0 and found.since is not None else r.data)
                self.journal.append(Record(r.type, r.session, r.due, details), Instant(r.wall, r.mono), r.tq)
                written += 1
        except (JournalError, TypeError, ValueError) as e:
            refusal.append(Record(T.FAULT, data={"part": "journal", "problem": f"the outage reserve's records "
                                                 f"could not all be written: {type(e).__name__}: {e}"}))
        finally:
            self.journal.boot = boot
        outage.clear(self.data)
        outage.reserve(self.data)
        data: dict[str, Any] = {"part": "journal", "written_late": max(0, written - (found.since is not None)),
                                "from_reserve": True, "restarted": True,
                                "until": body.get("until"),
                                "kept_prompting": any(r.type == T.PROMPT for r in found.records)}
        if found.more:
            data["not_saved"] = found.more
        return [*refusal, Record(T.FAULT_CLEARED, data=data)]

    def _save_outage(self) -> None:
        """The outage so far, to the reserve: what a power cut would otherwise take with it."""
        if not self.pending:
            return
        head = self.head() if self.journal is not None else None
        if head is None:
            return
        first_at = self.failed_at[0] if self.failed_at is not None else self.pending[0][1]
        # This runs for every record kept, so it looks at no more records than a slot can hold;
        # the rest of a long outage goes in as counts (kept in step with ``pending``).
        recs: list[dict[str, Any]] = []
        shown: Counter[str] = Counter()
        for r, at, tq in self.pending:
            if len(recs) == outage.MOST_RECORDS:
                break
            if _journal_fault(r):
                continue
            recs.append({"type": r.type, "session": r.session, "due": r.due.isoformat() if r.due else None,
                         "data": dict(r.data), "wall": at.wall.isoformat(), "mono": at.mono, "tq": tq})
            shown[r.type] += 1
        self._outage_gen += 1
        self._reserve_fit = outage.write(self.data, {
            "gen": self._outage_gen, "boot": self.boot, "head": [head[0], head[1]], "why": self.error,
            "since": first_at.wall.isoformat(), "since_mono": first_at.mono, "since_tq": self.pending[0][2],
            "until": self.pending[-1][1].wall.isoformat(), "records": recs,
            "more": dict(self.lost + (self._pending_types - shown))}, hint=self._reserve_fit)

    def _inherited_unsealed(self) -> bool:
        if self.journal is None or self.sealer is None or not self.sealer.available:
            return False
        try:
            last = self.journal.last_record()
        except JournalError:
            return False
        return last is not None and last.get("type") not in (T.SEAL, T.SEAL_KEY)

    def _past(self) -> tuple[list[Past], datetime | None]:
        reader = self.journal
        own = False
        if reader is None:
            # Storage is failing, but a read-only view still says what was done and prompted.
            try:
                reader = Journal(self.data, self.tz, self.boot, readonly=True)
                own = True
            except JournalError:
                return [], None
        try:
            past = _rebuild_past(reader)
            head = reader.head()
        except JournalError:
            return [], None
        finally:
            if own:
                reader.close()
        beat = heartbeat.read(self.data)
        alive = None
        if beat is not None and past and (beat.seq, beat.hash) == head and beat.time > past[-1].time:
            alive = beat.time
        return past, alive

    def _check(self, found: list[Record]) -> list[Record]:
        """Integrity of every file and the whole chain; damage → kept read-only, new segment, fault.

        ``found``: fault records already made in this start (not yet written)."""
        assert self.journal is not None
        try:
            v = verify.verify_data(self.data)
        except JournalError as e:
            return [Record(T.FAULT, data={"part": "journal", "problem": f"journal check failed: {e}"})]
        return self._findings(v, found)

    def checkpoint(self) -> tuple[int, str] | None:
        """The (seq, hash) the last clean whole check reached, from its ``verified`` record."""
        if self.journal is None:
            return None
        try:
            rec = self.journal.last_of_type(CHECKPOINT)
        except JournalError:
            return None
        if rec is None or not isinstance(rec.get("seq_checked"), int) or not isinstance(rec.get("hash_checked"), str):
            return None
        return int(rec["seq_checked"]), str(rec["hash_checked"])

    def checked(self, v: verify.Verdict, *, whole: bool) -> list[Record]:
        """What the loop records for a check made off its thread: faults for fresh problems, and
        after a clean ``whole`` check the checkpoint (nothing when nothing was checked)."""
        if self.journal is None:
            return []
        records = self._findings(v, [])
        if whole and v.ok and v.head is not None and not records:
            records.append(Record(CHECKPOINT, data={"seq_checked": v.head[0], "hash_checked": v.head[1],
                                                    "records_checked": v.records}))
        return records

    def _findings(self, v: verify.Verdict, found: list[Record]) -> list[Record]:
        assert self.journal is not None
        active = self.journal.active.n
        records: list[Record] = []
        if any(p.kind == "file" and p.segment == active for p in v.problems):
            records += self._start_after_damage(active, v)
        earlier = [*self.journal.of_type(T.FAULT), *(dict(r.data) for r in [*found, *records])]
        known = {s for r in earlier if r.get("part") == "journal" for s in r.get("signatures", [])}
        fresh = [p for p in v.problems if p.kind != "damage" and _signature(p) not in known]
        if fresh:
            self.damage = DAMAGE_NOTICE
            records.append(Record(T.FAULT, data={
                "part": "journal", "damage": True, "problem": str(fresh[0]), "problems": len(fresh),
                "first_bad": v.first_bad, "signatures": [_signature(p) for p in fresh[:20]]}))
        return records

    def _continuation(self, head: tuple[int, str] | None) -> tuple[int, str]:
        """Where a new segment continues the chain: the last readable record, or a later head the
        heartbeat or the export marker saw (so exports made before the damage still link, and no
        seq is ever used twice)."""
        seq, h = head if head is not None else (0, "0" * 64)
        shown = chain_shown(self.data)
        if shown is not None and shown[0] > seq:
            return shown[0], shown[1]
        return seq, h

    def _start_after_damage(self, n: int, v: verify.Verdict) -> list[Record]:
        assert self.journal is not None
        seq, h = self._continuation(v.head)
        detail = {"damaged_segment": n, "readable_to": v.head[0] if v.head else 0}
        try:
            self.journal.new_segment("damaged", detail, continue_from=(seq, h), damaged=True)
        except JournalError as e:
            self._failing(str(e), None)
            return []
        self.damage = DAMAGE_NOTICE
        return [Record(T.FAULT, data={
            "part": "journal", "damage": True, "segment": n,
            "problem": f"segment {n} is damaged; it is kept read-only and segment {n + 1} continues from seq {seq}",
            "signatures": [_signature(p) for p in v.problems if p.kind != "damage"][:20]})]

    def _start_after_loss(self, n: int, shown: tuple[int, str, str]) -> list[Record]:
        """The journal ends before a record other files saw (its newest segment was lost or cut
        short): the chain goes on from that record, so no seq is used twice, and the loss is named."""
        assert self.journal is not None
        head = self.journal.head()[0]
        seq, h, where = shown
        detail = {"damaged_segment": n, "readable_to": head, "missing": [head + 1, seq]}
        try:
            self.journal.new_segment("damaged", detail, continue_from=(seq, h))
        except JournalError as e:
            self._failing(str(e), None)
            return []
        self.damage = DAMAGE_NOTICE
        return [Record(T.FAULT, data={
            "part": "journal", "damage": True, "segment": n, "first_bad": head + 1,
            "problem": f"records {head + 1}–{seq} are missing: the journal ends at seq {head} but {where} shows "
                       f"seq {seq}; segment {n + 1} continues from seq {seq}"})]

    def _recover_unopenable(self, why: str) -> list[Record]:
        """The active file cannot even be opened: keep it, start the next segment after what is readable."""
        files = segment_files(self.data)
        n, path = files[-1] if files else (0, None)
        try:
            v = verify.verify_data(self.data)
            head = v.head
            signatures = [_signature(p) for p in v.problems if p.kind != "damage"][:20]
        except JournalError:
            head, signatures = None, []
        seq, h = self._continuation(head)
        try:
            if path is not None and not_a_file(path) is None:
                make_read_only(path)
            create_segment(self.data, n + 1, seq + 1, h, "damaged",
                           {"damaged_segment": n, "readable_to": head[0] if head else 0})
            self.journal = self.opener()
        except (OSError, JournalError) as e:
            self._failing(str(e), None)
            return []
        self.damage = DAMAGE_NOTICE
        return [Record(T.FAULT, data={
            "part": "journal", "damage": True, "segment": n,
            "problem": (f"segment {n} cannot be opened ({why}); it is kept read-only and segment {n + 1} "
                        f"continues from seq {seq}") if path is not None else
                       f"{why}; segment 1 continues the chain from seq {seq}", "signatures": signatures})]

    # --- writing ---------------------------------------------------------------------

    @property
    def notice(self) -> str | None:
        if self.error is not None:
            return NOTICE
        if self.damage:
            return self.damage
        return (KEY_LOST_NOTICE if self.key_lost else KEY_NOTICE) if self.key_problem else None

    def head(self) -> tuple[int, str] | None:
        return self.journal.head() if self.journal is not None else None

    def write(self, rec: Record, at: Instant, tq: str) -> bool:
        """Commit ``rec`` (and any flood notice); False if it is only kept in memory for now."""
        ok = True
        for r in self.flood.filter(rec, at.mono):
            ok = self._write_one(r, at, tq) and ok
        return ok

    @property
    def _holding(self) -> bool:
        """Records wait in memory: kept ones, or a failure whose ``fault`` record is not yet kept
        (a seal or a new segment that failed). Nothing is written past them, so the journal's
        seq order stays the order of its stamps."""
        return bool(self.pending) or self.failed_at is not None

    def _write_one(self, rec: Record, at: Instant, tq: str) -> bool:
        if self._holding or self.journal is None:
            self._keep(rec, at, tq)
            return False
        try:
            body = self.journal.append(rec, at, tq)
        except JournalError as e:
            self._failing(str(e), at, kept=rec)
            self._keep(rec, at, tq)
            return False
        self._committed(body, rec, at)
        return True

    def _keep(self, rec: Record, at: Instant, tq: str) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.lost[rec.type] += 1
        else:
            self.pending.append((rec, at, tq))
            if not _journal_fault(rec):
                self._pending_types[rec.type] += 1
        self._save_outage()

    def _failing(self, why: str, at: Instant | None, kept: Record | None = None) -> None:
        """Storage failed at ``at``; ``kept``: the record whose write failed (kept first in memory)."""
        if self.error is None and at is not None:
            self.failed_at = (at, why)
            self._failed_record = kept
        self.error = why
        if self.retry_at is None:
            self.retry_delay = RETRY_FIRST_S
            self.retry_at = (at.mono if at is not None else 0.0) + self.retry_delay

    def _committed(self, body: dict[str, Any], rec: Record, at: Instant) -> None:
        self.last_durable_mono = at.mono
        self.since_retention += 1
        if rec.type == T.SEAL:
            self.since_seal = 0
            self.last_seal_mono = at.mono
        else:
            self.since_seal += 1
        for fn in self.on_commit:
            fn(body)

    def retry(self, now: Instant, tq: str) -> bool:
        """Try again to write what is kept; True when nothing is left in memory. At most
        ``CATCH_UP_RECORDS`` are written a call; the rest are due again ``CATCH_UP_GAP_S`` later."""
        if not self.pending and self.journal is not None and self.error is None:
            return True
        if self.retry_at is not None and now.mono < self.retry_at:
            return False
        if self.journal is None:
            try:
                self.journal = self.opener()
            except JournalError as e:
                self.error = str(e)
                self._backoff(now)
                return False
        assert self.journal is not None
        if self.failed_at is not None:
            # The fault goes in right after the record whose write failed: that record is retried
            # first, so that if the failed commit reached the card after all it is not written twice.
            # A failure that kept no record (a seal, a new segment) goes before everything kept
            # since: the journal's seq order is the order of its stamps (verify checks monotonic time).
            at, why = self.failed_at
            after = 1 if self.pending and self.pending[0][0] is self._failed_record else 0
            self.pending.insert(after, (Record(T.FAULT, data={"part": "journal", "problem": why}),
                                        at, self.pending[0][2] if self.pending else tq))
            self.failed_at, self._failed_record = None, None
        written = 0
        while self.pending:
            if written == CATCH_UP_RECORDS:
                self.retry_at = now.mono + CATCH_UP_GAP_S
                self._save_outage()          # the reserve follows the journal's new head
                return False
            rec, at, tq = self.pending[0]
            try:
                body = self.journal.append(rec, at, tq)
            except JournalError as e:
                self.error = str(e)
                self._backoff(now)
                return False
            written += 1
            self.pending.pop(0)
            if not _journal_fault(rec):
                self._pending_types[rec.type] -= 1
            self.written_late += 1
            self._committed(body, rec, at)
        if self.error is not None:
            # Written late: everything kept in memory except the fault record itself.
            data: dict[str, Any] = {"part": "journal", "written_late": max(0, self.written_late - 1)}
            self.written_late = 0
            if self.lost:
                data["lost"] = dict(self.lost)
                self.lost.clear()
            self.error = None
            self.retry_at = None
            self._write_one(Record(T.FAULT_CLEARED, data=data), now, tq)
            outage.clear(self.data)
        if self._seal_uncertain and self.sealer is not None:
            caught = None
            # On the loop: the search back for the last seal salvages at most one step's budget.
            with contextlib.suppress(JournalError), salvage.bounded(salvage.STEP_BYTES, later=LATER,
                                                                    files=salvage.STEP_FILES):
                caught = self.sealer.catch_up(self.journal.last_of_type(T.SEAL))
            self._seal_uncertain = False
            if caught is not None:
                self._write_one(Record(T.FAULT, data={"part": "seal", "problem": caught}), now, tq)
        return not self.pending

    def _backoff(self, now: Instant) -> None:
        self.retry_delay = min(RETRY_MAX_S, self.retry_delay * 2)
        self.retry_at = now.mono + self.retry_delay

    # --- seals, heartbeat, retention ---------------------------------------------------

    def seal(self, now: Instant, tq: str) -> bool:
        """Seal the chain head now (if there is a key and anything new); True if a seal was committed."""
        s = self.sealer
        if s is None or not s.available or self.journal is None or self._holding or self.since_seal == 0:
            return False
        seq, h = self.journal.head()
        rec = Record(T.SEAL, data=s.seal_data(seq, h))
        try:
            body = self.journal.append(rec, now, tq)
        except JournalError as e:
            # It may have reached the file all the same: the next successful write finds out.
            self._seal_uncertain = True
            self._failing(str(e), now)
            return False
        self._committed(body, rec, now)
        s.sealed()
        return True

    def start_segment(self, reason: str, detail: dict[str, Any], now: Instant, tq: str) -> bool:
        """Seal and close the active segment and start the next, on demand (a new patient's
        episode); True if it did. With storage in trouble, or nothing in the active segment
        yet, the records simply carry on where they are: nothing depends on the split."""
        if self.journal is None or self.pending or self.error is not None:
            return False
        if self.journal.head()[0] < self.journal.active.first_seq:
            return False
        try:
            self.seal(now, tq)
            self.journal.new_segment(reason, detail)
        except (JournalError, OSError) as e:
            self._failing(str(e), now)
            return False
        return True

    def tick(self, now: Instant, tq: str) -> None:
        """After the loop's effects: seal when due, beat when quiet, keep the journal bounded."""
        if self.journal is None or self._holding:
            return
        if self.sealer is not None and self.sealer.unsaved:
            self.sealer.persist()
        # Compared exactly as deadline() computes them, so a wake-up at the deadline always acts.
        if self.since_seal and self.last_seal_mono is not None and now.mono >= self.last_seal_mono + self.seal_every_s \
                and self.sealer is not None and self.sealer.available:
            self.seal(now, tq)
        if self.last_durable_mono is not None and now.mono >= self.last_durable_mono + self.heartbeat_s:
            self.beat(now)
        if self.since_retention and (self.last_retention_mono is None
                                     or now.mono >= self.last_retention_mono + RETENTION_EVERY_S):
            self.last_retention_mono = now.mono
            self.since_retention = 0
            self._retention(now, tq)

    def beat(self, now: Instant) -> None:
        assert self.journal is not None
        seq, h = self.journal.head()
        # Whether or not it could be written, the next one is due a whole interval later (the
        # heartbeat only narrows an outage's bound; the journal's own fault shows storage trouble).
        self.last_durable_mono = now.mono
        with contextlib.suppress(OSError, ValueError):
            self.beats.write(heartbeat.Beat(now.wall, self.boot, round(now.mono * 1000), seq, h))

    def _retention(self, now: Instant, tq: str) -> None:
        assert self.journal is not None
        try:
            if retention.needs_new_segment(self.journal, self.segment_bytes):
                # Each closed segment ends sealed, so it can be checked on its own.
                self.seal(now, tq)
                self.journal.new_segment("size", {"bytes": self.journal.active_bytes()})
                return
            marker = retention.read_marker(self.data)
            # No salvage on the loop to decide what to prune: a damaged file not yet read (by the
            # check's passes, unit/journal_check.py) is not known, and pruning stops before it.
            with salvage.bounded(0, later=LATER, files=salvage.STEP_FILES):
                prunable = retention.prunable(self.journal, self.keep_bytes)
            # What pruning them looks up (each one's last hash, earlier prunes): one step's budget.
            with salvage.bounded(salvage.STEP_BYTES, later=LATER, files=salvage.STEP_FILES):
                for n, path, first, last in prunable:
                    assert marker is not None
                    last_hash = next((r["hash"] for r in self.journal.records(last - 1) if r["seq"] == last), "")
                    # The journal starts at `first` now; earlier prunes (if any) account for what came before.
                    before = [r for r in self.journal.of_type(T.PRUNED) if r.get("last_seq") == first - 1]
                    since = before[-1].get("from_seq", before[-1].get("first_seq")) if before else first
                    rec = retention.prune_record(n, first, last, last_hash, marker, since if isinstance(since, int)
                                                 else first)
                    if not self._write_one(rec, now, tq):
                        return
                    retention.delete_segment(path)
        except (JournalError, OSError) as e:
            self._failing(str(e), now)

    def overdue(self, now_mono: float, slack: float) -> bool:
        """Records are waiting and their retry is late by more than ``slack`` (the loop is not
        running the retries: the watchdog's concern; failing retries that do run are not)."""
        return bool(self.pending or self.error) and self.retry_at is not None and now_mono > self.retry_at + slack

    def deadline(self) -> float | None:
        """The monotonic time the store next needs the loop awake (a retry, a seal, a heartbeat)."""
        cands = []
        if self.pending or self.error is not None:
            if self.retry_at is not None:
                cands.append(self.retry_at)
        else:
            # tick() acts at the due time on any wake-up; the loop is woken for them only
            # when no other wake-up has come within the slack.
            if self.since_seal and self.last_seal_mono is not None and self.sealer is not None \
                    and self.sealer.available:
                cands.append(self.last_seal_mono + self.seal_every_s + HOUSEKEEPING_SLACK_S)
            if self.last_durable_mono is not None:
                cands.append(self.last_durable_mono + self.heartbeat_s + HOUSEKEEPING_SLACK_S)
        return min(cands) if cands else None

    def unsaved_lines(self) -> list[str]:
        """The records only in memory, one JSON line each (for the system log at a stop)."""
        out = []
        for rec, at, tq in self.pending:
            out.append(json.dumps({"type": rec.type, "time": at.wall.isoformat(timespec="milliseconds"),
                                   "session": rec.session, "tq": tq, **dict(rec.data)}, default=str))
        return out

    def close(self) -> None:
        self.beats.close()
        if self.journal is not None:
            self.journal.close()


def _journal_fault(rec: Record) -> bool:
    """The record of the journal's own failure: the reserve says it in its own fields."""
    return rec.type == T.FAULT and rec.data.get("part") == "journal"


def _rebuild_past(reader: Journal) -> list[Past]:
    """The records the core rebuilds its state from, oldest first: the newest ``PAST_RECORDS``,
    and before them the newest record of each of ``EPISODE_TYPES`` they lack."""
    window = reader.recent(PAST_RECORDS)
    first = window[0].seq if window else None
    have = {p.type for p in window}
    older = []
    if first is not None and len(window) >= PAST_RECORDS:
        for t in EPISODE_TYPES:
            if t in have:
                continue
            rec = reader.last_of_type(t)
            if rec is not None and int(rec["seq"]) < first:
                older.append(to_past(rec))
    older.sort(key=lambda p: p.seq)
    return [p for p in [*older, *window] if p.type not in BOOKKEEPING]
