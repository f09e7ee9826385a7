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
from array import array
from collections.abc import Iterator
from pathlib import Path
from random import Random

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
    room,
    run,
    start_server,
)
from cometql.bench._cli import SCENARIOS, chosen
from cometql.bench._loadgen import BenchError
from cometql.bench._report import BLOCK_END, BLOCK_START, Reporter, write_performance_md
from cometql.bench._results import Result, Target
from cometql.bench._room import SEQ_BITS, check_orders
from cometql.bench._runner import _plan
from cometql.bench._scale_sessions import DEFAULT_WORKERS, _check_limits, scale_sessions, workers_needed
from cometql.bench._storm import library_policy, storm

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


def test_room_every_session_sees_every_message_once_in_one_order(ctx: Context) -> None:
    # a sweep of two rates: each run checks itself, the summary says where p99 passed 20 ms (if it did)
    runs = room(ctx, sessions=5, rates=[4, 8], duration=1.5)
    *rooms, sweep = runs
    assert sweep.label.startswith("room sweep")
    assert 1 <= len(rooms) <= 2 and rooms[0].params["rate"] == 4  # the second runs unless the first missed
    for result, rate in zip(rooms, (4, 8), strict=False):
        count = round(rate * 1.5)
        details = result.details
        assert details["expected_deliveries"] == details["received"] == 5 * count * 4  # the sender is excluded
        assert (details["exact"], details["in_sending_order"], details["common_order"]) == (5, 5, True)
        assert details["answers"] == details["answers_reporting_all"] == 5 * count  # each answer: 4 reached
        assert details["lost"] == 0
        assert _value(result, "sessions with every message exactly once") == 100
        assert _value(result, "sessions in one common order") == 100
        assert 0 < _value(result, "browser-to-browser p50") <= _value(result, "browser-to-browser p99") \
            <= _value(result, "browser-to-browser max") < 5000
        assert _value(result, "server CPU per relayed delivery") > 0


def _ids(*messages: tuple[int, int]) -> array[int]:
    return array("q", [s << SEQ_BITS | q for s, q in messages])


def test_room_order_check_finds_loss_duplicates_and_disagreement() -> None:
    # three sessions, one message each: everyone sees the others' in the order 0, 1, 2
    good = {0: _ids((1, 0), (2, 0)), 1: _ids((0, 0), (2, 0)), 2: _ids((0, 0), (1, 0))}
    assert check_orders(good, 3, 1) == {"exact": 3, "in_sending_order": 3, "common_order": True,
                                        "agree_with_first": 3, "receivers": 3}
    # 0 saw 2 before 1, 1 saw 0 before 2, 2 saw 1 before 0: each pair agrees, but no single order fits all
    circular = {0: _ids((2, 0), (1, 0)), 1: _ids((0, 0), (2, 0)), 2: _ids((1, 0), (0, 0))}
    assert check_orders(circular, 3, 1)["common_order"] is False
    assert check_orders(circular, 3, 1)["agree_with_first"] == 3  # they share one message pairwise: no pair differs
    reordered = {0: _ids((1, 0), (2, 0), (3, 0)), 1: _ids((0, 0), (2, 0), (3, 0)), 2: _ids((0, 0), (1, 0), (3, 0)),
                 3: _ids((0, 0), (2, 0), (1, 0))}  # 3 saw 2 before 1, unlike 0
    assert check_orders(reordered, 4, 1)["common_order"] is False
    assert check_orders(reordered, 4, 1)["agree_with_first"] == 3
    assert check_orders({**good, 0: _ids((2, 0), (1, 0))}, 3, 1)["common_order"] is True  # fits 0, 2, 1
    doubled = {**good, 1: _ids((0, 0), (2, 0), (2, 0))}
    assert check_orders(doubled, 3, 1)["exact"] == 2
    missing = {**good, 2: _ids((0, 0))}
    assert check_orders(missing, 3, 1)["exact"] == 2
    # one sender's two messages arrive reversed at session 1 (and only there)
    fifo = {0: _ids((1, 0), (1, 1)), 1: _ids((0, 1), (0, 0))}
    assert check_orders(fifo, 2, 2)["in_sending_order"] == 1


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
    args = parser.parse_args(["bench", "room", "latency", "--rate", "10,20.5"])
    assert [name for name, _ in _plan(args, chosen(args))] == ["latency", "room"] and args.rate == [10, 20.5]
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


def test_scale_sessions_reaches_every_session_once_across_workers() -> None:
    """``bench scale -n``, small: 2 workers on a redis-server of its own, one INSERT to every session."""
    result = scale_sessions(Reporter(quiet=True), sessions=300, workers=2)
    assert _value(result, "sessions online (cluster)") == 300
    assert _value(result, "received exactly once") == 100 and _value(result, "duplicates") == 0
    assert sum(result.details["sessions_per_worker"]) >= 300  # every worker's descriptors, read from /proc
    assert _value(result, "workers' RSS growth per session") > 0


def test_scale_sessions_refuses_more_than_the_open_files_limit_holds() -> None:
    assert workers_needed(100_000, 20_000) <= DEFAULT_WORKERS < workers_needed(140_000, 20_000)
    with pytest.raises(BenchError, match="need at least 6 workers"):  # checked before anything starts
        _check_limits(100_000, 3, 20_000)
def test_insert_counts_oks_where_the_server_has_no_messages_published(ctx: Context,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctx, "published", lambda: None)  # as on CppComet
    result = insert(ctx, clients=2, inserts=100)
    assert result.details["ok"] == 200 and result.details["reached_hub"] is None
    assert _value(result, "answered OK") == 100
    assert [f.name for f in result.figures if f.name == "reached the hub"] == []
    assert any("counted by their OKs" in note for note in ctx.peer_notes)


def test_storm_policy_is_the_librarys() -> None:
    policy = library_policy()
    js = (ROOT / "cometql/web/static/cometql.js").read_text()
    for name, value in (("BACKOFF_BASE_MS", policy.base_ms), ("BACKOFF_CAP_MS", policy.cap_ms),
                        ("STABLE_CONNECTION_MS", policy.stable_ms), ("CONNECT_TIMEOUT_MS", policy.connect_timeout_ms)):
        assert f"var {name} = {value};" in js
    rng = Random(1)
    for attempt in range(15):
        ceiling = min(policy.cap_ms, policy.base_ms * 2 ** attempt) / 1000
        assert all(ceiling / 2 - 0.001 <= policy.delay(attempt, rng) <= ceiling for _ in range(50))


def test_storm_every_session_comes_back_subscribed(dev: int) -> None:
    server = start_server()  # its own: the storm restarts it
    context = Context(server, dev_id=dev)
    try:
        result = storm(context, 1000, channels=10)
    finally:
        context.close()
        server.stop()
    # storm itself fails unless the server counts every subscription and session again after the restart
    assert _value(result, "sessions back") == 1000
    assert _value(result, "refused, not by a configured limit") == 0
    assert result.details["refusals_by_reason"] == {}
    assert result.details["events_before_listening"]["closed: close 1001 server shutting down"] == 1000
    assert not any("not checked" in note for note in result.notes)
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
