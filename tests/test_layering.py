"""The package graph, checked on the source's AST (style guide §6, issue 11).

Every module under ``cometql/`` is parsed, and every import in it counts: at
the top, inside functions (a lazy import is still a dependency) and under
``if TYPE_CHECKING:`` (a type-level cycle is still a cycle). Only the implicit
import of a module's parent packages is left out. The rules:

- the hub is sans-IO: it imports nothing of CometQL but ``cometql.errors``, and
  no clock, randomness, I/O or concurrency module;
- no module imports another package's private (``_x``) module or name (a
  package's own ``_x`` modules are fine; ``cometql._version`` is everyone's);
- no import cycle between modules, nor between packages;
- each component sits in a layer (``LAYERS``) and imports only lower layers;
- nothing imports a front (``cometql.mysql``, ``cometql.web``) except what starts them;
- every module is at most ``MAX_LINES`` long.

Each test lists every violation it finds, with file and line, so the list is a
to-do list; there is no allowlist.
"""

from __future__ import annotations

import ast
from collections import defaultdict, deque
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import cometql

ROOT = Path(cometql.__file__).parent
MAX_LINES = 500

#: Components from the bottom up: a component imports only components of lower layers (never one of
#: its own layer). A component is a top-level module or a first-level package. From style guide §6.
LAYERS: list[tuple[str, ...]] = [
    # leaves that everyone may use
    ("cometql._version", "cometql.errors"),
    # the sans-IO core; small helpers that need nothing of CometQL (sockets, TLS files, log format, streams,
    # Redis urls, WebSocket framing shared by the browser port and the benchmark's clients)
    ("cometql.hub", "cometql.listen", "cometql.logs", "cometql.streams", "cometql.tls", "cometql.redisurl",
     "cometql.wsframes"),
    # the Observer protocol and the statistics snapshot
    ("cometql.observe",),
    # statement text -> statements -> hub calls; records <-> SQLite / Redis; the Prometheus observer
    ("cometql.sql", "cometql.store", "cometql.metrics"),
    # the cluster bus over the store; settings; abuse limits over statements; the stats_history sampler
    ("cometql.cluster", "cometql.config", "cometql.limits", "cometql.sampler"),
    # applies the hub's effects: awaits the store, writes frames
    ("cometql.engine",),
    # the delivery canary: probes the store, the bus and the engine
    ("cometql.canary",),
    # owns hub, engine, store, cluster and observer; the fronts are given it
    ("cometql.node",),
    # the fronts
    ("cometql.mysql", "cometql.web"),
    # what starts the node and the fronts; check-config
    ("cometql.server", "cometql.checkconfig"),
    # the --workers supervisor; the benchmark (a client of a server it starts)
    ("cometql.workers", "cometql.bench"),
    # the command line
    ("cometql.cli",),
    # the package's public names (``from cometql import serve``); ``python -m cometql``
    ("cometql", "cometql.__main__"),
]

FRONTS = {"cometql.mysql", "cometql.web"}
#: The only components that may import a front: the ones that start them.
FRONT_STARTERS = {"cometql.server", "cometql.cli"}

HUB = "cometql.hub"
HUB_MAY_IMPORT = {"cometql.errors"}
#: Clocks, randomness, I/O and concurrency: the hub is given ``now`` and ids, and returns effects.
FORBIDDEN_IN_HUB = {
    "time", "datetime",  # clocks
    "random", "secrets", "uuid",  # randomness
    "os", "pathlib", "shutil", "tempfile", "socket", "select", "selectors", "ssl", "signal", "subprocess",
    "sqlite3", "hiredis", "mysql_mimic", "logging",  # I/O
    "threading", "multiprocessing", "asyncio", "trio",  # concurrency
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # a module under cometql, or a top-level name outside it
    line: int
    name: str | None = None  # for ``from target import name`` when ``name`` is not a module

    @property
    def where(self) -> str:
        return f"{MODULES[self.source].relative_to(ROOT.parent)}:{self.line}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _package_of(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str, source: str, package: str, known: Container[str]) -> Iterator[Import]:
    """Every import in ``source`` (the text of ``module``, in ``package``); ``known``: the modules there are."""

    def to(target: str, line: int, name: str | None = None) -> Import:
        if target != "cometql" and not target.startswith("cometql."):
            return Import(module, target.split(".")[0], line, name)
        while target not in known and "." in target:  # import a.b.c where c is not a module
            target = target.rpartition(".")[0]
        return Import(module, target, line, name)

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield to(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in known:
                    yield Import(module, f"{target}.{alias.name}", node.lineno)
                else:
                    yield to(target, node.lineno, alias.name)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if called in ("__import__", "import_module") and isinstance(node.args[0].value, str):
                yield to(node.args[0].value, node.lineno)


IMPORTS: list[Import] = [imp for module, path in MODULES.items()
                         for imp in _imports(module, path.read_text(), _package_of(module), MODULES)]
INTERNAL: list[Import] = [imp for imp in IMPORTS if imp.target in MODULES]


def component(module: str) -> str:
    """``cometql.store.redis`` -> ``cometql.store``; ``cometql.config`` -> itself; the package -> ``cometql``."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _private_owner(target: str) -> str | None:
    """The package whose private module ``target`` is (``cometql.web._http`` -> ``cometql.web``), else None."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _fail(title: str, violations: Iterable[str]) -> None:
    found = sorted(set(violations))
    if found:
        pytest.fail(f"{title} ({len(found)}):\n  " + "\n  ".join(found), pytrace=False)


# ------------------------------------------------------------------------------------- the hub


def test_hub_imports_no_other_package_and_no_io() -> None:
    violations = []
    for imp in IMPORTS:
        if not _inside(imp.source, HUB):
            continue
        if imp.target in MODULES:
            if not _inside(imp.target, HUB) and imp.target not in HUB_MAY_IMPORT:
                violations.append(f"{imp.where}: {imp.source} imports {imp.target} (the hub may import only "
                                  f"{', '.join(sorted(HUB_MAY_IMPORT))} besides itself)")
        elif imp.target in FORBIDDEN_IN_HUB:
            violations.append(f"{imp.where}: {imp.source} imports {imp.target} (no clock, randomness or I/O "
                              "in the hub: take now and ids as arguments, return effects)")
    _fail("the hub must stay sans-IO", violations)


def test_hub_modules_were_found() -> None:
    assert {"cometql.hub", "cometql.hub._hub"} <= set(MODULES)
    assert any(imp.source == "cometql.hub._hub" for imp in IMPORTS)


# ---------------------------------------------------------------------------- private modules


def test_no_private_cross_package_imports() -> None:
    violations = []
    for imp in INTERNAL:
        owner = _private_owner(imp.target)
        if owner is not None and not _inside(imp.source, owner):
            violations.append(f"{imp.where}: {imp.source} imports {imp.target}, a private module of {owner}")
        elif imp.name and imp.name.startswith("_") and not imp.name.startswith("__") \
                and not _inside(imp.source, _package_of(imp.target)):
            violations.append(f"{imp.where}: {imp.source} imports {imp.name}, a private name of {imp.target}")
    _fail("imports of another package's private module or name", violations)


# ------------------------------------------------------------------------------------ cycles


def _graph(edges: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    return graph


def _cyclic_components(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with a cycle in them (Tarjan, iterative), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    nodes = sorted(set(graph) | {b for targets in graph.values() for b in targets})
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    members = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        members.append(member)
                        if member == node:
                            break
                    if len(members) > 1 or node in graph.get(node, ()):
                        found.append(sorted(members))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return sorted(found)


def _shortest_cycle(graph: dict[str, set[str]], start: str) -> list[str]:
    """The shortest path start -> ... -> start (breadth first)."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph.get(node, ())):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    raise AssertionError(f"no cycle through {start}")


def _witness(source_of: dict[tuple[str, str], list[Import]], a: str, b: str) -> str:
    return ", ".join(dict.fromkeys(imp.where for imp in source_of[a, b]))


def _cycle_report(edges: dict[tuple[str, str], list[Import]], what: str) -> list[str]:
    graph = _graph(edges)
    report = []
    for members in _cyclic_components(graph):
        cycle = _shortest_cycle(graph, members[0])
        hops = [f"{a} -> {b} ({_witness(edges, a, b)})" for a, b in zip(cycle, cycle[1:], strict=False)]
        inner = [f"{a} -> {b} ({_witness(edges, a, b)})" for a, b in sorted(edges) if a in members and b in members]
        report.append(
            f"{len(members)} {what} in one cycle: {', '.join(members)}\n"
            f"    shortest: {' -> '.join(cycle)}\n      " + "\n      ".join(hops) +
            f"\n    every import between them ({len(inner)}; cutting enough of these breaks the cycle):\n      "
            + "\n      ".join(inner)
        )
    return report


def test_no_import_cycle_between_modules() -> None:
    edges: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for imp in INTERNAL:
        edges[imp.source, imp.target].append(imp)
    _fail("import cycles between modules (imports in functions and under TYPE_CHECKING count)",
          _cycle_report(edges, "modules"))


def test_no_import_cycle_between_packages() -> None:
    edges: dict[tuple[str, str], list[Import]] = defaultdict(list)
    for imp in INTERNAL:
        a, b = component(imp.source), component(imp.target)
        if a != b:
            edges[a, b].append(imp)
    _fail("import cycles between packages and top-level modules", _cycle_report(edges, "components"))


# ------------------------------------------------------------------------------------ layers


RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}


def test_every_component_has_a_layer() -> None:
    _fail("components missing from LAYERS (decide where they sit)",
          [f"{name} ({MODULES[name].relative_to(ROOT.parent) if name in MODULES else '?'})"
           for name in {component(m) for m in MODULES} - set(RANK)])


def test_imports_go_down_the_layers() -> None:
    violations = []
    for imp in INTERNAL:
        a, b = component(imp.source), component(imp.target)
        if a == b or a not in RANK or b not in RANK:
            continue
        if RANK[b] >= RANK[a]:
            relation = "its own layer" if RANK[b] == RANK[a] else f"layer {RANK[b]}, above"
            violations.append(f"{imp.where}: {imp.source} (layer {RANK[a]}) imports {imp.target} ({relation})")
    _fail("imports that do not go down the layers (see LAYERS)", violations)


def test_nothing_imports_a_front() -> None:
    violations = []
    for imp in INTERNAL:
        a, b = component(imp.source), component(imp.target)
        if b in FRONTS and a != b and a not in FRONT_STARTERS:
            violations.append(f"{imp.where}: {imp.source} imports the front {imp.target}")
    _fail(f"imports of a front from outside it (only {', '.join(sorted(FRONT_STARTERS))} start fronts)",
          violations)


# ------------------------------------------------------------------------------------ size


def test_modules_are_small() -> None:
    _fail(f"modules over {MAX_LINES} lines (split by the state each part owns)",
          [f"{path.relative_to(ROOT.parent)}: {n} lines" for path in MODULES.values()
           if (n := len(path.read_text().splitlines())) > MAX_LINES])


# ------------------------------------------------------------------------- the checker itself


def test_cycle_finder_finds_and_reports_a_cycle() -> None:
    graph = _graph([("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "d"), ("e", "a")])
    assert _cyclic_components(graph) == [["a", "b", "c"], ["d"]]
    assert _shortest_cycle(graph, "a") == ["a", "b", "c", "a"]


def test_imports_are_resolved() -> None:
    """Relative, absolute, lazy and TYPE_CHECKING imports all land on the right module."""
    source = """
from __future__ import annotations
import os.path
from typing import TYPE_CHECKING
from . import _frames as frames
from ._names import CHANNEL_MAX
from .. import errors
from ..store import Store
import cometql.store.redis.RedisStore
if TYPE_CHECKING:
    from ..web._http import Request
def later():
    import trio
    return __import__("cometql.sql")
"""
    known = {"cometql", "cometql.errors", "cometql.hub", "cometql.hub._frames", "cometql.hub._names",
             "cometql.store", "cometql.store.redis", "cometql.web", "cometql.web._http", "cometql.sql"}
    found = {(imp.target, imp.name, imp.line) for imp in _imports("cometql.hub._x", source, "cometql.hub", known)}
    assert found == {
        ("__future__", "annotations", 2), ("os", None, 3), ("typing", "TYPE_CHECKING", 4),
        ("cometql.hub._frames", None, 5), ("cometql.hub._names", "CHANNEL_MAX", 6), ("cometql.errors", None, 7),
        ("cometql.store", "Store", 8), ("cometql.store.redis", None, 9), ("cometql.web._http", "Request", 11),
        ("trio", None, 13), ("cometql.sql", None, 14),
    }
    assert _private_owner("cometql.web._http") == "cometql.web"
    assert _private_owner("cometql._version") == "cometql"
    assert _private_owner("cometql.store.redis") is None
    assert component("cometql.store.redis") == "cometql.store"
    assert component("cometql.config") == "cometql.config"
    assert component("cometql") == "cometql"
