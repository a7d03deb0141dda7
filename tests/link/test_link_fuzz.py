"""Fuzzing the unit's end of the serial link: whatever arrives, only clean answers or none.

Random bytes, long lines, control codes, broken UTF-8, damaged and replayed frames go into
the unit's real connection (reader, frames, commands, the loop-side service and journal).
Every answer must be well formed (echo, text lines ending CR LF, or frames whose CRC
checks); nothing may raise; buffers stay bounded; and without the secret nothing is read
or changed. ``make fuzz-serial`` runs the long version (FUZZ_SECONDS, default ten minutes).
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bedside.link import frames, lines
from tests.conftest import budget
from tests.link.test_link_properties import CFG, SyncUnit

WORDS = [b"help", b"status", b"unlock", b"log", b"log all", b"log from 3", b"time", b"time set 10:00",
         b"episode", b"episode admit E1 2026-11-23", b"episode discharge", b"lock", b"AT", b"ATZ", b"\x1b[A"]


@pytest.fixture(scope="module")
def unit() -> Iterator[SyncUnit]:
    with tempfile.TemporaryDirectory() as d:
        u = SyncUnit(Path(d) / "unit", datetime(2026, 11, 24, 9, 30, tzinfo=CFG.tz))
        yield u
        u.sim.close()


def noise(rng: random.Random) -> bytes:
    """One burst of what a bad cable, a modem manager or a confused program might send."""
    kind = rng.randrange(7)
    if kind == 0:
        return rng.randbytes(rng.randint(1, 2000))
    if kind == 1:
        return rng.choice([b"x", b"~", b"\xff", b"7 get 1 99*"]) * rng.randint(200, 20000) + b"\r"
    if kind == 2:
        return b"\r\n".join(rng.choice(WORDS) for _ in range(rng.randint(1, 8))) + b"\r"
    if kind == 3:
        frame = bytearray(frames.Request(rng.randint(0, 10**9 - 1), rng.choice(["hello", "get", "unlock", "time",
                                                                                   "done", "lock", "zap"]),
                                           tuple(str(rng.randint(0, 99)) for _ in range(rng.randint(0, 3)))).encode())
        for _ in range(rng.randint(0, 3)):
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        return bytes(frame)
    if kind == 4:
        return bytes(rng.choice([0x03, 0x15, 0x08, 0x7F, 0x1B, 0x00, 0x11, 0x13, 0x0D, 0x0A, 0x09])
                     for _ in range(rng.randint(1, 50)))
    if kind == 5:
        return "é✓\u202e".encode()[: rng.randint(1, 8)] + b"\r"
    return b"unlock\r" + rng.randbytes(rng.randint(0, 40)) + b"\r"


def check(unit: SyncUnit, data: bytes, rng: random.Random) -> None:
    """Feed ``data`` in random pieces to a fresh connection; judge everything that comes back."""
    out = bytearray()
    before = unit.types()
    conn = unit.connect(out.extend)
    i = 0
    while i < len(data):
        n = rng.randint(1, 700)
        conn.feed(data[i:i + n])
        conn.poll()
        assert conn.reader.pending() <= lines.MAX_FRAME
        i += n
    conn.close()
    # No flood: the echo, and for each line at most one answer (help, the longest, is ~1 kB).
    n_lines = data.count(b"\r") + data.count(b"\n") + 1
    assert len(out) <= 2 * len(data) + 1200 * n_lines
    for line in bytes(out).split(b"\r\n"):
        # A frame starts its line (after any rubbed-out half line); typed text never does.
        body = line
        while body.startswith(b"\b \b"):
            body = body[3:]
        if body[:1] == b"~" and body[1:2].isdigit():
            reply = frames.parse_reply(body[1:].decode("ascii"))     # a frame: its CRC checks
            assert reply.status in ("ok", "err", "wait", "batch")
        else:
            line.decode("utf-8")                                       # text for a person
    new = unit.types()[len(before):]
    # Without the secret: nothing unlocked, read or changed (a failed guess or a refusal is fine).
    assert not set(new) - {"unlock_failed", "lockout", "lockout_end", "lock", "refused", "press"}, new


@given(st.binary(max_size=4000), st.integers(0, 2**32 - 1))
@budget(60)
def test_random_bytes_get_only_clean_answers(unit: SyncUnit, data: bytes, seed: int) -> None:
    check(unit, data, random.Random(seed))


@given(st.integers(0, 2**32 - 1))
@budget(60)
def test_noise_of_every_kind_gets_only_clean_answers(unit: SyncUnit, seed: int) -> None:
    rng = random.Random(seed)
    check(unit, b"".join(noise(rng) for _ in range(rng.randint(1, 6))), rng)


@given(st.text(max_size=300))
def test_frame_parsers_raise_only_frame_errors(text: str) -> None:
    for parse in (frames.parse_request, frames.parse_reply):
        with contextlib.suppress(frames.FrameError):
            parse(text)


@pytest.mark.slow                # the long run: make fuzz-serial
@pytest.mark.timeout(0)          # it stops itself after FUZZ_SECONDS
def test_fuzz_for_a_while(unit: SyncUnit) -> None:
    end = time.monotonic() + float(os.environ.get("FUZZ_SECONDS", "600"))
    runs = 0
    seed = random.SystemRandom().randrange(2**32)
    while time.monotonic() < end:
        rng = random.Random(seed + runs)
        try:
            check(unit, b"".join(noise(rng) for _ in range(rng.randint(1, 12))), rng)
        except AssertionError as e:
            raise AssertionError(f"fuzz seed {seed + runs}: {e}") from None
        runs += 1
        if runs % 200 == 0:
            unit.run_for(600)          # the unit's day moves on: prompts, repeats, idle locks
    print(f"fuzzed the link {runs} times in {os.environ['FUZZ_SECONDS']} s from seed {seed}")


def test_no_memory_growth_under_a_stream_of_noise(unit: SyncUnit) -> None:
    """Connections come and go with noise, and nothing of them stays behind on the unit."""
    import gc

    from bedside.link.port import Connection

    rng = random.Random(7)

    def burst(n: int) -> int:
        for _ in range(n):
            data = b"".join(noise(rng) for _ in range(3))
            conn = unit.connect(lambda b: None)
            for i in range(0, len(data), 500):
                conn.feed(data[i:i + 500])
                conn.poll()
            conn.close()
        gc.collect()
        return len(gc.get_objects())

    burst(100)            # caches, first pages and lazy imports settle
    base = burst(50)
    grown = burst(300) - base
    assert not [o for o in gc.get_objects() if isinstance(o, Connection)]
    assert len(unit.svc.nonces) == 0 and len(unit.svc.pending) == 0
    assert grown < 100, f"{grown} more live objects after 300 more bursts"
