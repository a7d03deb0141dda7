"""The nurse's laptop key: what ``bedside pull`` and ``bedside set-time`` answer a unit's
challenge with, on a unit with pinned keys (docs/serial.md, "Security"; docs/security.md).

The laptop holds its private key (sealed under the nurse's passphrase) and the certificate
the ward authority gave it (``bedside trust certify``). The answer is the certificate and a
signature over the unit's id and its fresh challenge: nothing a unit, a cable or a recording
could replay elsewhere or later, and no secret that the ward shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bedside.core.errors import BedsideError
from bedside.durable import read_bounded
from bedside.link import certified
from bedside.trust import keys, signed
from bedside.trust.signed import Untrusted


class LaptopKeyError(BedsideError):
    """The laptop's key or certificate cannot be used; the message says what to do."""


@dataclass(frozen=True)
class LaptopKey:
    key: keys.PrivateKey
    cert: signed.Document

    @property
    def cert_id(self) -> str:
        return str(self.cert.body.get("cert", ""))

    def answer(self, unit: str, nonce: str) -> tuple[str, str]:
        """The two arguments of ``keyunlock``: the certificate and the signature."""
        doc = self.key.sign("unlock", certified.answer_body(unit, nonce, self.cert_id))
        return certified.encode_cert(self.cert), doc.sig.hex()


def load(key_path: Path, cert_path: Path, passphrase: str, now: datetime | None = None) -> LaptopKey:
    try:
        key = keys.load(key_path, passphrase, "laptop")
    except keys.KeyFileError as e:
        raise LaptopKeyError(str(e)) from None
    try:
        cert = signed.parse(read_bounded(cert_path, signed.MAX_BYTES), f"the certificate {cert_path}")
    except OSError as e:
        raise LaptopKeyError(f"the certificate {cert_path} cannot be read ({e.strerror or e})") from None
    except ValueError as e:                        # larger than any certificate (durable.TooLarge)
        raise LaptopKeyError(f"the certificate {cert_path} cannot be read ({e})") from None
    except Untrusted as e:
        raise LaptopKeyError(str(e)) from None
    if cert.kind != "laptop" or cert.body.get("public") != key.public.hex():
        raise LaptopKeyError(f"{cert_path} is not the certificate of the key in {key_path}")
    try:
        expires = datetime.fromisoformat(str(cert.body.get("expires")))
    except ValueError:
        raise LaptopKeyError(f"{cert_path} is damaged (no expiry)") from None
    if expires.tzinfo is None:                     # a time of no zone compares with none of ours
        raise LaptopKeyError(f"{cert_path} is damaged (its expiry names no time zone)")
    if (now or datetime.now(UTC)) >= expires:
        raise LaptopKeyError(f"the certificate in {cert_path} expired on {expires.date()}: ask the ward for a new one "
                             "(bedside trust certify)")
    return LaptopKey(key, cert)
