from __future__ import annotations

import json
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bedside import secret
from bedside.cli.main import main
from bedside.journal.journal import Journal


def test_secret_is_stored_only_as_slow_hashes(tmp_path: Path) -> None:
    ws = secret.set_secret(tmp_path, "correct horse battery")
    text = (tmp_path / secret.FILE_NAME).read_text()
    assert "correct horse" not in text
    body = json.loads(text)
    assert body["kdf"] == "scrypt" and body["n"] >= 2**14
    loaded = secret.load(tmp_path)
    assert loaded == ws
    assert loaded.check("correct horse battery")
    assert not loaded.check("correct horse batterY")
    assert loaded.stick_key == secret.stick_key("correct horse battery")
    assert (tmp_path / secret.FILE_NAME).stat().st_mode & 0o777 == 0o600


def test_each_unit_salts_its_unlock_hash_but_sticks_work_ward_wide(tmp_path: Path) -> None:
    a = secret.set_secret(tmp_path / "a", "ward seven secret")
    b = secret.set_secret(tmp_path / "b", "ward seven secret")
    assert a.unlock != b.unlock and a.stick_key == b.stick_key


@pytest.mark.parametrize("bad", ["short", "", "has\x07bell chars"])
def test_weak_or_odd_secrets_are_refused(bad: str) -> None:
    with pytest.raises(secret.SecretError):
        secret.validate(bad)


def test_damaged_file_says_set_it_again(tmp_path: Path) -> None:
    (tmp_path / secret.FILE_NAME).write_text("{not json")
    with pytest.raises(secret.SecretError, match="set the secret again"):
        secret.load(tmp_path)
    assert secret.load(tmp_path / "none") is None


def test_cli_sets_the_secret_and_journals_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "secret.txt"
    f.write_text("ward seven secret\n")
    data = tmp_path / "data"
    assert main(["secret", "set", "--data", str(data), "--secret-file", str(f)]) == 0
    assert main(["secret", "set", "--data", str(data), "--secret-file", str(f)]) == 0
    assert "changed" in capsys.readouterr().out
    assert secret.load(data) is not None and secret.load(data).check("ward seven secret")  # type: ignore[union-attr]
    j = Journal(data, ZoneInfo("UTC"), "r", readonly=True)
    recs = [r for r in j.records() if r["type"] == "secret_set"]
    j.close()
    assert [r["replaced"] for r in recs] == [False, True]


def test_cli_refuses_while_the_unit_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bedside.unit import host

    data = tmp_path / "data"
    lock = host.lock_data_dir(data)
    f = tmp_path / "s.txt"
    f.write_text("ward seven secret\n")
    assert main(["secret", "set", "--data", str(data), "--secret-file", str(f)]) == 2
    assert "stop it first" in capsys.readouterr().err
    lock.close()


def test_scrypt_in_its_child_is_the_standard_librarys_scrypt() -> None:
    import hashlib

    salts = [b"\x01" * 16, secret.STICK_SALT]
    want = [hashlib.scrypt(b"ward seven secret", salt=s, n=16, r=8, p=1, dklen=32) for s in salts]
    assert secret.scrypt("ward seven secret", salts, n=16) == want
    assert secret.keys("ward seven secret", salts[0]) == (secret.derive("ward seven secret", salts[0]),
                                                          secret.stick_key("ward seven secret"))


def test_the_secret_goes_to_the_child_on_stdin_never_in_its_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    seen: list[tuple[list[str], bytes]] = []
    real = subprocess.run

    def spy(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
        seen.append((list(cmd), kw["input"]))  # type: ignore[arg-type]
        return real(cmd, **kw)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(subprocess, "run", spy)
    secret.scrypt("ward seven secret", [b"\x02" * 16], n=16)
    assert len(seen) == 1
    cmd, given = seen[0]
    assert given == b"ward seven secret" and not any("seven" in a for a in cmd)
    assert cmd[:3] == [sys.executable, "-I", "-S"]


@pytest.mark.parametrize(("python", "said"), [("/bin/false", "exit status 1"),
                                              ("/nonexistent/python3", "it could not start")])
def test_a_child_that_fails_is_a_secret_error_for_people(monkeypatch: pytest.MonkeyPatch, python: str,
                                                         said: str) -> None:
    monkeypatch.setattr(sys, "executable", python)
    with pytest.raises(secret.SecretError) as e:
        secret.derive("ward seven secret", b"\x03" * 16)
    assert "helper process" in str(e.value) and said in str(e.value) and "try again" in str(e.value)
    assert "seven" not in str(e.value)


def test_the_childs_own_error_is_its_last_line() -> None:
    with pytest.raises(secret.SecretError, match="ValueError: "):
        secret.scrypt("ward seven secret", [b"\x04" * 16], n=3)        # scrypt's n must be a power of two
