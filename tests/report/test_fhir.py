"""The FHIR R4 bundle: every resource checked against fhir.resources' R4 models, the patient's
sessions only, conditional creates, the verdict in a Provenance, broken records refused or
marked; ``--post`` against an HTTP server on 127.0.0.1 that checks what arrives."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fhir.resources import __fhir_version__, construct_fhir_element

from bedside.laptop import fhir_post
from bedside.report import fhir, ward
from tests.cli.test_cli import run
from tests.report.test_adherence import _discharge_day
from tests.report.test_ward import NOW, TAKEN, ward_dir  # noqa: F401  (the fixture)
from tests.rigs import ward_rig as wr


def units_in(*paths: Path) -> list[ward.UnitRecord]:
    return ward.merge(ward.find(list(paths), print))


@pytest.fixture
def discharge_unit(tmp_path: Path) -> list[ward.UnitRecord]:
    wr.as_pull(tmp_path / "p", "u1", _discharge_day(), TAKEN)
    return units_in(tmp_path / "p")


def exts(res: dict[str, Any]) -> dict[str, Any]:
    """Extension values by the last part of their URL."""
    return {x["url"].rsplit(":", 1)[1]: next(v for k, v in x.items() if k.startswith("value"))
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
    assert len({e["request"]["ifNoneExist"] for e in doc["entry"]}) == len(doc["entry"])
    kinds = [e["resource"]["resourceType"] for e in doc["entry"]]
    assert kinds.count("Device") == kinds.count("Provenance") == 10


def test_sessions_become_procedures_of_the_patient_only(discharge_unit: list[ward.UnitRecord]) -> None:
    doc = fhir.bundle(discharge_unit, exported=NOW, system="https://hospital.example/ids/bedside")
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
    assert len(prov["target"]) == 1 + 1 + 1 + 15
    assert "meta" not in prov
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


# --- posting ----------------------------------------------------------------------------

class Server:
    """A FHIR server's transaction endpoint, as much as the test needs: conditional creates
    keyed on ``ifNoneExist``; or a fixed failure."""

    def __init__(self, fail: tuple[int, bytes] | None = None) -> None:
        self.store: dict[str, str] = {}
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.fail = fail
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                if outer.fail is not None:
                    self._send(*outer.fail)
                    return
                doc = json.loads(body)
                out = []
                for e in doc["entry"]:
                    key = e["request"]["ifNoneExist"]
                    if key in outer.store:
                        out.append({"response": {"status": "200 OK", "location": outer.store[key]}})
                    else:
                        outer.store[key] = f"{e['request']['url']}/{len(outer.store) + 1}/_history/1"
                        out.append({"response": {"status": "201 Created", "location": outer.store[key]}})
                self._send(200, json.dumps({"resourceType": "Bundle", "type": "transaction-response",
                                            "entry": out}).encode())

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/fhir"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    with Server() as s:
        yield s


def test_posting_twice_creates_nothing_new(ward_dir: Path, server: Server, tmp_path: Path) -> None:  # noqa: F811
    args = ("fhir", str(ward_dir / "pulls"), str(ward_dir / "STICK"), "-o", str(tmp_path / "b.json"), "--post",
            server.url, "--identifier-system", "https://hospital.example/ids/bedside")
    first = run(*args)
    assert first.returncode == 0, first.stderr
    assert "checked against the FHIR R4 models" in first.stdout
    sent = json.loads((tmp_path / "b.json").read_text())
    n = len(sent["entry"])
    assert f"Posted to {server.url}: {n} created, 0 already there." in first.stdout
    method, path, headers, body = server.requests[0]
    assert (method, path) == ("POST", "/fhir") and headers["Content-Type"].startswith("application/fhir+json")
    assert json.loads(body) == sent                       # what arrives is the file, whole
    again = run(*args)
    assert again.returncode == 0, again.stderr
    assert f"0 created, {n} already there." in again.stdout
    assert len(server.store) == n


@pytest.mark.parametrize(("code", "body", "says"), [
    (400, b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid",'
          b'"diagnostics":"Bundle.entry[3]: unknown element"}]}', "HTTP 400 Bad Request from"),
    (401, b"", "wants credentials"),
    (404, b"<html>nope</html>", "there is no FHIR server at this address"),
    (412, b"", "matched more than one resource"),
    (422, b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing",'
          b'"details":{"text":"Procedure.status: bad code"}}]}', "The server says: Procedure.status: bad code"),
    (500, b"", "the server failed (its own error)"),
    (200, b"<html>a web page</html>", "not with FHIR JSON"),
])
def test_each_http_failure_is_said_plainly(code: int, body: bytes, says: str, discharge_unit: list[ward.UnitRecord],
                                           tmp_path: Path) -> None:
    payload = json.dumps(fhir.bundle(discharge_unit, exported=NOW)).encode()
    with Server(fail=(code, body)) as s, pytest.raises(fhir_post.PostError, match=None) as e:
        fhir_post.post(s.url, payload, timeout=10)
    assert says in str(e.value)
    if code == 400:
        assert "Bundle.entry[3]: unknown element" in str(e.value)


def test_nothing_listening_and_a_bad_address(discharge_unit: list[ward.UnitRecord], tmp_path: Path) -> None:
    with Server() as s:
        url = s.url
    with pytest.raises(fhir_post.PostError, match="nothing is listening"):
        fhir_post.post(url, b"{}", timeout=5)
    with pytest.raises(fhir_post.PostError, match="not an http"):
        fhir_post.post("ftp://x/fhir", b"{}")
    wr.as_pull(tmp_path / "p", "u1", _discharge_day(), TAKEN)
    r = run("fhir", str(tmp_path / "p"), "-o", str(tmp_path / "b.json"), "--post", url)
    assert r.returncode == 4 and "written to" in r.stderr and "nothing is listening" in r.stderr
    assert (tmp_path / "b.json").exists() and "Traceback" not in r.stderr


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
    doc = fhir.bundle(units_in(tmp_path), exported=NOW)
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
    doc = fhir.bundle(units_in(tmp_path), exported=NOW)
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
    doc = fhir.bundle(units_in(tmp_path), exported=NOW)
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
    doc = fhir.bundle(units_in(tmp_path), exported=NOW)
    (proc,) = resources(doc, "Procedure")
    assert proc["status"] == "completed" and proc["code"]["coding"][1]["code"] == "extra"
    assert (exts(proc)["reps-done"], exts(proc)["reps-planned"]) == (10, 10)
    assert fhir.validate(doc) == []
