"""The nginx role's edge against a real NGINX, ModSecurity + CRS and the real service on loopback.

Three NGINX instances run the role's rendered templates (tools/edge_lab.py), each
shared by the tests of this module:

* ``edge``: the role defaults (WAF On, paranoia level 1, 16r/m per key with a
  burst of 40, /metrics for loopback only), an RSA certificate (so RSA key
  exchange suites would be offered if the cipher list let them in);
* ``permissive``: WAF On, the rate limit in dry-run mode, /metrics allowed to
  10.0.0.0/8 only (not the tests' 127.0.0.1), an ECDSA certificate as the lab
  CA makes;
* ``detect``: WAF DetectionOnly, with the per-address backstop (10r/m, burst 5).

testssl.sh (Debian's ``testssl``) starts against ``edge`` as soon as it is up
and runs beside the other tests; its JSON report is read at the end.
"""
import json
import re
import shutil
import subprocess
import time
import uuid

import pytest

from edge_lab import Client, EdgeNginx, Service, make_pki, render, require_tools, run_module

import trafficgen  # noqa: E402,I100  (tools/ is on sys.path: conftest)
from labwait import wait_for  # noqa: E402,I100

MATCH = "/api/v2/match"
FEEDBACK = "/api/v2/feedback"
SQLI = "1' OR '1'='1' UNION SELECT username, password FROM users --"
XSS = "<script>alert(document.cookie)</script>"
# A value that is no attack: the audit log must not hold it (no request bodies).
MARKER = "body-marker-%s" % uuid.uuid4().hex[:12]


def match_body(candidate_id="c1", location="paris"):
    return {"candidate": {"id": candidate_id, "skills": ["python", "sql"], "experience_years": 4,
                          "location": location},
            "offers": [{"id": "o1", "required_skills": ["python"], "min_experience": 2, "location": "paris"},
                       {"id": "o2", "required_skills": ["go"], "min_experience": 8, "location": "lyon"}]}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    require_tools()
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    svc = Service(str(tmp_path_factory.mktemp("service")))
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def client(pki):
    return Client(pki["ca"])


def _start(tmp_path_factory, name, service, tls_dir, **overrides):
    edge = EdgeNginx(str(tmp_path_factory.mktemp(name)), "127.0.0.1:%d" % service.port, tls_dir, **overrides)
    return edge.start()


@pytest.fixture(scope="module")
def edge(tmp_path_factory, service, pki):
    instance = _start(tmp_path_factory, "edge", service, pki["rsa"])
    report = instance.dir / "testssl.json"
    testssl = None
    if shutil.which("testssl"):
        testssl = subprocess.Popen(
            ["testssl", "--quiet", "--color", "0", "--warnings", "off", "--jsonfile", str(report),
             "-p", "-s", "127.0.0.1:%d" % instance.https_port],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    instance.testssl = (testssl, report)
    yield instance
    if testssl is not None and testssl.poll() is None:
        testssl.kill()
    instance.stop()


@pytest.fixture(scope="module")
def permissive(tmp_path_factory, service, pki):
    instance = _start(tmp_path_factory, "permissive", service, pki["ec"], nginx_rate_limit_dry_run=True,
                      nginx_internal_allow=["10.0.0.0/8"])
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def detect(tmp_path_factory, service, pki):
    instance = _start(tmp_path_factory, "detect", service, pki["ec"], nginx_waf_mode="DetectionOnly",
                      nginx_rate_limit_address_rate="10r/m", nginx_rate_limit_address_burst=5)
    yield instance
    instance.stop()


def rule_ids(entry):
    return set(re.findall(r'\[id "(\d+)"\]', entry.get("H", "")))


def entries_for(edge, marker):
    """Audit log entries whose rule messages mention ``marker`` (e.g. the request's unique path)."""
    return [e for e in edge.audit_entries() if marker in e.get("H", "")]


# --------------------------------------------------------------------------- configuration shape
def test_every_public_location_proxies():
    """`return` skips ModSecurity and limit_req: in the HTTPS server only the 429 page may answer by itself."""
    site = render("site.conf.j2", _nginx_names=["supersmartmatch.lab"])
    https = site[site.index("listen 443 ssl"):site.index("# stub_status")]
    locations = re.findall(r"\n    location (\S+(?: \S+)?) \{\n(.*?)\n    \}", https, re.S)
    names = [name for name, _body in locations]
    assert names == ["/", "= /health", "^~ /metrics", "@rate_limited"], names
    for name, body in locations:
        if name.startswith("@"):
            continue
        assert "proxy_pass http://$supersmartmatch_backend;" in body and "return" not in body, (name, body)
    assert "include /etc/nginx/modsecurity/main.conf;" in https
    assert re.search(r"location / \{\n        limit_req zone=supersmartmatch_per_key burst=40 nodelay;", https)


def test_modsecurity_blocks_fit_nginx_and_follow_the_crs_order():
    main = render("modsecurity/main.conf.j2")
    blocks = re.findall(r"modsecurity_rules '(.*?)';", main, re.S)
    assert blocks and all(len(b) < 4096 for b in blocks), [len(b) for b in blocks]
    order = [main.index(s) for s in ("SecRuleEngine On", "SecAuditLog /var/log/modsecurity/nginx_audit.log",
                                     "include /etc/nginx/modsecurity/crs-setup.conf;",
                                     "include /etc/nginx/modsecurity/exclusions.conf;",
                                     "Include /usr/share/modsecurity-crs/rules/*.conf")]
    assert order == sorted(order)
    assert "SecAuditLogParts AFHZ" in main
    setup = render("modsecurity/crs-setup.conf.j2", nginx_waf_paranoia_level=3)
    assert "setvar:tx.paranoia_level=3" in setup
    assert "setvar:\\'tx.allowed_request_content_type=|application/json|\\'" in setup


@pytest.mark.parametrize("overrides, stapled", [
    ({}, False),  # auto, the lab CA's certificate: no responder
    ({"_nginx_cert_info": {"ocsp_uri": None}}, False),
    ({"_nginx_cert_info": {"ocsp_uri": "http://ocsp.example.org"}}, True),
    ({"_nginx_cert_info": {"ocsp_uri": "http://ocsp.example.org"}, "nginx_ocsp_stapling": False}, False),
    ({"nginx_ocsp_stapling": True}, True),
])
def test_ocsp_stapling_follows_the_certificate(overrides, stapled):
    site = render("site.conf.j2", _nginx_names=["supersmartmatch.lab"], **overrides)
    assert ("ssl_stapling on;" in site) is stapled
    assert ("ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;" in site) is stapled


def test_hsts_options():
    assert 'add_header Strict-Transport-Security "max-age=31536000" always;' in render(
        "site.conf.j2", _nginx_names=["x"])
    site = render("site.conf.j2", _nginx_names=["x"], nginx_hsts_max_age=600, nginx_hsts_include_subdomains=True)
    assert site.count('add_header Strict-Transport-Security "max-age=600; includeSubDomains" always;') == 2


@pytest.mark.parametrize("overrides", [
    {"nginx_waf_enabled": False},
    {"nginx_rate_limit_enabled": False},
    {"nginx_waf_enabled": False, "nginx_rate_limit_enabled": False, "nginx_internal_paths": []},
    {"nginx_ocsp_stapling": True, "nginx_ocsp_resolver": ["127.0.0.1", "[::1]:53"], "nginx_hsts_include_subdomains": True},
    {"nginx_waf_mode": "DetectionOnly", "nginx_waf_paranoia_level": 4, "nginx_waf_audit_log_parts": "ABEFHZ",
     "nginx_waf_extra_rules": ["SecRuleRemoveById 920350", 'SecRule ARGS:x "@rx \\d+\'" "id:10100,phase:2,pass,log"'],
     "nginx_rate_limit_exempt_paths": ["/health", "/ready", "/metrics/x"], "nginx_internal_paths": ["/metrics", "/admin/"],
     "nginx_rate_limit_key_header": "Authorization-Key", "nginx_rate_limit_address_rate": "100r/s",
     "nginx_internal_allow": ["10.0.0.0/8", "fd00::/8", "192.168.1.7"]},
], ids=["waf-off", "rate-limit-off", "plain", "ocsp-hsts", "everything-else"])
def test_variants_pass_nginx_t(tmp_path, pki, overrides):
    """Other settings render into a configuration NGINX (with ModSecurity and the CRS) accepts."""
    rc, messages = EdgeNginx(str(tmp_path), "127.0.0.1:9", pki["ec"], **overrides).check()
    assert rc == 0, messages


# --------------------------------------------------------------------------- WAF
def test_sqli_and_xss_are_refused_and_audited(edge, client):
    assert client.call(edge, "POST", MATCH, match_body(location=MARKER))[0] == 200
    cases = [
        ("sqli-json", match_body(candidate_id=SQLI, location=MARKER), {"942100"}),
        ("xss-json", match_body(location=XSS), {"941100", "941110"}),
    ]
    for name, body, _rules in cases:
        status, headers, payload = client.call(edge, "POST", MATCH + "?case=" + name, body,
                                               headers={"X-API-Key": "audit-key-" + name})
        assert status == 403, (name, status, payload)
        assert headers.get("strict-transport-security") == "max-age=31536000"
    status = client.call(edge, "GET", "/health?q=1%27%20UNION%20SELECT%20password%20FROM%20users--")[0]
    assert status == 403
    # the exclusion of feedback_token (10002) holds only for a token of the exact form
    forged = {"candidate_id": "c1", "offer_id": "o1", "correct": True,
              "feedback_token": "v1.1.x' UNION SELECT password FROM users --"}
    assert client.call(edge, "POST", FEEDBACK, forged)[0] == 403

    def ours():  # (testssl's requests to / are in the log too: their Host is an address, rule 920350)
        return [e for e in edge.audit_entries() if re.search(r'\[uri "/(api/v2/|health)', e.get("H", ""))]

    wait_for(lambda: len(ours()) >= 4, 5, "four audit log entries", delay=0.05)
    found = set().union(*(rule_ids(e) for e in edge.audit_entries()))
    for name, _body, rules in cases:
        assert rules <= found, (name, rules, found)
    assert "found within ARGS:q:" in edge.audit_log.read_text()  # /health is not rate limited, but inspected
    assert "found within ARGS:json.feedback_token:" in edge.audit_log.read_text()
    time.sleep(0.2)
    assert len(ours()) == 4, ours()
    for entry in ours():
        assert "949110" in rule_ids(entry), entry  # blocked by the anomaly score
        assert 'uri "/' in entry["H"]
        assert set(entry) <= set("AFHZ"), sorted(entry)  # no request headers, no bodies
    text = edge.audit_log.read_text()
    assert MARKER not in text and "audit-key-" not in text
    assert "Access denied with code 403" in text


def test_detection_only_lets_an_attack_through_and_logs_it(detect, client):
    status, _headers, payload = client.call(detect, "POST", MATCH, match_body(candidate_id=SQLI))
    assert status == 200 and payload["candidate_id"] == SQLI
    wait_for(detect.audit_entries, 5, "an audit log entry", delay=0.05)
    text = detect.audit_log.read_text()
    assert '[id "942100"]' in text and '[id "949110"]' in text
    assert "Access denied" not in text
    # the CRS adds the response body (part E) to what it matched: the role takes it out again
    assert "feedback_token" not in text and "---E--" not in text


def test_the_labelled_data_set_passes_the_waf(permissive, pki):
    """The traffic generator's whole labelled set (a match, then its feedback, per case): nothing blocked."""
    dataset = trafficgen.build_dataset()
    audited = len(permissive.audit_entries())
    report = trafficgen.run_load([permissive.url()], requests=len(dataset), dataset=dataset, cacert=pki["ca"],
                                 host_header="supersmartmatch.lab", concurrency=8)
    assert report["failed_requests"] == 0 and report["client_errors"] == 0, report["errors"]
    assert report["match_requests"] == len(dataset) and report["feedback_requests"] == len(dataset)
    assert report["versions"]["1.0.0"]["status"] == {"200": len(dataset)}
    time.sleep(0.2)
    assert len(permissive.audit_entries()) == audited, permissive.audit_log.read_text()[-3000:]  # no rule matched


def test_a_bad_modsecurity_change_never_goes_live(detect, client):
    """nginx_config validates the ModSecurity files like any included file (they are NGINX syntax)."""
    path = str(detect.dir / "modsecurity" / "exclusions.conf")
    before = open(path).read()
    bad = render("modsecurity/exclusions.conf.j2", **dict(
        detect.variables, nginx_waf_extra_rules=['SecRule ARGS "@rx x" "id:10100,phase:2,pass,nosuchaction"']))
    result = run_module("nginx_config", dict(path=path, content=bad, nginx_conf=str(detect.conf)))
    assert result.get("failed") is True and result["changed"] is False, result
    assert "nginx -t rejected the new configuration" in result["msg"], result["msg"]
    assert "Expecting an action, got:  nosuchaction" in result["msg"] and path in result["msg"], result["msg"]
    assert open(path).read() == before
    good = render("modsecurity/exclusions.conf.j2", **dict(
        detect.variables, nginx_waf_extra_rules=["SecRuleRemoveById 920350"]))
    result = run_module("nginx_config", dict(path=path, content=good, nginx_conf=str(detect.conf)))
    assert result.get("changed") is True and result["reloaded"] is True, result
    assert client.call(detect, "GET", "/health")[0] == 200


# --------------------------------------------------------------------------- rate limiting
def test_rate_limit_per_key_with_retry_after(edge, client):
    answers = [client.call(edge, "POST", MATCH, match_body(), headers={"X-API-Key": "key-busy"}) for _n in range(46)]
    statuses = [status for status, _headers, _payload in answers]
    assert statuses[:41] == [200] * 41, statuses  # 1 + burst 40, nodelay
    assert statuses[-1] == 429, statuses
    _status, headers, payload = answers[statuses.index(429)]
    assert headers["retry-after"] == "4", headers  # 16r/m: a slot every 3.75 s
    assert payload == {"error": "too many requests", "retry_after": 4}
    assert headers["content-type"] == "application/json"
    assert headers.get("strict-transport-security") == "max-age=31536000"
    # the same moment: another key, and the exempt and internal paths with the busy key
    assert client.call(edge, "POST", MATCH, match_body(), headers={"X-API-Key": "key-quiet"})[0] == 200
    assert client.call(edge, "GET", "/health", headers={"X-API-Key": "key-busy"})[0] == 200
    assert client.call(edge, "GET", "/metrics", headers={"X-API-Key": "key-busy"})[0] == 200
    log = [json.loads(line) for line in edge.access_log.read_text().splitlines()]
    assert any(entry["status"] == 429 and entry["limit_req"] == "REJECTED" for entry in log)


def test_health_and_internal_paths_are_not_rate_limited(edge, client):
    for path in ["/health"] * 45 + ["/metrics"] * 45:
        assert client.call(edge, "GET", path)[0] == 200, path


def test_rate_limit_dry_run_refuses_nothing(permissive, client):
    statuses = [client.call(permissive, "POST", MATCH, match_body(), headers={"X-API-Key": "key-dry"})[0]
                for _n in range(50)]
    assert statuses == [200] * 50
    wait_for(lambda: "limiting requests, dry run" in permissive.error_log.read_text(), 5,
             "the dry run's log line", delay=0.05)
    log = [json.loads(line) for line in permissive.access_log.read_text().splitlines()]
    assert any(entry["limit_req"] == "REJECTED_DRY_RUN" and entry["status"] == 200 for entry in log)


def test_per_address_backstop_catches_rotating_keys(detect, client):
    statuses = [client.call(detect, "POST", MATCH, match_body(), headers={"X-API-Key": "rotating-%d" % i})[0]
                for i in range(10)]
    # 1 + burst 5 at most (an earlier request of this module may have used part of the bucket)
    assert statuses[0] == 200 and statuses.count(200) <= 6 and statuses[-1] == 429, statuses


# --------------------------------------------------------------------------- internal paths
def test_metrics_only_for_the_allowlist(edge, permissive, client):
    status, _headers, text = client.call(edge, "GET", "/metrics")
    assert status == 200 and "ssm_http_requests_total" in text  # 127.0.0.1 is in the default allowlist
    for path in ("/metrics", "/metrics/", "/metrics/anything", "/%6Detrics", "//metrics"):
        status, _headers, body = client.call(permissive, "GET", path)  # allowlist 10.0.0.0/8 only
        assert status == 403, (path, status, body)
    assert client.call(permissive, "GET", "/health")[0] == 200  # public


# --------------------------------------------------------------------------- TLS
def _s_client(port, *args):
    proc = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername",
                           "supersmartmatch.lab"] + list(args), input="", capture_output=True, text=True, timeout=30,
                          check=False)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("args, what", [
    (["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"], "TLS 1.0"),
    (["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"], "TLS 1.1"),
    (["-tls1_2", "-cipher", "AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA:AES256-SHA256"], "RSA key exchange"),
    (["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA:ECDHE-RSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256"], "CBC"),
    (["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-CHACHA20-POLY1305"], "DHE"),
    (["-tls1_2", "-cipher", "eNULL:aNULL:EXPORT:LOW:3DES:RC4:@SECLEVEL=0"], "NULL, anonymous, export, weak"),
])
def test_forbidden_protocols_and_suites_are_refused(edge, args, what):
    rc, out = _s_client(edge.https_port, *args)
    assert rc != 0 and "BEGIN CERTIFICATE" not in out, (what, out[-2000:])
    assert "no protocols available" not in out and "no cipher match" not in out, (what, "client-side refusal", out)


def test_tls12_aead_with_ecdhe_and_tls13_are_offered_without_tickets(edge, pki):
    rc, out = _s_client(edge.https_port, "-tls1_2", "-CAfile", pki["ca"], "-cipher", "ECDHE-RSA-AES128-GCM-SHA256")
    assert rc == 0 and "Verify return code: 0 (ok)" in out, out[-2000:]
    assert "TLS session ticket" not in out
    rc, out = _s_client(edge.https_port, "-tls1_3", "-CAfile", pki["ca"])
    assert rc == 0 and "TLSv1.3" in out, out[-2000:]


def test_testssl_finds_no_weak_protocol_or_suite(edge):
    testssl, report = edge.testssl
    if testssl is None:
        pytest.fail("testssl not found: install the Debian package testssl.sh")
    try:
        testssl.wait(120)
    except subprocess.TimeoutExpired:
        pytest.fail("testssl did not finish within 120 s")
    findings = {item["id"]: item["finding"] for item in json.loads(report.read_text())}
    for protocol in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert findings[protocol] == "not offered", (protocol, findings[protocol])
    assert findings["TLS1_2"] == "offered" and findings["TLS1_3"].startswith("offered"), findings
    for family in ("NULL", "aNULL", "EXPORT", "LOW", "3DES_IDEA", "AVERAGE"):  # AVERAGE: the obsolete CBC suites
        assert findings["cipherlist_" + family] == "not offered", (family, findings["cipherlist_" + family])
    assert findings["cipherlist_STRONG"] == "offered"
