"""Tamper evidence: the chain, seals with a forward-evolving key, exports and ``bedside log verify``."""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tools import tamper

from bedside.journal import chain, export, seal, verify
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def genuine(tmp_path_factory: pytest.TempPathFactory) -> tamper.Genuine:
    return tamper.make_genuine(tmp_path_factory.mktemp("genuine"))


def bedside(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bedside", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, stdin=subprocess.DEVNULL)


def write_export(path: Path, header: dict[str, Any], recs: list[dict[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8") as f:
        export.write(f, header, [chain.canonical(r) for r in recs])
    return path


def test_the_genuine_journal_verifies_with_every_seal_checked(genuine: tamper.Genuine) -> None:
    v = verify.verify_data(genuine.data, genuine.key)
    assert v.ok, v.report()
    seals = [r for r in genuine.records if r["type"] == "seal"]
    assert len(seals) >= 8 and v.seals_checked == len(seals) and v.seals_unchecked == 0
    assert [s["epoch"] for s in seals] == list(range(len(seals)))
    types = {r["type"] for r in genuine.records}
    assert {"seal_key", "start", "stop", "prompt", "done", "snooze", "missed", "press"} <= types
    e = verify.verify_export(genuine.export, genuine.key)
    assert e.ok and e.head == v.head and e.records == len(genuine.records)
    assert e.verdict.startswith("OK: chain intact")
    without_key = verify.verify_export(genuine.export)
    assert without_key.ok and without_key.seals_unchecked == len(seals)


def test_export_header(genuine: tamper.Genuine) -> None:
    h = genuine.header
    assert h["bedside_export"] == 1 and h["unit"] == "ward7-bed12"
    last = genuine.records[-1]
    assert h["head"] == {"seq": last["seq"], "hash": last["hash"]}
    assert h["first"] == {"seq": 1, "prev": chain.GENESIS} and h["records"] == len(genuine.records)
    assert h["seals"]["key_id"] == genuine.key.key_id and h["seals"]["first_epoch"] == 0
    assert [s["n"] for s in h["segments"]] == [1]
    lines = genuine.export.read_text().splitlines()
    assert json.loads(lines[0]) == h
    # Every record line is exactly the record's canonical JSON (what the chain hashes, plus its hash).
    assert lines[1:] == [chain.canonical(r) for r in genuine.records]


@pytest.mark.parametrize("kind", tamper.KINDS)
def test_each_kind_of_change_to_an_export_is_caught(genuine: tamper.Genuine, kind: str, tmp_path: Path) -> None:
    rnd = random.Random(kind)
    for n in range(6):
        out = tmp_path / f"{n}.jsonl"
        tamper.tamper_export(genuine, kind, rnd, out)
        v = tamper.check(genuine, out, data=False)
        assert not v.ok, (kind, n)
        assert v.verdict.startswith("BROKEN")


def test_a_changed_record_is_named(genuine: tamper.Genuine, tmp_path: Path) -> None:
    recs = [dict(r) for r in genuine.records]
    recs[40]["reps"] = 99
    v = verify.verify_export(write_export(tmp_path / "e.jsonl", genuine.header, recs))
    assert not v.ok and v.first_bad == recs[40]["seq"]
    assert v.verdict == f"BROKEN at seq {recs[40]['seq']}: its contents do not match its hash: it was changed after " \
        "it was written"


def test_a_deleted_record_is_a_gap_and_a_broken_link(genuine: tamper.Genuine, tmp_path: Path) -> None:
    gone = next(r["seq"] for r in genuine.records if r["seq"] >= 30 and r["type"] != "seal")
    recs = [r for r in genuine.records if r["seq"] != gone]
    v = verify.verify_export(write_export(tmp_path / "e.jsonl", {**genuine.header, "records": len(recs)}, recs))
    assert v.first_bad == gone + 1 and {p.kind for p in v.problems} == {"seq", "link"}


def test_rechaining_after_a_change_is_caught_by_the_seals_only_with_the_key(genuine: tamper.Genuine,
                                                                             tmp_path: Path) -> None:
    recs = [dict(r) for r in genuine.records]
    i = next(i for i, r in enumerate(recs) if r["type"] == "done")
    recs[i]["reps"] = recs[i]["reps"] + 5
    recs = tamper._rechain(recs, i)
    header = {**genuine.header, "head": {"seq": recs[-1]["seq"], "hash": recs[-1]["hash"]}}
    path = write_export(tmp_path / "forged.jsonl", header, recs)
    assert verify.verify_export(path).ok          # a chain alone cannot tell
    v = verify.verify_export(path, genuine.key)
    assert not v.ok and all(p.kind == "seal" for p in v.problems)
    first_seal_after = next(r["seq"] for r in recs[i:] if r["type"] == "seal")
    assert v.first_bad == first_seal_after


def test_a_current_key_cannot_reseal_the_past(genuine: tamper.Genuine, tmp_path: Path) -> None:
    """journald's CVE-2023-31439: a verifier that checks a seal with the key of the epoch the seal
    claims lets whoever holds today's key re-seal yesterday. Here each seal is checked with the
    key of its place in the chain."""
    recs = [dict(r) for r in genuine.records]
    seals = [i for i, r in enumerate(recs) if r["type"] == "seal"]
    # The attacker took the unit when its key had reached the epoch of the last seal + 1.
    stolen_epoch = recs[seals[-1]]["epoch"] + 1
    stolen = seal.KeyChain(genuine.key.k0).at(stolen_epoch)
    i = seals[2] - 3                            # a record sealed long ago
    recs[i]["reps"] = 1
    recs = tamper._rechain(recs, i)
    # Re-seal every later seal with keys derived from the stolen one, relabelling the epochs.
    epoch = stolen_epoch
    key = stolen
    for j in seals:
        if j < i:
            continue
        recs[j]["epoch"] = epoch
        recs[j]["mac"] = seal.mac(key, recs[j]["key_id"], epoch, recs[j]["seq"] - 1, recs[j - 1]["hash"])
        recs = tamper._rechain(recs, j)
        epoch += 1
        key = seal.evolve(key)
    header = {**genuine.header, "head": {"seq": recs[-1]["seq"], "hash": recs[-1]["hash"]}}
    v = verify.verify_export(write_export(tmp_path / "resealed.jsonl", header, recs), genuine.key)
    assert not v.ok
    assert any(p.kind == "seal" and "epoch" in p.text for p in v.problems)
    # And relabelling alone is caught: epochs must run 0, 1, 2 … without a gap.
    assert v.first_bad is not None and v.first_bad <= recs[seals[2]]["seq"]


def test_the_wrong_key_is_reported(genuine: tamper.Genuine, tmp_path: Path) -> None:
    other = seal.create(tmp_path / "other", tmp_path / "other.json", "other-unit")
    assert other.key_id != genuine.key.key_id
    v = verify.verify_export(genuine.export, seal.load_hospital_key(tmp_path / "other.json"))
    assert not v.ok and v.problems[0].kind == "key" and "is it this unit's key file" in v.problems[0].text


def test_an_export_cut_short_is_caught_by_its_header(genuine: tamper.Genuine, tmp_path: Path) -> None:
    lines = genuine.export.read_text().splitlines()
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:-5]) + "\n")
    v = verify.verify_export(cut)
    assert not v.ok and v.problems[0].kind == "truncated"


def test_extends_catches_newest_records_removed_even_with_a_forged_header(genuine: tamper.Genuine,
                                                                          tmp_path: Path) -> None:
    recs = genuine.records[:-10]
    header = {**genuine.header, "head": {"seq": recs[-1]["seq"], "hash": recs[-1]["hash"]}, "records": len(recs)}
    forged = write_export(tmp_path / "short.jsonl", header, recs)
    assert verify.verify_export(forged).ok      # consistent on its own
    head, earlier = verify.earlier_head(str(genuine.export))
    assert earlier is not None and earlier.ok
    later = verify.verify_export(forged)
    problems = verify.extends(later, verify.records_of(forged, data=False), head, "the earlier export")
    assert problems and "newest records were removed" in problems[0].text
    # The nurse's note of the head (from the nurse screen) is enough too.
    noted = f"{genuine.records[-1]['seq']}/{genuine.records[-1]['hash'][:8]}"
    assert verify.extends(later, None, verify.parse_head(noted) or (0, ""), "the noted head")


def test_boots_must_not_interleave(genuine: tamper.Genuine, tmp_path: Path) -> None:
    recs = [dict(r) for r in genuine.records]
    boots = list(dict.fromkeys(r["boot"] for r in recs))
    assert len(boots) >= 3
    # A record of the first boot spliced in after the second began, re-chained to hide it.
    late = next(i for i, r in enumerate(recs) if r["boot"] == boots[2])
    recs[late]["boot"] = boots[0]
    recs = tamper._rechain(recs, late)
    v = verify.check_records(recs)
    assert any(p.kind == "boot" for p in v.problems)


def test_database_tampering_is_caught(genuine: tamper.Genuine, tmp_path: Path) -> None:
    rnd = random.Random(5)
    for n, kind in enumerate(tamper.DB_KINDS):
        target = tmp_path / f"d{n}"
        tamper.tamper_database(genuine, kind, rnd, target)
        assert not tamper.check(genuine, target, data=True).ok, kind


def test_triggers_refuse_changes_through_sqlite(genuine: tamper.Genuine) -> None:
    path = next(genuine.data.glob("journal-*.sqlite"))
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE type='trigger'").fetchone()[0] == 2
    db.close()


def test_random_tampering_short(genuine: tamper.Genuine, tmp_path: Path) -> None:
    """The short version of `make tamper` (1000 random changes)."""
    r = tamper.run(60, 17, tmp_path, genuine)
    assert r.missed == [] and r.detected == 60


def test_verify_command(genuine: tamper.Genuine, tmp_path: Path) -> None:
    key = str(genuine.data.parent / "hospital-key.json")
    ok = bedside("log", "verify", "--data", str(genuine.data), "--key", key)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("OK: chain intact") and "seals checked with the hospital's key" in ok.stdout
    recs = [dict(r) for r in genuine.records]
    recs[12]["type"] = "missed" if recs[12]["type"] == "done" else "done"
    bad = write_export(tmp_path / "bad.jsonl", genuine.header, recs)
    r = bedside("log", "verify", str(bad))
    assert r.returncode == 3 and r.stdout.startswith("BROKEN at seq 13:")
    r = bedside("log", "verify", str(genuine.export), "--extends", f"{recs[-1]['seq'] + 5}/abcdef12")
    assert r.returncode == 3 and "newest records were removed" in r.stdout
    r = bedside("log", "verify", str(tmp_path / "nope.jsonl"))
    assert r.returncode == 2 and "does not exist" in r.stderr and "Traceback" not in r.stderr
    r = bedside("log", "verify", str(genuine.export), "--json")
    assert json.loads(r.stdout)["ok"] is True


def test_keys_init_writes_the_hospital_copy_once(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "stick" / "key.json"
    r = bedside("keys", "init", "--data", str(data), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    k = seal.load_hospital_key(out)
    unit = seal.load_unit_key(data)
    assert unit is not None and unit.key_id == k.key_id and unit.epoch == 0 and unit.key == k.k0
    again = bedside("keys", "init", "--data", str(data), "--out", str(tmp_path / "second.json"))
    assert again.returncode == 2 and "already given seal key" in again.stderr
    assert not (tmp_path / "second.json").exists()
    v = bedside("log", "verify", "--data", str(data))
    assert v.returncode == 0 and "1 records" in v.stdout


def test_unit_key_moves_forward_and_forgets(tmp_path: Path) -> None:
    key = seal.create(tmp_path / "d", tmp_path / "k.json", "u")
    s = seal.Sealer(tmp_path / "d")
    first = s.seal_data(10, "a" * 64)
    s.sealed()
    on_disk = seal.load_unit_key(tmp_path / "d")
    assert on_disk is not None and on_disk.epoch == 1 and on_disk.key == seal.evolve(key.key)
    assert key.key.hex() not in (tmp_path / "d" / seal.KEY_FILE).read_text()
    assert first["epoch"] == 0 and first["mac"] == seal.mac(key.key, key.key_id, 0, 10, "a" * 64)
    # A crash after a seal's commit but before the key moved on: caught up at start.
    s2 = seal.Sealer(tmp_path / "d")
    s2.catch_up({"key_id": key.key_id, "epoch": 3})
    assert s2.key is not None and s2.key.epoch == 4


def test_a_file_a_power_cut_left_with_a_journal_to_undo_verifies_and_is_not_written(genuine: tamper.Genuine,
                                                                                    tmp_path: Path) -> None:
    """A write cut off by a power cut leaves a rollback journal beside the file, which SQLite
    undoes on the next open for writing and refuses to undo for a reader. The check reads a
    copy: the records are all there, and the card is left as it was."""
    import os
    import shutil

    data = tmp_path / "data"
    shutil.copytree(genuine.data, data)
    seg = sorted(data.glob("journal-*.sqlite"))[0]
    mode = seg.stat().st_mode
    seg.chmod(0o644)
    cut = ("import os, signal, sqlite3, sys\n"
           "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
           "db.execute('PRAGMA journal_mode=DELETE'); db.execute('PRAGMA cache_size=1')\n"
           "db.execute('BEGIN'); db.execute('CREATE TABLE scratch (x)')\n"
           "for _ in range(3000): db.execute('INSERT INTO scratch VALUES (?)', ('x' * 100,))\n"
           "os.kill(os.getpid(), signal.SIGKILL)\n")
    subprocess.run([sys.executable, "-c", cut, str(seg)], check=False)
    seg.chmod(mode)
    hot = seg.with_name(seg.name + "-journal")
    assert hot.stat().st_size > 0
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        sqlite3.connect(f"file:{seg}?mode=ro", uri=True).execute("PRAGMA integrity_check").fetchall()
    before = (seg.read_bytes(), hot.read_bytes())
    v = verify.verify_data(data, genuine.key)
    assert v.ok, v.report()
    assert (seg.read_bytes(), hot.read_bytes()) == before and os.stat(seg).st_mode == mode


def test_a_check_keeps_at_most_a_thousand_problems_and_counts_the_rest(genuine: tamper.Genuine,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Every record changed: the check's memory does not grow with the problems past
    ``verify.MAX_KEPT`` (counted, named in one problem), and the verdict still counts them all."""
    monkeypatch.setattr(verify, "MAX_KEPT", 10)
    recs = [{**r, "hash": "0" * 64} for r in genuine.records]
    c = verify.Checker()
    for r in recs:
        c.feed(r)
    assert len(c.problems) == 10 and c.not_kept > len(recs) - 10
    v = c.verdict("records")
    assert not v.ok and v.first_bad == recs[0]["seq"]
    assert len(v.problems) == 11 and v.problems[-1].kind == "more"
    assert f"({10 + c.not_kept} problems in all)" in v.verdict


def _crafted(n: int, **each: Any) -> list[dict[str, Any]]:
    """A valid chain of ``n`` records made by hand (anyone can compute it), ``each`` computing fields."""
    out: list[dict[str, Any]] = []
    prev = chain.GENESIS
    for i in range(n):
        rec: dict[str, Any] = {"seq": i + 1, "prev": prev, "type": "note", "time": "2026-11-24T09:00:00+00:00",
                               "boot": "b" * 32, "mono_ms": i, "tq": "rtc"}
        rec.update({k: f(i) for k, f in each.items()})
        rec["hash"] = chain.record_hash(rec)
        prev = rec["hash"]
        out.append(rec)
    return out


def test_a_check_remembers_at_most_max_boots_and_names_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new boot on every record (a crafted chain): the boots remembered stop at
    ``verify.MAX_BOOTS`` and the verdict says how many were not compared; a boot longer than any
    unit writes is remembered by its digest, not its text."""
    monkeypatch.setattr(verify, "MAX_BOOTS", 10)
    recs = _crafted(50, boot=lambda i: f"{i:032x}" if i % 2 else f"{i:032x}" + "x" * 5000)
    c = verify.Checker()
    for r in recs:
        c.feed(r)
    assert len(c.boots_seen) == 10 and c.boots_not_kept == 40
    assert all(len(b) <= 64 for b in c.boots_seen)
    v = c.verdict("records")
    assert v.ok and "40 boots after the first 10 not compared" in v.verdict


def test_a_reappearing_boot_among_those_kept_is_still_found() -> None:
    recs = _crafted(6, boot=lambda i: ["a" * 32, "b" * 32, "a" * 32][i % 3])
    c = verify.Checker()
    for r in recs:
        c.feed(r)
    assert any(p.kind == "boot" and "reappears" in p.text for p in c.problems)


def test_seals_of_a_new_key_id_on_every_record_cost_bounded_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each seal's key id was looked up in a list growing with the seals (quadratic) and its
    epoch kept in a dict of the same size."""
    monkeypatch.setattr(verify, "MAX_KEY_IDS", 5)
    recs = _crafted(40, type=lambda i: "seal", key_id=lambda i: f"{i:016x}", epoch=lambda i: 0,
                    mac=lambda i: "00" * 32)
    c = verify.Checker()
    for r in recs:
        c.feed(r)
    assert len(c.key_ids) <= 5 and len(c.next_epoch) <= 5
    assert any(p.kind == "key" and "more than 5 key ids" in p.text for p in c.problems)


def test_a_seal_claiming_an_epoch_past_any_units_is_a_problem_not_a_hang(tmp_path: Path) -> None:
    """A partial chain's first seal sets the epoch followed from it: 10**15 made the verifier
    hash 10**15 times (and keep every key) before."""
    key = seal.create(tmp_path / "d", tmp_path / "h.key", "u")
    hk = seal.load_hospital_key(tmp_path / "h.key")
    recs = _crafted(3, type=lambda i: "seal", key_id=lambda i: key.key_id, epoch=lambda i: 10**15 + i,
                    mac=lambda i: "00" * 32)
    c = verify.Checker(hk, link=(0, chain.GENESIS))
    for r in recs:
        c.feed(r)
    assert c.seals_unchecked == 3 and any("past any unit's seals" in p.text for p in c.problems)
    k = seal.KeyChain(b"k" * 32)
    assert k.at(3) == seal.evolve(seal.evolve(seal.evolve(b"k" * 32))) and k.at(1) == seal.evolve(b"k" * 32)
