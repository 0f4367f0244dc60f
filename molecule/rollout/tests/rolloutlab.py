"""Shared by the rollout scenario's tests: the lab's addresses, playbook runs, probes, steady
traffic, a webhook receiver, and reads of the balancers' state.

The test files run in the order of their names, and each test starts from the state the one
before it left.
"""

import http.server
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.environ.get('MOLECULE_PROJECT_DIRECTORY', os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..')))
EPHEMERAL = os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY', '')
INVENTORY = os.environ.get('MOLECULE_INVENTORY_FILE', '')
sys.path.insert(0, os.path.join(ROOT, 'tools'))

# labprom, READ_ERRORS and wait_for are for the tests
import labprom  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
import trafficgen  # noqa: E402  pylint: disable=wrong-import-position
from labwait import READ_ERRORS, wait_for  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

TARGETS = ['https://127.0.0.1:18443', 'https://127.0.0.1:19443']
LB1_ONLY = TARGETS[:1]
CACERT = os.path.join(EPHEMERAL, 'work', 'pki', 'ca.crt')
REPORTS = os.path.join(EPHEMERAL, 'work', 'reports')
CLIENT = dict(cacert=CACERT, host_header='supersmartmatch.lab')

# what a test leaves for a later one (the timings printed at the end, the stable p95)
STATE = {}


def ansible_env():
    return dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'),
                ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, '.collections'), ANSIBLE_FORCE_COLOR='0')


def playbook_argv(name, extra, pre_checks=False):
    """ansible-playbook's command line. canary.yml runs pre_deployment_check.yml first: the tests that are
    not about it skip it (about 10 s each)."""
    if name == 'canary.yml' and not pre_checks:
        extra = ('-e', 'skip_pre_checks=true') + tuple(extra)
    return ['ansible-playbook', '-i', INVENTORY, os.path.join(ROOT, 'playbooks', name)] + list(extra)


def playbook(name, *extra, pre_checks=False):
    started = time.time()
    proc = subprocess.run(playbook_argv(name, extra, pre_checks),
                          capture_output=True, text=True, env=ansible_env(), timeout=900, check=False)
    output = proc.stdout + proc.stderr
    print('\n=== %s %s: rc=%d in %.1fs\n%s' % (name, ' '.join(extra), proc.returncode, time.time() - started,
                                               output[-6000:]))
    return proc.returncode, output


def background(name, *extra):
    """Start a playbook in its own process group; returns the Popen."""
    return subprocess.Popen(playbook_argv(name, extra),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ansible_env(),
                            start_new_session=True)


def finish(proc, timeout=300):
    out, _err = proc.communicate(timeout=timeout)
    print('\n=== background playbook: rc=%d\n%s' % (proc.returncode, out[-6000:]))
    return proc.returncode, out


def probe(users=5000, targets=None):
    """One request per user u0..u<users-1> through ``targets``, none failed. The split is a hash of
    the user and the release, so a given set of users lands the same way on every run. A probe is
    taken while no balancer changes, so its connections are kept alive (one TLS handshake per
    connection, not per request); the steady Traffic, which runs across reloads, is not."""
    report = trafficgen.run_probe(targets or TARGETS, users=users, concurrency=16, keep_alive=True, **CLIENT)
    assert report['failed_requests'] == 0, report['errors']
    # nor blocked: the labelled set is legitimate (no WAF 403, no rate limit 429 per X-API-Key)
    assert report['client_errors'] == 0, report['errors']
    return report


def share(report, version):
    return report['versions'].get(version, {}).get('share_pct', 0.0)


def cohort(report, version):
    return set(u for u, v in report['user_versions'].items() if v == version)


def latest_report():
    paths = [os.path.join(REPORTS, n) for n in os.listdir(REPORTS) if n.endswith('.json')]
    return json.load(open(max(paths, key=os.path.getmtime)))


def flat(text):
    """Output with the callback's line wrapping and YAML quote doubling undone (long debug messages wrap)."""
    return ' '.join(text.split()).replace("''", "'")


def gate_summary(report, check):
    return report['gates']['hold']['summary'][check]


def lb_state(lb='lb1'):
    proc = subprocess.run(['docker', 'exec', lb, 'cat', '/var/lib/supersmartmatch/traffic/supersmartmatch.json'],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def lease_of(lb):
    proc = subprocess.run(['docker', 'exec', lb, 'cat', '/var/lib/supersmartmatch/traffic/supersmartmatch.rollout.lock'],
                          capture_output=True, text=True, check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def at(version, percent, lbs=('lb1', 'lb2')):
    def check():
        return all(lb_state(lb)['percent'] == percent and lb_state(lb)['candidate']['version'] == version for lb in lbs)
    return check


class Traffic(object):
    """Steady labelled traffic through the balancers (default: both) for the duration of a block."""

    def __init__(self, targets=None):
        self.targets = targets or TARGETS

    def __enter__(self):
        self.runner = trafficgen.LoadRunner(self.targets, duration=900, users=2000, concurrency=4,
                                            rate=trafficgen.LAB_STEADY_RATE, **CLIENT).start()
        time.sleep(1)
        return self

    def __exit__(self, *exc):
        self.report = self.runner.stop()
        print('traffic: %s' % json.dumps({k: self.report[k] for k in ('total_requests', 'failed_requests', 'errors')}))
        print({v: (d['count'], d['precision']) for v, d in self.report['versions'].items()})

    def assert_no_failures(self):
        assert self.report['total_requests'] > 50
        assert self.report['failed_requests'] == 0, self.report['errors']
        # nor blocked: no WAF 403, no rate limit 429, no feedback refused (401) on the labelled set
        assert self.report['client_errors'] == 0, self.report['errors']


class Webhook(object):
    """A Slack-style webhook receiver on loopback that keeps every JSON body it gets (and answers ``status``)."""

    def __init__(self, status=200):
        events = self.events = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
                events.append(json.loads(body))
                self.send_response(status)
                self.send_header('Content-Length', '2')
                self.end_headers()
                self.wfile.write(b'ok')

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.url = 'http://127.0.0.1:%d/hooks/T000/B000/secret-token' % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def bad_canary(version, faults, expected, *extra):
    """canary.yml of a release shipped with ``faults``, under traffic: it must fail with every
    ``expected`` text in its output, leave everybody on 1.0.0 and fail no request."""
    with Traffic() as traffic:
        rc, out = playbook('canary.yml', '-e', 'release_version=%s' % version,
                           '-e', json.dumps({'rollout_app_faults': faults}), *extra)
        assert rc != 0
        for text in expected:
            assert text in out
        assert list(probe(1000)['versions']) == ['1.0.0']
    traffic.assert_no_failures()
    return out
