# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Locks: a short process lock around one module run, and the rollout lease.

``file_lock`` serialises two module runs on one host (flock, released when the
process ends). The rollout lease is different: it lives for a whole phase
playbook, across many tasks and processes, so it is a file created with
``O_EXCL`` that records who holds it, and that expires after ``ttl`` seconds
so a crashed run cannot block the service forever.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import fcntl
import json
import os
import time


class LockError(Exception):
    pass


@contextlib.contextmanager
def file_lock(directory, name, timeout=30.0, sleep=time.sleep, clock=time.time):
    """Hold an exclusive flock on ``directory/name``; no-op when directory is None."""
    if directory is None:
        yield
        return
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = clock() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if clock() >= deadline:
                    raise LockError('another change to %s is running on this host (lock %s held for over %ss)'
                                    % (name, path, timeout))
                sleep(0.1)
        yield
    finally:
        os.close(fd)


def lease_path(directory, service):
    return os.path.join(directory, '%s.rollout.lock' % service)


def read_lease(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except IOError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    except ValueError:
        return {'holder': 'unknown (unreadable lease file)', 'expires': 0}


def describe(lease):
    return '%s (run %s, phase %s, since %s, expires %s)' % (
        lease.get('holder'), lease.get('run_id'), lease.get('phase'),
        lease.get('acquired_at'), lease.get('expires_at'))


def acquire_lease(directory, service, run_id, holder, phase, ttl, now=None, force=False):
    """Take the rollout lease of ``service``.

    Returns ``(changed, lease)``. Taking a lease already held by the same
    ``run_id`` refreshes nothing and reports no change. A live lease held by
    another run raises LockError naming the holder; an expired one (or any
    one with ``force``) is replaced.
    """
    now = time.time() if now is None else now
    path = lease_path(directory, service)
    lease = {
        'service': service, 'run_id': run_id, 'holder': holder, 'phase': phase,
        'acquired_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now)),
        'expires': now + ttl,
        'expires_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now + ttl)),
    }
    for _attempt in range(2):
        existing = read_lease(path)
        if existing is not None:
            if existing.get('run_id') == run_id:
                return False, existing
            if not force and float(existing.get('expires', 0)) > now:
                raise LockError('a rollout of %s is already in progress: lease held by %s. Wait for it to '
                                'finish, or run playbooks/rollback.yml, or break the lease with '
                                '-e rollout_lock_force=true if that run is dead' % (service, describe(existing)))
            os.unlink(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                continue  # somebody else won the race; look again
            raise
        with os.fdopen(fd, 'w') as handle:
            json.dump(lease, handle, sort_keys=True)
        return True, lease
    raise LockError('could not take the rollout lease of %s: it changed hands while trying' % service)


def release_lease(directory, service, run_id, force=False):
    """Release the lease if ``run_id`` holds it (or any lease with ``force``).

    Returns True if a file was removed. A lease held by another run is left
    alone (False): a run gives back only what it took.
    """
    path = lease_path(directory, service)
    existing = read_lease(path)
    if existing is None or (existing.get('run_id') != run_id and not force):
        return False
    os.unlink(path)
    return True
