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
from typing import Any

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




def _copy_with(tmp_path: Path, n: int = 3) -> tuple[Any, list[dict[str, Any]]]:
    """A laptop's copy of a unit's journal holding ``n`` chained records."""
    from bedside.journal import chain
    from bedside.laptop import pull

    recs, prev = [], chain.GENESIS
    for seq in range(1, n + 1):
        rec: dict[str, Any] = {"seq": seq, "prev": prev, "type": "start", "unit": "u", "t": "2026-11-17T06:05:00Z"}
        rec["hash"] = prev = chain.record_hash(rec)
        recs.append(rec)
    store = pull.JournalCopy(tmp_path, "u").open()
    store.append(recs)
    return store, recs


@pytest.mark.parametrize("damage", ["long line", "nested"])
def test_the_laptops_copy_with_a_long_or_nested_line_is_named_as_damaged(tmp_path: Path, damage: str) -> None:
    """Each line is read with a bound (``MAX_LINE``); a long one in the middle is damage, named,
    not a torn tail cut off with the valid records after it, and nesting is not a traceback."""
    from bedside.durable import MAX_LINE
    from bedside.laptop import pull

    store, _recs = _copy_with(tmp_path)
    lines = store.path.read_bytes().splitlines(keepends=True)
    bad_line = b"a" * (3 * MAX_LINE) + b"\n" if damage == "long line" else b"[" * DEPTH + b"\n"
    store.path.write_bytes(lines[0] + bad_line + b"".join(lines[1:]))
    size = store.path.stat().st_size
    with pytest.raises(pull.PullError, match="copy of u is damaged at record 2"):
        pull.JournalCopy(tmp_path, "u").open()
    assert store.path.stat().st_size == size                 # nothing after it cut off


def test_a_torn_last_line_is_still_dropped(tmp_path: Path) -> None:
    from bedside.laptop import pull

    store, recs = _copy_with(tmp_path)
    with open(store.path, "ab") as f:
        f.write(b'{"seq": 4, "pr')
    assert pull.JournalCopy(tmp_path, "u").open().head == (3, recs[-1]["hash"])


@pytest.mark.parametrize("damage", ["nested", "not records", "long"])
def test_what_followed_a_break_damaged_is_named(tmp_path: Path, damage: str) -> None:
    from bedside.durable import MAX_LINE
    from bedside.laptop import pull

    store, _ = _copy_with(tmp_path)
    meta = b'{"break_at": 4, "problem": "p"}\n'
    store.after_path.write_bytes(meta + {"nested": b"[" * DEPTH, "not records": b"[1]\n",
                                         "long": b"{" + b" " * (2 * MAX_LINE) + b"}\n"}[damage])
    with pytest.raises(pull.PullError, match=r"what followed the break .* cannot be read"):
        store.after_break()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["nested-json", "dev-zero", "fifo", "huge"])
def test_the_log_of_pulls_damaged_is_no_log(tmp_path: Path, kind: str) -> None:
    store, _ = _copy_with(tmp_path)
    made = bad(tmp_path, kind)
    if kind == "dev-zero":
        store.log_path.symlink_to(made)
    else:
        made.rename(store.log_path)
    assert store.pulls() == []
