"""The gates deciding: precision, latency, the judge, Prometheus away, a candidate dying in
its hold, a balancer that cannot take the change, the lease, and a canary without traffic.
"""

import json
import subprocess

from rolloutlab import (  # the lab shared by every test file
    INVENTORY, STATE, Traffic, Webhook, ansible_env, bad_canary, flat, gate_summary, labprom, latest_report,
    lb_state, playbook, playbook_argv, probe, share, wait_for)


def test_degraded_release_is_rolled_back_by_the_precision_gate_and_the_webhook_is_told():
    hook = Webhook()
    try:
        expected = ['canary of 4.0.0 FAILED and was rolled back', 'precision', '< min 0.94']
        out = bad_canary('4.0.0', {'degraded': True}, expected, '-e', 'rollout_webhook_url=%s' % hook.url)
    finally:
        hook.close()
    report = latest_report()
    assert report['verdict'] == 'rolled_back' and report['split_after']['percent'] == 0
    assert gate_summary(report, 'precision')['verdict'] == 'failed'
    assert gate_summary(report, 'precision')['last_value'] < 0.94
    assert [e['event'] for e in hook.events] == ['started', 'rolled_back'], hook.events
    assert all(e['release'] == '4.0.0' and e['text'].startswith('[supersmartmatch] canary of 4.0.0')
               for e in hook.events), hook.events
    assert 'secret-token' not in out, 'the webhook URL leaked into the output'


def test_slow_release_is_rolled_back_by_the_latency_gate():
    bad_canary('4.1.0', {'latency_ms': 400}, ['canary of 4.1.0 FAILED and was rolled back', 'latency_p95',
                                              '> max 0.2'])
    report = latest_report()
    assert report['verdict'] == 'rolled_back'
    assert gate_summary(report, 'latency_p95')['verdict'] == 'failed'
    assert gate_summary(report, 'latency_p95')['last_value'] > 0.2


def prometheus_value(query):
    """The value of ``query`` (one series) on Prometheus on mon1, or None."""
    return labprom.prometheus_value('mon1', query)


# The judge (Kayenta-style, opt-in) with the role's defaults: latency judged on
# the answers (both sides' histograms of computed answers, the median, a
# binomial test) and the error rate on points. A release 40 % slower than the
# stable one at the p95, but far under the absolute 200 ms threshold.
# Installing the candidate loads the two cores, and the stable side's answers
# with them: the judge's window opens 20 s after the traffic shift
# (rollout_judge_delay), so that it holds none of the deploy; the 50 s hold
# leaves it rounds from 25 s after the shift (warm-up 15 s, a round every 5 s).
JUDGE = ['-e', 'rollout_judge=true', '-e', 'rollout_judge_step=1', '-e', 'rollout_judge_delay=20',
         '-e', 'canary_duration=50']
# the judge's latency check, as the role names it by default
JUDGE_LATENCY = 'latency_p50_vs_stable'


def forty_percent_slower():
    """The fault that makes a release 40 % slower than 1.0.0 at the p95: 0.4 x the p95 of 1.0.0
    on its stable slot, as Prometheus recorded it under the steady traffic of the tests before
    (the median over the last 3 minutes), in ms."""
    slot = lb_state('lb1')['stable']['color']
    p95 = prometheus_value('quantile_over_time(0.5, ssm:latency_p95:seconds{version="1.0.0",slot="%s"}[3m])' % slot)
    assert p95 is not None and 0 < p95 < 0.1, 'no p95 of 1.0.0, or the stable release is already slow: %s' % p95
    STATE['stable_p95'] = p95
    return {'latency_ms': round(0.4 * p95 * 1000, 2)}


def test_a_release_40_percent_slower_under_the_threshold_is_rolled_back_by_the_judge():
    faults = forty_percent_slower()
    out = bad_canary('4.3.0', faults, ['canary of 4.3.0 FAILED and was rolled back', JUDGE_LATENCY], *JUDGE)
    report = latest_report()
    assert report['verdict'] == 'rolled_back'
    summary = report['gates']['hold']['summary']
    assert summary[JUDGE_LATENCY]['verdict'] == 'failed', summary
    # the absolute gate alone would have let it through
    assert summary['latency_p95']['verdict'] == 'passed', summary
    assert summary['latency_p95']['last_value'] < 0.2
    # the answers judged: the binomial test on the histograms, with its counts
    assert 'binomial test' in out and 'answers above' in out, out[-3000:]


def test_the_same_release_passes_with_the_judge_off_and_the_webhook_hears_every_round():
    faults = {'latency_ms': round(0.4 * STATE['stable_p95'] * 1000, 2)}
    hook = Webhook()
    try:
        with Traffic() as traffic:
            rc, out = playbook('canary.yml', '-e', 'release_version=4.3.0', '-e', 'rollout_webhook_progress_rounds=1',
                               '-e', json.dumps({'rollout_app_faults': faults, 'rollout_webhook_url': hook.url}))
            assert rc == 0, out
            report = latest_report()
            assert report['verdict'] == 'passed'
            assert JUDGE_LATENCY not in report['gates']['hold']['summary']
            rc, out = playbook('rollback.yml')
            assert rc == 0, out
            assert list(probe(1000)['versions']) == ['1.0.0']
        traffic.assert_no_failures()
    finally:
        hook.close()
    # hold 25 s, warm-up 15 s, a round every 5 s: rounds 1 and 2 as they happen, round 3 in the verdict
    events = [e['event'] for e in hook.events]
    assert events[0] == 'started' and events[-1] == 'passed', events
    progress = [e for e in hook.events if e['event'] == 'progress']
    assert [e['details']['round'] for e in progress] == [1, 2], hook.events
    assert progress[0]['text'].startswith('[supersmartmatch] canary of 4.3.0: [lb1] gate round 1/3, ')
    assert {'precision', 'latency_p95'} <= set(c['name'] for c in progress[0]['details']['checks'])
    assert all(c['outcome'] in ('passed', 'inconclusive') for c in progress[1]['details']['checks'])


def prometheus_ready():
    """True once Prometheus on mon1 answers /-/ready (WaitTimeout after 60 s)."""
    return wait_for(lambda: subprocess.run(['docker', 'exec', 'mon1', 'curl', '-sf', 'http://127.0.0.1:9090/-/ready'],
                                           capture_output=True, check=False).returncode == 0,
                    60, 'Prometheus on mon1 to answer /-/ready', delay=1)


def test_prometheus_stopped_during_the_hold_is_an_error_and_rolls_back():
    try:
        with Traffic() as traffic:
            rc, out = canary_stopping('4.2.0', 'mon1', 'prometheus')
            assert rc != 0
            assert 'canary of 4.2.0 FAILED and was rolled back' in out
            assert 'consecutive errors' in out
            assert list(probe(1000)['versions']) == ['1.0.0']
        traffic.assert_no_failures()
    finally:
        subprocess.run(['docker', 'exec', 'mon1', 'systemctl', 'start', 'prometheus'], check=True)
        assert prometheus_ready()
    report = latest_report()
    assert report['verdict'] == 'rolled_back'
    assert report['gates']['hold']['verdict'] == 'error'


def test_a_phase_is_refused_when_prometheus_cannot_answer():
    subprocess.run(['docker', 'exec', 'mon1', 'systemctl', 'stop', 'prometheus'], check=True)
    try:
        rc, out = playbook('canary.yml', '-e', 'release_version=4.2.0')
    finally:
        subprocess.run(['docker', 'exec', 'mon1', 'systemctl', 'start', 'prometheus'], check=True)
        assert prometheus_ready()
    assert rc != 0
    assert 'canary of 4.2.0 REFUSED' in out and 'preflight' in out
    assert lb_state('lb1')['percent'] == 0 and lb_state('lb2')['percent'] == 0


def canary_stopping(version, container, unit):
    """Run canary.yml for ``version`` (60 s hold); once every balancer sends it 5 %, stop
    ``unit`` in ``container``. Returns (rc, output) of the playbook.
    """
    proc = subprocess.Popen(playbook_argv('canary.yml', ('-e', 'release_version=%s' % version, '-e', 'canary_duration=60')),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ansible_env())

    def at_five():
        states = [lb_state(lb) for lb in ('lb1', 'lb2')]
        return all(st['phase'] == 'canary' and st['percent'] == 5 and st['candidate']['version'] == version
                   for st in states)

    try:
        wait_for(at_five, 300, 'the canary of %s at 5 %%' % version, delay=0.5, proc=proc)
        subprocess.run(['docker', 'exec', container, 'systemctl', 'stop', unit], check=True)
        out, _err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    print('\n=== canary.yml %s (background): rc=%d\n%s' % (version, proc.returncode, out[-6000:]))
    return proc.returncode, out


def test_candidate_failing_during_the_hold_is_rolled_back():
    rc, out = canary_stopping('3.0.0', 'app1', 'supersmartmatch-green')
    assert rc != 0
    assert 'canary of 3.0.0 FAILED and was rolled back' in out
    assert 'health of app1' in out
    assert lb_state('lb1')['percent'] == 0 and lb_state('lb2')['percent'] == 0
    assert list(probe(1000)['versions']) == ['1.0.0']


def test_all_balancers_move_together():
    broken = '/etc/nginx/conf.d/zz-broken.conf'
    subprocess.run(['docker', 'exec', 'lb2', 'sh', '-c', 'echo "bogus_directive on;" > %s' % broken], check=True)
    try:
        rc, out = playbook('canary.yml', '-e', 'release_version=3.0.0')
        # with the pre-deployment check, the held lease is a blocker: the run stops before its first play
        pre_rc, pre_out = playbook('canary.yml', '-e', 'release_version=3.0.0', pre_checks=True)
    finally:
        subprocess.run(['docker', 'exec', 'lb2', 'rm', '-f', broken], check=True)
    assert rc != 0
    assert 'unknown directive "bogus_directive"' in out
    for lb in ('lb1', 'lb2'):
        state = lb_state(lb)
        assert state['percent'] == 0 and state['stable']['version'] == '1.0.0', (lb, state['percent'], state['phase'])
    assert list(probe(1000)['versions']) == ['1.0.0']


def test_second_rollout_is_refused_while_one_holds_the_lease():
    env = ansible_env()
    lease = ['ansible', '-i', INVENTORY, 'lb', '-m', 'supersmartmatch.platform.rollout_lock', '-a']
    subprocess.run(lease + ['service=supersmartmatch run_id=other-run holder=alice@ci phase=canary ttl=600'],
                   check=True, env=env, capture_output=True)
    try:
        rc, out = playbook('canary.yml', '-e', 'release_version=3.0.0')
        # with the pre-deployment check, the held lease is a blocker: the run stops before its first play
        pre_rc, pre_out = playbook('canary.yml', '-e', 'release_version=3.0.0', pre_checks=True)
    finally:
        subprocess.run(lease + ['service=supersmartmatch run_id=other-run state=released'], check=True, env=env,
                       capture_output=True)
    assert rc != 0
    assert 'canary of 3.0.0 REFUSED' in out
    assert 'the rollout lease of supersmartmatch is held by alice@ci (run other-run, phase canary)' in out
    assert pre_rc != 0
    assert 'BLOCKED: 2 blocker(s): rollout lease on lb1; rollout lease on lb2' in flat(pre_out), pre_out
    assert 'lease held by alice@ci for other-run (canary)' in flat(pre_out), pre_out
    assert 'Rollout | Check the request' not in pre_out, 'the phase started after a blocker'


def test_canary_without_traffic_is_inconclusive_and_keeps_its_split():
    rc, out = playbook('canary.yml', '-e', 'release_version=3.0.0')
    assert rc != 0
    assert 'canary of 3.0.0 INCONCLUSIVE' in out
    assert 'Traffic is left as it is (5 % on 3.0.0)' in out
    for lb in ('lb1', 'lb2'):
        state = lb_state(lb)
        assert (state['percent'], state['phase'], state['status']) == (5, 'canary', 'in_progress'), state
    report = latest_report()
    assert report['verdict'] == 'inconclusive'
    assert gate_summary(report, 'precision')['verdict'] == 'inconclusive'
    assert abs(share(probe(), '3.0.0') - 5) <= 1
    rc, out = playbook('extended.yml', '-e', 'release_version=3.0.0')
    assert rc != 0 and 'extended needs a completed canary of 3.0.0' in out
