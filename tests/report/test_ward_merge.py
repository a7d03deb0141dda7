"""``bedside ward`` (and ``report``, ``fhir``) merge several exports of one unit a record of each
at a time (issue 22), not holding the unit's records: the same merge as when every record was
held (the code before, kept here as the reference), the same rows, the same refusals."""

from __future__ import annotations

import json
import tracemalloc
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bedside.core.records import T
from bedside.report import ward
from bedside.report.model import check
from tests.rigs import ward_rig as wr
from tests.rigs.ward_rig import Bed, aware, local

END = local("2026-11-30T15:30")
NOW = aware("2026-11-30T16:00")


# --- the merge as it was, every record held (the reference) -----------------------------------

def _hashes(s: ward.Source) -> dict[int, str]:
    return {r["seq"]: str(r.get("hash")) for r in s.records if isinstance(r.get("seq"), int)}


def _head(s: ward.Source) -> int:
    return max((r["seq"] for r in s.records if isinstance(r.get("seq"), int)), default=0)


def merged_held(unit: str, group: list[ward.Source]) -> ward.UnitRecord:
    order = sorted(group, key=lambda s: (_head(s), s.taken.timestamp() if s.taken else 0.0), reverse=True)
    base = order[0]
    merged: dict[int, dict[str, Any]] = {r["seq"]: r for r in base.records if isinstance(r.get("seq"), int)}
    hashes = _hashes(base)
    used, contradicting, apart = [base], [], []
    pending = order[1:]
    while pending:
        progress = False
        for s in list(pending):
            theirs = _hashes(s)
            common = theirs.keys() & hashes.keys()
            if any(theirs[k] != hashes[k] for k in common):
                contradicting.append(s)
            elif common or _joins(s, merged):
                for r in s.records:
                    if isinstance(r.get("seq"), int):
                        merged.setdefault(r["seq"], r)
                hashes.update(theirs)
                used.append(s)
            else:
                continue
            pending.remove(s)
            progress = True
        if not progress:
            apart += pending
            break
    records = [merged[k] for k in sorted(merged)]
    if len(used) == 1:
        verdict = base.verdict
    else:
        first = min(used, key=lambda s: min(_hashes(s), default=0))
        h = first.loaded.header
        note = h.get("first") if h is not None else None
        link = None
        if records and isinstance(note, dict) and note.get("seq") == records[0]["seq"] and records[0]["seq"] > 1:
            link = (records[0]["seq"] - 1, str(note.get("prev")))
        verdict = check(records, source=unit, link=link)
    broken: list[tuple[ward.Source | None, Any]] = [(s, s.verdict) for s in used if not s.verdict.ok]
    if not verdict.ok and not broken:
        broken.append((None, verdict))
    return ward.UnitRecord(unit, records, used, contradicting, apart, verdict, broken)


def _joins(s: ward.Source, merged: dict[int, dict[str, Any]]) -> bool:
    seqs = sorted(_hashes(s))
    if not seqs or not merged:
        return False
    lo, hi = min(merged), max(merged)
    theirs_first = next(r for r in s.records if r.get("seq") == seqs[0])
    theirs_last = next(r for r in s.records if r.get("seq") == seqs[-1])
    return (seqs[-1] + 1 == lo and merged[lo].get("prev") == theirs_last.get("hash")) or \
        (seqs[0] == hi + 1 and theirs_first.get("prev") == merged[hi].get("hash"))


def _same(top: Path) -> ward.UnitRecord:
    """The unit's merge, made a record at a time and held whole, which must agree in everything."""
    (u,) = ward.merge(ward.find([top], print))
    sources = ward.find([top], print)
    held = merged_held(sources[0].unit or "", sources)
    def names(ss: list[ward.Source]) -> list[str]:
        return sorted(str(s.path) for s in ss)

    assert (names(u.exports), names(u.contradicting), names(u.apart)) == \
        (names(held.exports), names(held.contradicting), names(held.apart))
    assert [str(s.path) for s in u.exports] == [str(s.path) for s in held.exports]
    assert list(u.records) == list(held.records)
    assert (u.verdict.ok, u.verdict.verdict) == (held.verdict.ok, held.verdict.verdict)
    assert [(s and str(s.path), v.verdict) for s, v in u.broken] == \
        [(s and str(s.path), v.verdict) for s, v in held.broken]
    assert ward.row(u, NOW) == ward.row(held, NOW)
    return u


def _bed(days: int = 10, boot: str = "b1") -> list[dict[str, Any]]:
    first = END.date() - timedelta(days=days)
    nine = datetime.combine(first, datetime.min.time()).replace(hour=9)
    return wr.records(Bed("bed30", first, END, admits=[(nine, "E1", nine.date())], boot=boot,
                          missed=lambda d, h: (d.day + h) % 5 == 0))


def test_two_overlapping_exports_merge_as_before(tmp_path: Path) -> None:
    recs = _bed()
    wr.as_pull(tmp_path / "pulls", "bed30", recs[:150], aware("2026-11-28T20:40"))
    wr.as_stick(tmp_path / "STICK", "bed30", recs[40:], aware("2026-11-30T15:35"))
    u = _same(tmp_path)
    assert len(u.exports) == 2 and u.verdict.ok and [r["seq"] for r in u.records] == list(range(1, len(recs) + 1))


def test_exports_that_join_overlap_or_lie_apart_merge_as_before(tmp_path: Path) -> None:
    recs = _bed()
    wr.as_pull(tmp_path / "a", "bed30", recs[:60], aware("2026-11-26T12:00"))
    wr.as_pull(tmp_path / "b", "bed30", recs[60:120], aware("2026-11-27T12:00"))     # joins a
    wr.as_pull(tmp_path / "c", "bed30", recs[100:200], aware("2026-11-28T12:00"))    # overlaps b
    wr.as_pull(tmp_path / "d", "bed30", recs[230:], aware("2026-11-30T12:00"))       # apart: 201-230 missing
    wr.as_pull(tmp_path / "e", "bed30", recs[:30], aware("2026-11-25T12:00"))        # within a
    u = _same(tmp_path)
    assert len(u.exports) == 1 and len(u.apart) == 4      # the newest (most records) anchors: d is apart
    # Without the far one, the rest join into one chain.
    for f in (tmp_path / "d").iterdir():
        f.unlink()
    u = _same(tmp_path)
    assert len(u.exports) == 4 and not u.apart and u.verdict.ok


def test_another_chain_under_the_same_unit_id_is_still_refused(tmp_path: Path) -> None:
    recs, other = _bed(), _bed(days=3, boot="b-new")
    wr.as_pull(tmp_path / "a", "bed30", recs, aware("2026-11-29T12:00"))
    wr.as_pull(tmp_path / "b", "bed30", recs[:100], aware("2026-11-28T12:00"))
    wr.as_pull(tmp_path / "c", "bed30", other, aware("2026-11-30T15:35"))    # a re-imaged card: seq 1 again
    u = _same(tmp_path)
    assert [s.path.parent.name for s in u.contradicting] == ["c"] or \
        [s.path.parent.name for s in u.exports] == ["c"]
    (row,) = ward.rows([u], NOW)
    assert row.verdict == "BROKEN" and "another chain under the same unit id" in row.verdict_text


def test_a_record_changed_in_one_export_only_is_another_chain(tmp_path: Path) -> None:
    recs = _bed()
    bodies = [{k: v for k, v in r.items() if k not in ("seq", "prev", "hash")} for r in recs[:150]]
    bodies[120]["reps"] = 3
    changed = wr.seal(bodies)           # chained again from there: its hashes no longer agree with b's
    wr.as_pull(tmp_path / "a", "bed30", changed, aware("2026-11-28T12:00"))
    wr.as_pull(tmp_path / "b", "bed30", recs, aware("2026-11-30T15:35"))
    u = _same(tmp_path)
    assert len(u.contradicting) == 1 and u.contradicting[0].path.parent.name == "a"


def test_an_export_that_chains_from_another_record_is_not_joined(tmp_path: Path) -> None:
    recs = _bed()
    # b begins just after a ends but chains from another record: each export verifies alone.
    bad = [dict(r) for r in recs[60:]]
    bad[0]["prev"] = "0" * 64
    from bedside.journal import chain
    for i, r in enumerate(bad):
        if i:
            r["prev"] = bad[i - 1]["hash"]
        r["hash"] = chain.seal_body({k: v for k, v in r.items() if k != "hash"})[1]
    wr.as_pull(tmp_path / "a", "bed30", recs[:60], aware("2026-11-26T12:00"))
    wr.as_pull(tmp_path / "b", "bed30", bad, aware("2026-11-30T12:00"))
    u = _same(tmp_path)
    assert [s.path.parent.name for s in u.exports] == ["b"] and [s.path.parent.name for s in u.apart] == ["a"]


def test_an_export_out_of_seq_order_is_kept_apart(tmp_path: Path) -> None:
    recs = _bed()
    wr.as_pull(tmp_path / "a", "bed30", recs, aware("2026-11-30T15:35"))
    shuffled = recs[:100]
    path = wr.as_pull(tmp_path / "b", "bed30", shuffled, aware("2026-11-28T12:00"))
    lines = path.read_text().splitlines()
    lines[10], lines[11] = lines[11], lines[10]
    path.write_text("\n".join(lines) + "\n")
    (u,) = ward.merge(ward.find([tmp_path], print))
    assert [s.path.parent.name for s in u.exports] == ["a"] and [s.path.parent.name for s in u.apart] == ["b"]
    assert u.verdict.ok


def _lock_exports(folder: Path, n: int) -> None:
    """Two overlapping exports of n records the report's model keeps nothing of (so that what is
    measured is the merge, not the model: issue 22's bound on the model is its own)."""
    t0 = wr.aware("2026-11-01T08:00")
    bodies = [{"type": T.START, "time": t0.isoformat(timespec="milliseconds"), "unit": "bed31", "version": "t",
               "config": "c"}]
    bodies += [{"type": T.LOCK, "time": (t0 + timedelta(seconds=i)).isoformat(timespec="milliseconds"),
                "via": "serial", "note": "x" * 200} for i in range(1, n)]
    recs = wr.seal(bodies)
    wr.as_pull(folder / "a", "bed31", recs[: n * 3 // 4], aware("2026-11-20T12:00"))
    wr.as_stick(folder / "STICK", "bed31", recs[n // 4:], aware("2026-11-30T12:00"))


def _peak(top: Path) -> int:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        (u,) = ward.merge(ward.find([top], print))
        (row,) = ward.rows([u], NOW)
        assert row.verdict == "verified" and len(u.exports) == 2, row.verdict_text
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("n", [3_000])
def test_merging_four_times_the_records_takes_no_more_memory(tmp_path: Path, n: int) -> None:
    _lock_exports(tmp_path / "small", n)
    _lock_exports(tmp_path / "large", 4 * n)
    _peak(tmp_path / "small")       # imports and caches: not counted
    small, large = _peak(tmp_path / "small"), _peak(tmp_path / "large")
    size = sum(p.stat().st_size for p in (tmp_path / "large").rglob("*.jsonl"))
    assert large < small + 2**20, (small, large)
    assert large < size / 4, (large, size)       # held, the records took several times the files
    assert json.loads((tmp_path / "large" / "a" / "bed31-journal.jsonl").open().readline())["records"] == 3 * n
