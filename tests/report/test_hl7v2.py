"""The daily summaries as HL7 v2.5 ORU^R01 messages: each parsed back and validated strictly by
hl7apy, the same numbers as the FHIR Observations, no name, stable control ids."""

from __future__ import annotations

from pathlib import Path

from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from bedside.report import fhir, hl7v2, ward
from tests.report.test_fhir_engine import HOSPITAL, cut, stay
from tests.report.test_ward import NOW, TAKEN
from tests.rigs import ward_rig as wr
from tests.rigs.cli import run


def units(folder: Path, recs: list[dict[str, object]]) -> list[ward.UnitRecord]:
    wr.as_pull(folder, "bed12", recs, TAKEN)
    return ward.merge(ward.find([folder], print))


def test_one_valid_message_per_daily_summary_with_the_same_numbers(tmp_path: Path) -> None:
    us = units(tmp_path / "p", stay())
    settings = fhir.Settings(hospital=HOSPITAL)
    msgs = hl7v2.messages(us, settings, exported=NOW)
    summaries = fhir.daily_summaries(us, settings)
    assert len(msgs) == len(summaries) == 2
    for text, (_, obs) in zip(msgs, summaries, strict=True):
        m = parse_message(text, validation_level=VALIDATION_LEVEL.STRICT)
        assert m.validate()
        assert m.msh.msh_9.to_er7() == "ORU^R01^ORU_R01" and m.msh.msh_12.to_er7() == "2.5"
        pid = m.oru_r01_patient_result.oru_r01_patient.pid
        assert pid.pid_3.to_er7() == "70012345^^^&https://hospital.example/ids/mrn&URI^MR"
        assert pid.pid_5.to_er7() == "^^^^^^U"                        # no name, ever
        pv1 = m.oru_r01_patient_result.oru_r01_patient.oru_r01_visit.pv1
        assert pv1.pv1_19.to_er7() == "V1001^^^&https://hospital.example/ids/visit&URI^VN"
        order = m.oru_r01_patient_result.oru_r01_order_observation
        assert order.obr.obr_4.to_er7() == "73985-4^Exercise activity^LN"
        values = {x.obx.obx_3.obx_3_1.to_er7(): x.obx.obx_5.to_er7() for x in order.oru_r01_observation}
        expect = {c["code"]["coding"][0]["code"]: str(c.get("valueInteger", c.get("valueQuantity", {}).get("value")))
                  for c in obs["component"]}
        assert values == expect
    day29 = parse_message(msgs[0], validation_level=VALIDATION_LEVEL.STRICT)
    rows = {x.obx.obx_3.obx_3_1.to_er7(): x for x in
            day29.oru_r01_patient_result.oru_r01_order_observation.oru_r01_observation}
    assert (rows["sessions-done"].obx.obx_5.to_er7(), rows["sessions-due"].obx.obx_5.to_er7()) == ("10", "11")
    assert rows["55411-3"].obx.obx_6.to_er7() == "min^min^UCUM" and rows["55411-3"].obx.obx_11.to_er7() == "F"


def test_the_same_summary_keeps_its_control_id_and_a_changed_one_gets_a_new_one(tmp_path: Path) -> None:
    full, mid = stay(), cut(stay(), "2026-11-30T09:")
    a = hl7v2.messages(units(tmp_path / "a", mid), exported=NOW)
    b = hl7v2.messages(units(tmp_path / "b", mid), exported=NOW)
    c = hl7v2.messages(units(tmp_path / "c", full), exported=NOW)
    ids = [[parse_message(x).msh.msh_10.to_er7() for x in ms] for ms in (a, b, c)]
    assert ids[0] == ids[1]
    assert ids[2][0] == ids[0][0] and ids[2][1] != ids[0][1]     # the 29th was over; the 30th was not
    assert a[1].split("\r")[3].endswith("|P") and c[1].split("\r")[3].endswith("|F")      # OBR-25


def test_delimiters_in_text_are_escaped() -> None:
    assert hl7v2.text("a|b^c&d~e\\f\nnext") == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f next"


def test_the_command_writes_the_messages(tmp_path: Path) -> None:
    wr.as_pull(tmp_path / "p", "bed12", stay(), TAKEN)
    out = tmp_path / "daily.hl7"
    r = run("fhir", str(tmp_path / "p"), "-o", str(tmp_path / "b.json"), "--hl7v2", str(out))
    assert r.returncode == 0, r.stderr
    assert f"Wrote {out}: 2 HL7 v2.5 ORU^R01 message(s)" in r.stdout
    texts = [m for m in out.read_bytes().decode().split("\r\n") if m]
    assert len(texts) == 2 and all(parse_message(t, validation_level=VALIDATION_LEVEL.STRICT).validate()
                                   for t in texts)
