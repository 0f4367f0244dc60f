"""Tests of the rollout lease and the module lock."""
import multiprocessing
import os

import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import locking


def test_lease_is_exclusive_until_released(tmp_path):
    d = str(tmp_path)
    changed, lease = locking.acquire_lease(d, 'svc', 'run-a', 'alice@ci', 'canary', 60, now=1000)
    assert changed and lease['holder'] == 'alice@ci'
    assert locking.acquire_lease(d, 'svc', 'run-a', 'alice@ci', 'canary', 60, now=1001)[0] is False
    with pytest.raises(locking.LockError) as err:
        locking.acquire_lease(d, 'svc', 'run-b', 'bob@laptop', 'canary', 60, now=1002)
    assert 'a rollout of svc is already in progress: lease held by alice@ci (run run-a, phase canary' in str(err.value)
    assert locking.release_lease(d, 'svc', 'run-b') == (False, lease)  # not its lease: left alone
    assert locking.release_lease(d, 'svc', 'run-a') == (True, lease)
    assert locking.release_lease(d, 'svc', 'run-a') == (False, None)
    assert locking.acquire_lease(d, 'svc', 'run-b', 'bob', 'canary', 60, now=1003)[0] is True


def test_forced_release_gives_back_whoever_held_it(tmp_path):
    d = str(tmp_path)
    _changed, lease = locking.acquire_lease(d, 'svc', 'run-a', 'alice@ci', 'canary', 60, now=1000)
    assert locking.release_lease(d, 'svc', 'rollback-1', force=True) == (True, lease)
    assert locking.read_lease(locking.lease_path(d, 'svc')) is None
    assert locking.acquire_lease(d, 'svc', 'run-b', 'bob', 'canary', 60, now=1001)[0] is True


@pytest.mark.parametrize('now, force, ok', [(1059, False, False), (1060, False, True), (1061, False, True),
                                            (1001, True, True)])
def test_expired_or_forced_lease_is_replaced(tmp_path, now, force, ok):
    d = str(tmp_path)
    locking.acquire_lease(d, 'svc', 'run-a', 'alice', 'canary', 60, now=1000)
    if ok:
        changed, lease = locking.acquire_lease(d, 'svc', 'run-b', 'bob', 'extended', 60, now=now, force=force)
        assert changed and lease['run_id'] == 'run-b'
        assert locking.read_lease(locking.lease_path(d, 'svc')) == lease
    else:
        with pytest.raises(locking.LockError):
            locking.acquire_lease(d, 'svc', 'run-b', 'bob', 'extended', 60, now=now, force=force)


def test_leases_are_per_service(tmp_path):
    d = str(tmp_path)
    locking.acquire_lease(d, 'one', 'run-a', 'alice', 'canary', 60, now=1000)
    assert locking.acquire_lease(d, 'two', 'run-b', 'bob', 'canary', 60, now=1000)[0] is True


def test_unreadable_lease_counts_as_expired(tmp_path):
    d = str(tmp_path)
    with open(locking.lease_path(d, 'svc'), 'w') as handle:
        handle.write('{torn')
    assert locking.acquire_lease(d, 'svc', 'run-a', 'alice', 'canary', 60, now=1000)[0] is True


@pytest.mark.parametrize('service, run_id, holder, phase, message', [
    ('../x', 'r', 'h', 'canary', 'service must start with a lower-case letter'),
    ('svc/../../etc', 'r', 'h', 'canary', 'service must start with a lower-case letter'),
    ('svc\n', 'r', 'h', 'canary', 'service must start with a lower-case letter'),
    ('svc', 'r\n', 'h', 'canary', 'run_id must be 1 to 128 of'),
    ('svc', '', 'h', 'canary', 'run_id must be 1 to 128 of'),
    ('svc', 'r' * 129, 'h', 'canary', 'run_id must be 1 to 128 of'),
    ('svc', 'r', 'alice@ctl"; x', 'canary', 'holder must be 1 to 128 of'),
    ('svc', 'r', 'h', 'can ary', 'phase must be 1 to 128 of'),
])
def test_lease_input_is_validated_before_any_file_is_touched(tmp_path, service, run_id, holder, phase, message):
    d = tmp_path / 'state'
    d.mkdir()
    with pytest.raises(locking.LockError) as err:
        locking.acquire_lease(str(d), service, run_id, holder, phase, 60, now=1000)
    assert message in str(err.value)
    assert os.listdir(str(d)) == [] and os.listdir(str(tmp_path)) == ['state']
    if message.startswith(('service', 'run_id')):
        with pytest.raises(locking.LockError):
            locking.release_lease(str(d), service, run_id, force=True)


def _take(args):
    directory, index, start = args
    start.wait(10)
    try:
        changed, _lease = locking.acquire_lease(directory, 'svc', 'run-%d' % index, 'taker%d@ctl' % index,
                                                'canary', 600, now=2000)
        return 'won' if changed else 'unchanged'
    except locking.LockError as exc:
        return 'refused: %s' % exc


def test_exactly_one_of_many_parallel_takers_wins_an_expired_lease(tmp_path):
    d = str(tmp_path)
    locking.acquire_lease(d, 'svc', 'dead-run', 'crashed@ctl', 'canary', 60, now=1000)  # expired at 1060
    context = multiprocessing.get_context('fork')
    with context.Manager() as manager:
        start = manager.Event()
        with context.Pool(16) as pool:
            pending = pool.map_async(_take, [(d, index, start) for index in range(16)])
            start.set()
            outcomes = pending.get(60)
    winners = [i for i, outcome in enumerate(outcomes) if outcome == 'won']
    assert len(winners) == 1, outcomes
    lease = locking.read_lease(locking.lease_path(d, 'svc'))
    assert lease['run_id'] == 'run-%d' % winners[0]
    refused = [o for o in outcomes if o.startswith('refused: ')]
    assert len(refused) == 15
    assert all('lease held by taker%d@ctl' % winners[0] in o for o in refused), refused


def test_file_lock_times_out(tmp_path):
    d = str(tmp_path)
    clock = iter([0, 0.5, 2.0])
    with locking.file_lock(d, 'x.lock'):
        # flock is per open file description: a second open in the same process conflicts too
        with pytest.raises(locking.LockError) as err:
            with locking.file_lock(d, 'x.lock', timeout=1, sleep=lambda s: None, clock=lambda: next(clock)):
                pass
    assert 'another change to x.lock is running' in str(err.value)
    with locking.file_lock(None, 'ignored'):
        pass


def test_file_lock_readers_share_and_wait_for_writers(tmp_path):
    d = str(tmp_path)
    with locking.file_lock(d, 'x.lock', create=False):  # no lock file: nobody to wait for
        pass
    assert not os.path.exists(os.path.join(d, 'x.lock'))
    with locking.file_lock(d, 'x.lock', shared=True):
        with locking.file_lock(d, 'x.lock', shared=True, timeout=0, sleep=lambda s: None):
            pass
        with pytest.raises(locking.LockError):
            with locking.file_lock(d, 'x.lock', timeout=0, sleep=lambda s: None):
                pass
