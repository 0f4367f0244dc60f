"""playbooks/status.yml's table (module_utils/rollout_status.py)."""
from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_status as rs


def ok(host, percent=5, generation=7, drift=False, lease=None):
    return {'host': host, 'status': 'ok', 'info': {
        'exists': True, 'generation': generation, 'drift': drift, 'drift_reason': 'file at 8, state at 7' if drift else None,
        'lease': lease,
        'state': {'percent': percent, 'phase': 'canary', 'status': 'in_progress',
                  'stable': {'version': '1.0.0', 'color': 'blue'}, 'candidate': {'version': '2.0.0', 'color': 'green'}}}}


GATE = {'measurements': [
    {'check': 'precision', 'sample': 1, 'time': 'T1', 'value': 0.97, 'outcome': 'passed', 'message': ''},
    {'check': 'precision', 'sample': 2, 'time': 'T2', 'value': 0.95, 'outcome': 'passed', 'message': ''},
    {'check': 'latency_p95', 'sample': 2, 'time': 'T2', 'value': 0.31, 'outcome': 'failed', 'message': '0.31 > max 0.2'}]}


def test_table_of_agreeing_balancers_with_a_lease_and_the_last_round():
    lease = {'holder': 'ci@runner', 'run_id': 'r', 'phase': 'canary', 'expires_at': '2026-11-29T20:00:00Z',
             'expired': False}
    doc = rs.status([ok('lb1', lease=lease), ok('lb2', lease=lease)], GATE, 'live hold on lb1')
    assert doc['agree'] and doc['unknown'] == [] and doc['drift'] == []
    lines = rs.table(doc)
    assert lines[1].split()[:9] == ['lb1', '1.0.0', 'blue', '95', '%', '|', '2.0.0', 'green', '5']
    assert 'ci@runner until 2026-11-29T20:00:00Z' in lines[1]
    assert lines[3] == 'last gate round 2 at T2 (live hold on lb1):'
    assert lines[5] == '  latency_p95: 0.31 failed (0.31 > max 0.2)'


def test_unknown_and_drifted_balancers_are_named():
    doc = rs.status([ok('lb1', drift=True), {'host': 'lb2', 'status': 'unreachable', 'msg': 'timed out'}])
    assert doc['unknown'] == ['lb2'] and doc['drift'] == ['lb1'] and not doc['agree']
    text = '\n'.join(rs.table(doc))
    assert 'UNKNOWN: lb2' in text and 'DRIFT: lb1' in text and 'UNKNOWN (timed out)' in text


def test_disagreement_is_said():
    doc = rs.status([ok('lb1', percent=5), ok('lb2', percent=0)])
    assert not doc['agree']
    assert 'DISAGREE' in '\n'.join(rs.table(doc))


def record(status, **extra):
    base = {'status': status, 'release': '2.0.0', 'phase': 'canary', 'run_id': 'canary-2.0.0-x', 'holder': 'ci@runner',
            'opened_at': 'T0', 'deadline_at': 'T9', 'by': None, 'at': None}
    base.update(extra)
    return base


def test_a_phase_waiting_for_approval_says_how_to_approve_or_reject():
    doc = rs.status([ok('lb1'), ok('lb2')], approvals={'lb1': record('waiting'), 'lb2': record('waiting')})
    assert doc['balancers'][0]['approval']['status'] == 'waiting'
    lines = [line for line in rs.table(doc) if 'APPROVAL' in line]
    assert lines == ['WAITING FOR APPROVAL: the canary of 2.0.0 on lb1, lb2, until T9: playbooks/approve.yml '
                     '-e release_version=2.0.0 (add -e decision=reject to roll back)']


def test_one_wait_is_one_line_though_each_balancer_opened_it_a_second_apart():
    approvals = {'lb1': record('waiting', deadline_at='2026-11-30T02:17:45Z'),
                 'lb2': record('waiting', deadline_at='2026-11-30T02:17:44Z')}
    lines = [line for line in rs.table(rs.status([ok('lb1'), ok('lb2')], approvals=approvals)) if 'APPROVAL' in line]
    assert lines == ['WAITING FOR APPROVAL: the canary of 2.0.0 on lb1, lb2, until 2026-11-30T02:17:44Z: '
                     'playbooks/approve.yml -e release_version=2.0.0 (add -e decision=reject to roll back)']


def test_a_decision_not_yet_acted_on_is_shown_and_a_closed_record_is_not():
    approvals = {'lb1': record('rejected', by='oncall@x', at='T5'), 'lb2': record('closed')}
    doc = rs.status([ok('lb1'), ok('lb2')], approvals=approvals)
    assert doc['balancers'][1]['approval'] is None
    text = '\n'.join(rs.table(doc))
    assert 'The canary of 2.0.0 was REJECTED by oncall@x on lb1' in text and 'WAITING' not in text


def test_approval_records_that_are_not_records_are_ignored():
    for bad in (None, 'text', [], {'status': 'unknown'}):
        assert rs.approval_of(bad) is None
    doc = rs.status([{'host': 'lb2', 'status': 'unreachable', 'msg': 'timed out'}], approvals={'lb2': record('waiting')})
    assert doc['balancers'][0]['approval'] is None
