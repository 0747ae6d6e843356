"""The package's layering, read from the source (``ast``), not from running it.

- no import cycles between modules of ``mock_server`` (a function-level, late import counts: it hides a cycle,
  it does not remove it; ``if TYPE_CHECKING:`` imports do not run and are left out);
- ``http/``, ``control/``, ``harness/`` and ``cli/`` hold no SQL: they call the module that owns the table;
- ``harness/`` uses the server only through its public surface: HTTP, plus the modules in ``HARNESS_MAY_IMPORT``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "mock_server"
# What the harness may import from the server: modules with no app wiring, or the app's one public entry point.
HARNESS_MAY_IMPORT = (
    "mock_server",  # __version__
    "mock_server.app",  # create_app, partner_document: a mock served in process, then HTTP only
    "mock_server.serving",  # the one threaded server (the app on uvicorn, with serve's limits)
    "mock_server.settings",  # the settings that serving takes
    "mock_server.presets",  # the clock modes, audience presets and dev partner id users pick from
    "mock_server.clock",  # the instant format of the wire
    "mock_server.durations",  # durations as people write them (2h, 30s)
    "mock_server.dev_partner",  # the shipped dev partner's id and key
    "mock_server.scenarios.model",  # the scenario model and loader
    "mock_server.webhooks.events",  # the event types of the wire
    "mock_server.webhooks.signing",  # the signature header of the wire
)
# Lowest first; a module imports only from its own layer or lower ones. The engine (store, clock, scheduler,
# webhook delivery, runtime) knows nothing of the rules run on it; the rules know nothing of HTTP; the control
# plane sits on both; the harness and the CLI on top.
LAYERS = (
    ("engine", ("mock_server", "mock_server.errors", "mock_server.clock", "mock_server.ids", "mock_server.presets",
                "mock_server.settings",
                "mock_server.validation", "mock_server.durations", "mock_server.store", "mock_server.models",
                "mock_server.contracts",
                "mock_server.dev_partner", "mock_server.scheduler", "mock_server.webhooks", "mock_server.runtime",
                # the partner registry (store only): webhook delivery reads endpoints, secrets and chaos from it
                "mock_server.domain.partners")),
    ("domain", ("mock_server.domain",)),
    ("http", ("mock_server.http", "mock_server.openapi")),
    ("scenarios", ("mock_server.scenarios",)),
    ("control", ("mock_server.control",)),
    ("app", ("mock_server.app", "mock_server.serving")),
    ("harness", ("mock_server.harness",)),
    ("cli", ("mock_server.cli", "mock_server.__main__")),
)
NO_SQL = ("http", "control", "harness", "cli")
SQL = re.compile(r"\b(SELECT\b[\s\S]*\bFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b")


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except the bodies of ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            stack.extend(node.orelse)
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The ``mock_server`` modules ``name`` imports (``from pkg import mod`` counts as importing ``pkg.mod``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *filter(None, [base])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {module for module in found if module in known and module != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, set(known)) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(edges[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_sees_late_and_relative_imports_but_not_type_checking_ones(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("from typing import TYPE_CHECKING\nfrom . import b\nif TYPE_CHECKING:\n    import p.c\n"
                      "def f():\n    from p.d import thing\n")
    assert imports("p.x", source, {"p.b", "p.c", "p.d"}) == {"p.b", "p.d"}


def test_no_module_imports_itself_back() -> None:
    assert cycles(graph()) == []


def layer_of(module: str) -> int:
    """The index in ``LAYERS`` of the longest prefix that names ``module`` or a package above it (the bare
    ``mock_server`` names only the package itself)."""
    matches = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or (prefix != "mock_server" and module.startswith(f"{prefix}."))]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)[1]


def test_every_import_points_down_the_layers() -> None:
    upward = sorted(f"{name} ({LAYERS[layer_of(name)][0]}) imports {dep} ({LAYERS[layer_of(dep)][0]})"
                    for name, deps in graph().items() for dep in deps if layer_of(dep) > layer_of(name))
    assert upward == []


def test_the_harness_uses_only_the_public_surface_of_the_server() -> None:
    harness = {name: deps for name, deps in graph().items() if name.startswith("mock_server.harness")}
    outside = {name: sorted(d for d in deps if not d.startswith("mock_server.harness") and d not in HARNESS_MAY_IMPORT)
               for name, deps in harness.items()}
    assert {name: deps for name, deps in outside.items() if deps} == {}


@pytest.mark.parametrize("layer", NO_SQL)
def test_the_parse_and_render_layers_hold_no_sql(layer: str) -> None:
    found = []
    for name, path in modules().items():
        if not name.startswith(f"mock_server.{layer}"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value.upper()):
                found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.value[:60]!r}")
    assert found == []
