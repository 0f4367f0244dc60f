"""The line each gate round prints (module_utils/gate_progress.py)."""
import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils.gate_progress import (
    format_decision, format_round, progress_batches, progress_event)


@pytest.mark.parametrize('result, line', [
    ({'round': {'index': 3, 'results': [
        {'name': 'health of app1', 'value': 1, 'outcome': 'passed', 'threshold': 'value >= 1'},
        {'name': 'precision', 'value': 0.9712345, 'outcome': 'passed', 'threshold': 'value >= 0.94'},
        {'name': 'latency_p95', 'value': None, 'outcome': 'no_data', 'threshold': 'value <= 0.2'}]},
      'rounds_total': 7, 'remaining_s': 20.4, 'verdict': 'running'},
     '[lb1] gate round 3/7, 20 s left: health of app1 1 (value >= 1) ok; precision 0.9712 (value >= 0.94) ok; '
     'latency_p95 - (value <= 0.2) no data -> running'),
    ({'round': {'index': 2, 'results': [{'name': 'precision', 'value': 0.41, 'outcome': 'failed',
                                         'threshold': 'value >= 0.94'}]},
      'rounds_total': 4, 'remaining_s': 0, 'verdict': 'failed'},
     '[lb1] gate round 2/4, 0 s left: precision 0.41 (value >= 0.94) FAILED -> failed'),
    ({'round': {'index': 1, 'results': []}, 'verdict': 'aborted'},
     '[lb1] gate round 1/?: nothing measured -> aborted'),
    ({'round': {'index': 2, 'results': [{'name': 'precision', 'value': 0.97, 'outcome': 'passed',
                                         'threshold': 'value >= 0.94'}]},
      'rounds_total': 4, 'remaining_s': 10, 'verdict': 'running', 'confirm': {'decided': False}},
     '[lb1] gate round 2/4, 10 s left: precision 0.97 (value >= 0.94) ok -> running, waiting for approval'),
    ({'round': {'index': 3, 'results': []}, 'rounds_total': 4, 'remaining_s': 5, 'verdict': 'running',
      'confirm': {'decided': False, 'problem': 'answered HTTP 404'}},
     '[lb1] gate round 3/4, 5 s left: nothing measured -> running, waiting for approval (answered HTTP 404)'),
    ({'round': {'index': 4, 'results': []}, 'rounds_total': 4, 'remaining_s': 0, 'verdict': 'passed',
      'confirm': {'decided': False}},
     '[lb1] gate round 4/4, 0 s left: nothing measured -> passed, but nobody approved in time'),
    ({'round': {'index': 2, 'results': []}, 'rounds_total': 4, 'remaining_s': 0, 'verdict': 'failed',
      'confirm': {'decided': False}},
     '[lb1] gate round 2/4, 0 s left: nothing measured -> failed'),
])
def test_format_round(result, line):
    assert format_round('lb1', result) == line


@pytest.mark.parametrize('result, line', [
    ({'round': None, 'verdict': 'running'}, None),
    ({'confirm': {'decided': False, 'decision': 'waiting'}}, None),
    ({'confirm': {'decided': True, 'decision': 'approved', 'by': 'alice@laptop', 'at': 'T', 'source': 'approve.yml'}},
     '[lb1] approval: approved by alice@laptop at T (approve.yml)'),
    ({'confirm': {'decided': True, 'decision': 'rejected', 'by': 'bob@ctl', 'at': 'T', 'source': 'approve.yml',
                  'comment': 'p99 too high'}},
     '[lb1] approval: rejected by bob@ctl at T (approve.yml): p99 too high'),
])
def test_format_decision(result, line):
    assert format_decision('lb1', result) == line


def _running(index, retry=False, **extra):
    result = {'finished': False, 'verdict': 'running', 'current': 'passed', 'rounds_total': 6, 'remaining_s': 12.0,
              'round': {'index': index, 'retry': retry, 'results': [
                  {'name': 'precision', 'value': 0.97, 'outcome': 'passed', 'threshold': 'value >= 0.94', 'x': 1}]}}
    result.update(extra)
    return result


@pytest.mark.parametrize('result, every, notified, expected_round', [
    (_running(2), 2, 0, 2),                     # every 2nd round
    (_running(3), 2, 2, 0),                     # not a multiple
    (_running(4), 2, 2, 4),
    (_running(4), 2, 4, 0),                     # already announced
    (_running(4, retry=True), 2, 2, 0),         # a retry after an error measures no new round
    (_running(2), 0, 0, 0),                     # progress off
    (_running(6, finished=True, verdict='passed'), 2, 4, 0),   # the verdict tells the end
    ({'finished': False, 'round': None}, 1, 0, 0),             # watch moved / decision: no round
    ({'unreachable': True, 'msg': 'timed out'}, 1, 0, 0),
    (None, 1, 0, 0),
    (_running(True), 1, 0, 0),
])
def test_progress_event_is_due_every_n_new_rounds_while_running(result, every, notified, expected_round):
    event = progress_event('lb1', result, every, notified)
    assert event.get('round', 0) == expected_round


def test_progress_event_text_and_details():
    event = progress_event('lb1', _running(2), 2)
    assert event['text'] == '[lb1] gate round 2/6, 12 s left: precision 0.97 (value >= 0.94) ok -> running'
    assert event['details'] == {'round': 2, 'rounds_total': 6, 'remaining_s': 12.0, 'current': 'passed',
                                'checks': [{'name': 'precision', 'value': 0.97, 'outcome': 'passed',
                                            'threshold': 'value >= 0.94'}]}


@pytest.mark.parametrize('count, every, batches', [(5, 0, 1), (5, 1, 7), (6, 2, 5), (240, 10, 26), (1, 5, 2)])
def test_progress_batches(count, every, batches):
    assert progress_batches(count, every) == batches


@pytest.mark.parametrize('count, every, message', [(0, 1, 'at least one round'), (3, -1, 'must be >= 0')])
def test_progress_batches_refuses(count, every, message):
    with pytest.raises(ValueError) as err:
        progress_batches(count, every)
    assert message in str(err.value)
