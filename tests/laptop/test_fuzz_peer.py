"""Structure-aware fuzzers for what the laptop reads from outside: a unit's answer frames and
batches on the serial line (frames.py, batch.py), and export files (report/model.py).

Each example starts from valid material and changes it field by field, the way a device or a
person who read the code would (ids, statuses, JSON values and nesting, batch headers and
payloads with their CRC recomputed; a record's fields, line cuts, duplicates and deep
nesting in an export). What must hold:

* nothing raises but the named refusals (FrameError, BatchError, ReportError);
* the budget: the reply reader holds at most one line and checks at most a few ``~`` marks a
  line; a batch's records are inflated only up to the size its checked header allows;
* a valid frame after the junk is still read; every untouched export line is still a record
  in the report.

``make test`` runs a fixed set of examples; ``make fuzz`` draws fresh ones, twenty times as many.
"""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import bedside.link.frames as fr
from bedside.journal import chain
from bedside.link import batch, frames
from bedside.report import model as report
from tests.conftest import PROFILE, budget

# The long run (make fuzz) draws twenty times the examples: no per-test time limit there.
LONG = pytest.mark.timeout(0 if PROFILE == "long" else 300)

HOSTILE: list[Any] = [None, True, -1, 2**70, 1.5e308, "", "x" * 5000, "٣", [], {}, "[" * 50,
                      "2026-11-24T23:59:60+00:00", "2099-01-01T00:00:00+00:00", "2026-11-24T09:00:00",
                      {"a": {"b": {"c": []}}}]


def records(n: int = 40) -> list[dict[str, Any]]:
    out, prev = [], chain.GENESIS
    for seq in range(1, n + 1):
        r: dict[str, Any] = {"seq": seq, "time": f"2026-11-24T09:{seq % 60:02d}:00.000+00:00", "type": "press",
                             "boot": "b", "mono_ms": seq * 1000, "tq": "ntp", "prev": prev, "kind": "short"}
        r["hash"] = chain.record_hash(r)
        prev = r["hash"]
        out.append(r)
    return out


def deep(n: int) -> str:
    return "[" * n + "]" * n


def mutate_reply(rng: random.Random, recs: list[dict[str, Any]]) -> str:
    """A reply frame's body (text after ``~``), one structure changed, its CRC right or wrong."""
    b = batch.pack(recs, head=(recs[-1]["seq"], recs[-1]["hash"]), lean=rng.random() < 0.5)
    meta = dict(b.meta)
    payload = b.payload
    rid = "5"
    status = "batch"
    kind = rng.randrange(7)
    if kind == 0:
        meta[rng.choice(sorted(meta))] = rng.choice(HOSTILE)
    elif kind == 1:
        rid = rng.choice(["9" * 5000, "٣", "0", "-1", "x"])
    elif kind == 2:
        status = rng.choice(["ok", "err", "wait", "zap"])
    elif kind == 3:
        payload = rng.choice(["", "!!!", payload[: len(payload) // 2], payload + "A"])
    elif kind == 4:
        import base64
        import zlib

        raw = (deep(rng.choice([10, 5000, 100000])) + "\n").encode()
        meta.update({"count": 1, "last": meta.get("first", 1), "raw": len(raw)})
        payload = base64.b64encode(zlib.compress(raw)).decode()
    elif kind == 5:
        import base64
        import zlib

        raw = b"\n" * (batch.MAX_BATCH_RAW * 4)          # a bomb: 32 MiB of newlines in a few kB
        meta["raw"] = rng.choice([len(raw), 100])
        payload = base64.b64encode(zlib.compress(raw, 9)).decode()
    else:
        body = f"{rid} ok {deep(rng.choice([10, 3000, 60000]))}"
        return f"{body}*{frames.crc(body)}"
    body = f"{rid} {status} {frames.compact_json(meta) if kind != 0 else json.dumps(meta, separators=(',', ':'))}" \
        + (f" {payload or '-'}" if status == "batch" else "")
    check = frames.crc(body) if rng.random() < 0.8 else "00000000"
    return f"{body}*{check}"


@LONG
@given(seed=st.integers(0, 2**32 - 1))
@budget(150)
def test_fuzz_reply_frames(seed: int) -> None:
    rng = random.Random(seed)
    recs = records(rng.randrange(1, 60))
    text = mutate_reply(rng, recs)
    good = batch.pack(recs, head=(recs[-1]["seq"], recs[-1]["hash"])).encode(7)
    reader = frames.ReplyReader()
    checks = 0
    real = fr.open_frame

    def counted(text: str) -> str:
        nonlocal checks
        checks += 1
        return real(text)

    fr.open_frame = counted
    try:
        junk = rng.choice([b"", b"~1" * rng.randrange(1, 5000), rng.randbytes(rng.randrange(0, 3000))])
        got = reader.feed(junk + b"~" + text.encode("utf-8", "replace") + b"\r\n" + good)
    finally:
        fr.open_frame = real
    fed_lines = (junk + text.encode("utf-8", "replace")).count(b"\n") + 2
    assert checks <= 2 * frames.ReplyReader.TRIES * fed_lines      # a few marks a line, however many it holds
    assert len(reader.buf) <= reader.max_line
    assert got and got[-1] == good[1:].decode().rstrip("\r\n")   # the valid frame after it is still read
    for line in got[:-1]:
        try:
            rep = frames.parse_reply(line)
        except frames.FrameError:
            continue
        with contextlib.suppress(batch.BatchError):
            batch.unpack(rep, None)
        with contextlib.suppress(batch.BatchError):
            batch.unpack_as_given(rep)
    rep = frames.parse_reply(got[-1])
    assert [r["seq"] for r in batch.unpack(rep, None)] == [r["seq"] for r in recs]


# --- export files --------------------------------------------------------------------------

def mutate_line(rng: random.Random, line: str) -> str:
    kind = rng.randrange(5)
    try:
        json.loads(line)
    except (ValueError, RecursionError):
        kind = 1 if line else 4                           # changed already: cut it again
    if kind == 0:
        rec = json.loads(line)
        rec[rng.choice(sorted(rec))] = rng.choice(HOSTILE)
        return json.dumps(rec)
    if kind == 1:
        return line[:rng.randrange(len(line))]
    if kind == 2:
        return deep(rng.choice([10, 5000, 200000]))
    if kind == 3:
        rec = json.loads(line)
        rec["time"] = rng.choice(["2026-11-24T23:59:60+00:00", "2026-11-24T09:00:00", "[" * 50])
        rec["hash"] = chain.record_hash(rec)              # re-hashed: only the time says it is forged
        return json.dumps(rec)
    return "x" * rng.randrange(0, 20000)


@LONG
@given(seed=st.integers(0, 2**32 - 1), changes=st.integers(1, 6))
@budget(80)
def test_fuzz_export_lines(seed: int, changes: int) -> None:
    rng = random.Random(seed)
    recs = records(rng.randrange(5, 80))
    lines = [chain.canonical(r) for r in recs]
    touched = set()
    for _ in range(changes):
        i = rng.randrange(len(lines))
        lines[i] = mutate_line(rng, lines[i])
        touched.add(i)
    try:
        loaded = report.parse_export("\n".join(lines).encode())
    except report.ReportError as e:
        assert str(e)                                     # named (e.g. the first line is not a record)
        assert 0 in touched
        return
    made = report.make(loaded.records, damaged=loaded.damaged)
    untouched = [recs[i]["seq"] for i in range(len(recs)) if i not in touched]
    given_seqs = {r.get("seq") for r in loaded.records if isinstance(r.get("seq"), int)}
    assert set(untouched) <= given_seqs                   # every untouched line is still a record
    assert made.model.record_count >= len(untouched)
    assert not made.verdict.ok                            # something changed: never "verified"


def test_a_deeply_nested_answer_is_a_named_refusal_not_a_crash() -> None:
    body = f"5 ok {deep(100000)}"
    with pytest.raises(frames.FrameError):
        frames.parse_reply(f"{body}*{frames.crc(body)}")
    body = "9" * 5000 + " ok {}"
    with pytest.raises(frames.FrameError):
        frames.parse_reply(f"{body}*{frames.crc(body)}")


def test_a_batch_that_inflates_past_its_cap_is_refused_before_inflating(tmp_path: Path) -> None:
    import base64
    import zlib

    raw = b"{}\n" * (batch.MAX_BATCH_RAW // 3 + 10)
    meta = {"count": 1, "first": 1, "last": 1, "prev": chain.GENESIS, "hash": "0" * 64, "form": "full",
            "raw": len(raw), "head": [1, "0" * 64]}
    rep = frames.Reply(5, "batch", meta, base64.b64encode(zlib.compress(raw, 9)).decode())
    with pytest.raises(batch.BatchError, match="inconsistent"):
        batch.unpack(rep, None)
    with pytest.raises(batch.BatchError):
        batch.unpack_as_given(rep)
