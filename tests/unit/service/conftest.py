"""Service tests: make service/src and tools/ importable, run real servers."""
import contextlib
import http.client
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
for path in (ROOT / "service" / "src", ROOT / "tools"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from supersmartmatch_service.config import Config  # noqa: E402
from supersmartmatch_service.server import running_server  # noqa: E402


@pytest.fixture
def serve():
    """serve(**env) -> a running SSMServer on an ephemeral loopback port."""
    with contextlib.ExitStack() as stack:
        def _serve(**env):
            env = {"SSM_PORT": "0", "SSM_BIND": "127.0.0.1", "SSM_VERSION": "1.0.0", **env}
            return stack.enter_context(running_server(Config.from_env(env)))
        yield _serve


def request(server, method, path, body=None, raw=None, headers=None):
    """One request on a new connection -> (status, headers, decoded body)."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        conn.request(method, path, body=data, headers=headers or {})
        resp = conn.getresponse()
        payload = resp.read()
        ctype = resp.getheader("Content-Type", "")
        decoded = json.loads(payload) if ctype.startswith("application/json") and payload else payload.decode()
        return resp.status, resp.headers, decoded
    finally:
        conn.close()


@pytest.fixture
def call():
    return request
