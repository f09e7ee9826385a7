"""Package boundaries: public names equal ``__all__``, and the hub stays sans-IO.

``cometql.hub`` must not import trio, sockets, clocks, asyncio or sqlite3 (it
is driven by the engine and tested without I/O); checked on the source's AST,
so a lazy import inside a function is caught too.
"""

from __future__ import annotations
import __future__

import ast
import importlib
import types
from pathlib import Path

import pytest

import cometql.hub

PACKAGES = ["cometql", "cometql.hub", "cometql.sql", "cometql.store", "cometql.cluster"]
FORBIDDEN_IN_HUB = {"trio", "socket", "time", "asyncio", "sqlite3"}


def public_names(module: types.ModuleType) -> set[str]:
    """Names a user can import from the module: not private, not submodules, not __future__ flags."""
    return {
        name for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and not isinstance(value, __future__._Feature)
    }


@pytest.mark.parametrize("package", PACKAGES)
def test_public_names_match_all(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(public_names(module)) == sorted(set(module.__all__) - {"__version__"})
    assert len(module.__all__) == len(set(module.__all__))
    for name in module.__all__:
        assert hasattr(module, name), name


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__" and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                roots.add(arg.value.split(".")[0])
    return roots


HUB_FILES = sorted(Path(cometql.hub.__file__).parent.glob("*.py"))


@pytest.mark.parametrize("path", HUB_FILES, ids=[p.name for p in HUB_FILES])
def test_hub_module_does_no_io(path: Path) -> None:
    assert imported_roots(path) & FORBIDDEN_IN_HUB == set()


def test_hub_files_were_found() -> None:
    assert {"_hub.py", "__init__.py"} <= {p.name for p in HUB_FILES}
