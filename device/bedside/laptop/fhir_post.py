"""``bedside fhir --post``: send a transaction Bundle to a hospital's FHIR server, as its gateway expects.

* **Credentials**: none, a bearer token read from a file, OAuth 2.0 client credentials (a client
  secret read from a file), or SMART Backend Services (a JWT assertion signed with the client's
  RS384 or ES384 key: ``cryptography``, the laptop extra). A token is asked for once per post.
* **Bounds**: one total deadline for the whole post (token included), however slowly the server
  drips its answer; an answer larger than ``MAX_ANSWER`` is refused; a redirect is followed only
  to the same scheme, host and port, and only one that keeps the method and body (307/308).
* **Checks**: the transaction-response is compared with the request entry by entry: as many
  entries as were sent, each a 2xx for its own resource type. Anything else is a failure in one
  line saying what the server did wrong.

A transaction is all or nothing on the server. Where the server takes only small transactions,
``max_entries`` splits the bundle (``report.fhir.split``), in the order its references need.
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import socket
import ssl
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bedside.core.errors import BedsideError
from bedside.durable import TooLarge, read_bounded

FHIR_JSON = "application/fhir+json"
TIMEOUT_S = 120.0                   # the whole post, every request and every byte of every answer
MAX_ANSWER = 32 * 2**20             # a transaction-response for a ward's month is a few MiB at most
MAX_REDIRECTS = 3
MAX_TOKEN_FILE = 64 * 1024
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# What an HTTP status means for the person posting, and what to do.
HTTP_HELP = {
    400: "the server rejected the bundle as malformed",
    401: "the server wants credentials, or refused the ones sent: give the hospital's token or client "
         "(--token-file, or [auth] in the settings file; docs/fhir.md)",
    403: "the server refused this client: ask the FHIR server's administrators for write access",
    404: "there is no FHIR server at this address, or a resource the bundle points at (the hospital's Patient "
         "or Encounter) is not on it",
    405: "this address does not take transactions: give the server's base URL, not a resource's",
    409: "the server found a conflict with what it holds (a resource changed meanwhile): post again",
    412: "a conditional write or reference matched more than one resource on the server: its identifiers "
         "are not unique there; ask its administrators",
    413: "the bundle is too large for this server: send fewer units at a time, or set max_entries",
    415: "the server does not take FHIR JSON at this address",
    422: "the server could not process a resource in the bundle (it failed the server's validation)",
    429: "the server is busy (too many requests): post again later",
}


class PostError(BedsideError):
    """The bundle did not reach the server whole; the message (one line) says what the server did
    wrong and what to do."""


@dataclass(frozen=True, slots=True)
class Auth:
    """How the laptop proves itself to the hospital's gateway (docs/fhir.md, "Credentials")."""

    method: str = "none"             # none | token | client_credentials | smart_backend
    token_file: Path | None = None
    token_url: str = ""
    client_id: str = ""
    client_secret_file: Path | None = None
    private_key_file: Path | None = None
    key_id: str = ""
    scope: str = "system/*.write"


@dataclass(frozen=True, slots=True)
class Posted:
    transactions: int
    entries: int
    created: int             # 201: new on the server
    updated: int             # 200: already there (updated where it changed, or a create that matched)
    other: dict[str, int] = field(default_factory=dict)


class _Clock:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self, url: str) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise PostError(f"no whole answer from {url} within {self.seconds:.0f} s: the server may still be "
                            "working; post again (nothing is stored twice)")
        return left


def _one_line(text: str) -> str:
    return " ".join(text.split())


def request(method: str, url: str, body: bytes | None, headers: Mapping[str, str], clock: _Clock,
            max_answer: int = MAX_ANSWER) -> tuple[int, str, bytes, Mapping[str, str]]:
    """One HTTP exchange inside the total deadline: (status, reason, body, headers)."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PostError(f"{url!r} is not an http:// or https:// address")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        conn: http.client.HTTPConnection
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, port, timeout=clock.left(url),
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(parts.hostname, port, timeout=clock.left(url))
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            try:
                conn.request(method, path, body=body, headers=dict(headers))
                conn.sock.settimeout(clock.left(url))
                resp = conn.getresponse()
                status, reason, got = resp.status, resp.reason, {k.lower(): v for k, v in resp.getheaders()}
                size = got.get("content-length", "")
                if size.isdigit() and int(size) > max_answer:
                    raise PostError(f"{url} answered with {int(size) / 2**20:.0f} MiB, more than the "
                                    f"{max_answer / 2**20:.0f} MiB any answer to this post can need: refused")
                chunks, total = [], 0
                while True:
                    if conn.sock is not None:
                        conn.sock.settimeout(clock.left(url))
                    chunk = resp.read1(65536)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > max_answer:
                        raise PostError(f"{url} sent more than {max_answer / 2**20:.0f} MiB in answer, more "
                                        "than any answer to this post can need: stopped reading")
                    chunks.append(chunk)
                    clock.left(url)
                raw = b"".join(chunks)
            except TimeoutError:
                clock.left(url)
                raise PostError(f"no whole answer from {url} within {clock.seconds:.0f} s: post again "
                                "(nothing is stored twice)") from None
            except ConnectionRefusedError:
                raise PostError(f"nothing is listening at {url} (connection refused): is the server running, and "
                                "is the port right?") from None
            except socket.gaierror:
                raise PostError(f"cannot find the host {parts.hostname!r}: check the address") from None
            except ssl.SSLError as e:
                raise PostError(f"the TLS connection to {parts.hostname} failed: {_one_line(str(e))}") from None
            except (http.client.HTTPException, OSError) as e:
                raise PostError(f"the connection to {url} failed: {_one_line(str(e)) or type(e).__name__}") \
                    from None
        finally:
            conn.close()
        if status in (301, 302, 303, 307, 308):
            where = urllib.parse.urljoin(url, got.get("location", ""))
            there = urllib.parse.urlsplit(where)
            same = (there.scheme, there.hostname, there.port or (443 if there.scheme == "https" else 80)) == \
                   (parts.scheme, parts.hostname, port)
            if not same:
                raise PostError(f"{url} answered {status}, sending the post to another host ({where}): not "
                                "followed, so the bundle and credentials stay with the server you named; give "
                                "that address if it is the hospital's")
            if status not in (307, 308):
                raise PostError(f"{url} answered {status} to {where}, which would turn the post into a GET "
                                "without the bundle: not followed; give that address")
            url = where
            continue
        return status, reason, raw, got
    raise PostError(f"{url} redirected more than {MAX_REDIRECTS} times: not followed further")


# --- credentials --------------------------------------------------------------------------------

def _read_secret(path: Path | None, what: str) -> str:
    if path is None:
        raise PostError(f"the {what} file is not set (docs/fhir.md, Credentials)")
    try:
        data = read_bounded(path, MAX_TOKEN_FILE)      # a fifo is not waited on
    except OSError as e:
        raise PostError(f"cannot read the {what} file {path}: {e.strerror}") from None
    except TooLarge:
        raise PostError(f"the {what} file {path} is larger than any {what}: is it the right file?") from None
    text = data.decode("utf-8", "replace").strip()
    if not text or (any(c.isspace() for c in text) and what != "private key"):
        raise PostError(f"the {what} file {path} is empty or holds more than one word: it must hold the {what} alone")
    return text


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def assertion(auth: Auth, now: float | None = None) -> str:
    """The SMART Backend Services client assertion: a JWT signed with the client's private key
    (RS384 for an RSA key, ES384 for an EC P-384 key), valid for five minutes, for the token URL."""
    try:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
    except ImportError:
        raise PostError("SMART Backend Services needs the cryptography package: install bedside's laptop "
                        "extra (pip install 'bedside[laptop]')") from None
    pem = _read_secret(auth.private_key_file, "private key").encode()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        raise PostError(f"{auth.private_key_file} is not an unencrypted PEM private key: {_one_line(str(e))}") \
            from None
    if isinstance(key, rsa.RSAPrivateKey):
        alg = "RS384"
    elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1":
        alg = "ES384"
    else:
        raise PostError(f"{auth.private_key_file} is neither an RSA key nor an EC P-384 key (SMART Backend "
                        "Services signs with RS384 or ES384)")
    issued = datetime.now(UTC).timestamp() if now is None else now
    header = {"alg": alg, "typ": "JWT", **({"kid": auth.key_id} if auth.key_id else {})}
    claims = {"iss": auth.client_id, "sub": auth.client_id, "aud": auth.token_url, "exp": int(issued) + 300,
              "jti": secrets.token_urlsafe(24)}
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}".encode()
    if isinstance(key, rsa.RSAPrivateKey):
        sig = key.sign(signing, padding.PKCS1v15(), hashes.SHA384())
    else:
        r, s = utils.decode_dss_signature(key.sign(signing, ec.ECDSA(hashes.SHA384())))
        sig = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    return f"{signing.decode()}.{_b64(sig)}"


def token(auth: Auth, clock: _Clock) -> str | None:
    """The bearer token to send, or None for no credentials."""
    if auth.method == "none":
        return None
    if auth.method == "token":
        return _read_secret(auth.token_file, "token")
    if auth.method not in ("client_credentials", "smart_backend"):
        raise PostError(f"unknown credentials method {auth.method!r} (none, token, client_credentials, "
                        "smart_backend)")
    if not auth.token_url or not auth.client_id:
        raise PostError(f"{auth.method} needs the token URL and the client id ([auth] token_url, client_id)")
    form = {"grant_type": "client_credentials", "scope": auth.scope}
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if auth.method == "client_credentials":
        secret = _read_secret(auth.client_secret_file, "client secret")
        pair = f"{urllib.parse.quote(auth.client_id, safe='')}:{urllib.parse.quote(secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        form.update({"client_assertion_type": JWT_BEARER, "client_assertion": assertion(auth)})
    status, reason, raw, _ = request("POST", auth.token_url, urllib.parse.urlencode(form).encode(), headers, clock,
                                     max_answer=1 << 20)
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if status != 200:
        said = (f": {doc.get('error')} {doc.get('error_description') or ''}".rstrip()
                if isinstance(doc, dict) and doc.get("error") else "")
        raise PostError(_one_line(f"the token endpoint {auth.token_url} refused this client (HTTP {status} {reason})"
                                  f"{said}: check the client id, its secret or key, and the scope"))
    got = doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(got, str) or not got or any(c.isspace() for c in got):
        raise PostError(f"the token endpoint {auth.token_url} answered 200 without an access_token")
    if str(doc.get("token_type", "bearer")).lower() != "bearer":
        raise PostError(f"the token endpoint gave a {doc.get('token_type')!r} token; bedside sends bearer tokens")
    return got


# --- posting ------------------------------------------------------------------------------------

def post(base_url: str, doc: Mapping[str, Any], *, auth: Auth | None = None, timeout: float = TIMEOUT_S,
         max_entries: int = 0, max_answer: int = MAX_ANSWER) -> Posted:
    """Send the bundle (split into transactions of ``max_entries`` where set) and check each answer."""
    from bedside.report.fhir import split

    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PostError(f"{base_url!r} is not an http:// or https:// address of a FHIR server")
    clock = _Clock(timeout)
    bearer = token(auth or Auth(), clock)
    headers = {"Content-Type": f"{FHIR_JSON}; charset=utf-8", "Accept": FHIR_JSON, "Prefer": "return=minimal"}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    codes: Counter[str] = Counter()
    parts_sent = split(doc, max_entries)
    sent = 0
    for n, part in enumerate(parts_sent, 1):
        body = json.dumps(part, ensure_ascii=False, separators=(",", ":")).encode()
        status, reason, raw, _ = request("POST", base_url, body, headers, clock, max_answer)
        where = f" (transaction {n} of {len(parts_sent)}; {sent} entries stored before it)" if len(parts_sent) > 1 \
            else ""
        if status >= 300:
            detail = _outcome(raw)
            hint = HTTP_HELP.get(status) or ("the server failed (its own error): nothing was stored; post again "
                                             "later, or tell its administrators" if status >= 500 else
                                             "the server refused the bundle")
            raise PostError(_one_line(f"HTTP {status} {reason} from {base_url}: {hint}{where}"
                                      + (f". The server says: {detail}" if detail else "")))
        try:
            codes.update(check(part, status, raw, base_url))
        except PostError as e:
            raise PostError(f"{e}{where}") from None
        sent += len(part.get("entry") or [])
    created, updated = codes.pop("201", 0), codes.pop("200", 0)
    return Posted(len(parts_sent), sent, created, updated, dict(codes))


def _outcome(raw: bytes) -> str:
    """The server's explanation: its OperationOutcome's issues, or the start of its text."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return _one_line(raw.decode("utf-8", "replace"))[:300]
    if isinstance(doc, dict) and doc.get("resourceType") == "OperationOutcome":
        found = doc.get("issue")
        issues: list[Any] = found if isinstance(found, list) else []
        texts = [str(i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code"))
                 for i in issues if isinstance(i, dict)]
        return _one_line("; ".join(texts[:5]) + (f" (and {len(texts) - 5} more)" if len(texts) > 5 else ""))
    return ""


def check(sent: Mapping[str, Any], status: int, raw: bytes, base_url: str) -> Counter[str]:
    """The transaction-response against the request, entry by entry; the status codes counted."""
    try:
        doc: Any = json.loads(raw)
    except ValueError:
        raise PostError(f"{base_url} answered HTTP {status} but not with FHIR JSON: is it a FHIR server's base "
                        "URL? (posting again stores nothing twice)") from None
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle" or doc.get("type") != "transaction-response":
        raise PostError(f"{base_url} answered HTTP {status} without a transaction-response Bundle: is it a FHIR "
                        "server's base URL?")
    asked: Sequence[Any] = sent.get("entry") or []
    found = doc.get("entry")
    got: list[Any] = found if isinstance(found, list) else []
    if len(got) != len(asked):
        raise PostError(f"{base_url} answered HTTP {status} with {len(got)} entries for the {len(asked)} sent: it "
                        "did not process the bundle as a transaction, so nothing can be taken as stored")
    codes: Counter[str] = Counter()
    for i, (req, ans) in enumerate(zip(asked, got, strict=True)):
        kind = req["resource"]["resourceType"]
        resp = ans.get("response") if isinstance(ans, dict) else None
        if not isinstance(resp, dict):
            raise PostError(f"{base_url}: entry {i + 1} ({kind}) of its transaction-response has no response")
        code = str(resp.get("status", "")).split(" ")[0]
        if not code.startswith("2"):
            raise PostError(_one_line(f"{base_url}: entry {i + 1} ({kind}, {req['request']['url']}) answered "
                                      f"{resp.get('status')!r} inside a successful transaction"))
        location = str(resp.get("location") or "")
        path = urllib.parse.urlsplit(location).path if "://" in location else location
        if location and f"{kind}/" not in f"/{path.lstrip('/')}":
            raise PostError(_one_line(f"{base_url}: entry {i + 1} was a {kind} but the server says it stored "
                                      f"{location}: its answers are not in the order sent"))
        codes[code] += 1
    return codes
