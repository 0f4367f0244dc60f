"""precheck: what each pre-deployment reading means (table tests), the rows of a fleet, the table."""
import calendar
import json

import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import precheck as pc

NOW = calendar.timegm((2026, 11, 30, 12, 0, 0, 0, 0, 0))
DAY = 86400
THRESHOLDS = {'cert_days': 14, 'min_free_percent': 10.0, 'max_lag_bytes': 1048576, 'backup_max_age_hours': 26.0}


@pytest.mark.parametrize('text,expected', [
    ('notAfter=Nov 30 12:00:00 2026 GMT', NOW),
    ('notAfter=Dec  1 12:00:00 2026 GMT\n', NOW + DAY),
    ('notAfter=Foo 30 12:00:00 2026 GMT', None),
    ('notAfter=Nov 30 12:00:00 2026 GMT; rm -rf /', None),
    ('', None),
    (None, None),
])
def test_not_after_reads_openssl_enddate_in_full(text, expected):
    assert pc.not_after(text) == expected


def enddate(epoch):
    import time
    return time.strftime('notAfter=%b %e %H:%M:%S %Y GMT', time.gmtime(epoch))


@pytest.mark.parametrize('data,status,words', [
    ({'rc': 0, 'stdout': enddate(NOW + 90 * DAY)}, pc.PASS, 'valid until 2027-02-28'),
    ({'rc': 0, 'stdout': enddate(NOW + 14 * DAY + 60)}, pc.PASS, 'valid until'),
    ({'rc': 0, 'stdout': enddate(NOW + 13 * DAY)}, pc.FAIL, 'in 13.0 days (< 14)'),
    ({'rc': 0, 'stdout': enddate(NOW - DAY)}, pc.FAIL, 'expired on 2026-11-29'),
    ({'rc': 1, 'stderr': 'Could not open file'}, pc.FAIL, 'unreadable: Could not open file'),
    ({'rc': 0, 'stdout': 'garbage'}, pc.FAIL, 'cannot read its end date'),
])
def test_certificate(data, status, words):
    got, detail = pc.certificate(dict(data, path='/etc/nginx/tls/server.crt'), NOW, 14)
    assert got == status and words in detail and '/etc/nginx/tls/server.crt' in detail


DF = 'Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 1000000 %d %d %d%% /\n'


@pytest.mark.parametrize('data,status,words', [
    ({'rc': 0, 'stdout': DF % (500000, 500000, 50)}, pc.PASS, '50.0 % free on /'),
    ({'rc': 0, 'stdout': DF % (900000, 100000, 90)}, pc.PASS, '10.0 % free'),
    ({'rc': 0, 'stdout': DF % (950000, 50000, 95)}, pc.FAIL, '5.0 % free on / (0.0 GiB) (< 10.0 %)'),
    ({'rc': 1, 'stderr': 'df: /nope: No such file'}, pc.FAIL, 'df failed: df: /nope'),
    ({'rc': 0, 'stdout': 'Filesystem\n'}, pc.FAIL, 'no reading'),
    ({'rc': 0, 'stdout': 'F\n/dev/x 0 0 0 0% /\n'}, pc.FAIL, 'size 0'),
])
def test_disk(data, status, words):
    got, detail = pc.disk(data, 10.0)
    assert got == status and words in detail


def member(name, role='replica', state='streaming', lag=0):
    out = {'name': name, 'role': role, 'state': state}
    if role != 'leader':
        out['lag'] = lag
    return out


@pytest.mark.parametrize('members,status,words', [
    ([member('d1', 'leader', 'running'), member('d2'), member('d3', role='sync_standby')], pc.PASS,
     'leader d1, 2 streaming replica(s)'),
    ([member('d1', 'leader', 'running'), member('d2', lag=2 * 1048576), member('d3')], pc.FAIL,
     'd2 lags 2097152 bytes (> 1048576)'),
    ([member('d1', 'leader', 'running'), member('d2', state='stopped'), member('d3')], pc.FAIL, 'd2 is stopped'),
    ([member('d1', 'leader', 'running'), member('d2', lag='unknown')], pc.FAIL, 'd2 has unknown lag'),
    ([member('d1'), member('d2')], pc.FAIL, 'expected one leader, found 0 (none)'),
    ([member('d1', 'leader'), member('d2', 'leader')], pc.FAIL, 'found 2 (d1, d2)'),
    ([member('d1', 'leader', 'running')], pc.FAIL, 'leader d1 has no replica'),
])
def test_patroni(members, status, words):
    got, detail = pc.patroni({'status': 200, 'json': {'members': members}}, 1048576)
    assert got == status and words in detail


def test_patroni_that_does_not_answer_is_a_blocker():
    got, detail = pc.patroni({'status': -1, 'msg': 'Status code was -1: Connection refused'}, 1)
    assert got == pc.FAIL and 'Connection refused' in detail


INFO = 'OK\ncluster_state:%s\ncluster_slots_assigned:%d\ncluster_slots_ok:%d\ncluster_known_nodes:6\n'


@pytest.mark.parametrize('data,status,words', [
    ({'rc': 0, 'stdout': INFO % ('ok', 16384, 16384)}, pc.PASS, 'cluster_state:ok, 16384 slots covered'),
    ({'rc': 0, 'stdout': INFO % ('fail', 16384, 10000)}, pc.FAIL, 'cluster_state:fail, 16384 of 16384 slots assigned, 10000 ok'),
    ({'rc': 0, 'stdout': INFO % ('ok', 16000, 16000)}, pc.FAIL, '16000 of 16384'),
    ({'rc': 0, 'stdout': 'NOAUTH Authentication required.'}, pc.FAIL, 'no CLUSTER INFO answer: NOAUTH'),
    ({'rc': 1, 'stderr': 'Could not connect to Redis'}, pc.FAIL, 'redis-cli failed: Could not connect'),
])
def test_redis(data, status, words):
    got, detail = pc.redis(data)
    assert got == status and words in detail


def backup_info(*stops):
    return json.dumps([{'name': 'main', 'backup': [{'label': str(s), 'timestamp': {'start': s - 60, 'stop': s}}
                                                   for s in stops]}])


@pytest.mark.parametrize('data,status,words', [
    ({'rc': 0, 'stdout': backup_info(NOW - 30 * 3600, NOW - 2 * 3600)}, pc.PASS, '2.0 h ago'),
    # the latest one is named, whatever the order pgBackRest lists them in
    ({'rc': 0, 'stdout': backup_info(NOW - 2 * 3600, NOW - 30 * 3600)}, pc.PASS, 'backup %d (' % (NOW - 2 * 3600)),
    ({'rc': 0, 'stdout': backup_info(NOW - 30 * 3600)}, pc.FAIL, '30.0 h ago (> 26.0 h)'),
    ({'rc': 0, 'stdout': json.dumps([{'name': 'main', 'backup': []}])}, pc.FAIL, 'no backup in the repository'),
    ({'rc': 0, 'stdout': 'not json'}, pc.FAIL, 'no JSON'),
    ({'rc': 28, 'stderr': 'ERROR: [028]: backup and archive info files exist but do not match'}, pc.FAIL,
     'pgbackrest info failed: ERROR: [028]'),
])
def test_backup(data, status, words):
    got, detail = pc.backup(data, NOW, 26.0)
    assert got == status and words in detail


LEASE = {'holder': 'ci@runner', 'run_id': 'canary-2.0.0-x', 'phase': 'canary', 'expires_at': '2026-11-30T13:00:00Z',
         'expired': False}


@pytest.mark.parametrize('info,split,held', [
    ({'exists': True, 'drift': False, 'generation': 4, 'state': {'percent': 5.0}, 'lease': None},
     (pc.PASS, 'generation 4, 5.0 % on the candidate'), (pc.PASS, 'no lease held')),
    ({'exists': True, 'drift': True, 'drift_reason': 'the split file is at generation 9', 'lease': LEASE},
     (pc.FAIL, 'drift: the split file is at generation 9; run playbooks/rollback.yml'),
     (pc.FAIL, 'lease held by ci@runner for canary-2.0.0-x (canary), until 2026-11-30T13:00:00Z')),
    ({'exists': True, 'drift': False, 'state': {}, 'lease': dict(LEASE, expired=True)},
     (pc.PASS, 'on the candidate'), (pc.PASS, 'expired lease of canary-2.0.0-x (free)')),
    ({'exists': False, 'drift': False, 'lease': None}, (pc.WARN, 'no split state yet'), (pc.PASS, 'no lease')),
    ({'failed': True, 'msg': 'state_dir unreadable'}, (pc.FAIL, 'traffic_split_info failed: state_dir unreadable'),
     (pc.FAIL, 'traffic_split_info failed')),
])
def test_split_state_and_lease(info, split, held):
    for (status, words), got in ((split, pc.split_state(info)), (held, pc.lease(info))):
        assert got[0] == status and words in got[1]


@pytest.mark.parametrize('data,status', [
    ({'rc': 0, 'stderr': 'nginx: configuration file /etc/nginx/nginx.conf test is successful'}, pc.PASS),
    ({'rc': 1, 'stderr': 'nginx: [emerg] unknown directive "foo" in /etc/nginx/conf.d/x.conf:3\nnginx: test failed'},
     pc.FAIL),
])
def test_nginx_config(data, status):
    got, detail = pc.nginx_config(data)
    assert got == status
    if status == pc.FAIL:
        assert detail == 'nginx -t failed: nginx: [emerg] unknown directive "foo" in /etc/nginx/conf.d/x.conf:3'


def ok_raw_lb():
    return {'nginx': {'rc': 0, 'stderr': ''},
            'split': {'exists': True, 'drift': False, 'generation': 2, 'state': {'percent': 0}, 'lease': None},
            'certificates': {'results': [{'rc': 0, 'stdout': enddate(NOW + 300 * DAY), 'item': '/etc/nginx/tls/server.crt'}]},
            'disk': {'rc': 0, 'stdout': DF % (500000, 500000, 50)},
            'patroni': {'skipped': True}, 'redis': {'skipped': True}, 'ready': {'skipped': True},
            'backup': {'skipped': True}}


def test_a_healthy_fleet_passes_and_rows_are_ordered_by_check_then_host():
    hosts = {'lb2': ok_raw_lb(), 'lb1': ok_raw_lb(),
             'mon1': {'disk': {'rc': 0, 'stdout': DF % (1, 999999, 1)},
                      'ready': {'results': [{'status': 200, 'item': {'check': 'prometheus'}},
                                            {'status': 200, 'item': {'check': 'alertmanager'}}]}},
             'data1': {'disk': {'rc': 0, 'stdout': DF % (1, 999999, 1)},
                       'backup': {'skipped_reason': 'no backup repository configured (pre_check_backup_stanza unset)'}}}
    result = pc.report(hosts, ['lb1', 'lb2', 'mon1', 'data1'], NOW, THRESHOLDS)
    assert result['passed'] and result['blockers'] == []
    assert [(r['check'], r['host']) for r in result['rows']][:6] == [
        ('nginx config', 'lb1'), ('nginx config', 'lb2'), ('split state', 'lb1'), ('split state', 'lb2'),
        ('rollout lease', 'lb1'), ('rollout lease', 'lb2')]
    assert result['counts'] == {'pass': 14, 'fail': 0, 'warn': 1, 'skip': 0}
    lines = pc.table(result)
    assert lines[0].split() == ['check', 'host', 'result', 'detail']
    assert lines[-1] == 'PASSED: 14 check(s) passed, 1 warning(s), no blocker'
    assert any(line.startswith('backup ') and 'WARN' in line for line in lines)


def test_a_silent_host_and_a_held_lease_block_and_are_named():
    lb2 = ok_raw_lb()
    lb2['split'] = dict(lb2['split'], lease=LEASE)
    result = pc.report({'lb1': {}, 'lb2': lb2}, ['lb1', 'lb2', 'app1'], NOW, THRESHOLDS)
    assert not result['passed']
    assert [(r['check'], r['host']) for r in result['blockers']] == [
        ('reachable', 'lb1'), ('reachable', 'app1'), ('rollout lease', 'lb2')]
    assert pc.table(result)[-1] == ('BLOCKED: 3 blocker(s): reachable on lb1; reachable on app1; '
                                    'rollout lease on lb2')


def split_of(hosts):
    return {'exists': True, 'drift': False, 'generation': 3, 'lease': None,
            'state': {'percent': 5.0, 'stable': {'backends': ['%s:5062' % h for h in hosts]},
                      'candidate': {'backends': ['%s:5070' % h for h in hosts]}}}


@pytest.mark.parametrize('info, addresses, status, words', [
    (split_of(['app1', 'app2']), ['app1', 'app2'], pc.PASS, '2 app host(s) in the upstreams, as in the app group'),
    (split_of(['app1', 'app2']), ['app1', 'app2', 'app3'], pc.FAIL,
     'app3 in the app group but in no upstream (add with playbooks/scale.yml)'),
    (split_of(['app1', 'app2', 'app3']), ['app1', 'app2'], pc.FAIL,
     'app3 in the upstreams but not in the app group (put it back, then drain it'),
    (split_of(['app1']), ['app2'], pc.FAIL, 'app2 in the app group but in no upstream'),
    ({'exists': False}, ['app1'], pc.WARN, 'no split state yet'),
    ({'failed': True, 'msg': 'timed out'}, ['app1'], pc.FAIL, 'traffic_split_info failed: timed out'),
])
def test_app_fleet(info, addresses, status, words):
    got = pc.fleet(info, addresses)
    assert got[0] == status and words in got[1]


def test_the_fleet_row_only_with_the_app_group_given():
    without = pc.report({'lb1': {'split': split_of(['app1'])}}, ['lb1'], NOW, THRESHOLDS)
    assert [r['check'] for r in without['rows']] == ['split state', 'rollout lease']
    given = pc.report({'lb1': {'split': split_of(['app1'])}}, ['lb1'], NOW,
                      dict(THRESHOLDS, app_addresses=['app1', 'app9']))
    assert [r['check'] for r in given['rows']] == ['split state', 'rollout lease', 'app fleet']
    assert given['blockers'][0]['detail'].startswith('app9 in the app group but in no upstream')


def test_a_reading_of_an_unknown_check_is_a_programming_error():
    with pytest.raises(ValueError):
        pc.evaluate({'check': 'coffee', 'host': 'lb1', 'data': {}}, NOW, THRESHOLDS)
