# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Locks: a short process lock around one module run, and the rollout lease.

``file_lock`` serialises two module runs on one host (flock, released when the
process ends). The rollout lease is different: it lives for a whole phase
playbook, across many tasks and processes, so it is a file that records who
holds it, and that expires after ``ttl`` seconds so a crashed run cannot block
the service forever. Taking or releasing it reads, checks and replaces that
file inside a ``file_lock`` (the guard), so when many runs take an expired
lease at once exactly one wins.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import fcntl
import json
import os
import time

from ansible_collections.supersmartmatch.platform.plugins.module_utils.nginx import write_atomic
from ansible_collections.supersmartmatch.platform.plugins.module_utils.traffic_split_validate import (
    SplitError, validate_run_text, validate_service)


class LockError(Exception):
    pass


@contextlib.contextmanager
def file_lock(directory, name, timeout=30.0, sleep=time.sleep, clock=time.time, create=True, shared=False):
    """Hold a flock on ``directory/name``; no-op when directory is None.

    Exclusive unless ``shared`` (readers). With ``create=False`` a missing
    lock file means no writer ever ran there: nothing to wait for.
    """
    if directory is None:
        yield
        return
    path = os.path.join(directory, name)
    try:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o600)
    except OSError as exc:
        if create or exc.errno != errno.ENOENT:
            raise
        yield
        return
    deadline = clock() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
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


def guard_name(service):
    return '.%s.rollout.guard' % service


def validate_lease_input(service, run_id=None, holder=None, phase=None):
    """service like traffic_split's (no path can escape state_dir); safe run_id, holder, phase."""
    try:
        validate_service(service)
        if run_id is not None:
            validate_run_text(run_id, 'run_id')
        if holder is not None:
            validate_run_text(holder, 'holder')
        if phase is not None:
            validate_run_text(phase, 'phase', optional=True)
    except SplitError as exc:
        raise LockError(str(exc))


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


def is_live(lease, now):
    try:
        return float(lease.get('expires', 0)) > now
    except (TypeError, ValueError):
        return False


def acquire_lease(directory, service, run_id, holder, phase, ttl, now=None, force=False, timeout=30.0):
    """Take the rollout lease of ``service``.

    Returns ``(changed, lease)``. Taking a lease already held by the same
    ``run_id`` refreshes nothing and reports no change. A live lease held by
    another run raises LockError naming the holder; an expired one (or any
    one with ``force``) is replaced. Read, check and replace happen under the
    guard lock: of many runs taking an expired lease at once, one wins and
    the others find its live lease.
    """
    validate_lease_input(service, run_id, holder, phase)
    now = time.time() if now is None else now
    path = lease_path(directory, service)
    lease = {
        'service': service, 'run_id': run_id, 'holder': holder, 'phase': phase,
        'acquired_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now)),
        'expires': now + ttl,
        'expires_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now + ttl)),
    }
    with file_lock(directory, guard_name(service), timeout=timeout):
        existing = read_lease(path)
        if existing is not None:
            if existing.get('run_id') == run_id:
                return False, existing
            if not force and is_live(existing, now):
                raise LockError('a rollout of %s is already in progress: lease held by %s. Wait for it to '
                                'finish, or run playbooks/rollback.yml, or break the lease with '
                                '-e rollout_lock_force=true if that run is dead' % (service, describe(existing)))
        write_atomic(path, json.dumps(lease, sort_keys=True))
        return True, lease


def release_lease(directory, service, run_id, force=False, timeout=30.0):
    """Release the lease if ``run_id`` holds it (or any lease with ``force``).

    Returns ``(released, previous)``: whether a lease was removed, and the
    lease found (None if there was none). A lease held by another run is left
    alone without ``force``: a run gives back only what it took.
    """
    validate_lease_input(service, run_id)
    path = lease_path(directory, service)
    with file_lock(directory if os.path.isdir(directory) else None, guard_name(service), timeout=timeout):
        existing = read_lease(path)
        if existing is None or (existing.get('run_id') != run_id and not force):
            return False, existing
        os.unlink(path)
        return True, existing
