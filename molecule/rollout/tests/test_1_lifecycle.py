"""The release lifecycle: canary, extended and full with exact sticky shares, a rollback after
full, and the refusals and failures of a phase.
"""

import os
import time

from rolloutlab import (  # the lab shared by every test file
    CACERT, INVENTORY, STATE, Traffic, bad_canary, cohort, flat, latest_report, playbook, probe, share)


def test_site_serves_the_initial_release():
    assert INVENTORY and os.path.exists(CACERT), 'run through molecule (molecule test -s rollout)'
    report = probe(500)
    assert list(report['versions']) == ['1.0.0']


def test_canary_extended_full_shift_exact_sticky_shares_without_errors():
    with Traffic() as traffic:
        # the pre-deployment check runs first and prints its table (no data tier in this lab)
        rc, out = playbook('canary.yml', '-e', 'release_version=2.0.0', pre_checks=True)
        assert rc == 0, out
        text = flat(out)
        for row in ('nginx config lb1 PASS configuration valid', 'rollout lease lb2 PASS no lease held',
                    'prometheus mon1 PASS Prometheus ready', 'alertmanager mon1 PASS Alertmanager ready',
                    'disk space app2 PASS', 'app fleet lb1 PASS 2 app host(s) in the upstreams, as in the app group'):
            assert row in text, out
        assert 'PASSED: 17 check(s) passed, 0 warning(s), no blocker' in text, out
        at5 = probe()
        assert abs(share(at5, '2.0.0') - 5) <= 1, at5['versions']
        assert probe()['user_versions'] == at5['user_versions'], 'users changed side at a constant percent'

        rc, out = playbook('extended.yml', '-e', 'release_version=2.0.0')
        assert rc == 0, out
        at25 = probe()
        assert abs(share(at25, '2.0.0') - 25) <= 1, at25['versions']
        assert cohort(at5, '2.0.0') <= cohort(at25, '2.0.0'), 'canary users left the candidate at 25 %'

        rc, out = playbook('full.yml', '-e', 'release_version=2.0.0')
        assert rc == 0, out
        # once promoted, the post-deployment validation: smoke tests through both balancers, slot health
        # (no data tier in this lab: the rows are a warning)
        text = flat(out)
        for row in ('smoke match lb1 PASS top offer smoke-best as labelled, answered by 2.0.0',
                    'feedback lb2 PASS accepted by 2.0.0', 'slot health app1 PASS', 'slot health app2 PASS',
                    'rows replicated lb1 via data-tier WARN no postgresql group in the inventory'):
            assert row in text, out
        assert 'PASSED: 6 check(s) passed, 2 warning(s), no blocker' in text, out
        assert list(probe(1000)['versions']) == ['2.0.0']
        report = latest_report()
        assert report['verdict'] == 'promoted' and report['split_after']['stable_version'] == '2.0.0'
    traffic.assert_no_failures()
    assert traffic.report['versions']['2.0.0']['precision'] >= 0.94


def test_rollback_after_full_returns_everybody_to_the_previous_release():
    with Traffic() as traffic:
        started = time.time()
        rc, out = playbook('rollback.yml')
        STATE['rollback_seconds'] = time.time() - started
        assert rc == 0, out
        assert list(probe(1000)['versions']) == ['1.0.0']
    traffic.assert_no_failures()


def test_extended_is_refused_without_a_completed_canary():
    rc, out = playbook('extended.yml', '-e', 'release_version=3.0.0')
    assert rc != 0
    assert 'extended needs a completed canary of 3.0.0' in out
    assert list(probe(1000)['versions']) == ['1.0.0']


def test_release_failing_its_health_check_is_rolled_back():
    bad_canary('2.0.1', {'unhealthy': True}, ['canary of 2.0.1 FAILED'])
    report = latest_report()
    assert report['verdict'] in ('failed', 'rolled_back') and report['failures'][0]['step'] == 'deploy'
