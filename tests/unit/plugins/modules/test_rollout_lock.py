"""rollout_lock through its main path."""
import os

import pytest

from ansible_collections.supersmartmatch.platform.plugins.modules import rollout_lock

from .helpers import run_main


def test_rollout_lock_module(tmp_path, capsys):
    d = str(tmp_path / 'state')
    args = dict(service='svc', state_dir=d, run_id='canary-2.0.0-1', holder='alice@ctl', phase='canary', ttl=600)
    taken = run_main(rollout_lock, args, capsys)
    assert taken['changed'] is True and taken['lease']['holder'] == 'alice@ctl' and taken['previous'] is None
    mine = run_main(rollout_lock, dict(args, state='released', run_id='rollback-1'), capsys)
    assert mine['changed'] is False and mine['lease']['holder'] == 'alice@ctl'
    forced = run_main(rollout_lock, dict(args, state='released', run_id='rollback-1', force=True), capsys)
    assert forced['changed'] is True and forced['lease'] is None
    assert forced['previous']['holder'] == 'alice@ctl' and forced['previous']['phase'] == 'canary'
    run_main(rollout_lock, args, capsys)
    refused = run_main(rollout_lock, dict(args, run_id='canary-2.0.0-2', holder='bob@ctl'), capsys)
    assert refused['failed'] is True and 'lease held by alice@ctl' in refused['msg']
    assert refused['lease']['holder'] == 'alice@ctl' and refused['previous'] == refused['lease']
    run_main(rollout_lock, dict(args, state='released'), capsys)
    again = run_main(rollout_lock, dict(args, state='released', run_id='rollback-1', force=True), capsys)
    assert again['changed'] is False and again['previous'] is None and again['lease'] is None


@pytest.mark.parametrize('extra, message', [
    (dict(service='../x'), 'service must start with a lower-case letter'),
    (dict(service='svc/../../tmp/x'), 'service must start with a lower-case letter'),
    (dict(run_id='r\n'), 'run_id must be 1 to 128 of'),
    (dict(holder='alice ctl'), 'holder must be 1 to 128 of'),
    (dict(phase='canary;'), 'phase must be 1 to 128 of'),
    (dict(ttl=0), 'ttl must be a positive number of seconds'),
])
def test_rollout_lock_refuses_bad_input_cleanly(tmp_path, capsys, extra, message):
    d = tmp_path / 'state'
    args = dict(service='svc', state_dir=str(d), run_id='r1', holder='alice@ctl', phase='canary', ttl=600)
    args.update(extra)
    for state in ('acquired', 'released'):
        result = run_main(rollout_lock, dict(args, state=state), capsys)
        assert result['failed'] is True and result['changed'] is False and message in result['msg']
    assert not d.exists() and os.listdir(str(tmp_path)) == []
