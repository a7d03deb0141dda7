"""Each defect the key-file fuzzer (test_fuzz_key_files.py) or the review of the key files'
readers found, as it was found; and the unit's start whatever its own key files hold."""

from __future__ import annotations

import json
import random
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nacl.pwhash
import nacl.secret
import pytest

from bedside import secret
from bedside.core import config
from bedside.journal import seal
from bedside.laptop import keyauth
from bedside.trust import keys, signed, ward_state
from bedside.unit import simulate
from tests.conftest import journal_records
from tests.rigs import hostile_json

CFG = config.Config()
PASS = "correct horse battery"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CFG.tz)


@pytest.mark.parametrize("given", [7, None, "abc", {"a": 1}, 1.5])
def test_revocation_lists_that_are_not_lists_revoke_nothing(tmp_path: Path, given: object) -> None:
    """``revoked.certs`` of 7 in ``ward-settings.json``: a TypeError on every unlock attempt before."""
    (tmp_path / ward_state.STATE_FILE).write_text(json.dumps({"revoked": {"certs": given, "sticks": ["s1", 3]}}))
    got = ward_state.revoked(tmp_path)
    assert got["certs"] == frozenset() and got["sticks"] == frozenset({"s1"})


@pytest.fixture
def key_file(tmp_path: Path, cheap_argon: None) -> Path:
    priv, _ = keys.save(keys.generate("laptop", "Laptop 3"), tmp_path, "laptop", PASS)
    return priv


def _with_kdf(path: Path, **kdf: object) -> None:
    body = json.loads(path.read_text())
    body["kdf"].update(kdf)
    path.write_text(json.dumps(body))


@pytest.mark.parametrize("kdf", [{"ops": 2**40}, {"mem": 2**42}, {"ops": float("inf")}, {"mem": "64"},
                                 {"ops": True}, {"ops": 0}, {"salt": "ab"}, {"name": "scrypt"}])
def test_a_private_key_file_asking_for_unbounded_stretching_is_refused_before_any(
        key_file: Path, monkeypatch: pytest.MonkeyPatch, kdf: dict[str, object]) -> None:
    """Argon2id's cost came from the file unchecked: 2**40 passes held the laptop for ever, 2**42
    bytes asked for 4 TiB, ``Infinity`` was an OverflowError, a short salt "the passphrase does
    not open"."""
    _with_kdf(key_file, **kdf)
    stretched: list[tuple[int, int]] = []

    def box_key(passphrase: str, salt: bytes, ops: int, mem: int) -> bytes:
        stretched.append((ops, mem))
        return b"k" * 32

    monkeypatch.setattr(keys, "_box_key", box_key)
    with pytest.raises(keys.KeyFileError, match="damaged"):
        keys.load(key_file, PASS, "laptop")
    assert stretched == []


def test_a_private_key_file_sealing_something_not_a_seed_is_damaged(key_file: Path) -> None:
    """A box that opens but holds 16 bytes: nacl's ValueError from SigningKey before."""
    body = json.loads(key_file.read_text())
    box = nacl.secret.SecretBox(keys._box_key(PASS, bytes.fromhex(body["kdf"]["salt"]), body["kdf"]["ops"],
                                              body["kdf"]["mem"]))
    body["sealed"] = bytes(box.encrypt(b"s" * 16)).hex()
    key_file.write_text(json.dumps(body))
    with pytest.raises(keys.KeyFileError, match="not a key"):
        keys.load(key_file, PASS, "laptop")


def test_a_laptop_certificate_whose_expiry_names_no_zone_is_damaged(key_file: Path, tmp_path: Path) -> None:
    """A certificate with ``expires`` of no time zone: a TypeError comparing it with the clock before."""
    laptop = keys.load(key_file, PASS, "laptop")
    ward = keys.generate("ward", "Ward 7")
    cert = keys.certify(ward, laptop.public, "Nurse A", "Laptop 3", NOW, 30)
    body = {**cert.body, "expires": "2027-01-01T00:00:00"}
    (tmp_path / "laptop.cert").write_bytes(hostile_json.dumps(signed.to_json(ward.sign("laptop", body))))
    with pytest.raises(keyauth.LaptopKeyError, match="time zone"):
        keyauth.load(key_file, tmp_path / "laptop.cert", PASS, NOW)


@pytest.mark.parametrize("field", [{"n": 2**30}, {"r": 2**20}, {"p": 2**20}, {"n": 3}, {"salt": ""},
                                   {"unlock": "ab"}, {"n": float("inf")}])
def test_a_ward_secret_file_of_unbounded_or_weak_cost_is_damaged(tmp_path: Path, field: dict[str, object]) -> None:
    """The stored ward secret's scrypt cost came from the file unchecked: each unlock attempt
    would spend what it named (or fail in the helper as a "try again")."""
    body = {"version": 1, "kdf": "scrypt", "n": secret.N, "r": secret.R, "p": secret.P, "salt": "5a" * 16,
            "unlock": "ab" * 32, "stick_key": "cd" * 32, **field}
    (tmp_path / secret.FILE_NAME).write_text(json.dumps(body))
    with pytest.raises(secret.SecretError, match="damaged"):
        secret.load(tmp_path)


def _slot(epoch: object) -> bytes:
    k = b"k" * 32
    body = {"unit": "u", "key_id": seal.key_id(k), "epoch": epoch, "key": k.hex(),
            "check": seal.key_check(seal.key_id(k), int(epoch) if isinstance(epoch, (int, float)) else 0, k)}
    return json.dumps(body).encode().ljust(seal.SLOT - 1) + b"\n"


@pytest.mark.parametrize("epoch", [1.0, True, 2**70, -3])
def test_a_seal_key_slot_of_an_epoch_no_record_holds_is_passed_over(tmp_path: Path, epoch: object) -> None:
    """Its check is no secret: an epoch of ``2**70`` with a good check was taken, and every seal
    after it failed to be written (SQLite's INTEGER holds no such number)."""
    (tmp_path / seal.KEY_FILE).write_bytes(_slot(epoch) + seal.BLANK)
    with pytest.raises(seal.SealError, match="no whole key"):
        seal.load_unit_key(tmp_path)


def test_the_seal_catch_up_moves_a_bounded_number_of_epochs_and_writes_once(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A seal record naming epoch 10**12 (its chain is no secret) held the start for 10**12 hashes
    and as many syncs; now a named refusal, and a real gap is moved in memory and written once."""
    key = seal.create(tmp_path / "d", tmp_path / "h.key", "u")
    sealer = seal.Sealer(tmp_path / "d")
    writes: list[int] = []
    real = sealer.persist

    def persist() -> bool:
        writes.append(1)
        return real()

    monkeypatch.setattr(sealer, "persist", persist)
    problem = sealer.catch_up({"key_id": key.key_id, "epoch": 10**12, "seq": 9})
    assert problem is not None and "not moved" in problem and sealer.key == key and writes == []
    assert sealer.catch_up({"key_id": key.key_id, "epoch": "7", "seq": 9}) is not None
    assert sealer.catch_up({"key_id": key.key_id, "epoch": 4, "seq": 9}) is None
    expect = key.key
    for _ in range(5):
        expect = seal.evolve(expect)
    assert sealer.key is not None and (sealer.key.epoch, sealer.key.key) == (5, expect) and writes == [1]
    assert seal.load_unit_key(tmp_path / "d") == sealer.key


@pytest.fixture(scope="module")
def commissioned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("unit")
    seal.create(data, tmp_path_factory.mktemp("hospital") / "hospital.key", CFG.unit_id)
    secret.save(data, secret.WardSecret(b"s" * 16, b"u" * 32, b"k" * 32))
    sim = simulate.build(CFG, data, local("2026-11-24T06:58"))
    sim.unit.run(until=local("2026-11-24T08:05"))
    sim.close()
    return data


def _damaged(name: str, seed: int, raw: bytes) -> bytes:
    rng = random.Random(seed)
    if seed % 2:
        return hostile_json.RAW_MUTATORS[sorted(hostile_json.RAW_MUTATORS)[seed % len(hostile_json.RAW_MUTATORS)]](
            rng, raw)
    try:
        doc = json.loads(raw[:seal.SLOT] if name == seal.KEY_FILE else raw)
    except ValueError:
        return raw[::-1]
    for _ in range(2):
        doc = hostile_json.DOC_MUTATORS[rng.choice(sorted(hostile_json.DOC_MUTATORS))](rng, doc)
    out = json.dumps(doc, default=str).encode()
    return out.replace(b"\n", b" ")[:seal.SLOT - 1].ljust(seal.SLOT - 1) + b"\n" if name == seal.KEY_FILE else out


@pytest.mark.parametrize("name", [seal.KEY_FILE, secret.FILE_NAME, ward_state.STATE_FILE])
@pytest.mark.parametrize("seed", range(4))
def test_the_unit_starts_and_prompts_whatever_its_key_files_hold(commissioned: Path, tmp_path: Path, name: str,
                                                                 seed: int) -> None:
    data = tmp_path / "d"
    shutil.copytree(commissioned, data)
    raw = (data / name).read_bytes() if (data / name).exists() else b'{"counter": 1, "revoked": {}}'
    (data / name).write_bytes(_damaged(name, seed, raw))
    sim = simulate.build(CFG, data, local("2026-11-24T10:30"))
    sim.unit.start()
    assert sim.unit.state is not None
    sim.unit.run(until=local("2026-11-24T11:01"))
    sim.close()
    recs = journal_records(data)
    assert any(r["type"] == "prompt" and r["time"] >= "2026-11-24T11:00" for r in recs)


def test_the_unit_starts_and_seals_with_a_key_of_the_largest_epoch_a_record_holds(commissioned: Path,
                                                                                  tmp_path: Path) -> None:
    data = tmp_path / "d"
    shutil.copytree(commissioned, data)
    k = seal.load_unit_key(data)
    assert k is not None
    (data / seal.KEY_FILE).write_bytes(seal._key_slot(seal.UnitKey(k.unit, k.key_id, 2**63 - 2, k.key)) + seal.BLANK)
    sim = simulate.build(CFG, data, local("2026-11-24T10:30"))
    sim.unit.start()
    sim.unit.run(until=local("2026-11-24T11:01") + timedelta(hours=4))
    sim.close()
    recs = journal_records(data)
    assert any(r["type"] == "prompt" and r["time"] >= "2026-11-24T14:00" for r in recs)


def test_a_key_file_naming_a_long_role_is_refused_in_a_sentence_not_the_file(key_file: Path, tmp_path: Path) -> None:
    """The role was quoted whole in the refusal: a 5,000-character role made a 5 KB message."""
    from bedside.trust import keyring

    (tmp_path / "w.pub").write_text(json.dumps({"bedside_public_key": 1, "role": "x" * 5000, "public": "ab" * 32}))
    with pytest.raises(keyring.KeyringError) as e:
        keyring.read_public_key(tmp_path / "w.pub", "ward")
    assert len(str(e.value)) < 400
    body = json.loads(key_file.read_text())
    key_file.write_text(json.dumps({**body, "role": "x" * 5000}))
    with pytest.raises(keys.KeyFileError) as f:
        keys.load(key_file, PASS, "laptop")
    assert len(str(f.value)) < 400


def test_a_seal_record_naming_an_unreachable_epoch_is_a_fault_at_the_start_not_a_hang(commissioned: Path,
                                                                                     tmp_path: Path) -> None:
    """A seal record appended to the chain by someone with the card (the chain is no secret) naming
    epoch 10**12: the start evolved and synced the key once per epoch, for ever. Now a fault, the
    key not moved, and the unit prompts."""
    from bedside.core.events import Record
    from bedside.core.records import T
    from bedside.journal.journal import Journal
    from bedside.unit.clock import VirtualClock

    data = tmp_path / "d"
    shutil.copytree(commissioned, data)
    key = seal.load_unit_key(data)
    assert key is not None
    j = Journal(data, CFG.tz, "crafted")
    j.append(Record(T.SEAL, data={"epoch": 10**12, "key_id": key.key_id, "mac": "00" * 32}),
             VirtualClock(local("2026-11-24T09:00")).now(), "rtc")
    j.close()
    sim = simulate.build(CFG, data, local("2026-11-24T10:30"))
    sim.unit.start()
    sim.unit.run(until=local("2026-11-24T11:01"))
    sim.close()
    recs = journal_records(data)
    assert any(r["type"] == "fault" and "epochs past the seal key's" in str(r.get("problem")) for r in recs)
    assert any(r["type"] == "prompt" and r["time"] >= "2026-11-24T11:00" for r in recs)
    after = seal.load_unit_key(data)
    assert after is not None and after.epoch < 10**6
