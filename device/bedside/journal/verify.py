"""Checking a journal: the hash chain, gap-free ``seq``, boots, seals and segments.

One checker reads records one at a time (a year's journal is never held whole) from a
unit's data directory or an export file, and gives a ``Verdict``: ok or not, one line for
a person, the first bad record, every problem found, the chain head, and how many seals
were checked against the hospital's key. ``bedside log verify`` prints it; the report and
the serial download call the same functions.

What each check catches:

* a record whose contents do not match its ``hash``: it was changed after it was written;
* a ``prev`` that is not the previous record's ``hash``: records removed, inserted or
  reordered (or one re-hashed after a change);
* ``seq`` not one more than the previous: records missing or repeated;
* a boot that reappears after another began, or monotonic time that runs back within a
  boot: records spliced from elsewhere;
* a seal whose HMAC does not match the key of its own epoch (epochs run 0, 1, 2 … through
  the chain): records before it were changed and re-chained;
* an export whose header ``head`` is not its last record: lines cut from the end;
* ``--extends``: a later journal that does not contain, or continue from, an earlier
  export's head: newest records removed (truncation a chain alone cannot show).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bedside.core import wall
from bedside.core.digest import compare_digest, sha256
from bedside.core.records import ENVELOPE, T
from bedside.journal import chain, export, salvage, seal
from bedside.journal.journal import Journal
from bedside.journal.segments import DB_ERRORS, Gap, Segment, connect_reader

MAX_LISTED = 20
# Problems kept whole by one check; past this many they are counted, so that a journal of
# crafted records (every one failing its hash) cannot make the check's memory grow with it.
MAX_KEPT = 1000
# Boots remembered by one check, to find a boot that reappears (records spliced). A unit boots a
# few times a day: 20,000 is nearly twenty years of three a day. Past it a crafted journal (a new
# boot on every record) cannot make the check's memory grow: later boots are not remembered, and
# the verdict says how many were not compared. A boot longer than any unit writes (a uuid's 32
# hex digits) is remembered by its SHA-256.
MAX_BOOTS = 20_000
# Seal key ids followed by one check: a unit has one key (it is commissioned once); past this
# many the check names the journal as broken and forgets the oldest key id's epoch.
MAX_KEY_IDS = 100
_REQUIRED = {k.name: k.py for k in ENVELOPE.values() if k.required}     # seq, hash, prev, type, time, boot, mono_ms, tq


@dataclass(frozen=True, slots=True)
class Problem:
    seq: int | None            # the record it concerns (None: the file or the whole journal)
    # format | hash | link | seq | boot | seal | key | damage | file | segment | truncated | extends | more
    kind: str
    text: str
    segment: int | None = None  # the segment file it concerns, when it is about a file

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.text}" if self.seq is not None else self.text


@dataclass
class Verdict:
    ok: bool
    verdict: str                               # one line for a person
    first_bad: int | None                      # seq of the first bad record (None: none, or not a record's fault)
    problems: list[Problem]
    head: tuple[int, str] | None               # (seq, hash) of the last record
    first: tuple[int, str] | None              # (seq, prev) of the first record
    records: int
    seals_checked: int
    seals_unchecked: int
    unsealed_tail: int                         # records after the last seal
    key_id: str | None
    unit: str | None
    source: str
    segments: list[dict[str, Any]] = field(default_factory=list)
    last_seal_epoch: int | None = None

    def report(self) -> list[str]:
        """The verdict and its details, as ``bedside log verify`` prints them."""
        out = [self.verdict]
        if self.head is not None and self.first is not None:
            out.append(f"  records: {self.records}, seq {self.first[0]}–{self.head[0]}"
                       + ("" if self.first[0] == 1 else f" (continuing from {chain.short(self.first[1])})"))
            out.append(f"  head: {self.head[0]}/{chain.short(self.head[1])}  (full hash {self.head[1]})")
        if self.unit:
            out.append(f"  unit: {self.unit}")
        if self.seals_checked or self.seals_unchecked:
            if not self.seals_checked:
                s = f"  seals: {self.seals_unchecked}, not checked (give the hospital's key file with --key)"
            else:
                s = f"  seals: {self.seals_checked} checked with the hospital's key"
                if self.seals_unchecked:
                    s += f", {self.seals_unchecked} not checked"
            out.append(s + (f"; key {self.key_id}" if self.key_id else ""))
            if self.unsealed_tail:
                out.append(f"  {self.unsealed_tail} newest record(s) after the last seal (sealed at the next seal)")
        elif self.records:
            out.append("  seals: none (the unit has no seal key: commission it with bedside keys init)")
        if len(self.segments) > 1 or any(s.get("reason") not in ("new", "migrated") for s in self.segments):
            out.append("  segments: " + ", ".join(f"{s['n']} from seq {s['first_seq']} ({s['reason']})"
                                                  for s in self.segments))
        if self.problems:
            out.append(f"  problems ({len(self.problems)}):")
            out += [f"    {p}" for p in self.problems[:MAX_LISTED]]
            if len(self.problems) > MAX_LISTED:
                out.append(f"    … and {len(self.problems) - MAX_LISTED} more")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "verdict": self.verdict, "first_bad": self.first_bad,
                "problems": [{"seq": p.seq, "kind": p.kind, "text": p.text} for p in self.problems],
                "head": {"seq": self.head[0], "hash": self.head[1]} if self.head else None,
                "records": self.records, "seals_checked": self.seals_checked,
                "seals_unchecked": self.seals_unchecked, "unsealed_tail": self.unsealed_tail,
                "key_id": self.key_id, "unit": self.unit, "source": self.source}


class Checker:
    """Feeds on records in order; knows nothing of where they come from."""

    def __init__(self, key: seal.HospitalKey | None = None, *, link: tuple[int, str] | None = None,
                 seal_epoch: tuple[str, int] | None = None) -> None:
        self.key = key
        self.keys = key.checker() if key else None
        self.link = link                   # (seq, hash) the first record must follow, when known
        self.problems: list[Problem] = []
        self.not_kept = 0                  # problems past MAX_KEPT: counted, not kept
        self.records = 0
        self.first: tuple[int, str] | None = None
        self.last_seq: int | None = None
        self.last_hash: str | None = None
        self.boot: str | None = None
        self.boot_mono = 0
        self.boots_seen: set[str | bytes] = set()
        self.boots_not_kept = 0            # distinct boots past MAX_BOOTS: not compared for reappearance
        self.next_epoch: dict[str, int] = dict([seal_epoch]) if seal_epoch else {}
        self.seals_checked = 0
        self.seals_unchecked = 0
        self.since_seal = 0
        self.key_ids: list[str] = []
        self.last_epoch: int | None = None
        self.unit: str | None = None
        self.wrong_key_noted = False
        self.resume = False                # after a gap: the next record's seq and link are not compared
        self.commissioned: int | None = None   # seq of the seal_key record
        self.tail_first: int | None = None     # the first record after the last seal
        self.tail_run: tuple[str, int] | None = None    # (boot, mono_ms) where the tail's current run began
        self.tail_span_ms = 0                  # the longest a run of the unsealed tail lasted
        self.gapped = False                # a gap was passed: seals missing in it cannot be counted

    def gap(self, last: int | None) -> None:
        """Records up to ``last`` cannot be read (a problem already says so): check on from there."""
        self.resume = True
        self.gapped = True
        if last is not None:
            self.last_seq = last

    def problem(self, seq: int | None, kind: str, text: str) -> None:
        if len(self.problems) < MAX_KEPT:
            self.problems.append(Problem(seq, kind, text))
        else:
            self.not_kept += 1

    def feed(self, rec: Any, where: str = "") -> None:
        if not isinstance(rec, Mapping):
            self.problem(self.last_seq + 1 if self.last_seq is not None else None, "format",
                         f"{where or 'a line'} is not a journal record")
            return
        # The common case in one expression (exact types: a bool is not an int here); the
        # field-by-field list only for a record that fails it.
        g = rec.get
        if not (type(g("seq")) is int and type(g("hash")) is str and type(g("prev")) is str
                and type(g("type")) is str and type(g("time")) is str and type(g("boot")) is str
                and type(g("mono_ms")) is int and type(g("tq")) is str):
            bad = [k for k, t in _REQUIRED.items() if not isinstance(g(k), t) or isinstance(g(k), bool)]
        else:
            bad = []
        if bad:
            seq = rec.get("seq") if isinstance(rec.get("seq"), int) else None
            self.problem(seq, "format", f"{where + ': ' if where else ''}record without a valid "
                         + ", ".join(bad))
            return
        seq, digest = int(rec["seq"]), str(rec["hash"])
        self.records += 1
        if chain.record_hash(rec) != digest:
            self.problem(seq, "hash", "its contents do not match its hash: it was changed after it was written")
        try:
            wall.clock_value(rec["time"])
        except wall.ImpossibleTime as e:
            # The unit writes only times its clock shows: this one was written by something else.
            self.problem(seq, "time", f"its time is not one a clock shows: {e}")
        if self.last_seq is None:
            self.resume = False
            self.first = (seq, str(rec["prev"]))
            if self.link is not None:
                if (seq, rec["prev"]) != (self.link[0] + 1, self.link[1]):
                    self.problem(seq, "link", f"the first record (seq {seq}) does not follow seq {self.link[0]}/"
                                 f"{chain.short(self.link[1])} as expected")
            elif seq == 1 and rec["prev"] != chain.GENESIS:
                self.problem(seq, "link", "the first record does not start the chain")
        elif self.resume:
            self.resume = False
        else:
            assert self.last_hash is not None
            if seq != self.last_seq + 1:
                if seq <= self.last_seq:
                    self.problem(seq, "seq", f"seq goes back or repeats (after {self.last_seq}): records reordered "
                                 "or inserted")
                else:
                    n = seq - self.last_seq - 1
                    self.problem(seq, "seq", f"seq jumps from {self.last_seq}: {n} record{'s' if n > 1 else ''} "
                                 "missing")
            if rec["prev"] != self.last_hash:
                self.problem(seq, "link", "does not link to the record before it: records removed, inserted or "
                             "reordered, or this one was re-hashed after a change")
        self._boot(rec, seq)
        self._seal(rec, seq)
        if rec["type"] == T.START and isinstance(rec.get("unit"), str):
            self.unit = rec["unit"]
        if rec["type"] == T.FAULT and rec.get("part") == "journal" and rec.get("damage"):
            self.problem(seq, "damage", f"the unit found its journal damaged: {rec.get('problem', 'see record')}")
        self.last_seq, self.last_hash = seq, digest

    def _boot(self, rec: Mapping[str, Any], seq: int) -> None:
        boot, mono = str(rec["boot"]), int(rec["mono_ms"])
        if boot != self.boot:
            seen: str | bytes = boot if len(boot) <= 64 else sha256(boot.encode("utf-8", "surrogatepass")).digest()
            if seen in self.boots_seen:
                self.problem(seq, "boot", f"boot {boot[:8]} reappears after another boot began: records out of "
                             "order or spliced")
            elif len(self.boots_seen) < MAX_BOOTS:
                self.boots_seen.add(seen)
            else:
                self.boots_not_kept += 1
            self.boot = boot
        elif mono < self.boot_mono:
            self.problem(seq, "boot", "monotonic time runs backwards within one boot: records reordered or spliced")
        self.boot_mono = mono

    def _tail(self, rec: Mapping[str, Any], seq: int) -> None:
        """How long, in one run's running time, the records since the last seal went unsealed."""
        if rec["type"] == T.SEAL:
            self.tail_first, self.tail_run, self.tail_span_ms = None, None, 0
            return
        if rec["type"] == T.SEAL_KEY:
            self.commissioned = seq
        boot, mono = str(rec["boot"]), int(rec["mono_ms"])
        if self.tail_first is None:
            self.tail_first = seq
        if self.tail_run is None or self.tail_run[0] != boot or rec["type"] == T.START or mono < self.tail_run[1]:
            self.tail_run = (boot, mono)
        self.tail_span_ms = max(self.tail_span_ms, mono - self.tail_run[1])

    def unsealed_too_long(self) -> list[Problem]:
        """With the hospital's key: a commissioned journal whose newest records went unsealed for
        longer than a unit ever leaves them (its seal key was removed, or the seals were)."""
        limit_s = seal.EVERY_S + seal.UNSEALED_MARGIN_S
        if self.key is None or self.commissioned is None or self.tail_first is None \
                or self.tail_span_ms <= limit_s * 1000:
            return []
        return [Problem(self.tail_first, "unsealed",
                        f"the records from seq {self.tail_first} on were never sealed, though they span "
                        f"{self.tail_span_ms / 3_600_000:.1f} h of the unit's running time (a unit seals at least "
                        f"every {seal.EVERY_S / 3600:g} h; {seal.UNSEALED_MARGIN_S / 60:g} min allowed beyond): "
                        "the seal key was removed, or seals were, and these records could have been rewritten")]

    def _seal(self, rec: Mapping[str, Any], seq: int) -> None:
        self._tail(rec, seq)
        if rec["type"] != T.SEAL:
            self.since_seal += 1
            return
        self.since_seal = 0
        kid, epoch, got = rec.get("key_id"), rec.get("epoch"), rec.get("mac")
        if not isinstance(kid, str) or not isinstance(epoch, int) or not isinstance(got, str):
            self.problem(seq, "seal", "a seal without key_id, epoch and mac")
            return
        if kid not in self.key_ids:
            if len(self.key_ids) == MAX_KEY_IDS:
                # Each check of a seal looks its key id up: a new one on every record would be
                # quadratic work and memory growing with the journal.
                self.problem(seq, "key", f"seals with more than {MAX_KEY_IDS} key ids (a unit has one): the oldest "
                             "are forgotten, so their seals' epochs are no longer followed")
                self.next_epoch.pop(self.key_ids.pop(0), None)
            self.key_ids.append(kid)
        expected = self.next_epoch.get(kid)
        if expected is None:
            # A chain seen from its start must begin its seals at epoch 0; a part of a chain
            # (after pruning or from a later segment) starts wherever it starts.
            complete = self.first is not None and self.first[0] == 1 and self.link is None and not self.gapped
            expected = 0 if complete else epoch
        if self.gapped and epoch > expected:
            expected = epoch          # seals were among the records that cannot be read (a problem says so)
        self.gapped = False
        if epoch != expected:
            self.problem(seq, "seal", f"seal epoch {epoch} where {expected} was due: seals removed, added or "
                         "relabelled")
        self.next_epoch[kid] = max(epoch, expected) + 1
        self.last_epoch = epoch
        if self.keys is None or self.key is None:
            self.seals_unchecked += 1
            return
        if kid != self.key.key_id:
            self.seals_unchecked += 1
            if not self.wrong_key_noted:
                self.wrong_key_noted = True
                self.problem(seq, "key", f"sealed with key {kid}, not the key given ({self.key.key_id}): "
                             "is it this unit's key file?")
            return
        # The key of the epoch this seal holds in the chain, never the one it claims.
        try:
            key = self.keys.at(expected)
        except ValueError:
            self.seals_unchecked += 1
            self.problem(seq, "seal", f"seal epoch {expected} is past any unit's seals (at most {seal.MAX_EPOCH:,}): "
                         "not checked")
            return
        want = seal.mac(key, kid, expected, seq - 1, str(rec["prev"]))
        if compare_digest(want, got):
            self.seals_checked += 1
        else:
            self.seals_checked += 1
            self.problem(seq, "seal", "the seal does not match the hospital's key: records before it were changed "
                         "and re-chained, or the seal was forged")

    def _boots_note(self) -> str:
        if not self.boots_not_kept:
            return ""
        return (f" ({self.boots_not_kept} boots after the first {MAX_BOOTS:,} not compared with earlier boots: "
                "a boot reappearing among them would not be found)")

    def verdict(self, source: str, *, extra: Iterable[Problem] = (), segments: list[dict[str, Any]] | None = None,
                ) -> Verdict:
        counted = [Problem(None, "more", f"{self.not_kept} more problems of the records after the first {MAX_KEPT} "
                           "(counted, not listed)")] if self.not_kept else []
        problems = sorted([*self.problems, *extra, *self.unsealed_too_long(), *counted],
                          key=lambda p: (p.seq is None, p.seq or 0))
        head = (self.last_seq, self.last_hash) if self.last_seq is not None and self.last_hash is not None else None
        seq_problems = [p.seq for p in problems if p.seq is not None]
        first_bad = min(seq_problems) if seq_problems else None
        ok = not problems
        key_id = self.key_ids[-1] if self.key_ids else None
        if ok:
            what = f"{self.records} records" + (f", seq {self.first[0]}–{head[0]}" if self.first and head else "")
            if self.seals_checked:
                seals = f", {self.seals_checked} seals checked with the hospital's key"
            elif self.seals_unchecked:
                seals = f", {self.seals_unchecked} seals not checked (no key given)"
            else:
                seals = ", not sealed"
            tail = f"; head {head[0]}/{chain.short(head[1])}" if head else ""
            line = f"OK: chain intact, {what}{seals}{tail}{self._boots_note()}"
        else:
            first = problems[0]
            where = f" at seq {first_bad}" if first_bad is not None else ""
            total = len(problems) - len(counted) + self.not_kept
            more = f" ({total} problems in all)" if total > 1 else ""
            line = f"BROKEN{where}: {first.text}{more}{self._boots_note()}"
        return Verdict(ok, line, first_bad, problems, head, self.first, self.records, self.seals_checked,
                       self.seals_unchecked, self.since_seal if self.key_ids else 0, key_id, self.unit, source,
                       segments or [], self.last_epoch)


def check_records(records: Iterable[Mapping[str, Any]], key: seal.HospitalKey | None = None, *,
                  link: tuple[int, str] | None = None, source: str = "records") -> Verdict:
    """Verify records already in hand (in seq order)."""
    c = Checker(key, link=link)
    for r in records:
        c.feed(r)
    return c.verdict(source)


# --- a data directory ------------------------------------------------------------------

def verify_data(data_dir: Path, key: seal.HospitalKey | None = None, *, integrity: bool = True) -> Verdict:
    """Verify a unit's journal in its data directory: every segment file, then the chain through them.

    Reads defensively (Journal.entries): every record that can be read is checked,
    and a break is named where records cannot be."""
    data_dir = Path(data_dir)
    # Every file described by itself, never from the unit's remembered descriptions (index.py).
    j = Journal(data_dir, chain_tz(), "verify", readonly=True, remembered=False)
    try:
        segs = j.segments()
        c = Checker(key)
        extra: list[Problem] = []
        budget = salvage.current()
        if budget is not None and budget.not_listed and budget.not_listed_range is not None:
            # (Under a budget with a count of files: a pass of the unit's journal check.)
            lo, hi = budget.not_listed_range
            extra.append(Problem(None, "file", f"{budget.not_listed} files named as segments, numbered between "
                                 f"{lo} and {hi}, were not listed by this read (at most {salvage.LIST_FILES} are); "
                                 f"they are read {budget.later}"))
        suspect: dict[int, str] = {}
        for s in segs:
            if s.problem is not None:
                extra.append(Problem(None, "file", f"segment {s.n} ({s.path.name}) cannot be read by SQLite: "
                                     f"{s.problem}", s.n))
            elif integrity:
                found = _integrity(s)
                extra += found
                if found:
                    suspect[s.n] = "the file fails SQLite's integrity check"
        extra += _journal_start(segs, j, c)
        extra += _feed(c, j, 0, suspect)
        extra += _heartbeat(data_dir, c)
    finally:
        j.close()
    return c.verdict(str(data_dir), extra=extra, segments=[s.header() for s in segs])


def _feed(c: Checker, j: Journal, since_seq: int, suspect: dict[int, str] | None = None) -> list[Problem]:
    """Feed the journal's records after ``since_seq`` to ``c``; problems where segments join or
    records cannot be read (each named at its first seq)."""
    extra: list[Problem] = []
    before: Segment | None = None
    kept, j.keep_gaps = j.keep_gaps, 0      # (named here, at most MAX_KEPT of them; the rest counted)
    gaps = 0
    try:
        for e in j.entries(since_seq, with_segments=True, suspect=suspect):
            if isinstance(e, Segment):
                if e.known and (before is not None or since_seq == 0):
                    extra += _segment_start(c, e, before)
                before = e
            elif isinstance(e, Gap):
                gaps += 1
                if gaps <= MAX_KEPT:
                    extra.append(Problem(e.first, "file", str(e), e.segment))
                else:
                    c.not_kept += 1
                c.gap(e.last)
            else:
                c.feed(e)
    finally:
        j.keep_gaps = kept
    return extra


def check_since(j: Journal, link: tuple[int, str]) -> Verdict:
    """The records after ``link`` (seq, hash), checked to follow it, as ``verify_data`` checks them
    (records that cannot be read named where they are)."""
    c = Checker(link=link)
    extra = _feed(c, j, link[0])
    return c.verdict(str(j.data), extra=extra)


def _segment_start(c: Checker, seg: Segment, before: Segment | None) -> list[Problem]:
    """A segment must carry the chain on from the one before it (unless that one was damaged)."""
    if before is None:
        if seg.first_seq > 1:
            c.link = (seg.first_seq - 1, seg.prev)     # older segments were pruned after export
        return []
    if c.resume or c.last_seq is None or (seg.first_seq, seg.prev) == (c.last_seq + 1, c.last_hash):
        # (After records that cannot be read, the gap is the problem; the chain is taken up here.)
        if c.resume and c.last_seq is not None:
            c.last_seq, c.last_hash = seg.first_seq - 1, seg.prev
        return []
    damaged = seg.detail.get("damaged_segment") if seg.reason == "damaged" else None
    if damaged is not None and seg.first_seq > c.last_seq + 1:
        p = Problem(c.last_seq + 1, "damage", f"records {c.last_seq + 1}–{seg.first_seq - 1} are missing: segment "
                    f"{seg.n} continues the chain from seq {seg.first_seq - 1}, after segment {damaged} was damaged",
                    seg.n)
    elif damaged is not None:
        p = Problem(seg.first_seq, "damage", f"segment {seg.n} restarts the chain after seq {seg.first_seq - 1}: "
                    f"segment {damaged} was damaged", seg.n)
    else:
        p = Problem(min(seg.first_seq, c.last_seq + 1), "segment", f"segment {seg.n} does not continue the chain "
                    f"from segment {before.n} (it starts at seq {seg.first_seq}, the chain was at {c.last_seq})", seg.n)
    c.last_seq, c.last_hash = seg.first_seq - 1, seg.prev
    return [p]


def _integrity(seg: Segment) -> list[Problem]:
    try:
        # A reader's connection: a file a power cut left with a write to undo is checked as the
        # unit will see it (a private copy; the card is never written).
        db = connect_reader(seg.path)
        try:
            rows = [str(r[0]) for r in db.execute("PRAGMA integrity_check").fetchall()]
        finally:
            db.close()
    except DB_ERRORS as e:
        return [Problem(None, "file", f"segment {seg.n} ({seg.path.name}) fails SQLite's integrity check: {e}",
                        seg.n)]
    if rows == ["ok"]:
        return []
    return [Problem(None, "file", f"segment {seg.n} ({seg.path.name}) fails SQLite's integrity check: "
                    + "; ".join(rows[:3]), seg.n)]


def _journal_start(segs: list[Segment], j: Journal, c: Checker) -> list[Problem]:
    """A journal that starts above seq 1 must say why: ``pruned`` records that account for exactly
    the records before it (retention deletes only exported segments, and records each)."""
    first = next((s for s in segs if s.known), None)
    if first is None or first.first_seq <= 1 or any(s.n == 1 for s in segs):
        return []        # (segment 1 starts the chain; if it cannot be read, that is a break of its own)
    start = first.first_seq
    pruned: dict[int, tuple[int, Any]] = {}
    for r in j.of_type(T.PRUNED):
        lo, hi, since = r.get("first_seq"), r.get("last_seq"), r.get("from_seq")
        if isinstance(lo, int) and isinstance(hi, int):
            # from_seq: where the pruned part of the journal begins (1), so that a pruned record
            # that was itself pruned later still accounts for everything before it.
            pruned[hi] = (since if isinstance(since, int) and since <= lo else lo, r.get("last_hash"))
    at = start - 1
    if at in pruned and pruned[at][1] != first.prev:
        return [Problem(start, "pruned", f"the journal starts at seq {start}, but it does not link to the last "
                        f"record the pruned segments held (seq {at})", first.n)]
    while at in pruned and at >= 1:
        at = pruned[at][0] - 1
    if at <= 0:
        return []
    return [Problem(1, "pruned", f"the journal starts at seq {start}, and no pruned record accounts for seq "
                    f"1–{at}: older segments were deleted without being pruned", first.n)]


def _heartbeat(data_dir: Path, c: Checker) -> list[Problem]:
    """The unit's last heartbeat names the chain head it had: a journal ending before it was cut short."""
    from bedside.journal import heartbeat

    beat = heartbeat.read(data_dir)
    if beat is None or c.last_seq is None or beat.seq is None:
        return []
    if beat.seq > c.last_seq:
        return [Problem(c.last_seq + 1, "truncated", f"the journal ends at seq {c.last_seq} but the unit's heartbeat "
                        f"saw it at seq {beat.seq}: newest records removed")]
    return []


# --- an export file --------------------------------------------------------------------

def verify_export(path: Path, key: seal.HospitalKey | None = None, *,
                  link: tuple[int, str] | None = None) -> Verdict:
    """Verify an export file (header line + records)."""
    lines, finish = export_check(path, key, link=link)
    for _ in lines:
        pass
    return finish()


def export_check(path: Path, key: seal.HospitalKey | None = None, *, link: tuple[int, str] | None = None,
                 ) -> tuple[Iterator[tuple[int, Any]], Callable[[], Verdict]]:
    """``verify_export`` as a stream: the file's (line number, parsed line) pairs, each checked
    as it passes, and what gives the verdict once they have all passed. A reader that needs
    the records anyway (the ward's rows) then parses each line once, and holds none."""
    header, lines = export.read(Path(path))
    c = Checker(key, link=link)

    def checked() -> Iterator[tuple[int, Any]]:
        first_line = True
        for n, obj in lines:
            if first_line:
                first_line = False
                if link is None and isinstance(obj, Mapping) and isinstance(obj.get("seq"), int) and obj["seq"] > 1:
                    first = header.get("first") if isinstance(header.get("first"), Mapping) else None
                    if first and first.get("seq") == obj["seq"]:
                        c.link = (obj["seq"] - 1, str(first.get("prev")))
            c.feed(obj, f"line {n}")
            yield n, obj

    def finish() -> Verdict:
        extra = header_problems(header, c)
        segs: list[Any] = header["segments"] if isinstance(header.get("segments"), list) else []
        extra += _export_segments(segs, c)
        extra += unreadable(header)
        v = c.verdict(str(path), extra=extra, segments=segs)
        if v.unit is None and isinstance(header.get("unit"), str):
            v.unit = header["unit"]
        return v

    return checked(), finish


def header_problems(header: Mapping[str, Any], c: Checker) -> list[Problem]:
    out = []
    head = header.get("head")
    if not isinstance(head, Mapping) or not isinstance(head.get("seq"), int):
        return [Problem(None, "format", "the export header has no head")]
    if c.last_seq is None:
        if c.records == 0 and header.get("records", 0) != 0:
            out.append(Problem(None, "truncated", f"the header lists {header.get('records')} records but the file "
                               "has none"))
        return out
    if (head["seq"], head.get("hash")) != (c.last_seq, c.last_hash):
        if head["seq"] > c.last_seq:
            out.append(Problem(c.last_seq + 1, "truncated", f"the header says the export ends at seq {head['seq']}, "
                               f"but the file ends at seq {c.last_seq}: records cut from the end"))
        else:
            out.append(Problem(head["seq"], "truncated", f"the header's head ({head['seq']}/"
                               f"{chain.short(str(head.get('hash')))}) is not the file's last record"))
    if isinstance(header.get("records"), int) and header["records"] != c.records:
        out.append(Problem(None, "truncated", f"the header lists {header['records']} records, the file has "
                           f"{c.records}"))
    return out


def unreadable(header: Mapping[str, Any]) -> list[Problem]:
    """Records the unit could not read when it exported (a damaged segment), as its header lists them."""
    out = []
    for u in header.get("unreadable") or []:
        if isinstance(u, Mapping):
            lo, hi = u.get("first_seq"), u.get("last_seq")
            seqs = "records" if not isinstance(lo, int) else (
                f"records from seq {lo}" if not isinstance(hi, int) else
                f"record {lo}" if lo == hi else f"records {lo}–{hi}")
            n = u.get("segment") if isinstance(u.get("segment"), int) else None
            out.append(Problem(lo if isinstance(lo, int) else None, "file",
                               f"segment {n} ({u.get('file')}): {seqs} could not be read at the unit "
                               f"({u.get('problem')})", n))
        else:
            out.append(Problem(None, "file", f"the unit could not read part of its journal: {u}"))
    more = header.get("unread_more")
    if isinstance(more, int) and not isinstance(more, bool) and more > 0:
        out.append(Problem(None, "file", f"and {more} more files the unit had not read yet when it was pulled "
                           "(counted, not named): pull again later"))
    return out


def _export_segments(segs: list[Any], c: Checker) -> list[Problem]:
    out = []
    for s in segs:
        if isinstance(s, Mapping) and s.get("reason") == "damaged":
            out.append(Problem(s.get("first_seq") if isinstance(s.get("first_seq"), int) else None, "damage",
                               f"segment {s.get('n')} was started because segment "
                               f"{dict(s.get('detail') or {}).get('damaged_segment')} was damaged"))
    return out


# --- one journal extending another -----------------------------------------------------

def parse_head(text: str) -> tuple[int, str] | None:
    """``1234/ab12cd34`` (as on the nurse screen) → (1234, "ab12cd34"); None if not of that form."""
    seq, sep, h = text.partition("/")
    if not sep or not seq.isdigit() or len(h) < 8 or any(ch not in "0123456789abcdef" for ch in h.lower()):
        return None
    return int(seq), h.lower()


def earlier_head(earlier: str, key: seal.HospitalKey | None = None) -> tuple[tuple[int, str], Verdict | None]:
    """The head an earlier export (or a noted ``SEQ/HASH``) ends at, and that export's own verdict."""
    noted = parse_head(earlier)
    if noted is not None and not Path(earlier).exists():
        return noted, None
    v = verify_export(Path(earlier), key)
    if v.head is None:
        raise export.NotAnExport(f"{earlier} holds no records")
    return v.head, v


def extends(later: Verdict, later_records: Iterable[Mapping[str, Any]] | None, head: tuple[int, str],
            earlier_name: str) -> list[Problem]:
    """Problems if the later journal neither contains nor continues from ``head`` (seq, hash or its prefix)."""
    seq, h = head
    if later.head is None or later.first is None:
        return [Problem(None, "extends", f"the journal is empty, so it does not extend {earlier_name}")]
    if later.first[0] == seq + 1:
        if not later.first[1].startswith(h):
            return [Problem(later.first[0], "extends", f"does not continue from {earlier_name}'s last record "
                            f"({seq}/{chain.short(h)})")]
        return []
    if later.first[0] > seq + 1:
        return [Problem(later.first[0], "extends", f"starts at seq {later.first[0]}, after a gap from "
                        f"{earlier_name}'s last record {seq}: records between them are missing")]
    if later.head[0] < seq:
        return [Problem(later.head[0] + 1, "extends", f"ends at seq {later.head[0]}, before {earlier_name}'s last "
                        f"record {seq}: newest records were removed")]
    for rec in later_records or ():
        if rec.get("seq") == seq:
            if not str(rec.get("hash", "")).startswith(h):
                return [Problem(seq, "extends", f"record {seq} differs from the one in {earlier_name}: the "
                                "journal was rewritten after that export")]
            return []
    return [Problem(seq, "extends", f"record {seq} of {earlier_name} is not in this journal")]


def with_problems(v: Verdict, more: list[Problem]) -> Verdict:
    """The verdict recomputed with further problems (e.g. from --extends)."""
    if not more:
        return v
    problems = sorted([*v.problems, *more], key=lambda p: (p.seq is None, p.seq or 0))
    seqs = [p.seq for p in problems if p.seq is not None]
    first_bad = min(seqs) if seqs else None
    where = f" at seq {first_bad}" if first_bad is not None else ""
    more_text = f" ({len(problems)} problems in all)" if len(problems) > 1 else ""
    v.ok = False
    v.problems = problems
    v.first_bad = first_bad
    v.verdict = f"BROKEN{where}: {problems[0].text}{more_text}"
    return v


def records_of(source: Path, *, data: bool) -> Iterable[Mapping[str, Any]]:
    """Re-read the records of a data directory or export file (for --extends)."""
    if data:
        j = Journal(source, chain_tz(), "verify", readonly=True)
        try:
            yield from j.records()
        finally:
            j.close()
    else:
        _, lines = export.read(source)
        for _, obj in lines:
            if isinstance(obj, Mapping):
                yield obj


def chain_tz() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("UTC")


def dumps(v: Verdict) -> str:
    return json.dumps(v.to_json(), sort_keys=True)
