"""A device on the port that asks for a cheap key derivation gets no answer from the laptop."""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from pathlib import Path

import pytest

from bedside import secret
from bedside.laptop import client
from bedside.link import frames
from tests.rigs.procs import bedside, child


class FakeUnit:
    """Plays a unit on the master side of a pty: answers ``hello`` announcing ``kdf``, notes the rest."""

    def __init__(self, kdf: dict[str, object]) -> None:
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        self.slave = slave
        self.kdf = kdf
        self.verbs: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.strip(b"\r\x15").decode(errors="replace")
                if not text.startswith("~"):
                    continue
                try:
                    req = frames.parse_request(text[1:])
                except frames.FrameError:
                    continue
                self.verbs.append(req.verb)
                hello = {"proto": frames.PROTOCOL, "unit": "ward7-bed12", "version": "0.1.0", "secret": True,
                         "unlocked": False, "lockout_s": 0, "left": 5, "kdf": self.kdf,
                         "nonce": secrets.token_hex(16), "head": [1, "0" * 64], "zone": "UTC",
                         "time": "2026-11-24T09:00:00+00:00", "tq": "rtc", "confirm_s": 30, "page_max": 128}
                answer = frames.reply(req.id, "ok", hello) if req.verb == "hello" else \
                    frames.reply(req.id, "err", {"code": "denied", "left": 4, "message": "no"})
                os.write(self.master, answer)

    def close(self) -> None:
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)


@pytest.mark.parametrize(("kdf", "why"), [
    ({"name": "scrypt", "n": 2, "r": 1, "p": 1, "salt": "00" * 16}, "weaker than any bedside unit uses"),
    ({"name": "scrypt", "n": 2**20, "r": 8, "p": 1, "salt": "00" * 16}, "more than this laptop will spend"),
    ({"name": "pbkdf2", "n": 2**14, "r": 8, "p": 1, "salt": "00" * 16}, "did not name scrypt"),
])
def test_pull_refuses_to_answer_a_weak_or_costly_kdf(tmp_path: Path, kdf: dict[str, object], why: str) -> None:
    fake = FakeUnit(kdf)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("correct horse battery staple\n")
    try:
        with child(bedside("pull", "--port", fake.path, "--out", str(tmp_path / "out"),
                           "--secret-file", str(secret_file))) as p:
            _out, err = p.communicate(timeout=60)
    finally:
        fake.close()
    assert p.returncode == 1, err
    assert "was not answered" in err and why in err and "Traceback" not in err
    assert fake.verbs and "unlock" not in fake.verbs        # no HMAC ever left the laptop


def test_the_floor_is_the_units_own_cost_and_the_answer_refuses_below_it() -> None:
    own = {"name": "scrypt", "n": secret.N, "r": secret.R, "p": secret.P, "salt": "ab" * 16}
    assert secret.kdf_problem(own) is None
    assert len(client.unlock_answer("correct horse battery staple", own, "nonce")) == 64
    for weaker in ({"n": secret.N // 2}, {"r": secret.R - 1}, {"p": 0}, {"salt": "ab" * 8}, {"n": secret.N + 1},
                   {"n": "16384"}, {"salt": "zz" * 16}):
        with pytest.raises(client.WeakKdf):
            client.unlock_answer("correct horse battery staple", {**own, **weaker}, "nonce")
