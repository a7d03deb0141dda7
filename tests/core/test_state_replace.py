"""``state.replace``, the machine's fast copy of a state, gives what ``dataclasses.replace`` gives.

Neither function looks at the values it copies, so each field is given a value of its own
(a fresh object, compared by identity): the copy must carry every field it did not change,
the change where it was asked, and fail where the standard function fails. This holds for
every dataclass of the core (the state's and the rest), and for the shapes the shortcut
cannot build by position (a field declared ``init=False`` or ``kw_only``, an ``InitVar``,
an ``__init__`` of the class's own), which go to ``dataclasses.replace`` itself.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from dataclasses import InitVar, dataclass, field
from typing import Any

import pytest

import bedside.core
from bedside.core import state


def _core_dataclasses() -> list[type]:
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(bedside.core.__path__, "bedside.core."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__module__ == info.name:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


CORE = _core_dataclasses()


def _fresh(cls: type) -> Any:
    """An instance of ``cls`` whose every field holds an object of its own."""
    return cls(**{f.name: object() for f in dataclasses.fields(cls) if f.init})


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and all(getattr(a, f.name) is getattr(b, f.name) for f in dataclasses.fields(a))


def test_the_core_s_dataclasses_are_all_found() -> None:
    names = {cls.__qualname__ for cls in CORE}
    assert {"State", "Prompting", "Guiding", "Button", "Overlay", "Confirming"} <= names, names


@pytest.mark.parametrize("cls", CORE, ids=lambda c: f"{c.__module__.rpartition('.')[2]}.{c.__qualname__}")
def test_replace_agrees_with_the_standard_one_on_every_core_dataclass(cls: type) -> None:
    obj = _fresh(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    assert _same(state.replace(obj), dataclasses.replace(obj))
    for name in names:
        new = object()
        ours, theirs = state.replace(obj, **{name: new}), dataclasses.replace(obj, **{name: new})
        assert _same(ours, theirs) and getattr(ours, name) is new
    every = {name: object() for name in names}
    assert _same(state.replace(obj, **every), dataclasses.replace(obj, **every))
    with pytest.raises(TypeError):
        dataclasses.replace(obj, no_such_field=1)
    with pytest.raises(TypeError):
        state.replace(obj, no_such_field=1)


@dataclass(frozen=True, slots=True)
class _Derived:
    """A field declared ``init=False``, worked out from the others."""

    a: Any
    b: Any
    total: Any = field(init=False)
    c: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "total", (self.a, self.b, self.c))


@dataclass(frozen=True, slots=True)
class _Defaulted:
    """A field declared ``init=False`` with a default: a copy starts it afresh."""

    a: Any
    seen: Any = field(default=0, init=False)
    b: Any = None


@dataclass(frozen=True, slots=True)
class _KeywordOnly:
    a: Any
    b: Any = field(default=None, kw_only=True)
    c: Any = None


@dataclass(frozen=True)
class _WithInitVar:
    a: Any
    scale: InitVar[Any]
    b: Any = None

    def __post_init__(self, scale: Any) -> None:
        object.__setattr__(self, "b", (self.b, scale))


@dataclass(frozen=True, init=False)
class _OwnInit:
    """A dataclass with an ``__init__`` of its own, taking its fields in another order (a
    copy built by position would swap them, silently)."""

    a: Any
    b: Any

    def __init__(self, b: Any, a: Any) -> None:
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)


def _outcome(fn: Any, obj: object, changes: dict[str, Any]) -> tuple[str, Any]:
    try:
        copy = fn(obj, **changes)
    except (TypeError, ValueError) as e:
        return type(e).__name__, None
    return "copy", {f.name: getattr(copy, f.name) for f in dataclasses.fields(copy)}


@pytest.mark.parametrize(("obj", "changes"), [
    (_Derived(1, 2), {}),
    (_Derived(1, 2), {"b": 3}),
    (_Derived(1, 2, 4), {"a": 5, "c": 6}),
    (_Derived(1, 2), {"total": 9}),        # cannot be given: a ValueError in both
    (_Defaulted(1, 2), {"b": 3}),
    (_Defaulted(1), {"seen": 5}),
    (_KeywordOnly(1, b=2, c=3), {"c": 4}),
    (_KeywordOnly(1, b=2, c=3), {"b": 5}),
    (_WithInitVar(1, "x", 2), {"scale": "y"}),
    (_WithInitVar(1, "x", 2), {"a": 3}),  # the InitVar must be given again: a ValueError in both
    (_OwnInit(1, 2), {"a": 3}),
    (_OwnInit(1, 2), {"b": 4}),
], ids=lambda v: type(v).__name__.strip("_") if dataclasses.is_dataclass(v) else ",".join(v) or "none")
def test_replace_agrees_where_the_fields_are_not_the_init_s_arguments(obj: object, changes: dict[str, Any]) -> None:
    assert _outcome(state.replace, obj, changes) == _outcome(dataclasses.replace, obj, changes)
