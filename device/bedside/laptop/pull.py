"""``bedside pull`` and ``bedside set-time``: the nurse's laptop end of the serial link.

A pull keeps, per unit, a copy of its journal under ``DIR/.bedside/UNIT/``: the records as
the unit exported them, one per line, always an exact prefix of the unit's journal. Each
verified batch is appended and synced before the next is asked for, so an interrupted
pull (cable pulled, laptop asleep) continues where it stopped, in the same run once the
cable is back or in the next run. The copy is also the memory of what this laptop saw: a
unit whose journal is now shorter than the copy, or differs from it, is reported as
truncated or replaced, and nothing of it is mixed into the copy.

After each pull the export (a header line and the records), a CSV of sessions and the
adherence report are written into DIR, each complete before it gets its final name.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bedside.core.errors import BROKEN, FAILED, NOT_CONFIRMED, REFUSED, BedsideError
from bedside.durable import MAX_LINE, SMALL_FILE, atomic_writer, json_loads, read_bounded, write_text_atomic
from bedside.journal import chain
from bedside.laptop import client
from bedside.laptop.client import Client, Disconnected, LinkError, Misbehaved, NoAnswer, Refused, TimedOut
from bedside.link import batch, frames, texts
from bedside.secret import kdf_problem

# 128 records: about 1.5 ms of the unit's loop on a laptop, 15 ms on a Pi Zero 2 W, per request.
BATCH_START, BATCH_MIN, BATCH_MAX = 128, 8, 128
BUSY, BUSY_TRIES = "busy", 3      # the unit's answer when its loop cannot get to a request in time
RECONNECT_S = 60.0
# The whole pull's limit, reconnections included: a year of a busy ward's records takes
# about 20 s at 115200 baud (docs/performance.md); a device that keeps it busy longer is stopped.
PULL_DEADLINE_S = 15 * 60.0
# A page that passes over files the unit has not read yet (past its loop's salvage budget,
# docs/serial.md): asked again this many times, this long apart, within the pull's deadline;
# then the pull goes on past them and the export names what it lacks.
UNREAD_TRIES, UNREAD_WAIT_S = 3, 5.0
UNREAD_SHOWN = 3                  # files named in the summary's line (the export names them all)
_UNIT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")


class PullError(BedsideError):
    """The pull cannot go on; the message says what happened and what to do."""

    exit_code = FAILED


class Tampered(PullError):
    """The unit's journal is shorter than, or differs from, what this laptop saw before."""

    exit_code = BROKEN


class NotAccepted(PullError):
    """The unit did not accept the ward secret, or this laptop's key."""

    exit_code = REFUSED


class NotConfirmed(PullError):
    """Nobody pressed the unit's button to confirm the change in time; nothing was changed."""

    exit_code = NOT_CONFIRMED


# --- the laptop's copy -------------------------------------------------------------------

class JournalCopy:
    """One unit's journal copy: ``records.jsonl`` (checked whenever opened) and ``pulls.json``."""

    def __init__(self, base: Path, unit: str) -> None:
        self.folder = base / ".bedside" / unit
        self.path = self.folder / "records.jsonl"
        self.log_path = self.folder / "pulls.json"
        self.after_path = self.folder / "after-break.jsonl"
        self.unit = unit
        self.head: tuple[int, str] = (0, chain.GENESIS)
        self.start = 1                 # the first record of the copy

    def open(self) -> JournalCopy:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise PullError(f"cannot create {self.folder}: {e.strerror}") from None
        if not self.path.exists():
            return self
        seq, h, good = 0, chain.GENESIS, 0
        with open(self.path, "rb") as f:
            # A line at most MAX_LINE (a record is a few hundred bytes): a longer one is damage.
            for raw in iter(lambda: f.readline(MAX_LINE + 1), b""):
                if not raw.endswith(b"\n") and len(raw) <= MAX_LINE:
                    break              # a line cut short by a crash while appending: dropped below
                try:
                    rec = json_loads(raw)
                except ValueError:
                    rec = None
                if good == 0 and isinstance(rec, dict) and isinstance(rec.get("seq"), int) and rec["seq"] > 1:
                    # The copy began where the unit's journal began (its oldest records were pruned).
                    seq, h = rec["seq"] - 1, str(rec.get("prev"))
                    self.start = rec["seq"]
                if not isinstance(rec, dict) or rec.get("seq") != seq + 1 or rec.get("prev") != h or \
                        rec.get("hash") != chain.record_hash(rec):
                    raise PullError(f"this laptop's copy of {self.unit} is damaged at record {seq + 1} ({self.path})."
                                    " Move the folder aside and pull again to make a new copy.")
                seq, h = rec["seq"], rec["hash"]
                good += len(raw)
        if good != self.path.stat().st_size:
            with open(self.path, "r+b") as f:
                f.truncate(good)
                os.fsync(f.fileno())
        self.head = (seq, h)
        return self

    def append(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        if self.head[0] == 0:
            self.start = records[0]["seq"]
        data = "".join(batch.export_line(r) + "\n" for r in records).encode("utf-8")
        with open(self.path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.head = (records[-1]["seq"], records[-1]["hash"])

    def records(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path, "rb") as f:
            for raw in f:
                rec: dict[str, Any] = json.loads(raw)
                if rec["seq"] > self.head[0]:
                    return
                yield rec

    def keep_after_break(self, brk: Break | None) -> None:
        """What the unit gave after a break in its chain, kept apart from the verified copy
        (which stays an exact beginning of the journal) and replaced by every pull."""
        if brk is None:
            with contextlib.suppress(FileNotFoundError):
                self.after_path.unlink()
            return
        meta = {"break_at": brk.at, "problem": brk.problem}
        write_text_atomic(self.after_path, json.dumps(meta, sort_keys=True) + "\n" +
                          "".join(batch.export_line(r) + "\n" for r in brk.records))

    def after_break(self) -> Break | None:
        try:
            with open(self.after_path, "rb") as f:
                lines = iter(lambda: f.readline(MAX_LINE + 1), b"")
                meta = json_loads(next(lines, b""))
                recs = [json_loads(line) for line in lines if line.strip()]
                if any(not isinstance(r, dict) for r in recs):
                    raise ValueError("a line is not a record")
            return Break(int(meta["break_at"]), str(meta["problem"]), recs)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise PullError(f"this laptop's copy of what followed the break ({self.after_path}) cannot be read "
                            f"({e}); pull again") from None

    def pulls(self) -> list[dict[str, Any]]:
        try:
            data = json_loads(read_bounded(self.log_path, SMALL_FILE))
            return list(data.get("pulls", []))
        except (OSError, ValueError, AttributeError):
            return []

    def note_pull(self, entry: dict[str, Any]) -> None:
        pulls = [*self.pulls(), entry][-100:]
        write_text_atomic(self.log_path, json.dumps({"unit": self.unit, "pulls": pulls}, indent=1) + "\n")


# --- talking to the unit ------------------------------------------------------------------

SecretSource = Callable[[str, int], str]     # (unit, attempt number from 1) -> the ward secret


def identify(t: client.Transport, monotonic: Callable[[], float] = time.monotonic, deadline: float | None = None
             ) -> tuple[Client, dict[str, Any]]:
    """Say hello on an open port: which unit this is, its chain head and an unlock challenge."""
    c = Client(t, monotonic=monotonic, deadline=deadline)
    hello = dict(c.request("hello").data)
    unit = str(hello.get("unit", ""))
    if not _UNIT.match(unit) or hello.get("proto") != frames.PROTOCOL:
        raise PullError("the device on this port answered, but not as a bedside unit this tool understands "
                        f"(protocol {hello.get('proto')!r}); update bedside on this laptop")
    return c, hello


def unlock_with_key(c: Client, hello: dict[str, Any], laptop: Any) -> dict[str, Any]:
    """Unlock a unit with pinned keys with the nurse's certified laptop key (``laptop/keyauth.py``)."""
    unit = str(hello["unit"])
    if laptop is None:
        raise PullError(f"unit {unit} unlocks only with a nurse's certified laptop key: give --laptop-key KEY "
                        "--laptop-cert CERT (docs/serial.md)")
    if hello.get("lockout_s"):
        mins = (int(hello["lockout_s"]) + 59) // 60
        raise PullError(f"unit {unit} has locked its port for {mins} more minutes after too many refused attempts; "
                        "try again then")
    cert, sig = laptop.answer(unit, str(hello["nonce"]))
    try:
        c.request("keyunlock", cert, sig)
    except Refused as e:
        why = str(e.data.get("why", e.code)).replace("_", " ")
        raise NotAccepted(f"unit {unit} did not accept this laptop's key ({why}): {e}. If the certificate expired "
                          "or was revoked, ask the ward for a new one") from None
    return hello


def unlock(c: Client, hello: dict[str, Any], secret: SecretSource, attempts: int = 3,
           laptop: Any = None) -> dict[str, Any]:
    """Unlock with the laptop key on a unit with pinned keys, else with the ward secret (asked
    for up to ``attempts`` times); returns the latest hello."""
    unit = str(hello["unit"])
    if hello.get("keys"):
        return unlock_with_key(c, hello, laptop)
    if not hello.get("secret"):
        raise PullError(f"unit {unit} has no ward secret set; an engineer sets it at commissioning "
                        "(bedside secret set)")
    for n in range(1, attempts + 1):
        if hello.get("lockout_s"):
            mins = (int(hello["lockout_s"]) + 59) // 60
            raise PullError(f"unit {unit} has locked its port for {mins} more minutes after too many wrong "
                            "secrets; try again then")
        problem = kdf_problem(hello.get("kdf"))
        if problem is not None:
            # Asked before the secret is: nothing is typed for a device that will not get an answer.
            raise PullError(f"the device on this port, calling itself {unit}, was not answered: {problem}. "
                            "It may not be a bedside unit; tell the ward's engineer")
        answer = client.unlock_answer(secret(unit, n), hello["kdf"], str(hello["nonce"]))
        try:
            c.request("unlock", answer)
            return hello
        except Refused as e:
            if e.code == "denied":
                left = int(e.data.get("left", 0))
                print(f"The ward secret was not accepted ({left} attempt{'s' if left != 1 else ''} left before "
                      "the unit locks its port for 10 minutes).", file=sys.stderr)
                if n == attempts or left == 0:
                    raise NotAccepted("the ward secret was not accepted") from None
            elif e.code == "lockout":
                raise PullError(f"unit {unit} has locked its port after too many wrong secrets: {e}") from None
            elif e.code != "stale":
                raise PullError(f"unit {unit} refused to unlock: {e}") from None
        hello = dict(c.request("hello").data)
    raise NotAccepted("the ward secret was not accepted")


# --- the download ---------------------------------------------------------------------------

class Progress:
    """A progress bar on the terminal, shown only once a transfer has taken more than a second."""

    def __init__(self, total: int, out: IO[str] = sys.stderr, after_s: float = 1.0) -> None:
        self.total = max(1, total)
        self.out = out
        self.t0 = time.monotonic()
        self.after_s = after_s
        self.shown = False
        self.enabled = out.isatty()

    def update(self, done: int) -> None:
        elapsed = time.monotonic() - self.t0
        if not self.enabled or elapsed < self.after_s:
            return
        self.shown = True
        frac = min(1.0, done / self.total)
        bar = "#" * int(frac * 30)
        left = f", {elapsed * (1 - frac) / frac:.0f} s left" if 0 < frac < 1 else ""
        self.out.write(f"\rDownloading [{bar:<30}] {done}/{self.total} records{left}   ")
        self.out.flush()

    def finish(self) -> None:
        if self.shown:
            self.out.write("\n")
            self.out.flush()


@dataclass
class Break:
    """Where the unit's chain breaks, and every record the unit could read after it (unverified)."""

    at: int                      # the first seq that does not follow the verified copy
    problem: str
    records: list[dict[str, Any]]


class Unread:
    """What the unit said it has not read yet (``unread`` in its answers), by file and first record,
    and how often the pull asked again for it."""

    MAX = 256                     # entries kept, whatever a device sends

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self.entries: dict[tuple[str, int | None], dict[str, Any]] = {}
        self.tries = 0
        self.sleep = sleep

    def seen(self, data: Any, after: int) -> list[dict[str, Any]]:
        """Note the answer's ``unread`` entries; those past ``after`` (records the copy lacks)."""
        given = data.get("unread") if isinstance(data, dict) else None
        found: list[dict[str, Any]] = []
        for u in given if isinstance(given, list) else []:
            if not isinstance(u, dict):
                continue
            lo, hi, size, n = (u.get(k) for k in ("first_seq", "last_seq", "size", "segment"))
            e: dict[str, Any] = {"segment": n if _whole(n) else None, "file": str(u.get("file", "?"))[:64],
                                 "first_seq": lo if _whole(lo) else None, "last_seq": hi if _whole(hi) else None,
                                 "size": size if _whole(size) else None,
                                 "problem": str(u.get("problem", "not read yet"))[:200]}
            if e["last_seq"] is not None and e["last_seq"] <= after:
                continue
            found.append(e)
            if len(self.entries) < self.MAX or (e["file"], e["first_seq"]) in self.entries:
                self.entries[(e["file"], e["first_seq"])] = e
        return found

    def again(self, c: Client) -> bool:
        """Wait a little and ask again (True), unless the tries or the pull's deadline are used up."""
        if self.tries >= UNREAD_TRIES or (c.deadline is not None and c.monotonic() + UNREAD_WAIT_S >= c.deadline):
            return False
        self.tries += 1
        self.sleep(UNREAD_WAIT_S)
        return True

    def lacking(self, head: int) -> list[dict[str, Any]]:
        """The entries the copy still lacks (past its head), in order."""
        out = [e for e in self.entries.values() if e["first_seq"] is None or e["first_seq"] > head]
        return sorted(out, key=lambda e: (e["first_seq"] or 0, e["file"]))

    def covering(self, seq: int) -> dict[str, Any] | None:
        return next((e for e in self.entries.values() if e["first_seq"] is not None and e["first_seq"] <= seq
                     and (e["last_seq"] is None or seq <= e["last_seq"])), None)


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


@dataclass
class Outcome:
    unit: str
    hello: dict[str, Any]
    first_new: int               # first record downloaded in this pull (0: none)
    head: tuple[int, str]
    bytes_in: int = 0
    seconds: float = 0.0
    resumed_from: int = 0
    broken: Break | None = None
    unread: list[dict[str, Any]] = field(default_factory=list)   # records the unit has not read yet


def download(c: Client, store: JournalCopy, progress: Progress | None, stats: dict[str, int],
             unread: Unread | None = None) -> tuple[tuple[int, str], Break | None]:
    """Fetch every record after the copy's head, batch by batch; returns the unit's head seen last
    and, for a journal whose chain breaks, where and what the unit could read after it.

    A batch that passes over records the unit has not read yet (``unread``) is asked for again
    a few times, a few seconds apart; then the rest is taken as after a break, and ``unread``
    keeps what is missing for the export's header."""
    unread = unread if unread is not None else Unread()
    size = stats.get("batch", BATCH_START)
    failures = 0
    full = False
    held = store.head[0]             # what an earlier pull verified: a break before it is tampering
    while True:
        seq, _h = store.head
        rep = c.request("get", str(seq + 1), str(size), *(["full"] if full else []))
        if unread.seen(rep.data, seq):
            if unread.again(c):
                continue
            return salvage(c, store, progress, stats, unread)
        first = rep.data.get("first")
        if seq and isinstance(first, int) and first > seq + 1 and not _holds_older(c, seq):
            raise PullError(f"unit {store.unit} no longer holds records {seq + 1}-{first - 1}: they were exported "
                            "elsewhere and removed to make room. This laptop's copy cannot be continued; move "
                            f"{store.folder} aside and pull again to start a new copy.")
        if isinstance(first, int) and first > seq + 1:
            # Records missing inside the unit's journal (older ones are still there): damage.
            return salvage(c, store, progress, stats)
        try:
            recs = batch.unpack(rep, store.head if seq else None)
        except batch.ChainLinkDiffers:
            if seq > held:
                return salvage(c, store, progress, stats)      # within this pull's records: damage
            raise Tampered(f"the unit's record {seq + 1} does not follow record {seq} of the copy this laptop "
                           "made before: the unit's journal was replaced or altered. " + _keep(store)) from None
        except batch.BatchError:
            failures += 1
            size = max(BATCH_MIN, size // 2)
            if failures == 2:
                full = True            # records exactly as stored, to tell damage on the wire from damage on the unit
            elif failures > 2:
                # Not the wire: the journal itself. Keep what follows on, then what the unit can read.
                return salvage(c, store, progress, stats)
            continue
        failures, full = 0, False
        head = (int(rep.data["head"][0]), str(rep.data["head"][1]))
        if not recs and store.head[0] < head[0]:
            return salvage(c, store, progress, stats)      # the unit cannot give what its head says it has
        store.append(recs)
        stats["records"] = stats.get("records", 0) + len(recs)
        size = min(BATCH_MAX, size * 2) if recs else size
        stats["batch"] = size
        head = (int(rep.data["head"][0]), str(rep.data["head"][1]))
        if progress is not None:
            progress.update(store.head[0])
        if store.head[0] >= head[0]:
            if store.head != head:
                raise Tampered(f"the unit's journal ends at record {head[0]} with a different hash than the copy "
                               "made before. " + _keep(store))
            return head, None


def _holds_older(c: Client, seq: int) -> bool:
    """Whether the unit still holds a record at or before ``seq`` (then a gap after it is damage,
    not retention, which removes only the oldest records)."""
    first = c.request("get", "1", "1", "full").data.get("first")
    return isinstance(first, int) and first <= seq


def salvage(c: Client, store: JournalCopy, progress: Progress | None, stats: dict[str, int],
            unread: Unread | None = None) -> tuple[tuple[int, str], Break | None]:
    """Every record the unit can read from the copy's head on, as stored (full form, unchecked).

    Records that still follow the chain extend the verified copy; from the first that does
    not (missing, altered, out of order) everything is kept apart as given, to be judged by
    verification and shown in the report, never silently left out."""
    brk: Break | None = None
    nxt, errors, busy = store.head[0] + 1, 0, 0
    head = store.head
    while True:
        try:
            rep = c.request("get", str(nxt), str(BATCH_MAX), "full")
            passed = unread.seen(rep.data, nxt - 1) if unread is not None else []
            recs = batch.unpack_as_given(rep)
        except batch.BatchError:
            errors += 1
            if errors > 3:
                break
            continue
        except Refused as e:
            if e.code == BUSY:
                # The unit's loop did not get to the request in time: nothing about its journal.
                # Asked again; a unit that stays busy fails the pull as in download(), no break.
                busy += 1
                if busy > BUSY_TRIES:
                    raise
                continue
            if brk is None:
                brk = Break(nxt, f"the unit cannot read its journal at record {nxt} ({e})", [])
            break
        errors = 0
        head = (int(rep.data["head"][0]), str(rep.data["head"][1]))
        if not recs:
            # A page that named only files not read yet: on after the last record they hold.
            skip = max((e["last_seq"] for e in passed if e["last_seq"] is not None), default=None)
            if skip is not None and nxt <= skip < head[0]:
                if brk is None:
                    brk = Break(nxt, _why(nxt - 1, "", {"seq": skip + 1}, unread), [])
                nxt = skip + 1
                continue
            break
        follow: list[dict[str, Any]] = []
        seq, h = store.head
        for r in recs:
            if brk is None and r["seq"] == seq + 1 and r.get("prev") == h and r.get("hash") == chain.record_hash(r):
                follow.append(r)
                seq, h = r["seq"], r["hash"]
                continue
            if brk is None:
                brk = Break(seq + 1, _why(seq, h, r, unread), [])
            brk.records.append(r)
        store.append(follow)
        stats["records"] = stats.get("records", 0) + len(recs)
        if progress is not None:
            progress.update(max(r["seq"] for r in recs))
        nxt = max(nxt, max(r["seq"] for r in recs) + 1)
        if nxt > head[0]:
            break
    if brk is None and store.head != head:
        brk = Break(store.head[0] + 1, f"the unit's journal ends at record {head[0]}, but the records it gave "
                    f"end at {store.head[0]}", [])
    stats["broken"] = 1 if brk is not None else 0
    return head, brk


def _why(seq: int, h: str, r: dict[str, Any], unread: Unread | None = None) -> str:
    u = unread.covering(seq + 1) if unread is not None and r["seq"] > seq + 1 else None
    if u is not None:
        return (f"records {seq + 1}-{r['seq'] - 1} are not read yet at the unit ({u['file']}, "
                f"{texts.mib(u['size'])}): pull again later")
    if r["seq"] > seq + 1:
        return f"records {seq + 1}-{r['seq'] - 1} are missing from the unit's journal"
    if r["seq"] <= seq:
        return f"record {r['seq']} comes again after record {seq}"
    if r.get("hash") != chain.record_hash(r):
        return f"record {r['seq']} does not match its hash: it was changed after it was written"
    return f"record {r['seq']} does not follow record {seq} (chain link differs)"


def _keep(store: JournalCopy) -> str:
    return (f"This laptop's copy ({store.path}) was not changed: keep it and tell the ward manager. To start a "
            "new copy once the unit is known to be replaced, move that folder aside and pull again.")


def check_head(store: JournalCopy, unit_head: tuple[int, str]) -> None:
    """Truncation: the unit must hold at least what this laptop saw, ending the same way."""
    seq, h = store.head
    if unit_head[0] < seq:
        raise Tampered(f"unit {store.unit}'s journal now ends at record {unit_head[0]}, but this laptop already "
                       f"holds records up to {seq} from an earlier download: records were removed or the journal "
                       "was replaced. " + _keep(store))
    if unit_head[0] == seq and unit_head[1] != h:
        raise Tampered(f"unit {store.unit}'s journal ends at record {seq} like this laptop's copy, but with a "
                       "different hash: the journal was replaced or altered. " + _keep(store))


def wait_for_port(open_transport: Callable[[], client.Transport], seconds: float) -> client.Transport | None:
    end = time.monotonic() + seconds
    while True:
        try:
            return open_transport()
        except LinkError:
            if time.monotonic() + 1.0 > end:
                return None
            time.sleep(1.0)


def pull(open_transport: Callable[[], client.Transport], out: Path, secret: SecretSource, *,
         laptop: Any = None, reconnect_s: float = RECONNECT_S,
         say: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
         progress_out: IO[str] | None = None, monotonic: Callable[[], float] = time.monotonic,
         deadline_s: float = PULL_DEADLINE_S) -> Outcome:
    """Unlock, download everything new, verify, record the download on the unit and lock it again.

    A lost connection is waited for and the download continues; it gives up once
    ``reconnect_s`` pass without a record gained (the records got so far are kept), and the
    whole pull once ``deadline_s`` pass. A device that does what no unit does (bytes without
    end, an answer that never finishes) is refused at once, saying what it did.
    """
    t0 = time.monotonic()
    deadline = monotonic() + deadline_s
    progress_at = monotonic()
    stats: dict[str, int] = {}
    store: JournalCopy | None = None
    first_new = 0
    resumed_from = 0
    bytes_in = 0
    transport: client.Transport | None = None
    c: Client | None = None
    secrets_cache: dict[str, str] = {}
    unread = Unread()

    def remembered(unit: str, n: int) -> str:
        if n == 1 and unit in secrets_cache:
            return secrets_cache[unit]
        value = secret(unit, n)
        secrets_cache[unit] = value
        return value

    while True:
        try:
            if transport is None:
                transport = open_transport()
            c, hello = identify(transport, monotonic, deadline)
            unit = str(hello["unit"])
            if store is None:
                store = JournalCopy(out, unit).open()
                resumed_from = store.head[0]
            elif store.unit != unit:
                raise PullError(f"a different unit ({unit}) answered after reconnecting; plug in {store.unit} "
                                "again and repeat the pull")
            unit_head = (int(hello["head"][0]), str(hello["head"][1]))
            check_head(store, unit_head)
            hello = unlock(c, hello, remembered, laptop=laptop)
            progress = Progress(unit_head[0] - store.head[0], progress_out or sys.stderr)
            held = store.head[0]
            try:
                head, broken = download(c, store, progress, stats, unread)
                store.keep_after_break(broken)
            finally:
                progress.finish()
                if store.head[0] > held:
                    progress_at = monotonic()
            if store.head[0] > resumed_from:
                first_new = resumed_from + 1
            try:
                c.request("done", str(first_new or store.head[0]), str(store.head[0]), store.head[1])
            except Refused as e:
                if e.code != "unread":
                    raise
                say(f"The unit could not note this download yet ({e}); the next pull notes it.")
            with contextlib.suppress(LinkError):     # it locks itself after ten idle minutes anyway
                c.request("lock")
            bytes_in += c.received
            c = None
            transport.close()
            outcome = Outcome(unit, hello, first_new, head, bytes_in, time.monotonic() - t0, resumed_from, broken,
                              unread.lacking(store.head[0]))
            store.note_pull({"time": datetime.now(UTC).isoformat(timespec="seconds"), "from": first_new,
                             "to": store.head[0], "hash": store.head[1], "bytes": bytes_in})
            return outcome
        except (Disconnected, NoAnswer) as e:
            if c is not None:
                bytes_in += c.received
                c = None
            if transport is not None:
                transport.close()
                transport = None
            got = f" ({store.head[0]} records are safe on this laptop)" if store is not None else ""
            if isinstance(e, NoAnswer) and store is None:
                raise PullError("no unit answered: is the cable plugged into the unit, and is the unit on? "
                                "(A USB-serial adapter needs the unit's UART; see docs/serial.md.)") from None
            left = reconnect_s - (monotonic() - progress_at)
            if left > 0:
                say(f"Connection lost{got}. Plug the cable back in: waiting up to {left:.0f} s ...")
                transport = wait_for_port(open_transport, left)
            if transport is None:
                where = f" at record {store.head[0]}" if store is not None else ""
                raise PullError(f"the download was interrupted{where}; run the same command again to continue "
                                "where it stopped") from None
        except (Misbehaved, TimedOut) as e:
            if transport is not None:
                transport.close()
            got = f" ({store.head[0]} records are safe on this laptop)" if store is not None else ""
            if isinstance(e, TimedOut):
                span = f"{deadline_s / 60:.0f} minutes" if deadline_s >= 120 else f"{deadline_s:.0f} s"
                raise PullError(f"the pull was stopped after {span}, longer than any unit "
                                f"needs{got}; check the cable and the port, then run the same command again "
                                "to continue") from None
            raise PullError(f"the pull was stopped: {e}{got}; check that the port is the unit's") from None
        except (Refused, PullError) as e:
            if transport is not None:
                transport.close()
            if isinstance(e, PullError):
                raise
            raise PullError(f"the unit refused: {e}") from None


def laptop_now() -> datetime:
    return datetime.now(UTC)


def set_time(open_transport: Callable[[], client.Transport], secret: SecretSource, *, laptop: Any = None,
             say: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
             monotonic: Callable[[], float] = time.monotonic, now: Callable[[], datetime] | None = None
             ) -> dict[str, Any]:
    """Set the unit's clock from this laptop's, once someone presses the unit's button to confirm."""
    t = open_transport()
    try:
        try:
            c, hello = identify(t, monotonic)
        except (Disconnected, NoAnswer):
            raise PullError("no unit answered: is the cable plugged into the unit, and is the unit on?") from None
        hello = unlock(c, hello, secret, laptop=laptop)
        laptop = (now or laptop_now)()

        def waiting(data: dict[str, Any]) -> None:
            say(f"The unit shows the new time. Press its button within {float(data.get('seconds', 60)):.0f} s to "
                "confirm (hold it 2 s to cancel).")

        try:
            rep = c.request("time", laptop.isoformat(timespec="milliseconds"), on_wait=waiting)
        except Refused as e:
            if e.code == "not_confirmed":
                raise NotConfirmed(f"the clock was not changed: {str(e).removeprefix('Not changed: ')}") from None
            raise PullError(f"the unit refused: {e}") from None
        with contextlib.suppress(LinkError):
            c.request("lock")
        return {"unit": hello["unit"], **rep.data}
    finally:
        t.close()


# --- what the nurse gets ---------------------------------------------------------------------

SUMMARY_DAYS = 14


def write_outputs(out: Path, got: Outcome, key: Any = None, generated: datetime | None = None,
                  ) -> tuple[list[Path], list[str], Any]:
    """Write the export, the sessions CSV and the report for the whole copy, and verify the export as
    ``bedside log verify`` would (every seal too, given the hospital's ``key``); returns the files, a
    summary and the verdict.

    A record at a time, never the copy: a first pass over the copy makes the export's header, a
    second writes the export (to a temporary name, renamed when whole), and the report is made
    from the export's own bytes as ``bedside report`` reads them (``model.read``); the same files
    as made whole in memory (``bundle.make``)."""
    from bedside.journal import verify
    from bedside.report import files, model

    store = JournalCopy(out, got.unit).open()
    brk = store.after_break()

    def records() -> Iterator[dict[str, Any]]:
        yield from store.records()
        if brk is not None:
            # Every record the unit could read: the verified copy, then what followed the break as given.
            yield from brk.records

    path = out / f"{got.unit}-journal.jsonl"
    header = export_header(records(), got, store.start)
    with atomic_writer(path) as f:
        f.write(json.dumps(header, sort_keys=True, separators=(",", ":")) + "\n")
        for rec in records():
            f.write(batch.export_line(rec) + "\n")
    verdict = verify.verify_export(path, key)
    html, csv_path = out / f"{got.unit}-report.html", out / f"{got.unit}-sessions.csv"
    made = files.write_from(model.read(path), html, csv_path, generated=generated or datetime.now().astimezone())
    return [path, csv_path, html], summary_lines(got, store, made, verdict, brk), verdict


def export_header(records: Iterable[dict[str, Any]], got: Outcome, start: int) -> dict[str, Any]:
    """The export header for the copy's records (read once, a record at a time), with what the
    unit said in its ``hello`` of the files it listed and those it has not read yet."""
    from bedside.journal import export

    given = got.hello.get("segments")
    segments: list[dict[str, Any]] = [x for x in given if isinstance(x, dict)] if isinstance(given, list) else []
    header = export.header_for(records, since_seq=start - 1, segments=segments)
    header["via"] = "serial"
    more = got.hello.get("segments_more")
    if isinstance(more, int) and not isinstance(more, bool) and more > 0:
        header["segments_more"] = more      # older segment files the unit counted but did not list
    if got.unread:
        # What the unit has not read yet, named as the unit's own export names what it cannot read.
        header["unreadable"] = [{"segment": u["segment"], "file": u["file"], "first_seq": u["first_seq"],
                                 "last_seq": u["last_seq"], "problem": u["problem"]} for u in got.unread]
        more = got.hello.get("unread_more")
        if isinstance(more, int) and not isinstance(more, bool) and more > 0:
            header["unread_more"] = more    # files not read yet past those the unit named (counted)
    return header


def summary_lines(got: Outcome, store: JournalCopy, made: Any, verdict: Any, brk: Break | None = None) -> list[str]:
    seq, h = store.head
    new = f"{seq - got.first_new + 1} new records ({got.first_new}-{seq})" if got.first_new else "no new records"
    resumed = f", continuing an interrupted download from record {got.resumed_from + 1}" \
        if got.resumed_from and got.first_new and got.resumed_from != _last_pull_end(store, got) else ""
    checked = f"chain verified, head {seq}/{chain.short(h)}" if brk is None else \
        f"chain verified up to record {seq}/{chain.short(h)}"
    lines = [f"Unit {got.unit} (bedside {got.hello.get('version', '?')}): {new} in {got.seconds:.1f} s{resumed}; "
             f"{checked}.", f"Export: {verdict.verdict}"]
    if brk is not None:
        lines.append(f"BREAK at record {brk.at}: {brk.problem}. {len(brk.records)} record(s) the unit could read "
                     "after it are in the export and the report, flagged as not verified.")
    if got.unread:
        lines.append(unread_line(got.unread))
    if store.start > 1:
        lines.append(f"The unit's journal starts at record {store.start}: older records were exported earlier "
                     "and removed from the unit to make room.")
    lines.extend(stay_lines(made.model))
    return lines


def unread_line(unread: list[dict[str, Any]]) -> str:
    """One line: which records the unit has not read yet, in which files, and what to do."""
    groups: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for u in unread:            # files in a row the unit read none of share one range
        groups.setdefault((u["first_seq"], u["last_seq"]), []).append(u)
    named = []
    for (lo, hi), files in list(groups.items())[:UNREAD_SHOWN]:
        which = files[0]["file"] if len(files) == 1 else f"{files[0]['file']} and {len(files) - 1} more files"
        size = sum(u["size"] or 0 for u in files)
        named.append(f"{texts.seqs_text(lo, hi)} ({which}, {texts.mib(size)})")
    more = f"; and {len(groups) - UNREAD_SHOWN} more ranges" if len(groups) > UNREAD_SHOWN else ""
    return (f"NOT READ YET on the unit: {'; '.join(named)}{more}. The unit reads damaged files in the "
            "background: pull again later, or use the ward stick (its export runs in its own process).")


def stay_lines(model: Any) -> list[str]:
    """Sessions per day, each admission apart and the empty bed's apart: the patient's numbers only."""
    lines: list[str] = []
    if not model.episodes:
        lines.append("Episode: none recorded on this unit.")
    for st in model.stays:
        e = st.episode
        if e is not None:
            bits = [f"surgery {e.surgery}" if e.surgery else "", f"regimen {e.regimen}" if e.regimen else "",
                    f"discharged {e.discharged:%a %d %b %H:%M}" if e.discharged else "current"]
            lines.append(f"Episode {e.id} ({', '.join(b for b in bits if b)}): sessions per day, done / missed "
                         "(of due)")
        else:
            lines.append(("No patient admitted" if model.episodes else "All sessions") +
                         ": sessions per day, done / missed (of due)")
        days = list(st.days)
        if len(days) > SUMMARY_DAYS:
            lines.append(f"  ... {len(days) - SUMMARY_DAYS} earlier days in the report")
        for d in days[-SUMMARY_DAYS:]:
            c = d.counts
            pod = st.pod(d.day)
            tag = f" day {pod:>2}" if pod is not None else ""
            lines.append(f"  {d.day:%a %Y-%m-%d}{tag}  {c.done:>3} done  {c.missed:>3} missed  (of {c.due})")
        t = st.totals
        pct = f", {t.adherence:.0%}" if t.adherence is not None else ""
        lines.append(f"  total           {t.done:>3} done  {t.missed:>3} missed  (of {t.due}{pct})")
    return lines


def _last_pull_end(store: JournalCopy, got: Outcome) -> int:
    pulls = store.pulls()
    return int(pulls[-2]["to"]) if len(pulls) >= 2 else 0
