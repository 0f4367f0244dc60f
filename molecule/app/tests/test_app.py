"""Verify the app role: both slot units run their release and /health agrees."""
import json
import stat
from pathlib import Path

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
    expected = {"status": "ok", "version": version, "slot": slot, "up": 1}
    if slot == "green":  # deployed with app_database and app_cache
        expected.update(database="ok", cache="ok")
    assert health == expected


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


def test_data_tier_secrets_only_in_password_files(host):
    env = host.file("/etc/supersmartmatch/green.env")
    assert env.contains("^SSM_DATABASE_HOST=127.0.0.1$")
    assert env.contains("^SSM_DATABASE_PASSWORD_FILE=/etc/supersmartmatch/green-database.password$")
    assert env.contains("^SSM_CACHE_NODES=127.0.0.1:7000$")
    assert env.contains("^SSM_CACHE_PASSWORD_FILE=/etc/supersmartmatch/green-cache.password$")
    assert env.contains("^SSM_CACHE_TTL=120$")
    assert not env.contains("secret")
    assert not host.file("/etc/supersmartmatch/blue.env").contains("SSM_DATABASE")
    for name, secret in (("database", "molecule-db-secret"), ("cache", "molecule-cache-secret")):
        pw = host.file(f"/etc/supersmartmatch/green-{name}.password")
        assert (pw.user, pw.group, pw.mode) == ("root", "supersmartmatch", 0o640)
        assert pw.content_string.strip() == secret
    assert not host.file("/etc/supersmartmatch/blue-database.password").exists
    unit = host.file("/etc/systemd/system/supersmartmatch-green.service")
    assert not unit.contains("secret")
    pid = host.check_output("systemctl show -p MainPID --value supersmartmatch-green.service")
    assert "secret" not in host.check_output(f"ps -o args= -p {pid}")


def test_green_venv_sees_the_system_drivers(host):
    assert host.file("/opt/supersmartmatch/releases/2.0.0/pyvenv.cfg").contains("^include-system-site-packages = true$")
    assert host.file("/opt/supersmartmatch/releases/1.0.0/pyvenv.cfg").contains("^include-system-site-packages = false$")
    host.run_test("/opt/supersmartmatch/releases/2.0.0/bin/python -c 'import psycopg2, redis.cluster'")


def test_green_stores_feedback_and_caches_matches(host):
    case = json.dumps({"candidate": {"id": "molecule-cand", "skills": ["python"], "experience_years": 3,
                                     "location": "paris"},
                       "offers": [{"id": "o1", "required_skills": ["python"], "min_experience": 1,
                                   "location": "paris"}]})
    for _attempt in range(2):
        answer = json.loads(host.check_output(
            f"curl -sf -H 'Content-Type: application/json' -d '{case}' http://127.0.0.1:5070/api/v2/match"))
    feedback = json.dumps({"candidate_id": "molecule-cand", "offer_id": "o1", "correct": True,
                           "feedback_token": answer["feedback_token"]})
    host.check_output(f"curl -sf -d '{feedback}' http://127.0.0.1:5070/api/v2/feedback")
    count = host.check_output("runuser -u postgres -- psql -tA -d supersmartmatch -c "
                              "\"SELECT count(*) FROM ssm_feedback WHERE candidate_id = 'molecule-cand' AND slot = 'green'\"")
    assert int(count) >= 1
    # match records are written by a background writer: allow it a few seconds
    cached = host.check_output(
        "for i in $(seq 1 50); do n=$(runuser -u postgres -- psql -tA -d supersmartmatch -c "
        "\"SELECT count(*) FROM ssm_matches WHERE candidate_id = 'molecule-cand' AND cached\"); "
        "[ \"$n\" -ge 1 ] && break; sleep 0.1; done; echo $n")
    assert int(cached) >= 1
    metrics = host.check_output("curl -sf http://127.0.0.1:5070/metrics")
    assert 'ssm_cache_requests_total{version="2.0.0",slot="green",result="hit"}' in metrics


CONTROLLER_KEY = Path(__file__).resolve().parents[2] / ".work" / "secrets" / "feedback_hmac"
FEEDBACK_CASE = {"candidate": {"id": "molecule-fb", "skills": ["python"], "experience_years": 3, "location": "paris"},
                 "offers": [{"id": "o1", "required_skills": ["python"], "min_experience": 1, "location": "paris"}]}


def test_feedback_key_generated_on_the_controller_and_delivered_to_both_slots(host):
    """One key for the fleet, generated once (0600 on the controller), in 0640 files, never in env/unit/argv."""
    assert stat.S_IMODE(CONTROLLER_KEY.stat().st_mode) == 0o600
    key = CONTROLLER_KEY.read_text().split()[0]  # the password lookup may append " salt=..."
    assert len(key) == 64
    for slot, _port, _version in SLOTS:
        key_file = host.file(f"/etc/supersmartmatch/{slot}-feedback.key")
        assert (key_file.user, key_file.group, key_file.mode) == ("root", "supersmartmatch", 0o640)
        assert key_file.content_string == key + "\n"
        env = host.file(f"/etc/supersmartmatch/{slot}.env")
        assert env.contains(f"^SSM_FEEDBACK_KEY_FILE=/etc/supersmartmatch/{slot}-feedback.key$")
        assert env.contains("^SSM_FEEDBACK_TTL=3600$") and not env.contains(key)
        assert not host.file(f"/etc/systemd/system/supersmartmatch-{slot}.service").contains(key)
        pid = host.check_output(f"systemctl show -p MainPID --value supersmartmatch-{slot}.service")
        assert key not in host.check_output(f"cat /proc/{pid}/cmdline /proc/{pid}/environ | tr '\\0' ' '")


def _post(host, port, path, body):
    """POST JSON from inside the container -> (status, decoded body)."""
    out = host.check_output("curl -s -w '\\n%%{http_code}' -H 'Content-Type: application/json' -d %s %s",
                            json.dumps(body), f"http://127.0.0.1:{port}{path}")
    payload, _sep, status = out.rpartition("\n")
    return int(status), json.loads(payload)


def test_slots_accept_each_others_tokens_and_refuse_forged_ones(host):
    answer = _post(host, 5062, "/api/v2/match", FEEDBACK_CASE)[1]
    rating = {"candidate_id": "molecule-fb", "offer_id": "o1", "correct": True, "feedback_token": answer["feedback_token"]}
    forged = dict(rating, feedback_token=answer["feedback_token"][:-4] + ("AAAA" if not answer["feedback_token"].endswith("AAAA") else "BBBB"))
    status, body = _post(host, 5070, "/api/v2/feedback", forged)
    assert status == 401 and body["reason"] == "forged"
    # blue's token on green (same fleet key): taken, but not counted in green's (2.0.0) precision
    status, body = _post(host, 5070, "/api/v2/feedback", rating)
    assert status == 202 and body["counted"] is False
    assert _post(host, 5070, "/api/v2/feedback", rating)[0] == 409
    answer = _post(host, 5070, "/api/v2/match", FEEDBACK_CASE)[1]
    status, body = _post(host, 5070, "/api/v2/feedback", dict(rating, feedback_token=answer["feedback_token"]))
    assert status == 202 and body["counted"] is True
    metrics = host.check_output("curl -sf http://127.0.0.1:5070/metrics")
    assert 'ssm_feedback_not_counted_total{version="2.0.0",slot="green",reason="forged"} 1' in metrics
    assert 'ssm_feedback_not_counted_total{version="2.0.0",slot="green",reason="other_version"} 1' in metrics
