"""The journal's check at start, after the first frame and off the loop's thread.

Checking a year of journal (every record's hash and link, every file's SQLite integrity)
takes about a second here and ten on a Pi Zero 2 W; done before the first frame, a patient
would look at a blank screen after every power cut. So the daemon draws first, and this
source checks a few seconds later, when no guided exercise or sound is in progress:

1. **the newest records** — from the checkpoint the last clean check left (a ``verified``
   record: seq and hash, chained and sealed like every record) to the head; the records
   written since the last check are few, so a cut or altered tail is reported in moments;
2. **the whole journal** — every segment file and the whole chain, as ``bedside log verify``.

**Its budget** (docs/journal.md, "The check after the start"). The whole check reads every
segment through SQLite (its integrity check, then every record hashed once: linear in the
records, memory one record at a time), and the raw pages of files SQLite refuses through
salvage (salvage.py: linear in their bytes). Salvage is the part a crafted data directory can
make large (31 crafted 8 MiB segments: 25 s of CPU here, 4 minutes on a Pi Zero 2 W), so each
pass (both checks under one budget) reads at most ``salvage.CHECK_BYTES`` (32 MiB) of such files. A file
past it is named in that pass's verdict ("its raw pages are read at the next pass of the
journal check"), and the check runs again ``CARRY_S`` later, at the next quiet moment, reading
the files after the last one read (the first of them whatever its size, up to salvage's read
limits, so each pass moves on). Every damaged file is thus read within one pass per damaged
file at most, about ceil(damaged bytes / 32 MiB) passes when they are small (nine for 31
crafted 8–10 MiB files); then the passes stop until the next start. Each pass also re-checks
every healthy file: decay inside a closed file is found at every start.

A pass is bounded by files too (a data directory of a million 100-byte files named as
segments): it lists at most ``salvage.LIST_FILES`` segment names (a first pass the oldest and
newest halves; a pass that goes on the oldest quarter, the quarter after where the last pass
stopped, the newest half) and opens at most
``salvage.CHECK_FILES`` files that are not the unit's own (its newest, and the closed segments
its index remembers, which every pass checks whatever the count). The next pass goes on just
before the first file this one left, past its bytes, its count or its list (``_carry_on``), so
every file is examined once a round: ceil(files / 512) passes for many small ones. The loop itself
salvages nothing for the check: its look-ups (the checkpoint, earlier faults) run with a
salvage budget of nothing.

**Files a person is waiting for.** A step of the loop serving the serial link salvages at most
``salvage.STEP_BYTES`` and names the rest to the laptop as not read yet (link/on_loop.py); it
leaves them here (``salvage.want``). At the next quiet moment, at most once every ``CARRY_S``
(counted from the start and from the last pass), a worker reads them alone, without a check:
the first ``salvage.CHECK_BYTES`` of them in file order (the first whatever its size), the
earliest read last so that its rows are the last to leave salvage's cache, where the next
pull's steps then find them at no cost. A pull that lacks many large files thus gets them in
order, one such read every ten minutes.

Each check runs on a worker thread that only reads (its own read-only SQLite connections)
and posts its verdict to the loop as a ``Call``; the loop records what it found (a ``fault``
and the nurse's notice, a new segment after a damaged one) and, after a clean whole check,
the new checkpoint. The loop never waits for the worker and nothing polls. A worker is
started once per pass, never two at a time; a prompt that falls due meanwhile is not delayed beyond
Python's thread switch (5 ms). In simulation (``in_thread=False``) the same checks run on
the loop at the same moment, so fast-forwarded runs stay deterministic.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bedside.core.events import Instant
from bedside.core.state import Guiding
from bedside.journal import salvage, verify
from bedside.journal.journal import Journal
from bedside.journal.segments import SEGMENT_NAME, JournalError
from bedside.unit.loop import Unit

DELAY_S = 5.0           # after the start: the first frame, the self-test's chirp
BUSY_RETRY_S = 60.0     # a guide or sound in progress: try again this much later
CARRY_S = 600.0         # damaged files left by one pass's salvage budget: the next pass this much later
LATER = "at the next pass of the journal check"


def newest(data: Path, tz: object, checkpoint: tuple[int, str] | None) -> verify.Verdict | None:
    """The records after ``checkpoint``, checked to follow it; None without a checkpoint."""
    if checkpoint is None:
        return None
    j = Journal(data, tz, "check", readonly=True)   # type: ignore[arg-type]
    try:
        return verify.check_since(j, checkpoint)
    finally:
        j.close()


class JournalCheck:
    """A timed source of the loop: the checks above, once, at the first quiet moment after ``DELAY_S``."""

    def __init__(self, unit: Unit, data: Path, *, in_thread: bool = True,
                 say: Callable[[str], None] | None = None) -> None:
        self.unit = unit
        self.data = Path(data)
        self.in_thread = in_thread
        self.say = say or (lambda line: None)
        self.due: float | None = unit.clock.now().mono + DELAY_S
        self.thread: threading.Thread | None = None
        self.results: list[tuple[str, verify.Verdict, float]] = []     # (which, verdict, seconds)
        # The whole check's passes: the last file an earlier pass read ("" before the first), and
        # what each pass's salvage spent (the counted figures the tests hold).
        self.after = ""
        self.passes: list[salvage.Budget] = []
        # The files the serial link left unread (``salvage.wanted``): when they were last read
        # for it (or the start), whether the next firing reads them, and what each read spent.
        self.read_at = unit.clock.now().mono
        self.reading = False
        self.reads: list[salvage.Budget] = []

    def _idle(self) -> bool:
        return self.due is None and (self.thread is None or not self.thread.is_alive())

    def deadline(self) -> float | None:
        wanted = bool(salvage.wanted(self.data))
        if self.reading and not wanted:
            self.due, self.reading = None, False       # read meanwhile by the link's own steps
        elif wanted and self._idle():
            self.due, self.reading = self.read_at + CARRY_S, True
        return self.due

    def fire(self, now: Instant) -> None:
        u = self.unit
        if self.due is None or now.mono < self.due or u.state is None:
            return
        # A guided exercise is paced frame by frame: the check waits for it (and for a sound) to end.
        # A prompt waiting for its press is not busy: it may wait half an hour, the loop asleep.
        if isinstance(u.state.active, Guiding) or u.out.player.playing is not None:
            self.due = now.mono + BUSY_RETRY_S
            return
        self.due = None
        if u.store.journal is None:
            return          # storage is failing: the store's own retries and faults cover it
        self.read_at = now.mono
        if self.reading:
            self.reading = False
            if not self.in_thread:
                self._read_wanted()
                return
            self.thread = threading.Thread(target=self._read_wanted, name="journal-read", daemon=True)
            self.thread.start()
            return
        # The first pass checks the newest records too; later passes only carry the whole check on.
        # Looked up on the loop with no salvage at all: a file SQLite refuses is read by the
        # worker's passes, never here (266 MiB of crafted files once cost the loop 25 s here).
        with salvage.bounded(0, later=LATER, files=salvage.STEP_FILES):
            checkpoint = u.store.checkpoint() if not self.passes else None
        if not self.in_thread:
            self._checks(checkpoint, lambda fn: fn(u.clock.now()))
            return
        self.thread = threading.Thread(target=self._worker, args=(checkpoint,), name="journal-check", daemon=True)
        self.thread.start()

    def _read_wanted(self) -> None:
        """Read the files the link left unread, for the next request to find in salvage's cache."""
        take: list[Path] = []
        size = 0
        for path in salvage.wanted(self.data):
            n = 0
            for p in (path, path.with_name(path.name + "-wal")):
                with contextlib.suppress(OSError):
                    n += p.stat().st_size
            if take and size + n > salvage.CHECK_BYTES:
                break
            take.append(path)
            size += n
        if not take:
            return
        with salvage.bounded(1 << 62, later=LATER) as spent:
            assert spent is not None
            for path in reversed(take):        # the earliest last: the last to leave the cache
                salvage.scan(path)
        salvage.unwant(take)
        self.reads.append(spent)

    def _worker(self, checkpoint: tuple[int, str] | None) -> None:
        # No lower priority for this thread: the service's system-call filter refuses
        # setpriority (@resources). The loop gets the interpreter back within Python's switch
        # interval whenever an input or deadline wakes it.
        # Posted, never waited for: the worker is done with the journal when it posts.
        self._checks(checkpoint, self.unit.call_soon)

    def _checks(self, checkpoint: tuple[int, str] | None,
                post: Callable[[Callable[[Instant], None]], object]) -> None:
        tz = self.unit.cfg.tz
        # One salvage budget for the pass, both checks together (describing the segments to find
        # the newest records would otherwise salvage every damaged file, unbounded).
        with salvage.bounded(salvage.CHECK_BYTES, after=self.after, later=LATER, files=salvage.CHECK_FILES) as spent:
            for which in ("newest", "whole"):
                t0 = time.monotonic()
                try:
                    v = newest(self.data, tz, checkpoint) if which == "newest" else verify.verify_data(self.data)
                except JournalError as e:
                    self.say(f"journal check ({which}) could not run: {e}")
                    continue
                if v is None:
                    continue
                took = time.monotonic() - t0
                post(functools.partial(self._deliver, which, v, took, spent if which == "whole" else None))

    def _deliver(self, which: str, v: verify.Verdict, took: float, spent: salvage.Budget | None,
                 now: Instant) -> None:
        """On the loop: record what the check found (and the checkpoint after a clean whole check);
        after a pass that left damaged files unread, the next pass ``CARRY_S`` later."""
        self.results.append((which, v, took))
        # (The earlier faults looked up: no salvage on the loop, a step's count of files opened.)
        with salvage.bounded(0, later=LATER, files=salvage.STEP_FILES):
            found = self.unit.store.checked(v, whole=which == "whole")
        for rec in found:
            self.unit.record(rec, now)
        if spent is not None:
            self.passes.append(spent)
            salvage.unwant(self.data / name for name in spent.read)     # (read: in the cache for the link too)
            nxt = _carry_on(self.after, spent)
            if nxt is not None:
                self.after = nxt
                self.due = now.mono + CARRY_S
            else:
                self.after = ""      # every damaged file was read in this round of passes
        if not v.ok:        # a clean check speaks through its checkpoint record
            self.say(f"journal check ({which}): {v.verdict} ({v.records} records, {took:.2f} s)")


def _carry_on(after: str, spent: salvage.Budget) -> str | None:
    """Where the next pass of this round goes on (it examines the files named after it), or None
    when this pass reached every file: just before the first file it left, past its bytes or its
    count of files, or left out of its list of files (salvage.LIST_FILES)."""
    left = [int(name[8:14]) for name in spent.deferred if name > after and SEGMENT_NAME.match(name)]
    if spent.first_unlisted is not None:
        left.append(spent.first_unlisted)
    if not left:
        return None
    first = min(left)
    before = f"journal-{first - 1:06d}.sqlite"
    # (The first file of a pass is read whatever its size: a pass that left its first moves past it.)
    return before if before > after else f"journal-{first:06d}.sqlite"
