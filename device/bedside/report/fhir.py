"""A ward's records as one FHIR R4 (4.0.1) ``transaction`` Bundle, for the hospital's record system.

Pure: merged unit records (``report.ward``) in, a JSON-ready dict out; nothing is fetched or
sent here (``laptop.fhir_post`` sends). What goes in, per unit:

* the unit as a ``Device``, identified by its unit id;
* each admission (episode) as an ``Encounter`` and its regimen as a ``CarePlan``;
* each of the patient's decided sessions as a ``Procedure``: ``completed`` (in full or partly)
  or ``not-done`` with the reason (no answer, power cut, discharged …); sessions with no
  patient admitted, still open, or merged into another's prompt are not procedures;
* a ``Provenance`` naming the unit and the export, carrying the journal's verdict and head.

The patient is referenced by identifier only, through the admission's episode id: the unit
never holds a name or a hospital number. Every resource is created conditionally
(``ifNoneExist`` on its identifier, made from the unit id and the session or episode id),
so posting the same records twice creates nothing new. docs/fhir.md explains the codes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bedside import __version__
from bedside.report import adherence as ad
from bedside.report.svg import REASONS
from bedside.report.ward import UnitRecord

FHIR_VERSION = "4.0.1"
DEFAULT_SYSTEM = "urn:bedside"     # identifier systems are DEFAULT_SYSTEM/unit, /episode, /session …

SNOMED = "http://snomed.info/sct"
# The one SNOMED CT concept that covers what the unit guides: a supervised exercise regime.
# SNOMED CT has no concept for ankle pumps, quadriceps or gluteal sets themselves; the
# session's own kind and exercises go in the text and in the unit's own code system.
EXERCISE_THERAPY = {"system": SNOMED, "code": "229065009", "display": "Exercise therapy (regime/therapy)"}
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
PROVENANCE_ROLE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"

# The unit's own code systems (fixed URNs: codes, unlike identifiers, do not change per hospital).
KIND_SYSTEM = "urn:bedside:code:session-kind"
REASON_SYSTEM = "urn:bedside:code:not-done-reason"
INTEGRITY_SYSTEM = "urn:bedside:code:record-integrity"
EXT = "urn:bedside:fhir:extension:"

# How each decided outcome becomes a Procedure's status (a table: new outcomes are a line).
# An interrupted session (begun, then cut off by a power cut) is R4's ``stopped``: started, not finished.
# A session inside a nurse's pause was not offered: not-done, with the pause as its reason.
# An extra session the patient asked for is a Procedure completed like any other; its kind says it was extra.
STATUS = {ad.DONE: "completed", ad.PARTIAL: "completed", ad.INTERRUPTED: "stopped", ad.MISSED: "not-done",
          ad.PAUSED: "not-done", ad.EXTRA: "completed"}
NOT_DONE_TEXT = {"unanswered": "missed: no answer to the prompt", "power_loss": "power loss",
                 "paused": "not offered: prompting paused by a nurse",
                 "discharged": "discharged before the session", "unit_off": "unit switched off"}


class BundleError(Exception):
    """The records cannot go into a bundle as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Systems:
    """Identifier systems under one base URI (the hospital's, or ``urn:bedside``)."""

    base: str

    def of(self, what: str) -> str:
        return f"{self.base.rstrip('/:')}{':' if self.base.startswith('urn:') else '/'}{what}"


def _uid(system: str, value: str) -> str:
    """A stable urn:uuid for a resource in the bundle: the same identifier, the same fullUrl."""
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{system}|{value}"))


def _entry(resource_type: str, system: str, value: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": _uid(system, value),
            "resource": {"resourceType": resource_type, **resource},
            "request": {"method": "POST", "url": resource_type, "ifNoneExist": f"identifier={system}|{value}"}}


def _iso(t: datetime | None) -> str | None:
    return t.isoformat(timespec="seconds") if t is not None else None


def _ext(name: str, kind: str, value: Any) -> dict[str, Any]:
    return {"url": EXT + name, f"value{kind}": value}


def bundle(units: Iterable[UnitRecord], *, system: str = DEFAULT_SYSTEM, allow_broken: bool = False,
           exported: datetime) -> dict[str, Any]:
    """One transaction Bundle for every unit's records. Raises BundleError for a broken record
    unless ``allow_broken``; then that unit's resources carry a ``broken-record`` tag."""
    sys_ = Systems(system)
    units = list(units)
    broken = [u.unit for u in units if not _trusted(u)]
    if broken and not allow_broken:
        raise BundleError(f"the record of {', '.join(broken)} FAILED verification (or contradicts another "
                          "export): nothing was written. Take a fresh download; to send it anyway, marked as "
                          "broken, give --allow-broken")
    entries: list[dict[str, Any]] = []
    for u in units:
        entries += unit_entries(u, sys_, exported)
    return {"resourceType": "Bundle", "type": "transaction",
            "meta": {"tag": [{"system": "urn:bedside:code:source", "code": "bedside",
                              "display": f"bedside {__version__} fhir export"}]},
            "timestamp": _iso(exported), "entry": entries}


def _trusted(u: UnitRecord) -> bool:
    return not u.broken and not u.contradicting


def unit_entries(u: UnitRecord, sys_: Systems, exported: datetime) -> list[dict[str, Any]]:
    m = ad.build(u.records)
    trusted = _trusted(u)
    out: list[dict[str, Any]] = []
    device_ref = {"reference": _uid(sys_.of("unit"), u.unit), "display": f"bedside unit {u.unit}"}
    versions = [r.get("version") for r in u.records if r.get("type") == "start" and isinstance(r.get("version"), str)]
    device: dict[str, Any] = {
        "identifier": [{"system": sys_.of("unit"), "value": u.unit}], "status": "active",
        "deviceName": [{"name": u.unit, "type": "user-friendly-name"}],
        "type": {"text": "Bedside exercise prompting unit"}}
    if versions:
        device["version"] = [{"value": versions[-1]}]
    out.append(_entry("Device", sys_.of("unit"), u.unit, device))
    for st in m.stays:
        if st.episode is not None:
            out += _episode_entries(u.unit, st, sys_, device_ref)
    v = u.verdict
    head = f"{v.head[0]}/{v.head[1]}" if v.head else "-"
    verdict = v.verdict if trusted else next(iter(b[1].verdict for b in u.broken), "BROKEN: another chain")
    export_id = f"{u.unit}/{head}"
    targets = [{"reference": e["fullUrl"]} for e in out]
    provenance: dict[str, Any] = {
        "target": targets, "recorded": _iso(exported),
        "agent": [{"type": {"coding": [{"system": PROVENANCE_ROLE, "code": "assembler"}]}, "who": device_ref}],
        "entity": [{"role": "source", "what": {"identifier": {"system": sys_.of("export"), "value": export_id},
                                               "display": ", ".join(s.path.name for s in u.exports)}}],
        "extension": [_ext("journal-verdict", "String", verdict), _ext("chain-head", "String", head),
                      _ext("journal-trusted", "Boolean", trusted)]}
    prov = _entry("Provenance", sys_.of("export"), export_id, provenance)
    # Provenance has no identifier of its own in R4: the export's identifier on its entity is searched.
    prov["request"]["ifNoneExist"] = f"entity:identifier={sys_.of('export')}|{export_id}"
    out.append(prov)
    if not trusted:
        for e in out:
            e["resource"]["meta"] = {"security": [{"system": INTEGRITY_SYSTEM, "code": "broken-record",
                                                   "display": "From a journal that FAILED verification"}]}
    return out


def _patient(st: ad.Stay, sys_: Systems) -> dict[str, Any]:
    assert st.episode is not None
    return {"type": "Patient", "identifier": {
        "type": {"coding": [{"system": V2_0203, "code": "VN", "display": "Visit number"}]},
        "system": sys_.of("episode"), "value": st.episode.id},
        "display": f"the patient of episode {st.episode.id}"}


def _episode_entries(unit: str, st: ad.Stay, sys_: Systems, device_ref: Mapping[str, Any]) -> list[dict[str, Any]]:
    e = st.episode
    assert e is not None
    out: list[dict[str, Any]] = []
    patient = _patient(st, sys_)
    period = {k: v for k, v in (("start", _iso(e.admitted)), ("end", _iso(e.discharged))) if v}
    encounter = {"identifier": [{"system": sys_.of("episode"), "value": e.id}],
                 "status": "finished" if e.discharged else "in-progress",
                 "class": {"system": ACT_CODE, "code": "IMP", "display": "inpatient encounter"},
                 "subject": patient, "period": period}
    enc = _entry("Encounter", sys_.of("episode"), e.id, encounter)
    out.append(enc)
    enc_ref = {"reference": enc["fullUrl"]}
    plan_id = f"{unit}/{e.id}"
    regimen = e.regimen or "the unit's default"
    careplan = {"identifier": [{"system": sys_.of("careplan"), "value": plan_id}],
                "status": "completed" if e.discharged else "active", "intent": "plan",
                "title": f"Bed exercises, regimen {regimen}",
                "description": f"Exercises prompted and guided by bedside unit {unit} under the regimen {regimen} "
                               "configured on it" + (f"; surgery {e.surgery.isoformat()}" if e.surgery else ""),
                "subject": patient, "encounter": enc_ref, "period": period,
                "activity": [{"detail": {"code": {"coding": [EXERCISE_THERAPY], "text": f"regimen {regimen}"},
                                         "status": "completed" if e.discharged else "in-progress"}}]}
    plan = _entry("CarePlan", sys_.of("careplan"), plan_id, careplan)
    out.append(plan)
    for d in st.days:
        for s in d.sessions:
            if s.outcome in STATUS:
                out.append(_procedure(unit, s, sys_, patient, enc_ref, {"reference": plan["fullUrl"]}, device_ref))
    return out


def _procedure(unit: str, s: ad.SessionOutcome, sys_: Systems, patient: Mapping[str, Any], enc_ref: Mapping[str, Any],
               plan_ref: Mapping[str, Any], device_ref: Mapping[str, Any]) -> dict[str, Any]:
    sid = f"{unit}/{s.id}"
    status = STATUS[s.outcome]
    if s.outcome == ad.EXTRA and s.finished is None and s.reason is not None:
        status = "stopped"           # an extra session a power cut cut short: begun, not finished
    kind = {"system": KIND_SYSTEM, "code": s.kind, "display": f"{s.kind} session"}
    res: dict[str, Any] = {
        "identifier": [{"system": sys_.of("session"), "value": sid}],
        "basedOn": [plan_ref], "status": status,
        "code": {"coding": [EXERCISE_THERAPY, kind], "text": f"{s.kind} bed exercises due {s.due:%H:%M}"},
        "subject": patient, "encounter": enc_ref,
        "extension": [_ext("due", "DateTime", _iso(s.due)), _ext("offered", "DateTime", _iso(s.offer)),
                      _ext("snoozes", "Integer", s.snoozes)]}
    notes = []
    if status in ("completed", "stopped"):
        if s.started is not None and s.finished is not None:
            res["performedPeriod"] = {"start": _iso(s.started), "end": _iso(s.finished)}
        elif s.started is not None:
            res["performedPeriod"] = {"start": _iso(s.started)}      # stopped: no end is known
        elif s.finished is not None:
            res["performedDateTime"] = _iso(s.finished)
        if s.reps is not None:
            res["extension"].append(_ext("reps-done", "Integer", s.reps))
        if s.planned is not None:
            res["extension"].append(_ext("reps-planned", "Integer", s.planned))
        if s.late_min is not None:
            res["extension"].append(_ext("late-minutes", "Integer", s.late_min))
        if s.outcome == ad.PARTIAL:
            res["outcome"] = {"text": f"partly done: {s.reps} of {s.planned} reps"}
        reps = "?" if s.reps is None else s.reps
        notes.append(f"{reps} of {s.planned if s.planned is not None else '?'} "
                     f"reps{' known done' if status == 'stopped' else ''}; started "
                     f"{s.late_min if s.late_min is not None else '?'} min after the prompt; "
                     f"snoozed {s.snoozes} time(s)")
        res["performer"] = [{"actor": device_ref, "function": {"text": "prompted and guided the exercises"}}]
    if status in ("stopped", "not-done"):
        reason = "paused" if s.outcome == ad.PAUSED else s.reason or "unknown"
        said = REASONS.get(reason, reason)
        res["statusReason"] = {"coding": [{"system": REASON_SYSTEM, "code": reason, "display": said}],
                               "text": f"interrupted: {said}" if status == "stopped" else
                               NOT_DONE_TEXT.get(reason, f"missed: {said}")}
        if status == "not-done":
            notes.append(f"not done ({said}); snoozed {s.snoozes} time(s)")
    res["note"] = [{"text": "; ".join(notes)}]
    return _entry("Procedure", sys_.of("session"), sid, res)


def validate(doc: Mapping[str, Any]) -> list[str] | None:
    """Problems found checking the bundle and every resource in it against the FHIR R4 models of
    ``fhir.resources`` (the laptop extra: ``pip install 'bedside[laptop]'``); None without it."""
    try:
        from fhir.resources import __fhir_version__, construct_fhir_element
    except ImportError:
        return None
    if __fhir_version__ != FHIR_VERSION:
        return [f"the installed fhir.resources checks FHIR {__fhir_version__}, not {FHIR_VERSION}: "
                "install bedside's laptop extra"]
    problems = []
    for n, e in enumerate(doc.get("entry") or [], 1):
        res = e.get("resource") or {}
        try:
            construct_fhir_element(str(res.get("resourceType")), res)
        except Exception as x:         # the library raises pydantic's errors, or LookupError
            problems.append(f"entry {n} ({res.get('resourceType')}): {x}".replace("\n", " "))
    if not problems:
        try:
            construct_fhir_element("Bundle", dict(doc))
        except Exception as x:
            problems.append(f"the Bundle: {x}".replace("\n", " "))
    return problems
