"""The daily summaries as HL7 v2.5 ORU^R01 messages, for a hospital whose interface engine takes v2.

One message per daily summary (the same numbers as the FHIR bundle's Observations,
``report.fhir.daily_summaries``), built and validated with hl7apy (the laptop extra):

* ``MSH`` from BEDSIDE at the unit; the message control id is a hash of the summary's
  identifier and content, so the same summary sent twice has the same id (receivers drop
  repeats) and a changed one a new id;
* ``PID-3`` the MRN (type ``MR``, its system as the assigning authority) when the admission gave
  one, else the visit number (type ``VN``); ``PID-5`` carries no name (name type ``U`` alone, as the field is required);
* ``PV1-19`` the visit number (type ``VN``), ``PV1-3`` the unit;
* ``OBR-4`` LOINC 73985-4 *Exercise activity*, ``OBR-7`` the day, ``OBR-25`` ``P`` or ``F``;
  an ``NTE`` with the summary in words;
* an ``OBX`` per component: LOINC codes as ``LN``, the unit's own as ``99BSD``, numbers as
  ``NM`` with UCUM units where they have one, ``OBX-11`` ``P`` (the day not over) or ``F``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from bedside.core.errors import BedsideError
from bedside.report import fhir
from bedside.report.ward import UnitRecord

VERSION = "2.5"
LOCAL = "99BSD"            # HL7's form for a local coding system: the unit's own codes


class HL7Error(BedsideError):
    """The messages cannot be made; the message says why."""


CODING_SYSTEMS = {fhir.LOINC: "LN", fhir.SNOMED: "SCT"}     # HL7 table 0396's names


def _system(uri: str) -> str:
    return CODING_SYSTEMS.get(uri, LOCAL)


def text(v: Any) -> str:
    """A value with HL7's escapes for its delimiters (| ^ & ~ and the escape character), on one line."""
    out = str(v).replace("\\", "\\E\\")
    for ch, esc in (("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\")):
        out = out.replace(ch, esc)
    return " ".join(out.split())


def _cx(value: str, system: str, kind: str) -> str:
    """An identifier (CX): value, the assigning authority as a URI, its type."""
    return f"{value}^^^&{system}&URI^{kind}" if system else f"{value}^^^^{kind}"


def messages(units: Iterable[UnitRecord], settings: fhir.Settings | None = None, *,
             exported: datetime) -> list[str]:
    """The ORU^R01 messages (ER7, segments ended by carriage returns), each validated strictly."""
    try:
        from hl7apy.consts import VALIDATION_LEVEL
        from hl7apy.core import Message
        from hl7apy.exceptions import HL7apyException
    except ImportError:
        raise HL7Error("HL7 v2 messages need hl7apy: install bedside's laptop extra "
                       "(pip install 'bedside[laptop]')") from None
    s = settings or fhir.Settings()
    out = []
    for st, obs in fhir.daily_summaries(units, s):
        m = Message("ORU_R01", version=VERSION, validation_level=VALIDATION_LEVEL.STRICT)

        final = obs["status"] == "final"
        digest = hashlib.sha256(json.dumps(obs, sort_keys=True).encode()).hexdigest()[:20]
        try:
            m.msh.msh_3 = "BEDSIDE"
            m.msh.msh_4 = text(st.unit)
            m.msh.msh_7 = exported.strftime("%Y%m%d%H%M%S%z")
            m.msh.msh_9 = "ORU^R01^ORU_R01"
            m.msh.msh_10 = digest
            m.msh.msh_11 = "P"
            m.msh.msh_12 = VERSION
            result = m.add_group("ORU_R01_PATIENT_RESULT")
            patient = result.add_group("ORU_R01_PATIENT")
            mrn_system = st.mrn_system or s.hospital.mrn_system
            visit_system = st.visit_system or s.hospital.visit_system
            patient.pid.pid_3 = (_cx(text(st.mrn), mrn_system, "MR") if st.mrn else
                                 _cx(text(st.visit), visit_system, "VN"))
            patient.pid.pid_5 = "^^^^^^U"
            visit = patient.add_group("ORU_R01_VISIT")
            visit.pv1.pv1_2 = "I"
            visit.pv1.pv1_3 = f"^^^^^^^^{text(st.unit)}"
            visit.pv1.pv1_19 = _cx(text(st.visit), visit_system, "VN")
            order = result.add_group("ORU_R01_ORDER_OBSERVATION")
            order.obr.obr_1 = "1"
            order.obr.obr_3 = f"{text(obs['identifier'][0]['value'])}^BEDSIDE"
            order.obr.obr_4 = "73985-4^Exercise activity^LN"
            order.obr.obr_7 = obs["effectiveDateTime"].replace("-", "")
            order.obr.obr_25 = "F" if final else "P"
            note = order.add_segment("NTE")
            note.nte_1 = "1"
            note.nte_3 = text(obs["note"][0]["text"])
            for n, c in enumerate(obs["component"], 1):
                coding = c["code"]["coding"][0]
                row = order.add_group("ORU_R01_OBSERVATION")
                row.obx.obx_1 = str(n)
                row.obx.obx_2 = "NM"
                row.obx.obx_3 = f"{text(coding['code'])}^{text(coding['display'])}^{_system(coding['system'])}"
                q = c.get("valueQuantity")
                row.obx.obx_5 = str(q["value"] if q else c["valueInteger"])
                if q:
                    row.obx.obx_6 = f"{q['code']}^{q['unit']}^UCUM"
                row.obx.obx_11 = "F" if final else "P"
                row.obx.obx_14 = obs["effectiveDateTime"].replace("-", "")
            m.validate()
        except (HL7apyException, ValueError) as e:
            raise HL7Error(f"the HL7 v2 message for {obs['identifier'][0]['value']} is not valid v{VERSION}: {e}; "
                           "please report this") from None
        out.append(str(m.to_er7()))
    return out
