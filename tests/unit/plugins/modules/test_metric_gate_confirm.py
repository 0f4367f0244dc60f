"""metric_gate's confirm option through the module's main path (no request is sent in these cases)."""
import json

import pytest

from ansible_collections.supersmartmatch.platform.plugins.modules import metric_gate

from .helpers import run_main

CHECKS = [dict(name='precision', query='precision', min=0.94)]


def args(tmp_path, **extra):
    out = dict(url='http://127.0.0.1:9/prometheus', checks=CHECKS, count=3, interval=5,
               resume_file=str(tmp_path / 'gate.json'), run_key='run-1',
               confirm=dict(path=str(tmp_path / 'svc.approval.json'), run_id='run-1',
                            url='https://ci.example/approve?token=t0k3n'))
    out.update(extra)
    return out


@pytest.mark.parametrize('status', ['approved', 'rejected'])
def test_a_recorded_decision_returns_at_once_and_the_webhook_url_never_shows(tmp_path, capsys, status):
    (tmp_path / 'svc.approval.json').write_text(json.dumps(
        {'run_id': 'run-1', 'status': status, 'by': 'alice@laptop', 'at': '2027-01-15T08:00:00Z'}))
    result = run_main(metric_gate, args(tmp_path), capsys)
    assert result.get('failed') is not True
    assert (result['finished'], result['verdict'], result['round'], result['samples']) == (False, 'running', None, 0)
    assert result['confirm']['decision'] == status and result['confirm']['source'] == 'approve.yml'
    assert 't0k3n' not in json.dumps(result)


@pytest.mark.parametrize('extra, message', [
    (dict(resume_file=None, run_key=None), 'confirm needs step mode (resume_file and run_key)'),
    (dict(confirm=dict(path='relative.json', run_id='run-1')), 'confirm: path must be an absolute path'),
    (dict(confirm=dict(path='/x.json', run_id='run 1')), 'confirm: run_id must be 1 to 128 of'),
    (dict(confirm=dict(path='/x.json', run_id='run-1', url='https://ci.example/a b?token=t0k3n')),
     'confirm: url must be an http:// or https:// URL'),
    (dict(confirm=dict(path='/x.json', run_id='run-1', timeout=0)), 'confirm: timeout must be > 0'),
])
def test_bad_confirm_is_refused_before_any_request(tmp_path, capsys, extra, message):
    result = run_main(metric_gate, args(tmp_path, **extra), capsys)
    assert result['failed'] is True and message in result['msg']
    assert 't0k3n' not in json.dumps(result)
    assert not (tmp_path / 'gate.json').exists()
