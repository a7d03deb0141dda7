"""``bedside fhir`` against a real FHIR engine (Medplum's FHIR router and in-memory repository,
``tests/rigs/fhir_engine.py``): every resource validated against the R4 StructureDefinitions;
the mid-stay export, the same again and the final export posted, the server's state asserted
after each; a bed transfer, a re-admission and two laptops posting the same unit; bearer
token, OAuth client credentials and SMART Backend Services credentials."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fhir.resources import construct_fhir_element

from bedside.core.config import Config, Hospital
from bedside.laptop import fhir_post
from bedside.report import fhir, ward
from tests.report.test_ward import NOW, TAKEN, ward_dir  # noqa: F401  (the fixture)
from tests.rigs import fhir_engine
from tests.rigs import ward_rig as wr
from tests.rigs.cli import run
from tests.rigs.records import done, rec, sealed, srec

pytestmark = pytest.mark.skipif(fhir_engine.available() is not None, reason=str(fhir_engine.available()))

VISIT = "https://hospital.example/ids/visit"
MRN = "https://hospital.example/ids/mrn"
BASE = "https://hospital.example/ids/bedside"
HOSPITAL = Hospital(visit_system=VISIT, mrn_system=MRN)
# Medplum takes at most 8 entries in a transaction with conditional writes: the bundle is split.
SMALL = 8


@pytest.fixture(scope="module")
def engine() -> Iterator[fhir_engine.Engine]:
    with fhir_engine.Engine() as e:
        yield e


@pytest.fixture
def server(engine: fhir_engine.Engine) -> fhir_engine.Engine:
    engine.reset()
    return engine


# --- records --------------------------------------------------------------------------------

def admit(at: str, visit: str, mrn: str | None = "70012345", systems: bool = True) -> dict[str, Any]:
    """An admission as a unit whose ward configuration names the hospital's systems records it."""
    extra = {"mrn": mrn, "mrn_system": MRN} if mrn and systems else {"mrn": mrn} if mrn else {}
    if systems:
        extra["visit_system"] = VISIT
    return rec("admit", at, episode=visit, surgery="2026-11-28", regimen="standard", day=1, via="serial", **extra)


def day(d: str, hours: range, missed: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    out = []
    for h in hours:
        sid = f"{d}T{h:02d}:00 hourly"
        out.append(srec("prompt", sid, f"{d}T{h:02d}:00", kind="hourly"))
        out.append(srec("missed", sid, f"{d}T{h:02d}:30", reason="unanswered", kind="hourly") if h in missed
                   else done(sid, f"{d}T{h:02d}:05"))
    return out


def journal(unit: str, *parts: list[dict[str, Any]] | dict[str, Any]) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = [rec("start", "2026-11-29T07:00", unit=unit, version="0.1.0")]
    for p in parts:
        bodies += p if isinstance(p, list) else [p]
    return sealed(bodies)


def stay(systems: bool = True) -> list[dict[str, Any]]:
    """A stay: admitted on the 29th at 09:30 (visit V1001), two days, discharged on the 30th at 12:00."""
    return journal("bed12", admit("2026-11-29T09:30", "V1001", systems=systems),
                   day("2026-11-29", range(10, 21), missed=(14,)), day("2026-11-30", range(7, 12)),
                   rec("discharge", "2026-11-30T12:00", episode="V1001"))


def cut(recs: list[dict[str, Any]], before: str) -> list[dict[str, Any]]:
    """The records as a pull taken at ``before`` (local time) would hold them."""
    return [r for r in recs if r["time"] < before]


def units(tmp: Path, name: str, **by_unit: list[dict[str, Any]]) -> list[ward.UnitRecord]:
    folder = tmp / name
    for unit, recs in by_unit.items():
        wr.as_pull(folder, unit, recs, TAKEN)
    return ward.merge(ward.find([folder], print))


def make(us: list[ward.UnitRecord], **kw: Any) -> dict[str, Any]:
    settings = fhir.Settings(base=BASE, hospital=kw.pop("hospital", HOSPITAL), ward=Config(), **kw)
    return fhir.bundle(us, settings=settings, exported=NOW)


def post(server: fhir_engine.Engine, doc: dict[str, Any], **kw: Any) -> fhir_post.Posted:
    kw.setdefault("max_entries", SMALL)
    return fhir_post.post(server.url, doc, timeout=60, **kw)


def the_hospitals(server: fhir_engine.Engine, visit: str = "V1001", mrn: str = "70012345") -> tuple[str, str]:
    """The hospital's own Patient and Encounter, as its admission system made them: (patient, encounter) ids."""
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:5f7b1e0a-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Patient", "identifier": [{"system": MRN, "value": mrn}],
                      "name": [{"family": "Example", "given": ["Pat"]}]},
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {"resourceType": "Encounter", "identifier": [{"system": VISIT, "value": visit}],
                      "status": "in-progress", "class": {"system": fhir.ACT_CODE, "code": "IMP"},
                      "subject": {"reference": "urn:uuid:5f7b1e0a-0000-4000-8000-000000000001"},
                      "period": {"start": "2026-11-29T09:00:00+01:00"}},
         "request": {"method": "POST", "url": "Encounter"}}]}
    fhir_post.post(server.url, tx, timeout=30)
    (p,) = server.search("Patient", identifier=f"{MRN}|{mrn}")
    (e,) = server.search("Encounter", identifier=f"{VISIT}|{visit}")
    return p["id"], e["id"]


def content(r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k not in ("meta", "id")}


def state(server: fhir_engine.Engine) -> dict[str, list[dict[str, Any]]]:
    kinds = ("Patient", "Encounter", "Device", "CarePlan", "Observation", "Procedure", "Provenance")
    return {k: sorted((content(r) for r in server.search(k)), key=json.dumps) for k in kinds}


def by_day(server: fhir_engine.Engine) -> dict[str, dict[str, Any]]:
    return {o["effectiveDateTime"]: o for o in server.search("Observation")}


def comp(obs: dict[str, Any], code: str) -> Any:
    c = next(c for c in obs["component"] if c["code"]["coding"][0]["code"] == code)
    return c.get("valueInteger", c.get("valueQuantity", {}).get("value"))


# --- validation -------------------------------------------------------------------------------

def test_every_resource_of_a_wards_bundle_passes_the_r4_structure_definitions(
        ward_dir: Path, engine: fhir_engine.Engine) -> None:  # noqa: F811
    us = ward.merge(ward.find([ward_dir / "pulls", ward_dir / "STICK"], print))
    for settings in (fhir.Settings(), fhir.Settings(base=BASE, hospital=HOSPITAL, ward=Config(), per_session=True,
                                                    organization="St Elsewhere")):
        doc = fhir.bundle(us, settings=settings, exported=NOW)
        assert engine.validate(doc) == []
        assert fhir.validate(doc) == []
    broken = ward.merge(ward.find([ward_dir / "loose"], print))
    assert engine.validate(fhir.bundle(broken, exported=NOW, allow_broken=True)) == []


def test_every_extension_has_its_structure_definition_in_the_package(engine: fhir_engine.Engine) -> None:
    from tools import fhir_definitions

    files = sorted(fhir_definitions.OUT.glob("*.json"))
    assert len(files) == len(fhir.EXTENSIONS) == 9
    made = {f"StructureDefinition-{sd['id']}.json": fhir_definitions.text(sd) for sd in fhir.structure_definitions()}
    assert {f.name: f.read_text() for f in files} == made, "run python tools/fhir_definitions.py"
    sds = [json.loads(f.read_text()) for f in files]
    for sd in sds:
        assert sd["url"].startswith("https://") and sd["url"] == fhir.EXT + sd["url"].rsplit("/", 1)[1]
        assert engine.validate(sd) == []
        construct_fhir_element("StructureDefinition", sd)          # and fhir.resources' R4 models
    assert engine.load_definitions(sds) == []                  # whole definitions, snapshots included
    assert engine.load_definitions([{**sds[0], "snapshot": None}]) != []
    docs = (fhir_engine.ROOT / "docs" / "fhir.md").read_text()
    assert all(f"`{x.name}`" in docs for x in fhir.EXTENSIONS)


# --- converging updates ---------------------------------------------------------------------------

def test_mid_stay_then_the_same_again_then_final_converge_on_the_hospitals_resources(
        server: fhir_engine.Engine, tmp_path: Path) -> None:
    patient, encounter = the_hospitals(server)
    full = stay()
    mid = make(units(tmp_path, "mid", bed12=cut(full, "2026-11-30T09:")))
    final = make(units(tmp_path, "final", bed12=full))
    assert server.validate(mid) == server.validate(final) == []

    first = post(server, mid)
    assert (first.created, first.updated) == (len(mid["entry"]), 0)
    s1 = state(server)
    assert [len(s1[k]) for k in ("Patient", "Encounter", "Device", "CarePlan", "Observation", "Provenance")] == [
        1, 1, 1, 1, 2, 1]
    (plan,) = s1["CarePlan"]
    assert plan["status"] == "active" and "end" not in plan["period"]
    assert plan["subject"] == {"reference": f"Patient/{patient}"}
    assert plan["encounter"] == {"reference": f"Encounter/{encounter}"}
    days = by_day(server)
    assert days["2026-11-29"]["status"] == "final" and days["2026-11-30"]["status"] == "preliminary"
    assert (comp(days["2026-11-29"], "sessions-done"), comp(days["2026-11-29"], "sessions-due")) == (10, 11)
    assert comp(days["2026-11-30"], "sessions-done") == 2
    obs = days["2026-11-29"]
    assert obs["subject"] == {"reference": f"Patient/{patient}"} and obs["basedOn"][0]["reference"].startswith(
        "CarePlan/")
    assert server.read(obs["basedOn"][0]["reference"])["resourceType"] == "CarePlan"
    assert server.read(obs["device"]["reference"])["resourceType"] == "Device"

    again = post(server, mid)
    assert (again.created, again.updated) == (0, len(mid["entry"]))
    assert state(server) == s1                                 # the same export twice changes nothing

    last = post(server, final)
    assert last.created == 1 and last.updated == len(final["entry"]) - 1      # only the new Provenance is new
    s3 = state(server)
    assert [len(s3[k]) for k in ("Patient", "Encounter", "CarePlan", "Observation", "Provenance")] == [1, 1, 1, 2, 2]
    (plan,) = s3["CarePlan"]
    assert plan["status"] == "completed" and plan["period"]["end"] == "2026-11-30T12:00:00+01:00"
    days = by_day(server)
    assert days["2026-11-30"]["status"] == "final" and comp(days["2026-11-30"], "sessions-done") == 5
    # The hospital's own Encounter and Patient are referenced, never written.
    (enc,) = s3["Encounter"]
    assert enc["status"] == "in-progress" and "end" not in enc["period"]
    (pat,) = s3["Patient"]
    assert pat["name"] == [{"family": "Example", "given": ["Pat"]}]


def test_a_reference_to_a_patient_the_server_lacks_fails_the_transaction_in_one_line(
        server: fhir_engine.Engine, tmp_path: Path) -> None:
    doc = make(units(tmp_path, "p", bed12=stay()))
    with pytest.raises(fhir_post.PostError) as e:
        post(server, doc)
    msg = str(e.value)
    assert "\n" not in msg and "HTTP 404" in msg
    assert "conditional reference Patient?identifier=https%3A%2F%2Fhospital.example%2Fids%2Fmrn%7C70012345: no " \
           "resource matches" in msg
    assert server.search("CarePlan") == []


def test_where_the_bundle_owns_them_the_encounter_ends_and_the_patient_is_made_once(
        server: fhir_engine.Engine, tmp_path: Path) -> None:
    hospital = Hospital(visit_system=VISIT, mrn_system=MRN, create_patient=True, create_encounter=True)
    full = stay()
    post(server, make(units(tmp_path, "mid", bed12=cut(full, "2026-11-30T09:")), hospital=hospital))
    (enc,) = server.search("Encounter")
    assert enc["status"] == "in-progress" and "end" not in enc["period"]
    (pat,) = server.search("Patient")
    assert pat["identifier"][0]["value"] == "70012345" and "name" not in pat
    assert enc["subject"] == {"reference": f"Patient/{pat['id']}"}
    post(server, make(units(tmp_path, "final", bed12=full), hospital=hospital))
    (enc,) = server.search("Encounter")
    assert enc["status"] == "finished" and enc["period"]["end"] == "2026-11-30T12:00:00+01:00"
    assert len(server.search("Patient")) == 1


def test_a_small_bundle_goes_as_one_transaction_with_urn_uuid_references(server: fhir_engine.Engine,
                                                                        tmp_path: Path) -> None:
    the_hospitals(server)
    recs = journal("bed12", admit("2026-11-29T09:30", "V1001"), day("2026-11-29", range(10, 12)))
    doc = make(units(tmp_path, "one", bed12=recs))
    assert len(doc["entry"]) <= SMALL
    got = post(server, doc, max_entries=0)
    assert got.transactions == 1 and got.created == len(doc["entry"])
    (obs,) = server.search("Observation")
    assert obs["basedOn"][0]["reference"].startswith("CarePlan/") and obs["device"]["reference"].startswith("Device/")


# --- transfers, re-admissions, two laptops ---------------------------------------------------------

def test_a_bed_transfer_gives_one_encounter_and_a_plan_per_bed(server: fhir_engine.Engine, tmp_path: Path) -> None:
    hospital = Hospital(visit_system=VISIT, mrn_system=MRN, create_patient=True, create_encounter=True)
    a = journal("bed12", admit("2026-11-29T09:30", "V1001"), day("2026-11-29", range(10, 14)),
                rec("discharge", "2026-11-29T14:00", episode="V1001"))
    b = journal("bed03", admit("2026-11-29T14:10", "V1001"), day("2026-11-29", range(15, 21)))
    doc = make(units(tmp_path, "both", bed12=a, bed03=b), hospital=hospital)
    urls = [e["fullUrl"] for e in doc["entry"]]
    assert len(urls) == len(set(urls))                         # bdl-7
    assert [e["resource"]["resourceType"] for e in doc["entry"]].count("Encounter") == 1
    post(server, doc)
    (enc,) = server.search("Encounter")
    assert enc["status"] == "in-progress"
    assert [(x["location"]["display"], x["status"]) for x in enc["location"]] == [
        ("bedside unit bed12", "completed"), ("bedside unit bed03", "active")]
    plans = server.search("CarePlan")
    assert sorted(p["status"] for p in plans) == ["active", "completed"]
    assert {p["encounter"]["reference"] for p in plans} == {f"Encounter/{enc['id']}"}
    days = server.search("Observation")
    assert sorted(comp(o, "sessions-done") for o in days) == [4, 6]


def test_a_re_admission_under_the_same_visit_keeps_both_stays(server: fhir_engine.Engine, tmp_path: Path) -> None:
    _, encounter = the_hospitals(server)
    recs = journal("bed12", admit("2026-11-29T09:30", "V1001"), day("2026-11-29", range(10, 12)),
                   rec("discharge", "2026-11-29T12:00", episode="V1001"),
                   admit("2026-11-29T16:00", "V1001"), day("2026-11-29", range(17, 20)))
    doc = make(units(tmp_path, "re", bed12=recs))
    urls = [e["fullUrl"] for e in doc["entry"]]
    assert len(urls) == len(set(urls))
    post(server, doc)
    plans = sorted(server.search("CarePlan"), key=lambda p: p["period"]["start"])
    assert [(p["status"], p["period"]) for p in plans] == [
        ("completed", {"start": "2026-11-29T09:30:00+01:00", "end": "2026-11-29T12:00:00+01:00"}),
        ("active", {"start": "2026-11-29T16:00:00+01:00"})]
    assert sorted(comp(o, "sessions-done") for o in server.search("Observation")) == [2, 3]
    assert all(p["encounter"] == {"reference": f"Encounter/{encounter}"} for p in plans)


def test_two_laptops_posting_one_unit_converge(server: fhir_engine.Engine, tmp_path: Path) -> None:
    the_hospitals(server)
    full = stay()
    # One nurse pulled the unit over serial, another took a stick export a minute later: the same records.
    serial = make(units(tmp_path, "laptop1", bed12=full))
    stick = tmp_path / "laptop2"
    wr.as_stick(stick, "bed12", full, TAKEN)
    other = fhir.bundle(ward.merge(ward.find([stick], print)), exported=datetime.fromisoformat(
        "2026-11-30T16:01:00+01:00"), settings=fhir.Settings(base=BASE, hospital=HOSPITAL, ward=Config()))
    post(server, serial)
    once = state(server)
    got = post(server, other)
    assert got.created == 0
    after = state(server)
    assert {k: len(v) for k, v in after.items()} == {k: len(v) for k, v in once.items()}
    assert after["Observation"] == once["Observation"] and after["CarePlan"] == once["CarePlan"]
    # Yesterday's pull from one laptop, then today's from the other: the later one wins.
    server.reset()
    the_hospitals(server)
    post(server, make(units(tmp_path, "old", bed12=cut(full, "2026-11-30T09:"))))
    post(server, other)
    (plan,) = server.search("CarePlan")
    assert plan["status"] == "completed" and len(server.search("Provenance")) == 2


# --- the command, with credentials -------------------------------------------------------------------

def test_the_command_posts_with_its_settings_and_a_token_file(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("s3cret-token\n")
    with fhir_engine.Engine("--token", "s3cret-token") as eng:
        wr.as_pull(tmp_path / "pull", "bed12", stay(), TAKEN)
        settings = tmp_path / "laptop.toml"
        settings.write_text(f'[hospital]\nvisit_system = "{VISIT}"\nmrn_system = "{MRN}"\ncreate_patient = true\n'
                            f'create_encounter = true\n\n[fhir]\nbase_url = "{eng.url}"\nidentifier_system = '
                            f'"{BASE}"\norganization = "St Elsewhere Hospital"\nmax_entries = 8\n\n[auth]\n'
                            'method = "token"\ntoken_file = "token.txt"\n\n[units.bed12]\nserial = "10000000a3c2f9e1"\n'
                            'location = "Ward 7, bed 12"\n')
        out = tmp_path / "b.json"
        r = run("fhir", str(tmp_path / "pull"), "-o", str(out), "--settings", str(settings), "--post")
        assert r.returncode == 0, r.stderr
        assert f"Posted to {eng.url}: 7 created, 0 already there" in r.stdout
        (dev,) = eng.search("Device", token="s3cret-token")
        assert dev["serialNumber"] == "10000000a3c2f9e1" and dev["location"]["display"] == "Ward 7, bed 12"
        assert dev["owner"]["display"] == "St Elsewhere Hospital"
        r = run("fhir", str(tmp_path / "pull"), "-o", str(out), "--settings", str(settings), "--post")
        assert r.returncode == 0 and " 0 created," in r.stdout
        (tmp_path / "token.txt").write_text("wrong\n")
        r = run("fhir", str(tmp_path / "pull"), "-o", str(out), "--settings", str(settings), "--post")
        assert r.returncode == 4 and "HTTP 401" in r.stderr and "Traceback" not in r.stderr


def test_oauth_client_credentials(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("client-secret-1\n")
    with fhir_engine.Engine("--client", "bedside-laptop:client-secret-1") as eng:
        doc = fhir.bundle(units(tmp_path, "p", bed12=stay(systems=False)), exported=NOW)
        auth = fhir_post.Auth("client_credentials", token_url=f"{eng.root}/oauth2/token", client_id="bedside-laptop",
                              client_secret_file=tmp_path / "secret")
        assert fhir_post.post(eng.url, doc, auth=auth, max_entries=SMALL, timeout=30).created == len(doc["entry"])
        with pytest.raises(fhir_post.PostError, match="HTTP 401"):
            fhir_post.post(eng.url, doc, max_entries=SMALL, timeout=30)
        (tmp_path / "secret").write_text("wrong\n")
        with pytest.raises(fhir_post.PostError, match=r"token endpoint .* refused this client .*invalid_client"):
            fhir_post.post(eng.url, doc, auth=auth, max_entries=SMALL, timeout=30)


@pytest.mark.parametrize("kind", ["ec", "rsa"])
def test_smart_backend_services(kind: str, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    def key() -> Any:
        return ec.generate_private_key(ec.SECP384R1()) if kind == "ec" else rsa.generate_private_key(65537, 2048)

    mine, stranger = key(), key()

    def pem(k: Any) -> bytes:
        return bytes(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))

    (tmp_path / "key.pem").write_bytes(pem(mine))
    (tmp_path / "stranger.pem").write_bytes(pem(stranger))
    jwk = json.loads(json.dumps(_jwk(mine.public_key())))
    (tmp_path / "client.json").write_text(json.dumps({"kid": "k1", "client_id": "bedside", "jwk": jwk}))
    with fhir_engine.Engine("--jwks", str(tmp_path / "client.json")) as eng:
        doc = fhir.bundle(units(tmp_path, "p", bed12=stay(systems=False)), exported=NOW)
        auth = fhir_post.Auth("smart_backend", token_url=f"{eng.root}/oauth2/token", client_id="bedside",
                              private_key_file=tmp_path / "key.pem", key_id="k1")
        assert fhir_post.post(eng.url, doc, auth=auth, max_entries=SMALL, timeout=30).created == len(doc["entry"])
        wrong = fhir_post.Auth("smart_backend", token_url=f"{eng.root}/oauth2/token", client_id="bedside",
                               private_key_file=tmp_path / "stranger.pem", key_id="k1")
        with pytest.raises(fhir_post.PostError, match="signature does not verify"):
            fhir_post.post(eng.url, doc, auth=wrong, max_entries=SMALL, timeout=30)


def _jwk(public: Any) -> dict[str, str]:
    from cryptography.hazmat.primitives.asymmetric import ec

    def b64(n: int, size: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes(size, "big")).rstrip(b"=").decode()

    nums = public.public_numbers()
    if isinstance(public, ec.EllipticCurvePublicKey):
        return {"kty": "EC", "crv": "P-384", "x": b64(nums.x, 48), "y": b64(nums.y, 48)}
    return {"kty": "RSA", "n": b64(nums.n, (nums.n.bit_length() + 7) // 8), "e": b64(nums.e, 3)}
