"""The ward secret: unlocks the serial link and authorises USB sticks.

A technician sets it at commissioning (``bedside secret set``). The unit never stores the
secret itself, only values derived from it with scrypt (a deliberately slow hash):

* ``unlock`` — scrypt over the secret with a random salt of this unit: checks what a nurse
  types to unlock the serial link.
* ``stick_key`` — scrypt over the secret with a fixed ward-wide salt, so that one prepared
  stick works on every unit of the ward: checks the HMAC in a stick's authorisation file.
  Whoever holds a unit could forge a stick for it, but they already hold its data; a lost
  stick reveals neither the secret nor a way to unlock a unit.

scrypt runs in a short-lived child process (``sys.executable -I -S``, the secret on its
stdin, never in its arguments): Python's scrypt is OpenSSL's, and loading OpenSSL would map
libcrypto (about 3.5 MiB) into the unit's process for good, for a check a nurse makes now
and then. The child's 16 MiB of work memory goes with it, too. A child that cannot run or
fails is a SecretError saying so; nothing is counted as a wrong secret.

The file is written whole (tmp → fsync → rename → fsync the directory), never in place.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bedside.core.digest import compare_digest
from bedside.core.errors import FAILED, BedsideError
from bedside.durable import KEY_FILE, json_loads, read_bounded, write_atomic

FILE_NAME = "ward-secret.json"
STICK_SALT = b"bedside stick authorisation v1"
# scrypt cost: about 0.1 s and 16 MiB on a laptop, under a second on a Pi Zero 2 W.
N, R, P = 2**14, 8, 1
MIN_LENGTH = 8


# What a laptop will spend answering a unit's challenge. The floor is this software's own
# cost: a device asking for less is not a bedside unit (or wants an answer it can brute-force
# cheaply), and the ward secret also makes the stick key. The ceiling is memory the laptop
# will not give and time it will not wait: a device asking for more is no unit either.
MAX_MEMORY = 64 * 1024 * 1024        # bytes scrypt may use (128 * n * r)
MAX_WORK = 16 * N * R * P            # n * r * p: sixteen times the unit's own cost
MIN_SALT = 16                        # bytes
MIN_N = N                            # the floor's n (the unit's own); r and p floors are R and P


def kdf_problem(kdf: object) -> str | None:
    """Why a unit's announced key derivation must not be answered, or None when it is sound."""
    if not isinstance(kdf, dict) or kdf.get("name", "scrypt") != "scrypt":
        return "it did not name scrypt, the only key derivation bedside uses"
    n, r, p, salt = kdf.get("n"), kdf.get("r"), kdf.get("p"), kdf.get("salt")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (n, r, p)) or not isinstance(salt, str):
        return "its scrypt parameters are not numbers and a salt"
    assert isinstance(n, int) and isinstance(r, int) and isinstance(p, int)
    try:
        salt_bytes = bytes.fromhex(salt)
    except ValueError:
        return "its salt is not hexadecimal"
    said = f"scrypt n={n}, r={r}, p={p}"
    if n < MIN_N or r < R or p < P or n & (n - 1) or len(salt_bytes) < MIN_SALT:
        return (f"it asked for {said} with a {len(salt_bytes)}-byte salt, weaker than any bedside unit uses "
                f"(at least n={MIN_N}, r={R}, p={P}, a {MIN_SALT}-byte salt); an answer to it would be cheap to "
                "brute-force")
    if 128 * n * r > MAX_MEMORY or n * r * p > MAX_WORK:
        return (f"it asked for {said}: over {MAX_MEMORY // 2**20} MiB or {MAX_WORK // (N * R * P)} times the "
                "normal work, more than this laptop will spend")
    return None


class SecretError(BedsideError):
    """The secret is missing, too weak or unreadable; the message says what to do."""

    exit_code = FAILED


# The child that computes scrypt: parameters and salts in its arguments, the secret on stdin,
# one 32-byte key (hex) per salt on stdout. ``-I -S``: no environment, no site-packages.
_CHILD = """\
import hashlib, sys
n, r, p, maxmem = (int(a) for a in sys.argv[1:5])
secret = sys.stdin.buffer.read()
for salt in sys.argv[5:]:
    print(hashlib.scrypt(secret, salt=bytes.fromhex(salt), n=n, r=r, p=p, maxmem=maxmem, dklen=32).hex())
"""
# Far above scrypt's own time at the laptop's ceiling (MAX_WORK), or the unit's cost on a Pi Zero 2 W.
CHILD_TIMEOUT_S = 60.0


def scrypt(secret: str, salts: Sequence[bytes], n: int = N, r: int = R, p: int = P) -> list[bytes]:
    """scrypt of ``secret`` under each of ``salts`` (32 bytes each), in one child process."""
    failed = "scrypt, which hashes the ward secret, failed in its helper process"
    again = "nothing was counted or changed; try again, and if it fails again the Python installation needs repair"
    if not sys.executable:
        raise SecretError(f"{failed} (this Python does not know its own interpreter's path); {again}")
    cmd = [sys.executable, "-I", "-S", "-c", _CHILD, str(n), str(r), str(p), str(MAX_MEMORY),
           *(s.hex() for s in salts)]
    try:
        done = subprocess.run(cmd, input=secret.encode("utf-8"), capture_output=True, timeout=CHILD_TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired:
        raise SecretError(f"{failed} (it took over {CHILD_TIMEOUT_S:.0f} s); {again}") from None
    except OSError as e:
        raise SecretError(f"{failed} (it could not start: {e}); {again}") from None
    keys = done.stdout.decode("ascii", "replace").split()
    if done.returncode != 0 or len(keys) != len(salts) or any(len(k) != 64 for k in keys):
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SecretError(f"{failed} ({said[-1] if said else f'exit status {done.returncode}'}); {again}")
    try:
        return [bytes.fromhex(k) for k in keys]
    except ValueError:
        raise SecretError(f"{failed} (it answered something other than keys); {again}") from None


def derive(secret: str, salt: bytes) -> bytes:
    """The unlock hash of ``secret`` under ``salt`` at the standard cost."""
    return scrypt(secret, [salt])[0]


def stick_key(secret: str) -> bytes:
    return scrypt(secret, [STICK_SALT])[0]


def keys(secret: str, salt: bytes) -> tuple[bytes, bytes]:
    """(the unlock hash under ``salt``, the stick key) of ``secret``, in one child process."""
    unlock, key = scrypt(secret, [salt, STICK_SALT])
    return unlock, key


@dataclass(frozen=True)
class WardSecret:
    salt: bytes
    unlock: bytes
    stick_key: bytes
    n: int = N
    r: int = R
    p: int = P

    def check(self, attempt: str) -> bool:
        """True when ``attempt`` is the ward secret (constant-time comparison)."""
        return compare_digest(scrypt(attempt, [self.salt], self.n, self.r, self.p)[0], self.unlock)


def validate(secret: str) -> str:
    s = secret.strip("\r\n")
    if len(s) < MIN_LENGTH:
        raise SecretError(f"the ward secret must be at least {MIN_LENGTH} characters")
    if any(ord(c) < 32 for c in s):
        raise SecretError("the ward secret must not contain control characters")
    return s


def set_secret(data_dir: Path, secret: str) -> WardSecret:
    s = validate(secret)
    salt = os.urandom(16)
    ws = WardSecret(salt, *keys(s, salt))
    save(data_dir, ws)
    return ws


def save(data_dir: Path, ws: WardSecret) -> None:
    """Store the secret's derived values, whole (a ward stick's new secret comes already derived)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    body = {"version": 1, "kdf": "scrypt", "n": ws.n, "r": ws.r, "p": ws.p, "salt": ws.salt.hex(),
            "unlock": ws.unlock.hex(), "stick_key": ws.stick_key.hex()}
    write_atomic(data_dir / FILE_NAME, (json.dumps(body, indent=1) + "\n").encode(), mode=0o600)


def load(data_dir: Path) -> WardSecret | None:
    """The unit's stored secret hashes, or None if no secret has been set."""
    path = data_dir / FILE_NAME
    try:
        body: dict[str, Any] = json_loads(read_bounded(path, KEY_FILE))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise SecretError(f"the ward secret file {path} cannot be read ({e}); set the secret again") from None
    try:
        ws = WardSecret(bytes.fromhex(body["salt"]), bytes.fromhex(body["unlock"]),
                        bytes.fromhex(body["stick_key"]), int(body["n"]), int(body["r"]), int(body["p"]))
    except (KeyError, ValueError, TypeError, OverflowError):       # (Infinity: no whole number)
        raise SecretError(f"the ward secret file {path} is damaged; set the secret again") from None
    # Every check of a typed secret spends the scrypt cost the file names: no more than a laptop
    # answers (else a damaged file makes each unlock attempt a minute's work, or a refusal).
    if len(ws.unlock) != 32 or len(ws.stick_key) != 32 or \
            kdf_problem({"n": ws.n, "r": ws.r, "p": ws.p, "salt": ws.salt.hex()}) is not None:
        raise SecretError(f"the ward secret file {path} is damaged (its hashes or their cost are not what "
                          "bedside writes); set the secret again")
    return ws


def read_secret_file(path: Path) -> str:
    """The secret from the first line of a file (so it never appears in a command line or history)."""
    try:
        text = read_bounded(path).decode("utf-8")
    except FileNotFoundError:
        raise SecretError(f"the secret file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise SecretError(f"the secret file {path} cannot be read ({e})") from None
    return validate(text.splitlines()[0] if text else "")
