"""The watched state of metric_gate: validation, reading, comparing, and the gate stopping as soon as it moves."""
import json
import os

import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate as mg
from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate_watch as mw
from metric_gate_fakes import FakeTime, check, gate

OK = 0.97


def state_doc(generation, operation='rollback', by='bob@ctl', at='2026-11-29T18:00:00+00:00'):
    return dict(service='ssm', generation=generation, phase='rollback', status='rolled_back', updated_by=by,
                updated_at=at, history=[dict(operation='set', by='alice'), dict(operation=operation, by=by)])


@pytest.mark.parametrize('watch, expected', [
    (None, None),
    (dict(path='/var/lib/x.json', expected=8), dict(path='/var/lib/x.json', field='generation', expected=8)),
    (dict(path=' /s.json ', field='run_id', expected='abc'), dict(path='/s.json', field='run_id', expected='abc')),
    (dict(path='/s.json', field=None, expected=None), dict(path='/s.json', field='generation', expected=None)),
])
def test_normalize_watch(watch, expected):
    assert mw.normalize_watch(watch) == expected


@pytest.mark.parametrize('watch, message', [
    ('/s.json', 'watch must be a dict with path, field and expected'),
    (dict(path='/s.json', expected=1, when='now'), 'watch: unknown key(s) when'),
    (dict(path='state.json', expected=1), "watch: path must be an absolute path to a JSON file, got 'state.json'"),
    (dict(path='', expected=1), 'watch: path must be an absolute path'),
    (dict(path='/s.json', field='', expected=1), "watch: field must be a non-empty string, got ''"),
    (dict(path='/s.json'), 'watch: expected is required (the value of generation when the gate started)'),
])
def test_normalize_watch_rejects(watch, message):
    with pytest.raises(mg.GateError) as err:
        mw.normalize_watch(watch)
    assert message in str(err.value)


@pytest.mark.parametrize('found, expected, same', [
    (8, 8, True),
    (8, '8', True),            # a templated expected value arrives as text
    ('8', 8, True),
    (8.0, 8, True),
    (9, 8, False),
    (None, 8, False),
    (None, None, True),
    ('abc', 'abc', True),
    ('abc', 'abd', False),
    (True, 1, False),          # a boolean is not a generation
    (True, True, True),
    ([1], [1], True),
])
def test_same_value(found, expected, same):
    assert mw.same_value(found, expected) is same


def write(path, doc):
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return str(path)


@pytest.mark.parametrize('content, expected, news', [
    (state_doc(8), 8, None),
    (state_doc(8), '8', None),
    (state_doc(9), 8, dict(changed=True, value=9, operation='rollback', updated_by='bob@ctl',
                           updated_at='2026-11-29T18:00:00+00:00', phase='rollback', status='rolled_back')),
    (dict(generation=9), 8, dict(changed=True, value=9, operation=None, updated_by=None, updated_at=None,
                                 phase=None, status=None)),
    (dict(state_doc(9), history='garbage'), 8, dict(changed=True, value=9, operation=None, updated_by='bob@ctl',
                                                    updated_at='2026-11-29T18:00:00+00:00', phase='rollback',
                                                    status='rolled_back')),
])
def test_check_watch(tmp_path, content, expected, news):
    path = write(tmp_path / 'state.json', content)
    assert mw.check_watch(dict(path=path, field='generation', expected=expected)) == news


@pytest.mark.parametrize('content, problem', [
    (None, 'No such file or directory'),
    ('{"generation": ', 'Expecting value'),
    ('[8]', 'not a JSON object'),
])
def test_check_watch_gone_or_unreadable_counts_as_moved(tmp_path, content, problem):
    path = str(tmp_path / 'state.json')
    if content is not None:
        write(tmp_path / 'state.json', content)
    news = mw.check_watch(dict(path=path, field='generation', expected=8))
    assert news['changed'] is True and news['value'] is None
    assert news['problem'].startswith(path + ': ') and problem in news['problem']


@pytest.mark.parametrize('news, text', [
    (dict(value=9, operation='rollback', updated_by='bob@ctl', updated_at='T'),
     'the watched state moved to generation 9 (rollback by bob@ctl at T)'),
    (dict(value=9, operation=None, updated_by='bob@ctl', updated_at=None),
     'the watched state moved to generation 9 (by bob@ctl)'),
    (dict(value=None), 'the watched state moved to generation null'),
    (dict(value=None, problem='/s.json: No such file or directory'),
     'the watched state is gone or unreadable (/s.json: No such file or directory)'),
])
def test_moved_text(news, text):
    assert mw.moved_text(news) == text


class Flip(object):
    """A watch that moves at fake time ``at``; counts how often it was read."""

    def __init__(self, fake, at, news=None):
        self.fake, self.at, self.reads = fake, at, []
        self.news = news or dict(changed=True, value=9, operation='rollback', updated_by='bob@ctl',
                                 updated_at='2026-11-29T18:00:00+00:00', phase='rollback', status='rolled_back')

    def __call__(self):
        self.reads.append(self.fake.t)
        return self.news if self.at is not None and self.fake.t >= self.at else None


@pytest.mark.parametrize('at, options, sleeps, measured, verdict', [
    # moved 2.5 s into a 10 s wait: seen at the next one-second read, nothing more measured
    (2.5, dict(count=3, interval=10), [1, 1, 1], 1, 'aborted'),
    # moved before the first round (start_at ahead): no measurement at all
    (0, dict(count=3, interval=10, initial_delay=5), [], 0, 'aborted'),
    # moved during the initial delay
    (1.5, dict(count=2, interval=10, initial_delay=5), [1, 1], 0, 'aborted'),
    # never moves: the waits are cut in seconds, the verdict is the gate's own
    (None, dict(count=2, interval=3), [1, 1, 1], 2, 'passed'),
    # moved after the last round: too late to matter
    (100, dict(count=2, interval=2), [1, 1], 2, 'passed'),
])
def test_run_gate_stops_within_a_second_when_the_watch_moves(at, options, sleeps, measured, verdict):
    fake = FakeTime()
    watch = Flip(fake, at)
    result, fetch, fake = gate({'precision': [OK]}, fake=fake, watch=watch, **options)
    assert result['verdict'] == verdict
    assert fake.sleeps == pytest.approx(sleeps)
    assert len(result['measurements']) == measured
    assert (result['watch'] is not None) is (verdict == 'aborted')
    # read once before every round (and the aborting read), and after every sleep
    assert len(watch.reads) == len(sleeps) + measured + (verdict == 'aborted')


def test_aborted_message_and_task_outcome():
    fake = FakeTime()
    result, _fetch, _fake = gate({'precision': [OK]}, fake=fake, watch=Flip(fake, 1), count=3, interval=10)
    message = mg.gate_message(result, [check(min=0.94)], name='canary', labels={'version': '2.0.0'})
    assert message == ("metric gate 'canary' (version=2.0.0): aborted, the watched state moved to generation 9 "
                       "(rollback by bob@ctl at 2026-11-29T18:00:00+00:00)")
    assert result['stopped_early'] is True
    assert mg.task_failed('aborted', allow_inconclusive=True) is True


def test_make_watch_reads_the_real_file(tmp_path):
    path = write(tmp_path / 'state.json', state_doc(8))
    watch = mw.make_watch(mw.normalize_watch(dict(path=path, expected=8)))
    assert watch() is None
    os.unlink(path)
    assert watch()['problem'].startswith(path)
    assert mw.make_watch(None) is None
    assert mw.unchanged(dict(path=path, field='generation', expected=8)) == dict(changed=False, value=8)
