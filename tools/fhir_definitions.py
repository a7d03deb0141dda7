"""Write the StructureDefinitions of the FHIR export's extensions into the package
(device/bedside/report/fhir_definitions/), from the table in bedside.report.fhir.EXTENSIONS.
tests/report/test_fhir_engine.py checks the files are what this writes and that a FHIR engine accepts
each one. Run after changing the table: python tools/fhir_definitions.py"""

from __future__ import annotations

import json
from pathlib import Path

from bedside.report import fhir

OUT = Path(__file__).resolve().parent.parent / "device" / "bedside" / "report" / "fhir_definitions"


def text(sd: dict[str, object]) -> str:
    return json.dumps(sd, indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.json"):
        old.unlink()
    for sd in fhir.structure_definitions():
        (OUT / f"StructureDefinition-{sd['id']}.json").write_text(text(sd), encoding="utf-8")
    print(f"wrote {len(fhir.EXTENSIONS)} StructureDefinitions to {OUT}")


if __name__ == "__main__":
    main()
