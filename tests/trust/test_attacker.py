"""The attacker's steps of issue 21, on real files: a commissioned unit's card and a ward stick
read whole, then forged settings, a forged stick, a forged update and another unit's link tried.
Each is refused, and the refusal is recorded (docs/security.md).

The unit is the real loop with its stick channel, the stick a real FAT image, the export and
the key pinning the real ``bedside`` commands; the keys are real Ed25519 keys."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bedside.stick import auth, software, update
from bedside.trust import keyring, keys, signed
from bedside.unit.offline import OfflineWriter
from bedside.unit.releases import Releases
from tests.conftest import DATA, journal_records
from tests.rigs.cli import run
from tests.rigs.serial_rig import Cable, RunningUnit
from tests.rigs.stick_rig import SECRET, FatStick, needs_fat, unit_data
from tests.rigs.trust_rig import Ward

PASSPHRASE = "the ward's long passphrase"
MADE = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def every_file(*roots: Path) -> dict[Path, bytes]:
    """What someone with the card (or the stick) in a reader sees: every file, whole."""
    out: dict[Path, bytes] = {}
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            for f in files:
                p = Path(dirpath) / f
                if p.is_file() and not p.is_symlink():
                    out[p] = p.read_bytes()
    return out


def export(mnt: Path, data: Path, sock: Path, keys_dir: Path, prefix: Path) -> subprocess.CompletedProcess[str]:
    return run("stick", "export", str(mnt), "--data", str(data), "--socket", str(sock), "--config",
               str(DATA / "week.toml"), "--keys-dir", str(keys_dir), "--prefix", str(prefix), timeout=120)


def ward_toml(routine: str) -> str:
    return (DATA / "week.toml").read_text().replace('at = ["06:00", "09:00", "19:00"]', f"at = [{routine}]")


def replace_file(path: Path, data: bytes) -> None:
    path.unlink()
    path.write_bytes(data)


@needs_fat
def test_a_units_card_and_a_stick_give_an_attacker_nothing_to_forge_with(week: Path, tmp_path: Path,
                                                                         ward: Ward) -> None:
    from tests.rigs.stick_daemon import Daemon, press, question

    # --- commissioning: a unit that had a ward secret gets the ward's keys pinned ---------------
    data = unit_data(week, tmp_path / "a")
    assert (data / "ward-secret.json").exists()
    keys_dir, prefix, laptop = tmp_path / "a-etc-bedside-keys", tmp_path / "a-opt-bedside", tmp_path / "ward-laptop"
    prefix.mkdir()
    Releases(prefix).set_counter(3, "0.1.0")
    laptop.mkdir()
    for role, key in (("ward", ward.authority), ("release", ward.release)):
        (laptop / f"{role}.pub").write_text(json.dumps(keyring.public_key_file(role, key.name, key.public)))
    r = run("trust", "pin", "--ward", str(laptop / "ward.pub"), "--release", str(laptop / "release.pub"),
            "--ward-name", "Ward 7", "--keys-dir", str(keys_dir), "--data", str(data),
            "--config", str(DATA / "week.toml"))
    assert r.returncode == 0 and ward.authority.id in r.stdout, r.stdout + r.stderr
    assert not (data / "ward-secret.json").exists()
    assert [x["secret_removed"] for x in journal_records(data) if x["type"] == "keys_pinned"] == [True]
    (laptop / "pass.txt").write_text(PASSPHRASE)
    keys.save(ward.authority, laptop, "ward", PASSPHRASE)
    (laptop / "ward.toml").write_text(ward_toml('"08:00", "18:00"'))
    sock = tmp_path / "stick.sock"

    with FatStick(tmp_path / "stick") as s, Daemon(data, sock, "2026-12-01T11:30") as d:
        s.mount()
        p = run("stick", "prepare", str(s.mnt), "--key", str(laptop / "ward.key"), "--passphrase-file",
                str(laptop / "pass.txt"), "--label", "Ward 7 stick 1", "--config", str(laptop / "ward.toml"))
        assert p.returncode == 0 and "ward settings number 1" in p.stdout, p.stdout + p.stderr
        bundle = s.mnt / "Bedside" / "update"
        bundle.mkdir()
        (bundle / "bedside-0.2.0-py3-none-any.whl").write_bytes(b"the new version")
        update.write_manifest(bundle, ward.release.sign(update.KIND, update.body_for(bundle, 4, MADE)))
        assert d.channel is not None
        d.channel.keys_dir = keys_dir
        d.sim.unit.out.observers.append(d.channel.observe)

        # The genuine stick: exported, the settings applied after a press, the update copied.
        out: list[Any] = []
        t = threading.Thread(target=lambda: out.append(export(s.mnt, data, sock, keys_dir, prefix)), daemon=True)
        t.start()
        question(d)
        press(d, 0.2)
        t.join(120)
        assert out[0].returncode == 0 and "applied" in out[0].stdout, out[0].stdout + out[0].stderr
        assert "Software update 0.2.0 copied" in out[0].stdout
        assert d.sim.unit.cfg.routine_at[0].hour == 8

        # --- the attacker reads every file of the card and of the stick --------------------------
        seen = every_file(data, keys_dir, prefix, s.mnt)
        blob = b"\n".join(seen.values())
        assert len(seen) > 10
        for private in (bytes(ward.authority.key), bytes(ward.release.key)):
            assert private not in blob and private.hex().encode() not in blob
        assert b"bedside_private_key" not in blob and SECRET.encode() not in blob
        assert not any(name.name.startswith("ward-secret") for name in seen)

        # --- and forges with what he found (and keys of his own) ---------------------------------
        mine = keys.generate("ward", "the attacker's")
        settings_path = s.mnt / "Bedside" / "settings.json"
        genuine = json.loads(settings_path.read_text())
        edited = json.loads(json.dumps(genuine))
        edited["body"]["config"]["toml"] = ward_toml('"03:00"')       # prompting moved into the night
        edited["body"]["counter"] = 2
        replace_file(settings_path, json.dumps(edited).encode())
        r = export(s.mnt, data, sock, keys_dir, prefix)
        assert "was changed after it was signed" in r.stdout or "not carry a good signature" in r.stdout, r.stdout
        body = {**genuine["body"], "counter": 2, "config": {"toml": ward_toml('"03:00"'), "sha256": ""}}
        replace_file(settings_path, signed.dumps(mine.sign("settings", body)))
        r = export(s.mnt, data, sock, keys_dir, prefix)
        assert "does not trust" in r.stdout, r.stdout
        replace_file(settings_path, json.dumps(genuine).encode())      # the genuine one, replayed
        assert "already applied" in export(s.mnt, data, sock, keys_dir, prefix).stdout
        os.unlink(settings_path)

        manifest = bundle / update.MANIFEST
        doc = json.loads(manifest.read_text())
        doc["body"]["version"], doc["body"]["counter"] = "99.0", 999
        replace_file(manifest, json.dumps(doc).encode())
        r = export(s.mnt, data, sock, keys_dir, prefix)
        assert "refused and not copied" in r.stdout, r.stdout
        replace_file(manifest, signed.dumps(mine.sign(update.KIND, update.body_for(bundle, 5, MADE))))
        assert "refused and not copied" in export(s.mnt, data, sock, keys_dir, prefix).stdout

        auth_path = s.mnt / "Bedside" / auth.AUTH_FILE
        stick_doc = json.loads(auth_path.read_text())
        stick_doc["body"]["stick"] = "0" * 32                           # another stick's id
        replace_file(auth_path, json.dumps(stick_doc).encode())
        r = export(s.mnt, data, sock, keys_dir, prefix)
        assert r.returncode == 3, r.stdout
        replace_file(auth_path, signed.dumps(mine.sign(auth.STICK_KIND, auth.signed_body(MADE, "mine"))))
        r = export(s.mnt, data, sock, keys_dir, prefix)
        assert r.returncode == 3 and "does not trust" in r.stdout, r.stdout
        assert d.sim.unit.cfg.routine_at[0].hour == 8          # nothing the attacker made was applied
        time.sleep(0.2)

    recs = journal_records(data)
    refused = [x["reason"] for x in recs if x["type"] == "settings_refused"]
    assert refused == ["bad_signature", "other_ward"]
    updates = [x.get("update_refused") for x in recs if x["type"] == "export" and "update_refused" in x]
    assert updates == ["bad_signature", "unsigned"]
    sticks = [x["reason"] for x in recs if x["type"] == "export_refused"]
    assert sticks == ["bad_authorisation", "other_ward"]

    # The bedside user can write update-incoming: a forged release there, straight to the root updater.
    incoming = data / update.INCOMING
    assert (incoming / update.MANIFEST).exists()
    forged = json.loads((incoming / update.MANIFEST).read_text())
    forged["body"]["counter"] = 5
    (incoming / update.MANIFEST).write_text(json.dumps(forged))

    def record(type_: str, fields: dict[str, Any]) -> None:
        with OfflineWriter(data) as w:
            w.append(type_, fields)

    out_ = software.apply(incoming, tmp_path / "staging", keyring.load(keys_dir), "0.1.0", Releases(prefix),
                          None, record, lambda o, n: True, datetime.now(UTC))   # type: ignore[arg-type]
    assert out_.result == "refused"
    assert [x["reason"] for x in journal_records(data) if x["type"] == "software_update_refused"] == [
        "bad_signature"]
    shutil.rmtree(incoming)


def test_nothing_read_off_a_card_or_the_wire_unlocks_another_unit(tmp_path: Path, ward: Ward) -> None:
    """Unit B, of the same ward: an answer a nurse's laptop gave unit A, captured on the wire,
    and a certificate the attacker signed for a key of his own, are both refused and recorded."""
    from bedside.laptop import client, keyauth

    nurse = keys.generate("laptop", "Ada's laptop")
    ada = keyauth.LaptopKey(nurse, keys.certify(ward.authority, nurse.public, "Nurse Ada", "W7-3",
                                                datetime.now(UTC), 30))
    sniffed = ada.answer("ward7-bed11", "ab" * 16)             # unit A's id and challenge
    mine = keys.generate("laptop", "mine")
    forged = keyauth.LaptopKey(mine, keys.certify(keys.generate("ward", "my own ward"), mine.public, "Nurse Ada",
                                                  "W7-3", datetime.now(UTC), 30))
    data = tmp_path / "b"
    data.mkdir()
    cable = Cable(tmp_path).plug()
    try:
        with RunningUnit(data, cable.unit_path, datetime.now(UTC), ring=ward.ring()) as u:
            t = client.SerialTransport(str(cable.laptop_path))
            c = client.Client(t)
            for answer in (sniffed, None):
                hello = c.request("hello").data
                cert, sig = answer or forged.answer(str(hello["unit"]), str(hello["nonce"]))
                try:
                    c.request("keyunlock", cert, sig)
                    raise AssertionError("unlocked")
                except client.Refused as e:
                    assert e.code == "denied"
            t.close()
            whys = [r["why"] for r in u.records() if r["type"] == "unlock_failed"]
            assert whys == ["bad_answer", "unknown_key"]
    finally:
        cable.unplug()
