"""The design's promises that code review alone would let slip: the core is a folder that
stays pure, the package has no import cycles, and wings import only downwards."""

from __future__ import annotations

import ast
import builtins
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

PACKAGE = ROOT / "device" / "bedside"
# Modules that take time as an argument: the core, and the pure parts of the other wings.
PURE_OUTSIDE_CORE = ("journal/chain.py", "link/lines.py", "link/frames.py", "link/batch.py", "link/access.py",
                     "link/changes.py",
                     "report/adherence.py")
SHELL_ONLY = ("gpiozero", "luma", "serial", "sqlite3", "lgpio", "RPi", "smbus2", "PIL", "gpiod")
# What each wing may import, besides itself and the standard library (docs/design.md draws it):
# exactly the arrows the imports use, no more (test_every_allowed_arrow_is_used keeps it so).
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
    "stick": {"core", "journal", "link", "report", "unit", "trust", "shared"},
    "cli": {"core", "display", "journal", "unit", "report", "laptop", "stick", "trust", "shared"},
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


def _arrows() -> dict[str, set[str]]:
    """Wing -> the other wings its modules import (anywhere in a module, lazy imports too)."""
    used: dict[str, set[str]] = {wing: set() for wing in ALLOWED}
    for a, targets in _graph().items():
        used[_wing(a)].update(_wing(b) for b in targets if _wing(b) != _wing(a))
    return used


def test_every_allowed_arrow_is_used() -> None:
    """``ALLOWED`` is the arrows that exist, not a wish list: an arrow no import uses is taken
    out (and out of docs/design.md's picture), so that adding it back is a visible decision.
    The figure: allowed arrows that no import in the graph (``_graph``, lazy imports too)
    uses. Before: 2 (stick -> display, cli -> link). Held: 0."""
    used = _arrows()
    unused = sorted(f"{wing} -> {target}" for wing, targets in ALLOWED.items() for target in targets - used[wing])
    assert not unused, unused


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



# --- One registration per press-confirmed change (link/changes.py) -------------------------------------------
# docs/design.md, "A press-confirmed change is one registration".

REGISTRY = "link/changes.py"
# A verb whose press brings the core an event it does not know yet: the event, and the step that handles it.
CORE_FOR_A_NEW_EVENT = ("core/events.py", "core/machine.py")


def _kind_names(kind: Any) -> set[str]:
    """The registry's names that belong to one kind: its value class and its own functions (not shared defaults)."""
    from bedside.link import changes

    names = {kind.value.__name__}
    for value in vars(kind).values():
        name = getattr(value, "__name__", "")
        if callable(value) and getattr(changes, name, None) is value and not name.startswith("_no_"):
            names.add(name)
    return names


def _modules_naming(names: set[str], root: Path = PACKAGE) -> set[str]:
    """The package's modules, but the registry, that reach any of ``names`` in the registry
    (``changes.NAME``, or ``from bedside.link.changes import NAME``)."""
    found = set()
    for path in sorted(root.rglob("*.py")):
        rel = str(path.relative_to(root))
        if rel == REGISTRY:
            continue
        for n in ast.walk(ast.parse(path.read_text())):
            if (isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "changes"
                    and n.attr in names) or (isinstance(n, ast.ImportFrom) and n.module == "bedside.link.changes"
                                             and any(a.name in names for a in n.names)):
                found.add(rel)
    return found


def _docs_showing(forms: tuple[tuple[str, str], ...]) -> set[str]:
    """The documents with a line of ``help`` that shows one of ``forms``."""
    docs = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
    return {str(p.relative_to(ROOT)) for p in docs for line in p.read_text(encoding="utf-8").splitlines()
            if any(line.strip() == form or line.strip().startswith(f"{form}  ") for form, _ in forms)}


def test_a_new_press_confirmed_verb_touches_at_most_four_files() -> None:
    """Files a new press-confirmed serial verb touches, tests aside: 8 before, 4 now.

    Method: for each registered kind, the registry (``link/changes.py``, where it is
    registered), every other module of the package that names it (its value class or one
    of its own functions, found in the syntax tree), the core's two files for a new event
    (``core/events.py``, ``core/machine.py``: a verb that reuses an event the core has needs
    neither) and the documents that show its typed form; the figure is the most over the
    kinds. Before, from the commit that added ``pause``: link/changes, commands, on_loop,
    port and texts, core/events and machine, docs/serial.md (8); texts.py knew the kinds by
    the keys of their outcomes, which no name scan sees, so the next test adds a kind
    through the registry alone and drives it over the link."""
    from bedside.link import changes

    touched = {word: {REGISTRY, *_modules_naming(_kind_names(kind)), *CORE_FOR_A_NEW_EVENT,
                      *_docs_showing(kind.forms)}
               for word, kind in changes.KINDS.items()}
    assert set(touched) == {"time", "admit", "discharge", "pause", "resume"}
    assert all(_modules_naming(_kind_names(k)) == set() for k in changes.KINDS.values()), touched
    assert max(len(files) for files in touched.values()) <= 4, touched
    assert touched["pause"] == {REGISTRY, *CORE_FOR_A_NEW_EVENT, "docs/serial.md"}


def test_a_verb_added_through_the_registry_alone_works_over_the_link(tmp_path: Path) -> None:
    """``hush``, registered in tests/rigs/new_verb.py and nowhere else, in a process of its own:
    help lists it, a person types it and presses, the unit refuses it when its check says
    so, a hold cancels it, the nurse tool's frame waits for the press, and the journal holds
    the core's records and the declined change under the kind's word."""
    r = subprocess.run([sys.executable, "-m", "tests.rigs.new_verb", str(tmp_path)], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    seen = json.loads(r.stdout)
    assert seen["help"] == ["  hush                         no prompts for an hour"]
    assert "Press its button within 60 s to confirm" in seen["asked"]
    assert seen["screens"] == [["Hush?", "No prompts", "for an hour"], ["Resume prompts?", "End the pause", ""],
                               ["Hush?", "No prompts", "for an hour"], ["Hush?", "No prompts", "for an hour"]]
    assert "Confirmed on the unit. Hushed until 10:30." in seen["confirmed"]
    assert "The unit is hushed already." in seen["refused"]
    assert "Write: hush." in seen["bad"]
    assert "Not changed: it was cancelled on the unit (button held)." in seen["cancelled"]
    assert seen["frame"]["status"] == "ok" and seen["frame"]["outcome"] == "confirmed"
    assert seen["frame"]["hushed_until"].startswith("2026-11-24T")
    assert seen["frame_refused"][0] == "refused"
    assert seen["records"] == [
        {"type": "pause", "via": "serial", "duration": "1h", "what": None, "change": None, "reason": None},
        {"type": "resume", "via": "serial", "duration": None, "what": None, "change": None, "reason": None},
        {"type": "change_declined", "via": None, "duration": None, "what": "hush",
         "change": "hush the unit for an hour", "reason": "cancelled"},
        {"type": "pause", "via": "serial", "duration": "1h", "what": None, "change": None, "reason": None}]
# --- The smaller moves (docs/design.md, "Smaller moves: one place each") --------------------
# Each figure is computed from the source on every run and held; the method is in the docstring,
# the figure before the moves beside it.

def _trees(root: Path = PACKAGE) -> list[tuple[str, ast.AST]]:
    return [(str(p.relative_to(root)), ast.parse(p.read_text(encoding="utf-8"))) for p in sorted(root.rglob("*.py"))]


def test_only_the_display_imports_luma() -> None:
    """Modules outside display/ with an ``import luma...`` or ``from luma... import`` anywhere
    (lazy imports inside functions too), walked in each module's syntax tree. Before: 2
    (unit/pins.py built the panel's device, unit/simulate.py the simulator's). Held: 0."""
    found = sorted({rel for rel, tree in _trees() for n in ast.walk(tree)
                    if (isinstance(n, ast.Import) and any(a.name.split(".")[0] == "luma" for a in n.names))
                    or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "luma")})
    assert all(rel.startswith("display/") for rel in found), found


def test_a_stick_screen_s_words_are_written_in_one_place() -> None:
    """String constants equal to a stick screen's words (the titles and what-to-do lines of
    core/views.py's ``STICK_WORDS``, ``STICK_PROBLEMS`` and ``STICK_PROBLEM_UNKNOWN``), counted
    in every module of the package but core/views.py. Before: 44 (34 in core/machine.py, 10 in
    display/gallery.py). Held: 0."""
    from bedside.core import views

    words = {w for pair in (*views.STICK_WORDS.values(), *views.STICK_PROBLEMS.values(),
                            views.STICK_PROBLEM_UNKNOWN) for w in pair}
    found = [rel for rel, tree in _trees() if rel != "core/views.py" for n in ast.walk(tree)
             if isinstance(n, ast.Constant) and n.value in words]
    assert not found, found


def test_only_the_planner_does_the_awake_window_s_arithmetic() -> None:
    """Products ``<something>.hour * 60`` (a time of day turned into minutes, the first step of
    the awake window's arithmetic) outside core/planner.py, found in each module's syntax tree.
    Before: 4 (2 in unit/supervise.py's daily_time, 2 in report/fhir.py's hourly times).
    Held: 0."""
    found = [rel for rel, tree in _trees() if rel != "core/planner.py" for n in ast.walk(tree)
             if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Mult) and isinstance(n.left, ast.Attribute)
             and n.left.attr == "hour"]
    assert not found, found


def test_a_wing_s_tests_take_shared_helpers_from_tests_rigs() -> None:
    """Names a test module imports from another wing's test module (``from tests.<wing>.test_x
    import ...`` in a module under another ``tests/<wing>/``), counted name by name. Before: 21
    (14 modules took ``run`` from tests/cli/test_cli.py; the stick channel's daemon, its
    question and press, and systemd's check of the unit files were imported from the stick's
    and the unit's test modules). After: 2, the laptop's install test reading the report
    tests' discharge day and its pull time. Held: no more than 2 (a helper two wings share
    goes in tests/rigs/)."""
    import re

    tests = ROOT / "tests"
    found = [f"{rel} <- {n.module}.{a.name}" for rel, tree in _trees(tests) for n in ast.walk(tree)
             if isinstance(n, ast.ImportFrom) and re.fullmatch(r"tests\.\w+\.test_\w+", n.module or "")
             and (n.module or "").split(".")[1] != Path(rel).parts[0] for a in n.names]
    assert len(found) <= 2, found
# --- One root for errors (issue 20) ----------------------------------------------------------
# Every exception class in the package derives from core/errors.py's BedsideError, and no error
# is told apart by its message. Before: 49 exception classes outside the root; after: 0.

ROOT_ERROR = ("bedside.core.errors", "BedsideError")
_BUILTIN_EXCEPTIONS = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}


def _exception_classes() -> dict[tuple[str, str], bool]:
    """Every class in device/bedside whose bases make it an exception, as (module, name), with
    whether it derives from BedsideError. Method: parse every module (no import); resolve each
    base, a plain or dotted name, through the module's own classes and its imports (following
    re-exports) to the class it names, a built-in exception or another library's class; a class
    is an exception when a base is one (another library's by its name: ...Error, ...Exception,
    ...Warning), and rooted when a base is BedsideError or rooted, to a fixed point."""
    mods = _modules()
    classes: dict[tuple[str, str], list[ast.expr]] = {}
    names: dict[str, dict[str, tuple[str, str | None]]] = {}     # module -> local name -> (module, attr|None)
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        local: dict[str, tuple[str, str | None]] = {}
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                classes[(name, node.name)] = node.bases
                local[node.name] = (name, node.name)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    local[a.asname or a.name.split(".")[0]] = (a.name if a.asname else a.name.split(".")[0], None)
            elif isinstance(node, ast.ImportFrom):
                mod = node.module or ""
                if node.level:
                    mod = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + (
                        [node.module] if node.module else []))
                for a in node.names:
                    full = f"{mod}.{a.name}"
                    local[a.asname or a.name] = (full, None) if full in mods else (mod, a.name)
        names[name] = local

    def resolve(module: str, expr: ast.expr, depth: int = 0) -> tuple[str, str] | None:
        if depth > 10:
            return None
        if isinstance(expr, ast.Name):
            target = names.get(module, {}).get(expr.id)
            if target is None:
                return ("builtins", expr.id) if expr.id in _BUILTIN_EXCEPTIONS else None
            mod, attr = target
            if attr is None:
                return None
            if (mod, attr) in classes:
                return (mod, attr)
            return resolve(mod, ast.Name(attr), depth + 1) if mod in names else (mod, attr)
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
            target = names.get(module, {}).get(expr.value.id)
            if target is not None and target[1] is None:
                return resolve(target[0], ast.Name(expr.attr), depth + 1) if target[0] in names else (
                    target[0], expr.attr)
        return None

    bases = {cls: [r for b in bs if (r := resolve(cls[0], b)) is not None] for cls, bs in classes.items()}
    # A built-in exception, or another library's (sqlite3.DatabaseError): by its name, as no import is made.
    exception = {cls for cls, bs in bases.items() if any(
        b[0] == "builtins" or (b[0] not in mods and b[1].endswith(("Error", "Exception", "Warning"))) for b in bs)}
    rooted = {ROOT_ERROR} if ROOT_ERROR in classes else set()
    while True:
        more = {cls for cls, bs in bases.items() if any(b in exception for b in bs)} - exception
        deeper = {cls for cls, bs in bases.items() if any(b in rooted for b in bs)} - rooted
        if not more and not deeper:
            break
        exception |= more
        rooted |= deeper
    return {cls: cls in rooted for cls in sorted(exception) if cls != ROOT_ERROR}


def test_every_exception_class_derives_from_bedside_error() -> None:
    """The measure: exception classes in device/bedside outside the root, by _exception_classes'
    method (49 before issue 20, when the issue's review counted 33 by hand; 0 after)."""
    found = _exception_classes()
    outside = sorted(f"{m}.{n}" for (m, n), rooted in found.items() if not rooted)
    assert len(found) >= 49
    assert outside == [], outside


def _message_tests(root: Path = PACKAGE) -> set[str]:
    """Every place in device/bedside that tells errors apart by their text, as "file:line" in an
    ``except ... as e`` branch, or "file:function" in a function that takes an exception (a
    parameter annotated as one). A place is a comparison (``in``, ``==``, ...) or a string test
    (startswith, endswith, find, a regular expression) whose operand reads ``str(e)``,
    ``repr(e)``, ``e.args``, an f-string of ``e``, or a name assigned ``str(e)``, ``repr(e)`` or
    ``e.args`` there (through method calls: ``text = str(e).lower()``). Using the text as text
    (a message passed on, a counter's label) is not a test."""

    def text_of(value: ast.expr, name: str) -> bool:
        while True:
            if isinstance(value, ast.Subscript):
                value = value.value
            elif isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute):
                value = value.func.value
            else:
                break
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            return value.func.id in ("str", "repr") and any(isinstance(a, ast.Name) and a.id == name
                                                             for a in value.args)
        return isinstance(value, ast.Attribute) and value.attr == "args" and isinstance(value.value, ast.Name) \
            and value.value.id == name

    def reads_text(node: ast.AST, name: str, derived: set[str]) -> bool:
        for n in ast.walk(node):
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in ("str", "repr") and any(
                    isinstance(a, ast.Name) and a.id == name for a in n.args):
                return True
            if isinstance(n, ast.Attribute) and n.attr == "args" and isinstance(n.value, ast.Name) \
                    and n.value.id == name:
                return True
            if isinstance(n, ast.FormattedValue) and isinstance(n.value, ast.Name) and n.value.id == name:
                return True
            if isinstance(n, ast.Name) and n.id in derived:
                return True
        return False

    def is_exception(annotation: ast.expr | None) -> bool:
        last = annotation.attr if isinstance(annotation, ast.Attribute) else (
            annotation.id if isinstance(annotation, ast.Name) else "")
        return last in _BUILTIN_EXCEPTIONS or last.endswith(("Error", "Exception"))

    tests = ("startswith", "endswith", "find", "index", "count", "match", "search", "fullmatch")
    found: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        for scope in ast.walk(ast.parse(path.read_text())):
            if isinstance(scope, ast.ExceptHandler) and scope.name is not None:
                errs = [scope.name]
            elif isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
                errs = [a.arg for a in scope.args.args + scope.args.kwonlyargs if is_exception(a.annotation)]
            else:
                continue
            for err in errs:
                derived: set[str] = set()
                for n in ast.walk(ast.Module(body=scope.body, type_ignores=[])):
                    if isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name) \
                            and text_of(n.value, err):
                        derived.add(n.targets[0].id)
                for n in ast.walk(ast.Module(body=scope.body, type_ignores=[])):
                    if isinstance(n, ast.Compare):
                        operands = [n.left, *n.comparators]
                    elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in tests:
                        operands = [n.func.value, *n.args]
                    else:
                        continue
                    if any(reads_text(o, err, derived) for o in operands):
                        where = n.lineno if isinstance(scope, ast.ExceptHandler) else getattr(scope, "name", "")
                        found.add(f"{path.relative_to(root)}:{where}")
    return found


# What is still read from its text: pyserial's errors on Windows, where the Windows error is
# only in the message (the repr of ctypes.WinError()); ``port_errno`` reads the error's number out
# of it, never its words. Everything else is told apart by SQLite's result code, the OS's errno
# or bedside's own class. docs/design.md says why this one stays.
TRANSLATORS_OF_OTHERS_ERRORS = {"link/port.py:port_errno"}


def test_no_error_is_told_apart_by_its_message() -> None:
    """The distinct cases have their own class (link/batch.ChainLinkDiffers, journal's
    JournalDamaged and MetaDamaged, salvage's BadOverflowChain) or attribute (SQLite's error
    code). Before issue 20: 5 except branches (journal/store.py, laptop/pull.py twice,
    journal/salvage.py, journal/segments.py) and the 4 translators; after: 0 and the 4.
    Then the 4 translators of SQLite's, the OS's and pyserial's errors (segments.storage_trouble
    and explain, port.explain_port_error, client.port_problem) sort by code (SQLite's result
    code, errno, bedside's classes): 0 except branches and 1 (port.port_errno's Windows
    fallback, which reads the error's number from pyserial's Windows message)."""
    assert _message_tests() == TRANSLATORS_OF_OTHERS_ERRORS
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
