"""The design's promises that code review alone would let slip: the core is a folder that
stays pure, the package has no import cycles, and wings import only downwards."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
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



# --- The record of care's one vocabulary (core/records.py) ------------------------------------

# Calls whose first argument is a record type: the core's effect, the journal's look-ups, the
# offline writer's and the stick channel's ``append``/``record`` (type, data) and a list of such pairs.
_TYPE_CALLS = {"Record", "of_type", "last_of_type", "append", "record"}
_TYPE_NAMES = {"typ", "type_", "prev_type"}      # local names that hold a record's type


def _is_type_expr(n: ast.expr) -> bool:
    """``r.type``, ``rec["type"]``, ``rec.get("type")`` or a local named for a record's type."""
    return ((isinstance(n, ast.Attribute) and n.attr == "type")
            or (isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant) and n.slice.value == "type")
            or (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "get"
                and bool(n.args) and isinstance(n.args[0], ast.Constant) and n.args[0].value == "type")
            or (isinstance(n, ast.Name) and n.id in _TYPE_NAMES))


def _scoped(tree: ast.AST, scope: ast.AST | None = None) -> Iterator[tuple[ast.AST, ast.AST | None]]:
    """Every node under ``tree`` with the function it is in (None: module level)."""
    for child in ast.iter_child_nodes(tree):
        yield child, scope
        inner = child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) else scope
        yield from _scoped(child, inner)


def record_type_literals(package: Path = PACKAGE) -> list[str]:
    """Every bare string literal the package uses as a record type, outside core/records.py.

    The method: an AST scan of every module for expressions in a record-type position, namely
    (1) the first argument of ``Record(...)``, ``of_type``/``last_of_type``, and of ``append``/``record``
    called with a type and its data (or with one ``(type, data)`` pair); (2) either side of a
    comparison (``==``, ``!=``, ``in``, ``not in``) whose other side is a record's type (``r.type``,
    ``rec["type"]``, ``rec.get("type")``, a local ``typ``/``type_``/``prev_type``); (3) the value of a
    ``"type"`` key in a dict literal (the stand-in record of the outage reserve, a flood's data);
    (4) a ``type_, data = …`` assignment; (5) a module-level collection named ``…_TYPES`` or
    ``…_RECORDS``. A string constant there counts when it equals a registered type (a ``"type"``
    key in a FHIR resource does not, nor a FHIR Bundle's ``type``); a tuple, list, set or
    ``frozenset(...)`` there counts each of its constants, a conditional expression both of its
    values; a name there counts what it is assigned in the same function (``kind = "a" if … else
    "b"``) or else what it is bound to at module level (``MISSED``, ``OUTCOMES``, ``extra.EXTRA``),
    followed through ``from … import`` and module aliases. Docstrings, sounds, press actions, serial verbs and
    screen marks that happen to share a spelling are not in such positions and do not count.
    Each literal counts once, as ``path:line: value``. A string there that is no registered type
    is returned too where nothing but a record type can stand (the first argument of ``Record``,
    ``of_type``, ``last_of_type``; a comparison with ``r.type``): a misspelled type."""
    def name_of(path: Path) -> str:
        parts = path.relative_to(package.parent).with_suffix("").parts
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    mods = {name_of(p): p for p in sorted(package.rglob("*.py"))}
    own = package / "core" / "records.py"
    trees = {name: ast.parse(path.read_text()) for name, path in mods.items()}

    def bindings(module: str) -> tuple[dict[str, ast.expr], dict[str, tuple[str, str | None]]]:
        values: dict[str, ast.expr] = {}
        imported: dict[str, tuple[str, str | None]] = {}     # local name -> (module, name or None: the module)
        for node in trees[module].body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        values[target.id] = node.value
                    elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                        values.update((t.id, v) for t, v in zip(target.elts, node.value.elts, strict=False)
                                      if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                values[node.target.id] = node.value
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    imported[a.asname or a.name] = (full, None) if full in mods else (node.module, a.name)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        imported[a.asname] = (a.name, None)
        return values, imported

    bound = {m: bindings(m) for m in mods}
    found: set[tuple[str, int, int, str]] = set()
    strict: set[tuple[str, int, int, str]] = set()    # where any string is a record type, registered or not

    def count(module: str, n: ast.expr | None, seen: frozenset[tuple[str, str]] = frozenset(),
              scope: ast.AST | None = None) -> None:
        if n is None or mods[module] == own:
            return
        if isinstance(n, ast.Constant) and isinstance(n.value, str):
            found.add((str(mods[module].relative_to(package)), n.lineno, n.col_offset, n.value))
        elif isinstance(n, ast.Tuple | ast.List | ast.Set):
            for e in n.elts:
                count(module, e, seen, scope)
        elif isinstance(n, ast.Starred):
            count(module, n.value, seen, scope)
        elif isinstance(n, ast.IfExp):
            count(module, n.body, seen, scope)
            count(module, n.orelse, seen, scope)
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("frozenset", "set", "tuple"):
            for a in n.args:
                count(module, a, seen, scope)
        elif isinstance(n, ast.Name) and scope is not None and (local := [
                a.value for a in ast.walk(scope) if isinstance(a, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == n.id for t in a.targets)]):
            for value in local:          # a local bound in the same function
                count(module, value, seen)
        elif isinstance(n, ast.Name):
            resolve(module, n.id, seen)
        elif isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name):
            target = bound[module][1].get(n.value.id)
            if target is not None and target[1] is None and target[0] in mods:
                resolve(target[0], n.attr, seen)

    def resolve(module: str, name: str, seen: frozenset[tuple[str, str]]) -> None:
        if (module, name) in seen:
            return
        seen = seen | {(module, name)}
        values, imported = bound[module]
        if name in values:
            count(module, values[name], seen)
        elif name in imported and imported[name][1] is not None and imported[name][0] in mods:
            resolve(imported[name][0], str(imported[name][1]), seen)

    for module, tree in trees.items():
        for name, value in bound[module][0].items():
            if name.endswith(("_TYPES", "_RECORDS")):
                count(module, value)
        for node, scope in _scoped(tree):
            if isinstance(node, ast.Call):
                f = node.func
                callee = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                if callee in ("Record", "of_type", "last_of_type") and node.args:
                    before = set(found)
                    count(module, node.args[0], scope=scope)
                    strict.update(found - before)
                elif callee in _TYPE_CALLS and len(node.args) >= 2:
                    count(module, node.args[0], scope=scope)
                elif (callee == "append" and len(node.args) == 1 and isinstance(node.args[0], ast.Tuple)
                      and len(node.args[0].elts) == 2):
                    count(module, node.args[0].elts[0], scope=scope)
                for kw in node.keywords:
                    if callee in _TYPE_CALLS and kw.arg in ("type", "type_"):
                        count(module, kw.value, scope=scope)
            elif isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(_is_type_expr(s) for s in sides):
                    before = set(found)
                    for s in sides:
                        if not _is_type_expr(s):
                            count(module, s, scope=scope)
                    if any(isinstance(s, ast.Attribute) and s.attr == "type" for s in sides):
                        strict.update(found - before)     # ``r.type``: a Record's or a Past's
            elif isinstance(node, ast.Dict):
                for k, v in zip(node.keys, node.values, strict=True):
                    if isinstance(k, ast.Constant) and k.value == "type":
                        count(module, v, scope=scope)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple):
                for target in node.targets:
                    if isinstance(target, ast.Tuple):
                        for t, v in zip(target.elts, node.value.elts, strict=False):
                            if isinstance(t, ast.Name) and t.id in _TYPE_NAMES:
                                count(module, v, scope=scope)
    from bedside.core.records import TYPES

    return [f"{path}:{line}: {value}" for path, line, _, value in sorted(found)
            if value in TYPES or (path, line, _, value) in strict]


def test_no_bare_record_type_literals_outside_core_records() -> None:
    """Every record type is named through ``bedside.core.records.T`` (method: ``record_type_literals``).
    Before core/records.py the package held 222 such literals in 24 modules; now none, and a
    string in a place only a record type can stand must be a registered one (no misspelling)."""
    assert record_type_literals() == []


def test_the_record_type_scan_finds_bare_and_misspelled_types(tmp_path: Path) -> None:
    """The method above can fail: a bare type, a misspelled one, a set of them and a local bound to
    one are found; a sound or a press action of the same spelling is not."""
    pkg = tmp_path / "bedside"
    (pkg / "core").mkdir(parents=True)
    (pkg / "core" / "records.py").write_text('PROMPT = "prompt"\n')
    (pkg / "wing.py").write_text(
        "EPISODE_TYPES = ('admit', 'discharge')\n"
        "def f(r, fx, stage):\n"
        "    fx.append(Record('fault', data={}))\n"
        "    fx.append(Record('stopp', data={}))\n"
        "    fx.append(Play('fault'))\n"
        "    kind = 'export_refused' if stage else 'export_failed'\n"
        "    fx.append(Record(kind, data={'action': 'start'}))\n"
        "    return r.type == 'pause' or r.data.get('action') == 'start'\n")
    found = record_type_literals(pkg)
    assert found == ["wing.py:1: admit", "wing.py:1: discharge", "wing.py:3: fault", "wing.py:4: stopp",
                     "wing.py:6: export_refused", "wing.py:6: export_failed", "wing.py:8: pause"], found
