#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: rollout_lock
short_description: Take or release the rollout lease of a service on a host
version_added: 0.1.0
description:
  - A phase playbook takes the lease on every load balancer before it moves traffic and
    releases it at the end, so two rollouts of the same service cannot run at once. The
    second one fails with a message naming the holder, its run and when the lease expires.
  - The lease is a file in O(state_dir). It expires after O(ttl) seconds, so a run that died
    does not block the service forever; O(force) breaks a live one. Reading, checking and
    replacing it happen under an exclusive C(flock), so of many runs taking an expired lease
    at once exactly one wins; the others are refused, naming the winner.
  - Taking a lease already held by the same O(run_id) reports no change. Releasing a lease
    held by another run leaves it alone and reports no change (a run gives back only what it took).
  - C(playbooks/rollback.yml) does not take the lease, so an emergency rollback is never blocked;
    it gives the service back with O(state=released) and O(force=true), and learns from
    RV(previous) whose rollout it ended.
author:
  - SuperSmartMatch platform team (@supersmartmatch)
extends_documentation_fragment:
  - supersmartmatch.platform.attributes
attributes:
  check_mode:
    support: full
    details: In check mode the lease is only inspected; a conflict still fails.
  diff_mode:
    support: none
options:
  service:
    description:
      - Service whose lease this is; the same rule as traffic_split's O(supersmartmatch.platform.traffic_split#module:service)
        (a lower-case letter, then up to 62 of C(a-z), C(0-9), C(_)), so the lease cannot be written outside O(state_dir).
    type: str
    required: true
  state:
    description: V(acquired) takes the lease, V(released) gives it back.
    type: str
    choices: [acquired, released]
    default: acquired
  run_id:
    description:
      - Identifier of the run; the same run may take the lease again.
      - 1 to 128 of C(A-Z a-z 0-9 . _ @ + -) and colons, starting with a letter, a digit or C(_).
    type: str
    required: true
  holder:
    description: Who holds the lease (user and controller), shown to anybody refused; the charset of O(run_id).
    type: str
    default: unknown
  phase:
    description: Phase the holder is running, shown to anybody refused; empty or the charset of O(run_id).
    type: str
    default: ''
  ttl:
    description: Seconds after which the lease expires.
    type: int
    default: 28800
  force:
    description:
      - Take or release the lease even if another live run holds it.
      - With O(state=released), the lease is released whoever holds it, and RV(previous) names that holder.
    type: bool
    default: false
  state_dir:
    description: Directory of the lease file (the traffic state directory).
    type: path
    default: /var/lib/supersmartmatch/traffic
'''

EXAMPLES = r'''
- name: Take the rollout lease on every load balancer
  supersmartmatch.platform.rollout_lock:
    service: supersmartmatch
    run_id: "{{ rollout_run_id }}"
    holder: "{{ lookup('ansible.builtin.env', 'USER') }}@controller"
    phase: canary
    ttl: 10800

- name: Give it back
  supersmartmatch.platform.rollout_lock:
    service: supersmartmatch
    run_id: "{{ rollout_run_id }}"
    state: released

- name: Emergency rollback gives the service back, whoever held it
  supersmartmatch.platform.rollout_lock:
    service: supersmartmatch
    run_id: "{{ rollback_run_id }}"
    state: released
    force: true
  register: released

- name: Say whose rollout was ended
  ansible.builtin.debug:
    msg: "ended the {{ released.previous.phase }} run of {{ released.previous.holder }}"
  when: released.previous is not none
'''

RETURN = r'''
lease:
  description:
    - The lease as held after the task (null once released; another run's lease if it holds it).
    - On a refusal, the lease on file (the one that refused this run).
  returned: always
  type: dict
  sample: {"service": "supersmartmatch", "run_id": "5f0c...", "holder": "ci@runner-7", "phase": "canary",
           "acquired_at": "2026-11-25T10:00:00Z", "expires_at": "2026-11-25T13:00:00Z", "expires": 1795604400.0}
previous:
  description: The lease found before the task (null if there was none); after a forced release, whose it was.
  returned: always
  type: dict
  sample: {"service": "supersmartmatch", "run_id": "canary-2.0.0-20261125T100000Z-1234", "holder": "alice@ctl",
           "phase": "canary", "acquired_at": "2026-11-25T10:00:00Z", "expires_at": "2026-11-25T13:00:00Z",
           "expires": 1795604400.0}
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supersmartmatch.platform.plugins.module_utils import locking


def main():
    module = AnsibleModule(
        argument_spec=dict(
            service=dict(type='str', required=True),
            state=dict(type='str', default='acquired', choices=['acquired', 'released']),
            run_id=dict(type='str', required=True),
            holder=dict(type='str', default='unknown'),
            phase=dict(type='str', default=''),
            ttl=dict(type='int', default=28800),
            force=dict(type='bool', default=False),
            state_dir=dict(type='path', default='/var/lib/supersmartmatch/traffic'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        if p['ttl'] <= 0:
            raise locking.LockError('ttl must be a positive number of seconds, got %d' % p['ttl'])
        locking.validate_lease_input(p['service'], p['run_id'], p['holder'], p['phase'])
        existing = locking.read_lease(locking.lease_path(p['state_dir'], p['service']))
        now = time.time()
        if p['state'] == 'acquired':
            if module.check_mode:
                if (existing and existing.get('run_id') != p['run_id'] and not p['force']
                        and locking.is_live(existing, now)):
                    raise locking.LockError('a rollout of %s is already in progress: lease held by %s'
                                            % (p['service'], locking.describe(existing)))
                mine = bool(existing and existing.get('run_id') == p['run_id'])
                module.exit_json(changed=not mine, lease=existing if mine else None, previous=existing)
            if not os.path.isdir(p['state_dir']):
                os.makedirs(p['state_dir'], 0o755)
            changed, lease = locking.acquire_lease(p['state_dir'], p['service'], p['run_id'], p['holder'],
                                                   p['phase'], p['ttl'], now=now, force=p['force'])
            module.exit_json(changed=changed, lease=lease, previous=existing)
        if existing is None:
            module.exit_json(changed=False, lease=None, previous=None)
        if existing.get('run_id') != p['run_id'] and not p['force']:
            module.exit_json(changed=False, lease=existing, previous=existing,
                             msg='lease held by %s, not by this run: left alone' % locking.describe(existing))
        if module.check_mode:
            module.exit_json(changed=True, lease=None, previous=existing)
        released, previous = locking.release_lease(p['state_dir'], p['service'], p['run_id'], force=p['force'])
        module.exit_json(changed=released, lease=None if released else previous, previous=previous)
    except (locking.LockError, OSError, IOError) as exc:
        module.fail_json(msg=str(exc), changed=False, lease=current_lease(p), previous=current_lease(p))


def current_lease(p):
    """The lease on file, for a refusal (None when the service name is not valid or it cannot be read)."""
    try:
        locking.validate_lease_input(p['service'])
        return locking.read_lease(locking.lease_path(p['state_dir'], p['service']))
    except (locking.LockError, OSError, IOError, ValueError):
        return None


if __name__ == '__main__':
    main()
