"""Verify the app role: both slot units run their release and /health agrees."""
import json

import pytest

SLOTS = [("blue", 5062, "1.0.0"), ("green", 5070, "2.0.0")]


@pytest.mark.parametrize("slot,port,version", SLOTS)
def test_unit_running_and_enabled(host, slot, port, version):
    unit = host.service(f"supersmartmatch-{slot}.service")
    assert unit.is_running
    assert unit.is_enabled


@pytest.mark.parametrize("slot,port,version", SLOTS)
def test_health_reports_release(host, slot, port, version):
    out = host.check_output(f"curl -sf http://127.0.0.1:{port}/health")
    health = json.loads(out)
    assert health == {"status": "ok", "version": version, "slot": slot, "up": 1}


@pytest.mark.parametrize("slot,port,version", SLOTS)
def test_unit_runs_the_release_as_service_user(host, slot, port, version):
    unit = host.file(f"/etc/systemd/system/supersmartmatch-{slot}.service")
    assert unit.contains(f"ExecStart=/opt/supersmartmatch/releases/{version}/bin/supersmartmatch-service")
    assert unit.contains("^User=supersmartmatch$")
    assert unit.contains("^NoNewPrivileges=yes$")
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening
    pid = host.check_output(f"systemctl show -p MainPID --value supersmartmatch-{slot}.service")
    assert host.check_output(f"ps -o user= -p {pid}") == "supersmartmatch"


@pytest.mark.parametrize("slot,port,version", SLOTS)
def test_env_file(host, slot, port, version):
    env = host.file(f"/etc/supersmartmatch/{slot}.env")
    assert env.user == "root"
    assert env.group == "supersmartmatch"
    assert env.mode == 0o640
    assert env.contains(f"^SSM_PORT={port}$")
    assert env.contains(f"^SSM_SLOT={slot}$")
    assert env.contains("^SSM_FAULT_UNHEALTHY=0$")


def test_releases_installed(host):
    for _slot, _port, version in SLOTS:
        python = f"/opt/supersmartmatch/releases/{version}/bin/python"
        out = host.check_output(
            f"{python} -c \"import importlib.metadata as m; print(m.version('supersmartmatch_service'))\"")
        assert out == version
        assert host.file(f"/opt/supersmartmatch/artifacts/supersmartmatch_service-{version}-py3-none-any.whl").exists
