"""The signing library: real Ed25519 signatures through libsodium, checked in a child process."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.trust import freshness, keyring, keys, signed
from bedside.trust.signed import Untrusted
from tests.rigs.trust_rig import Ward

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def test_a_signature_verifies_and_any_change_breaks_it(ward: Ward) -> None:
    ring = keyring.load(ward.keys_dir)
    assert ring is not None
    doc = ward.authority.sign("settings", {"counter": 1, "issued": NOW.isoformat()})
    again = signed.parse(signed.dumps(doc), "the settings")
    assert ring.verify(again, "settings", "the settings") == doc.body
    changed = signed.Document("settings", doc.key, {**doc.body, "counter": 2}, doc.sig)
    with pytest.raises(Untrusted) as e:
        ring.verify(changed, "settings", "the settings")
    assert e.value.reason == "bad_signature"


def test_a_role_signs_only_its_own_kinds(ward: Ward) -> None:
    ring = keyring.load(ward.keys_dir)
    assert ring is not None
    release_as_settings = ward.release.sign("settings", {"counter": 1})
    with pytest.raises(Untrusted) as e:
        ring.verify(release_as_settings, "settings", "the settings")
    assert e.value.reason == "wrong_kind"
    ward_as_release = ward.authority.sign("release", {"counter": 1})
    with pytest.raises(Untrusted) as e:
        ring.verify(ward_as_release, "release", "the update")
    assert e.value.reason == "wrong_kind"
    # A signature for one kind is no signature for another, even by the right key.
    stick = ward.authority.sign("stick", {"counter": 1})
    as_settings = signed.Document("settings", stick.key, stick.body, stick.sig)
    with pytest.raises(Untrusted) as e:
        ring.verify(as_settings, "settings", "the settings")
    assert e.value.reason == "bad_signature"
    stranger = keys.generate("ward", "another ward").sign("settings", {"counter": 1})
    with pytest.raises(Untrusted) as e:
        ring.verify(stranger, "settings", "the settings")
    assert e.value.reason == "unknown_key"


def test_the_verifier_runs_in_a_child_and_batches(ward: Ward) -> None:
    a = ward.authority.sign("stick", {"x": 1})
    b = ward.authority.sign("stick", {"x": 2})
    results = signed.verify([(ward.authority.public, a.message(), a.sig), (ward.authority.public, b.message(), a.sig),
                             (b"\x00" * 32, a.message(), a.sig)])
    assert results == [True, False, False]


def test_a_keyring_the_daemon_could_write_is_refused(ward: Ward) -> None:
    os.chmod(ward.keys_dir / keyring.FILE_NAME, 0o666)
    with pytest.raises(keyring.KeyringError, match="may be written by others"):
        keyring.load(ward.keys_dir)
    os.chmod(ward.keys_dir / keyring.FILE_NAME, 0o644)
    with pytest.raises(keyring.KeyringError, match="not root"):
        keyring.load(ward.keys_dir, owner=12345)
    os.chmod(ward.keys_dir, 0o777)
    with pytest.raises(keyring.KeyringError, match="may be written by others"):
        keyring.load(ward.keys_dir)


def test_no_keyring_is_a_unit_not_yet_migrated(tmp_path: Path) -> None:
    assert keyring.load(tmp_path) is None


def test_a_private_key_opens_only_with_its_passphrase(tmp_path: Path, cheap_argon: None) -> None:
    key = keys.generate("ward", "Ward 7 authority")
    priv, pub = keys.save(key, tmp_path, "ward-authority", "correct horse battery")
    assert oct(priv.stat().st_mode & 0o777) == "0o600"
    text = priv.read_text()
    assert bytes(key.key).hex() not in text           # the seed is sealed
    assert keys.load(priv, "correct horse battery", "ward").public == key.public
    with pytest.raises(keys.KeyFileError, match="passphrase does not open"):
        keys.load(priv, "wrong horse battery")
    with pytest.raises(keys.KeyFileError, match="this needs the release key"):
        keys.load(priv, "correct horse battery", "release")
    assert keyring.read_public_key(pub, "ward").public == key.public
    with pytest.raises(keys.KeyFileError, match="never written over"):
        keys.save(key, tmp_path, "ward-authority", "correct horse battery")
    body = json.loads(text)
    assert body["kdf"]["name"] == "argon2id"


def test_counters_refuse_rollback_and_freeze_and_take_a_recovery() -> None:
    def body(counter: int, issued: datetime = NOW, **more: object) -> dict[str, object]:
        return {"counter": counter, "issued": issued.isoformat(), **more}

    assert freshness.check("s", body(6), 5, NOW) == 6
    for older in (5, 4):
        with pytest.raises(Untrusted) as e:
            freshness.check("s", body(older), 5, NOW)
        assert e.value.reason == "older"
    with pytest.raises(Untrusted) as e:
        freshness.check("s", body(5 + freshness.MAX_STEP + 1), 5, NOW)
    assert e.value.reason == "implausible"
    with pytest.raises(Untrusted) as e:
        freshness.check("s", body(6, datetime(2099, 1, 1, tzinfo=UTC)), 5, NOW)
    assert e.value.reason == "implausible"
    assert freshness.check("s", body(6, NOW + timedelta(days=29)), 5, NOW) == 6
    # A unit frozen at 10**9 (a genuine slip): the recovery from exactly there is taken...
    assert freshness.check("s", body(7, recovery_from=10**9), 10**9, NOW) == 7
    # ...and once applied it cannot be replayed to roll the unit back.
    with pytest.raises(Untrusted) as e:
        freshness.check("s", body(7, recovery_from=10**9), 7, NOW)
    assert e.value.reason == "older"
    with pytest.raises(Untrusted):
        freshness.check("s", {"issued": NOW.isoformat()}, 0, NOW)


def test_the_units_trust_code_never_loads_libsodium_into_its_process(ward: Ward) -> None:
    """The daemon's modules that check signatures import no PyNaCl: libsodium and cffi stay in
    the short-lived child (docs/performance.md, the memory goal). A fresh process imports them
    and verifies a document, then says what it has loaded."""
    import subprocess
    import sys

    doc = ward.authority.sign("settings", {"counter": 1})
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import bedside.link.on_loop, bedside.link.port, bedside.link.certified, bedside.stick.channel\n"
        "import bedside.stick.settings, bedside.stick.update, bedside.stick.export\n"
        "from bedside.trust import keyring, signed\n"
        f"ring = keyring.load(Path({str(ward.keys_dir)!r}))\n"
        f"doc = signed.parse(bytes.fromhex({signed.dumps(doc).hex()!r}), 'x')\n"
        "ring.verify(doc, 'settings', 'x')\n"
        "maps = open('/proc/self/maps').read()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('nacl', '_cffi'))), 'libsodium' in maps)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[] False"


def test_the_ward_makes_and_certifies_keys_with_the_bedside_command(tmp_path: Path) -> None:
    """``bedside trust new`` and ``certify`` as a ward's laptop runs them; the certificate holds
    against the ward's public key and names the nurse, the laptop and the expiry."""
    from tests.rigs.cli import run

    (tmp_path / "pass").write_text("a long passphrase here\n")
    for role in ("ward", "release", "laptop"):
        r = run("trust", "new", role, "--name", f"the {role} key", "--out", str(tmp_path), "--passphrase-file",
                str(tmp_path / "pass"))
        assert r.returncode == 0 and "Key id" in r.stdout, r.stdout + r.stderr
    r = run("trust", "certify", str(tmp_path / "laptop.pub"), "--key", str(tmp_path / "ward.key"), "--nurse",
            "Nurse Ada", "--laptop", "W7-3", "--days", "30", "--out", str(tmp_path / "laptop.cert"),
            "--passphrase-file", str(tmp_path / "pass"))
    assert r.returncode == 0, r.stdout + r.stderr
    wrong = run("trust", "certify", str(tmp_path / "laptop.pub"), "--key", str(tmp_path / "release.key"), "--nurse",
                "x", "--laptop", "y", "--out", str(tmp_path / "x.cert"), "--passphrase-file", str(tmp_path / "pass"))
    assert wrong.returncode == 2 and "needs the ward key" in wrong.stderr
    keys_dir = tmp_path / "keys"
    keyring.pin(keys_dir, "Ward 7", [keyring.read_public_key(tmp_path / "ward.pub", "ward"),
                                     keyring.read_public_key(tmp_path / "release.pub", "release")])
    ring = keyring.load(keys_dir)
    assert ring is not None
    cert = signed.parse((tmp_path / "laptop.cert").read_bytes(), "the certificate")
    body = ring.verify(cert, "laptop", "the certificate")
    assert (body["nurse"], body["laptop"]) == ("Nurse Ada", "W7-3")
    assert body["public"] == keyring.read_public_key(tmp_path / "laptop.pub", "laptop").public.hex()
    expires = datetime.fromisoformat(body["expires"]) - datetime.fromisoformat(body["issued"])
    assert expires == timedelta(days=30)
    shown = run("trust", "show", "--keys-dir", str(keys_dir))
    assert shown.returncode == 0 and ring.of("ward")[0].id in shown.stdout
    # A unit with keys pinned takes no ward secret: it would only be a key for forging sticks on its card.
    (tmp_path / "secret").write_text("an old ward secret\n")
    (tmp_path / "data").mkdir()
    refused = run("secret", "set", "--data", str(tmp_path / "data"), "--secret-file", str(tmp_path / "secret"),
                  "--keys-dir", str(keys_dir))
    assert refused.returncode == 2 and "keys pinned" in refused.stderr
    assert not (tmp_path / "data" / "ward-secret.json").exists()


_NO_WRITE_EXECUTE = """
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(65, 1, 0, 0, 0) != 0:   # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit(77)
os.execv(sys.argv[1], sys.argv[1:])
"""


def test_the_verifying_child_runs_where_memory_may_not_be_written_and_executed(ward: Ward) -> None:
    """bedside.service and the stick service set MemoryDenyWriteExecute=yes, and the verifying
    child inherits it: libsodium through cffi must not need writable executable memory. The
    kernel's own form of the rule (prctl PR_SET_MDWE, Linux 6.3) is set before the child starts."""
    import subprocess
    import sys

    doc = ward.authority.sign("settings", {"counter": 1})
    work = f"{ward.authority.public.hex()}:{doc.message().hex()}:{doc.sig.hex()}\n"
    r = subprocess.run([sys.executable, "-c", _NO_WRITE_EXECUTE, sys.executable, "-I", "-c", signed._CHILD],
                       input=work.encode(), capture_output=True, timeout=60)
    if r.returncode == 77:
        pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3 and later)")
    assert (r.returncode, r.stdout) == (0, b"1\n"), r.stderr
