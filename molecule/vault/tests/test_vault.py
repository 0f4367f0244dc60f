"""Verify the vault role on vault-node1..3: HA layout, TLS, secret handling, KV, AppRoles, failover,
rolling restart under writes, unseal of a restarted node.

The tests talk to the nodes' API from the controller (hvac, requests) with the lab CA of the scenario
(TLS verified, server name checked against the node's certificate). The root token is read from the init
file in the ephemeral directory and given to community.hashi_vault through a vars file (mode 0600), never
on a command line. The tests run in file order: the failover, the rolling restart and the sealed-node
re-run come last.
"""
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time

import hvac
import pytest
import requests
import testinfra

ROOT = os.environ.get("MOLECULE_PROJECT_DIRECTORY",
                      os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from labwait import poll  # noqa: E402

NODES = ["vault-node1", "vault-node2", "vault-node3"]
EPHEMERAL = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "")
INIT_FILE = os.path.join(EPHEMERAL, "vault-init.json")
CA = os.path.join(EPHEMERAL, "pki", "ca.crt")
FAILOVER_LIMIT = 30.0


def host(name):
    return testinfra.get_host("docker://" + name)


def address(name):
    out = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name],
                         capture_output=True, text=True, check=True).stdout.strip()
    return out


def url(name):
    return "https://%s:8200" % address(name)


def client(name, token=None, timeout=5):
    return hvac.Client(url=url(name), token=token, verify=CA, timeout=timeout)


@pytest.fixture(scope="module")
def init():
    with open(INIT_FILE, encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="module")
def root(init):
    return init["root_token"]


def health(name, timeout=3):
    try:
        return requests.get(url(name) + "/v1/sys/health", verify=CA, timeout=timeout).status_code
    except requests.RequestException:
        return None


def statuses():
    return {name: health(name) for name in NODES}


def active_node():
    found = [name for name, code in statuses().items() if code == 200]
    return found[0] if len(found) == 1 else None


def secrets_of(init):
    values = list(init.get("keys", [])) + list(init.get("keys_base64", []))
    if init.get("root_token"):
        values.append(init["root_token"])
    assert values
    return values


def run_role(extra_vars=None, timeout=600):
    """Re-run the scenario's converge with the molecule inventory (and extra vars from a 0600 file)."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_LOG_PATH", None)
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            os.path.join(os.environ["MOLECULE_SCENARIO_DIRECTORY"], "converge.yml")]
    if extra_vars:
        path = os.path.join(EPHEMERAL, "verify-extra-vars.json")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(extra_vars, handle)
        argv += ["-e", "@" + path]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def test_init_file_is_0600(init):
    mode = stat.S_IMODE(os.stat(INIT_FILE).st_mode)
    assert mode == 0o600, oct(mode)
    assert len(init["keys_base64"]) == 5
    assert init["keys_base64"][0]


def test_one_active_two_standbys():
    codes = poll(lambda: sorted(statuses().values()) == [200, 429, 429] and statuses(), 30).value
    assert codes, statuses()


def test_ha_status_lists_three_nodes(root):
    data = client(NODES[0], root).sys.read_leader_status()
    assert data["ha_enabled"] is True
    ha = requests.get(url(NODES[0]) + "/v1/sys/ha-status", headers={"X-Vault-Token": root}, verify=CA,
                      timeout=5).json()
    assert sorted(node["hostname"] for node in ha["nodes"]) == NODES
    assert sum(1 for node in ha["nodes"] if node["active_node"]) == 1


def test_tls_is_required():
    """Plain HTTP on 8200 gets no answer from the API (the Go TLS server answers 400 to plain HTTP)."""
    for name in NODES:
        try:
            resp = requests.get("http://%s:8200/v1/sys/health" % address(name), timeout=3)
            assert resp.status_code == 400 and "initialized" not in resp.text, resp.text
        except requests.ConnectionError:
            pass
        # and the certificate chains to the lab CA (requests verifies it)
        assert requests.get(url(name) + "/v1/sys/health", verify=CA, timeout=3).status_code in (200, 429)


def test_service_runs_as_vault_with_audit_file_0600():
    for name in NODES:
        node = host(name)
        assert node.service("vault").is_running
        assert node.service("vault").is_enabled
        user = node.check_output("ps -o user= -C bao").split()
        assert user and set(user) == {"vault"}, user
        audit = node.file("/var/log/vault/audit.log")
        assert audit.exists, name
        assert audit.mode == 0o600, oct(audit.mode)
        assert node.file("/usr/local/bin/bao").mode == 0o755


def test_no_secret_in_ansible_output_journal_or_ps(init):
    secrets = secrets_of(init)
    with open(os.path.join(EPHEMERAL, "ansible.log"), encoding="utf-8", errors="replace") as handle:
        log = handle.read()
    assert "Initialise the cluster on the first node" in log  # the log covers the converge
    for secret in secrets:
        assert secret not in log
    for name in NODES:
        node = host(name)
        journal = node.check_output("journalctl --no-pager -o cat")
        processes = node.check_output("ps axeww")
        for secret in secrets:
            assert secret not in journal, name
            assert secret not in processes, name


def test_kv_write_and_read_through_community_hashi_vault(root, tmp_path):
    play = tmp_path / "kv.yml"
    play.write_text("""\
- name: KV through community.hashi_vault
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write
      community.hashi_vault.vault_kv2_write:
        url: "{{ vault_url }}"
        ca_cert: "{{ vault_ca }}"
        auth_method: token
        token: "{{ vault_token }}"
        engine_mount_point: secret
        path: molecule/kv
        data:
          answer: "42"
      no_log: true
    - name: Read
      community.hashi_vault.vault_kv2_get:
        url: "{{ vault_url }}"
        ca_cert: "{{ vault_ca }}"
        auth_method: token
        token: "{{ vault_token }}"
        engine_mount_point: secret
        path: molecule/kv
      register: read
      no_log: true
    - name: Show the value read
      ansible.builtin.debug:
        msg: "answer={{ read.secret.answer }}"
""", encoding="utf-8")
    varfile = tmp_path / "vars.json"
    fd = os.open(str(varfile), os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump({"vault_url": url(poll(active_node, 30).value), "vault_ca": CA, "vault_token": root,
                   "ansible_python_interpreter": sys.executable}, handle)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_LOG_PATH", None)
    proc = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", "@" + str(varfile), str(play)],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "answer=42" in out
    assert root not in out


def test_approle_reads_its_own_path_and_is_denied_another(root):
    # Through the active node: a standby answers an AppRole login from its own (possibly lagging) copy
    # of the raft log, so a secret ID created a moment ago may not be known there yet.
    active = poll(active_node, 30).value
    admin = client(active, root)
    admin.secrets.kv.v2.create_or_update_secret(path="app1/db", secret={"password": "one"}, mount_point="secret")
    admin.secrets.kv.v2.create_or_update_secret(path="app2/db", secret={"password": "two"}, mount_point="secret")
    role_id = admin.auth.approle.read_role_id("app1")["data"]["role_id"]
    secret_id = admin.auth.approle.generate_secret_id("app1")["data"]["secret_id"]
    app = client(active)
    app.auth.approle.login(role_id=role_id, secret_id=secret_id)
    own = app.secrets.kv.v2.read_secret_version(path="app1/db", mount_point="secret", raise_on_deleted_version=True)
    assert own["data"]["data"] == {"password": "one"}
    with pytest.raises(hvac.exceptions.Forbidden):
        app.secrets.kv.v2.read_secret_version(path="app2/db", mount_point="secret", raise_on_deleted_version=True)
    with pytest.raises(hvac.exceptions.Forbidden):
        app.secrets.kv.v2.create_or_update_secret(path="app1/db", secret={"password": "x"}, mount_point="secret")


def write_any(root, note, timeout=2):
    """Write through the first node that accepts it (as a client with the three endpoints does)."""
    for name in NODES:
        try:
            client(name, root, timeout=timeout).secrets.kv.v2.create_or_update_secret(
                path="molecule/probe", secret={"note": note}, mount_point="secret")
            return name
        except Exception:  # noqa: BLE001 - any failure means: try the next node
            continue
    return None


def test_failover_new_active_within_30s_and_old_rejoins(root):
    old = poll(active_node, 30).value
    assert old, statuses()
    subprocess.run(["docker", "pause", old], check=True)
    try:
        start = time.monotonic()
        new = poll(lambda: [n for n in NODES if n != old and health(n, 2) == 200], FAILOVER_LIMIT, delay=0.5).value
        elapsed = time.monotonic() - start
        assert new, statuses()
        assert elapsed <= FAILOVER_LIMIT
        assert poll(lambda: write_any(root, "after-failover"), 15).value
    finally:
        subprocess.run(["docker", "unpause", old], check=True)
    assert poll(lambda: health(old) == 429, 60).value, statuses()
    assert sorted(statuses().values()) == [200, 429, 429]


def test_rolling_restart_keeps_writes_and_ends_unsealed(init, root):
    failures, writes, stop = [], [], threading.Event()

    def probe():
        while not stop.is_set():
            tick = time.monotonic()
            node = write_any(root, "probe-%d" % len(writes), timeout=1)
            (writes if node else failures).append(time.strftime("%H:%M:%S"))
            stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    try:
        rc, out = run_role({"vault_log_level": "debug"})
    finally:
        stop.set()
        thread.join(10)
    assert rc == 0, out[-5000:]
    restarts = re.findall(r"TASK \[[^]]*Restart \| Restart the service on (vault-node\d)", out)
    assert sorted(restarts) == NODES, restarts
    assert len(set(restarts)) == 3
    for secret in secrets_of(init):
        assert secret not in out
    assert writes and not failures, "failed ticks %s of %d" % (failures, len(writes) + len(failures))
    assert sorted(statuses().values()) == [200, 429, 429], statuses()
    for name in NODES:
        assert 'log_level     = "debug"' in host(name).file("/etc/vault.d/vault.hcl").content_string


def test_restarted_sealed_node_is_unsealed_by_a_rerun(init):
    standby = next(n for n, code in statuses().items() if code == 429)
    host(standby).run_expect([0], "systemctl restart vault")
    assert poll(lambda: health(standby) == 503, 30).value, statuses()
    rc, out = run_role({"vault_log_level": "debug"})
    assert rc == 0, out[-5000:]
    assert "Restart | Restart the service" not in out
    assert poll(lambda: health(standby) == 429, 30).value, statuses()
    for secret in secrets_of(init):
        assert secret not in out
