"""Ward settings by stick (docs/stick.md): a configuration and a new ward secret signed under the
stick key; checked fully by the unit, shown in one line, applied after a press with the previous
files kept, recorded; refusals change nothing and are recorded. The end-to-end tests use the real
loop and stick channel and ``bedside stick export`` onto a real FAT stick."""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime
from datetime import time as clock
from pathlib import Path
from typing import Any

import pytest

from bedside import secret
from bedside.core.config import Config
from bedside.stick import settings
from bedside.stick.auth import key_id
from bedside.unit import host
from tests.conftest import DATA, journal_records
from tests.rigs.cli import run
from tests.rigs.stick_rig import SECRET, FatStick, needs_fat, unit_data

KEY = secret.stick_key(SECRET)
ISSUED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NEW_SECRET = "a new ward secret after a staff change"
BASE = host.load(DATA / "week.toml")


def ward_toml(routine: str = '"08:00", "18:00"') -> str:
    """The ward's file: the week's unit settings with other routine times, and another unit's id
    (which no unit takes)."""
    week = (DATA / "week.toml").read_text()
    assert 'id = "ward7-bed12"' in week and 'at = ["06:00", "09:00", "19:00"]' in week
    return (week.replace('id = "ward7-bed12"', 'id = "some-other-unit"')
            .replace('at = ["06:00", "09:00", "19:00"]', f"at = [{routine}]"))


def signed(**kw: Any) -> bytes:
    return json.dumps(settings.make(KEY, kw.pop("issued", ISSUED), **kw)).encode()


def test_a_signed_configuration_is_checked_and_summed_up(tmp_path: Path) -> None:
    offer = settings.check(signed(config_text=ward_toml()), KEY, BASE, tmp_path)
    assert offer.config is not None and offer.config.routine_at == (clock(8, 0), clock(18, 0))
    # The unit keeps its own id, pins and port whatever the ward's file says.
    assert (offer.config.unit_id, offer.config.hardware, offer.config.serial) == (BASE.unit_id, BASE.hardware,
                                                                                 BASE.serial)
    assert offer.line1 == "routine times" and offer.line2 == "" and offer.ward is None
    assert offer.summary == "configuration: routine times"


def test_refusals_say_why(tmp_path: Path) -> None:
    good = json.loads(signed(config_text=ward_toml()))
    with pytest.raises(settings.SettingsRefused) as e:
        settings.check(json.dumps(good).encode(), secret.stick_key("another ward's secret"), BASE, tmp_path)
    assert e.value.reason == settings.OTHER_WARD
    tampered = {**good, "config": {**good["config"], "toml": ward_toml('"03:00"')}}
    with pytest.raises(settings.SettingsRefused) as e:
        settings.check(json.dumps(tampered).encode(), KEY, BASE, tmp_path)
    assert e.value.reason == settings.BAD_SIGNATURE
    # Signed, but not a configuration the unit can run: config check's own words.
    bad = {k: v for k, v in good.items() if k != "mac"}
    bad["config"] = {"toml": "[routine]\nat = [\"25:00\"]\n", "sha256": ""}
    bad["mac"] = settings._mac(KEY, bad)
    with pytest.raises(settings.SettingsRefused) as e:
        settings.check(json.dumps(bad).encode(), KEY, BASE, tmp_path)
    assert e.value.reason == settings.INVALID and "[routine] at" in str(e.value)
    with pytest.raises(settings.SettingsRefused) as e:
        settings.check(b"{not json", KEY, BASE, tmp_path)
    assert e.value.reason == settings.MALFORMED
    with pytest.raises(ValueError):
        settings.make(KEY, ISSUED)
    with pytest.raises(Exception, match="routine"):
        settings.make(KEY, ISSUED, config_text="[routine]\nat = [\"25:00\"]\n")


def test_apply_keeps_the_previous_files_and_an_older_stick_is_refused(tmp_path: Path) -> None:
    data = unit_data_plain(tmp_path)
    first = settings.check(signed(config_text=ward_toml()), KEY, BASE, data)
    records = settings.apply(first, data, BASE, "stick1")
    assert [t for t, _ in records] == ["config_changed"]
    assert first.config is not None
    assert records[0][1]["old"] == BASE.fingerprint() and records[0][1]["new"] == first.config.fingerprint()
    assert settings.effective(BASE, data).routine_at == (clock(8, 0), clock(18, 0))
    later = settings.check(signed(config_text=ward_toml('"07:30"'), issued=ISSUED.replace(hour=10)), KEY,
                           settings.effective(BASE, data), data)
    settings.apply(later, data, settings.effective(BASE, data))
    assert (data / "ward-config.previous.toml").read_text() == ward_toml()
    assert settings.effective(BASE, data).routine_at == (clock(7, 30),)
    with pytest.raises(settings.SettingsRefused) as e:
        settings.check(signed(config_text=ward_toml()), KEY, BASE, data)
    assert e.value.reason == settings.OLDER


def test_a_new_secret_travels_sealed_and_is_stored_as_the_unit_stores_it(tmp_path: Path) -> None:
    data = unit_data_plain(tmp_path)
    raw = signed(new_secret=NEW_SECRET)
    assert NEW_SECRET.encode() not in raw and secret.stick_key(NEW_SECRET).hex().encode() not in raw
    offer = settings.check(raw, KEY, BASE, data)
    assert offer.ward is not None and offer.ward.check(NEW_SECRET) and not offer.ward.check(SECRET)
    assert (offer.line1, offer.summary) == ("New ward secret", "a new ward secret")
    (rec,) = settings.apply(offer, data, BASE)
    assert rec == ("secret_changed", {"old_key": key_id(KEY), "new_key": key_id(secret.stick_key(NEW_SECRET)),
                                      "issued": ISSUED.isoformat(timespec="seconds")})
    stored = secret.load(data)
    assert stored is not None and stored.check(NEW_SECRET) and stored.stick_key == secret.stick_key(NEW_SECRET)
    kept = json.loads((data / "ward-secret.previous.json").read_text())
    assert kept["stick_key"] == KEY.hex()


def unit_data_plain(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    secret.set_secret(data, SECRET)
    return data


# --- end to end: the real loop, its stick channel, a real FAT stick ----------------------------

def _export_async(mnt: Path, data: Path, sock: Path, out: list[Any]) -> threading.Thread:
    from tests.rigs.stick_daemon import export

    t = threading.Thread(target=lambda: out.append(export(mnt, data, sock)), daemon=True)
    t.start()
    return t


@needs_fat
def test_a_ward_stick_changes_the_routine_and_the_secret_after_a_press(week: Path, tmp_path: Path) -> None:
    from tests.rigs.stick_daemon import Daemon, press, question

    data = unit_data(week, tmp_path)
    sock = tmp_path / "stick.sock"
    (tmp_path / "secret.txt").write_text(SECRET)
    (tmp_path / "new-secret.txt").write_text(NEW_SECRET)
    (tmp_path / "ward.toml").write_text(ward_toml())
    with FatStick(tmp_path / "stick") as s, Daemon(data, sock, "2026-12-01T11:30") as d:
        s.mount()
        p = run("stick", "prepare", str(s.mnt), "--secret-file", str(tmp_path / "secret.txt"), "--config",
                str(tmp_path / "ward.toml"), "--new-secret-file", str(tmp_path / "new-secret.txt"))
        assert p.returncode == 0 and "carries a configuration and a new ward secret" in p.stdout, p.stdout + p.stderr
        assert d.channel is not None
        d.sim.unit.out.observers.append(d.channel.observe)
        before = d.sim.unit.cfg
        out: list[Any] = []
        t = _export_async(s.mnt, data, sock, out)
        q = question(d)
        assert (q.line1, q.line2) == ("routine times", "and a new ward secret")
        press(d, 0.2)
        t.join(60)
        r = out[0]
        assert r.returncode == 0, r.stdout + r.stderr
        assert "Ward settings on the stick: applied: configuration: routine times; a new ward secret" in r.stdout
        # Carried on with the new routine, without a restart; still the same unit.
        now = d.sim.unit.cfg
        assert now.routine_at == (clock(8, 0), clock(18, 0)) and now.unit_id == before.unit_id
        assert d.thread.is_alive()
    recs = {x["type"]: x for x in journal_records(data) if x["type"] in ("config_changed", "secret_changed")}
    assert recs["config_changed"]["old"] == before.fingerprint() and recs["config_changed"]["new"] == now.fingerprint()
    assert recs["secret_changed"]["new_key"] == key_id(secret.stick_key(NEW_SECRET))
    stored = secret.load(data)
    assert stored is not None and stored.check(NEW_SECRET)
    assert (data / "ward-secret.previous.json").exists() and (data / "ward-config.toml").exists()
    assert hashlib.sha256((data / "ward-config.toml").read_bytes()).hexdigest() == \
        hashlib.sha256(ward_toml().encode()).hexdigest()


@needs_fat
def test_a_cancelled_or_tampered_change_changes_nothing_and_is_recorded(week: Path, tmp_path: Path) -> None:
    from tests.rigs.stick_daemon import Daemon, press, question

    data = unit_data(week, tmp_path)
    sock = tmp_path / "stick.sock"
    (tmp_path / "secret.txt").write_text(SECRET)
    (tmp_path / "ward.toml").write_text(ward_toml())
    with FatStick(tmp_path / "stick") as s, Daemon(data, sock, "2026-12-01T11:30") as d:
        s.mount()
        assert run("stick", "prepare", str(s.mnt), "--secret-file", str(tmp_path / "secret.txt"), "--config",
                   str(tmp_path / "ward.toml")).returncode == 0
        assert d.channel is not None
        d.sim.unit.out.observers.append(d.channel.observe)
        before = d.sim.unit.cfg
        out: list[Any] = []
        t = _export_async(s.mnt, data, sock, out)
        question(d)
        press(d, 2.6)                       # a long press: cancelled
        t.join(60)
        assert out[0].returncode == 0 and "was cancelled at the unit" in out[0].stdout, out[0].stdout
        # Someone edits the file on the stick: the signature no longer holds.
        path = s.mnt / "Bedside" / "settings.json"
        body = json.loads(path.read_text())
        body["config"]["toml"] = body["config"]["toml"].replace("08:00", "03:00")
        path.unlink()
        path.write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
        out.clear()
        _export_async(s.mnt, data, sock, out).join(60)
        assert "changed after they were signed" in out[0].stdout, out[0].stdout
        assert d.sim.unit.cfg == before
    refused = [x for x in journal_records(data) if x["type"] == "settings_refused"]
    assert [x["reason"] for x in refused] == [settings.NOT_CONFIRMED, settings.BAD_SIGNATURE]
    assert not (data / "ward-config.toml").exists() and not (data / settings.STATE_FILE).exists()
    assert secret.load(data) is not None and secret.load(data).check(SECRET)  # type: ignore[union-attr]


def test_effective_without_ward_settings_is_the_units_own(tmp_path: Path) -> None:
    assert settings.effective(Config(), tmp_path) == Config()
