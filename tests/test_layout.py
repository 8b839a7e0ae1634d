"""The house's layout: imports go down the flow, no cycles, the sandbox stands apart, and
every package the code imports is declared in pyproject.toml."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "dreamnodes"

# Each room may import the rooms after it in this list (down the data flow), never before.
FLOW = [
    "cli",
    "service",
    "engine",
    "runlog",
    "execution",
    "callbacks",
    "downloads",
    "api",
    "preparation",
    "catalog",
]
BASE = {"errors", "redact"}  # everyone's
SHARED = {"serving"}  # the server stack: for the rooms that serve HTTP
SERVES = {"cli", "service", "callbacks", "sandbox"}
# Distribution names for import names that differ.
DISTRIBUTIONS = {"PIL": "pillow", "av": "av"}


def modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def imports(path: Path) -> Iterator[str]:
    """Modules imported when this one runs (TYPE_CHECKING blocks left out), at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hidden = {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.dump(branch.test)
        for stmt in branch.body
        for node in ast.walk(stmt)
    }
    for node in ast.walk(tree):
        if id(node) in hidden:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def graph() -> dict[str, set[str]]:
    mods = modules()
    # A module's own parent packages load before it whatever it imports: not an edge.
    return {
        name: {
            target
            for target in imports(path)
            if target in mods and target != name and not name.startswith(target + ".")
        }
        for name, path in mods.items()
    }


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_import_graph_has_no_cycle() -> None:
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_rooms_import_only_down_the_flow() -> None:
    wrong = []
    for module, targets in graph().items():
        here = room(module)
        for target in targets:
            there = room(target)
            if there in ("", here) or there in BASE:
                continue
            if there in SHARED and here in SERVES:
                continue
            if here == "sandbox" or there == "sandbox":
                if here == "cli" and module == "dreamnodes.cli.resources":
                    continue  # --sandbox starts one, when asked for
                if here == "cli" and there == "sandbox" and module == "dreamnodes.cli.entry":
                    continue  # `dreamnodes sandbox serve`
                wrong.append(f"{module} -> {target}")
                continue
            if here in FLOW and there in FLOW and FLOW.index(there) > FLOW.index(here):
                continue
            wrong.append(f"{module} -> {target}")
    assert wrong == [], "imports against the flow:\n" + "\n".join(sorted(wrong))


def test_the_sandbox_never_imports_the_runtime() -> None:
    allowed = ("dreamnodes.sandbox", "dreamnodes.serving", "dreamnodes.errors")
    wrong = [
        f"{module} -> {target}"
        for module, targets in graph().items()
        if room(module) == "sandbox"
        for target in targets
        if not target.startswith(allowed)
    ]
    assert wrong == []


def test_every_room_says_what_lives_there_and_what_it_may_import() -> None:
    for folder in sorted(p for p in SRC.iterdir() if (p / "__init__.py").is_file()):
        doc = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8")))
        assert doc, f"{folder.name}/__init__.py has no docstring"
        if folder.name in FLOW:
            assert "May import" in doc, f"{folder.name}/__init__.py does not say what it imports"


def test_every_imported_package_is_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = {_name(req) for req in project["dependencies"]}
    extras = project["optional-dependencies"]
    # The sandbox and the engine have their own extras; the rest needs only the runtime's.
    declared_in = {
        name: runtime | {_name(req) for req in extras[name]} for name in ("sandbox", "engine")
    }
    missing = []
    for module, path in modules().items():
        declared = declared_in.get(room(module), runtime)
        for target in imports(path):
            top = target.split(".")[0]
            if top in sys.stdlib_module_names or top == "dreamnodes":
                continue
            if DISTRIBUTIONS.get(top, top).lower() not in declared:
                missing.append(f"{module} imports {top}")
    assert missing == [], "\n".join(sorted(set(missing)))


def _name(requirement: str) -> str:
    for stop in "<>=!~[; ":
        requirement = requirement.split(stop)[0]
    return requirement.strip().lower()
