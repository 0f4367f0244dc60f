"""Decisions of the vault role (plugins/module_utils/vault_cluster.py), table-driven."""
import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import vault_cluster as vc


@pytest.mark.parametrize("status, body, expected", [
    (200, {"initialized": True, "sealed": False, "standby": False}, "active"),
    (429, {"initialized": True, "sealed": False, "standby": True}, "standby"),
    (473, {}, "standby"),
    (503, {"initialized": True, "sealed": True}, "sealed"),
    (501, {"initialized": False, "sealed": True}, "uninitialized"),
    ("429", None, "standby"),
    (200, {"sealed": True}, "sealed"),
    (200, {"initialized": False}, "uninitialized"),
    (-1, None, "unreachable"),
    (None, None, "unreachable"),
    ("x", None, "unreachable"),
    (500, {}, "unreachable"),
])
def test_node_state(status, body, expected):
    assert vc.node_state(status, body) == expected


def test_node_states_from_looped_probe():
    results = [{"item": "n1", "status": 200, "json": {}}, {"item": "n2", "status": 429, "json": {}},
               {"item": "n3", "status": -1, "msg": "connection refused"}]
    assert vc.node_states(results) == {"n1": "active", "n2": "standby", "n3": "unreachable"}


def test_node_states_refuses_other_input():
    with pytest.raises(vc.VaultDecisionError, match="looped health probe"):
        vc.node_states([{"status": 200}])


HEALTHY = {"n1": "standby", "n2": "active", "n3": "standby"}


@pytest.mark.parametrize("states, changed, expected", [
    (HEALTHY, ["n1", "n2", "n3"], ["n1", "n3", "n2"]),
    (HEALTHY, ["n2", "n3"], ["n3", "n2"]),
    (HEALTHY, ["n2"], ["n2"]),
    (HEALTHY, ["n3", "n1"], ["n1", "n3"]),
    (HEALTHY, [], []),
    (HEALTHY, ["other"], []),
    ({"n1": "sealed", "n2": "active", "n3": "standby"}, [], []),
    ({"a": "active"}, ["a"], ["a"]),
])
def test_restart_order(states, changed, expected):
    assert vc.restart_order(states, changed) == expected


@pytest.mark.parametrize("states, message", [
    ({"n1": "sealed", "n2": "active", "n3": "standby"}, "n1 are sealed"),
    ({"n1": "standby", "n2": "active", "n3": "unreachable"}, "n3 are unreachable"),
    ({"n1": "uninitialized", "n2": "active", "n3": "standby"}, "n1 are uninitialized"),
    ({"n1": "standby", "n2": "standby", "n3": "standby"}, "0 active"),
    ({"n1": "active", "n2": "active", "n3": "standby"}, "2 active"),
])
def test_restart_refused_unless_every_node_serves(states, message):
    with pytest.raises(vc.VaultDecisionError, match=message):
        vc.restart_order(states, ["n1", "n2", "n3"])


def test_policy_reads_only_its_paths():
    text = vc.policy_hcl("secret", ["app/app1"])
    assert 'path "secret/data/app/app1" {\n  capabilities = ["read"]\n}' in text
    assert 'path "secret/data/app/app1/*"' in text
    assert 'path "secret/metadata/app/app1"' in text
    assert "app2" not in text
    assert text.count("path ") == 4


def test_policy_capabilities():
    text = vc.policy_hcl("kv", ["a", "b/c"], ["read", "create", "update"])
    assert 'path "kv/data/b/c/*" {\n  capabilities = ["read", "create", "update"]\n}' in text
    assert text.count("path ") == 8


@pytest.mark.parametrize("mount, paths, caps, message", [
    ("secret", [], ("read",), "non-empty list"),
    ("secret", "app/app1", ("read",), "non-empty list"),
    ("secret", ["app/../root"], ("read",), "invalid KV path"),
    ("secret", ["app/app1\"}\npath \"*"], ("read",), "invalid KV path"),
    ("secret", ["app/app1\n"], ("read",), "invalid KV path"),
    ("secret", ["/app"], ("read",), "invalid KV path"),
    ("sec ret", ["app"], ("read",), "invalid KV mount"),
    ("secret", ["app"], ("sudo",), "invalid capabilities"),
    ("secret", ["app"], (), "invalid capabilities"),
])
def test_policy_refuses_bad_input(mount, paths, caps, message):
    with pytest.raises(vc.VaultDecisionError, match=message):
        vc.policy_hcl(mount, paths, caps)


def _report(parse_status="ok", warnings=None, message=None, extra=None):
    parse = {"name": "Parse Configuration", "status": parse_status}
    if warnings:
        parse["warnings"] = warnings
    if message:
        parse["message"] = message
    children = [{"name": "Check Operating System", "status": "ok", "children": [
        {"name": "Check Open File Limits", "status": "ok", "message": "Open file limits are set to 20000."}]}, parse]
    children += extra or []
    return {"name": "Vault Diagnose", "status": "warn", "children": children}


@pytest.mark.parametrize("report, expected", [
    (_report(), []),
    (_report(extra=[{"name": "Check Storage", "status": "warn", "message": "Raft backend files are owned by root"},
                    {"name": "Check Service Discovery", "status": "invalid"}]), []),
    (_report(parse_status="fail", message="At 14:2: object expected closing RBRACE got: EOF."),
     ["Vault Diagnose > Parse Configuration: At 14:2: object expected closing RBRACE got: EOF."]),
    (_report(warnings=["Unknown or unsupported field disable_mlok found in configuration at c.hcl:11:1."]),
     ["Vault Diagnose > Parse Configuration: Unknown or unsupported field disable_mlok found in configuration at c.hcl:11:1."]),
    (_report(extra=[{"name": "Check Storage", "status": "error", "children": [
        {"name": "Create Storage Backend", "status": "fail", "message": "bad path"}]}]),
     ["Vault Diagnose > Check Storage: error", "Vault Diagnose > Check Storage > Create Storage Backend: bad path"]),
    # The running server holds the port: diagnose's bind test is not about the file.
    (_report(extra=[{"name": "Start Listeners", "status": "fail", "children": [
        {"name": "Create Listeners", "status": "fail",
         "message": "listen tcp4 0.0.0.0:8200: bind: address already in use"}]}]), []),
])
def test_config_problems(report, expected):
    assert vc.config_problems(report) == expected
