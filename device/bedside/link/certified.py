"""Unlocking the serial link with a nurse's certified laptop key (docs/security.md, docs/serial.md).

On a unit with pinned keys there is no ward secret: the unit's ``hello`` carries a fresh
random challenge (``nonce``), and the nurse tool answers with one request,
``keyunlock CERT SIG``: its certificate (the ward authority's ``laptop`` document, base64url
of its JSON) and an Ed25519 signature by the laptop key over the ``unlock`` message
``{"unit": this unit's id, "nonce": the challenge, "cert": the certificate's id}``.

``judge`` runs on the serial thread (the signature checks run in a short-lived child process,
never on the loop) and says whether the answer holds and why not:

* the certificate is signed by a ward authority key pinned on this unit (``unknown_key``,
  ``bad_certificate``);
* the answer is signed by the key the certificate names, over this unit's id and this
  challenge (``bad_answer``): an answer recorded at another unit, or for another challenge,
  is worth nothing;
* the certificate is valid at the unit's clock (``expired``, ``not_yet_valid``);
* neither the certificate's id nor its key is on the revocation list of the ward settings the
  unit applied last (``revoked``).

Every try is an attempt as a ward secret was: it counts towards the lockout and is recorded,
with the nurse and the certificate named when they are known.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bedside.trust import freshness, signed, ward_state
from bedside.trust.keyring import Keyring
from bedside.trust.signed import Untrusted

VERB = "keyunlock"


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    why: str = ""                 # one word for the record when not ok
    nurse: str = ""
    laptop: str = ""
    cert: str = ""

    def fields(self) -> dict[str, str]:
        out = {k: v for k, v in (("nurse", self.nurse), ("laptop", self.laptop), ("cert", self.cert)) if v}
        if not self.ok:
            out["why"] = self.why
        return out


def encode_cert(cert: signed.Document) -> str:
    return base64.urlsafe_b64encode(signed.canonical(signed.to_json(cert))).decode("ascii").rstrip("=")


def decode_cert(text: str) -> signed.Document:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise Untrusted(signed.MALFORMED, "the certificate is not base64") from None
    return signed.parse(raw, "the laptop's certificate")


def answer_body(unit: str, nonce: str, cert_id: str) -> dict[str, str]:
    return {"unit": unit, "nonce": nonce, "cert": cert_id}


def judge(ring: Keyring | None, cert_text: str, sig_hex: str, unit: str, nonce: str, now: datetime,
          revoked: dict[str, frozenset[str]]) -> Verdict:
    """Whether the laptop's answer unlocks this unit now (see the module's rules)."""
    if ring is None:
        return Verdict(False, "no_keys")
    try:
        cert = decode_cert(cert_text)
        ward = ring.signer(cert, "laptop", "the laptop's certificate")
        sig = bytes.fromhex(sig_hex)
    except Untrusted as e:
        return Verdict(False, "unknown_key" if e.reason == signed.UNKNOWN_KEY else "bad_certificate")
    except ValueError:
        return Verdict(False, "bad_answer")
    b = cert.body
    nurse, laptop, cert_id, public = (str(b.get(k, ""))[:80] for k in ("nurse", "laptop", "cert", "public"))
    named = Verdict(False, "", nurse, laptop, cert_id)
    try:
        pub = bytes.fromhex(public)
        issued, expires = datetime.fromisoformat(str(b.get("issued"))), datetime.fromisoformat(str(b.get("expires")))
    except ValueError:
        return Verdict(False, "bad_certificate", nurse, laptop, cert_id)
    if len(pub) != 32 or len(sig) != 64 or issued.tzinfo is None or expires.tzinfo is None:
        return Verdict(False, "bad_certificate", nurse, laptop, cert_id)
    answer = signed.message("unlock", answer_body(unit, nonce, cert_id))
    cert_ok, answer_ok = signed.verify([(ward.public, cert.message(), cert.sig), (pub, answer, sig)])
    if not cert_ok:
        return Verdict(False, "bad_certificate", nurse, laptop, cert_id)
    if not answer_ok:
        return Verdict(False, "bad_answer", nurse, laptop, cert_id)
    if now >= expires:
        return Verdict(False, "expired", nurse, laptop, cert_id)
    if issued > now + freshness.MAX_AHEAD:
        return Verdict(False, "not_yet_valid", nurse, laptop, cert_id)
    if cert_id in revoked.get("certs", frozenset()) or signed.key_id(pub) in revoked.get("laptop_keys", frozenset()):
        return Verdict(False, "revoked", nurse, laptop, cert_id)
    return Verdict(True, "", named.nurse, named.laptop, named.cert)


def revoked_on(data: Path | None) -> dict[str, frozenset[str]]:
    """The revocation list the unit applied last (from its ward settings)."""
    return ward_state.revoked(data) if data is not None else {}
