"""A USB stick's authorisation: the file that makes a stick one of the ward's.

**On a unit with pinned keys** (docs/security.md) ``Bedside/authorisation.json`` is a ``stick``
document signed by the ward authority key (``bedside stick prepare --key ward.key``): a
random stick id, a label, the date, the ward's name. A unit checks the signature against
its pinned ward keys (``check_signed``) and refuses a stick whose id the ward's settings
revoked. The stick holds no secret: a lost one gives nothing to guess offline, and a unit's
card holds nothing that could sign a new one.

**On a unit still on a ward secret** (until it is migrated), the older form below is read.

``Bedside/authorisation.json`` (written by ``bedside stick prepare``, beside a README for
whoever finds the stick) carries a random stick id, the public id of the ward's stick key
and an HMAC-SHA256 under that key (``secret.stick_key``: scrypt of the ward secret with a
ward-wide salt) over everything else in the file. A unit checks it with the ``stick_key``
it stores; a stick without the file, with the file of another ward, or with a file that
was changed gets nothing. The file is versioned (``bedside_stick``: 1). What is written
onto the stick, and how, is ``files.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bedside.core.digest import compare_digest, hmac_sha256, sha256
from bedside.durable import json_loads
from bedside.stick import files
from bedside.stick.files import BAD_AUTHORISATION, NOT_PREPARED, OTHER_WARD, REVOKED, StickProblem
from bedside.trust import signed
from bedside.trust.keyring import Keyring
from bedside.trust.signed import Untrusted

AUTH_FILE = "authorisation.json"
README_FILE = "README.txt"
FORMAT = 1
MAX_AUTH_BYTES = 4096
MAX_LABEL = 60
_MAC_LABEL = b"bedside stick authorisation v1\x00"
_KEY_ID_LABEL = b"bedside stick key id\x00"


# --- authorisation -------------------------------------------------------------------

def key_id(stick_key: bytes) -> str:
    """The public name of a ward's stick key: tells a stick of another ward from a forged one."""
    return sha256(_KEY_ID_LABEL + stick_key).hexdigest()[:16]


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _mac(stick_key: bytes, body: dict[str, Any]) -> str:
    return hmac_sha256(stick_key, _MAC_LABEL + _canonical(body)).hex()


def signature_problem(body: Mapping[str, Any], stick_key: bytes, mac: Callable[[bytes, dict[str, Any]], str]
                      ) -> str | None:
    """For a file signed under the ward's stick key (an update's manifest, ward settings):
    ``"other_ward"`` when it names another ward's key, ``"bad_signature"`` when it was changed
    after it was signed, None when it holds. ``mac`` is the file's own labelled HMAC."""
    if not compare_digest(str(body.get("ward_key")), key_id(stick_key)):
        return "other_ward"
    unsigned = {k: v for k, v in body.items() if k != "mac"}
    try:
        expected = mac(stick_key, unsigned)
    except (ValueError, RecursionError):     # a lone surrogate has no UTF-8: nothing signed it
        return "bad_signature"
    return None if compare_digest(str(body.get("mac")), expected) else "bad_signature"


def clean_label(label: str) -> str:
    """A label is for people reading the file; it is kept short and printable."""
    text = "".join(c for c in label if c.isprintable()).strip()
    return text[:MAX_LABEL]


def authorisation(stick_key: bytes, prepared: datetime, label: str = "", stick_id: str | None = None
                  ) -> dict[str, Any]:
    """The body of an authorisation file (version 1)."""
    body: dict[str, Any] = {
        "bedside_stick": FORMAT,
        "stick": stick_id or os.urandom(16).hex(),
        "ward_key": key_id(stick_key),
        "label": clean_label(label),
        "prepared": prepared.isoformat(timespec="seconds"),
    }
    body["mac"] = _mac(stick_key, body)
    return body


@dataclass(frozen=True, slots=True)
class Authorised:
    stick: str               # the stick's random id (recorded with each export)
    label: str
    prepared: str


def check(raw: bytes | None, stick_key: bytes) -> Authorised:
    """The stick's authorisation, or StickProblem saying why it has none."""
    if raw is None:
        raise StickProblem(NOT_PREPARED, "the stick is not prepared for this ward (it has no "
                           f"{files.FOLDER}/{AUTH_FILE}); prepare it with: bedside stick prepare")
    try:
        body = json_loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        body = None
    if not isinstance(body, dict) or "bedside_stick" not in body:
        raise StickProblem(BAD_AUTHORISATION, f"the stick's {AUTH_FILE} is damaged; prepare the stick again")
    if body["bedside_stick"] != FORMAT:
        raise StickProblem(BAD_AUTHORISATION, f"the stick's {AUTH_FILE} is of version {body['bedside_stick']!r}; "
                           f"this unit reads version {FORMAT}: prepare the stick again")
    fields = {k: body.get(k) for k in ("stick", "ward_key", "label", "prepared", "mac")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise StickProblem(BAD_AUTHORISATION, f"the stick's {AUTH_FILE} is damaged; prepare the stick again")
    if not compare_digest(str(fields["ward_key"]), key_id(stick_key)):
        raise StickProblem(OTHER_WARD, "the stick was prepared for another ward (or before the ward secret "
                           "was changed); prepare it again with this ward's secret")
    unsigned = {k: v for k, v in body.items() if k != "mac"}
    try:
        expected = _mac(stick_key, unsigned)
    except (ValueError, RecursionError):     # a lone surrogate has no UTF-8: nothing signed it
        expected = ""
    if not expected or not compare_digest(str(fields["mac"]), expected):
        raise StickProblem(BAD_AUTHORISATION, f"the stick's {AUTH_FILE} was changed after it was prepared; "
                           "prepare the stick again")
    return Authorised(str(fields["stick"]), str(fields["label"]), str(fields["prepared"]))


STICK_KIND = "stick"


def signed_body(prepared: datetime, label: str = "", ward_name: str = "", stick_id: str | None = None
                ) -> dict[str, Any]:
    """What the ward authority signs to authorise a stick."""
    return {"stick": stick_id or os.urandom(16).hex(), "label": clean_label(label), "ward": clean_label(ward_name),
            "prepared": prepared.isoformat(timespec="seconds")}


def check_signed(raw: bytes | None, ring: Keyring, revoked: frozenset[str] = frozenset()) -> Authorised:
    """The stick's authorisation on a unit with pinned keys, or StickProblem saying why it has none."""
    if raw is None:
        raise StickProblem(NOT_PREPARED, "the stick is not prepared for this ward (it has no "
                           f"{files.FOLDER}/{AUTH_FILE}); prepare it with: bedside stick prepare --key ward.key")
    try:
        doc = signed.parse(raw, f"the stick's {AUTH_FILE}")
    except Untrusted:
        raise StickProblem(BAD_AUTHORISATION, f"the stick's {AUTH_FILE} is not signed by a ward authority (damaged, "
                           "or prepared with a ward secret before this unit's keys were pinned); prepare it again "
                           "with: bedside stick prepare --key ward.key") from None
    try:
        body = ring.verify(doc, STICK_KIND, "the stick's authorisation")
    except Untrusted as e:
        raise StickProblem(OTHER_WARD if e.reason == signed.UNKNOWN_KEY else BAD_AUTHORISATION,
                           f"{e}; prepare the stick again with this ward's authority key") from None
    fields = {k: body.get(k) for k in ("stick", "label", "prepared")}
    if not all(isinstance(v, str) for v in fields.values()):
        raise StickProblem(BAD_AUTHORISATION, f"the stick's {AUTH_FILE} is damaged; prepare the stick again")
    if fields["stick"] in revoked:
        raise StickProblem(REVOKED, f"the stick {fields['stick']} was revoked by the ward's settings (reported lost "
                           "or withdrawn); it gets nothing")
    return Authorised(str(fields["stick"]), str(fields["label"]), str(fields["prepared"]))


def read_authorisation(root_fd: int) -> bytes | None:
    """The authorisation file's bytes (None when there is none). Raises StickProblem when the
    stick cannot be read."""
    try:
        folder = os.open(files.FOLDER, os.O_RDONLY | os.O_DIRECTORY, dir_fd=root_fd)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except OSError as e:
        raise files.problem(e, "reading the stick") from None
    try:
        # Too large, a link, a folder or a fifo: b"", refused as damaged (never waited on or read on).
        return files.read_small(folder, AUTH_FILE, MAX_AUTH_BYTES)
    except OSError as e:
        raise files.problem(e, "reading the stick") from None
    finally:
        os.close(folder)


README = """Bedside export stick
====================

This stick is authorised to take exports from the bedside units of one ward.

Plug it into a unit's USB port. The unit's display says "Exporting", then
"Export done - Remove the stick". Each export is a folder in this Bedside
folder, named by the unit and the date and time, e.g. ward7-bed12_2026-11-24_0941:

  report.html     the adherence report: open it in any web browser
  sessions.csv    one row per scheduled session, for spreadsheets
  journal.jsonl   the unit's record itself; "bedside log verify" checks it

Do not delete or edit authorisation.json: without it the units give this stick
nothing. Anyone holding this stick can take exports from the ward's units, so
keep it like a key.

The exports are care records (unit and episode ids, no names). Keep the stick
safe and delete the folders once they are filed.

{prepared}
"""


def prepare(root_fd: int, stick_key: bytes, prepared: datetime, label: str = "") -> dict[str, Any]:
    """Make the stick under ``root_fd`` an authorised stick (of a ward still on its secret)."""
    body = authorisation(stick_key, prepared, label)
    _write(root_fd, body, (json.dumps(body, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8"))
    return body


def prepare_signed(root_fd: int, doc: signed.Document) -> dict[str, Any]:
    """Make the stick under ``root_fd`` an authorised stick: the ward authority's signed ``doc``."""
    _write(root_fd, doc.body, signed.dumps(doc))
    return doc.body


def _write(root_fd: int, body: dict[str, Any], data: bytes) -> None:
    folder = files.open_folder(root_fd, files.FOLDER, create=True)
    try:
        note = f"Prepared {body['prepared']}" + (f" ({body['label']})." if body["label"] else ".")
        files.write_file(folder, README_FILE, README.format(prepared=note).replace("\n", "\r\n").encode("utf-8"))
        # The authorisation last: a stick with it is a complete prepared stick.
        files.write_file(folder, AUTH_FILE, data)
    finally:
        os.close(folder)
