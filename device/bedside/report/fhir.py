"""A ward's records as one FHIR R4 (4.0.1) ``transaction`` Bundle, for the hospital's record system.

Pure: merged unit records (``report.ward``) and the hospital's settings in, a JSON-ready dict
out; nothing is fetched or sent here (``laptop.fhir_post`` sends). What goes in, per unit:

* the unit as a ``Device`` (serial number, location and owner from the laptop's settings);
* for each stay (an admission at this unit, to its discharge): the hospital's ``Encounter``
  and ``Patient`` by conditional reference (``Encounter?identifier=SYSTEM|VISIT``), created
  only where the settings say the bundle owns them; the regimen as a ``CarePlan`` with its
  activities and their timing; one daily summary ``Observation`` per day of the stay (sessions
  done of due, reps, minutes, late, paused, interrupted) after the HL7 Physical Activity IG;
* optionally (``per_session``) each decided session as a ``Procedure``;
* a ``Provenance`` naming the unit and the export, carrying the journal's verdict and head.

Every resource has a business identifier and is written by conditional update
(``PUT Type?identifier=SYSTEM|VALUE``), so a later export updates what changed (the day's
counts, the CarePlan's status at discharge) and posting the same export twice changes
nothing. A bed transfer (one visit on two units) and a re-admission (one visit twice on one
unit) give one Encounter and a CarePlan and Observations per stay. docs/fhir.md explains it all.
"""

from __future__ import annotations

import statistics
import urllib.parse
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from bedside import __version__
from bedside.core import planner
from bedside.core.config import Config, Hospital
from bedside.core.errors import BedsideError
from bedside.core.records import T
from bedside.report import adherence as ad
from bedside.report.svg import REASONS
from bedside.report.ward import UnitRecord

FHIR_VERSION = "4.0.1"
DEFAULT_SYSTEM = "urn:bedside"     # the unit's own identifier systems are DEFAULT_SYSTEM/unit, /careplan …
# The project's canonical base: its extensions' StructureDefinitions (shipped in the package,
# ``fhir_definitions``) and its code systems live under it.
CANONICAL = "https://bedside-unit.org/fhir"
EXT = f"{CANONICAL}/StructureDefinition/"

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
# The one SNOMED CT concept that covers what the unit guides: a supervised exercise regime.
# SNOMED CT has no concept for ankle pumps, quadriceps or gluteal sets themselves.
EXERCISE_THERAPY = {"system": SNOMED, "code": "229065009", "display": "Exercise therapy (regime/therapy)"}
# The Physical Activity IG's codes: an exercise activity (its value the kind of activity) and its duration.
EXERCISE_ACTIVITY = {"system": LOINC, "code": "73985-4", "display": "Exercise activity"}
EXERCISE_DURATION = {"system": LOINC, "code": "55411-3", "display": "Exercise duration"}
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
PA_CATEGORY = "http://hl7.org/fhir/us/physical-activity/CodeSystem/pa-temporary-codes"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
PROVENANCE_ROLE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"

# The unit's own code systems, under the canonical base (codes, unlike identifiers, do not change per hospital).
SUMMARY_SYSTEM = f"{CANONICAL}/CodeSystem/daily-summary"
KIND_SYSTEM = f"{CANONICAL}/CodeSystem/session-kind"
REASON_SYSTEM = f"{CANONICAL}/CodeSystem/not-done-reason"
INTEGRITY_SYSTEM = f"{CANONICAL}/CodeSystem/record-integrity"

# How each decided outcome becomes a Procedure's status (a table: new outcomes are a line).
STATUS = {ad.DONE: "completed", ad.PARTIAL: "completed", ad.INTERRUPTED: "stopped", ad.MISSED: "not-done",
          ad.PAUSED: "not-done", ad.EXTRA: "completed"}
NOT_DONE_TEXT = {"unanswered": "missed: no answer to the prompt", "power_loss": "power loss",
                 "paused": "not offered: prompting paused by a nurse",
                 "discharged": "discharged before the session", "unit_off": "unit switched off"}


@dataclass(frozen=True, slots=True)
class Extension:
    """One of the unit's extensions: its StructureDefinition is made from this row."""

    name: str
    kind: str                      # the value[x] type: String, Boolean, Integer, DateTime
    context: tuple[str, ...]       # the elements it may sit on
    title: str
    description: str


EXTENSIONS = (
    Extension("journal-verdict", "String", ("Provenance",), "Journal verdict",
              "The unit's journal checker's verdict on the exported record (as bedside log verify says it)."),
    Extension("chain-head", "String", ("Provenance",), "Chain head",
              "The last record of the exported hash chain: its sequence number and hash, SEQ/HASH."),
    Extension("journal-trusted", "Boolean", ("Provenance",), "Journal trusted",
              "False when the record failed verification or contradicts another export of the same unit."),
    Extension("due", "DateTime", ("Procedure",), "Session due", "When the session was scheduled."),
    Extension("offered", "DateTime", ("Procedure",), "Session offered",
              "When the unit offered the session (later than due for a session held over the night)."),
    Extension("snoozes", "Integer", ("Procedure",), "Snoozes", "How many times the patient snoozed the prompt."),
    Extension("reps-done", "Integer", ("Procedure",), "Repetitions done",
              "Repetitions the unit counted the patient through (as far as known for a stopped session)."),
    Extension("reps-planned", "Integer", ("Procedure",), "Repetitions planned", "Repetitions the session asked for."),
    Extension("late-minutes", "Integer", ("Procedure",), "Minutes late",
              "Minutes from the prompt to the start of the guided exercises."),
)
EXTENSION_NAMES = frozenset(x.name for x in EXTENSIONS)

# The daily summary's components (after the exercise duration, LOINC's): code -> (display, kind).
COMPONENTS: dict[str, tuple[str, str]] = {
    "sessions-due": ("Sessions due", "count"),
    "sessions-done": ("Sessions done (in full, partly or interrupted)", "count"),
    "sessions-partial": ("Sessions done partly (ended early)", "count"),
    "sessions-interrupted": ("Sessions begun and cut off (power cut)", "count"),
    "sessions-missed": ("Sessions missed", "count"),
    "sessions-paused": ("Sessions not offered: prompting paused by a nurse", "count"),
    "sessions-extra": ("Extra sessions on the patient's request", "count"),
    "sessions-late": ("Sessions started 15 minutes or more after the prompt", "count"),
    "reps-done": ("Repetitions done", "count"),
    "reps-planned": ("Repetitions planned", "count"),
    "snoozes": ("Prompts snoozed", "count"),
    "late-minutes-median": ("Median minutes from prompt to start", "minutes"),
}


class BundleError(BedsideError):
    """The records cannot go into a bundle as asked; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class UnitInfo:
    """What the hospital's asset register says of a unit (the laptop's settings, [units.ID])."""

    serial: str = ""
    location: str = ""


@dataclass(frozen=True, slots=True)
class Settings:
    """How the bundle is made: the unit's own identifier base, the hospital's systems and choices."""

    base: str = DEFAULT_SYSTEM
    hospital: Hospital = field(default_factory=Hospital)
    organization: str = ""                       # Device.owner's name
    units: Mapping[str, UnitInfo] = field(default_factory=dict)
    per_session: bool = False                    # also a Procedure per decided session
    ward: Config | None = None                   # the ward's configuration: the CarePlan's timing

    def of(self, what: str) -> str:
        return f"{self.base.rstrip('/:')}{':' if self.base.startswith('urn:') else '/'}{what}"


def _uid(system: str, value: str) -> str:
    """A stable urn:uuid for a resource in the bundle: the same identifier, the same fullUrl."""
    return "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"{system}|{value}"))


def search(system: str, value: str, param: str = "identifier") -> str:
    """``identifier=SYSTEM|VALUE`` with both URL-encoded, as a search in a URL must be."""
    return f"{param}={urllib.parse.quote(f'{system}|{value}', safe='')}"


def _put(kind: str, system: str, value: str, resource: dict[str, Any]) -> dict[str, Any]:
    """A conditional update: the server updates the one resource with this identifier, or creates it."""
    return {"fullUrl": _uid(system, value), "resource": {"resourceType": kind, **resource},
            "request": {"method": "PUT", "url": f"{kind}?{search(system, value)}"}}


def _create(kind: str, system: str, value: str, resource: dict[str, Any]) -> dict[str, Any]:
    """A conditional create: only if no resource has this identifier (never changes one the hospital has)."""
    return {"fullUrl": _uid(system, value), "resource": {"resourceType": kind, **resource},
            "request": {"method": "POST", "url": kind, "ifNoneExist": search(system, value)}}


def _iso(t: datetime | None) -> str | None:
    return t.isoformat(timespec="seconds") if t is not None else None


def _ext(name: str, kind: str, value: Any) -> dict[str, Any]:
    assert name in EXTENSION_NAMES, name
    return {"url": EXT + name, f"value{kind}": value}


# --- stays ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Stay:
    """One admission at one unit, to its discharge: what the records say of it."""

    unit: str
    visit: str
    admitted: datetime
    surgery: date | None
    regimen: str | None
    discharged: datetime | None = None
    mrn: str | None = None
    visit_system: str = ""
    mrn_system: str = ""
    sessions: tuple[ad.SessionOutcome, ...] = ()

    @property
    def key(self) -> str:
        """Unique per unit and admission: a re-admission under the same visit number is another stay."""
        return f"{self.unit}/{self.visit}/{self.admitted:%Y-%m-%dT%H:%M:%S}"


def stays(unit: str, records: Iterable[Mapping[str, Any]], sessions: Sequence[ad.SessionOutcome]) -> list[Stay]:
    """Every stay in one unit's records, in order. An ``admit`` of the episode already open is a
    correction (amended); one after its discharge is a new stay."""
    out: list[Stay] = []
    current: int | None = None
    for rec in records:
        typ = rec.get("type")
        if typ not in (T.ADMIT, T.DISCHARGE):
            continue
        t = ad.parse_time(rec.get("time"))
        eid = rec.get("episode")
        if t is None or (typ == T.ADMIT and not isinstance(eid, str)):
            continue
        if typ == T.ADMIT:
            assert isinstance(eid, str)
            fields = {k: rec[k] for k in ("mrn", "visit_system", "mrn_system") if isinstance(rec.get(k), str)}
            surgery, regimen = ad._date(rec.get("surgery")), ad._text(rec.get("regimen"))
            if current is not None and out[current].visit == eid:
                out[current] = replace(out[current], surgery=surgery, regimen=regimen, **fields)
                continue
            if current is not None:        # a new admission closes the stay before it
                out[current] = replace(out[current], discharged=t)
            out.append(Stay(unit, eid, t, surgery, regimen, **fields))
            current = len(out) - 1
        elif current is not None and eid in (None, out[current].visit):
            out[current] = replace(out[current], discharged=t)
            current = None
    mine: dict[int, list[ad.SessionOutcome]] = {}
    for s in sessions:
        at = s.prompted or s.offer
        found = [i for i, st in enumerate(out) if st.visit == s.episode and st.admitted <= at]
        if s.episode is not None and (found or any(st.visit == s.episode for st in out)):
            i = found[-1] if found else next(i for i, st in enumerate(out) if st.visit == s.episode)
            mine.setdefault(i, []).append(s)
    return [replace(st, sessions=tuple(mine.get(i, ()))) for i, st in enumerate(out)]


# --- the bundle ---------------------------------------------------------------------------

def bundle(units: Iterable[UnitRecord], *, settings: Settings | None = None, system: str | None = None,
           allow_broken: bool = False, exported: datetime) -> dict[str, Any]:
    """One transaction Bundle for every unit's records. Raises BundleError for a broken record
    unless ``allow_broken``; then that unit's resources carry a ``broken-record`` label."""
    s = settings or Settings()
    if system is not None:
        s = replace(s, base=system)
    units = list(units)
    broken = [u.unit for u in units if not _trusted(u)]
    if broken and not allow_broken:
        raise BundleError(f"the record of {', '.join(broken)} FAILED verification (or contradicts another "
                          "export): nothing was written. Take a fresh download; to send it anyway, marked as "
                          "broken, give --allow-broken")
    models = {u.unit: _within_budget(u.unit, ad.build(u.records)) for u in units}
    by_unit = {u.unit: stays(u.unit, u.records, models[u.unit].sessions) for u in units}
    encounters = _encounters([st for sts in by_unit.values() for st in sts], s)
    entries: list[dict[str, Any]] = [e for e, _ in encounters.values() if e is not None]
    patients: dict[str, dict[str, Any]] = {}
    for u in units:
        entries += unit_entries(u, by_unit[u.unit], models[u.unit], s, exported, encounters, patients)
    entries = list(patients.values()) + entries
    seen: set[str] = set()
    for e in entries:
        if e["fullUrl"] in seen:      # bdl-7: the same fullUrl twice is a broken bundle; never send one
            raise BundleError(f"two entries would have the fullUrl {e['fullUrl']} ({e['request']['url']}); "
                              "please report this")
        seen.add(e["fullUrl"])
    return {"resourceType": "Bundle", "type": "transaction",
            "meta": {"tag": [{"system": f"{CANONICAL}/CodeSystem/source", "code": "bedside",
                              "display": f"bedside {__version__} fhir export"}]},
            "timestamp": _iso(exported), "entry": entries}


def _trusted(u: UnitRecord) -> bool:
    return not u.broken and not u.contradicting


def _visit_system(st: Stay, s: Settings) -> str:
    return st.visit_system or s.hospital.visit_system


def _encounters(all_stays: list[Stay], s: Settings) -> dict[tuple[str, str], tuple[dict[str, Any] | None,
                                                                                    dict[str, Any]]]:
    """Per visit (system, number): the Encounter entry the bundle writes (None where the hospital's
    is referenced) and the reference the stay's resources use. A visit on several units (a bed
    transfer) or twice on one (a re-admission) is one Encounter."""
    visits: dict[tuple[str, str], list[Stay]] = {}
    for st in all_stays:
        system = _visit_system(st, s) or s.of("episode")
        visits.setdefault((system, st.visit), []).append(st)
    out: dict[tuple[str, str], tuple[dict[str, Any] | None, dict[str, Any]]] = {}
    for (system, visit), group in visits.items():
        hospital_owns = bool(_visit_system(group[0], s)) and not s.hospital.create_encounter
        if hospital_owns:
            out[(system, visit)] = (None, {"reference": f"Encounter?{search(system, visit)}"})
            continue
        group.sort(key=lambda st: st.admitted)
        done = all(st.discharged is not None for st in group)
        end = max(st.discharged for st in group if st.discharged is not None) if done else None
        period = {k: v for k, v in (("start", _iso(group[0].admitted)), ("end", _iso(end))) if v}
        encounter: dict[str, Any] = {
            "identifier": [{"use": "usual", "type": {"coding": [{"system": V2_0203, "code": "VN",
                                                                 "display": "Visit number"}]},
                            "system": system, "value": visit}],
            "status": "finished" if done else "in-progress",
            "class": {"system": ACT_CODE, "code": "IMP", "display": "inpatient encounter"},
            "subject": _patient_ref(group[-1], s),
            "period": period,
            "location": [{"location": {"display": f"bedside unit {st.unit}"},
                          "status": "completed" if st.discharged else "active",
                          "period": {k: v for k, v in (("start", _iso(st.admitted)), ("end", _iso(st.discharged)))
                                     if v}} for st in group]}
        entry = _put("Encounter", system, visit, encounter)
        out[(system, visit)] = (entry, {"reference": entry["fullUrl"]})
    return out


def _patient_ref(st: Stay, s: Settings) -> dict[str, Any]:
    """The hospital's Patient by conditional reference on the MRN when the admission gave one;
    otherwise a logical reference through the visit number (resolved by the hospital's side)."""
    mrn_system = st.mrn_system or s.hospital.mrn_system
    if st.mrn and mrn_system:
        if s.hospital.create_patient:
            return {"reference": _uid(mrn_system, st.mrn)}
        return {"reference": f"Patient?{search(mrn_system, st.mrn)}"}
    return {"type": "Patient", "identifier": {
        "type": {"coding": [{"system": V2_0203, "code": "VN", "display": "Visit number"}]},
        "system": _visit_system(st, s) or s.of("episode"), "value": st.visit},
        "display": f"the patient of visit {st.visit}"}


def unit_entries(u: UnitRecord, unit_stays: list[Stay], m: ad.Adherence, s: Settings, exported: datetime,
                 encounters: Mapping[tuple[str, str], tuple[dict[str, Any] | None, dict[str, Any]]],
                 patients: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    trusted = _trusted(u)
    out: list[dict[str, Any]] = []
    out.append(_device(u, s))
    device_ref = {"reference": out[0]["fullUrl"], "display": f"bedside unit {u.unit}"}
    owned_here: dict[str, None] = {}            # the Encounters this bundle writes for this unit's stays
    for st in unit_stays:
        mrn_system = st.mrn_system or s.hospital.mrn_system
        if st.mrn and mrn_system and s.hospital.create_patient:
            patients.setdefault(f"{mrn_system}|{st.mrn}", _create("Patient", mrn_system, st.mrn, {
                "identifier": [{"use": "usual", "type": {"coding": [{"system": V2_0203, "code": "MR",
                                                                     "display": "Medical record number"}]},
                                "system": mrn_system, "value": st.mrn}]}))
        owned, enc_ref = encounters[(_visit_system(st, s) or s.of("episode"), st.visit)]
        if owned is not None:
            owned_here.setdefault(owned["fullUrl"], None)
        out += _stay_entries(st, s, device_ref, enc_ref, m.last)
    v = u.verdict
    head = f"{v.head[0]}/{v.head[1]}" if v.head else "-"
    verdict = v.verdict if trusted else next(iter(b[1].verdict for b in u.broken), "BROKEN: another chain")
    export_id = f"{u.unit}/{head}"
    targets = [{"reference": url} for url in [*owned_here, *(e["fullUrl"] for e in out)]]
    provenance: dict[str, Any] = {
        "meta": {"tag": [{"system": s.of("export"), "code": export_id}]},
        "target": targets, "recorded": _iso(exported),
        "agent": [{"type": {"coding": [{"system": PROVENANCE_ROLE, "code": "assembler"}]}, "who": device_ref}],
        "entity": [{"role": "source", "what": {"identifier": {"system": s.of("export"), "value": export_id},
                                               "display": ", ".join(x.path.name for x in u.exports)}}],
        "extension": [_ext("journal-verdict", "String", verdict), _ext("chain-head", "String", head),
                      _ext("journal-trusted", "Boolean", trusted)]}
    prov = _create("Provenance", s.of("export"), export_id, provenance)
    # Provenance has no identifier in R4, and servers search its entity's identifier unevenly (HAPI
    # has no entity:identifier): the export is found by its tag, which every server searches.
    prov["request"]["ifNoneExist"] = search(s.of("export"), export_id, "_tag")
    out.append(prov)
    if not trusted:
        for e in out:
            meta = e["resource"].setdefault("meta", {})
            meta["security"] = [{"system": INTEGRITY_SYSTEM, "code": "broken-record",
                                 "display": "From a journal that FAILED verification"}]
    return out


def _device(u: UnitRecord, s: Settings) -> dict[str, Any]:
    versions = [r.get("version") for r in u.records if r.get("type") == T.START and isinstance(r.get("version"), str)]
    info = s.units.get(u.unit, UnitInfo())
    device: dict[str, Any] = {
        "identifier": [{"system": s.of("unit"), "value": u.unit}], "status": "active",
        "manufacturer": "bedside", "deviceName": [{"name": u.unit, "type": "user-friendly-name"}],
        "type": {"text": "Bedside exercise prompting unit"}}
    if info.serial:
        device["serialNumber"] = info.serial
    if versions:
        device["version"] = [{"value": versions[-1]}]
    if s.organization:
        device["owner"] = {"display": s.organization}
    device["location"] = {"display": info.location or f"the bed of unit {u.unit}"}
    return _put("Device", s.of("unit"), u.unit, device)


def _stay_entries(st: Stay, s: Settings, device_ref: Mapping[str, Any],
                  enc_ref: Mapping[str, Any], record_end: datetime | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    patient = _patient_ref(st, s)
    period = {k: v for k, v in (("start", _iso(st.admitted)), ("end", _iso(st.discharged))) if v}
    regimen = st.regimen or "the unit's default"
    careplan: dict[str, Any] = {
        "identifier": [{"system": s.of("careplan"), "value": st.key}],
        "status": "completed" if st.discharged else "active", "intent": "plan",
        "category": [{"coding": [EXERCISE_THERAPY]}],
        "title": f"Bed exercises, regimen {regimen}",
        "description": f"Exercises prompted and guided by bedside unit {st.unit} under the regimen {regimen} "
                       "configured on it" + (f"; surgery {st.surgery.isoformat()}" if st.surgery else ""),
        "subject": patient, "encounter": dict(enc_ref), "period": period,
        "activity": _activities(st, s)}
    plan = _put("CarePlan", s.of("careplan"), st.key, careplan)
    out.append(plan)
    plan_ref = {"reference": plan["fullUrl"]}
    days: dict[date, list[ad.SessionOutcome]] = {}
    for x in st.sessions:
        days.setdefault(x.day, []).append(x)
    for day in sorted(days):
        out.append(_daily(st, day, days[day], s, patient, enc_ref, plan_ref, device_ref, record_end))
    if s.per_session:
        for x in st.sessions:
            if x.outcome in STATUS:
                out.append(_procedure(st.unit, x, s, patient, enc_ref, plan_ref, device_ref))
    return out


def _within_budget(unit: str, m: ad.Adherence) -> ad.Adherence:
    """The model, if it lists every session and admission: the resources are made from the
    sessions one by one, so a record past the report's budget (``adherence.SESSIONS_LISTED``,
    about ten years of the default schedule, and the rest: a runaway or crafted unit, or one
    never pruned for a decade) would send numbers short of what it holds."""
    if m.more_sessions or m.more_episodes:
        raise BundleError(f"the record of {unit} holds more sessions or admissions than a report lists "
                          f"({m.more_sessions} sessions and {m.more_episodes} admissions not listed; a unit's own "
                          f"record does only after {ad.SESSIONS_LISTED:,} sessions, about ten years of use, or "
                          f"{ad.EPISODES_LISTED:,} admissions): nothing was written. Read its report "
                          "(`bedside report`) and the journal itself (`bedside log export`)")
    return m


def daily_summaries(units: Iterable[UnitRecord], settings: Settings | None = None) -> list[tuple[Stay, dict[str, Any]]]:
    """Every stay's daily summary Observations (as the bundle has them), with their stay: for other
    formats of the same numbers (``report.hl7v2``)."""
    s = settings or Settings()
    out = []
    for u in units:
        m = _within_budget(u.unit, ad.build(u.records))
        for st in stays(u.unit, u.records, m.sessions):
            days: dict[date, list[ad.SessionOutcome]] = {}
            for x in st.sessions:
                days.setdefault(x.day, []).append(x)
            for d in sorted(days):
                e = _daily(st, d, days[d], s, _patient_ref(st, s), {}, {}, {}, m.last)
                out.append((st, e["resource"]))
    return out


# --- the plan -----------------------------------------------------------------------------

def _hhmm(t: time) -> str:
    return t.strftime("%H:%M:%S")


def _activities(st: Stay, s: Settings) -> list[dict[str, Any]]:
    """The regimen's sessions as activities: per stage (post-operative days) and kind, with the
    times of day they fall at. Without the ward's configuration the times are not known here."""
    status = "completed" if st.discharged else "in-progress"
    code = {"coding": [EXERCISE_THERAPY], "text": f"bed exercises, regimen {st.regimen or 'default'}"}
    cfg = s.ward
    regimen = cfg.regimen(st.regimen or cfg.default_regimen) if cfg is not None else None
    if cfg is None or regimen is None or st.surgery is None:
        return [{"detail": {"code": code, "status": status,
                            "description": "prompted every waking hour and at the routine's times, stepping down "
                                           "by post-operative day as the unit's regimen says (give bedside fhir "
                                           "the ward's configuration for the times)"}}]
    out = []
    first = st.admitted.date()
    last = st.discharged.date() if st.discharged else None
    for n, stage in enumerate(regimen.stages):
        lo = st.surgery + timedelta(days=stage.from_day)
        nxt = regimen.stages[n + 1].from_day if n + 1 < len(regimen.stages) else None
        hi = st.surgery + timedelta(days=nxt - 1) if nxt is not None else None
        lo = max(lo, first)
        if (hi is not None and hi < first) or (last is not None and lo > last):
            continue
        if last is not None and (hi is None or hi > last):
            hi = last
        bounds = {k: v for k, v in (("start", lo.isoformat()), ("end", hi.isoformat() if hi else None)) if v}
        days = f"post-operative day {stage.from_day}" + (f" to {nxt - 1}" if nxt is not None else " on")
        every = cfg.hourly_every_minutes if stage.hourly_every_minutes is None else stage.hourly_every_minutes
        routine = cfg.routine_at if stage.routine_at is None else stage.routine_at
        hourly_ex = cfg.hourly_exercises if stage.hourly_exercises is None else stage.hourly_exercises
        routine_ex = cfg.routine_exercises if stage.routine_exercises is None else stage.routine_exercises
        for kind, times, exercises in (("routine", list(routine), routine_ex),
                                       ("hourly", _hourly_times(cfg, every, routine), hourly_ex)):
            if not times or not exercises:
                continue
            what = "; ".join(f"{e.name} {e.reps}" + (" each foot" if e.per_foot else "") for e in exercises)
            out.append({"detail": {
                "code": {"coding": [EXERCISE_THERAPY, {"system": KIND_SYSTEM, "code": kind,
                                                       "display": f"{kind} session"}],
                         "text": f"{kind} bed exercises"},
                "status": status,
                "scheduledTiming": {"repeat": {"boundsPeriod": bounds,
                                               "timeOfDay": [_hhmm(t) for t in sorted(times)]}},
                "description": f"{kind} session, {days}: {what}"}})
    return out or [{"detail": {"code": code, "status": status}}]


def _hourly_times(cfg: Config, every: int, routine: Sequence[time]) -> list[time]:
    """An hourly session's times of day: the awake window's start, then every ``every`` minutes
    to its end; a routine at the same time replaces it (as the unit's planner does)."""
    if not every:
        return []
    return [t for t in planner.window_times(cfg.awake_start, cfg.awake_end, every) if t not in routine]


# --- the daily summary --------------------------------------------------------------------

def _count(code: str, value: int) -> dict[str, Any]:
    display, _ = COMPONENTS[code]
    return {"code": {"coding": [{"system": SUMMARY_SYSTEM, "code": code, "display": display}]}, "valueInteger": value}


def _minutes(code: dict[str, Any], value: float) -> dict[str, Any]:
    return {"code": {"coding": [code]},
            "valueQuantity": {"value": round(value, 1), "unit": "min", "system": UCUM, "code": "min"}}


def _daily(st: Stay, day: date, sessions: list[ad.SessionOutcome], s: Settings, patient: Mapping[str, Any],
           enc_ref: Mapping[str, Any], plan_ref: Mapping[str, Any], device_ref: Mapping[str, Any],
           record_end: datetime | None) -> dict[str, Any]:
    """One day of one stay: counts as components, after the Physical Activity IG's exercise activity."""
    by: dict[str, int] = {}
    for x in sessions:
        by[x.outcome] = by.get(x.outcome, 0) + 1
    done = by.get(ad.DONE, 0) + by.get(ad.PARTIAL, 0) + by.get(ad.INTERRUPTED, 0)
    due = done + by.get(ad.MISSED, 0)
    counted = [x for x in sessions if x.is_done or x.outcome == ad.EXTRA]
    reps = sum(x.reps or 0 for x in counted)
    planned = sum(x.planned or 0 for x in counted)
    late = [x.late_min for x in sessions if x.is_done and x.late_min is not None]
    minutes = sum((x.finished - x.started).total_seconds() / 60 for x in counted
                  if x.started is not None and x.finished is not None)
    still_open = any(x.outcome in (ad.OPEN, ad.WAITING) for x in sessions)
    over = st.discharged is not None or (record_end is not None and record_end.date() > day)
    final = over and not still_open
    components = [_minutes(EXERCISE_DURATION, minutes)]
    for code, value in (("sessions-due", due), ("sessions-done", done), ("sessions-partial", by.get(ad.PARTIAL, 0)),
                        ("sessions-interrupted", by.get(ad.INTERRUPTED, 0)), ("sessions-missed", by.get(ad.MISSED, 0)),
                        ("sessions-paused", by.get(ad.PAUSED, 0)), ("sessions-extra", by.get(ad.EXTRA, 0)),
                        ("sessions-late", sum(1 for x in sessions if x.late)), ("reps-done", reps),
                        ("reps-planned", planned), ("snoozes", sum(x.snoozes for x in sessions))):
        components.append(_count(code, value))
    if late:
        components.append(_minutes({"system": SUMMARY_SYSTEM, "code": "late-minutes-median",
                                    "display": COMPONENTS["late-minutes-median"][0]}, statistics.median(late)))
    key = f"{st.key}/{day.isoformat()}"
    pod = f", post-operative day {(day - st.surgery).days}" if st.surgery else ""
    rate = f" ({done / due:.0%})" if due else ""
    obs: dict[str, Any] = {
        "identifier": [{"system": s.of("daily-summary"), "value": key}],
        "basedOn": [dict(plan_ref)],
        "status": "final" if final else "preliminary",
        "category": [{"coding": [{"system": OBS_CATEGORY, "code": "activity", "display": "Activity"}]},
                     {"coding": [{"system": PA_CATEGORY, "code": "PhysicalActivity", "display": "Physical Activity"}]}],
        "code": {"coding": [EXERCISE_ACTIVITY, {"system": SUMMARY_SYSTEM, "code": "daily-summary",
                                                "display": "Bed exercises: the day's summary"}],
                 "text": "Bed exercises, the day's summary"},
        "subject": dict(patient), "encounter": dict(enc_ref),
        "effectiveDateTime": day.isoformat(),
        "performer": [dict(patient)] if "reference" in patient else [],
        "valueCodeableConcept": {"coding": [EXERCISE_THERAPY], "text": "ankle pumps, quadriceps and gluteal sets"},
        "device": dict(device_ref),
        "note": [{"text": f"{day.isoformat()}{pod}: {done} of {due} sessions done{rate}, {reps} of {planned} "
                          f"repetitions, {by.get(ad.MISSED, 0)} missed, {by.get(ad.PAUSED, 0)} paused, "
                          f"{by.get(ad.INTERRUPTED, 0)} interrupted; unit {st.unit}"
                          + ("" if final else "; the day is not over in this record")}],
        "component": components}
    if not obs["performer"]:
        del obs["performer"]
    return _put("Observation", s.of("daily-summary"), key, obs)


# --- a Procedure per session (optional) -------------------------------------------------

def _procedure(unit: str, x: ad.SessionOutcome, s: Settings, patient: Mapping[str, Any], enc_ref: Mapping[str, Any],
               plan_ref: Mapping[str, Any], device_ref: Mapping[str, Any]) -> dict[str, Any]:
    sid = f"{unit}/{x.id}"
    status = STATUS[x.outcome]
    if x.outcome == ad.EXTRA and x.finished is None and x.reason is not None:
        status = "stopped"           # an extra session a power cut cut short: begun, not finished
    kind = {"system": KIND_SYSTEM, "code": x.kind, "display": f"{x.kind} session"}
    res: dict[str, Any] = {
        "identifier": [{"system": s.of("session"), "value": sid}],
        "basedOn": [dict(plan_ref)], "status": status,
        "code": {"coding": [EXERCISE_THERAPY, kind], "text": f"{x.kind} bed exercises due {x.due:%H:%M}"},
        "subject": dict(patient), "encounter": dict(enc_ref),
        "extension": [_ext("due", "DateTime", _iso(x.due)), _ext("offered", "DateTime", _iso(x.offer)),
                      _ext("snoozes", "Integer", x.snoozes)]}
    notes = []
    if status in ("completed", "stopped"):
        if x.started is not None and x.finished is not None:
            res["performedPeriod"] = {"start": _iso(x.started), "end": _iso(x.finished)}
        elif x.started is not None:
            res["performedPeriod"] = {"start": _iso(x.started)}      # stopped: no end is known
        elif x.finished is not None:
            res["performedDateTime"] = _iso(x.finished)
        if x.reps is not None:
            res["extension"].append(_ext("reps-done", "Integer", x.reps))
        if x.planned is not None:
            res["extension"].append(_ext("reps-planned", "Integer", x.planned))
        if x.late_min is not None:
            res["extension"].append(_ext("late-minutes", "Integer", x.late_min))
        if x.outcome == ad.PARTIAL:
            res["outcome"] = {"text": f"partly done: {x.reps} of {x.planned} reps"}
        reps = "?" if x.reps is None else x.reps
        notes.append(f"{reps} of {x.planned if x.planned is not None else '?'} "
                     f"reps{' known done' if status == 'stopped' else ''}; started "
                     f"{x.late_min if x.late_min is not None else '?'} min after the prompt; "
                     f"snoozed {x.snoozes} time(s)")
        res["performer"] = [{"actor": dict(device_ref), "function": {"text": "prompted and guided the exercises"}}]
    if status in ("stopped", "not-done"):
        reason = "paused" if x.outcome == ad.PAUSED else x.reason or "unknown"
        said = REASONS.get(reason, reason)
        res["statusReason"] = {"coding": [{"system": REASON_SYSTEM, "code": reason, "display": said}],
                               "text": f"interrupted: {said}" if status == "stopped" else
                               NOT_DONE_TEXT.get(reason, f"missed: {said}")}
        if status == "not-done":
            notes.append(f"not done ({said}); snoozed {x.snoozes} time(s)")
    res["note"] = [{"text": "; ".join(notes)}]
    return _put("Procedure", s.of("session"), sid, res)


# --- servers that take small transactions ----------------------------------------------------

def conditional_url(entry: Mapping[str, Any]) -> str:
    """The search that finds an entry's resource on the server: its conditional reference."""
    req = entry["request"]
    return req["url"] if req["method"] == "PUT" else f"{req['url']}?{req['ifNoneExist']}"


def split(doc: Mapping[str, Any], max_entries: int) -> list[dict[str, Any]]:
    """The bundle as several transactions of at most ``max_entries`` entries each, for a server
    that limits a transaction's size (Medplum takes 8 entries with conditional writes; others set
    their own limits). References inside the bundle become conditional references (every entry has a business
    identifier), and a resource goes in a later transaction than every resource it refers to, so
    each transaction stands alone. Each is all or nothing; a failure part-way leaves the earlier ones
    stored, and posting the same export again completes it (every write is conditional)."""
    entries = list(doc.get("entry") or [])
    if max_entries <= 0 or len(entries) <= max_entries:
        return [dict(doc)]
    by_url = {e["fullUrl"]: e for e in entries}
    refs: dict[str, set[str]] = {}

    def walk(node: Any, found: set[str]) -> Any:
        if isinstance(node, list):
            return [walk(x, found) for x in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v, found) for k, v in node.items()}
        target = by_url.get(out.get("reference", "")) if isinstance(out.get("reference"), str) else None
        if target is not None:
            found.add(target["fullUrl"])
            out["reference"] = conditional_url(target)
        return out

    rewritten = {}
    for e in entries:
        found: set[str] = set()
        rewritten[e["fullUrl"]] = {**e, "resource": walk(e["resource"], found)}
        refs[e["fullUrl"]] = found
    depth: dict[str, int] = {}

    def level(url: str, seen: tuple[str, ...] = ()) -> int:
        if url not in depth:
            if url in seen:
                raise BundleError(f"the bundle's references go round in a circle at {url}; please report this")
            depth[url] = 1 + max((level(r, (*seen, url)) for r in refs[url]), default=-1)
        return depth[url]

    layers: dict[int, list[dict[str, Any]]] = {}
    for e in entries:
        layers.setdefault(level(e["fullUrl"]), []).append(rewritten[e["fullUrl"]])
    out = []
    for n in sorted(layers):
        layer = layers[n]
        for i in range(0, len(layer), max_entries):
            out.append({**doc, "entry": layer[i:i + max_entries]})
    return out


# --- the extensions' definitions ------------------------------------------------------------

def structure_definition(x: Extension) -> dict[str, Any]:
    """The R4 StructureDefinition of one of the unit's extensions (a simple extension: one value)."""
    url = EXT + x.name
    sid = f"bedside-{x.name}"
    value = x.kind[0].lower() + x.kind[1:]
    # The snapshot: the base Extension's five elements with this extension's constraints.
    elements: list[dict[str, Any]] = [
        {"id": "Extension", "path": "Extension", "short": x.title, "definition": x.description, "min": 0,
         "max": "1"},
        {"id": "Extension.id", "path": "Extension.id", "short": "Unique id for inter-element referencing",
         "definition": "Unique id for the element within a resource (for internal references).", "min": 0,
         "max": "1", "type": [{"code": "http://hl7.org/fhirpath/System.String"}]},
        {"id": "Extension.extension", "path": "Extension.extension", "short": "Additional content",
         "definition": "No extensions on this extension.", "min": 0, "max": "0", "type": [{"code": "Extension"}]},
        {"id": "Extension.url", "path": "Extension.url", "short": "identifies the meaning of the extension",
         "definition": "Source of the definition for the extension code.", "min": 1, "max": "1",
         "type": [{"code": "http://hl7.org/fhirpath/System.String"}], "fixedUri": url},
        {"id": "Extension.value[x]", "path": "Extension.value[x]", "short": f"Value of extension ({value})",
         "definition": x.description, "min": 1, "max": "1", "type": [{"code": value}]}]
    return {
        "resourceType": "StructureDefinition", "id": sid, "url": url, "version": "1.0.0",
        "name": "".join(p.capitalize() for p in x.name.split("-")), "title": x.title, "status": "active",
        "publisher": "bedside", "description": x.description, "fhirVersion": FHIR_VERSION,
        "kind": "complex-type", "abstract": False,
        "context": [{"type": "element", "expression": c} for c in x.context],
        "type": "Extension", "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Extension",
        "derivation": "constraint",
        "snapshot": {"element": [
            {**e, "base": {"path": e["path"], "min": base[0], "max": base[1]}}
            for e, base in zip(elements, ((0, "*"), (0, "1"), (0, "*"), (1, "1"), (0, "1")), strict=True)]},
        "differential": {"element": [
            {"id": "Extension", "path": "Extension", "short": x.title, "definition": x.description,
             "min": 0, "max": "1"},
            {"id": "Extension.extension", "path": "Extension.extension", "max": "0"},
            {"id": "Extension.url", "path": "Extension.url", "fixedUri": url},
            {"id": "Extension.value[x]", "path": "Extension.value[x]", "min": 1, "type": [{"code": value}]}]}}


def structure_definitions() -> list[dict[str, Any]]:
    return [structure_definition(x) for x in EXTENSIONS]


# --- checking -------------------------------------------------------------------------------

VALIDATE_ENTRIES = 200       # entries checked as one Bundle at a time


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
        # The Bundle around its entries, VALIDATE_ENTRIES at a time: the same checks of each entry
        # as a Bundle, without the models of every resource at once (about 60 KiB an entry).
        shell = {k: v for k, v in doc.items() if k != "entry"}
        entries = doc["entry"] if isinstance(doc.get("entry"), list) else None
        parts = [shell] if entries is None else [{**shell, "entry": entries[i:i + VALIDATE_ENTRIES]}
                                                 for i in range(0, max(len(entries), 1), VALIDATE_ENTRIES)]
        for i, part in enumerate(parts):
            try:
                construct_fhir_element("Bundle", part)
            except Exception as x:
                where = f" (entries from {i * VALIDATE_ENTRIES + 1})" if len(parts) > 1 else ""
                problems.append(f"the Bundle{where}: {x}".replace("\n", " "))
                break
    return problems
