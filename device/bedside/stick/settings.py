"""Ward settings on a ward stick: a new configuration and a revocation list (or, on a unit
still on a ward secret, a new ward secret), signed, applied by the unit after a press.

**On a unit with pinned keys** (docs/security.md) ``settings.json`` is a ``settings`` document
signed by the ward authority key: a counter the ward raises by one with every issue, when it
was issued, the configuration's TOML text (optional), and the revocation list (certificate
ids and laptop key ids that no longer unlock a unit, stick ids that no longer take exports).
The unit takes it only after the counter it applied last and not implausibly far after it
(``trust/freshness.py``); a ``recovery_from`` naming exactly the counter a unit is stuck at
lets the ward unfreeze it. The revocation list replaces the one before it whole.

The older form, below, is read only on a unit not yet migrated.

Layout (docs/stick.md, "Ward settings by stick")::

    Bedside/
      authorisation.json
      settings.json              written by ``bedside stick prepare --config … --new-secret-file …``

``settings.json`` carries when it was issued, the configuration's TOML text (optional) and
the new ward secret (optional), with an HMAC-SHA256 under the ward's current stick key over
all of it. The new secret never travels in clear: the stick carries only what the unit stores
(the unlock hash with its salt, and the new stick key), enciphered with a keystream made from
the current stick key (HMAC-SHA256 in counter mode). A lost stick thus gives neither the new
secret, nor a way to forge sticks, nor a hash to guess the secret from.

On the unit the export forwards the file to the daemon (``op: settings`` on the stick channel);
the daemon checks it from scratch (``check``): signed for this ward, a configuration that
passes ``bedside config check``, issued later than the settings last applied. It shows what
changes in one line and asks for a press; only then ``apply`` writes the files (each whole,
the previous kept beside it) and the running unit takes the new configuration at once.

The ward's configuration (``DATA/ward-config.toml``) lies over the unit's own: the unit id,
its hardware (pins, panel) and its serial port stay the unit's.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from bedside import secret
from bedside.core import config
from bedside.core.config import Config
from bedside.core.digest import compare_digest, hmac_sha256, sha256
from bedside.core.errors import BedsideError
from bedside.core.records import T
from bedside.durable import CONFIG_FILE as CONFIG_BYTES
from bedside.durable import json_loads, read_text, write_atomic
from bedside.stick.auth import key_id, signature_problem
from bedside.stick.files import FOLDER, read_small
from bedside.trust import freshness, signed, ward_state
from bedside.trust.keyring import Keyring
from bedside.trust.signed import Untrusted

SETTINGS_FILE = "settings.json"
FORMAT = 1
MAX_BYTES = 48 * 1024              # within the stick channel's line, with room for its escaping
CONFIG_FILE = "ward-config.toml"            # in the data directory
STATE_FILE = ward_state.STATE_FILE          # in the data directory: what was applied last
_MAC_LABEL = b"bedside ward settings v1\x00"
_SEAL_LABEL = b"bedside ward secret seal v1\x00"
# The unit's own (its id, hardware and serial port, as the schema marks them): never taken from the ward's
# configuration.
KEPT = config.OWN

# Why settings were refused (the journal's ``settings_refused`` ``reason``).
MALFORMED, OTHER_WARD, BAD_SIGNATURE, INVALID, OLDER, NOT_CONFIRMED, NO_SECRET = (
    "malformed", "other_ward", "bad_signature", "invalid", "older", "not_confirmed", "no_secret")
IMPLAUSIBLE, NO_KEYS = "implausible", "no_keys"
KIND = "settings"
REVOCABLE = ward_state.REVOCABLE


class SettingsRefused(BedsideError):
    """The settings are not applied: ``reason`` for the journal, the message for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# --- making them (the laptop) ---------------------------------------------------------

def _canonical(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _mac(stick_key: bytes, body: Mapping[str, Any]) -> str:
    return hmac_sha256(stick_key, _MAC_LABEL + _canonical(body)).hex()


def _keystream(stick_key: bytes, nonce: bytes, n: int) -> bytes:
    out = b""
    block = 0
    while len(out) < n:
        out += hmac_sha256(stick_key, _SEAL_LABEL + nonce + block.to_bytes(4, "big"))
        block += 1
    return out[:n]


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def parse_config(text: str, source: str) -> Config:
    """A configuration from its TOML text, by ``bedside config check``'s rules (ConfigError)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise config.ConfigError(source, [f"is not valid TOML: {e}"]) from None
    except RecursionError:      # (arrays or tables nested a few thousand deep: tomllib recurses)
        raise config.ConfigError(source, ["is not a bedside configuration: it is nested too deeply"]) from None
    return config.parse(data, source)


def _offered_config(body: Mapping[str, Any], current: Config) -> tuple[Config | None, str | None]:
    """The configuration the settings carry, over the unit's own, and its text (None, None: none);
    SettingsRefused when it is there and not one the unit could run."""
    if not isinstance(body.get("config"), dict):
        return None, None
    text = body["config"].get("toml")
    if not isinstance(text, str):
        raise SettingsRefused(MALFORMED, "the settings' configuration is missing its text")
    try:
        return over(current, parse_config(text, "the ward's configuration")), text
    except config.ConfigError as e:
        raise SettingsRefused(INVALID, "; ".join(e.problems)) from None


def make(stick_key: bytes, issued: datetime, *, config_text: str | None = None,
         new_secret: str | None = None) -> dict[str, Any]:
    """The body of ``settings.json``. Raises ConfigError for a configuration that would be refused,
    SecretError for a secret that is too weak."""
    if config_text is None and new_secret is None:
        raise ValueError("ward settings need a configuration, a new secret, or both")
    body: dict[str, Any] = {"bedside_settings": FORMAT, "ward_key": key_id(stick_key),
                            "issued": issued.isoformat(timespec="seconds"), "config": None, "secret": None}
    if config_text is not None:
        parse_config(config_text, "the ward's configuration")
        body["config"] = {"toml": config_text, "sha256": sha256(config_text.encode("utf-8")).hexdigest()}
    if new_secret is not None:
        s = secret.validate(new_secret)
        salt = os.urandom(16)
        unlock, new_key = secret.keys(s, salt)
        body["secret"] = {"ward_key": key_id(new_key), "salt": salt.hex(), "n": secret.N, "r": secret.R,
                          "p": secret.P, "sealed": _xor(unlock + new_key, _keystream(stick_key, salt, 64)).hex()}
    body["mac"] = _mac(stick_key, body)
    return body


def write(root_fd: int, body: Mapping[str, Any]) -> None:
    """``Bedside/settings.json`` on the stick under ``root_fd``, whole."""
    from bedside.stick import files

    folder = files.open_folder(root_fd, FOLDER, create=True)
    try:
        files.write_file(folder, SETTINGS_FILE, (json.dumps(body, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    finally:
        os.close(folder)


def read(root_fd: int) -> bytes | None:
    """The stick's settings file (None when it has none); b"" when it is too large to be ours."""
    try:
        folder = os.open(FOLDER, os.O_RDONLY | os.O_DIRECTORY, dir_fd=root_fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return read_small(folder, SETTINGS_FILE, MAX_BYTES)     # a link, folder or fifo: b"" too
    finally:
        os.close(folder)


# --- checking them (the unit) -----------------------------------------------------------

@dataclass(frozen=True)
class Offer:
    issued: str
    config: Config | None               # the new effective configuration (the unit's own kept)
    config_text: str | None
    ward: secret.WardSecret | None      # the new ward secret's stored form
    summary: str                        # what changes, in one line
    line1: str                          # the same for the display: two short lines
    line2: str
    counter: int | None = None          # signed settings: their counter
    revoked: dict[str, list[str]] | None = None   # signed settings: the whole revocation list
    digest: str = ""                    # signed settings: what identifies them (the same stick again)
    signer: str = ""
    recovery_from: int | None = None


_state = ward_state.read
trusted_counter = ward_state.trusted_counter
revoked = ward_state.revoked


def body_signed(counter: int, issued: datetime, *, config_text: str | None = None,
                revoked: Mapping[str, list[str]] | None = None, recovery_from: int | None = None) -> dict[str, Any]:
    """The body the ward authority signs. ConfigError for a configuration that would be refused."""
    body: dict[str, Any] = {"counter": counter, "issued": issued.isoformat(timespec="seconds"), "config": None,
                            "revoked": {k: sorted(set((revoked or {}).get(k, []))) for k in REVOCABLE}}
    if config_text is not None:
        parse_config(config_text, "the ward's configuration")
        body["config"] = {"toml": config_text, "sha256": sha256(config_text.encode("utf-8")).hexdigest()}
    if recovery_from is not None:
        body["recovery_from"] = recovery_from
    return body


def check_signed(raw: bytes, ring: Keyring, current: Config, data: Path, now: datetime) -> Offer:
    """Signed settings in ``raw`` if this unit may apply them, else SettingsRefused."""
    try:
        doc = signed.parse(raw, f"the stick's {SETTINGS_FILE}")
        body = ring.verify(doc, KIND, "the ward settings")
    except Untrusted as e:
        reason = {signed.UNKNOWN_KEY: OTHER_WARD, signed.BAD_SIGNATURE: BAD_SIGNATURE}.get(e.reason, MALFORMED)
        raise SettingsRefused(reason, f"{e}; nothing is applied") from None
    try:
        counter = freshness.check("the ward settings", body, trusted_counter(data), now)
    except Untrusted as e:
        reason = {freshness.OLDER: OLDER, freshness.IMPLAUSIBLE: IMPLAUSIBLE}.get(e.reason, MALFORMED)
        raise SettingsRefused(reason, f"{e}; nothing is applied") from None
    new_cfg, text = _offered_config(body, current)
    r = body.get("revoked") if isinstance(body.get("revoked"), dict) else {}
    assert isinstance(r, dict)
    lists = {k: r.get(k) for k in REVOCABLE}
    revoked_now = {k: sorted(x for x in v if isinstance(x, str)) if isinstance(v, list) else []
                   for k, v in lists.items()}
    before = revoked(data)
    added = sum(len(set(revoked_now[k]) - before[k]) for k in REVOCABLE)
    changed = config.changed(current, new_cfg) if new_cfg is not None else []
    parts = [f"configuration: {', '.join(changed) or 'nothing changes'}"] if new_cfg is not None else []
    if added:
        parts.append(f"{added} revoked")
    line1 = ", ".join(changed) if changed else ("same settings" if new_cfg is not None else "Revocations")
    line2 = f"{added} revoked" if added else ""
    recovery = body.get("recovery_from") if isinstance(body.get("recovery_from"), int) else None
    return Offer(str(body["issued"]), new_cfg, text, None, "; ".join(parts) or "no change", line1, line2,
                 counter, revoked_now, sha256(signed.canonical(body)).hexdigest(), doc.key,
                 recovery if recovery == trusted_counter(data) else None)


def already_signed(raw: bytes, data: Path) -> bool:
    """The signed settings are the very ones applied last (the same stick plugged in again)."""
    try:
        doc = signed.parse(raw, "the settings")
    except Untrusted:
        return False
    return _state(data).get("digest") == sha256(signed.canonical(doc.body)).hexdigest()


def _issued_before(data: Path) -> str | None:
    try:
        text = read_text(data / STATE_FILE)              # bounded, and never waits on a fifo
        body = json_loads(text) if text is not None else None
    except (OSError, ValueError):
        return None
    return body.get("issued") if isinstance(body, dict) and isinstance(body.get("issued"), str) else None


def check(raw: bytes, stick_key: bytes, current: Config, data: Path) -> Offer:
    """The settings in ``raw`` if this unit may apply them, else SettingsRefused."""
    try:
        body = json_loads(raw.decode("utf-8")) if raw else None     # nesting too deep: a ValueError
    except (UnicodeDecodeError, ValueError):
        body = None
    if not isinstance(body, dict) or body.get("bedside_settings") != FORMAT or not all(
            isinstance(body.get(k), str) for k in ("ward_key", "issued", "mac")):
        raise SettingsRefused(MALFORMED, f"the stick's {FOLDER}/{SETTINGS_FILE} is damaged; write it again "
                              "(bedside stick prepare --config … / --new-secret-file …)")
    problem = signature_problem(body, stick_key, _mac)
    if problem == OTHER_WARD:
        raise SettingsRefused(OTHER_WARD, "the settings were signed for another ward (or before the ward secret was "
                              "changed); write them again with this ward's secret")
    if problem is not None:
        raise SettingsRefused(BAD_SIGNATURE, "the settings were changed after they were signed; nothing is applied")
    try:
        issued = datetime.fromisoformat(body["issued"])
    except ValueError:
        raise SettingsRefused(MALFORMED, "the settings' issue time is not a time") from None
    before = _issued_before(data)
    if before is not None and issued <= datetime.fromisoformat(before):
        raise SettingsRefused(OLDER, f"the settings on the stick were issued {body['issued']}, not after the ones "
                              f"this unit applied ({before}): nothing is applied")
    new_cfg, text = _offered_config(body, current)
    ward = None
    if isinstance(body.get("secret"), dict):
        ward = _unseal(body["secret"], stick_key)
    changed = config.changed(current, new_cfg) if new_cfg is not None else []
    line1 = ", ".join(changed) if changed else ("same settings" if new_cfg is not None else "")
    line2 = "and a new ward secret" if ward is not None else ""
    if not line1:
        line1, line2 = "New ward secret", ""
    summary = (f"configuration: {', '.join(changed) or 'nothing changes'}" if new_cfg is not None else "") + \
        ("; " if new_cfg is not None and ward is not None else "") + ("a new ward secret" if ward is not None else "")
    return Offer(body["issued"], new_cfg, text, ward, summary, line1, line2)


def already(raw: bytes, data: Path) -> bool:
    """The settings are the very ones applied last (the same stick plugged in again)."""
    try:
        body = json_loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False
    return isinstance(body, dict) and body.get("issued") == _issued_before(data)


def _unseal(s: Mapping[str, Any], stick_key: bytes) -> secret.WardSecret:
    try:
        salt, sealed = bytes.fromhex(str(s["salt"])), bytes.fromhex(str(s["sealed"]))
        n, r, p = int(s["n"]), int(s["r"]), int(s["p"])
    except (KeyError, ValueError, TypeError, OverflowError):
        raise SettingsRefused(MALFORMED, "the settings' new secret is damaged") from None
    # Its scrypt cost is what every check of a typed secret will spend: the laptop's bounds.
    if len(sealed) != 64 or len(salt) < 16 or secret.kdf_problem({"n": n, "r": r, "p": p, "salt": salt.hex()}):
        raise SettingsRefused(MALFORMED, "the settings' new secret is damaged")
    plain = _xor(sealed, _keystream(stick_key, salt, 64))
    unlock, new_key = plain[:32], plain[32:]
    if not compare_digest(key_id(new_key), str(s.get("ward_key"))):
        raise SettingsRefused(MALFORMED, "the settings' new secret does not match its key id")
    return secret.WardSecret(salt, unlock, new_key, n, r, p)


def over(unit: Config, ward: Config) -> Config:
    """The ward's configuration with the unit's own id, hardware and serial port."""
    return replace(ward, **{k: getattr(unit, k) for k in KEPT})


def effective(unit: Config, data: Path) -> Config:
    """The configuration the unit runs: the ward's (applied from a stick) over its own, if any."""
    path = data / CONFIG_FILE
    try:
        text = read_text(path, CONFIG_BYTES)             # bounded, and never waits on a fifo
    except (OSError, ValueError) as e:                  # TooLarge and UnicodeDecodeError are ValueErrors
        raise config.ConfigError(str(path), [f"cannot be read ({e}); remove it to run on the unit's own "
                                             "configuration"]) from None
    if text is None:
        return unit
    return over(unit, parse_config(text, str(path)))


# --- applying them (the unit, after the press) --------------------------------------------

def apply(offer: Offer, data: Path, current: Config, issued_by: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Write what the offer changes, each file whole with the previous one kept beside it; the
    records to make (``config_changed``, ``secret_changed``)."""
    records: list[tuple[str, dict[str, Any]]] = []
    extra = {"issued": offer.issued, **({"stick": issued_by} if issued_by else {})}
    if offer.config is not None and offer.config_text is not None:
        _keep_previous(data / CONFIG_FILE, 0o644)
        write_atomic(data / CONFIG_FILE, offer.config_text.encode("utf-8"))
        records.append((T.CONFIG_CHANGED, {"old": current.fingerprint(), "new": offer.config.fingerprint(),
                                           "changed": config.changed(current, offer.config), **extra}))
    if offer.ward is not None:
        old = secret.load(data)
        _keep_previous(data / secret.FILE_NAME, 0o600)
        secret.save(data, offer.ward)
        records.append((T.SECRET_CHANGED, {"old_key": key_id(old.stick_key) if old else None,
                                           "new_key": key_id(offer.ward.stick_key), **extra}))
    state: dict[str, Any] = {"issued": offer.issued}
    if offer.counter is not None:
        state.update(counter=offer.counter, revoked=offer.revoked or {}, digest=offer.digest, key=offer.signer)
        before = revoked(data)
        fresh = {k: sorted(set((offer.revoked or {}).get(k, [])) - before[k]) for k in REVOCABLE}
        fields: dict[str, Any] = {"counter": offer.counter, "key": offer.signer, **extra,
                                  **{k: v for k, v in fresh.items() if v}}
        if offer.recovery_from is not None:
            fields["recovery_from"] = offer.recovery_from
        records.append((T.SETTINGS_APPLIED, fields))
    write_atomic(data / STATE_FILE, (json.dumps(state) + "\n").encode())
    return records


def _keep_previous(path: Path, mode: int) -> None:
    try:
        before = path.read_bytes()
    except FileNotFoundError:
        return
    write_atomic(path.with_name(path.stem + ".previous" + path.suffix), before, mode=mode)
