"""The record of care's one vocabulary (core/records.py): the table is whole, the documents
generated from it are current, and real export lines of a simulated day fit its JSON Schema."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from benchmarks import journals
from tools import records_doc

from bedside.core import config, records
from bedside.core.records import ENVELOPE, OUTCOMES, TYPES, T
from bedside.journal import export, seal
from bedside.journal.journal import Journal
from bedside.unit import simulate
from bedside.unit.offline import OfflineWriter

CFG = config.Config()
START = "2026-11-24T06:00"
# Nurses' actions on top of a realistic patient's day (benchmarks/journals.day_actions).
SCRIPT = """
2026-11-24T08:15 admit E2026-0042 2026-11-23
2026-11-24T13:20 pause 1h
2026-11-24T14:30 resume
2026-11-24T16:05 clock 2026-11-24T16:20
2026-11-24T18:30 export usb
2026-11-24T22:10 discharge E2026-0042
"""


def _names() -> dict[str, str]:
    return {k: v for k, v in vars(T).items() if k.isupper()}


def test_every_name_is_a_registered_type_and_every_type_has_a_name() -> None:
    names = _names()
    assert all(k == v.upper() for k, v in names.items()), names
    assert set(names.values()) == set(TYPES)
    assert len(names) == len(TYPES) == 47


def test_each_type_says_its_kind_and_its_fields_once() -> None:
    for r in TYPES.values():
        assert r.kind in records.KINDS, r.name
        assert r.when and r.group, r.name
        fields = [f.name for f in r.fields]
        assert len(fields) == len(set(fields)), r.name
        assert not set(fields) & records.ENVELOPE_KEYS, r.name
        assert all(f.meaning for f in r.fields), r.name


def test_the_kinds_are_the_sets_the_journal_and_the_restart_used() -> None:
    from bedside.core import restart
    from bedside.journal import store

    assert {"seal", "flood", "flood_end", "pruned", "verified"} == store.BOOKKEEPING
    # keys_pinned is only written by the offline writer, which marks every record offline: true.
    assert {"seal_key", "secret_set", "keys_pinned"} == restart.OFFLINE_TYPES
    assert OUTCOMES == ("done", "missed", "interrupted", "paused")
    assert set(records.SESSION_TYPES) == {"prompt", "repeat", "snooze", "done", "missed", "interrupted", "deferred",
                                          "press", "paused", "extra"}


def test_the_envelope_is_what_the_journal_writes() -> None:
    assert list(ENVELOPE) == ["seq", "hash", "prev", "type", "time", "boot", "mono_ms", "tq", "session", "due"]
    assert [k for k, v in ENVELOPE.items() if not v.required] == ["session", "due"]


def test_the_data_dictionary_and_the_schema_are_current() -> None:
    assert records_doc.DOC.read_text(encoding="utf-8") == records.markdown(), "run python tools/records_doc.py"
    assert records_doc.SCHEMA.read_text(encoding="utf-8") == records_doc.schema_text(), \
        "run python tools/records_doc.py"


def test_the_schema_ships_in_the_package() -> None:
    from importlib import resources

    text = resources.files("bedside.journal").joinpath("record.schema.json").read_text(encoding="utf-8")
    schema = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]["type"]["enum"]) == set(TYPES)


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The record lines of a commissioned unit's simulated day, as ``bedside log export`` writes them."""
    data = tmp_path_factory.mktemp("unit")
    key = seal.create(data, data.parent / "hospital.key", CFG.unit_id)
    start = datetime.fromisoformat(START).replace(tzinfo=CFG.tz)
    actions = sorted([*journals.day_actions(CFG, start), *simulate.parse_script(SCRIPT, CFG.tz)],
                     key=lambda a: a.at)
    sim = simulate.build(CFG, data, start, actions=actions)
    sim.unit.run(until=start + timedelta(days=1))
    sim.close()
    # Commissioning's records, as `bedside keys init` and `bedside secret set` write them with the daemon stopped.
    with OfflineWriter(data) as writer:
        writer.append(T.SEAL_KEY, {"key_id": key.key_id, "unit": CFG.unit_id})
        writer.append(T.SECRET_SET, {"replaced": False})
    j = Journal(data, CFG.tz, "export", readonly=True)
    try:
        header, lines = export.collect(j)
        out = io.StringIO()
        export.write(out, header, lines)
    finally:
        j.close()
    return out.getvalue().splitlines()[1:]


def test_a_simulated_days_export_lines_fit_the_schema(day: list[str]) -> None:
    schema = json.loads(records_doc.SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    recs: list[dict[str, Any]] = [json.loads(line) for line in day]
    types = {r["type"] for r in recs}
    # The day holds the sessions' whole vocabulary and the nurses', the unit's and the journal's own.
    assert {T.PROMPT, T.REPEAT, T.SNOOZE, T.PRESS, T.DONE, T.MISSED, T.ADMIT, T.DISCHARGE, T.PAUSE, T.RESUME,
            T.PAUSED, T.EXPORT, T.START, T.CLOCK_SET, T.SEAL, T.SEAL_KEY, T.SECRET_SET} <= types, types
    for r in recs:
        errors = [e.message for e in validator.iter_errors(r)]
        assert not errors, (r, errors)


def test_every_field_a_simulated_day_writes_is_in_the_dictionary(day: list[str]) -> None:
    common = {f.name for f in records.COMMON}
    unlisted = set()
    for line in day:
        r = json.loads(line)
        known = {f.name for f in TYPES[r["type"]].fields} | common | records.ENVELOPE_KEYS
        unlisted |= {f"{r['type']}.{k}" for k in r if k not in known}
    assert not unlisted, sorted(unlisted)


def test_the_schema_refuses_what_no_unit_writes() -> None:
    schema = json.loads(records_doc.SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    good = {"seq": 3, "hash": "a" * 64, "prev": "0" * 64, "type": "done", "time": "2026-11-24T09:20:00.000+00:00",
            "boot": "b", "mono_ms": 5, "tq": "rtc", "session": "2026-11-24T09:00 routine",
            "due": "2026-11-24T09:00:00.000+00:00", "reps": 20, "planned": 20, "early": False}
    assert validator.is_valid(good)
    for change in ({"type": "dnoe"}, {"reps": "twenty"}, {"seq": 0}, {"hash": "xyz"}, {"early": "no"}):
        assert not validator.is_valid({**good, **change}), change
    assert not validator.is_valid({k: v for k, v in good.items() if k != "boot"})


def test_docs_link_the_dictionary() -> None:
    root = Path(records_doc.ROOT)
    assert "records.md" in (root / "docs" / "journal.md").read_text(encoding="utf-8")


def test_the_folds_read_only_fields_the_dictionary_names() -> None:
    """The restart's fold and the report's read a record's fields by name: each name is the
    envelope's or a field of some registered type (a renamed field cannot go unnoticed)."""
    import ast

    root = Path(records_doc.ROOT) / "device" / "bedside"
    named = {f.name for r in TYPES.values() for f in r.fields} | records.ENVELOPE_KEYS | {
        f.name for f in records.COMMON}
    read: dict[str, set[str]] = {}
    for module, holders in (("core/restart.py", {"data"}), ("report/adherence.py", {"rec", "out"}),
                            ("report/ward.py", {"r"})):
        for n in ast.walk(ast.parse((root / module).read_text(encoding="utf-8"))):
            key = None
            if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "get"
                    and n.args and isinstance(n.args[0], ast.Constant)):
                obj, key = n.func.value, n.args[0].value
            elif isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant):
                obj, key = n.value, n.slice.value
            if isinstance(key, str) and ((isinstance(obj, ast.Attribute) and obj.attr in holders)
                                         or (isinstance(obj, ast.Name) and obj.id in holders)):
                read.setdefault(module, set()).add(key)
    assert read["core/restart.py"] and read["report/adherence.py"]
    unknown = {m: sorted(keys - named) for m, keys in read.items() if keys - named}
    assert not unknown, unknown
