"""The FHIR R4 bundle: every resource checked against fhir.resources' R4 models; the daily summary
Observations, the CarePlan's timing, a Procedure per session when asked; conditional updates on
URL-encoded business identifiers; the verdict in a Provenance; broken records refused or marked;
``--post`` against servers on 127.0.0.1 that misbehave (the real engine: test_fhir_engine.py)."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fhir.resources import __fhir_version__, construct_fhir_element

from bedside.laptop import fhir_post
from bedside.report import fhir, ward
from tests.report.test_adherence import _discharge_day
from tests.report.test_ward import NOW, TAKEN, ward_dir  # noqa: F401  (the fixture)
from tests.rigs import ward_rig as wr
from tests.rigs.cli import run


def units_in(*paths: Path) -> list[ward.UnitRecord]:
    return ward.merge(ward.find(list(paths), print))


@pytest.fixture
def discharge_unit(tmp_path: Path) -> list[ward.UnitRecord]:
    wr.as_pull(tmp_path / "p", "u1", _discharge_day(), TAKEN)
    return units_in(tmp_path / "p")


PER_SESSION = fhir.Settings(per_session=True)


def exts(res: dict[str, Any]) -> dict[str, Any]:
    """Extension values by the last part of their URL."""
    return {x["url"].rsplit("/", 1)[1]: next(v for k, v in x.items() if k.startswith("value"))
            for x in res["extension"]}


def resources(doc: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in doc["entry"] if e["resource"]["resourceType"] == kind]


def test_every_resource_passes_the_r4_models(ward_dir: Path) -> None:  # noqa: F811
    assert __fhir_version__ == "4.0.1"
    doc = fhir.bundle(units_in(ward_dir / "pulls", ward_dir / "STICK"), exported=NOW)
    assert doc["resourceType"] == "Bundle" and doc["type"] == "transaction"
    for e in doc["entry"]:
        construct_fhir_element(e["resource"]["resourceType"], e["resource"])   # raises on anything not R4
    construct_fhir_element("Bundle", doc)
    assert fhir.validate(doc) == []
    # Every reference inside the bundle resolves to an entry of it.
    urls = [e["fullUrl"] for e in doc["entry"]]
    assert len(urls) == len(set(urls))
    refs = {m for m in json.dumps(doc).split('"reference": "')[1:] for m in [m.split('"')[0]]}
    assert refs <= set(urls)
    assert len({fhir.conditional_url(e) for e in doc["entry"]}) == len(doc["entry"])
    kinds = [e["resource"]["resourceType"] for e in doc["entry"]]
    assert kinds.count("Device") == kinds.count("Provenance") == 10
    assert "Procedure" not in kinds and kinds.count("Observation") > 0     # per-session resources are optional
    # Every write is conditional on a business identifier, URL-encoded; nothing searches entity:identifier.
    for e in doc["entry"]:
        req = e["request"]
        query = req["url"].split("?", 1)[1] if req["method"] == "PUT" else req["ifNoneExist"]
        param, value = query.split("=", 1)
        assert param in ("identifier", "_tag") and " " not in value and "|" not in value and "%7C" in value
        assert (req["method"], param) in (("PUT", "identifier"), ("POST", "_tag"))
    assert all(x["url"].startswith(fhir.EXT) for e in doc["entry"] for x in e["resource"].get("extension", []))


def test_sessions_become_procedures_of_the_patient_only(discharge_unit: list[ward.UnitRecord]) -> None:
    doc = fhir.bundle(discharge_unit, exported=NOW, system="https://hospital.example/ids/bedside",
                      settings=PER_SESSION)
    procs = resources(doc, "Procedure")
    # The patient's 15; the one open at the discharge and the empty bed's 11 are nobody's procedures.
    assert len(procs) == 15
    done = next(p for p in procs if p["identifier"][0]["value"] == "u1/2026-11-29T10:00 hourly")
    assert done["identifier"][0]["system"] == "https://hospital.example/ids/bedside/session"
    assert done["status"] == "completed" and done["code"]["coding"][0] == fhir.EXERCISE_THERAPY
    assert done["performedPeriod"] == {"start": "2026-11-29T10:03:20+01:00", "end": "2026-11-29T10:05:00+01:00"}
    ext = exts(done)
    assert (ext["reps-done"], ext["reps-planned"], ext["late-minutes"], ext["snoozes"]) == (20, 20, 1, 0)
    assert ext["due"] == "2026-11-29T10:00:00+01:00"
    assert all(p["identifier"][0]["value"] != "u1/2026-11-30T11:00 hourly" for p in procs)
    assert all(p["subject"]["identifier"]["value"] == "E2026-0042" and "reference" not in p["subject"] for p in procs)
    (enc,) = resources(doc, "Encounter")
    assert enc["status"] == "finished" and enc["period"] == {"start": "2026-11-29T09:30:00+01:00",
                                                              "end": "2026-11-30T11:00:00+01:00"}
    (plan,) = resources(doc, "CarePlan")
    assert plan["status"] == "completed" and "standard" in plan["title"]
    (prov,) = resources(doc, "Provenance")
    ext = exts(prov)
    assert ext["journal-verdict"].startswith("OK: chain intact") and ext["journal-trusted"] is True
    assert ext["chain-head"].startswith(f"{len(_discharge_day())}/")
    assert len(prov["target"]) == 1 + 1 + 1 + 2 + 15       # Encounter, Device, CarePlan, 2 days, 15 sessions
    assert "security" not in prov["meta"]
    assert "name" not in {k for p in procs for k in p["subject"]}


def test_a_broken_record_is_refused_unless_allowed_and_then_marked(ward_dir: Path) -> None:  # noqa: F811
    units = units_in(ward_dir / "loose")
    with pytest.raises(fhir.BundleError, match="the record of bed04 FAILED verification"):
        fhir.bundle(units, exported=NOW)
    doc = fhir.bundle(units, exported=NOW, allow_broken=True)
    four = [e["resource"] for e in doc["entry"] if "bed04" in json.dumps(e["resource"]["identifier"]
                                                                         if "identifier" in e["resource"] else
                                                                         e["resource"]["entity"])]
    assert four and all(r["meta"]["security"][0]["code"] == "broken-record" for r in four)
    prov = next(r for r in four if r["resourceType"] == "Provenance")
    assert any(x.get("valueBoolean") is False for x in prov["extension"])
    assert fhir.validate(doc) == []


# --- posting to servers that misbehave (the real engine's tests are in test_fhir_engine.py) --------

class Server:
    """A server on 127.0.0.1 that answers as told: ``answer(handler, body)`` writes the whole response.
    The default is a well-behaved transaction endpoint (one 201 per entry)."""

    def __init__(self, answer: Any = None) -> None:
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(size)
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                (answer or outer.created)(self, body)

            do_POST = do_GET = _any

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def send(h: BaseHTTPRequestHandler, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        h.send_response(code)
        for k, v in {"Content-Type": "application/fhir+json", "Content-Length": str(len(body)),
                     **(headers or {})}.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    @classmethod
    def created(cls, h: BaseHTTPRequestHandler, body: bytes) -> None:
        doc = json.loads(body)
        out = [{"response": {"status": "201 Created", "location": f"{e['resource']['resourceType']}/{n}/_history/1"}}
               for n, e in enumerate(doc["entry"])]
        cls.send(h, 200, json.dumps({"resourceType": "Bundle", "type": "transaction-response", "entry": out}).encode())

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def fixed(code: int, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return lambda h, _: Server.send(h, code, body, headers)


@pytest.mark.parametrize(("code", "body", "says"), [
    (400, b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid",'
          b'"diagnostics":"Bundle.entry[3]: unknown element"}]}', "HTTP 400 Bad Request from"),
    (401, b"", "wants credentials"),
    (404, b"<html>nope</html>", "there is no FHIR server at this address"),
    (412, b"", "matched more than one resource"),
    (422, b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing",'
          b'"details":{"text":"Procedure.status:\\nbad code"}}]}', "The server says: Procedure.status: bad code"),
    (500, b"", "the server failed (its own error)"),
    (200, b"<html>a web page</html>", "not with FHIR JSON"),
])
def test_each_http_failure_is_said_in_one_line(code: int, body: bytes, says: str,
                                                discharge_unit: list[ward.UnitRecord]) -> None:
    doc = fhir.bundle(discharge_unit, exported=NOW)
    with Server(fixed(code, body)) as s, pytest.raises(fhir_post.PostError) as e:
        fhir_post.post(s.url, doc, timeout=10)
    assert says in str(e.value) and "\n" not in str(e.value)
    if code == 400:
        assert "Bundle.entry[3]: unknown element" in str(e.value)


def test_a_transaction_response_is_checked_entry_by_entry(discharge_unit: list[ward.UnitRecord]) -> None:
    doc = fhir.bundle(discharge_unit, exported=NOW, settings=fhir.Settings(per_session=True))
    n = len(doc["entry"])

    def answer(entries: list[dict[str, Any]]) -> Any:
        return fixed(200, json.dumps({"resourceType": "Bundle", "type": "transaction-response",
                                      "entry": entries}).encode())

    ok = [{"response": {"status": "201 Created", "location": f"{e['resource']['resourceType']}/1"}}
          for e in doc["entry"]]
    for entries, says in (
            ([], f"with 0 entries for the {n} sent"),
            (ok[:-1], f"with {n - 1} entries for the {n} sent"),
            ([*ok[:3], {"response": {"status": "404 Not Found"}}, *ok[4:]], "entry 4 (Observation"),
            ([*ok[:3], {"response": {"status": "201", "location": "Patient/9"}}, *ok[4:]], "not in the order sent"),
            ([*ok[:2], {}, *ok[3:]], "entry 3 (CarePlan) of its transaction-response has no response")):
        with Server(answer(entries)) as s, pytest.raises(fhir_post.PostError, match=None) as e:
            fhir_post.post(s.url, doc, timeout=10)
        assert says in str(e.value), str(e.value)
    with Server(fixed(200, b'{"resourceType":"Bundle","type":"batch-response","entry":[]}')) as s, \
            pytest.raises(fhir_post.PostError, match="without a transaction-response"):
        fhir_post.post(s.url, doc, timeout=10)
    with Server() as s:
        got = fhir_post.post(s.url, doc, timeout=10)
    assert (got.created, got.entries, got.transactions) == (n, n, 1)


def test_a_redirect_to_another_host_is_not_followed(discharge_unit: list[ward.UnitRecord]) -> None:
    doc = fhir.bundle(discharge_unit, exported=NOW)
    with Server() as other:
        elsewhere = other.url.replace("127.0.0.1", "localhost")
        for code in (302, 307):
            with Server(fixed(code, b"", {"Location": elsewhere})) as s, \
                    pytest.raises(fhir_post.PostError, match=f"answered {code}, sending the post to another host"):
                fhir_post.post(s.url, doc, timeout=10)
            assert len(s.requests) == 1
        assert other.requests == []                  # nothing, not even a GET, went to the other host
    # A 307 to the same server is followed with the method and the bundle; a 302 there is not.
    with Server() as s:
        def moved(h: BaseHTTPRequestHandler, body: bytes) -> None:
            if h.path == "/fhir":
                Server.send(h, 307, b"", {"Location": "/fhir/R4"})
            else:
                Server.created(h, body)
        s2 = Server(moved)
        with s2:
            assert fhir_post.post(s2.url, doc, timeout=10).created == len(doc["entry"])
            assert [(m, p) for m, p, _, _ in s2.requests] == [("POST", "/fhir"), ("POST", "/fhir/R4")]
            assert s2.requests[0][3] == s2.requests[1][3]
        with Server(fixed(302, b"", {"Location": "/fhir/R4"})) as s3, \
                pytest.raises(fhir_post.PostError, match="would turn the post into a GET"):
            fhir_post.post(s3.url, doc, timeout=10)


def test_an_endless_answer_is_cut_at_the_size_cap(discharge_unit: list[ward.UnitRecord]) -> None:
    doc = fhir.bundle(discharge_unit, exported=NOW)

    def endless(h: BaseHTTPRequestHandler, body: bytes) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/fhir+json")
        h.end_headers()
        chunk = b" " * 65536
        with contextlib.suppress(OSError):
            for _ in range(100_000):          # 6.5 GB if nobody stops reading
                h.wfile.write(chunk)

    with Server(endless) as s, pytest.raises(fhir_post.PostError, match="more than 1 MiB in answer"):
        fhir_post.post(s.url, doc, timeout=30, max_answer=2**20)
    with Server(fixed(200, b"", {"Content-Length": str(2**31)})) as s, \
            pytest.raises(fhir_post.PostError, match="answered with 2048 MiB"):
        fhir_post.post(s.url, doc, timeout=30, max_answer=2**20)


def test_a_server_dripping_its_answer_meets_one_total_deadline(discharge_unit: list[ward.UnitRecord]) -> None:
    doc = fhir.bundle(discharge_unit, exported=NOW)

    def drip(h: BaseHTTPRequestHandler, body: bytes) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/fhir+json")
        h.end_headers()
        with contextlib.suppress(OSError):
            for _ in range(60):
                h.wfile.write(b" ")
                h.wfile.flush()
                time.sleep(0.25)

    with Server(drip) as s, pytest.raises(fhir_post.PostError, match=r"no whole answer .* within 2 s"):
        start = time.monotonic()
        fhir_post.post(s.url, doc, timeout=2)
    assert time.monotonic() - start < 3.5


def test_nothing_listening_and_a_bad_address(discharge_unit: list[ward.UnitRecord], tmp_path: Path) -> None:
    with Server() as s:
        url = s.url
    with pytest.raises(fhir_post.PostError, match="nothing is listening"):
        fhir_post.post(url, {"entry": []}, timeout=5)
    with pytest.raises(fhir_post.PostError, match="not an http"):
        fhir_post.post("ftp://x/fhir", {"entry": []})
    wr.as_pull(tmp_path / "p", "u1", _discharge_day(), TAKEN)
    r = run("fhir", str(tmp_path / "p"), "-o", str(tmp_path / "b.json"), "--post", url)
    assert r.returncode == 4 and "written to" in r.stderr and "nothing is listening" in r.stderr
    assert (tmp_path / "b.json").exists() and "Traceback" not in r.stderr


def test_credentials_files_are_read_with_care(tmp_path: Path) -> None:
    clock = fhir_post._Clock(5)
    (tmp_path / "t").write_text("  tok-123\n")
    assert fhir_post.token(fhir_post.Auth("token", token_file=tmp_path / "t"), clock) == "tok-123"
    (tmp_path / "t").write_text("")
    with pytest.raises(fhir_post.PostError, match="empty or holds more than one word"):
        fhir_post.token(fhir_post.Auth("token", token_file=tmp_path / "t"), clock)
    with pytest.raises(fhir_post.PostError, match="cannot read the token file"):
        fhir_post.token(fhir_post.Auth("token", token_file=tmp_path / "none"), clock)
    (tmp_path / "k").write_text("not a key")
    with pytest.raises(fhir_post.PostError, match="is not an unencrypted PEM private key"):
        fhir_post.assertion(fhir_post.Auth("smart_backend", private_key_file=tmp_path / "k", client_id="c",
                                           token_url="https://x/token"))


def test_the_client_assertion_is_a_signed_jwt_for_the_token_url(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    key = ec.generate_private_key(ec.SECP384R1())
    (tmp_path / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    auth = fhir_post.Auth("smart_backend", private_key_file=tmp_path / "k.pem", client_id="bedside-ward7",
                          token_url="https://auth.hospital.example/token", key_id="k1")
    jwt = fhir_post.assertion(auth, now=1_800_000_000)

    def part(p: str) -> Any:
        return base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))

    h, c, sig = jwt.split(".")
    assert json.loads(part(h)) == {"alg": "ES384", "typ": "JWT", "kid": "k1"}
    claims = json.loads(part(c))
    assert {k: claims[k] for k in ("iss", "sub", "aud", "exp")} == {
        "iss": "bedside-ward7", "sub": "bedside-ward7", "aud": "https://auth.hospital.example/token",
        "exp": 1_800_000_300}
    raw = part(sig)
    der = utils.encode_dss_signature(int.from_bytes(raw[:48], "big"), int.from_bytes(raw[48:], "big"))
    key.public_key().verify(der, f"{h}.{c}".encode(), ec.ECDSA(hashes.SHA384()))   # raises if it does not verify


def test_the_command_refuses_a_broken_record(ward_dir: Path, tmp_path: Path) -> None:  # noqa: F811
    r = run("fhir", str(ward_dir / "loose"), "-o", str(tmp_path / "b.json"))
    assert r.returncode == 3 and "--allow-broken" in r.stderr and not (tmp_path / "b.json").exists()
    r = run("fhir", str(ward_dir / "loose"), "-o", str(tmp_path / "b.json"), "--allow-broken")
    assert r.returncode == 0 and "marked broken-record" in r.stderr
    r = run("fhir", str(ward_dir / "loose"), "-o", str(tmp_path / "b.json"), "--identifier-system", "not a uri")
    assert r.returncode == 2 and "is not a URI" in r.stderr


def test_units_never_admitted_give_a_device_and_provenance_only(tmp_path: Path) -> None:
    bed = wr.Bed("bed30", date(2026, 11, 29), wr.local("2026-11-30T15:30"))
    wr.as_pull(tmp_path, "bed30", wr.records(bed), TAKEN)
    doc = fhir.bundle(units_in(tmp_path), exported=NOW)
    assert [e["resource"]["resourceType"] for e in doc["entry"]] == ["Device", "Provenance"]


def test_an_interrupted_session_is_a_stopped_procedure(tmp_path: Path) -> None:
    from tests.rigs.records import rec, sealed, srec

    sid = "2026-11-24T07:00 hourly"
    recs = sealed([rec("start", "2026-11-24T06:30", unit="u2"),
                   rec("admit", "2026-11-24T06:40", episode="E7", surgery="2026-11-23", regimen="standard"),
                   srec("prompt", sid, "2026-11-24T07:00", kind="hourly"),
                   srec("interrupted", sid, "2026-11-24T07:05", reason="power_loss", reps=8, planned=20,
                        started="2026-11-24T07:01:00.000+01:00", kind="hourly")])
    wr.as_pull(tmp_path, "u2", recs, TAKEN)
    doc = fhir.bundle(units_in(tmp_path), exported=NOW, settings=PER_SESSION)
    (proc,) = resources(doc, "Procedure")
    assert proc["status"] == "stopped" and proc["performedPeriod"] == {"start": "2026-11-24T07:01:00+01:00"}
    assert proc["statusReason"]["coding"][0]["code"] == "power_loss"
    assert proc["statusReason"]["text"] == "interrupted: power cut"
    assert (exts(proc)["reps-done"], exts(proc)["reps-planned"]) == (8, 20)
    assert fhir.validate(doc) == []


def test_an_extra_session_a_power_cut_stopped_is_a_stopped_procedure(tmp_path: Path) -> None:
    from tests.rigs.records import rec, sealed, srec

    x = "2026-11-24T10:30:03 extra"
    recs = sealed([rec("start", "2026-11-24T06:30", unit="u4"),
                   rec("admit", "2026-11-24T06:40", episode="E9", surgery="2026-11-23", regimen="standard"),
                   rec("press", "2026-11-24T10:30:03", session=x, kind="short", held_s=0.3, action="extra",
                       variation="pumps"),
                   srec("extra", x, "2026-11-24T10:35", due="2026-11-24T10:30:03.000+00:00", kind="extra",
                        interrupted=True, reason="power_loss", started="2026-11-24T10:30:03.000+00:00", reps=8,
                        planned=20, early=True, exercises=["Ankle pumps"])])
    wr.as_pull(tmp_path, "u4", recs, TAKEN)
    doc = fhir.bundle(units_in(tmp_path), exported=NOW, settings=PER_SESSION)
    (proc,) = resources(doc, "Procedure")
    assert proc["status"] == "stopped" and proc["performedPeriod"] == {"start": "2026-11-24T10:30:03+00:00"}
    assert proc["statusReason"]["text"] == "interrupted: power cut"
    assert (exts(proc)["reps-done"], exts(proc)["reps-planned"]) == (8, 20)
    assert fhir.validate(doc) == []


def test_a_session_in_a_nurses_pause_is_not_done_because_paused(tmp_path: Path) -> None:
    from tests.rigs.records import rec, sealed, srec

    sid = "2026-11-24T08:00 hourly"
    recs = sealed([rec("start", "2026-11-24T06:30", unit="u3"),
                   rec("admit", "2026-11-24T06:40", episode="E8", surgery="2026-11-23", regimen="standard"),
                   srec("paused", sid, "2026-11-24T08:00", kind="hourly")])
    wr.as_pull(tmp_path, "u3", recs, TAKEN)
    doc = fhir.bundle(units_in(tmp_path), exported=NOW, settings=PER_SESSION)
    (proc,) = resources(doc, "Procedure")
    assert proc["status"] == "not-done" and proc["statusReason"]["coding"][0]["code"] == "paused"
    assert proc["statusReason"]["text"] == "not offered: prompting paused by a nurse"
    assert fhir.validate(doc) == []


def test_an_extra_session_on_request_is_a_completed_procedure(tmp_path: Path) -> None:
    from tests.rigs.records import rec, sealed, srec

    sid = "2026-11-24T10:20:00 extra"
    recs = sealed([rec("start", "2026-11-24T06:30", unit="u4"),
                   rec("admit", "2026-11-24T06:40", episode="E9", surgery="2026-11-23", regimen="standard"),
                   srec("extra", sid, "2026-11-24T10:20", kind="extra", reps=10, planned=10,
                        started="2026-11-24T10:20:00.000+01:00", finished="2026-11-24T10:24:00.000+01:00")])
    wr.as_pull(tmp_path, "u4", recs, TAKEN)
    doc = fhir.bundle(units_in(tmp_path), exported=NOW, settings=PER_SESSION)
    (proc,) = resources(doc, "Procedure")
    assert proc["status"] == "completed" and proc["code"]["coding"][1]["code"] == "extra"
    assert (exts(proc)["reps-done"], exts(proc)["reps-planned"]) == (10, 10)
    assert fhir.validate(doc) == []


def test_the_settings_file_is_checked_and_each_problem_named(tmp_path: Path) -> None:
    wr.as_pull(tmp_path / "p", "u1", _discharge_day(), TAKEN)
    bad = tmp_path / "laptop.toml"
    bad.write_text('[hospital]\nvisit_system = "not a uri"\n\n[fhir]\nbase_url = "ftp://x"\nmax_entries = -1\n'
                   'colour = "red"\n\n[auth]\nmethod = "client_credentials"\n\n[units.u1]\nroom = "7"\n')
    r = run("fhir", str(tmp_path / "p"), "-o", str(tmp_path / "b.json"), "--settings", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr and not (tmp_path / "b.json").exists()
    for says in ("[hospital] visit_system: must be the hospital's URI", "[fhir] base_url: must be the FHIR server's",
                 "[fhir] max_entries: must be a number from 0", "[fhir] colour: unknown key",
                 "[auth] token_url: is needed", "[auth] client_secret_file: is needed", "[units.u1]: must be a table"):
        assert says in r.stderr, says
    r = run("fhir", str(tmp_path / "p"), "-o", str(tmp_path / "b.json"), "--post")
    assert r.returncode == 2 and "needs [fhir] base_url" in r.stderr
    good = tmp_path / "ok.toml"
    good.write_text('[fhir]\nper_session = true\n\n[units.u1]\nserial = "S-1"\nlocation = "Ward 7, bed 1"\n')
    ward_cfg = tmp_path / "bedside.toml"
    ward_cfg.write_text('[hospital]\nvisit_system = "https://hospital.example/ids/visit"\n')
    r = run("fhir", str(tmp_path / "p"), "-o", str(tmp_path / "b.json"), "--settings", str(good), "--config",
            str(ward_cfg))
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "b.json").read_text())
    (dev,) = resources(doc, "Device")
    assert (dev["serialNumber"], dev["location"]["display"]) == ("S-1", "Ward 7, bed 1")
    assert len(resources(doc, "Procedure")) == 15 and resources(doc, "Encounter") == []   # the hospital's Encounter
    (plan,) = resources(doc, "CarePlan")
    assert plan["encounter"]["reference"] == ("Encounter?identifier=https%3A%2F%2Fhospital.example%2Fids%2Fvisit"
                                              "%7CE2026-0042")
    timing = [a["detail"]["scheduledTiming"]["repeat"] for a in plan["activity"]]
    # The standard regimen from day 6 (the stay's first): the routine at 09:00 and 19:00, nothing hourly.
    assert timing == [{"boundsPeriod": {"start": "2026-11-29", "end": "2026-11-30"},
                       "timeOfDay": ["09:00:00", "19:00:00"]}]
    r = run("fhir", str(tmp_path / "p"), "-o", str(tmp_path / "b.json"), "--config", str(tmp_path / "none.toml"))
    assert r.returncode == 2 and "cannot read the ward's configuration" in r.stderr


def test_the_plan_steps_down_by_post_operative_day(tmp_path: Path) -> None:
    from bedside.core.config import Config
    from tests.rigs.records import rec, sealed

    recs = sealed([rec("start", "2026-11-24T06:30", unit="u5"),
                   rec("admit", "2026-11-24T06:40", episode="E10", surgery="2026-11-25", regimen="standard")])
    wr.as_pull(tmp_path, "u5", recs, TAKEN)
    doc = fhir.bundle(units_in(tmp_path), exported=NOW, settings=fhir.Settings(ward=Config()))
    (plan,) = resources(doc, "CarePlan")
    got = [(a["detail"]["code"]["coding"][1]["code"], a["detail"]["scheduledTiming"]["repeat"]["boundsPeriod"],
            len(a["detail"]["scheduledTiming"]["repeat"]["timeOfDay"])) for a in plan["activity"]]
    assert got == [("routine", {"start": "2026-11-24", "end": "2026-11-24"}, 2),           # before surgery
                   ("routine", {"start": "2026-11-25", "end": "2026-11-27"}, 2),           # days 0-2
                   ("hourly", {"start": "2026-11-25", "end": "2026-11-27"}, 13),           # 07:00-21:00 less 09 and 19
                   ("routine", {"start": "2026-11-28"}, 2)]                               # day 3 on
    assert fhir.validate(doc) == []


def test_a_record_past_the_reports_budget_is_refused_not_sent_short(
        discharge_unit: list[ward.UnitRecord], monkeypatch: pytest.MonkeyPatch) -> None:
    """The resources are made session by session: a record with more than a report lists (a
    runaway or crafted unit) would send numbers short of what it holds, so nothing is made."""
    from bedside.report import adherence

    monkeypatch.setattr(adherence, "SESSIONS_A_DAY", 1)
    with pytest.raises(fhir.BundleError, match="more sessions or admissions than a report lists"):
        fhir.bundle(discharge_unit, exported=NOW)
    with pytest.raises(fhir.BundleError, match="nothing was written"):
        fhir.daily_summaries(discharge_unit)
