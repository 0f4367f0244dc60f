"""The vault role without containers: preflight refusals (nothing changes) and templates vs expected files."""
from pathlib import Path

import pytest

from rolerun import ensure_collection_link, flat, render_templates, run_role

EXPECTED = Path(__file__).resolve().parent / "expected" / "vault"
THREE = {"vault": ["v1", "v2", "v3"]}


@pytest.fixture(autouse=True, scope="module")
def collection_link():
    ensure_collection_link()


@pytest.mark.parametrize("groups, extra, message", [
    ({"vault": ["v1", "v2"]}, {}, "raft needs an odd number of nodes (1, 3, 5 or 7): group hosts v1, v2"),
    (THREE, {"vault_distribution": "consul"}, "vault_distribution must be openbao"),
    (THREE, {"vault_distribution": "hashicorp", "vault_hashicorp_zip_url": "https://example.test/vault.zip"},
     "vault_distribution must be openbao"),
    (THREE, {"vault_distribution": "hashicorp", "vault_hashicorp_zip_url": "http://example.test/vault.zip",
             "vault_hashicorp_zip_sha256": "a" * 64}, "vault_distribution must be openbao"),
    (THREE, {"vault_openbao_wheel_sha256": "ABC"}, "vault_distribution must be openbao"),
    (THREE, {"vault_log_level": "loud"}, "Invalid setting"),
    (THREE, {"vault_node_address": "v1\"\nui = true"}, "Invalid setting"),
    (THREE, {"vault_api_port": 8201}, "Invalid setting"),
    (THREE, {"vault_init_key_threshold": 6}, "Initialisation: vault_init_key_shares 1-10"),
    (THREE, {"vault_init_key_shares": 3, "vault_init_key_threshold": 1}, "Initialisation"),
    (THREE, {"vault_init_pgp_keys": ["a", "b"]}, "one base64 public key per share"),
    (THREE, {"vault_root_token_after_bootstrap": "print"}, "vault_root_token_after_bootstrap revoke or keep"),
    (THREE, {"vault_approles": [{"name": "ssm-admin", "paths": ["x"]}]}, "ssm-admin is reserved"),
    (THREE, {"vault_approles": [{"name": "app1"}]}, "vault_approles: a list of {name, paths}"),
    (THREE, {"vault_approles": [{"name": "app1", "paths": ["app/../root"]}]}, "invalid KV path 'app/../root'"),
    (THREE, {"vault_tls_mode": "provided"}, "give vault_tls_cert_src, vault_tls_key_src and vault_tls_ca_src"),
], ids=["two-nodes", "distribution", "hashicorp-no-sha", "hashicorp-http", "bad-wheel-sha", "log-level",
        "address-injection", "same-ports", "threshold", "threshold-1", "pgp-count", "root-token", "reserved-role",
        "role-without-paths", "role-bad-path", "tls-provided"])
def test_preflight_refuses(tmp_path, groups, extra, message):
    rc, out = run_role(tmp_path, "vault", groups, "vault", extra_vars=extra, tasks_from="preflight.yml")
    assert rc != 0, out
    assert message in flat(out), out


def test_preflight_refuses_before_any_change(tmp_path):
    rc, out = run_role(tmp_path, "vault", {"vault": ["v1", "v2"]}, "vault")
    assert rc != 0, out
    assert "Install | Create the service group" not in out
    assert "changed=0" in out


def test_good_inventory_passes_the_preflight(tmp_path):
    extra = {"vault_approles": [{"name": "app1", "paths": ["app/app1"]}]}
    rc, out = run_role(tmp_path, "vault", THREE, "vault", extra_vars=extra, tasks_from="preflight.yml")
    assert rc == 0, out
    assert "failed=0" in out


@pytest.mark.parametrize("distribution, extra, suffix", [
    ("openbao", {}, "openbao"),
    ("hashicorp", {"vault_hashicorp_zip_url": "https://example.test/vault_1.18.0_linux_amd64.zip",
                   "vault_hashicorp_zip_sha256": "a" * 64, "vault_log_level": "warn"}, "hashicorp"),
])
def test_templates_match_expected_files(tmp_path, distribution, extra, suffix):
    extra = dict({"vault_distribution": distribution}, **extra)
    groups = {"vault": ["v1", "v2", "v3"]}
    host_vars = None
    rendered = render_templates(tmp_path, "vault", groups, "v1", ["vault.hcl.j2", "vault.service.j2"], extra)
    del host_vars
    for name, text in rendered.items():
        expected = EXPECTED / ("%s.%s" % (name[:-3], suffix))
        assert text == expected.read_text(), "%s differs from %s" % (name, expected)
