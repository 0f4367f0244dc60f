#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: traffic_split_info
short_description: Read a service's traffic split on an NGINX host, its live file, drift and rollout lease
version_added: 0.2.0
description:
  - Reads, once each, the state file that M(supersmartmatch.platform.traffic_split) keeps for
    O(service), the live split file NGINX includes, and the service's rollout lease, and reports
    them with the generation each records.
  - Reports drift when the live file is not what the state renders (a crash between the
    module's two writes, a missing file, a hand edit), with the same rule
    M(supersmartmatch.platform.traffic_split) applies before it changes anything.
  - The files are read under the lock that M(supersmartmatch.platform.traffic_split) holds while
    it writes, so a change in progress is not reported as drift.
  - Changes nothing.
author:
  - SuperSmartMatch platform team (@supersmartmatch)
extends_documentation_fragment:
  - supersmartmatch.platform.attributes
  - supersmartmatch.platform.traffic_split
attributes:
  check_mode:
    support: full
    details: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
options:
  history:
    description: Number of the state's last history entries returned in RV(state).
    type: int
    default: 10
seealso:
  - module: supersmartmatch.platform.traffic_split
  - module: supersmartmatch.platform.rollout_lock
'''

EXAMPLES = r'''
- name: Read the split on every load balancer
  supersmartmatch.platform.traffic_split_info:
    service: supersmartmatch
  register: split_info

- name: Refuse to plan while a balancer has drifted
  ansible.builtin.assert:
    that: not split_info.drift
    fail_msg: "drift on {{ inventory_hostname }}: {{ split_info.drift_reason }}; run playbooks/rollback.yml"

- name: Shift from the generation that was read
  supersmartmatch.platform.traffic_split:
    service: supersmartmatch
    stable: [app1:5062]
    candidate: [app1:5070]
    percent: 5
    phase: canary
    expected_generation: "{{ split_info.generation }}"
'''

RETURN = r'''
exists:
  description: Whether the service has a state on this host.
  returned: always
  type: bool
  sample: true
state:
  description: The state document (null without one), its history trimmed to the last O(history) entries.
  returned: always
  type: dict
  sample: {"service": "supersmartmatch", "generation": 8, "percent": 5.0, "phase": "canary", "status": "in_progress",
           "stable": {"backends": ["app1:5062"], "version": "1.0.0", "color": "blue"},
           "candidate": {"backends": ["app1:5070"], "version": "2.0.0", "color": "green"},
           "server_options": "max_fails=3 fail_timeout=10s", "keepalive": 32, "history": []}
generation:
  description: The state's generation (0 without a state, or for a state written before generations).
  returned: always
  type: int
  sample: 8
file_generation:
  description: The generation the live split file records, or null (no file, or a file that records none).
  returned: always
  type: int
  sample: 8
drift:
  description: True when the live split file is not what the state renders (never without a state).
  returned: always
  type: bool
  sample: false
drift_reason:
  description: What differs between the live split file and the state, or null.
  returned: always
  type: str
  sample: the split file is at generation 9 with 5 % on the candidate but the state is at generation 8 with 0 % on the candidate
live:
  description: What the live split file sends where, read from the file itself (null when there is no file).
  returned: always
  type: dict
  contains:
    percent:
      description: Share of users sent to the candidate, from the C(split_clients) block (null if unreadable).
      type: float
    stable_backends:
      description: Servers of the stable upstream (empty when it takes no traffic and is not rendered).
      type: list
      elements: str
    candidate_backends:
      description: Servers of the candidate upstream (empty when it takes no traffic and is not rendered).
      type: list
      elements: str
    stable_version:
      description: Stable version in the file's summary line (C(-) when none was given).
      type: str
    candidate_version:
      description: Candidate version in the file's summary line.
      type: str
  sample: {"percent": 5.0, "stable_backends": ["app1:5062"], "candidate_backends": ["app1:5070"],
           "stable_version": "1.0.0", "candidate_version": "2.0.0"}
lease:
  description: The service's rollout lease (null when none is held), with C(expired).
  returned: always
  type: dict
  sample: {"service": "supersmartmatch", "run_id": "canary-2.0.0-20261129T180000Z-42", "holder": "alice@ctl",
           "phase": "canary", "acquired_at": "2026-11-29T18:00:00Z", "expires_at": "2026-11-29T21:00:00Z",
           "expires": 1795975200.0, "expired": false}
config_path:
  description: Path of the live split file.
  returned: always
  type: str
  sample: /etc/nginx/traffic_split/supersmartmatch.conf
state_path:
  description: Path of the state file.
  returned: always
  type: str
  sample: /var/lib/supersmartmatch/traffic/supersmartmatch.json
'''

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split as ts
from ansible_collections.supersmartmatch.platform.plugins.module_utils.locking import LockError
from ansible_collections.supersmartmatch.platform.plugins.module_utils.traffic_split_validate import (
    SERVICE_ARGUMENT_SPEC, SplitError)


def main():
    spec = dict(history=dict(type='int', default=10))
    spec.update(SERVICE_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    if module.params['history'] < 0:
        module.fail_json(msg='history must be >= 0, got %d' % module.params['history'])
    try:
        result = ts.info(module.params, time.time(), history=module.params['history'])
    except (SplitError, LockError, IOError, OSError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
