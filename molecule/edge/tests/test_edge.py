"""The hardened edge on real containers: WAF, rate limit, TLS, internal paths, host firewall.

edge-lb1 (172.30.97.10) is the balancer, edge-app1 (.20) the application host
(and the one network allowed to read /metrics), edge-client (.30) an outside
client that is also a data node (Redis on 6379). The controller (the network's
gateway, .1) is a trusted load generator: not rate limited, WAF still on.
"""
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time

import pytest
import testinfra

ROOT = os.environ.get('MOLECULE_PROJECT_DIRECTORY', os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..')))
EPHEMERAL = os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY', '')
sys.path.insert(0, os.path.join(ROOT, 'tools'))

import trafficgen  # noqa: E402

LB = '172.30.97.10'
APP = '172.30.97.20'
CLIENT_ADDR = '172.30.97.30'
CACERT = os.path.join(EPHEMERAL, 'pki', 'ca.crt')
SERVER_NAME = 'supersmartmatch.lab'
MATCH_BODY = {'candidate': {'id': 'c1', 'skills': ['python', 'sql'], 'experience_years': 3, 'location': 'paris'},
              'offers': [{'id': 'o1', 'required_skills': ['python'], 'min_experience': 1, 'location': 'paris'},
                         {'id': 'o2', 'required_skills': ['go'], 'min_experience': 5, 'location': 'lyon'}]}


def host(name):
    return testinfra.get_host('docker://' + name)


def https(method, path, body=None, headers=None):
    """One request from the controller to the balancer; (status, headers, body)."""
    context = ssl.create_default_context(cafile=CACERT)
    conn = http.client.HTTPSConnection(LB, 443, timeout=10, context=context)
    # certificate checked for the service's name
    conn.sock = context.wrap_socket(socket.create_connection((LB, 443), timeout=10), server_hostname=SERVER_NAME)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    conn.request(method, path, body=data, headers=dict({'Host': SERVER_NAME, 'Content-Type': 'application/json'},
                                                       **(headers or {})))
    resp = conn.getresponse()
    out = resp.status, dict(resp.getheaders()), resp.read()
    conn.close()
    return out


CURL = ("curl -sk -o /dev/null -w '%{{http_code}}\\n' --connect-timeout 3 -m 10 -X {method} "
        "-H 'Content-Type: application/json' -H 'Host: supersmartmatch.lab' {headers} {data} https://172.30.97.10{path}")


def curl_from(name, path, method='GET', body=None, headers=(), count=1):
    """Status codes of `count` requests sent from container `name` (one curl each)."""
    data = "--data '%s'" % json.dumps(body) if body is not None else ''
    hdrs = ' '.join("-H '%s'" % h for h in headers)
    cmd = CURL.format(method=method, headers=hdrs, data=data, path=path)
    out = host(name).check_output('for i in $(seq 1 %d); do %s; done' % (count, cmd))
    return [int(line) for line in out.split()]


def reachable(src, address, port):
    """True when a TCP connection from container `src` to address:port is accepted within 3 s."""
    cmd = "timeout 3 bash -c 'exec 3<>/dev/tcp/%s/%d' && echo open || echo closed" % (address, port)
    return host(src).check_output(cmd).strip() == 'open'


# --------------------------------------------------------------------------- WAF
@pytest.mark.parametrize('name, path, body', [
    ('SQL injection in the JSON body', '/api/v2/match',
     {'candidate': {'id': "1' OR '1'='1' UNION SELECT password FROM users --", 'skills': ['python']}, 'offers': []}),
    ('SQL injection in the query string', "/api/v2/match?id=1%27%20OR%201%3D1--", MATCH_BODY),
    ('XSS in the JSON body', '/api/v2/match',
     {'candidate': {'id': '<script>alert(document.cookie)</script>', 'skills': ['python']}, 'offers': []}),
    ('XSS in the query string', '/api/v2/feedback?q=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E', {'match_id': 'x'}),
])
def test_waf_blocks_attacks(name, path, body):
    status, _, _ = https('POST', path, body)
    assert status == 403, '%s: expected 403 from the WAF, got %d' % (name, status)


def test_waf_logs_blocked_requests_without_headers():
    https('POST', '/api/v2/match', {'candidate': {'id': '<script>alert(42)</script>'}, 'offers': []})
    lb = host('edge-lb1')
    log = lb.file('/var/log/modsecurity/audit.log')
    assert log.exists and not log.mode & 0o002
    assert lb.file('/var/log/modsecurity').mode == 0o750
    content = log.content_string
    assert '[id "941' in content and '[id "949110"]' in content
    assert '---B--' not in content and 'Cookie:' not in content  # no request headers (part B)
    assert '---C--' not in content and '---I--' not in content  # no request bodies
    assert lb.file('/etc/logrotate.d/ssm-modsecurity').contains('/var/log/modsecurity/audit.log')
    lb.run_expect([0], 'logrotate -d /etc/logrotate.d/ssm-modsecurity')


def test_labelled_set_passes_the_waf():
    """Every request of the traffic generator's labelled set goes through: no false positive."""
    report = trafficgen.run_load(['https://%s' % LB], requests=200, users=200, concurrency=4,
                                 cacert=CACERT, host_header=SERVER_NAME, timeout=30)
    assert report['match_requests'] == 200
    assert report['failed_requests'] == 0, report['errors']
    assert report['client_errors'] == 0, report['errors']
    statuses = {}
    for version in report['versions'].values():
        for code, count in list(version['status'].items()) + list(version['feedback_status'].items()):
            statuses[code] = statuses.get(code, 0) + count
    assert set(statuses) <= {'200', '202'} and statuses.get('200') == 200, statuses
    assert report['precision'] == 1.0


# --------------------------------------------------------------------------- rate limit
def burst_from(name, count, headers=()):
    """`count` match requests sent at once from container `name` (one HTTP/2 connection, multiplexed).

    Returns one line per request: '<status> <Retry-After> <HSTS>'.
    """
    hdrs = ' '.join("-H '%s'" % h for h in headers)
    urls = ' '.join(['-o /dev/null https://%s/api/v2/match' % LB] * count)
    cmd = ("curl -sk --no-progress-meter -Z --parallel-max 100 --connect-timeout 20 -m 120 "
           "-w '%%{http_code} %%header{retry-after} %%header{strict-transport-security}\\n' "
           "-H 'Content-Type: application/json' -H 'Host: supersmartmatch.lab' %s --data '%s' %s"
           % (hdrs, json.dumps(MATCH_BODY), urls))
    return host(name).check_output(cmd).splitlines()


def test_rate_limit_per_client():
    """Past its bucket a client gets 429 with Retry-After; another client and another API key do not."""
    answers = burst_from('edge-client', 80)
    codes = [line.split()[0] for line in answers]
    assert len(codes) == 80
    # 1000/h = 16 r/m + burst 40: of 80 requests at once, at most 41 pass (a few more if the burst takes seconds)
    assert codes.count('200') <= 45 and codes.count('429') >= 35, answers
    assert set(codes) <= {'200', '429'}, answers
    limited = [line for line in answers if line.startswith('429')]
    assert all(line.split()[1:] == ['4', 'max-age=63072000'] for line in limited), limited
    # while the client's own bucket is empty: the same address with an API key of its own, and another address
    assert burst_from('edge-client', 5, headers=['X-API-Key: key-b']) == ['200  max-age=63072000'] * 5
    assert [line.split()[0] for line in burst_from('edge-app1', 5)] == ['200'] * 5
    assert '429' in [line.split()[0] for line in burst_from('edge-client', 5)]
    # /health is not rate limited
    assert curl_from('edge-client', '/health', count=3) == [200] * 3


# --------------------------------------------------------------------------- TLS
def test_testssl_finds_no_weak_protocol_or_cipher():
    out = host('edge-client').run(
        'testssl --quiet --color 0 --warnings off --protocols --std --each-cipher --jsonfile-pretty /tmp/testssl.json '
        '--ip %s https://%s/ >/dev/null 2>&1; cat /tmp/testssl.json; rm -f /tmp/testssl.json' % (LB, SERVER_NAME))
    findings = json.loads(out.stdout)
    results = findings['scanResult'][0]
    by_id = {}
    for section in ('protocols', 'ciphers', 'cipherTests'):
        for item in results.get(section, []):
            by_id[item['id']] = item['finding']
    for proto in ('SSLv2', 'SSLv3', 'TLS1', 'TLS1_1'):
        assert by_id[proto].startswith('not offered'), (proto, by_id[proto])
    assert by_id['TLS1_2'].startswith('offered') and by_id['TLS1_3'].startswith('offered'), by_id
    # AVERAGE is testssl's category of the CBC suites
    for category in ('cipherlist_NULL', 'cipherlist_aNULL', 'cipherlist_EXPORT', 'cipherlist_LOW', 'cipherlist_3DES_IDEA',
                     'cipherlist_AVERAGE'):
        assert by_id[category].startswith('not offered'), (category, by_id[category])
    offered = [f for i, f in by_id.items() if i.startswith('cipher-') or i.startswith('cipher_x')]
    assert offered, by_id
    for finding in offered:
        assert 'CBC' not in finding and ' RSA ' not in finding.replace('ECDHE-RSA', ''), finding


def test_tls_settings_in_place():
    conf = host('edge-lb1').file('/etc/nginx/nginx.conf').content_string
    assert 'ssl_session_tickets off;' in conf
    site = host('edge-lb1').file('/etc/nginx/conf.d/supersmartmatch.conf').content_string
    assert 'ssl_stapling on' not in site  # the lab CA names no OCSP responder
    _, headers, _ = https('GET', '/health')
    assert headers['Strict-Transport-Security'] == 'max-age=63072000'


# --------------------------------------------------------------------------- internal paths
@pytest.mark.parametrize('src, path, expected', [
    ('edge-client', '/metrics', 403),
    ('edge-client', '/metrics/', 403),
    ('edge-client', '/api/../metrics', 403),
    ('edge-client', '/anything', 404),
    ('edge-client', '/health', 200),
    ('edge-app1', '/metrics', 200),
])
def test_internal_paths(src, path, expected):
    assert curl_from(src, path.replace('..', '%2e%2e')) == [expected]


def test_stub_status_private():
    lb = host('edge-lb1')
    assert '127.0.0.1:8081' in lb.check_output('ss -ltnH')
    assert lb.check_output('curl -s http://127.0.0.1:8081/nginx_status').startswith('Active connections')


# --------------------------------------------------------------------------- firewall
@pytest.mark.parametrize('src, address, port, expected', [
    ('edge-lb1', APP, 5062, True),             # balancers reach the app slots
    ('edge-client', APP, 5062, False),         # nobody else does
    ('edge-client', LB, 443, True),            # the public port of a balancer
    ('edge-client', LB, 8081, False),          # stub_status is not even listening outside
    ('edge-app1', CLIENT_ADDR, 6379, True),    # app hosts reach Redis
    ('edge-lb1', CLIENT_ADDR, 6379, False),    # balancers do not
    ('edge-client', APP, 22, False),           # SSH only from the management network
])
def test_firewall_reachability(src, address, port, expected):
    assert reachable(src, address, port) is expected


def test_firewall_loaded_and_persistent():
    for name in ('edge-lb1', 'edge-app1', 'edge-client'):
        h = host(name)
        rules = h.check_output('nft list table inet ssm_filter')
        assert 'policy drop' in rules
        assert h.service('nftables').is_enabled
        assert h.file('/etc/nftables.d/ssm_filter.nft').mode == 0o600
        h.run_expect([0], 'nft -c -f /etc/nftables.conf')
        assert h.check_output('systemctl is-active ssm-firewall-rollback.timer || true') != 'active'


# --------------------------------------------------------------------------- lock-out guard (last: it changes app1's rules)
PLAY = """\
- name: Firewall over SSH
  hosts: app
  gather_facts: false
  roles:
    - role: supersmartmatch.platform.firewall
"""


def _ssh_setup(tmp_path):
    key = os.path.join(str(tmp_path), 'id_ed25519')
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', key], check=True)
    public = open(key + '.pub').read().strip()
    host('edge-app1').run_expect([0], "install -d -m 0700 /root/.ssh && echo '%s' > /root/.ssh/authorized_keys && "
                                      "chmod 0600 /root/.ssh/authorized_keys" % public)
    # the scenario's groups (the other hosts only as sources, by address), app1 over SSH
    inventory = {'all': {'children': {
        'app': {'hosts': {'edge-app1': {
            'ansible_host': APP, 'ansible_user': 'root', 'ansible_connection': 'ssh',
            'ansible_ssh_private_key_file': key, 'ansible_python_interpreter': '/usr/bin/python3',
            'ansible_ssh_common_args': '-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'}}},
        'lb': {'hosts': {'edge-lb1': {'firewall_address': LB}}},
        'redis': {'hosts': {'edge-client': {'firewall_address': CLIENT_ADDR}}}}}}
    path = os.path.join(str(tmp_path), 'inventory.json')
    with open(path, 'w') as handle:
        json.dump(inventory, handle)
    with open(os.path.join(str(tmp_path), 'play.yml'), 'w') as handle:
        handle.write(PLAY)
    return key, path


def _ssh_ok(key):
    return subprocess.run(['ssh', '-i', key, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
                           '-o', 'ConnectTimeout=3', '-o', 'BatchMode=yes', 'root@' + APP, 'true'],
                          capture_output=True, timeout=30, check=False).returncode == 0


def _play(tmp_path, inventory, *extra):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.collections'), ANSIBLE_FORCE_COLOR='0')
    proc = subprocess.run(['ansible-playbook', '-i', inventory, os.path.join(str(tmp_path), 'play.yml')] + list(extra),
                          capture_output=True, text=True, env=env, timeout=900, check=False)
    print(proc.stdout[-4000:] + proc.stderr[-2000:])
    return proc.returncode, proc.stdout + proc.stderr


def test_firewall_never_locks_the_controller_out(tmp_path):
    """Over SSH: the controller's address is kept open; a ruleset that shuts it out is rolled back."""
    key, inventory = _ssh_setup(tmp_path)
    app = host('edge-app1')
    assert _ssh_ok(key)
    # no management network at all: the controller's own SSH address keeps it in
    rc, _ = _play(tmp_path, inventory, '-e', '{"firewall_management_networks": []}')
    assert rc == 0
    rules = app.check_output('nft list table inet ssm_filter')
    assert 'ip saddr 172.30.97.1 tcp dport 22 accept' in rules, rules
    assert _ssh_ok(key)
    persisted = app.file('/etc/nftables.d/ssm_filter.nft').content_string
    # SSH moved to a port sshd does not listen on: the controller cannot get back in
    rc, out = _play(tmp_path, inventory, '-e', '{"firewall_ssh_port": 2222, "firewall_confirm_timeout": 20}')
    assert rc != 0, out
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _ssh_ok(key):
        time.sleep(2)
    assert _ssh_ok(key), 'the rollback timer did not restore SSH access'
    assert app.check_output('nft list table inet ssm_filter') == rules
    assert app.file('/etc/nftables.d/ssm_filter.nft').content_string == persisted
