"""The ward's files in the data directory are read with a bound and never waited on: a fifo
or a huge file in their place is a named error at once, not a unit that never starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bedside.core import config
from bedside.stick import settings


@pytest.mark.timeout(20)
def test_a_fifo_in_place_of_the_ward_config_is_not_waited_on(tmp_path: Path) -> None:
    """Read without blocking, a fifo gives nothing at once (an empty file): no wait for a writer."""
    os.mkfifo(tmp_path / settings.CONFIG_FILE)
    assert settings.effective(config.Config(), tmp_path) is not None


def test_a_huge_ward_config_is_an_error(tmp_path: Path) -> None:
    (tmp_path / settings.CONFIG_FILE).write_bytes(b"#" * (2 << 20))
    with pytest.raises(config.ConfigError, match="larger than"):
        settings.effective(config.Config(), tmp_path)


@pytest.mark.parametrize("nested", ["a=" + "[" * 100_000 + "]" * 100_000, "a=" + "{b=" * 50_000 + "1" + "}" * 50_000])
def test_a_deeply_nested_ward_config_is_an_error_not_a_crash(tmp_path: Path, nested: str) -> None:
    """Within the size limit, TOML nested thousands deep (tomllib recurses: a RecursionError
    before, so the daemon stopped at every start) is a ConfigError: the unit runs on its own."""
    (tmp_path / settings.CONFIG_FILE).write_text(nested)
    with pytest.raises(config.ConfigError, match="nested too deeply"):
        settings.effective(config.Config(), tmp_path)
    with pytest.raises(settings.SettingsRefused, match="nested too deeply"):
        settings._offered_config({"config": {"toml": nested}}, config.Config())


@pytest.mark.timeout(20)
def test_the_ward_state_file_as_a_fifo_or_deeply_nested(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / settings.STATE_FILE)
    assert settings._issued_before(tmp_path) is None
    os.unlink(tmp_path / settings.STATE_FILE)
    (tmp_path / settings.STATE_FILE).write_text("[" * 100000)
    assert settings._issued_before(tmp_path) is None


@pytest.mark.timeout(20)
@pytest.mark.parametrize("damage", ["fifo", "nested", "huge", "not json"])
def test_the_applied_settings_file_damaged_reads_as_none_applied(tmp_path: Path, damage: str) -> None:
    """``ward-settings.json`` (the counter and revocation list the daemon checks against) read
    with a bound, without waiting on a fifo and without a crash on nesting too deep."""
    from bedside.trust import ward_state

    path = tmp_path / ward_state.STATE_FILE
    if damage == "fifo":
        os.mkfifo(path)
    else:
        path.write_text({"nested": "[" * 100_000, "huge": " " * (2 << 20) + "{}", "not json": "{,"}[damage])
    assert ward_state.read(tmp_path) == {}
    assert ward_state.trusted_counter(tmp_path) == 0 and ward_state.revoked(tmp_path)["sticks"] == frozenset()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("damage", ["fifo", "nested", "huge"])
def test_key_files_damaged_are_named_errors(tmp_path: Path, damage: str) -> None:
    from bedside.trust import keyring, keys

    path = tmp_path / "ward.pub"
    if damage == "fifo":
        os.mkfifo(path)
    else:
        path.write_text({"nested": "[" * 100_000, "huge": " " * (2 << 20) + "{}"}[damage])
    with pytest.raises(keyring.KeyringError, match="cannot be read as a public key"):
        keyring.read_public_key(path, "ward")
    with pytest.raises(keys.KeyFileError, match="cannot be read as a private key"):
        keys.load(path, "passphrase")


def test_a_configuration_is_read_up_to_256_kib(tmp_path: Path) -> None:
    """tomllib spends about a second and 31 MiB on a MiB of small inline tables: a configuration
    is read up to ``durable.CONFIG_FILE`` (256 KiB, 30 times the annotated one), the unit's own
    and the ward's alike."""
    from bedside import durable
    from bedside.unit import host
    from tests.conftest import ROOT

    assert (ROOT / "config" / "bedside.toml").stat().st_size * 20 < durable.CONFIG_FILE
    over = "#" * durable.CONFIG_FILE + "\n"
    (tmp_path / settings.CONFIG_FILE).write_text(over)
    with pytest.raises(config.ConfigError, match="larger than 256 KiB"):
        settings.effective(config.Config(), tmp_path)
    (tmp_path / "bedside.toml").write_text(over)
    with pytest.raises(config.ConfigError, match="larger than 256 KiB"):
        host.load(tmp_path / "bedside.toml")
    (tmp_path / "bedside.toml").write_text(over[2:])
    assert isinstance(host.load(tmp_path / "bedside.toml"), config.Config)       # just within: read
