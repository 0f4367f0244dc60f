"""metric_gate verdict precedence and messages."""
import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate as mg
from metric_gate_fakes import E, check, gate, ratio_check


OK, LOW = 0.97, 0.5


# --------------------------------------------------------------------------
# Verdict precedence and messages
# --------------------------------------------------------------------------

def counts(passed=0, failed=0, inconclusive=0, error=0, limit=False):
    return dict(passed=passed, failed=failed, inconclusive=inconclusive, error=error, error_limit_reached=limit,
                measurements=passed + failed + inconclusive)


@pytest.mark.parametrize('summary, failure_limit, verdict', [
    ({'a': counts(passed=3)}, 0, 'passed'),
    ({'a': counts(passed=3, error=3)}, 0, 'passed'),                               # retried errors do not count
    ({'a': counts(passed=2, failed=1)}, 0, 'failed'),
    ({'a': counts(passed=2, failed=1)}, 1, 'passed'),
    ({'a': counts(passed=1, failed=2)}, 1, 'failed'),
    ({'a': counts(passed=2, inconclusive=1)}, 0, 'inconclusive'),
    ({'a': counts(failed=1, inconclusive=1)}, 0, 'failed'),                        # failed > inconclusive
    ({'a': counts(failed=1, inconclusive=1)}, 1, 'inconclusive'),
    ({'a': counts(passed=1), 'b': counts(inconclusive=1)}, 0, 'inconclusive'),
    ({'a': counts(failed=1), 'b': counts(inconclusive=1)}, 0, 'failed'),
    ({'a': counts(failed=5), 'b': counts(error=4, limit=True)}, 0, 'error'),        # error > failed
    ({'a': counts(inconclusive=1), 'b': counts(error=4, limit=True)}, 0, 'error'),
    ({'a': counts(passed=1), 'b': counts(error=4, limit=True)}, 0, 'error'),
    ({'a': counts(passed=3), 'b': counts()}, 0, 'inconclusive'),                   # never measured: no evidence
    ({'a': counts(passed=3), 'b': counts(error=2)}, 0, 'inconclusive'),            # only errors, limit not reached
])
def test_verdict_of(summary, failure_limit, verdict):
    assert mg.verdict_of(summary, failure_limit) == verdict


@pytest.mark.parametrize('verdict, allow, failed', [
    ('passed', False, False), ('passed', True, False), ('failed', True, True), ('error', True, True),
    ('inconclusive', False, True), ('inconclusive', True, False),
])
def test_task_failed(verdict, allow, failed):
    assert mg.task_failed(verdict, allow) is failed


def fake_measurements(name, values, outcome='failed', baselines=None):
    out = []
    for index, value in enumerate(values):
        item = dict(check=name, value=value, outcome=outcome, message='no data' if value is None else '')
        if baselines is not None:
            item['baseline'] = baselines[index]
        out.append(item)
    return out


@pytest.mark.parametrize('the_check, measurements, on_no_data, text', [
    (check(min=0.94), fake_measurements('precision', [0.912, 0.918, 0.905]), 'inconclusive',
     'precision 0.912, 0.918, 0.905 < min 0.94 in 3 of 3 measurements'),
    (check(min=0.94), fake_measurements('precision', [0.912]) + fake_measurements('precision', [0.97], 'passed'),
     'inconclusive', 'precision 0.912 < min 0.94 in 1 of 2 measurements'),
    (check(min=0.94), fake_measurements('precision', [0.9123456]), 'inconclusive',
     'precision 0.9123 < min 0.94 in 1 of 1 measurements'),
    (check(min=0.94), fake_measurements('other', [0.1]) + fake_measurements('precision', [0.9]), 'inconclusive',
     'precision 0.9 < min 0.94 in 1 of 1 measurements'),
    (check(min=0.94), fake_measurements('precision', [0.9]) + fake_measurements('precision', [None], 'error'),
     'inconclusive', 'precision 0.9 < min 0.94 in 1 of 1 measurements'),              # errors are not counted
    (check('latency', max=0.5), fake_measurements('latency', [0.52, 123456.0]), 'inconclusive',
     'latency 0.52, 1.235e+05 > max 0.5 in 2 of 2 measurements'),
    (check(min=0.9, max=1), fake_measurements('precision', [0.8, 1.2]), 'inconclusive',
     'precision 0.8 < min 0.9 and 1.2 > max 1 in 2 of 2 measurements'),
    (check(min=0.94), fake_measurements('precision', [None, None]), 'fail',
     'precision no data x2 (on_no_data=fail) in 2 of 2 measurements'),
    (ratio_check(max_ratio=1.2), fake_measurements('p95', [0.3, 0.4], baselines=[0.2, 0.25]), 'inconclusive',
     'p95 ratio 1.5, 1.6 > max_ratio 1.2 in 2 of 2 measurements'),
])
def test_failure_message(the_check, measurements, on_no_data, text):
    assert mg.failure_message(the_check, measurements, on_no_data) == text


def test_failure_message_caps_long_lists():
    text = mg.failure_message(check(min=0.94), fake_measurements('precision', [0.5] * 12))
    assert text == 'precision %s, ... (2 more) < min 0.94 in 12 of 12 measurements' % ', '.join(['0.5'] * 10)


def message_of(script, checks=None, allow=False, name='canary', labels=None, **options):
    checks = checks or [check(min=0.94)]
    result, fetch, fake = gate(script, checks, **options)
    return result['verdict'], mg.gate_message(
        result, checks, name=name, labels=labels, failure_limit=options.get('failure_limit', 0),
        consecutive_error_limit=options.get('consecutive_error_limit', 4),
        on_no_data=options.get('on_no_data', 'inconclusive'), allow_inconclusive=allow)


@pytest.mark.parametrize('script, options, verdict, text', [
    ({'precision': [0.912, 0.918, 0.905]}, dict(count=3, failure_limit=2), 'failed',
     "metric gate 'canary' failed: precision 0.912, 0.918, 0.905 < min 0.94 in 3 of 3 measurements"),
    ({'precision': [OK]}, dict(count=2), 'passed',
     "metric gate 'canary' passed: 1 check(s), 2 measurement(s) within thresholds"),
    ({'precision': [LOW, OK]}, dict(count=2, failure_limit=1), 'passed',
     "metric gate 'canary' passed: 1 check(s), 2 measurement(s) within thresholds "
     "(tolerated: precision failed 1 (failure_limit 1))"),
    ({'precision': [E]}, dict(count=2), 'error',
     "metric gate 'canary' error: precision: 4 consecutive errors (consecutive_error_limit 4), last: HTTP 500"),
    ({'precision': [None, OK]}, dict(count=2), 'inconclusive',
     "metric gate 'canary' inconclusive: precision inconclusive in 1 of 2 measurements "
     "(no data (query returned no value), on_no_data=inconclusive) (set allow_inconclusive to accept)"),
])
def test_gate_message(script, options, verdict, text):
    got, message = message_of(script, **options)
    assert got == verdict
    assert message.startswith(text), message


def test_gate_message_names_every_failing_check_and_labels():
    checks = [check('precision', min=0.94), check('errors', max=0.01), check('ok', max=1)]
    verdict, message = message_of({'precision': [0.9, 0.91], 'errors': [0.02, 0.03], 'ok': [0.5]}, checks,
                                  labels={'version': '2.0.0', 'service': 'ssm'}, count=2, failure_limit=1)
    assert verdict == 'failed'
    assert message == ("metric gate 'canary' (service=ssm, version=2.0.0) failed: "
                       "precision 0.9, 0.91 < min 0.94 in 2 of 2 measurements")
    # errors had only one failure when the gate stopped; it is not at fault yet


def test_gate_message_inconclusive_allowed():
    verdict, message = message_of({'precision': [None]}, allow=True, name=None)
    assert message.startswith('metric gate inconclusive: ') and message.endswith('(allowed)')
