"""The serial link's wire format: the input reader, frames, batches and the tool's frame reader."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bedside.journal import chain
from bedside.link import batch, frames, lines
from bedside.link.lines import Echo, Frame, Garbage, InputReader, Interrupt, Line, TooLong


def items(data: bytes, reader: InputReader | None = None) -> list[lines.Item]:
    return (reader or InputReader()).feed(data)


def echoed(out: list[lines.Item]) -> bytes:
    return b"".join(i.data for i in out if isinstance(i, Echo))


def chained(n: int, start: int = 1, prev: str = chain.GENESIS) -> list[dict[str, Any]]:
    recs = []
    for seq in range(start, start + n):
        rec: dict[str, Any] = {"seq": seq, "time": f"2026-11-24T09:{seq % 60:02d}:00.000+00:00", "type": "prompt",
                               "boot": "b", "mono_ms": seq * 1000, "tq": "rtc", "prev": prev,
                               "session": "2026-11-24T09:00 routine", "reps": [20, 10, 10], "note": "ü ✓"}
        rec["hash"] = chain.record_hash(rec)
        prev = rec["hash"]
        recs.append(rec)
    return recs


# --- typed lines ------------------------------------------------------------------------

def test_a_typed_line_is_echoed_and_ends_once_on_cr_lf() -> None:
    out = items(b"help\r\nstatus\n\r")
    assert [i for i in out if not isinstance(i, Echo)] == [Line("help"), Line("status"), Line("")]
    assert echoed(out) == b"help\r\nstatus\r\n\r\n"


def test_backspace_and_ctrl_u_edit_the_line_on_screen() -> None:
    out = items(b"stax\x7ftus\r")
    assert Line("status") in out
    assert echoed(out) == b"stax\b \btus\r\n"
    out = items(b"garbled\x15help\r")
    assert Line("help") in out
    assert echoed(out) == b"garbled" + b"\b \b" * 7 + b"help\r\n"


def test_ctrl_c_drops_the_line_and_interrupts() -> None:
    out = items(b"log al\x03")
    assert Interrupt() in out and not any(isinstance(i, Line) for i in out)
    assert echoed(out).endswith(b"^C\r\n")


def test_arrow_keys_are_swallowed() -> None:
    out = items(b"\x1b[Ahe\x1b[Dlp\x1bOB\r")
    assert Line("help") in out
    assert b"\x1b" not in echoed(out)


def test_a_long_line_is_dropped_whole_and_reported_once() -> None:
    r = InputReader()
    out = r.feed(b"x" * 5000 + b"\r" + b"help\r")
    assert TooLong(False, lines.MAX_LINE) in out
    assert [i for i in out if isinstance(i, Line)] == [Line("help")]
    assert len(echoed(out)) <= lines.MAX_LINE + 10
    assert r.pending() == 0


def test_binary_garbage_is_dropped_without_an_answer() -> None:
    out = items(b"\x00\x01\xfe\x7e\x7e\x10\r")
    assert out == [Garbage(5)] or all(isinstance(i, Garbage | Echo) for i in out)
    assert not any(isinstance(i, Line | Frame) for i in out)
    out = items(b"h\xc3(elp\r")                  # invalid UTF-8: "h" is echoed, nothing after it
    assert any(isinstance(i, Garbage) for i in out) and echoed(out) == b"h"


def test_utf8_is_kept_and_backspace_removes_a_whole_character() -> None:
    out = items("café\x7fé\r".encode())
    assert Line("café") in out


def test_a_hidden_line_is_not_echoed() -> None:
    r = InputReader()
    r.hide_next_line()
    out = r.feed(b"my secret\r")
    assert Line("my secret") in out
    assert echoed(out) == b"\r\n"
    assert echoed(r.feed(b"help\r")) == b"help\r\n"


def test_frames_are_not_echoed() -> None:
    req = frames.Request(7, "get", ("12", "128"))
    out = items(req.encode())
    assert [i for i in out if isinstance(i, Frame)] == [Frame(req.encode()[2:-2].decode())]
    assert echoed(out) == b""


def test_ctrl_u_before_a_frame_clears_a_half_line_from_a_modem_probe() -> None:
    out = items(b"AT+GC" + frames.Request(1, "hello").encode())
    got = [i for i in out if isinstance(i, Frame)]
    assert len(got) == 1 and frames.parse_request(got[0].text) == frames.Request(1, "hello")


@given(st.binary(max_size=3000))
def test_any_bytes_give_only_items_and_bounded_memory(data: bytes) -> None:
    r = InputReader()
    for chunk in (data[i:i + 97] for i in range(0, len(data), 97)):
        for it in r.feed(chunk):
            assert isinstance(it, Line | Frame | Interrupt | TooLong | Garbage | Echo)
            if isinstance(it, Line):
                assert len(it.text.encode()) <= lines.MAX_LINE
                assert all(ord(c) >= 32 for c in it.text)
            if isinstance(it, Echo):
                # Only what was typed, backspaces, ^C and line ends go back: never a control code from the wire.
                assert all(b >= 0x20 or b in (0x08, 0x0D, 0x0A) for b in it.data)
        assert r.pending() <= lines.MAX_FRAME


# --- frames -----------------------------------------------------------------------------

def test_request_round_trip_and_crc() -> None:
    req = frames.Request(123456, "done", ("1", "200", "ab" * 32))
    text = req.encode()[2:-2].decode()
    assert frames.parse_request(text) == req
    with pytest.raises(frames.FrameError) as e:
        frames.parse_request(text.replace("200", "201"))
    assert e.value.code == "crc" and e.value.request_id == 123456


@given(st.integers(0, 10**9 - 1), st.sampled_from(["hello", "get", "unlock", "time"]),
       st.lists(st.text("0123456789abcdef:-T.+", min_size=1, max_size=40), max_size=3), st.data())
def test_any_damaged_request_is_refused(rid: int, verb: str, args: list[str], data: st.DataObject) -> None:
    raw = bytearray(frames.Request(rid, verb, tuple(args)).encode()[2:-2])
    i = data.draw(st.integers(0, len(raw) - 1))
    bit = data.draw(st.integers(0, 7))
    raw[i] ^= 1 << bit
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return
    with pytest.raises(frames.FrameError):
        frames.parse_request(text)


def test_reply_with_spaces_in_its_message() -> None:
    out = frames.reply(9, "err", {"error": "locked", "message": "locked: unlock first"})
    r = frames.parse_reply(out[1:-2].decode())
    assert r == frames.Reply(9, "err", {"error": "locked", "message": "locked: unlock first"})


def test_reply_reader_picks_frames_out_of_noise_and_split_reads() -> None:
    rr = frames.ReplyReader()
    wire = b"status\r\nward7> \x00\xffAT\r\n" + frames.reply(1, "ok", {"a": 1}) + b"noise~" + \
        frames.reply(2, "ok", {"b": 2})
    got: list[str] = []
    for i in range(0, len(wire), 5):
        got += rr.feed(wire[i:i + 5])
    replies = []
    for text in got:
        with contextlib.suppress(frames.FrameError):
            replies.append(frames.parse_reply(text))
    assert [r.id for r in replies] == [1, 2]
    rr2 = frames.ReplyReader(max_line=100)
    assert rr2.feed(b"~" + b"x" * 500) == []
    assert rr2.feed(b"tail\n" + frames.reply(3, "ok", {})) != []


# --- batches ----------------------------------------------------------------------------

@pytest.mark.parametrize("lean", [True, False])
def test_batches_rebuild_records_exactly(lean: bool) -> None:
    recs = chained(40)
    first = batch.pack(recs[:25], head=(40, recs[-1]["hash"]), lean=lean)
    reply = frames.parse_reply(first.encode(5)[1:-2].decode())
    got = batch.unpack(reply, (0, chain.GENESIS))
    assert [batch.export_line(r) for r in got] == [batch.export_line(r) for r in recs[:25]]
    second = frames.parse_reply(batch.pack(recs[25:], head=(40, recs[-1]["hash"]), lean=lean).encode(6)[1:-2]
                                  .decode())
    assert batch.unpack(second, (25, recs[24]["hash"])) == recs[25:]
    empty = frames.parse_reply(batch.pack([], head=(40, recs[-1]["hash"])).encode(7)[1:-2].decode())
    assert batch.unpack(empty, (40, recs[-1]["hash"])) == []


def test_lean_batches_are_much_smaller_than_the_records() -> None:
    recs = chained(128)
    raw = sum(len(batch.export_line(r)) + 1 for r in recs)
    assert len(batch.pack(recs, head=(128, recs[-1]["hash"])).encode(1)) < raw / 4
    assert len(batch.pack(recs, head=(128, recs[-1]["hash"]), lean=False).encode(1)) < raw


def test_an_empty_copy_starts_where_the_units_journal_starts() -> None:
    recs = chained(30)
    # The unit pruned records 1-19 (exported before): a new copy begins at 20, linked as the unit says.
    reply = frames.parse_reply(batch.pack(recs[19:], head=(30, recs[-1]["hash"])).encode(1)[1:-2].decode())
    assert batch.unpack(reply, None) == recs[19:]
    bad = frames.Reply(1, "batch", {**batch.pack(recs[:5], head=(30, "")).meta, "prev": "f" * 64}, "")
    with pytest.raises(batch.BatchError, match="does not start a chain"):
        batch.unpack(bad, None)


def test_a_batch_that_does_not_follow_the_copy_is_refused() -> None:
    recs = chained(10)
    reply = frames.parse_reply(batch.pack(recs[5:], head=(10, recs[-1]["hash"])).encode(1)[1:-2].decode())
    with pytest.raises(batch.BatchError, match="starts at record 6, expected 5"):
        batch.unpack(reply, (4, recs[3]["hash"]))
    with pytest.raises(batch.BatchError, match="chain link differs"):
        batch.unpack(reply, (5, "f" * 64))


def test_a_batch_from_a_unit_whose_records_were_altered_is_refused() -> None:
    recs = chained(10)
    altered = [dict(r) for r in recs]
    altered[3]["reps"] = [1, 1, 1]          # changed on the unit without fixing the hashes
    for lean in (True, False):
        reply = frames.parse_reply(batch.pack(altered, head=(10, recs[-1]["hash"]), lean=lean).encode(1)[1:-2]
                                     .decode())
        with pytest.raises(batch.BatchError):
            batch.unpack(reply, (0, chain.GENESIS))


def test_a_batch_with_a_damaged_payload_or_header_is_refused() -> None:
    recs = chained(10)
    b = batch.pack(recs, head=(10, recs[-1]["hash"]))
    bad_payload = frames.Reply(1, "batch", b.meta, b.payload[:-8] + "AAAAAAAA")
    bad_count = frames.Reply(1, "batch", {**b.meta, "count": 9, "last": 9}, b.payload)
    for r in (bad_payload, bad_count, frames.Reply(1, "batch", {"count": 3}, "")):
        with pytest.raises(batch.BatchError):
            batch.unpack(r, (0, chain.GENESIS))


def test_reply_json_is_ascii() -> None:
    out = frames.reply(1, "ok", {"unit": "ward7", "text": "café ✓"})
    assert out.decode("ascii")
    assert json.loads(out[1:-2].decode().split(" ", 2)[2].rpartition("*")[0]) == {"unit": "ward7", "text": "café ✓"}


def test_modem_probes_are_recognised() -> None:
    for probe in ("AT", "ATZ", "AT+GCAP", "ATE0", "at+cgmi", " AT "):
        assert lines.is_modem_probe(probe)
    for cmd in ("help", "status", "log all", "time set 10:00", ""):
        assert not lines.is_modem_probe(cmd)
