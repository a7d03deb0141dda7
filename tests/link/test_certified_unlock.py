"""The serial link on a unit with pinned keys: a nurse's laptop key certified by the ward
authority unlocks it; nothing else does (docs/security.md, docs/serial.md "Security").

A real unit on a pty pair, real Ed25519 keys and certificates, the laptop's own code
answering; every refused try is counted and recorded with why."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bedside.core import config
from bedside.laptop import client, keyauth, pull
from bedside.link import access, certified
from bedside.trust import keys
from tests.rigs.serial_rig import Cable, Laptop, RunningUnit, wait_for
from tests.rigs.trust_rig import Ward

START = datetime(2026, 11, 24, 9, 30, tzinfo=config.Config().tz)


@pytest.fixture
def cable(tmp_path: Path):  # type: ignore[no-untyped-def]
    c = Cable(tmp_path).plug()
    yield c
    c.unplug()


def laptop_key(ward: Ward, nurse: str = "Nurse Ada", issued: datetime = START - timedelta(days=1),
               days: int = 180, authority: keys.PrivateKey | None = None) -> keyauth.LaptopKey:
    key = keys.generate("laptop", f"laptop of {nurse}")
    cert = keys.certify(authority or ward.authority, key.public, nurse, "W7-laptop-3", issued, days)
    return keyauth.LaptopKey(key, cert)


def attempt(c: client.Client, lk: keyauth.LaptopKey, unit: str | None = None) -> Any:
    hello = c.request("hello").data
    cert, sig = lk.answer(unit or str(hello["unit"]), str(hello["nonce"]))
    return c.request("keyunlock", cert, sig)


def failures(u: RunningUnit) -> list[dict[str, Any]]:
    return [r for r in u.records() if r["type"] == "unlock_failed"]


def test_a_certified_laptop_unlocks_and_pulls_and_nothing_else_unlocks(tmp_path: Path, cable: Cable,
                                                                       ward: Ward) -> None:
    data = tmp_path / "unit"
    data.mkdir()
    with RunningUnit(data, cable.unit_path, START, ring=ward.ring()) as u:
        t = client.SerialTransport(str(cable.laptop_path))
        c = client.Client(t)
        hello = c.request("hello").data
        assert hello["keys"] is True and hello["secret"] is False and "kdf" not in hello
        ada = laptop_key(ward)
        # Refused, each for its reason: another unit's answer, another ward's certificate, a
        # certificate signed by the release key, an expired one (four: the fifth would lock the port).
        cases: list[tuple[str, keyauth.LaptopKey, str | None]] = [
            ("bad_answer", ada, "ward7-bed99"),
            ("unknown_key", laptop_key(ward, authority=keys.generate("ward", "another ward")), None),
            ("bad_certificate", laptop_key(ward, authority=keys.PrivateKey("ward", "", ward.release.key)), None),
            ("expired", laptop_key(ward, issued=START - timedelta(days=200), days=100), None),
        ]
        for why, lk, unit in cases:
            with pytest.raises(client.Refused) as e:
                attempt(c, lk, unit)
            assert e.value.code == "denied" and e.value.data["why"] == why
            assert failures(u)[-1]["why"] == why and failures(u)[-1]["via"] == "laptop"
        with pytest.raises(client.Refused) as e:
            c.request("get", "1", "10")
        assert e.value.code == "locked"
        # The certified key: unlocked, the record names the nurse and the certificate.
        hello = c.request("hello").data
        cert, sig = ada.answer(str(hello["unit"]), str(hello["nonce"]))
        c.request("keyunlock", cert, sig)
        assert c.request("get", "1", "2").status == "batch"
        with pytest.raises(client.Refused) as e:
            c.request("keyunlock", cert, sig)          # the same answer again: its challenge is spent
        assert e.value.code == "stale"
        unlock = [r for r in u.records() if r["type"] == "unlock"][-1]
        assert (unlock["via"], unlock["nurse"], unlock["cert"]) == ("laptop", "Nurse Ada", ada.cert_id)
        # New revocations applied from a ward stick: whoever is unlocked must unlock again, and is checked.
        u.on_loop(lambda now: u.sim.unit.reconfigure(None, None, now, True))
        with pytest.raises(client.Refused) as e:
            c.request("get", "1", "2")
        assert e.value.code == "locked"
        assert [r for r in u.records() if r["type"] == "lock"][-1]["reason"] == "revoked"
        t.close()

        # bedside pull's own path, with the laptop key; and without one it says what to give.
        out = tmp_path / "pulled"
        got = pull.pull(lambda: client.SerialTransport(str(cable.laptop_path)), out,
                        lambda unit, n: "never asked", laptop=ada)
        assert got.head[0] >= 1
        with pytest.raises(pull.PullError, match="--laptop-key"):
            pull.pull(lambda: client.SerialTransport(str(cable.laptop_path)), tmp_path / "p2",
                      lambda unit, n: "never asked")
        # At a terminal there is no secret to type.
        term = Laptop(cable.laptop_path)
        assert "certified laptop key" in term.say("unlock")
        assert "certified laptop key unlocks it" in term.say("status")
        term.close()
        t = client.SerialTransport(str(cable.laptop_path))
        with pytest.raises(client.Refused) as e:        # the ward secret's verb: there is no secret here
            client.Client(t).request("unlock", "00" * 32)
        assert "certified laptop key" in str(e.value)
        t.close()


def test_revoked_laptops_are_refused_and_five_refusals_lock_the_port(tmp_path: Path, cable: Cable,
                                                                     ward: Ward) -> None:
    data = tmp_path / "unit"
    data.mkdir()
    leaver, stolen, current = laptop_key(ward, "Nurse Leaver"), laptop_key(ward, "Nurse Lost"), laptop_key(ward)
    # The ward's settings the unit applied last revoke the leaver's certificate and the stolen laptop's key.
    (data / "ward-settings.json").write_text(json.dumps({
        "issued": START.isoformat(), "counter": 3,
        "revoked": {"certs": [leaver.cert_id], "laptop_keys": [stolen.key.id], "sticks": []}}))
    with RunningUnit(data, cable.unit_path, START, ring=ward.ring()) as u:
        t = client.SerialTransport(str(cable.laptop_path))
        c = client.Client(t)
        for lk in (leaver, stolen):
            with pytest.raises(client.Refused) as e:
                attempt(c, lk)
            assert e.value.data["why"] == "revoked"
        assert [(r["why"], r["nurse"]) for r in failures(u)] == [("revoked", "Nurse Leaver"),
                                                                  ("revoked", "Nurse Lost")]
        for _ in range(access.MAX_FAILURES - 2):
            with pytest.raises(client.Refused):
                attempt(c, leaver)
        wait_for(lambda: any(r["type"] == "lockout" for r in u.records()), what="the lockout record")
        # Locked out: even the current laptop is refused, unchecked.
        with pytest.raises(client.Refused) as e:
            attempt(c, current)
        assert e.value.code == "lockout"
        t.close()


def test_the_judge_on_its_own(ward: Ward) -> None:
    """The rules without a unit: the signature over this unit and this challenge, nothing less."""
    lk = laptop_key(ward)
    cert, sig = lk.answer("ward7-bed12", "ab" * 16)
    ring = ward.ring()
    now = START
    assert certified.judge(ring, cert, sig, "ward7-bed12", "ab" * 16, now, {}).ok
    assert certified.judge(ring, cert, sig, "ward7-bed12", "cd" * 16, now, {}).why == "bad_answer"
    assert certified.judge(None, cert, sig, "ward7-bed12", "ab" * 16, now, {}).why == "no_keys"
    early = laptop_key(ward, issued=START + timedelta(days=60))
    e_cert, e_sig = early.answer("ward7-bed12", "ab" * 16)
    assert certified.judge(ring, e_cert, e_sig, "ward7-bed12", "ab" * 16, now, {}).why == "not_yet_valid"
    assert certified.judge(ring, "!!!", sig, "ward7-bed12", "ab" * 16, now, {}).why == "bad_certificate"
    assert certified.judge(ring, cert, "00", "ward7-bed12", "ab" * 16, now, {}).why == "bad_certificate"
    # A certificate whose nurse was changed after it was signed.
    doc = certified.decode_cert(cert)
    doc.body["nurse"] = "Nurse Mallory"
    forged = certified.encode_cert(doc)
    assert certified.judge(ring, forged, sig, "ward7-bed12", "ab" * 16, now, {}).why == "bad_certificate"
