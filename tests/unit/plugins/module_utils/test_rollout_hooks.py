"""Table tests of the rollout hooks (module_utils/rollout_hooks.py): checks, events, outcomes."""
import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_hooks as rk

URL = 'https://hooks.example/run?token=s3cret'
SMOKE = {'name': 'smoke', 'type': 'pre_rollout', 'url': URL}
LOAD = {'name': 'load', 'type': 'rollout', 'url': 'http://loadgen:8089/start', 'timeout': 5,
        'metadata': {'users': 50}}
CTX = {'phase': 'canary', 'release': '2.0.0', 'run_id': 'canary-2.0.0-1', 'holder': 'alice@ctl'}


@pytest.mark.parametrize('hooks, problem', [
    (None, None),
    ([], None),
    ([SMOKE, LOAD], None),
    ([dict(SMOKE, headers={'Authorization': 'Bearer x'}, timeout='30')], None),
    ('smoke', 'rollout_hooks must be a list of hooks'),
    ([SMOKE] * 21, 'at most 20 hooks'),
    (['smoke'], 'rollout_hooks[0] must be a dict with name, type and url'),
    ([dict(SMOKE, retries=3)], 'rollout_hooks[0]: unknown key(s) retries'),
    ([dict(SMOKE, name='smoke test')], 'rollout_hooks[0]: name must be 1 to 64 of'),
    ([dict(SMOKE, name='smoke\n')], 'rollout_hooks[0]: name must be 1 to 64 of'),
    ([dict(SMOKE, type='pre-rollout')], "rollout_hooks[0] (smoke): type must be one of pre_rollout, rollout"),
    ([dict(SMOKE, url='ftp://x/y')], 'rollout_hooks[0] (smoke): url must be an http:// or https:// URL'),
    ([dict(SMOKE, url='https://x/y\n')], 'url must be an http:// or https:// URL'),
    ([dict(SMOKE, url='https://x/a b')], 'url must be an http:// or https:// URL'),
    ([dict(SMOKE, url='https://')], 'url must be an http:// or https:// URL'),
    ([dict(SMOKE, url=None)], 'url must be an http:// or https:// URL'),
    ([dict(SMOKE, timeout=0)], 'timeout must be between 1 and 300 seconds, got 0'),
    ([dict(SMOKE, timeout='5s')], 'timeout must be a whole number of seconds'),
    ([dict(SMOKE, timeout='\u0665')], 'timeout must be a whole number of seconds'),
    ([dict(SMOKE, timeout=True)], 'timeout must be a whole number of seconds'),
    ([dict(SMOKE, metadata='x')], 'metadata must be a dict with string keys'),
    ([dict(SMOKE, metadata={'a': object()})], 'metadata must hold JSON values only'),
    ([dict(SMOKE, metadata={'a': 'x' * 5000})], 'metadata must be at most 4096 bytes'),
    ([dict(SMOKE, headers=['a'])], 'headers must be a dict'),
    ([dict(SMOKE, headers={'X Token': 'a'})], "header name 'X Token'"),
    ([dict(SMOKE, headers={'X-Token': 'a\r\nX-Evil: 1'})], 'header X-Token must be a string without control'),
    ([SMOKE, dict(LOAD, name='smoke')], "hook names must be unique, 'smoke' appears twice"),
])
def test_check_hooks(hooks, problem):
    found = rk.check_hooks(hooks)
    if problem is None:
        assert found is None
    else:
        assert problem in found
        assert 's3cret' not in found


def test_hooks_of_fills_the_timeout_and_keeps_inventory_order():
    second = dict(SMOKE, name='schema', timeout=3)
    hooks = rk.hooks_of([SMOKE, LOAD, second], 'pre_rollout', default_timeout=7)
    assert [(h['name'], h['timeout']) for h in hooks] == [('smoke', 7), ('schema', 3)]
    assert rk.hooks_of([SMOKE], 'rollback') == []
    assert rk.hooks_of(None, 'rollback') == []


@pytest.mark.parametrize('hooks, kind, default, text', [
    ([SMOKE], 'pre-rollout', 10, 'hook type must be one of'),
    ([dict(SMOKE, type='x')], 'pre_rollout', 10, 'type must be one of'),
    ([SMOKE], 'pre_rollout', 0, 'rollout_hook_timeout must be between 1 and 300'),
])
def test_hooks_of_refuses_bad_input(hooks, kind, default, text):
    with pytest.raises(ValueError) as exc:
        rk.hooks_of(hooks, kind, default)
    assert text in str(exc.value)


def test_hook_event_names_the_run_and_carries_the_metadata():
    event = rk.hook_event(LOAD, 'rollout', CTX, 'supersmartmatch', {'percent': 5})
    assert event == {'event': 'rollout', 'hook': 'load', 'service': 'supersmartmatch', 'phase': 'canary',
                     'release': '2.0.0', 'run_id': 'canary-2.0.0-1', 'by': 'alice@ctl', 'metadata': {'users': 50},
                     'details': {'percent': 5}}
    assert 'url' not in str(event)


def uri(status, msg='', hook=None, **extra):
    result = {'status': status, 'msg': msg, 'item': dict(hook or SMOKE, timeout=5), 'failed': False, 'url': URL}
    result.update(extra)
    return result


@pytest.mark.parametrize('result, ok, why', [
    (uri(200), True, 'HTTP 200'),
    (uri(204), True, 'HTTP 204'),
    (uri(500, 'Status code was 500 and not [200]: HTTP Error 500'), False, 'answered HTTP 500'),
    (uri(504, 'Status code was 504: HTTP Error 504: Gateway Timeout'), False, 'answered HTTP 504'),
    (uri(302), False, 'answered HTTP 302'),
    (uri(-1, 'Status code was -1 and not [200]: Request failed: <urlopen error timed out>'), False,
     'timed out after 5 s'),
    (uri(-1, 'Status code was -1 and not [200]: Connection failure: The read operation timed out'), False,
     'timed out after 5 s'),
    (uri(-1, 'Status code was -1 and not [200]: Request failed: <urlopen error [Errno 111] Connection refused>'),
     False, 'no answer (<urlopen error [Errno 111] Connection refused>)'),
    (uri(-1, 'Request failed: cannot reach %s' % URL), False, 'no answer (cannot reach <url>)'),
    (uri(None), False, 'no answer (unreachable)'),
    ({'skipped': True}, False, 'not called'),
])
def test_call_outcome(result, ok, why):
    assert rk.call_outcome(result) == (ok, why)


def test_a_failing_pre_rollout_hook_refuses_the_phase_and_is_named():
    registered = {'results': [uri(200), uri(503, hook=dict(SMOKE, name='schema'))]}
    out = rk.judge_calls('pre_rollout', registered)
    assert out['ok'] is False
    assert [c['ok'] for c in out['calls']] == [True, False]
    assert out['failures'] == [{'host': 'localhost', 'step': 'pre_rollout', 'msg':
                                "the pre_rollout hook 'schema' failed (answered HTTP 503): the phase is refused, "
                                "nothing was moved"}]
    assert 's3cret' not in str(out)


@pytest.mark.parametrize('kind, consequence', [
    ('rollout', 'the hold goes on: the gate judges the candidate on its own evidence'),
    ('post_rollout', 'the rollout itself is not affected'),
    ('rollback', 'the rollout itself is not affected'),
])
def test_other_failing_hooks_are_reported_only(kind, consequence):
    out = rk.judge_calls(kind, {'results': [uri(-1, 'Connection failure: timed out', hook=dict(LOAD, type=kind))]})
    assert out['ok'] is False and out['failures'] == []
    assert out['text'] == "%s hook(s) failed: 'load' timed out after 5 s; %s" % (kind, consequence)


def test_hooks_that_answered():
    out = rk.judge_calls('post_rollout', {'results': [uri(200)]})
    assert out == {'type': 'post_rollout', 'ok': True, 'failures': [], 'text': "post_rollout hook(s) answered: "
                   "'smoke' HTTP 200", 'calls': [{'name': 'smoke', 'type': 'post_rollout', 'ok': True,
                                                  'outcome': 'HTTP 200'}]}
    assert rk.judge_calls('rollback', {})['text'] == 'no rollback hook called'


@pytest.mark.parametrize('verdict, kind', [
    ('passed', 'post_rollout'), ('promoted', 'post_rollout'), ('rolled_back', 'rollback'), ('failed', ''),
    ('refused', ''), ('aborted', ''), ('inconclusive', ''), ('approval_timeout', ''),
])
def test_hook_after(verdict, kind):
    assert rk.hook_after({'verdict': verdict}) == kind
