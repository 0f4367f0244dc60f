"""The approval and hook filters: they gather inputs, refuse bad ones cleanly, and each has its documentation."""
import inspect
import os

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.supersmartmatch.platform.plugins.filter import rollout_control as rc

FILTER_DIR = os.path.dirname(rc.__file__)
HOOK = {'name': 'smoke', 'type': 'pre_rollout', 'url': 'https://ci.example/smoke?token=t0k3n'}


@pytest.mark.parametrize('name', sorted(rc.FilterModule().filters()))
def test_every_filter_is_documented_with_its_arguments(name):
    with open(os.path.join(FILTER_DIR, '%s.yml' % name)) as handle:
        doc = yaml.safe_load(handle)['DOCUMENTATION']
    assert doc['name'] == name
    arguments = list(inspect.signature(rc.FilterModule().filters()[name]).parameters)[1:]
    positional = [p.strip() for p in doc.get('positional', '').split(',') if p.strip()]
    assert positional == arguments
    assert sorted(doc['options']) == sorted(['_input'] + arguments)


class HostVars(dict):
    """hostvars as the filters see them: host -> that host's variables."""


def test_approve_summary_reads_each_balancers_registered_result():
    hostvars = HostVars(lb1={'rollout_approval_decided': {'changed': True, 'msg': 'the canary of 2.0.0 approved'}},
                        lb2={'rollout_approval_decided': {'unreachable': True, 'msg': 'timed out'}})
    out = rc.rollout_approve_summary(['lb1', 'lb2'], hostvars, ['lb1', 'lb2'], 'approve')
    assert out['ok'] is False and out['recorded'] == ['lb1'] and out['unknown'] == ['lb2']


def test_control_problem_checks_the_approval_then_the_hooks_then_the_hook_timeout():
    assert rc.rollout_control_problem(False, 3600, '', [], 30, 10) == ''
    assert 'rollout_approval_timeout must be between 30' in rc.rollout_control_problem(True, 5, '', [HOOK], 30, 10)
    assert "rollout_hooks[0] (smoke): type must be one of" in rc.rollout_control_problem(
        False, 0, '', [dict(HOOK, type='pre')], 30, 10)
    assert 'rollout_hook_timeout must be between 1 and 300' in rc.rollout_control_problem(False, 0, '', [HOOK], 30, 0)


def test_filters_refuse_bad_input_with_their_name_not_a_traceback():
    with pytest.raises(AnsibleFilterError) as err:
        rc.rollout_hooks_of([dict(HOOK, url='ftp://x')], 'pre_rollout')
    assert str(err.value).startswith('rollout_hooks_of: rollout_hooks[0] (smoke): url must be')
    assert 't0k3n' not in str(err.value)
    with pytest.raises(AnsibleFilterError) as err:
        rc.rollout_approval_settings('maybe', 60)
    assert 'rollout_approval_settings: rollout_require_approval must be true or false' in str(err.value)


def test_hook_filters_from_event_to_outcome():
    hooks = rc.rollout_hooks_of([HOOK], 'pre_rollout', 7)
    event = rc.rollout_hook_event(hooks[0], 'pre_rollout', {'phase': 'canary', 'release': '2.0.0'}, 'svc')
    assert event['event'] == 'pre_rollout' and event['release'] == '2.0.0'
    outcome = rc.rollout_hook_outcome({'results': [{'item': hooks[0], 'status': 500, 'msg': 'x'}]}, 'pre_rollout')
    assert outcome['failures'][0]['step'] == 'pre_rollout'
    assert rc.rollout_hook_after({'verdict': 'promoted'}) == 'post_rollout'


def test_wait_filters():
    gate = rc.rollout_approval_gate({'checks': [{'name': 'up', 'initial_delay': 9}]}, 20, 5, 100)
    assert gate['rounds'] == 4 and gate['checks'] == [{'name': 'up'}]
    failures = rc.rollout_wait_failure({'finished': True, 'verdict': 'passed'}, 'lb1', {'phase': 'canary'}, 20)
    assert [f['step'] for f in failures] == ['approval_timeout']
    assert rc.rollout_hold_rollback(failures) is False
    assert rc.rollout_hold_rollback([{'step': 'rejected'}]) is True
    assert rc.rollout_approve_problem('2.0.0', 'approve', '', '', 'alice@ctl') == ''
