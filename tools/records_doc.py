"""Write the record of care's data dictionary (docs/records.md) and the JSON Schema of an export
line (device/bedside/journal/record.schema.json, shipped in the package), both from the table in
bedside.core.records. tests/journal/test_records.py checks the files are what this writes.
Run after changing the table: python tools/records_doc.py"""

from __future__ import annotations

import json
from pathlib import Path

from bedside.core import records

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "records.md"
SCHEMA = ROOT / "device" / "bedside" / "journal" / "record.schema.json"


def schema_text() -> str:
    return json.dumps(records.json_schema(), indent=2, ensure_ascii=False) + "\n"


def main() -> None:
    DOC.write_text(records.markdown(), encoding="utf-8")
    SCHEMA.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)} and {SCHEMA.relative_to(ROOT)}: {len(records.TYPES)} record types")


if __name__ == "__main__":
    main()
