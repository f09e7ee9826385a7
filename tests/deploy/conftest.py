"""CometQL installed as a user installs it: a wheel (or the source tree) in a fresh venv outside the checkout.

The wheel is built once per session from a copy of what the package is made of
(pyproject.toml, README.md, LICENSE, cometql/), so nothing else of the checkout
can leak in. The fresh venv gets CometQL from that wheel only; its
dependencies are the ones already installed for the tests, seen through a
``.pth`` file pointing at a directory of links to them (CometQL's own editable
install left out), so the install needs no network (``--no-index``) and takes
seconds. pip's own ``--python`` option installs into the venv, which is made
without pip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: What the package is built from (everything else in the checkout is not part of it).
SOURCE = ("pyproject.toml", "README.md", "LICENSE", "cometql")


def run(cmd: list[str | Path], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a command to completion (bounded); fail with its output if it fails."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no PYTHONPATH into the checkout, no COMETQL_* settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")
           and not k.startswith("COMETQL_")}
    return {**env, **extra}


@pytest.fixture(scope="session")
def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("cometql-src")
    for name in SOURCE:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, dest / name)
    return dest


@dataclass(frozen=True)
class Built:
    wheel: Path
    output: str  # what the build printed (pip -v): warnings included


@pytest.fixture(scope="session")
def built_wheel(source_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("wheel")
    proc = run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "--no-index",
                "-w", out, source_copy], env=clean_env())
    [wheel] = out.glob("cometql-*.whl")
    return Built(wheel, proc.stdout + proc.stderr)


@pytest.fixture(scope="session")
def deps_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Links to every installed distribution of the test venv but CometQL itself."""
    site = Path(sysconfig.get_paths()["purelib"])
    dest = tmp_path_factory.mktemp("deps")
    for entry in site.iterdir():
        name = entry.name.lower()
        if name.startswith(("cometql", "__editable__")) or entry.suffix == ".pth":
            continue
        (dest / entry.name).symlink_to(entry)
    return dest


@dataclass(frozen=True)
class Venv:
    path: Path

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"


def make_venv(path: Path, deps: Path, target: Path) -> tuple[Venv, str]:
    """A venv at ``path`` with ``target`` (a wheel or a source tree) installed; returns it and pip's output."""
    run([sys.executable, "-m", "venv", "--without-pip", path], env=clean_env())
    venv = Venv(path)
    purelib = run([venv.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                  env=clean_env()).stdout.strip()
    Path(purelib, "_cometql_test_deps.pth").write_text(f"{deps}\n")
    proc = run([sys.executable, "-m", "pip", "--python", venv.python, "install", "-v", "--no-index",
                "--no-build-isolation", target], env=clean_env(), cwd=path)
    return venv, proc.stdout + proc.stderr


@pytest.fixture(scope="session")
def wheel_venv(built_wheel: Built, deps_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    venv, output = make_venv(tmp_path_factory.mktemp("venv-wheel") / "venv", deps_dir, built_wheel.wheel)
    assert "deprecat" not in output.lower(), output
    return venv


@pytest.fixture(scope="session")
def source_venv(source_copy: Path, deps_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """``pip install .`` (of the copy: a build writes into the tree it builds)."""
    venv, output = make_venv(tmp_path_factory.mktemp("venv-source") / "venv", deps_dir, source_copy)
    assert "deprecat" not in output.lower(), output
    return venv
