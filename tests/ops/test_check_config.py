"""``cometql check-config FILE``: a real subprocess, as an operator runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ..test_config import CPPCOMET_INI
from .conftest import Certs


def check(path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COMETQL_")}
    return subprocess.run([sys.executable, "-m", "cometql.cli", "check-config", str(path)],
                          capture_output=True, text=True, timeout=20, env={**clean, **env})


def settings(stdout: str) -> dict[str, tuple[str, str]]:
    """``name = value  (source)`` lines as {name: (value, source)}."""
    out = {}
    for line in stdout.splitlines():
        if " = " in line:
            name, rest = line.split(" = ", 1)
            value, _, source = rest.rpartition(" (")
            out[name.strip()] = (value.strip(), source.rstrip(")"))
    return out


def test_cppcomet_ini_is_valid_and_shows_values_with_their_sources(tmp_path: Path) -> None:
    ini = tmp_path / "comet.ini"
    ini.write_text(CPPCOMET_INI + "\n[log]\nunknown_thing = 1\n")
    run = check(ini, COMETQL_WS_PORT="9999")
    assert run.returncode == 0, run.stderr
    shown = settings(run.stdout)
    assert shown["password"] == ("********", f"file {ini}")  # never printed
    assert "s3cret" not in run.stdout + run.stderr
    assert shown["mysql_port"] == ("3307", f"file {ini}")
    assert shown["ws_port"] == ("9999", "env COMETQL_WS_PORT")
    assert shown["send_user_offline_events"] == ("False", f"file {ini}")
    assert shown["durability"] == ("normal", "default")
    assert f"warning: {ini}: unknown key 'unknown_thing' in [log] ignored" in run.stderr
    assert run.stdout.strip().endswith(f"{ini}: OK (1 warning(s))")


def test_bad_value_exits_non_zero_naming_the_setting(tmp_path: Path) -> None:
    ini = tmp_path / "comet.ini"
    ini.write_text("[cometql]\nport = thirty\n")
    run = check(ini)
    assert run.returncode == 2
    assert run.stderr.strip() == f"cometql: {ini}: error: mysql_port ({ini}): 'thirty' is not an integer"
    assert run.stdout == ""


def test_out_of_range_value_is_an_error(tmp_path: Path) -> None:
    ini = tmp_path / "comet.ini"
    ini.write_text("[log]\nformat = xml\n")
    run = check(ini)
    assert run.returncode == 2
    assert "log_format: 'xml' is not 'text' or 'json'" in run.stderr


def test_missing_file(tmp_path: Path) -> None:
    run = check(tmp_path / "nope.ini")
    assert run.returncode == 2
    assert run.stderr.strip() == (f"cometql: {tmp_path / 'nope.ini'}: error: cannot read {tmp_path / 'nope.ini'}: "
                                  "No such file or directory")


def test_tls_section_is_checked_too(tmp_path: Path, certs: Certs) -> None:
    ini = tmp_path / "comet.ini"
    ini.write_text(f"[ssl]\ncert = {certs.cert}\nkey = {certs.key}\n")
    ok = check(ini)
    assert ok.returncode == 0, ok.stderr
    assert settings(ok.stdout)["tls_cert"] == (str(certs.cert), f"file {ini}")
    ini.write_text(f"[ssl]\ncert = {certs.cert}\n")
    half = check(ini)
    assert half.returncode == 2
    assert "tls_key: TLS needs both tls_cert and tls_key ([ssl] cert and key)" in half.stderr


def test_a_file_with_an_error_still_prints_its_warnings(tmp_path: Path) -> None:
    ini = tmp_path / "comet.ini"
    ini.write_text("[cometql]\nprot = 3300\nport = thirty\n[wss]\nip = 0.0.0.0\n")
    run = check(ini)
    assert run.returncode == 2
    assert run.stderr.splitlines() == [
        f"warning: {ini}: unknown key 'prot' in [cometql] ignored",
        f"warning: {ini}: unknown section [wss] ignored",
        f"cometql: {ini}: error: mysql_port ({ini}): 'thirty' is not an integer",
    ]
