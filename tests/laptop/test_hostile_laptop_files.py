"""The laptop's own inputs (its FHIR settings, the ward's bedside.toml given to ``fhir`` and
``ward``, the configuration a ward stick is made from, the ward authority's ledger, a passphrase
file, a token or key file) are read with a bound, never waited on, and refused by name.

Before, each was read whole (``/dev/zero`` was read until memory ran out), a fifo in its place
was waited on for ever, and TOML or JSON nested a few thousand deep was a traceback.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from bedside.cli import common
from bedside.laptop import fhir_post, fhir_settings

DEPTH = 100_000
KINDS = ["nested-toml", "nested-json", "huge", "dev-zero", "fifo", "binary", "directory"]


def bad(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / kind
    if kind == "dev-zero":
        return Path("/dev/zero")
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path.write_bytes({"nested-toml": ("a = " + "[" * DEPTH + "]" * DEPTH + "\n").encode(),
                          "nested-json": ("[" * DEPTH + "]" * DEPTH).encode(),
                          "huge": b"#" * (2 << 20) + b"\n",
                          "binary": bytes(range(256)) * 64}[kind])
    return path


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", KINDS)
def test_the_laptops_fhir_settings(tmp_path: Path, kind: str) -> None:
    path = bad(tmp_path, kind)
    if kind == "fifo":            # (read without waiting: an empty file, which is valid TOML)
        assert fhir_settings.load(path) == fhir_settings.LaptopSettings()
        return
    with pytest.raises(fhir_settings.SettingsError) as e:
        fhir_settings.load(path)
    assert str(path) in str(e.value) and len(str(e.value)) < 500


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", KINDS)
def test_the_wards_config_given_to_fhir(tmp_path: Path, kind: str) -> None:
    from bedside.cli import ward

    path = bad(tmp_path, kind)
    args = argparse.Namespace(config=str(path), settings=None, identifier_system=None, per_session=None,
                              max_entries=None, token_file=None, post=None)
    if kind == "fifo":
        ward._fhir_settings(args)
        return
    with pytest.raises(common.UserError, match="the ward's configuration") as e:
        ward._fhir_settings(args)
    assert len(str(e.value)) < 500


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["huge", "dev-zero", "fifo", "binary", "directory"])
def test_the_configuration_a_stick_is_made_from(tmp_path: Path, kind: str) -> None:
    from bedside.cli import stick

    path = bad(tmp_path, kind)
    args = argparse.Namespace(ward_config=str(path))
    if kind == "fifo":
        assert stick._ward_config_text(args) == ""
        return
    with pytest.raises(common.UserError, match="cannot read the configuration"):
        stick._ward_config_text(args)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["nested-json", "huge", "fifo", "binary", "directory", "not-a-ledger"])
def test_the_ward_authoritys_ledger(tmp_path: Path, kind: str) -> None:
    from bedside.cli import stick

    key = tmp_path / "ward.key"
    ledger = stick.ledger_path(str(key))
    if kind == "not-a-ledger":
        ledger.write_text('{"counter": "x", "revoked": {"sticks": [{}]}}')
    else:
        made = bad(tmp_path, kind)
        made.rename(ledger)
    args = argparse.Namespace(key=str(key), ward_config=None, revoke_cert=[], revoke_laptop_key=[],
                              revoke_stick=["s1"], recovery_from=None, new_secret_file=None)
    before = ledger.stat().st_mtime_ns
    with pytest.raises(common.UserError, match=r"the ward.s ledger .* cannot be read .*nothing was written"):
        stick._signed_settings(args, None)
    assert ledger.stat().st_mtime_ns == before


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["huge", "dev-zero", "fifo", "binary", "directory"])
def test_a_passphrase_file(tmp_path: Path, kind: str) -> None:
    from bedside.cli import trust

    path = bad(tmp_path, kind)
    if kind == "fifo":
        assert trust.passphrase(str(path), "") == ""
        return
    with pytest.raises(common.UserError, match="cannot be read"):
        trust.passphrase(str(path), "")


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["huge", "dev-zero", "fifo", "directory"])
def test_a_token_or_key_file_for_the_fhir_post(tmp_path: Path, kind: str) -> None:
    path = bad(tmp_path, kind)
    with pytest.raises(fhir_post.PostError, match="token file") as e:
        fhir_post._read_secret(path, "token")
    if kind in ("huge", "dev-zero"):
        assert "larger than any token" in str(e.value)


