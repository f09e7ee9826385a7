"""Read a running server's /metrics and /admin/stats the way an operator's tools do (plain HTTP, urllib).

Shared by tests/test_metrics.py and tests/browser/test_admin.py. /metrics is
parsed with prometheus-client's own text parser, so a name or label that does
not follow the exposition format fails here as it would in Prometheus.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from .servers import ServerProcess

TIMEOUT = 5.0

#: One sample: (sample name, sorted label pairs) -> value.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def basic_auth(password: str, user: str = "admin") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def get(srv: ServerProcess, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """(status, lower-case headers, body) of one GET on the browser port; HTTP errors are returned, not raised."""
    request = urllib.request.Request(f"http://127.0.0.1:{srv.ws_port}{path}", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as reply:
            return reply.status, {k.lower(): v for k, v in reply.headers.items()}, reply.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def metric_families(srv: ServerProcess) -> dict[str, Any]:
    """The families of one scrape by name (``cometql_statements`` for ``cometql_statements_total``)."""
    status, headers, body = get(srv, "/metrics")
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain; version=0.0.4"), headers
    return {family.name: family for family in text_string_to_metric_families(body.decode())}


def scrape(srv: ServerProcess) -> Samples:
    samples: Samples = {}
    for family in metric_families(srv).values():
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def sample(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 if the series does not exist yet (a labelled counter before its first event)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def admin_stats(srv: ServerProcess) -> dict[str, Any]:
    status, _, body = get(srv, "/admin/stats", basic_auth(srv.password))
    assert status == 200, body
    return json.loads(body)  # type: ignore[no-any-return]
