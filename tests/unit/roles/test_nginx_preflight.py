"""Preflight of the nginx role's edge settings (WAF, rate limit, TLS, internal paths), without NGINX.

Every value the role renders into the NGINX and ModSecurity files is checked
by tasks/preflight.yml before anything is installed or written. One
check-mode ansible-playbook run takes the whole table (ansible_run.
run_preflight_cases): each refusal must name its variable, and a good control
case beside them must pass.
"""
from pathlib import Path

import pytest
import yaml
from ansible_run import run_preflight_cases

ROLE = Path(__file__).resolve().parents[3] / "roles" / "nginx"
EDGE = ("nginx_tls_ciphers", "nginx_hsts_", "nginx_ocsp_", "nginx_waf_", "nginx_rate_limit_", "nginx_internal_")

CASES = [
    # rate limiting
    ({"nginx_rate_limit_rate": "1000r/h"}, "nginx_rate_limit_rate must be requests per second or minute such as 16r/m"),
    ({"nginx_rate_limit_rate": "16r/m\n"}, "nginx_rate_limit_rate must be requests per second or minute"),
    ({"nginx_rate_limit_rate": "0r/s"}, "nginx_rate_limit_rate must be requests per second or minute"),
    ({"nginx_rate_limit_burst": "40 nodelay; limit_req zone=x"}, "nginx_rate_limit_burst must be an integer >= 0"),
    ({"nginx_rate_limit_burst": -1}, "nginx_rate_limit_burst must be an integer >= 0"),
    ({"nginx_rate_limit_key_header": "X_API_Key"}, "nginx_rate_limit_key_header must be an HTTP header name"),
    ({"nginx_rate_limit_key_header": "X-API-Key\n"}, "nginx_rate_limit_key_header must be an HTTP header name"),
    ({"nginx_rate_limit_dry_run": "no"}, "nginx_rate_limit_enabled and nginx_rate_limit_dry_run must be true or false"),
    ({"nginx_rate_limit_zone_size": "10g"}, "nginx_rate_limit_zone_size must be a size such as 10m"),
    ({"nginx_rate_limit_address_rate": "1000r/h"}, "nginx_rate_limit_address_rate must be empty or requests per second"),
    ({"nginx_rate_limit_address_burst": "many"}, "nginx_rate_limit_address_burst must be an integer >= 0"),
    ({"nginx_rate_limit_exempt_paths": ["health"]}, "nginx_rate_limit_exempt_paths must be a list of URI paths"),
    ({"nginx_rate_limit_exempt_paths": "/health"}, "nginx_rate_limit_exempt_paths must be a list of URI paths"),
    # internal paths
    ({"nginx_internal_paths": ["/metrics { allow all; }"]}, "nginx_internal_paths must be a list of URI paths"),
    ({"nginx_internal_paths": ["/"]}, "nginx_internal_paths must be a list of URI paths such as /metrics, not /"),
    ({"nginx_internal_paths": ["/../metrics"]}, "nginx_internal_paths must be a list of URI paths"),
    ({"nginx_internal_allow": ["10.0.0.0/33"]}, "nginx_internal_allow must be a list of IPv4 or IPv6 addresses"),
    ({"nginx_internal_allow": ["all"]}, "nginx_internal_allow must be a list of IPv4 or IPv6 addresses"),
    ({"nginx_internal_allow": ["::1/129"]}, "nginx_internal_allow must be a list of IPv4 or IPv6 addresses"),
    ({"nginx_internal_allow": ["127.0.0.1/32\n"]}, "nginx_internal_allow must be a list of IPv4 or IPv6 addresses"),
    ({"nginx_internal_allow": "127.0.0.1/32"}, "nginx_internal_allow must be a list of IPv4 or IPv6 addresses"),
    # TLS
    ({"nginx_tls_ciphers": "HIGH; ssl_protocols SSLv3"}, "nginx_tls_ciphers must be an OpenSSL cipher list"),
    ({"nginx_tls_protocols": "TLSv1 TLSv1.2"}, "nginx_tls_protocols must be TLSv1.2 and/or TLSv1.3, nothing older"),
    ({"nginx_hsts_max_age": "1y"}, "nginx_hsts_max_age must be a number of seconds"),
    ({"nginx_hsts_include_subdomains": "yes"}, "nginx_hsts_include_subdomains must be true or false"),
    ({"nginx_ocsp_stapling": "sometimes"}, "nginx_ocsp_stapling must be auto, true or false"),
    ({"nginx_ocsp_resolver": ["9.9.9.9 ipv6=off; x"]}, "nginx_ocsp_resolver must be a list of DNS server addresses"),
    ({"nginx_ocsp_trusted_certificate": "certs/ca.pem"}, "nginx_ocsp_trusted_certificate must be an absolute path or empty"),
    # WAF
    ({"nginx_waf_enabled": "yes"}, "nginx_waf_enabled must be true or false"),
    ({"nginx_waf_mode": True}, 'nginx_waf_mode must be the string On (blocking) or DetectionOnly (got True; quote "On"'),
    ({"nginx_waf_mode": "Off"}, "nginx_waf_mode must be the string On (blocking) or DetectionOnly (got Off"),
    ({"nginx_waf_paranoia_level": 5}, "nginx_waf_paranoia_level must be 1, 2, 3 or 4 (got 5)"),
    ({"nginx_waf_paranoia_level": "1\n"}, "nginx_waf_paranoia_level must be 1, 2, 3 or 4"),
    ({"nginx_waf_anomaly_threshold": 0}, "nginx_waf_anomaly_threshold must be a positive integer"),
    ({"nginx_waf_allowed_methods": ["get"]}, "nginx_waf_allowed_methods must be a list of upper-case HTTP methods"),
    ({"nginx_waf_allowed_content_types": ["application/json; charset=utf-8"]},
     "nginx_waf_allowed_content_types must be a list of lower-case media types"),
    ({"nginx_waf_arguments_limit": "5k"}, "nginx_waf_request_body_limit and nginx_waf_arguments_limit must be positive integers"),
    ({"nginx_waf_dir": "modsecurity"}, "nginx_waf_dir must be an absolute path"),
    ({"nginx_waf_audit_log": "/var/log/nginx/modsec_audit.log"}, "nginx_waf_audit_log must be an absolute path, not a /var/log/nginx/*.log file"),
    ({"nginx_waf_audit_log_parts": "AFH"}, "nginx_waf_audit_log_parts must be A, letters B-K, then Z"),
    ({"nginx_waf_audit_relevant_status": '^403"'}, "nginx_waf_audit_relevant_status must be a regular expression on the status"),
    ({"nginx_waf_audit_log_rotate": "weekly"}, "nginx_waf_audit_log_rotate must be a positive number of days"),
    ({"nginx_waf_extra_rules": ["SecRuleRemoveById 920350\nSecRuleEngine Off"]}, "nginx_waf_extra_rules must be a list of ModSecurity directives"),
    ({"nginx_waf_extra_rules": "SecRuleRemoveById 920350"}, "nginx_waf_extra_rules must be a list of ModSecurity directives"),
    # the rest of what the site renders
    ({"nginx_server_aliases": ["api.example.org; return 200"]}, "nginx_server_name, nginx_server_aliases and the inventory name must be host names"),
    ({"nginx_https_port": 80}, "nginx_http_port, nginx_https_port and nginx_status_port must be three different ports"),
    ({"nginx_proxy_read_timeout": "30 s"}, "nginx_proxy_read_timeout must be NGINX times"),
    ({"nginx_tls_dir": "/etc/nginx/tls;"}, "nginx_tls_dir must be an absolute path"),
]


@pytest.fixture(name="refusals", scope="module")
def refusals_fixture(tmp_path_factory):
    """CASES and, last, a good balancer with every edge setting changed, in one ansible-playbook run.
    Each case is one balancer (its own nginx_lb_group); its application group is the next case's."""
    good = {"nginx_waf_mode": "DetectionOnly", "nginx_waf_paranoia_level": "2", "nginx_rate_limit_rate": "30r/s",
            "nginx_rate_limit_burst": 0, "nginx_rate_limit_address_rate": "600r/m",
            "nginx_internal_allow": ["10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1"],
            "nginx_internal_paths": ["/metrics", "/admin/"], "nginx_ocsp_stapling": True,
            "nginx_ocsp_resolver": ["9.9.9.9", "[2620:fe::fe]:53"], "nginx_hsts_include_subdomains": True,
            "nginx_waf_extra_rules": ["SecRuleRemoveById 920350"], "nginx_tls_protocols": "TLSv1.3"}
    tables = [extra for extra, _message in CASES] + [good]
    count = len(tables)
    cases = [{"lb1": dict(extra, nginx_app_group="case%d" % ((index + 1) % count))}
             for index, extra in enumerate(tables)]
    return run_preflight_cases(tmp_path_factory.mktemp("nginx-cases"), "nginx", "nginx_lb_group", cases)


@pytest.mark.parametrize("index", range(len(CASES)), ids=[str(i) for i in range(len(CASES))])
def test_bad_settings_refused(refusals, index):
    results, out = refusals
    variable = next(name for name in CASES[index][0])
    assert CASES[index][1] in results[index], (results[index], out[-3000:])
    assert variable in results[index], results[index]  # named, with what it got
    assert results[index].count(" must be ") == 1, results[index]  # this refusal alone
    assert results[index].startswith("Bad nginx role input: ") and results[index].endswith("Nothing was changed.")


def test_a_good_balancer_beside_the_refused_ones_passes(refusals):
    """The control case of the batch: every refusal is its own case's."""
    results, out = refusals
    assert results[-1] == "", (results[-1], out[-3000:])


def test_edge_variables_are_specified_and_documented():
    """Every edge variable of defaults/main.yml is in the main entry point's argument spec with the same
    default, and in the README's table."""
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))
    options = yaml.safe_load((ROLE / "meta" / "argument_specs.yml").read_text(encoding="utf-8"))
    options = options["argument_specs"]["main"]["options"]
    readme = (ROLE / "README.md").read_text(encoding="utf-8")
    edge = sorted(name for name in set(defaults) | set(options) if name.startswith(EDGE))
    assert len(edge) == 31, edge
    for name in edge:
        assert name in defaults and name in options, name
        assert options[name].get("default") == defaults[name] and options[name].get("description"), name
        assert "`%s`" % name in readme, name
