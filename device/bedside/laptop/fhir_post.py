"""``bedside fhir --post``: send a transaction Bundle to a FHIR server with the standard library.

A transaction goes to the server's base URL (``POST [base]``), all or nothing: the server
applies every entry or none. Each failure gets its own message for the person at the
laptop, with the server's own explanation (its ``OperationOutcome``) when it gave one.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from typing import Any

FHIR_JSON = "application/fhir+json"
TIMEOUT_S = 120.0

# What an HTTP status means for the person posting, and what to do.
HTTP_HELP = {
    400: "the server rejected the bundle as malformed",
    401: "the server wants credentials, which bedside fhir does not send: post the file with curl and the "
         "hospital's token (docs/fhir.md), or ask for an endpoint open to this laptop",
    403: "the server refused this client: ask the FHIR server's administrators for write access",
    404: "there is no FHIR server at this address: give the server's base URL (ending in /fhir, or as its "
         "administrators name it)",
    405: "this address does not take transactions: give the server's base URL, not a resource's",
    409: "the server found a conflict with what it holds (a resource changed meanwhile): post again",
    412: "a conditional create matched more than one resource on the server: its identifiers are not unique "
         "there; ask its administrators",
    413: "the bundle is too large for this server: send fewer units or days at a time",
    415: "the server does not take FHIR JSON at this address",
    422: "the server could not process a resource in the bundle (it failed the server's validation)",
    429: "the server is busy (too many requests): post again later",
}


class PostError(Exception):
    """The bundle did not reach the server whole; nothing, or everything, was stored (transactions
    are all or nothing). The message says which and what to do."""


@dataclass(frozen=True, slots=True)
class Posted:
    status: int
    entries: int
    created: int             # 201: new on the server
    existing: int            # 200: already there (a conditional create matched)
    other: dict[str, int]


def post(base_url: str, body: bytes, timeout: float = TIMEOUT_S) -> Posted:
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PostError(f"{base_url!r} is not an http:// or https:// address of a FHIR server")
    req = urllib.request.Request(base_url, data=body, method="POST",
                                 headers={"Content-Type": f"{FHIR_JSON}; charset=utf-8", "Accept": FHIR_JSON,
                                          "Prefer": "return=minimal"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        detail = _outcome(e.read())
        hint = HTTP_HELP.get(e.code) or ("the server failed (its own error): nothing was stored; post again "
                                         "later, or tell its administrators" if e.code >= 500 else
                                         "the server refused the bundle")
        raise PostError(f"HTTP {e.code} {e.reason} from {base_url}: {hint}" + (f". The server says: {detail}"
                                                                               if detail else "")) from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, socket.timeout | TimeoutError):
            raise PostError(f"no answer from {base_url} within {timeout:.0f} s: the server may still be "
                            "working; post again (nothing is stored twice)") from None
        if isinstance(reason, ConnectionRefusedError):
            raise PostError(f"nothing is listening at {base_url} (connection refused): is the server running, "
                            "and is the port right?") from None
        if isinstance(reason, socket.gaierror):
            raise PostError(f"cannot find the host {parts.hostname!r}: check the address") from None
        raise PostError(f"cannot reach {base_url}: {reason}") from None
    except TimeoutError:
        raise PostError(f"no answer from {base_url} within {timeout:.0f} s: post again (nothing is stored "
                        "twice)") from None
    except (ConnectionError, OSError) as e:
        raise PostError(f"the connection to {base_url} failed: {e}") from None
    return _summary(status, raw, base_url)


def _outcome(raw: bytes) -> str:
    """The server's explanation: its OperationOutcome's issues, or the start of its text."""
    try:
        doc = json.loads(raw)
    except ValueError:
        text = raw.decode("utf-8", "replace").strip()
        return text[:300]
    if isinstance(doc, dict) and doc.get("resourceType") == "OperationOutcome":
        found = doc.get("issue")
        issues: list[Any] = found if isinstance(found, list) else []
        texts = [str(i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code"))
                 for i in issues if isinstance(i, dict)]
        return "; ".join(texts[:5]) + (f" (and {len(texts) - 5} more)" if len(texts) > 5 else "")
    return ""


def _summary(status: int, raw: bytes, base_url: str) -> Posted:
    try:
        doc: Any = json.loads(raw)
    except ValueError:
        raise PostError(f"{base_url} answered HTTP {status} but not with FHIR JSON: is it a FHIR server? "
                        "(the bundle may have been stored; posting again stores nothing twice)") from None
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle" or doc.get("type") != "transaction-response":
        raise PostError(f"{base_url} answered HTTP {status} without a transaction-response: is it a FHIR server?")
    codes: Counter[str] = Counter()
    found = doc.get("entry")
    entries: list[Any] = found if isinstance(found, list) else []
    for e in entries:
        st = str(((e or {}).get("response") or {}).get("status", "?")).split()[0]
        codes[st] += 1
    created, existing = codes.pop("201", 0), codes.pop("200", 0)
    return Posted(status, len(entries), created, existing, dict(codes))
