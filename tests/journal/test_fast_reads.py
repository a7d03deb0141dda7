"""The export's reading shortcuts give the same answers: the record check's encoder, made once,
gives the canonical text (journal/chain.py), and a line is read as ``json_loads`` reads it
(journal/export.py)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bedside.durable import json_loads
from bedside.journal import chain, export

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner,
                                                                                              max_size=3), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), _values, max_size=8), st.text())
def test_a_parsed_records_hash_is_its_canonical_texts(body: dict[str, Any], h: str) -> None:
    rec = json.loads(json.dumps({**body, "hash": h}))
    want = dict(rec)
    want.pop("hash")
    assert chain.record_hash(rec) == chain.digest(chain.canonical(want))


def test_out_of_range_floats_are_refused_as_before() -> None:
    rec = json.loads('{"x": NaN, "hash": "0"}')
    for f in (chain.record_hash, chain.canonical):
        try:
            f(rec)
        except ValueError:
            continue
        raise AssertionError(f"{f.__name__} encoded NaN")


def _read(f: Any, text: str) -> tuple[str, Any]:
    try:
        return "value", json.dumps(f(text), sort_keys=True)
    except ValueError as e:
        return "error", f"{type(e).__name__}: {e}"


@settings(max_examples=300, deadline=None)
@given(st.one_of(
    st.builds(lambda v, tail: json.dumps(v) + tail, _values, st.sampled_from(["", "\n", " \n", "\r\n", "x", "{}"])),
    st.text(alphabet='{}[]":,0123456789 \n\tabe-.\ufeff', max_size=30)))
def test_a_line_reads_as_json_loads_reads_it(text: str) -> None:
    assert _read(export._line_json, text) == _read(json_loads, text)


def test_a_line_nested_past_the_parser_is_refused_as_before() -> None:
    text = "[" * 100_000 + "\n"
    assert _read(export._line_json, text) == _read(json_loads, text)
