"""Unit tests: make service/src and tools/ importable, run real service instances."""
import contextlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT / "service" / "src", ROOT / "tools"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from supersmartmatch_service.config import Config  # noqa: E402
from supersmartmatch_service.server import running_server  # noqa: E402


@pytest.fixture
def running_service():
    """running_service(**env) -> a running SSMServer on an ephemeral loopback port."""
    with contextlib.ExitStack() as stack:
        def _serve(**env):
            env = {"SSM_PORT": "0", "SSM_BIND": "127.0.0.1", "SSM_VERSION": "1.0.0", **env}
            return stack.enter_context(running_server(Config.from_env(env)))
        yield _serve
