"""rollout_approval through its main path: open, decide (compare-and-set), close, check mode, bad input."""
import json
import os

import pytest
import yaml

from ansible_collections.supersmartmatch.platform.plugins.module_utils.locking import acquire_lease
from ansible_collections.supersmartmatch.platform.plugins.modules import rollout_approval

from .helpers import run_main

RUN = 'canary-2.0.0-20270115T080000Z-1'


def files(directory):
    out = {}
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if not name.startswith('.'):
            with open(os.path.join(directory, name)) as handle:
                out[name] = handle.read()
    return out


def test_the_wait_of_a_phase_from_opening_to_closing(tmp_path, capsys):
    d = str(tmp_path / 'state')
    os.makedirs(d)
    acquire_lease(d, 'svc', RUN, 'ci@runner', 'canary', 3600)
    base = dict(service='svc', state_dir=d)
    opened = run_main(rollout_approval, dict(base, state='waiting', run_id=RUN, release='2.0.0', phase='canary',
                                             holder='ci@runner', timeout=600), capsys)
    assert opened['changed'] is True and opened['previous'] is None
    assert opened['record']['status'] == 'waiting' and 'waits for approval until' in opened['msg']
    record = json.load(open(os.path.join(d, 'svc.approval.json')))
    assert record['run_id'] == RUN and record['timeout_s'] == 600

    again = run_main(rollout_approval, dict(base, state='waiting', run_id=RUN, release='2.0.0', phase='canary',
                                            timeout=600), capsys)
    assert again['changed'] is False

    wrong = run_main(rollout_approval, dict(base, state='approved', release='3.0.0', by='alice@laptop'), capsys)
    assert wrong['failed'] is True and 'not a phase of 3.0.0' in wrong['msg'] and wrong['changed'] is False

    before = files(d)
    dry = run_main(rollout_approval, dict(base, state='approved', release='2.0.0', by='alice@laptop',
                                          _ansible_check_mode=True), capsys)
    assert dry['changed'] is True and dry['record']['status'] == 'approved' and files(d) == before

    approved = run_main(rollout_approval, dict(base, state='approved', release='2.0.0', phase='canary',
                                               by='alice@laptop', comment='dashboards look fine'), capsys)
    assert approved['changed'] is True and approved['previous']['status'] == 'waiting'
    assert approved['record']['by'] == 'alice@laptop' and approved['record']['comment'] == 'dashboards look fine'
    assert 'approved by alice@laptop' in approved['msg']

    same = run_main(rollout_approval, dict(base, state='approved', release='2.0.0', by='bob@ctl'), capsys)
    assert same['changed'] is False and 'already approved by alice@laptop' in same['msg']
    late = run_main(rollout_approval, dict(base, state='rejected', release='2.0.0', by='bob@ctl'), capsys)
    assert late['failed'] is True and 'run playbooks/rollback.yml' in late['msg']

    closed = run_main(rollout_approval, dict(base, state='closed', run_id=RUN, outcome='completed'), capsys)
    assert closed['changed'] is True and closed['record']['status'] == 'closed'
    after = run_main(rollout_approval, dict(base, state='approved', release='2.0.0', by='bob@ctl'), capsys)
    assert after['failed'] is True and 'nothing is waiting for approval of svc' in after['msg']
    assert 'ended at' in after['msg'] and '(completed)' in after['msg']


def test_nothing_to_decide_on_a_balancer_without_state(tmp_path, capsys):
    d = str(tmp_path / 'none')
    result = run_main(rollout_approval, dict(service='svc', state_dir=d, state='rejected', release='2.0.0',
                                             by='bob@ctl'), capsys)
    assert result['failed'] is True and 'nothing is waiting for approval of svc (no phase is running)' in result['msg']
    closing = run_main(rollout_approval, dict(service='svc', state_dir=d, state='closed', run_id=RUN), capsys)
    assert closing['changed'] is False and not os.path.exists(d)
    opening = run_main(rollout_approval, dict(service='svc', state_dir=d, state='waiting', run_id=RUN,
                                              release='2.0.0', phase='canary', timeout=60), capsys)
    assert opening['failed'] is True and 'state_dir %s does not exist' % d in opening['msg']


@pytest.mark.parametrize('extra, message', [
    (dict(service='../x', state='closed', run_id=RUN), 'service must start with a lower-case letter'),
    (dict(state='waiting', run_id=RUN, release='2.0.0', phase='canary'), 'state=waiting needs timeout'),
    (dict(state='approved', release='2.0.0'), 'state=approved needs by'),
    (dict(state='approved', by='alice@laptop'), 'state=approved needs release'),
    (dict(state='waiting', run_id=RUN, release='2.0.0\n', phase='canary', timeout=60), 'release must be 1 to 64'),
    (dict(state='waiting', run_id=RUN, release='2.0.0', phase='canary', timeout=0), 'timeout must be between 1 and'),
    (dict(state='approved', release='2.0.0', by='alice\n'), 'by must be 1 to 128 of'),
    (dict(state='rejected', release='2.0.0', by='alice', comment='a\nb'), 'comment must be at most 200'),
    (dict(state='closed', run_id=RUN, outcome='done\n'), 'outcome must be at most 200'),
    (dict(state='closed', run_id=RUN, state_dir='relative/dir'), 'state_dir must be an absolute path'),
])
def test_bad_input_is_refused_cleanly_with_nothing_written(tmp_path, capsys, extra, message):
    d = tmp_path / 'state'
    args = dict(service='svc', state_dir=str(d))
    args.update(extra)
    result = run_main(rollout_approval, args, capsys)
    assert result['failed'] is True and result['changed'] is False and message in result['msg']
    assert 'Traceback' not in json.dumps(result)
    assert not d.exists()


def test_documentation_matches_the_argument_spec():
    """What ansible-doc and the sanity test read: every option documented, with its type, default and choices."""
    doc = yaml.safe_load(rollout_approval.DOCUMENTATION)
    assert yaml.safe_load(rollout_approval.EXAMPLES)
    returned = yaml.safe_load(rollout_approval.RETURN)
    assert all(set(v) >= {'description', 'returned', 'type', 'sample'} for v in returned.values())
    spec = rollout_approval.argument_spec()
    assert sorted(doc['options']) == sorted(spec)
    for name, option in doc['options'].items():
        for key in ('type', 'default', 'choices', 'required'):
            assert option.get(key) == spec[name].get(key), (name, key)
