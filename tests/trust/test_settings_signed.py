"""Ward settings signed by the ward authority (docs/stick.md, docs/security.md): counters keep
their order, an implausible one cannot freeze a unit, only the ward's recovery unfreezes it,
and the revocation list travels whole. Also defect 3 of issue 21: a stick carries nothing from
which a secret could be guessed offline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bedside.stick import auth, settings
from bedside.trust import keys, signed
from bedside.unit import host
from tests.conftest import DATA
from tests.rigs.trust_rig import Ward

BASE = host.load(DATA / "week.toml")
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def issue(ward: Ward, counter: int, *, routine: str = '"08:00", "18:00"', issued: datetime = NOW,
          revoked: dict[str, list[str]] | None = None, recovery_from: int | None = None,
          signer: keys.PrivateKey | None = None) -> bytes:
    toml = (DATA / "week.toml").read_text().replace('at = ["06:00", "09:00", "19:00"]', f"at = [{routine}]")
    body = settings.body_signed(counter, issued, config_text=toml, revoked=revoked, recovery_from=recovery_from)
    return signed.dumps((signer or ward.authority).sign(settings.KIND, body))


def apply(raw: bytes, ward: Ward, data: Path) -> settings.Offer:
    offer = settings.check_signed(raw, ward.ring(), BASE, data, NOW)
    settings.apply(offer, data, BASE)
    return offer


def refused(raw: bytes, ward: Ward, data: Path) -> str:
    with pytest.raises(settings.SettingsRefused) as e:
        settings.check_signed(raw, ward.ring(), BASE, data, NOW)
    return e.value.reason


def test_counters_order_settings_and_a_recovery_unfreezes_a_unit(ward: Ward, tmp_path: Path) -> None:
    data = tmp_path
    offer = apply(issue(ward, 1), ward, data)
    assert offer.counter == 1 and offer.line1 == "routine times"
    assert settings.trusted_counter(data) == 1
    assert refused(issue(ward, 1), ward, data) == "older"
    assert refused(issue(ward, 1002), ward, data) == "implausible"       # more than 1000 ahead
    assert refused(issue(ward, 2, issued=datetime(2099, 1, 1, tzinfo=UTC)), ward, data) == "implausible"
    apply(issue(ward, 2, routine='"07:00"'), ward, data)
    assert refused(issue(ward, 1), ward, data) == "older"               # a replayed older stick
    # A slip froze the unit at 900 (signed, within the step): the next genuine settings, 3, look old...
    apply(issue(ward, 900), ward, data)
    assert refused(issue(ward, 3), ward, data) == "older"
    # ...until the ward authority signs a recovery from exactly 900; anyone else's is no recovery.
    stranger = keys.generate("ward", "not ours")
    assert refused(issue(ward, 3, recovery_from=900, signer=stranger), ward, data) == "other_ward"
    assert refused(issue(ward, 3, recovery_from=899), ward, data) == "older"
    recovery = issue(ward, 3, recovery_from=900)
    offer = apply(recovery, ward, data)
    assert offer.recovery_from == 900 and settings.trusted_counter(data) == 3
    assert refused(recovery, ward, data) == "older"                     # spent once applied
    assert settings.already_signed(recovery, data)


def test_the_revocation_list_travels_whole_and_is_recorded(ward: Ward, tmp_path: Path) -> None:
    offer = settings.check_signed(issue(ward, 1, revoked={"certs": ["c1"], "sticks": ["s1"]}), ward.ring(), BASE,
                                  tmp_path, NOW)
    assert offer.line2 == "2 revoked"
    records = settings.apply(offer, tmp_path, BASE, "stick-9")
    applied = dict(records)["settings_applied"]
    assert (applied["counter"], applied["certs"], applied["sticks"], applied["stick"]) == (1, ["c1"], ["s1"],
                                                                                          "stick-9")
    assert settings.revoked(tmp_path)["sticks"] == frozenset({"s1"})
    settings.apply(settings.check_signed(issue(ward, 2, revoked={"certs": ["c1", "c2"]}), ward.ring(), BASE,
                                         tmp_path, NOW), tmp_path, BASE)
    assert settings.revoked(tmp_path) == {"certs": frozenset({"c1", "c2"}), "laptop_keys": frozenset(),
                                          "sticks": frozenset()}


def test_an_authorised_stick_carries_nothing_to_guess_a_secret_from(ward: Ward, tmp_path: Path,
                                                                      cheap_argon: None) -> None:
    """The authorisation and the settings are public data with a signature: the same body signed
    by the same key is the same bytes whatever passphrase seals the key on the laptop (Ed25519
    signs deterministically), so no byte on a stick depends on a secret anyone knows; and no
    new secret travels, sealed or not."""
    a = keys.load(keys.save(ward.authority, tmp_path / "one", "ward", "first passphrase")[0], "first passphrase")
    b = keys.load(keys.save(ward.authority, tmp_path / "two", "ward", "second passphrase!")[0], "second passphrase!")
    body = auth.signed_body(NOW, "stick 1", "Ward 7", stick_id="ab" * 16)
    assert signed.dumps(a.sign(auth.STICK_KIND, body)) == signed.dumps(b.sign(auth.STICK_KIND, body))
    doc = json.loads(issue(ward, 1))
    assert set(doc["body"]) == {"counter", "issued", "config", "revoked"}
    assert set(json.loads(signed.dumps(a.sign(auth.STICK_KIND, body)))) == {"bedside_signed", "kind", "key", "body",
                                                                             "sig"}


def test_a_revoked_stick_gets_nothing(ward: Ward, tmp_path: Path) -> None:
    from bedside.stick.files import StickProblem

    body = auth.signed_body(NOW - timedelta(days=3), "lost stick", "Ward 7")
    raw = signed.dumps(ward.authority.sign(auth.STICK_KIND, body))
    assert auth.check_signed(raw, ward.ring()).stick == body["stick"]
    with pytest.raises(StickProblem) as e:
        auth.check_signed(raw, ward.ring(), frozenset({body["stick"]}))
    assert e.value.reason == "revoked" and e.value.refused
