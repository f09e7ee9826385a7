"""Settings from defaults, comet.ini (ours and CppComet's), environment and flags."""

from pathlib import Path

import pytest

from cometql.config import EXAMPLE_PASSWORD, SETTINGS, Config, describe, load_config, reference_markdown
from cometql.errors import ConfigError

CPPCOMET_INI = """\
[main]
password = s3cret;this part is a comment
node_name = node1
useQueryLoger = false
send_user_offline_events = false

[db]
host = localhost
user = root

[ws]
ip = 127.0.0.1
port = 8187
thread_num = 4
statistics = 30

[cometql]
ip = 127.0.0.1
port = 3307
thread_num = 4

[cometqlproxy]
port = 3311

[statistics]
allow = false
"""


def test_defaults_without_any_source():
    config = load_config(env={})
    assert (config.mysql_host, config.mysql_port, config.ws_port) == ("127.0.0.1", 3300, 8087)
    assert config.password == EXAMPLE_PASSWORD
    assert set(config.sources.values()) == {"default"}


def test_cppcomet_ini_loads_and_values_end_at_semicolon(tmp_path: Path):
    ini = tmp_path / "comet.ini"
    ini.write_text(CPPCOMET_INI)
    config = load_config(config_file=str(ini), env={})
    assert config.password == "s3cret"
    assert (config.mysql_port, config.ws_port) == (3307, 8187)
    assert config.send_user_offline_events is False
    assert config.sources["mysql_port"] == f"file {ini}"
    assert config.warnings == ()  # CppComet's own keys and sections are known, not "unknown"


def test_unknown_keys_and_sections_are_warnings(tmp_path: Path):
    ini = tmp_path / "comet.ini"
    ini.write_text("[main]\npassword = x\ncolour = blue\n[mystery]\na = 1\n")
    config = load_config(config_file=str(ini), env={})
    assert any("colour" in w for w in config.warnings)
    assert any("[mystery]" in w for w in config.warnings)


def test_env_overrides_file_and_flags_override_env(tmp_path: Path):
    ini = tmp_path / "comet.ini"
    ini.write_text("[cometql]\nport = 3307\n")
    env = {"COMETQL_MYSQL_PORT": "3310", "COMETQL_PASSWORD": "fromenv"}
    config = load_config(config_file=str(ini), env=env)
    assert config.mysql_port == 3310 and config.sources["mysql_port"] == "env COMETQL_MYSQL_PORT"
    config = load_config(config_file=str(ini), env=env, flags={"mysql_port": 3320, "password": None})
    assert config.mysql_port == 3320 and config.sources["mysql_port"] == "flag"
    assert config.password == "fromenv"  # a flag left unset (None) does not override


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"COMETQL_MYSQL_PORT": "abc"}, "mysql_port (COMETQL_MYSQL_PORT): 'abc' is not an integer"),
        ({"COMETQL_MYSQL_PORT": "70000"}, "mysql_port: 70000 is not a TCP port"),
        ({"COMETQL_PASSWORD": ""}, "password: must not be empty"),
        ({"COMETQL_DURABILITY": "sometimes"}, "durability: 'sometimes'"),
        ({"COMETQL_SEND_USER_ONLINE_EVENTS": "maybe"}, "'maybe' is not true or false"),
        ({"COMETQL_WORKERS": "2"}, "workers: more than 1 process needs a shared store"),
        ({"COMETQL_WORKERS": "0"}, "workers: 0 must be at least 1"),
        ({"COMETQL_STORE": "mysql://x"}, "only redis://host:port/db is supported"),
        ({"COMETQL_STORE": "redis://h:port/0"}, "the port is not a number"),
        ({"COMETQL_STORE": "redis://h:6379/zero"}, "the database after / must be a number"),
        ({"COMETQL_STORE": "redis://h/0", "COMETQL_NODE_TIMEOUT": "0.5"}, "node_timeout: 0.5 s is too short"),
        ({"COMETQL_STATS_INTERVAL": "-1"}, "stats_interval: -1 must not be negative"),
        ({"COMETQL_STATS_KEEP_DAYS": "-0.5"}, "stats_keep_days: -0.5 must not be negative"),
    ],
)
def test_bad_values_name_the_setting(env, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(env=env)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_public_address_refused_with_example_password(host):
    with pytest.raises(ConfigError, match="example password"):
        load_config(env={}, flags={"mysql_host": host})
    config = load_config(env={}, flags={"mysql_host": host, "password": "a real one"})
    assert config.mysql_host == host


def test_missing_config_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(config_file=str(tmp_path / "nope.ini"), env={})


def test_settings_table_covers_every_config_field():
    fields = set(Config.__dataclass_fields__) - {"sources", "warnings"}
    assert {s.name for s in SETTINGS} == fields


def test_configuration_doc_is_generated_from_settings():
    doc = Path(__file__).parent.parent / "docs" / "configuration.md"
    assert doc.read_text() == reference_markdown(), "regenerate docs/configuration.md from reference_markdown()"


def test_the_redis_password_is_never_shown() -> None:
    config = load_config(env={"COMETQL_STORE": "redis://:hunter2@10.0.0.5:6379/3", "COMETQL_WORKERS": "2"})
    assert config.store_display == "redis://10.0.0.5:6379/3"
    shown = {name: value for name, value, _ in describe(config)}
    assert shown["store"] == "redis://10.0.0.5:6379/3"
    assert "hunter2" not in repr(describe(config))


def test_stats_section_loads_from_comet_ini(tmp_path: Path) -> None:
    ini = tmp_path / "comet.ini"
    ini.write_text("[stats]\ninterval = 30\nkeep_days = 1.5\nchannels = 5\n")
    config = load_config(config_file=str(ini), env={})
    assert (config.stats_interval, config.stats_keep_days, config.stats_channels) == (30, 1.5, 5)
    assert config.warnings == ()
