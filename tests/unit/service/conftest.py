"""Service tests: real servers (see tests/unit/conftest.py) and a request helper."""
import http.client
import json

import pytest


@pytest.fixture
def serve(running_service):
    """serve(**env) -> a running SSMServer on an ephemeral loopback port."""
    return running_service


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
