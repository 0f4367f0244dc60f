"""Verify the app role: both slot units run their release and /health agrees."""
import json
import re

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
    # the real flow: the feedback sends back the token of the match answer it rates (a cache hit has one too)
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


FEEDBACK_KEY_FILES = {slot: f"/etc/supersmartmatch/{slot}-feedback.key" for slot in ("blue", "green")}


def test_feedback_key_only_in_its_file_shared_by_the_slots(host):
    contents = set()
    for slot, path in FEEDBACK_KEY_FILES.items():
        key = host.file(path)
        assert (key.user, key.group, key.mode) == ("root", "supersmartmatch", 0o640)
        contents.add(key.content_string)
        env = host.file(f"/etc/supersmartmatch/{slot}.env")
        assert env.contains(f"^SSM_FEEDBACK_KEY_FILE={path}$")
        assert not env.contains("molecule-feedback-key")
        assert not host.file(f"/etc/systemd/system/supersmartmatch-{slot}.service").contains("molecule-feedback-key")
        pid = host.check_output(f"systemctl show -p MainPID --value supersmartmatch-{slot}.service")
        assert "molecule-feedback-key" not in host.check_output(f"ps -o args= -p {pid}")
        assert "molecule-feedback-key" not in host.check_output(f"cat /proc/{pid}/environ | tr '\\0' '\\n'")
    assert len(contents) == 1 and contents.pop().strip().startswith("molecule-feedback-key")


def _shared_rows(host):
    return int(host.check_output("runuser -u postgres -- psql -tA -d supersmartmatch -c "
                                 "\"SELECT count(*) FROM ssm_feedback WHERE candidate_id = 'molecule-shared'\""))


def _forged_count(host):
    metrics = host.check_output("curl -sf http://127.0.0.1:5070/metrics")
    found = re.findall(r'^ssm_feedback_rejected_total\{version="2\.0\.0",slot="green",reason="forged"\} (\d+)$',
                       metrics, re.M)
    assert len(found) == 1, metrics
    return int(found[0])


def _post_feedback(host, body):
    return host.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' -d '{json.dumps(body)}'"
                             " http://127.0.0.1:5070/api/v2/feedback")


def test_feedback_of_one_slot_verifies_on_the_other_and_forgeries_are_refused(host):
    """Both slots share app_feedback_key: a token of blue's answer is accepted by green; a forged one
    is refused (401), counted apart and not stored."""
    case = json.dumps({"candidate": {"id": "molecule-shared", "skills": ["python"], "experience_years": 3,
                                     "location": "paris"},
                       "offers": [{"id": "o1", "required_skills": ["python"], "min_experience": 1,
                                   "location": "paris"}]})
    rows, forged_before = _shared_rows(host), _forged_count(host)
    answer = json.loads(host.check_output(
        f"curl -sf -H 'Content-Type: application/json' -d '{case}' http://127.0.0.1:5062/api/v2/match"))
    feedback = {"candidate_id": "molecule-shared", "offer_id": "o1", "correct": True,
                "feedback_token": answer["feedback_token"]}
    assert _post_feedback(host, feedback) == "202"
    assert _post_feedback(host, dict(feedback, offer_id="o2")) == "401"
    assert _shared_rows(host) == rows + 1
    assert _forged_count(host) == forged_before + 1
