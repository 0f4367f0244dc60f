"""Preflight of the nginx role's edge settings (TLS, WAF, rate limit, paths), without containers.

Each bad value is refused before anything changes, with a message naming it;
the control case passes. Runs the role's preflight task file in check mode on a
local-connection host (nothing is installed).
"""
import pytest

from rolerun import flat, link_collection, run_tasks

GROUPS = {"lb": ["lb1"], "app": ["app1"]}


@pytest.fixture(autouse=True, scope="module")
def collection_link():
    link_collection()


@pytest.mark.parametrize("overrides, message", [
    ({"nginx_tls_protocols": "TLSv1.1 TLSv1.2"}, "nginx_tls_protocols may name TLSv1.2 and TLSv1.3 only"),
    ({"nginx_tls_ciphers": "ECDHE-RSA-AES128-GCM-SHA256;\n  return 200"}, "nginx_tls_ciphers must be an OpenSSL cipher list"),
    ({"nginx_waf_mode": "Off"}, "nginx_waf_mode must be On or DetectionOnly (got Off)"),
    ({"nginx_waf_paranoia_level": 5}, "nginx_waf_paranoia_level must be 1 to 4 (got 5)"),
    ({"nginx_waf_exclusions": [{"path": "/api/", "rule_ids": ["942100\"; deny"], "targets": ["ARGS:x"]}]},
     "nginx_waf_exclusions entries 1 need a path"),
    ({"nginx_ratelimit_per_hour": 30}, "nginx_ratelimit_per_hour must be at least 60"),
    ({"nginx_ratelimit_api_key_header": "X-Key\r\nX-Other"}, "nginx_ratelimit_api_key_header must be a header name"),
    ({"nginx_ratelimit_exempt_networks": ["10.0.0.0/33"]},
     "nginx_ratelimit_exempt_networks and nginx_internal_allow must list IP networks (bad: 10.0.0.0/33)"),
    ({"nginx_internal_allow": ["all; allow 0.0.0.0/0"]}, "must list IP networks (bad: all; allow 0.0.0.0/0)"),
    ({"nginx_public_paths": ["/api/ { return 200; }"]}, "nginx_public_paths, nginx_unlimited_paths and nginx_internal_paths must list paths"),
    ({"nginx_public_paths": ["/metrics"]}, "a path cannot be both public and internal"),
    ({"nginx_waf_audit_log": "/var/log/../etc/passwd"}, "nginx_waf_audit_log must be an absolute file path"),
])
def test_bad_edge_settings_refused(tmp_path, overrides, message):
    rc, out = run_tasks(tmp_path, "nginx", GROUPS, "preflight.yml", hosts="lb", extra_vars=overrides)
    assert rc != 0, out
    assert "Bad nginx role input: " in flat(out), out
    assert message in flat(out), out


def test_several_bad_settings_named_together(tmp_path):
    rc, out = run_tasks(tmp_path, "nginx", GROUPS, "preflight.yml", hosts="lb",
                        extra_vars={"nginx_waf_mode": "Block", "nginx_ratelimit_zone_size": "lots"})
    assert rc != 0, out
    assert "nginx_waf_mode must be On or DetectionOnly (got Block); nginx_ratelimit_zone_size must be a size" in flat(out), out


def test_defaults_pass_the_preflight(tmp_path):
    """Control case: the defaults (and a stricter but valid setup) pass."""
    rc, out = run_tasks(tmp_path, "nginx", GROUPS, "preflight.yml", hosts="lb",
                        extra_vars={"nginx_waf_mode": "DetectionOnly", "nginx_waf_paranoia_level": 2,
                                    "nginx_internal_allow": ["10.20.0.0/16", "fd00::/8"], "nginx_tls_protocols": "TLSv1.3"})
    assert rc == 0, out
    assert "failed=0" in out
