"""The design's promises that code review alone would let slip: the core is a folder that
stays pure, the package has no import cycles, and wings import only downwards."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "device" / "bedside"
# Modules that take time as an argument: the core, and the pure parts of the other wings.
PURE_OUTSIDE_CORE = ("journal/chain.py", "link/lines.py", "link/frames.py", "link/batch.py", "link/access.py",
                     "link/changes.py",
                     "report/adherence.py")
SHELL_ONLY = ("gpiozero", "luma", "serial", "sqlite3", "lgpio", "RPi", "smbus2", "PIL", "gpiod")
# What each wing may import, besides itself and the standard library (docs/design.md draws it).
# ``shared`` is the package's top-level modules (durable, secret, sheet), usable from every wing but the core;
# they may use the core (secret compares in constant time with core/digest.py).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "shared": {"core"},
    "display": {"core"},
    "journal": {"core", "shared"},
    "trust": {"core", "shared"},
    "link": {"core", "journal", "trust", "shared"},
    "unit": {"core", "display", "journal", "link", "trust", "shared"},
    "report": {"core", "journal", "shared"},
    "laptop": {"core", "journal", "link", "report", "trust", "shared"},
    "stick": {"core", "display", "journal", "link", "report", "unit", "trust", "shared"},
    "cli": {"core", "display", "journal", "link", "unit", "report", "laptop", "stick", "trust", "shared"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports, absolute, as written (relative imports resolved)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: {m for m in _imports(name, path) if m in mods and m != name} - {"bedside"}
            for name, path in mods.items()}


def _wing(module: str) -> str:
    parts = module.split(".")
    if module == "bedside.__main__":
        return "cli"
    if len(parts) == 1 or (len(parts) == 2 and (PACKAGE / f"{parts[1]}.py").exists()):
        return "shared"
    return parts[1]


def test_the_core_imports_only_the_core_and_the_standard_library() -> None:
    mods = _modules()
    bad = []
    for name, path in mods.items():
        if not name.startswith("bedside.core"):
            continue
        for imported in _imports(name, path):
            top = imported.split(".")[0]
            if imported.startswith("bedside.core") or (top in sys.stdlib_module_names and top != "sqlite3"):
                continue
            if imported in ("__future__",) or top == "__future__":
                continue
            bad.append(f"{name} imports {imported}")
    assert not bad, bad


def test_importing_the_core_loads_no_hardware_disk_or_serial_module() -> None:
    core = [n for n in _modules() if n.startswith("bedside.core")]
    code = ("import json, sys\n" + "".join(f"import {m}\n" for m in core)
            + "print(json.dumps(sorted(sys.modules)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                       check=True)
    loaded = {m.split(".")[0] for m in json.loads(r.stdout)}
    assert loaded.isdisjoint(SHELL_ONLY), sorted(loaded & set(SHELL_ONLY))


PURE = sorted([str(p.relative_to(PACKAGE)) for p in (PACKAGE / "core").rglob("*.py")] + list(PURE_OUTSIDE_CORE))


@pytest.mark.parametrize("module", PURE)
def test_pure_modules_never_read_a_clock(module: str) -> None:
    """Time is an argument: no now(), today(), time(), monotonic() in the core or the pure modules."""
    tree = ast.parse((PACKAGE / module).read_text())
    calls = {f"{n.func.value.id}.{n.func.attr}" for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)}
    clocks = {"datetime.now", "datetime.utcnow", "datetime.today", "date.today", "time.time", "time.monotonic",
              "time.perf_counter", "time.sleep", "time.time_ns", "time.monotonic_ns"}
    assert calls.isdisjoint(clocks), sorted(calls & clocks)


def test_the_package_has_no_import_cycles() -> None:
    graph = _graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert not cycles, [" -> ".join(c) for c in cycles]


def test_wings_import_only_what_the_design_allows() -> None:
    bad = {f"{a} -> {b}" for a, targets in _graph().items() for b in targets
           if _wing(b) != _wing(a) and _wing(b) not in ALLOWED[_wing(a)]}
    assert not bad, sorted(bad)


# The loop's own parts: everything else reaches the unit through its port (link/unit_port.py).
LOOP_PRIVATE = {"inbox", "sources", "_link", "_apply", "_loop_thread"}


def test_only_the_loop_touches_its_inbox_and_sources() -> None:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "unit" / "loop.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in LOOP_PRIVATE and not (
                    isinstance(node.value, ast.Name) and node.value.id == "self"):
                bad.append(f"{path.relative_to(PACKAGE)}:{node.lineno} .{node.attr}")
    assert not bad, bad


def test_every_module_lives_in_a_wing() -> None:
    loose = {p.name for p in PACKAGE.glob("*.py")} - {"__init__.py", "__main__.py", "durable.py", "secret.py",
                                                        "sheet.py"}
    assert not loose, sorted(loose)
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")} == set(ALLOWED) - {
        "shared"}


def _calls(name: str, root: Path = PACKAGE) -> set[str]:
    """The modules under ``root`` (the package by default) that call ``name(...)`` (by its plain or dotted name)."""
    found = set()
    for path in sorted(root.rglob("*.py")):
        for n in ast.walk(ast.parse(path.read_text())):
            if isinstance(n, ast.Call) and (
                    (isinstance(n.func, ast.Name) and n.func.id == name)
                    or (isinstance(n.func, ast.Attribute) and n.func.attr == name)):
                found.add(str(path.relative_to(root)))
    return found


def test_one_composition_root_and_one_writer_while_no_loop_runs() -> None:
    """``run``, ``simulate`` and the torture's workload build the unit in unit/wiring.py;
    commissioning and a stick export without the daemon write the journal through unit/offline.py."""
    assert _calls("Unit") == {"unit/wiring.py"}
    assert _calls("Unit", ROOT / "tools") == _calls("Store", ROOT / "tools") == set()
    assert _calls("lock_data_dir") == {"unit/offline.py", "unit/serve.py"}   # serve: a running unit holds it


def test_the_design_doc_draws_the_arrows_this_test_allows() -> None:
    import re

    text = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    drawn = {m.group(1): m.group(2) for m in re.finditer(r"^ {4}(\w+) +──► (.+)$", text, re.M)}
    assert set(drawn) == set(ALLOWED) - {"shared"}
    for wing, targets in drawn.items():
        named = set() if targets.startswith("(") or targets.startswith("the standard") else {
            t.strip() for t in targets.split(",")}
        # Every wing but the core may use the core and the shared modules without saying so.
        implied = set() if wing == "core" else {"core", "shared"}
        assert named | implied == ALLOWED[wing] | implied, wing



# --- One place per config key (issue 20): each setting is named once, by its schema row -------------------

def _config_key_places(source: str) -> dict[str, set[str]]:
    """For each setting of the schema (core/config.py's ``SCHEMA``) and each key of an exercise or a
    regimen's stage (``EXERCISE``, ``STAGE``), the places in ``source`` that name it.

    A place is a top-level statement (a function, a class, an assignment), or one statement of a
    class's body. A place names the setting ``[section] key`` when it holds the string constant
    ``key`` (not as a section's name or a word for people: not ``Section(...)``'s first argument nor a
    ``section=`` or ``called=`` value, and not inside a field declared for another section), or when it
    declares the field that holds
    the setting (its name, in ``Config`` for the top-level settings, else in the section's dataclass).

    Before the schema, every one of the 46 settings, 7 exercise keys and 5 stage keys was named in 3
    places: the key set (``_SCHEMA``, ``_EXERCISE_KEYS``, ``_STAGE_KEYS``), the hand-written reader
    (``parse``, ``parse_hospital``, ``exercise_list``, ``_stage``) and the dataclass default."""
    from bedside.core import config

    stmts: list[tuple[str, str | None, ast.stmt]] = []
    for top in ast.parse(source).body:
        if isinstance(top, ast.ClassDef):
            stmts += [(f"{top.name} line {s.lineno}", top.name, s) for s in top.body]
        else:
            stmts.append((f"line {top.lineno}", None, top))
    out: dict[str, set[str]] = {}
    def holder_of(path: str) -> str:
        head = path.rpartition(".")[0]
        return type(getattr(config.Config(), head)).__name__ if head else "Config"

    items = [(s, f"[exercises] {s.key}", "Exercise") for s in config.EXERCISE]
    items += [(s, f"[regimens.NAME] stages {s.key}", "Stage") for s in config.STAGE]
    for s, where, holder in [(s, s.where, holder_of(s.path)) for s in config.SCHEMA] + items:
        name = s.path.rpartition(".")[2]
        found = set()
        for place, cls, st in stmts:
            nodes = list(ast.walk(st))
            sections = {id(n.args[0]) for n in nodes if isinstance(n, ast.Call) and n.args
                        and isinstance(n.func, ast.Name) and n.func.id == "Section"}
            sections |= {id(n.value) for n in nodes if isinstance(n, ast.keyword) and n.arg in ("section", "called")}
            other = any(isinstance(n, ast.keyword) and n.arg == "section" and isinstance(n.value, ast.Constant)
                        and n.value.value != s.section for n in nodes)
            if not other and any(isinstance(n, ast.Constant) and n.value == s.key and id(n) not in sections
                                 for n in nodes):
                found.add(place)
            if cls == holder and isinstance(st, ast.AnnAssign) and isinstance(st.target, ast.Name) \
                    and st.target.id == name:
                found.add(place)
        out[where] = found
    return out


def test_each_config_key_is_named_in_one_place() -> None:
    """Places in core/config.py that name a config key: 3 → 1 for each of the 46 settings, the 7 keys
    of an exercise and the 5 of a stage (docs/design.md, "One row per setting"). The row is the field:
    its section, key, type and bounds, default and help."""
    places = _config_key_places((PACKAGE / "core" / "config.py").read_text(encoding="utf-8"))
    assert len(places) == 58
    assert {where: len(found) for where, found in places.items() if len(found) != 1} == {}


def test_the_other_readers_of_a_config_name_no_key() -> None:
    """The ward's configuration offered by a stick (stick/settings.py: what the unit keeps as its own, and
    what a change is called) and the laptop's settings ([hospital], laptop/fhir_settings.py) take the keys
    from the schema's rows: no string constant there is a setting's key or field name. Before: 21 (in
    stick/settings.py, 16: the 14 settings a change is named by, [display] twice, the unit id it keeps;
    in laptop/fhir_settings.py, the 5 keys of [hospital])."""
    from bedside.core import config

    names = {s.key for s in config.SCHEMA} | {s.path.rpartition(".")[2] for s in config.SCHEMA}
    found = [f"{path}:{n.lineno} {n.value!r}" for path in ("stick/settings.py", "laptop/fhir_settings.py")
             for n in ast.walk(ast.parse((PACKAGE / path).read_text(encoding="utf-8")))
             if isinstance(n, ast.Constant) and n.value in names]
    assert found == []
