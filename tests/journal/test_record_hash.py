"""The record check's encoder, made once, gives the canonical text: the hash of any record read
from JSON is the one ``canonical`` gives (journal/chain.py)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bedside.journal import chain

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
