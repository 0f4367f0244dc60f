#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: traffic_split
short_description: Split a service's traffic between a stable and a candidate side on an NGINX host
version_added: 0.1.0
description:
  - Sends O(percent) of a service's users to the candidate backends and the rest to the
    stable backends, through an NGINX C(split_clients) block that this module owns in
    O(config_dir).
  - Users are pinned to a side by hashing O(sticky_key) (by default the C(ssm_uid) cookie,
    falling back to the client address). The candidate bucket comes first, so the users
    on the candidate at 5 % are still on it at 25 %; the cohort only grows.
  - The new file is validated with C(nginx -t) in a private copy of the configuration tree
    B(before) it is written to O(config_dir); it is then swapped in atomically and NGINX is
    reloaded gracefully (in-flight requests finish on the old workers). If the reload does
    not produce new workers, the previous file is restored. On any failure the previous
    configuration stays active and the module fails with NGINX's own message.
  - A JSON state file per service in O(state_dir) records the split (sides, versions,
    colours, percent, phase, time, who ran it) with a bounded history. It is written
    atomically and is what O(operation=rollback) reads, so rollback needs no other input.
  - The previous split file is kept in O(state_dir), named after its full path with C(.prev) added.
author:
  - SuperSmartMatch platform team (@supersmartmatch)
extends_documentation_fragment:
  - supersmartmatch.platform.attributes
  - supersmartmatch.platform.nginx
attributes:
  check_mode:
    support: full
    details: Check mode still validates the new configuration with C(nginx -t) (read-only).
  diff_mode:
    support: full
options:
  service:
    description:
      - Name of the service. Names the NGINX upstreams C(<service>_stable) and
        C(<service>_candidate) and the variable C($<service>_backend) that a server block
        uses in C(proxy_pass http://$<service>_backend;).
    type: str
    required: true
  operation:
    description:
      - V(set) applies O(stable), O(candidate) and O(percent).
      - V(rollback) sends all traffic back to the stable side recorded in the state file,
        with no other input. If the last rollout was already promoted, the side that was
        stable before the promotion (still running) takes all traffic again.
      - V(promote) makes the candidate, which must already hold 100 %, the stable side.
        Traffic does not move.
      - V(complete) records that the current O(phase) of O(candidate_version) passed its hold
        (status C(completed)); the next phase playbook requires it. Traffic does not move.
      - V(restore) undoes the last change if the run O(run_id) made it, and does nothing
        otherwise. The phase playbooks use it to bring every load balancer back to the
        previous split when one of them fails to move.
    type: str
    choices: [set, rollback, promote, complete, restore]
    default: set
  stable:
    description:
      - Backends (C(host:port)) of the stable side. Required with O(operation=set).
    type: list
    elements: str
  candidate:
    description:
      - Backends (C(host:port)) of the candidate side. Required with O(operation=set).
    type: list
    elements: str
  percent:
    description:
      - Share of users sent to the candidate, from 0 to 100, at most two decimals.
      - Required with O(operation=set); not allowed otherwise.
    type: raw
  stable_version:
    description: Version running on the stable side (recorded in the state).
    type: str
  candidate_version:
    description: Version running on the candidate side (recorded in the state).
    type: str
  stable_color:
    description: Slot colour of the stable side, such as C(blue) (recorded in the state).
    type: str
  candidate_color:
    description: Slot colour of the candidate side, such as C(green) (recorded in the state).
    type: str
  phase:
    description:
      - Rollout phase recorded in the state with O(operation=set); with O(operation=complete),
        the phase being completed (it must be the current one).
      - With O(operation=set), phases C(canary), C(extended) and C(full) get status C(in_progress).
    type: str
    choices: [bootstrap, canary, extended, full, manual]
    default: manual
  sticky_key:
    description:
      - The NGINX variable hashed to pin a user to a side.
      - Defaults to the value in the state file, else C($cookie_ssm_uid).
    type: str
  sticky_fallback:
    description:
      - The NGINX variable hashed when O(sticky_key) is empty.
      - Defaults to the value in the state file, else C($remote_addr).
    type: str
  salt:
    description:
      - Appended to the hashed key. Keep it constant for a whole rollout (the playbooks use
        the candidate version) so users stay put across phases, and change it between
        releases so that a different cohort sees each canary.
    type: str
    default: ''
  keepalive:
    description: Idle keepalive connections kept per worker to each upstream (0 disables).
    type: int
    default: 32
  server_options:
    description: Parameters appended to every C(server) line of both upstreams.
    type: str
    default: max_fails=3 fail_timeout=10s
  config_dir:
    description: Directory, included by NGINX in the C(http) context, where C(<service>.conf) lives.
    type: path
    default: /etc/nginx/traffic_split
  state_dir:
    description: Directory holding C(<service>.json), the state with its history.
    type: path
    default: /var/lib/supersmartmatch/traffic
  history_limit:
    description: Number of history entries kept in the state file.
    type: int
    default: 100
  run_by:
    description: Who made the change, recorded in the state (the playbooks pass the controller user).
    type: str
  run_id:
    description: Identifier of the run that made the change, recorded in the state.
    type: str
notes:
  - Percentages are applied by NGINX's C(split_clients) (MurmurHash2 of the key), so shares are
    exact over many users and a user's side only changes when O(percent), O(salt) or O(sticky_key) do.
  - Without a shared C(zone), weights would be per worker; C(split_clients) has no such issue.
seealso:
  - module: supersmartmatch.platform.rollout_lock
'''

EXAMPLES = r'''
- name: Send 5 % of users to the green slot
  supersmartmatch.platform.traffic_split:
    service: supersmartmatch
    stable: [app1:5062, app2:5062]
    candidate: [app1:5070, app2:5070]
    stable_version: 1.0.0
    candidate_version: 2.0.0
    stable_color: blue
    candidate_color: green
    percent: 5
    phase: canary
    salt: 2.0.0

- name: Emergency rollback, from the state file alone
  supersmartmatch.platform.traffic_split:
    service: supersmartmatch
    operation: rollback

- name: Preview a change without touching NGINX
  supersmartmatch.platform.traffic_split:
    service: supersmartmatch
    stable: [app1:5062]
    candidate: [app1:5070]
    percent: 25
  check_mode: true
  diff: true
'''

RETURN = r'''
previous:
  description: The split before the change, or null when the service had no state.
  returned: always
  type: dict
  sample: {"percent": 5.0, "phase": "canary", "stable": {"backends": ["app1:5062"], "version": "1.0.0", "color": "blue"},
           "candidate": {"backends": ["app1:5070"], "version": "2.0.0", "color": "green"}, "salt": "2.0.0",
           "updated_at": "2026-11-25T10:00:00+00:00", "updated_by": "ci"}
split:
  description: The split after the change (what would be applied in check mode).
  returned: always
  type: dict
  sample: {"percent": 25.0, "phase": "extended", "stable": {"backends": ["app1:5062"], "version": "1.0.0", "color": "blue"},
           "candidate": {"backends": ["app1:5070"], "version": "2.0.0", "color": "green"}, "salt": "2.0.0",
           "updated_at": "2026-11-25T12:00:00+00:00", "updated_by": "ci"}
variable:
  description: The NGINX variable holding the chosen upstream, for C(proxy_pass http://<variable>;).
  returned: always
  type: str
  sample: $supersmartmatch_backend
config_path:
  description: Path of the split file.
  returned: always
  type: str
  sample: /etc/nginx/traffic_split/supersmartmatch.conf
state_path:
  description: Path of the state file.
  returned: always
  type: str
  sample: /var/lib/supersmartmatch/traffic/supersmartmatch.json
reloaded:
  description: Whether NGINX was reloaded (and started new workers).
  returned: always
  type: bool
  sample: true
'''

import getpass
import os
import uuid

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split as ts
from ansible_collections.supersmartmatch.platform.plugins.module_utils.nginx import (
    NGINX_ARGUMENT_SPEC, NginxError, nginx_from_params, read_text, write_atomic)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.locking import (
    LockError, file_lock)


def argument_spec():
    spec = dict(
        service=dict(type='str', required=True),
        operation=dict(type='str', default='set', choices=['set', 'rollback', 'promote', 'complete', 'restore']),
        stable=dict(type='list', elements='str'),
        candidate=dict(type='list', elements='str'),
        percent=dict(type='raw'),
        stable_version=dict(type='str'),
        candidate_version=dict(type='str'),
        stable_color=dict(type='str'),
        candidate_color=dict(type='str'),
        phase=dict(type='str', default='manual', choices=['bootstrap', 'canary', 'extended', 'full', 'manual']),
        sticky_key=dict(type='str', no_log=False),
        sticky_fallback=dict(type='str'),
        salt=dict(type='str', default=''),
        keepalive=dict(type='int', default=32),
        server_options=dict(type='str', default='max_fails=3 fail_timeout=10s'),
        config_dir=dict(type='path', default='/etc/nginx/traffic_split'),
        state_dir=dict(type='path', default='/var/lib/supersmartmatch/traffic'),
        history_limit=dict(type='int', default=100),
        run_by=dict(type='str'),
        run_id=dict(type='str'),
    )
    spec.update(NGINX_ARGUMENT_SPEC)
    return spec


def run(module):
    params = module.params
    service = ts.validate_service(params['service'])
    config_path = os.path.join(params['config_dir'], '%s.conf' % service)
    state_path = os.path.join(params['state_dir'], '%s.json' % service)
    result = dict(changed=False, config_path=config_path, state_path=state_path,
                  variable=ts.names(service)['variable'], reloaded=False)

    previous = ts.read_json(state_path)
    split = ts.plan_split(dict(params, state_path=state_path), previous)
    if split is None:  # restore: the last change is not this run's
        result['previous'] = result['split'] = ts.split_summary(previous)
        return result
    content = ts.render_config(split, params)
    current = read_text(config_path)
    run_by = params['run_by'] or os.environ.get('SUDO_USER') or getpass.getuser()
    run_id = params['run_id'] or str(uuid.uuid4())
    state = ts.new_state(previous, split, run_by, run_id, params['history_limit'])

    config_changed = content != current
    state_changed = ts.traffic_fields(previous) != ts.traffic_fields(split)
    result['previous'] = ts.split_summary(previous)
    result['split'] = ts.split_summary(state if state_changed else previous)
    result['changed'] = config_changed or state_changed
    if module._diff:
        result['diff'] = [
            dict(before_header=config_path, after_header=config_path,
                 before=current or '', after=content),
        ]
    if not result['changed']:
        return result

    if not module.check_mode:
        for directory in (params['state_dir'], params['config_dir']):
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
    nginx = nginx_from_params(module)
    if config_changed:
        outcome = nginx.apply({config_path: content}, reload=params['reload'],
                              check_mode=module.check_mode, backup_dir=params['state_dir'])
        result['reloaded'] = outcome['reloaded']
    if not module.check_mode:
        write_atomic(state_path, ts.dump_state(state))
    return result


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[('operation', 'set', ('stable', 'candidate', 'percent'))],
        supports_check_mode=True,
    )
    params = module.params
    binary = params['nginx_bin']
    if not os.path.isabs(binary):
        params['nginx_bin'] = module.get_bin_path(binary, required=True)
    try:
        ts.validate_service(params['service'])
        lock_dir = params['state_dir'] if os.path.isdir(params['state_dir']) else None
        with file_lock(lock_dir, '.%s.module.lock' % params['service']):
            result = run(module)
    except (ts.SplitError, LockError) as exc:
        module.fail_json(msg=str(exc), changed=False)
    except NginxError as exc:
        module.fail_json(msg=str(exc), changed=exc.changed)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
