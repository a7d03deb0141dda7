"""A ``hello`` stays within one frame whatever the data directory holds: at most
``SEGMENTS_MAX`` segment files listed (the newest), the rest counted in ``segments_more``, each
field of a description cut at ``FIELD_MAX``; the laptop carries the count into the export header.

Counted, not timed: the answer's bytes on the wire, the files listed and counted.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bedside.core import config
from bedside.journal import chain, export
from bedside.journal.journal import Journal
from bedside.journal.segments import Segment, segment_files
from bedside.laptop import pull
from bedside.link import frames, on_loop
from bedside.link.on_loop import LinkService
from bedside.unit import simulate

CFG = config.Config()
NOW = datetime.fromisoformat("2026-11-17T06:05").replace(tzinfo=CFG.tz)


def service(data: Path) -> tuple[Any, LinkService]:
    sim = simulate.build(CFG, data, NOW)
    sim.unit.start()
    svc = LinkService(sim.unit, None)
    svc.attach(sim.clock.now())
    return sim, svc


MIB = "f" * 2**20
DETAIL = {"deep": ["x" * 1000] * 1000}


def crafted(n: int) -> Segment:
    """A description as a crafted file's own ``meta`` table can make it: every field huge (the
    same strings shared by every file here, so that the test itself stays small)."""
    return Segment(n, Path(f"journal-{n:06d}.sqlite"), 10**4000, MIB, MIB, MIB, DETAIL, problem=MIB)


def test_thousands_of_crafted_segments_keep_the_hello_within_a_frame(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sim, svc = service(tmp_path / "unit")
    try:
        journal = sim.unit.journal
        own = journal.segments()
        many = [crafted(n) for n in range(2, 5002)] + [replace(s, n=6000 + i) for i, s in enumerate(own)]
        monkeypatch.setattr(Journal, "segments", lambda self: many)
        hello = svc.hello(1, "n", sim.clock.now())
    finally:
        sim.close()
    wire = frames.reply(1, "ok", hello)
    assert len(wire) < frames.MAX_REPLY_LINE
    assert len(wire) < 5 * 2**20 // 8                          # the worst case is about 600 KiB
    listed = hello["segments"]
    assert len(listed) == on_loop.SEGMENTS_MAX
    assert hello["segments_more"] == len(many) - on_loop.SEGMENTS_MAX
    assert [s["n"] for s in listed] == [s.n for s in many[-on_loop.SEGMENTS_MAX:]]    # the newest
    assert listed[-len(own):] == [replace(s, n=6000 + i).header() for i, s in enumerate(own)]  # whole
    worst = listed[0]
    assert worst["prev"] == "f" * (on_loop.FIELD_MAX - 5) + "…" and worst["damaged"] == worst["prev"]
    assert worst["first_seq"] == worst["detail"] == {"too_long": True}


@pytest.mark.parametrize("text", ["\x01" * 2000, "\U0001F600" * 2000, "a" * 299 + "\x01" * 50])
def test_a_cut_field_is_within_its_limit_as_json(text: str) -> None:
    got = on_loop._listed({"damaged": text})["damaged"]
    assert text.startswith(got[:-1]) and got.endswith("…")
    assert len(frames.compact_json({"d": got})) <= on_loop.FIELD_MAX + len('{"d":}') + 6


def test_a_few_segments_are_listed_whole_with_nothing_more(tmp_path: Path) -> None:
    sim, svc = service(tmp_path / "unit")
    try:
        hello = svc.hello(1, "n", sim.clock.now())
        own = [s.header() for s in sim.unit.journal.segments()]
    finally:
        sim.close()
    assert hello["segments"] == own and "segments_more" not in hello
    assert len(segment_files(tmp_path / "unit")) == len(own)


def test_the_laptop_writes_the_count_into_the_export_header(tmp_path: Path) -> None:
    rec: dict[str, Any] = {"seq": 1, "prev": chain.GENESIS, "type": "start", "unit": "ward7-bed12",
                           "t": "2026-11-17T06:05:00.000+00:00"}
    rec["hash"] = chain.record_hash(rec)
    store = pull.JournalCopy(tmp_path, "ward7-bed12").open()
    store.append([rec])
    hello = {"segments": [{"n": 300, "file": "journal-000300.sqlite", "first_seq": 1}], "segments_more": 299}
    got = pull.Outcome("ward7-bed12", hello, 1, (1, rec["hash"]))
    files, _summary, _verdict = pull.write_outputs(tmp_path, got)
    header, _lines = export.read(files[0])
    assert header["segments_more"] == 299 and header["segments"] == hello["segments"]
    got = pull.Outcome("ward7-bed12", {**hello, "segments_more": "lots"}, 1, (1, rec["hash"]))
    files, _summary, _verdict = pull.write_outputs(tmp_path, got)
    assert "segments_more" not in export.read(files[0])[0]
