"""Package boundaries: public names equal ``__all__``.

What each package may import (the hub's purity among it) is ``test_layering.py``.
"""

from __future__ import annotations
import __future__

import importlib
import types

import pytest

PACKAGES = ["cometql", "cometql.hub", "cometql.sql", "cometql.store", "cometql.cluster"]


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
