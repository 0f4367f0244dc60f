"""Table tests of the approval record (module_utils/rollout_approval.py): open, decide, close, confirm."""
import json
import urllib.error

import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_approval as ra

T0 = 1800000000.0          # 2027-01-15T08:00:00Z
RUN = 'canary-2.0.0-20270115T080000Z-1'
LEASE = {'run_id': RUN, 'holder': 'ci@runner', 'phase': 'canary', 'expires': T0 + 7200}


def waiting(**extra):
    record, changed = ra.open_wait(None, 'supersmartmatch', RUN, '2.0.0', 'canary', 'ci@runner', 60, T0)
    assert changed
    record.update(extra)
    return record


def test_open_wait_names_the_run_and_its_deadline():
    record = waiting()
    assert record['status'] == 'waiting' and record['run_id'] == RUN
    assert (record['opened_at'], record['deadline'], record['deadline_at']) == (
        '2027-01-15T08:00:00Z', T0 + 60, '2027-01-15T08:01:00Z')
    again, changed = ra.open_wait(record, 'supersmartmatch', RUN, '2.0.0', 'canary', 'ci@runner', 60, T0 + 5)
    assert again is record and changed is False
    other, changed = ra.open_wait(dict(record, status='closed'), 'supersmartmatch', 'extended-2.0.0-2', '2.0.0',
                                  'extended', 'ci@runner', 30, T0 + 100)
    assert changed and other['run_id'] == 'extended-2.0.0-2' and other['phase'] == 'extended'
    assert other['decision'] is None and other['deadline'] == T0 + 130


@pytest.mark.parametrize('existing, lease, release, phase, decision, now, refusal', [
    (None, None, '2.0.0', None, 'approved', T0,
     'nothing is waiting for approval of supersmartmatch (no phase is running); nothing was changed'),
    (None, LEASE, '2.0.0', None, 'approved', T0, 'the canary run %s of ci@runner is still going' % RUN),
    (dict(waiting(), status='closed', outcome='completed', closed_at='2027-01-15T08:00:30Z'), None, '2.0.0', None,
     'approved', T0, 'the last wait, the canary of 2.0.0 (run %s, started by ci@runner), ended at '
                     '2027-01-15T08:00:30Z (completed)' % RUN),
    (waiting(), LEASE, '3.0.0', None, 'approved', T0, 'the canary of 2.0.0 (run %s, started by ci@runner) is what '
                                                      'waits for approval, not a phase of 3.0.0' % RUN),
    (waiting(), LEASE, '2.0.0', 'extended', 'approved', T0, 'is what waits for approval, not extended of 2.0.0'),
    (waiting(), LEASE, '2.0.0', None, 'approved', T0 + 61, 'the wait for approval of the canary of 2.0.0 (run %s, '
                                                           'started by ci@runner) ended at 2027-01-15T08:01:00Z '
                                                           '(rollout_approval_timeout 60 s): too late' % RUN),
    (waiting(), None, '2.0.0', None, 'approved', T0, 'no longer holds the rollout lease'),
    (waiting(), dict(LEASE, run_id='other'), '2.0.0', None, 'rejected', T0, 'no longer holds the rollout lease'),
    (waiting(), dict(LEASE, expires=T0 - 1), '2.0.0', None, 'approved', T0, 'no longer holds the rollout lease'),
    (waiting(status='approved', by='alice@laptop', at='2027-01-15T08:00:10Z'), LEASE, '2.0.0', None, 'rejected', T0,
     'was already approved by alice@laptop at 2027-01-15T08:00:10Z: rejecting cannot change that (to send everybody '
     'back now, run playbooks/rollback.yml)'),
    (waiting(status='rejected', by='alice@laptop', at='2027-01-15T08:00:10Z'), LEASE, '2.0.0', None, 'approved', T0,
     'was already rejected by alice@laptop'),
])
def test_decide_refuses_what_is_not_waiting(existing, lease, release, phase, decision, now, refusal):
    with pytest.raises(ra.ApprovalRefused) as exc:
        ra.decide(existing, lease, 'supersmartmatch', release, phase, decision, 'bob@ctl', None, now)
    assert refusal in str(exc.value)
    assert 'nothing was changed' in str(exc.value)


@pytest.mark.parametrize('phase, decision, comment', [
    (None, 'approved', None), ('canary', 'approved', 'dashboards look fine'), (None, 'rejected', 'p99 too high'),
])
def test_decide_records_who_and_when(phase, decision, comment):
    record, changed, text = ra.decide(waiting(), LEASE, 'supersmartmatch', '2.0.0', phase, decision,
                                      'alice@laptop', comment, T0 + 60)
    assert changed
    assert (record['status'], record['decision'], record['by'], record['at'], record['comment']) == (
        decision, decision, 'alice@laptop', '2027-01-15T08:01:00Z', comment)
    assert text == 'the canary of 2.0.0 (run %s, started by ci@runner) %s by alice@laptop at 2027-01-15T08:01:00Z' % (
        RUN, decision)
    same, changed, text = ra.decide(record, LEASE, 'supersmartmatch', '2.0.0', None, decision, 'carol@ctl', None,
                                    T0 + 500)
    assert same is record and changed is False and 'already %s by alice@laptop' % decision in text


def test_decide_refuses_an_unknown_decision():
    with pytest.raises(ra.ApprovalError):
        ra.decide(waiting(), LEASE, 'supersmartmatch', '2.0.0', None, 'maybe', 'bob@ctl', None, T0)


def test_close_wait_only_closes_its_own_run():
    record = waiting()
    closed, changed = ra.close_wait(record, RUN, 'completed', T0 + 30)
    assert changed and closed['status'] == 'closed' and closed['outcome'] == 'completed'
    assert closed['closed_at'] == '2027-01-15T08:00:30Z'
    assert ra.close_wait(closed, RUN, 'rolled back', T0 + 40) == (closed, False)
    assert ra.close_wait(record, 'other-run', 'completed', T0) == (record, False)
    assert ra.close_wait(None, RUN, 'completed', T0) == (None, False)


@pytest.mark.parametrize('record, decided', [
    (None, None),
    (waiting(), None),
    (waiting(status='approved', by='alice@laptop', at='T'), {'decided': True, 'decision': 'approved',
                                                             'by': 'alice@laptop', 'at': 'T', 'comment': None,
                                                             'source': 'approve.yml'}),
    (waiting(status='rejected', by='bob@ctl', at='T', comment='no'), {'decided': True, 'decision': 'rejected',
                                                                      'by': 'bob@ctl', 'at': 'T', 'comment': 'no',
                                                                      'source': 'approve.yml'}),
    (waiting(status='approved', run_id='other-run'), None),
    (waiting(status='closed', decision='approved'), None),
])
def test_record_decision(record, decided):
    assert ra.record_decision(record, RUN) == decided


@pytest.mark.parametrize('status, approved', [(200, True), (204, True), (299, True), (300, False), (404, False),
                                              (500, False), (None, False), ('200', False)])
def test_url_decision(status, approved):
    out = ra.url_decision(status, T0)
    assert (out is not None) is approved
    if approved:
        assert out['source'] == 'webhook' and out['at'] == '2027-01-15T08:00:00Z' and out['url_status'] == status


@pytest.mark.parametrize('kwargs, text', [
    (dict(service='../x'), 'service must start with a lower-case letter'),
    (dict(service='svc', run_id='r\n'), 'run_id must be 1 to 128 of'),
    (dict(service='svc', release='2.0.0\n'), 'release must be 1 to 64 of'),
    (dict(service='svc', release='2.0.0;x'), 'release must be 1 to 64 of'),
    (dict(service='svc', phase='promoted'), 'phase must be one of canary, extended, full'),
    (dict(service='svc', by='alice laptop'), 'by must be 1 to 128 of'),
    (dict(service='svc', holder='ci\n@runner'), 'holder must be 1 to 128 of'),
    (dict(service='svc', comment='ok\n'), 'comment must be at most 200 of'),
    (dict(service='svc', comment='x' * 201), 'comment must be at most 200 of'),
    (dict(service='svc', comment='<script>'), 'comment must be at most 200 of'),
])
def test_validate_input(kwargs, text):
    with pytest.raises(ra.ApprovalError) as exc:
        ra.validate_input(**kwargs)
    assert text in str(exc.value)


def test_validate_input_accepts_good_values():
    ra.validate_input('svc', run_id=RUN, release='2.0.0+b1', phase='full', holder='ci@runner', by='alice@laptop',
                      comment='LGTM: p95 = 120 ms (ok), see #42')


@pytest.mark.parametrize('confirm, text', [
    ('x', 'confirm must be a dict'),
    (dict(path='/a', run_id=RUN, extra=1), 'confirm: unknown key(s) extra'),
    (dict(path='rel/a.json', run_id=RUN), 'confirm: path must be an absolute path'),
    (dict(path='/a', run_id='bad id'), 'confirm: run_id must be 1 to 128 of'),
    (dict(path='/a', run_id=RUN, url='gopher://x'), 'confirm: url must be an http:// or https:// URL'),
    (dict(path='/a', run_id=RUN, body='x'), 'confirm: body must be a dict'),
    (dict(path='/a', run_id=RUN, timeout='soon'), 'confirm: timeout must be a number of seconds'),
    (dict(path='/a', run_id=RUN, timeout=0), 'confirm: timeout must be > 0 and <= 300 seconds'),
])
def test_normalize_confirm_refuses_bad_input(confirm, text):
    with pytest.raises(ra.ApprovalError) as exc:
        ra.normalize_confirm(confirm)
    assert text in str(exc.value)


def test_normalize_confirm():
    assert ra.normalize_confirm(None) is None
    assert ra.normalize_confirm(dict(path='/s/svc.approval.json', run_id=RUN, url='')) == {
        'path': '/s/svc.approval.json', 'run_id': RUN, 'url': None, 'body': {}, 'timeout': 10.0}


class Records(object):
    """A fake file system: the record found at each read, in turn (the last one repeats)."""

    def __init__(self, *records):
        self.records = list(records)
        self.reads = 0

    def __call__(self, path):
        self.reads += 1
        record = self.records[min(self.reads, len(self.records)) - 1]
        if isinstance(record, Exception):
            raise record
        return record


class Webhook(object):
    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, url, body, timeout):
        self.calls.append((url, body, timeout))
        return self.answers.pop(0)


CONFIRM = {'path': '/s/svc.approval.json', 'run_id': RUN, 'url': None, 'body': {}, 'timeout': 5.0}
APPROVED = waiting(status='approved', by='alice@laptop', at='2027-01-15T08:00:20Z')


def test_poller_waits_until_the_record_holds_a_decision_for_its_run():
    read = Records(waiting(), waiting(status='approved', run_id='other'), APPROVED)
    poller = ra.ConfirmPoller(CONFIRM, read=read)
    assert poller() is None and poller() is None
    assert poller.status() == {'decided': False, 'decision': 'waiting', 'url_status': None}
    assert poller()['decision'] == 'approved'
    assert poller()['by'] == 'alice@laptop' and read.reads == 3   # decided: no more reads
    assert poller.status()['source'] == 'approve.yml'


def test_poller_posts_the_webhook_once_per_call_and_a_2xx_approves():
    hook = Webhook((503, 'answered HTTP 503'))
    confirm = dict(CONFIRM, url='https://ci.example/approve?token=t0k', body={'event': 'approval'})
    poller = ra.ConfirmPoller(confirm, read=Records(None), post=hook, now=lambda: T0)
    assert poller() is None and poller() is None
    assert hook.calls == [('https://ci.example/approve?token=t0k', {'event': 'approval'}, 5.0)]
    assert poller.status() == {'decided': False, 'decision': 'waiting', 'url_status': 503,
                               'problem': 'answered HTTP 503'}
    approving = ra.ConfirmPoller(confirm, read=Records(None), post=Webhook((200, None)), now=lambda: T0)
    assert approving() == {'decided': True, 'decision': 'approved', 'by': 'the approval webhook',
                           'at': '2027-01-15T08:00:00Z', 'comment': None, 'source': 'webhook', 'url_status': 200}


def test_poller_prefers_the_record_and_survives_an_unreadable_one():
    hook = Webhook((200, None))
    poller = ra.ConfirmPoller(dict(CONFIRM, url='https://x/y'), read=Records(APPROVED), post=hook)
    assert poller()['source'] == 'approve.yml' and hook.calls == []
    broken = ra.ConfirmPoller(CONFIRM, read=Records(ValueError('Expecting value'), APPROVED))
    assert broken() is None
    assert 'approval record /s/svc.approval.json unreadable: Expecting value' in broken.status()['problem']
    assert broken()['decision'] == 'approved'


class Response(object):
    def __init__(self, code):
        self.code = code
        self.closed = False

    def getcode(self):
        return self.code

    def close(self):
        self.closed = True


def test_make_post_answers_status_and_problem_without_the_url():
    url = 'https://ci.example/approve?token=t0k'
    seen = {}

    def opener(target, **kwargs):
        seen.update(kwargs, url=target)
        return Response(202)
    assert ra.make_post(opener)(url, {'a': 1}, 3) == (202, None)
    assert json.loads(seen['data']) == {'a': 1} and seen['method'] == 'POST' and seen['timeout'] == 3

    def refusing(target, **kwargs):
        raise urllib.error.HTTPError(target, 403, 'Forbidden', {}, None)
    assert ra.make_post(refusing)(url, {}, 3) == (403, 'answered HTTP 403')

    def down(target, **kwargs):
        raise urllib.error.URLError('cannot reach %s: Connection refused' % target)
    status, problem = ra.make_post(down)(url, {}, 3)
    assert status is None and problem == 'no answer (cannot reach <url>: Connection refused)'
    assert 't0k' not in problem


@pytest.mark.parametrize('status, text', [
    (None, 'waiting for approval'),
    ({'decided': False, 'problem': 'answered HTTP 503'}, 'waiting for approval (answered HTTP 503)'),
    (dict(ra.record_decision(APPROVED, RUN), comment='ok'), 'approved by alice@laptop at 2027-01-15T08:00:20Z '
                                                            '(approve.yml): ok'),
])
def test_confirm_text(status, text):
    assert ra.confirm_text(status) == text


@pytest.mark.parametrize('existing, lease, text', [
    (None, None, '(no phase is running)'),
    (None, LEASE, 'the canary run %s of ci@runner is still going' % RUN),
    (waiting(status='closed', outcome='completed'), LEASE, 'the last wait, the canary of 2.0.0'),
    (waiting(status='closed', outcome='completed'), None, '(completed)'),
    (waiting(status='closed', outcome='completed'), dict(LEASE, run_id='extended-2.0.0-2', phase='extended'),
     'the extended run extended-2.0.0-2 of ci@runner is still going'),
    (waiting(status='closed', outcome='completed'), dict(LEASE, run_id='other', expires=T0 - 1), '(completed)'),
])
def test_nothing_waiting_says_what_is_going_on(existing, lease, text):
    assert text in ra.nothing_waiting('supersmartmatch', existing, lease, T0)
