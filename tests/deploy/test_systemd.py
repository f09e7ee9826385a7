"""The systemd unit of docs/deployment.md (examples/systemd/cometql.service) passes ``systemd-analyze verify``.

The unit is verified as shipped, but for ExecStart's path, which points at a
CometQL installed from the wheel (verify checks that the program exists), so
the documented install and the documented unit are checked together.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import REPO, Venv

UNIT = REPO / "examples" / "systemd" / "cometql.service"
DOCUMENTED_BINARY = "/opt/cometql/bin/cometql"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"


def verify(unit_text: str, directory: Path) -> subprocess.CompletedProcess[str]:
    path = directory / "cometql.service"
    path.write_text(unit_text)
    return subprocess.run([SYSTEMD_ANALYZE, "verify", str(path)], capture_output=True, text=True, timeout=60)


def _installed_unit(venv: Venv) -> str:
    text = UNIT.read_text()
    assert text.count(DOCUMENTED_BINARY) == 1
    return text.replace(DOCUMENTED_BINARY, str(venv.bin / "cometql"))


@pytest.mark.timeout(300)
def test_the_unit_verifies_cleanly(wheel_venv: Venv, tmp_path: Path) -> None:
    proc = verify(_installed_unit(wheel_venv), tmp_path)
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


@pytest.mark.timeout(300)
def test_verify_catches_what_the_old_unit_got_wrong(wheel_venv: Venv, tmp_path: Path) -> None:
    """The check can fail: end-of-line comments and an absolute StateDirectory are reported."""
    broken = _installed_unit(wheel_venv).replace("LimitNOFILE=1048576", "LimitNOFILE=1048576  # per browser")
    broken = broken.replace("StateDirectory=cometql", "StateDirectory=/var/lib/cometql")
    proc = verify(broken, tmp_path)
    assert "Failed to parse resource value" in proc.stderr
    assert "StateDirectory= path is absolute" in proc.stderr


def test_the_unit_in_the_docs_is_the_shipped_file() -> None:
    doc = (REPO / "docs" / "deployment.md").read_text()
    blocks = re.findall(r"```ini\n(.*?)```", doc, re.S)
    assert UNIT.read_text() in blocks, "docs/deployment.md must show examples/systemd/cometql.service verbatim"


def test_the_unit_starts_the_documented_command() -> None:
    [exec_start] = re.findall(r"^ExecStart=(.*)$", UNIT.read_text(), re.M)
    assert exec_start == f"{DOCUMENTED_BINARY} serve --config /etc/cometql/comet.ini"
