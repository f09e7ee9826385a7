"""Run a documented command block as a user would, in a sandbox of its own.

The docs say ``mysql -h 127.0.0.1 -P 3300 ...`` and ``redis-server --port 6379``:
the documented ports, not a test's. So each block runs in new network, PID and
mount namespaces (``unshare``, as root): a loopback of its own where those ports
are free whatever else runs on the machine, every process it started (daemons
included) ends with the namespace, and ``/tmp`` is a private tmpfs (unless the
checkout itself lives under /tmp). The block runs in a scratch directory (in that
tmpfs, else ``scratch``) where
``examples`` points into the checkout, so files it writes (``data/``, Redis's
append-only file) stay out of the checkout. The ``cometql`` on the PATH is the
one under test.

Modes:
- ``run``: a default ``cometql serve`` (as ``make serve`` starts it) is up on
  3300/8087; the block runs with ``bash -e -o pipefail`` (or ``php``) and must
  exit 0;
- ``serves``: the block starts the servers itself and does not return (a
  server in the foreground); once 3300 and 8087 accept, ``PROBE`` runs against
  them and must succeed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .blocks import REPO

TIMEOUT = 180  # hang guard for one block (the slowest starts three nodes and Redis)
PROBE = ("mysql -h 127.0.0.1 -P 3300 -u root -pCometQLPassword CometQL_v1 -e "
         "\"INSERT INTO pipes_messages (name, event, message) VALUES ('chat', 'new', 'hi'); SELECT * FROM pipes\"")

_WAIT_PORT = """
wait_port() {  # until something accepts on 127.0.0.1:$1 (bounded)
  for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on port $1" >&2; return 1
}
"""

_SCRIPT = _WAIT_PORT + """
set -e
ip link set lo up
work="$DOC_SCRATCH"
if [ "$DOC_PRIVATE_TMP" = 1 ]; then mount -t tmpfs tmpfs /tmp; work=/tmp/doc-work; fi
mkdir -p "$work" && cd "$work"
ln -sfn "$DOC_REPO/examples" examples
printf '%s' "$DOC_BLOCK" > ./doc-block
case "$DOC_MODE" in
  run)
    cometql serve --data-dir ./server-data > ./server.log 2>&1 &
    wait_port 3300 && wait_port 8087 || { cat ./server.log >&2; exit 1; }
    $DOC_INTERPRETER ./doc-block
    ;;
  serves)
    $DOC_INTERPRETER ./doc-block > ./block.log 2>&1 &
    wait_port 3300 && wait_port 8087 || { cat ./block.log >&2; exit 1; }
    bash -e -o pipefail -c "$DOC_PROBE"
    ;;
esac
"""


def run_block(text: str, *, mode: str, interpreter: str, scratch: Path,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    bin_dir = str(Path(sys.executable).parent)  # the cometql (and python3) under test
    base = {k: v for k, v in os.environ.items() if not k.startswith("COMETQL_")}
    full_env = {
        **base,
        "PATH": f"{bin_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "DOC_BLOCK": text, "DOC_MODE": mode, "DOC_INTERPRETER": interpreter, "DOC_PROBE": PROBE,
        "DOC_SCRATCH": str(scratch), "DOC_REPO": str(REPO),
        "DOC_PRIVATE_TMP": "0" if REPO.is_relative_to("/tmp") else "1",
        **(env or {}),
    }
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    return subprocess.run([unshare, "--net", "--pid", "--mount", "--fork", "--kill-child", "--mount-proc",
                           "bash", "-c", _SCRIPT], env=full_env, capture_output=True, text=True, timeout=TIMEOUT)
