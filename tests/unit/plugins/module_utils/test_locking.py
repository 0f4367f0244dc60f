"""Tests of the rollout lease."""
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
    assert locking.release_lease(d, 'svc', 'run-b') is False  # not its lease: left alone
    assert locking.release_lease(d, 'svc', 'run-a') is True
    assert locking.release_lease(d, 'svc', 'run-a') is False
    assert locking.acquire_lease(d, 'svc', 'run-b', 'bob', 'canary', 60, now=1003)[0] is True


@pytest.mark.parametrize('now, force, ok', [(1059, False, False), (1061, False, True), (1001, True, True)])
def test_expired_or_forced_lease_is_replaced(tmp_path, now, force, ok):
    d = str(tmp_path)
    locking.acquire_lease(d, 'svc', 'run-a', 'alice', 'canary', 60, now=1000)
    if ok:
        changed, lease = locking.acquire_lease(d, 'svc', 'run-b', 'bob', 'extended', 60, now=now, force=force)
        assert changed and lease['run_id'] == 'run-b'
    else:
        with pytest.raises(locking.LockError):
            locking.acquire_lease(d, 'svc', 'run-b', 'bob', 'extended', 60, now=now, force=force)


def test_leases_are_per_service(tmp_path):
    d = str(tmp_path)
    locking.acquire_lease(d, 'one', 'run-a', 'alice', 'canary', 60, now=1000)
    assert locking.acquire_lease(d, 'two', 'run-b', 'bob', 'canary', 60, now=1000)[0] is True


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
