"""The approval and hook tasks of the rollout role, run by ansible-playbook on local-connection hosts.

No container and no NGINX: the load balancers are this machine (each with
its own state directory under tmp_path), the candidate's /health and the
hooks are a loopback HTTP server. Each case decides without waiting on a
clock: an approval is recorded before the wait starts, or nobody approves
and the one-round wait ends.
"""
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ansible_run import ansible_playbook, link_collection

from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_approval as ra
from ansible_collections.supersmartmatch.platform.plugins.module_utils.locking import acquire_lease

ROOT = Path(__file__).resolve().parents[3]
SERVICE = 'supersmartmatch'
RUN = 'canary-3.0.0-20270115T080000Z-1'
TOKEN = 's3cret-t0ken'


@pytest.fixture(autouse=True, scope='module')
def collection_link():
    link_collection()


class Server(object):
    """Loopback HTTP: GET answers the candidate's /health; POST /hook/<status>/... answers that status and keeps the JSON."""

    def __init__(self):
        events = self.events = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self._answer(200, json.dumps({'up': 1, 'version': '3.0.0'}).encode())

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
                events.append(dict(json.loads(body), _path=self.path))
                self._answer(int(self.path.split('/')[2]), b'{}')

            def _answer(self, status, body):
                self.send_response(status)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def hook(self, status):
        return 'http://127.0.0.1:%d/hook/%d/%s' % (self.port, status, TOKEN)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server():
    srv = Server()
    yield srv
    srv.close()


class Lab(object):
    """Two local load balancers (lb1, lb2) and one application host pointing at the loopback server."""

    def __init__(self, tmp_path, port=1):
        self.tmp = tmp_path
        self.dirs = {}
        hosts = {}
        for lb in ('lb1', 'lb2'):
            self.dirs[lb] = tmp_path / lb
            (self.dirs[lb] / 'split').mkdir(parents=True)
            hosts[lb] = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                         'rollout_state_dir': str(self.dirs[lb]), 'rollout_split_dir': str(self.dirs[lb] / 'split')}
        inventory = {'all': {'children': {
            'lb': {'hosts': hosts},
            'app': {'hosts': {'app1': {'ansible_connection': 'local', 'ssm_backend_address': '127.0.0.1'}}}}}}
        (tmp_path / 'inventory.yml').write_text(json.dumps(inventory))

    def run(self, playbook, extra=None, text=None):
        """Run ``playbook`` (a file of playbooks/, or ``text`` written to play.yml); return (rc, output)."""
        if text is None:
            path = ROOT / 'playbooks' / playbook
        else:
            path = self.tmp / 'play.yml'
            path.write_text(text)
        extra = dict(extra or {}, result_path=str(self.tmp / 'result.json'))
        if playbook == 'canary.yml':
            # its pre-deployment check reads real hosts (tested in the rollout scenario); these hosts are local
            extra.setdefault('skip_pre_checks', True)
        (self.tmp / 'extra.json').write_text(json.dumps(extra))
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'),
                   ANSIBLE_COLLECTIONS_PATH=str(ROOT / '.collections'), ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
                   ANSIBLE_LOCAL_TEMP=str(self.tmp / 'tmp'), ANSIBLE_REMOTE_TEMP=str(self.tmp / 'tmp'))
        proc = subprocess.run([ansible_playbook(), '-i', str(self.tmp / 'inventory.yml'), str(path),
                               '-e', '@%s' % (self.tmp / 'extra.json')],
                              cwd=str(self.tmp), env=env, capture_output=True, text=True, timeout=300, check=False)
        return proc.returncode, proc.stdout + proc.stderr

    def record(self, lb):
        return ra.read_record(ra.record_path(str(self.dirs[lb]), SERVICE))

    def seed(self, lbs=('lb1', 'lb2'), status='waiting', timeout=600):
        """The wait of RUN (canary of 3.0.0) on ``lbs``, with RUN's lease; ``status`` approved/rejected decides it."""
        for lb in lbs:
            directory = str(self.dirs[lb])
            acquire_lease(directory, SERVICE, RUN, 'ci@runner', 'canary', 3600)
            record, _changed = ra.open_wait(None, SERVICE, RUN, '3.0.0', 'canary', 'ci@runner', timeout, time.time())
            if status != 'waiting':
                record.update(status=status, decision=status, by='alice@laptop', at=ra.iso(time.time()))
            with open(ra.record_path(directory, SERVICE), 'w') as handle:
                json.dump(record, handle)


def flat(text):
    """Output with the callback's line wrapping and YAML quote doubling undone."""
    return ' '.join(text.split()).replace("''", "'")


def test_approve_yml_decides_only_the_release_waiting_and_names_who(tmp_path):
    lab = Lab(tmp_path)
    lab.seed()
    rc, out = lab.run('approve.yml', {'release_version': '4.0.0', 'rollout_approval_by': 'alice@laptop'})
    assert rc != 0, out
    assert 'approve.yml refused: the canary of 3.0.0 (run %s, started by ci@runner) is what waits for approval, ' \
           'not a phase of 4.0.0; nothing was changed' % RUN in flat(out), out
    assert lab.record('lb1')['status'] == 'waiting' and lab.record('lb2')['status'] == 'waiting'

    rc, out = lab.run('approve.yml', {'release_version': '3.0.0', 'rollout_approval_by': 'alice@laptop',
                                      'comment': 'dashboards look fine'})
    assert rc == 0, out
    assert 'approved by alice@laptop' in out and 'on lb1, lb2; it completes at its next check' in flat(out), out
    for lb in ('lb1', 'lb2'):
        record = lab.record(lb)
        expected = ('approved', 'alice@laptop', 'dashboards look fine')
        assert (record['status'], record['by'], record['comment']) == expected

    rc, out = lab.run('approve.yml', {'release_version': '3.0.0', 'decision': 'reject', 'phase': 'canary'})
    assert rc != 0, out
    assert 'was already approved by alice@laptop' in out and 'run playbooks/rollback.yml' in flat(out), out
    assert lab.record('lb1')['status'] == 'approved'


@pytest.mark.parametrize('extra, message', [
    ({}, "approve.yml refused: give the release waiting for approval with -e release_version=X.Y.Z"),
    ({'release_version': '3.0.0', 'comment': 'ok\nrm -rf /'}, 'approve.yml refused: comment must be at most 200'),
    ({'release_version': '3.0.0', 'phase': 'promoted'}, 'approve.yml refused: phase must be canary, extended or full'),
])
def test_approve_yml_refuses_bad_input_before_touching_a_balancer(tmp_path, extra, message):
    lab = Lab(tmp_path)
    lab.seed()
    rc, out = lab.run('approve.yml', extra)
    assert rc != 0 and message in flat(out), out
    assert 'Traceback' not in out
    assert lab.record('lb1')['status'] == 'waiting'


@pytest.mark.parametrize('extra, message', [
    ({'rollout_hooks': [{'name': 'smoke', 'type': 'pre-rollout', 'url': 'https://ci/%s' % TOKEN}]},
     "canary.yml refused: rollout_hooks[0] (smoke): type must be one of pre_rollout, rollout, post_rollout, rollback"),
    ({'rollout_hooks': [{'name': 'smoke', 'type': 'pre_rollout', 'url': 'https://ci/a b?%s' % TOKEN}]},
     'canary.yml refused: rollout_hooks[0] (smoke): url must be an http:// or https:// URL'),
    ({'rollout_require_approval': True, 'rollout_approval_timeout': 5},
     'canary.yml refused: rollout_approval_timeout must be between 30 and 604800 seconds, got 5'),
    ({'rollout_approval_url': 'ci.example/approve?%s' % TOKEN},
     'canary.yml refused: rollout_approval_url must be an http:// or https:// URL'),
])
def test_a_phase_refuses_bad_approval_or_hook_settings_before_anything_is_read(tmp_path, extra, message):
    lab = Lab(tmp_path)
    rc, out = lab.run('canary.yml', dict(extra, release_version='3.0.0', rollout_metric_checks=[]))
    assert rc != 0, out
    assert message in flat(out), out
    assert TOKEN not in out and 'Traceback' not in out
    assert 'Plan |' not in out


# The role's argument specs are enforced at each entry point (tasks_from: init, not init.yml: with the
# extension Ansible looks for an entry point "init.yml" and validates nothing).
@pytest.mark.parametrize('extra, message', [
    ({'rollout_judge': True, 'rollout_judge_latency_statistic': 'p99'},
     'value of rollout_judge_latency_statistic must be one of: p95, mean, got: p99'),
    ({'rollout_judge_confidence': 'high'}, "argument 'rollout_judge_confidence' is of type str and we were unable to convert to float"),
])
def test_a_phase_refuses_settings_outside_the_role_argument_specs(tmp_path, extra, message):
    lab = Lab(tmp_path)
    rc, out = lab.run('canary.yml', dict(extra, release_version='3.0.0', rollout_metric_checks=[]))
    assert rc != 0, out
    assert "Validating arguments against arg spec 'init'" in out and message in flat(out), out
    assert 'Traceback' not in out and 'Plan |' not in out


HOOKS_PLAY = """\
- name: Call the hooks of one type as the role does
  hosts: lb
  gather_facts: false
  tasks:
    - name: Hooks
      ansible.builtin.include_role:
        name: supersmartmatch.platform.rollout
        tasks_from: hooks
    - name: Keep what was recorded
      ansible.builtin.copy:
        content: "{{ {'failures': rollout_failed_pre_rollout, 'calls': rollout_hook_calls} | to_json }}"
        dest: "{{ result_path }}"
        mode: "0600"
      delegate_to: localhost
      run_once: true
"""


def result_of(lab):
    return json.loads((lab.tmp / 'result.json').read_text())


def test_hooks_post_their_event_and_a_failing_pre_rollout_hook_is_named_without_its_url(tmp_path, server):
    lab = Lab(tmp_path)
    hooks = [{'name': 'smoke', 'type': 'pre_rollout', 'url': server.hook(500), 'metadata': {'suite': 'smoke'}},
             {'name': 'schema', 'type': 'pre_rollout', 'url': server.hook(204), 'timeout': 3},
             {'name': 'load', 'type': 'rollout', 'url': server.hook(200)}]
    ctx = {'phase': 'canary', 'release': '3.0.0', 'run_id': RUN, 'holder': 'ci@runner'}
    rc, out = lab.run(None, {'rollout_hooks': hooks, '_rollout_hook_type': 'pre_rollout', 'rollout_ctx': ctx,
                             '_rollout_hook_extra': {'percent': 5}}, text=HOOKS_PLAY)
    assert rc == 0, out
    assert TOKEN not in out
    assert "pre_rollout hook(s) failed: 'smoke' answered HTTP 500; the phase is refused, nothing was moved" in flat(out)
    result = result_of(lab)
    assert result['failures'] == [{'host': 'localhost', 'step': 'pre_rollout', 'msg': "the pre_rollout hook 'smoke' "
                                   "failed (answered HTTP 500): the phase is refused, nothing was moved"}]
    assert [(c['name'], c['ok']) for c in result['calls']] == [('smoke', False), ('schema', True)]
    assert [e['hook'] for e in server.events] == ['smoke', 'schema']     # once each, not once per balancer
    event = server.events[0]
    assert (event['event'], event['service'], event['phase'], event['release'], event['run_id'], event['by']) == (
        'pre_rollout', SERVICE, 'canary', '3.0.0', RUN, 'ci@runner')
    assert event['metadata'] == {'suite': 'smoke'} and event['details'] == {'percent': 5}


HOLD_PLAY = """\
- name: The hold of a phase, with the facts the earlier plays leave
  hosts: lb
  gather_facts: false
  tasks:
    - name: Hold
      ansible.builtin.include_role:
        name: supersmartmatch.platform.rollout
        tasks_from: hold
    - name: Keep what the hold and the wait decided
      ansible.builtin.copy:
        content: >-
          {{ {'hold': rollout_failed_hold | default(none), 'approval': rollout_failed_approval | default(none),
              'confirm': (rollout_wait_result | default({})).confirm | default(none),
              'rolled_back': rollout_rollback_hold is not skipped, 'calls': rollout_hook_calls | default([])}
             | to_json }}
        dest: "{{ result_path }}"
        mode: "0600"
      delegate_to: localhost
      run_once: true
"""


def hold(lab, server, approval=True, hooks=()):
    for lb in ('lb1', 'lb2'):
        (lab.dirs[lb] / ('%s.json' % SERVICE)).write_text(json.dumps({'generation': 7}))
    ctx = {'phase': 'canary', 'release': '3.0.0', 'run_id': RUN, 'holder': 'ci@runner', 'hold': '0',
           'started': '2027-01-15T08:00:00Z', 'started_epoch': 0,
           'approval': {'required': approval, 'timeout': 1 if approval else 0}}
    plan = {'release': '3.0.0', 'percent': 5, 'stable_version': '2.0.0', 'stable_color': 'blue',
            'candidate_color': 'green', 'candidate_port': server.port, 'stable_port': 1}
    extra = {'rollout_phase': 'canary', 'rollout_ctx': ctx, 'rollout_plan': plan, 'rollout_shifted_at': time.time(),
             'rollout_shift_outcome': {'generations': {'lb1': 7, 'lb2': 7}}, 'rollout_metric_checks': [],
             'rollout_prometheus_url': '', 'rollout_gate_interval': 1, 'rollout_gate_warmup': 0,
             'rollout_hooks': list(hooks)}
    rc, out = lab.run(None, extra, text=HOLD_PLAY)
    assert rc == 0, out
    return out, result_of(lab)


def test_a_wait_already_approved_passes_at_once_and_a_failing_rollout_hook_is_only_reported(tmp_path, server):
    lab = Lab(tmp_path)
    lab.seed(lbs=('lb1',), status='approved')
    out, result = hold(lab, server, hooks=[{'name': 'load', 'type': 'rollout', 'url': server.hook(503)}])
    assert result['hold'] == [] and result['approval'] == []
    assert result['confirm']['decision'] == 'approved' and result['confirm']['by'] == 'alice@laptop'
    assert result['rolled_back'] is False
    assert "rollout hook(s) failed: 'load' answered HTTP 503; the hold goes on" in flat(out)
    assert 'passed its hold and waits up to 1 s for approval' in flat(out)
    assert '[lb1] approval: approved by alice@laptop' in out
    assert lab.record('lb2')['status'] == 'waiting' and lab.record('lb2')['run_id'] == RUN
    assert TOKEN not in out


@pytest.mark.parametrize('seeded, step, text, rolled_back, line', [
    (None, 'approval_timeout', 'nobody approved the canary of 3.0.0 within rollout_approval_timeout = 1 s', False,
     '-> passed, but nobody approved in time'),
    ('rejected', 'rejected', 'the canary of 3.0.0 was rejected by alice@laptop', True,
     '[lb1] approval: rejected by alice@laptop'),
])
def test_a_wait_without_approval_fails_and_a_rejection_rolls_every_balancer_back(
        tmp_path, server, seeded, step, text, rolled_back, line):
    lab = Lab(tmp_path)
    if seeded:
        lab.seed(lbs=('lb1',), status=seeded)
    out, result = hold(lab, server)
    assert [f['step'] for f in result['approval']] == [step] and text in result['approval'][0]['msg']
    # a rejection rolls back on both balancers (attempted here: these fake states cannot be, there is no NGINX)
    assert result['rolled_back'] is rolled_back
    assert line in out


def test_without_approval_the_hold_does_not_wait(tmp_path, server):
    lab = Lab(tmp_path)
    out, result = hold(lab, server, approval=False)
    assert result['hold'] == [] and result['approval'] is None and result['confirm'] is None
    assert 'Approval | Open the wait' in out and lab.record('lb1') is None


REPORT_PLAY = """\
- name: The report of a phase that passed
  hosts: lb
  gather_facts: false
  tasks:
    - name: Report
      ansible.builtin.include_role:
        name: supersmartmatch.platform.rollout
        tasks_from: report
"""


def test_a_passed_phase_calls_its_post_rollout_hooks_and_reports_every_hook_call(tmp_path, server):
    lab = Lab(tmp_path)
    ctx = {'phase': 'canary', 'release': '3.0.0', 'run_id': RUN, 'holder': 'ci@runner', 'hold': '0',
           'started': '2027-01-15T08:00:00Z', 'started_epoch': 0, 'approval': {'required': False, 'timeout': 0}}
    hooks = [{'name': 'announce', 'type': 'post_rollout', 'url': server.hook(202)},
             {'name': 'page', 'type': 'rollback', 'url': server.hook(200)}]
    extra = {'rollout_phase': 'canary', 'rollout_ctx': ctx, 'rollout_action': {'action': 'none'},
             'rollout_report_dir': str(tmp_path / 'reports'), 'rollout_hooks': hooks}
    rc, out = lab.run(None, extra, text=REPORT_PLAY)
    assert rc == 0, out
    assert "post_rollout hook(s) answered: 'announce' HTTP 202" in flat(out)
    assert [(e['event'], e['hook'], e['details']['verdict']) for e in server.events] == [
        ('post_rollout', 'announce', 'passed')]
    report = json.loads((tmp_path / 'reports' / ('%s.json' % RUN)).read_text())
    assert report['verdict'] == 'passed'
    assert report['hooks'] == [{'name': 'announce', 'type': 'post_rollout', 'ok': True, 'outcome': 'HTTP 202'}]
    assert report['approval'] == {'required': False}
    assert TOKEN not in out and TOKEN not in json.dumps(report)
