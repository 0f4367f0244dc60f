#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: rollout_approval
short_description: Open, decide or close the wait for approval of a rollout phase on a host
version_added: 0.3.0
description:
  - The manual gate of a rollout (Flagger's confirm-promotion). With C(rollout_require_approval), a phase
    whose hold passed opens a wait on every load balancer (O(state=waiting)), keeps its gate running round
    by round and completes only once approved; C(playbooks/approve.yml) records the decision
    (O(state=approved) or O(state=rejected)); the phase closes the wait when it ends (O(state=closed)).
  - The wait is a JSON record, C(<state_dir>/<service>.approval.json), naming the run, the release, the
    phase, who started it and the deadline; a decision adds who made it, when, and an optional comment.
  - B(Compare-and-set.) A decision is recorded only on the wait of the release O(release) (and phase
    O(phase), when given) that is still open, whose run still holds the rollout lease, before its deadline.
    Anything else fails with the reason (nothing waiting, another release waiting, too late, already
    decided the other way) and changes nothing. Recording the same decision again changes nothing.
  - Reading, checking and writing happen under an exclusive C(flock) guard; the record is replaced
    atomically, so the waiting gate (M(supersmartmatch.platform.metric_gate) option C(confirm)) never reads
    half a record.
author:
  - SuperSmartMatch platform team (@supersmartmatch)
extends_documentation_fragment:
  - supersmartmatch.platform.attributes
attributes:
  check_mode:
    support: full
    details: In check mode the record is read and the change decided (a refusal still fails), nothing is written.
  diff_mode:
    support: none
options:
  service:
    description:
      - Service of the wait; the rule of traffic_split's service (a lower-case letter, then up to 62 of
        C(a-z), C(0-9), C(_)), so the record cannot be written outside O(state_dir).
    type: str
    required: true
  state:
    description:
      - V(waiting) opens the wait of the run O(run_id) (replacing any record of another run), deadline
        O(timeout) seconds from now; the same run opening it again changes nothing.
      - V(approved) and V(rejected) record a decision by O(by) on the wait of O(release) (compare-and-set,
        see the description).
      - V(closed) closes the wait of the run O(run_id) with O(outcome); a record of another run is left alone.
    type: str
    choices: [waiting, approved, rejected, closed]
    required: true
  run_id:
    description:
      - "The phase's run (V(waiting), V(closed)); 1 to 128 of C(A-Z a-z 0-9 . _ @ : + -)."
    type: str
  release:
    description:
      - The release of the phase (V(waiting)), or the release the decision is about (V(approved), V(rejected));
        1 to 64 of C(A-Z a-z 0-9 . _ + -), starting with a letter or digit.
    type: str
  phase:
    description:
      - The waiting phase (V(waiting), required); with a decision, only the wait of that phase is decided.
    type: str
    choices: [canary, extended, full]
  holder:
    description: Who runs the phase (V(waiting)); the charset of O(run_id).
    type: str
    default: unknown
  by:
    description: Who decides (V(approved), V(rejected)); the charset of O(run_id).
    type: str
  comment:
    description: 'Why (V(approved), V(rejected)); at most 200 of letters, digits, spaces and C(. _ , : ; ! ? ( ) @ + / # = % -).'
    type: str
  timeout:
    description: Seconds the phase waits (V(waiting)); the deadline is now plus this.
    type: int
  outcome:
    description: How the phase ended (V(closed)), such as C(completed), C(rolled back), C(left as it is).
    type: str
    default: closed
  state_dir:
    description: Directory of the record (the traffic state directory, beside the lease).
    type: path
    default: /var/lib/supersmartmatch/traffic
notes:
  - The waiting phase reads the record on its gate host (the first load balancer); C(playbooks/approve.yml)
    writes it on every load balancer and names any it could not reach.
seealso:
  - module: supersmartmatch.platform.metric_gate
  - module: supersmartmatch.platform.rollout_lock
  - name: Flagger manual gating
    description: The model (confirm-promotion webhook).
    link: https://docs.flagger.app/usage/webhooks#manual-gating
'''

EXAMPLES = r'''
- name: The canary passed its hold; wait up to 1 h for approval
  supersmartmatch.platform.rollout_approval:
    service: supersmartmatch
    state: waiting
    run_id: "{{ run_id }}"
    release: 2.0.0
    phase: canary
    holder: ci@runner
    timeout: 3600

- name: Approve it (what playbooks/approve.yml does on every balancer)
  supersmartmatch.platform.rollout_approval:
    service: supersmartmatch
    state: approved
    release: 2.0.0
    by: alice@laptop
    comment: dashboards look fine

- name: The phase ended
  supersmartmatch.platform.rollout_approval:
    service: supersmartmatch
    state: closed
    run_id: "{{ run_id }}"
    outcome: completed
'''

RETURN = r'''
record:
  description:
    - The record as it is now (after the change), or null when there is none.
    - C(run_id), C(release), C(phase), C(holder), C(status) (V(waiting), V(approved), V(rejected), V(closed)),
      C(opened_at), C(timeout_s), C(deadline) (epoch) and C(deadline_at), C(decision), C(by), C(at), C(comment),
      C(outcome), C(closed_at).
  returned: always
  type: dict
  sample: {"run_id": "canary-2.0.0-20261129T180000Z-1", "release": "2.0.0", "phase": "canary", "status": "approved",
           "holder": "ci@runner", "deadline_at": "2026-11-29T19:00:30Z", "by": "alice@laptop",
           "at": "2026-11-29T18:20:00Z", "comment": null}
previous:
  description: The record before the call, or null.
  returned: always
  type: dict
  sample: {"run_id": "canary-2.0.0-20261129T180000Z-1", "release": "2.0.0", "phase": "canary", "status": "waiting",
           "deadline_at": "2026-11-29T19:00:30Z", "by": null}
msg:
  description: What was done or why it was refused.
  returned: always
  type: str
  sample: the canary of 2.0.0 (run canary-2.0.0-…, started by ci@runner) approved by alice@laptop at 2026-11-29T18:20:00Z
'''

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_approval as ra
from ansible_collections.supersmartmatch.platform.plugins.module_utils.locking import (
    LockError, file_lock, lease_path, read_lease)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.nginx import write_atomic

REQUIRED = {'waiting': ('run_id', 'release', 'phase', 'timeout'), 'approved': ('release', 'by'),
            'rejected': ('release', 'by'), 'closed': ('run_id',)}


def check_params(params):
    missing = [name for name in REQUIRED[params['state']] if params.get(name) in (None, '')]
    if missing:
        raise ra.ApprovalError('state=%s needs %s' % (params['state'], ', '.join(missing)))
    ra.validate_input(params['service'], run_id=params['run_id'], release=params['release'], phase=params['phase'],
                      holder=params['holder'], by=params['by'], comment=params['comment'])
    if params['state'] == 'waiting' and not 0 < params['timeout'] <= 7 * 86400:
        raise ra.ApprovalError('timeout must be between 1 and 604800 seconds, got %s' % params['timeout'])
    if not ra.COMMENT_RE.match(params['outcome'] or ''):
        raise ra.ApprovalError('outcome must be at most 200 of letters, digits, spaces and punctuation, got %r'
                               % params['outcome'])
    if not os.path.isabs(params['state_dir']):
        raise ra.ApprovalError('state_dir must be an absolute path, got %r' % params['state_dir'])


def change(params, existing, lease, now):
    """``(record, changed, msg)`` of the call; ApprovalRefused when a decision is refused."""
    state = params['state']
    if state == 'waiting':
        record, changed = ra.open_wait(existing, params['service'], params['run_id'], params['release'],
                                       params['phase'], params['holder'], params['timeout'], now)
        return record, changed, '%s waits for approval until %s' % (ra.what(record), record['deadline_at'])
    if state == 'closed':
        record, changed = ra.close_wait(existing, params['run_id'], params['outcome'], now)
        return record, changed, ('closed: %s' % params['outcome']) if changed else 'no wait of this run to close'
    return ra.decide(existing, lease, params['service'], params['release'], params['phase'], state, params['by'],
                     params['comment'], now)


def argument_spec():
    return dict(
        service=dict(type='str', required=True),
        state=dict(type='str', required=True, choices=['waiting', 'approved', 'rejected', 'closed']),
        run_id=dict(type='str'),
        release=dict(type='str'),
        phase=dict(type='str', choices=['canary', 'extended', 'full']),
        holder=dict(type='str', default='unknown'),
        by=dict(type='str'),
        comment=dict(type='str'),
        timeout=dict(type='int'),
        outcome=dict(type='str', default='closed'),
        state_dir=dict(type='path', default='/var/lib/supersmartmatch/traffic'),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        check_params(params)
    except ra.ApprovalError as exc:
        module.fail_json(msg=str(exc), changed=False, record=None, previous=None)
    directory = params['state_dir']
    if params['state'] == 'waiting' and not module.check_mode and not os.path.isdir(directory):
        module.fail_json(msg='state_dir %s does not exist: provision the balancer first (playbooks/site.yml)'
                         % directory, changed=False, record=None, previous=None)
    path = ra.record_path(directory, params['service'])
    existing = None
    try:
        with file_lock(directory if os.path.isdir(directory) else None, ra.guard_name(params['service'])):
            existing = ra.read_record(path)
            lease = read_lease(lease_path(directory, params['service']))
            record, changed, msg = change(params, existing, lease, time.time())
            if changed and not module.check_mode:
                write_atomic(path, json.dumps(record, sort_keys=True, indent=2) + '\n')
    except ra.ApprovalRefused as exc:
        module.fail_json(msg=str(exc), changed=False, record=existing, previous=existing)
    except (ra.ApprovalError, LockError) as exc:
        module.fail_json(msg=str(exc), changed=False, record=existing, previous=existing)
    except (IOError, OSError, ValueError) as exc:
        module.fail_json(msg='the approval record %s cannot be read or written: %s' % (path, exc), changed=False,
                         record=existing, previous=existing)
    module.exit_json(changed=changed, record=record, previous=existing, msg=msg)


if __name__ == '__main__':
    main()
