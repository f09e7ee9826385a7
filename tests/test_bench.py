"""`cometql bench`: every scenario, small and fast, against a server the benchmark starts itself.

Each test checks that the figures are plausible (counts match, each subscriber
got exactly one frame per publish, latencies positive and ordered), not how
fast the server is: speed is what the benchmark reports, not what CI asserts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cometql.bench import (
    Context,
    Server,
    ack,
    add_parser,
    connect,
    fanout,
    heavy,
    idle,
    insert,
    latency,
    run,
    start_server,
)
from cometql.bench._cli import SCENARIOS, chosen
from cometql.bench._report import BLOCK_END, BLOCK_START, write_performance_md
from cometql.bench._results import Result, Target
from cometql.bench._runner import _plan

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench_server() -> Iterator[Server]:
    server = start_server()
    yield server
    server.stop()


@pytest.fixture
def ctx(bench_server: Server, dev: int) -> Iterator[Context]:
    context = Context(bench_server, dev_id=dev)
    yield context
    context.close()


def _value(result: Result, name: str) -> float:
    value = result.figure(name).value
    assert value is not None, name
    return value


def test_idle_reports_rss_per_session_and_liveness(ctx: Context) -> None:
    (result,) = idle(ctx, [100], channels=10, warmup=5)
    assert _value(result, "sessions online") == 100
    assert _value(result, "sample reached by a publish") == 100
    assert result.details["sampled"] == 40  # the 4 sampled channels hold 10 sessions each
    rss0, rss = result.details["rss0_kb"], result.details["rss_kb"]
    assert rss0 > 0 and rss > 0  # real VmRSS readings of the server process
    # (a lean server may grow by less than a page for 100 sessions, so no lower bound)
    assert _value(result, "server RSS per session") == pytest.approx((rss - rss0) / 100)
    assert _value(result, "server RSS per session") < 100
    assert ctx.online() == 0  # every session was closed again


def test_fanout_every_subscriber_gets_exactly_one_frame(ctx: Context) -> None:
    (result,) = fanout(ctx, [50], rounds=2)
    assert _value(result, "subscribers with exactly one frame") == 100
    for row in result.details["rounds"]:
        assert (row["exactly_once"], row["missing"], row["duplicated"], row["other_frames"]) == (50, 0, 0, 0)
        assert 0 < row["rtt_ms"] < 5000
        assert 0 < row["first_ms"] <= row["last_ms"] < 5000
    assert _value(result, "deliveries/s") > 0
    assert result.figure("last subscriber has it").target is None  # targets are for N=1000 and 5000


def test_latency_measures_every_delivery(ctx: Context) -> None:
    result = latency(ctx, rate=20, duration=1, channels=4, subscribers=40)
    assert result.details["published"] == 20
    assert result.details["expected_deliveries"] == result.details["received"] == 20 * 10
    assert _value(result, "deliveries received") == 100
    assert 0 < _value(result, "p50") <= _value(result, "p99") <= _value(result, "max") < 5000
    assert _value(result, "INSERT round trip p99") > 0


def test_connect_opens_and_closes_n_sessions(ctx: Context) -> None:
    result = connect(ctx, 200)
    assert _value(result, "sessions opened") == 200
    assert _value(result, "sessions online") == 200
    assert _value(result, "sessions/s") > 0
    assert ctx.online() == 0


def test_insert_every_statement_reaches_the_hub(ctx: Context) -> None:
    result = insert(ctx, clients=2, inserts=250)
    assert result.details["inserts"] == result.details["reached_hub"] == 500
    assert _value(result, "INSERT/s") > 0
    assert 0 < _value(result, "INSERT p50") <= _value(result, "INSERT p99")


def test_ack_every_message_is_delivered_once_and_acknowledged(ctx: Context) -> None:
    result = ack(ctx, users=50, clients=2, inserts=100)
    assert _value(result, "messages received exactly once") == 100
    assert _value(result, "delivered and acknowledged/s") > 0
    assert ctx.admin.status()["queue_depth"] == "0"  # every message acknowledged and deleted
    assert ctx.online() == 0


def test_insert_with_subscribers_counts_deliveries(ctx: Context) -> None:
    result = insert(ctx, clients=2, inserts=50, subscribers=20, channels=5)
    # 100 INSERTs rotate over 5 channels of 4 subscribers each
    assert result.details["expected_deliveries"] == result.details["deliveries"] == 100 * 4
    assert _value(result, "deliveries received") == 100


def test_heavy_probes_others_while_heavy_statements_run(ctx: Context) -> None:
    result = heavy(ctx, duration=2.0, clients=1, baseline=0.5)
    assert result.notes == []  # every heavy statement got the answer it should (accepted, or its bound's code)
    assert result.details["mysql_round_trips"] > 0 and result.details["ws_round_trips"] > 0
    assert _value(result, "heavy statements run") >= 1
    for probe in ("SELECT 1", "WebSocket ping"):
        assert 0 < _value(result, f"{probe} p99 under load") <= _value(result, f"{probe} max under load")


def test_cli_json_against_a_running_server(bench_server: Server, dev: int, tmp_path: Path) -> None:
    docs = tmp_path / "performance.md"
    docs.write_text(f"# Performance\n\nprose before\n\n{BLOCK_START}\nold table\n{BLOCK_END}\n\nprose after\n")
    out = subprocess.run(
        [sys.executable, "-m", "cometql.bench", "fanout", "connect", "-n", "20", "--rounds", "1", "--json",
         "--quiet", "--host", bench_server.host, "--mysql-port", str(bench_server.mysql_port),
         "--ws-port", str(bench_server.ws_port), "--pid", str(bench_server.pid), "--dev", str(dev),
         "--write-docs", str(docs)],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [r["scenario"] for r in report["results"]] == ["fanout", "connect"]
    figures = {f["name"]: f for f in report["results"][0]["figures"]}
    assert figures["subscribers with exactly one frame"]["value"] == 100
    assert report["results"][1]["params"]["n"] == 20
    text = docs.read_text()
    assert text.startswith("# Performance\n\nprose before\n\n") and text.endswith("\n\nprose after\n")
    assert "old table" not in text and "| fanout N=20 | INSERT round trip |" in text


def test_insert_rate_wrapper_still_works(bench_server: Server) -> None:
    out = subprocess.run([sys.executable, "bench/insert_rate.py", "--port", str(bench_server.mysql_port),
                          "--clients", "1", "--inserts", "50"], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "INSERT/s" in out.stdout and "reached the hub" in out.stdout


def test_add_parser_registers_bench_with_run() -> None:
    parser = argparse.ArgumentParser(prog="cometql")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench"])
    assert args.func is run
    assert [name for name, _ in _plan(args, chosen(args))] == list(SCENARIOS)  # no scenario = the standard set
    args = parser.parse_args(["bench", "insert", "idle", "-n", "10,20"])
    assert [name for name, _ in _plan(args, chosen(args))] == ["idle", "insert"] and args.n == [10, 20]
    with pytest.raises(SystemExit):
        parser.parse_args(["bench", "nosuch"])


def test_serve_does_not_import_the_load_generator() -> None:
    # a fresh interpreter: this one has imported the whole bench already; trio.run stubbed, so
    # `serve` parses its flags and stops where it would start the server
    code = ("import sys, trio, cometql.cli\n"
            "trio.run = lambda *args: None\n"
            "assert cometql.cli.main(['serve', '--mysql-port', '0']) == 0\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('cometql.bench') or m == 'rich')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["cometql.bench", "cometql.bench._cli"]  # the argument parser, nothing more


def test_write_performance_md_appends_then_replaces_its_block(tmp_path: Path) -> None:
    docs = tmp_path / "performance.md"
    docs.write_text("# Performance\n\nHand-written text.\n")
    result = Result("insert", "insert 8 clients", {})
    result.add("INSERT/s", 13000, "/s", Target(">=", 12000))
    write_performance_md([result], docs)
    first = docs.read_text()
    assert first.startswith("# Performance\n\nHand-written text.\n")
    assert "| insert 8 clients | INSERT/s | 13,000 /s | ≥ 12,000 /s | ok |" in first
    result.figures[0].value = 9000
    write_performance_md([result], docs)
    second = docs.read_text()
    assert second.count(BLOCK_START) == 1 and "| 9,000 /s | ≥ 12,000 /s | **missed** |" in second
    assert second.startswith("# Performance\n\nHand-written text.\n")


def test_tls_idle_and_connect_run_over_wss(dev: int) -> None:
    """``--tls``: a started server gets a certificate made for the run; sessions open, subscribe and close."""
    server = start_server(tls=True)
    context = Context(server, dev_id=dev)
    try:
        (result,) = idle(context, [50], channels=5, warmup=5)
        assert _value(result, "sessions online") == 50
        assert _value(result, "sample reached by a publish") == 100
        opened = connect(context, 50)
        assert _value(opened, "sessions opened") == 50
        assert context.online() == 0
    finally:
        context.close()
        server.stop()
