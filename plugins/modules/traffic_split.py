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
    colours, percent, phase, server options, time, who ran it) with a bounded history. It is
    written atomically and is what O(operation=rollback) reads, so rollback needs no other input.
  - B(Generations.) Every change increments the state's integer C(generation) (0 for a state
    written before generations existed); a call that changes nothing keeps it. O(expected_generation)
    makes any operation a compare-and-set, refused with C(conflict=true) when the state has moved on.
  - B(NGINX is the truth.) The split file records the generation it was written for. The file is
    written (and NGINX reloaded) B(before) the state, so a crash between the two leaves a file one
    generation ahead of the state. When the live file is not what the state renders (a crash
    between the writes, a missing file, a hand edit), V(set), V(restore), V(complete) and
    V(promote) refuse with C(drift=true), changing nothing; V(rollback) repairs it.
  - Without a state there is nothing to drift from; the first V(set) takes the file over.
  - The previous split file is kept in O(state_dir), named after its full path with C(.prev) added.
author:
  - SuperSmartMatch platform team (@supersmartmatch)
extends_documentation_fragment:
  - supersmartmatch.platform.attributes
  - supersmartmatch.platform.nginx
  - supersmartmatch.platform.traffic_split
attributes:
  check_mode:
    support: full
    details: Check mode still validates the new configuration with C(nginx -t) (read-only).
  diff_mode:
    support: full
options:
  operation:
    description:
      - V(set) applies O(stable), O(candidate) and O(percent).
      - V(rollback) sends all traffic back to the stable side recorded in the state file,
        with no other input, re-rendering the server options stored there. If the last
        rollout was already promoted, the side that was stable before the promotion (still
        running) takes all traffic again. It needs no O(expected_generation) and wins over
        drift, which it repairs; given O(expected_generation), it is honoured.
      - V(promote) makes the candidate, which must already hold 100 %, the stable side.
        Traffic does not move.
      - V(complete) records that the current O(phase) of O(candidate_version) passed its hold
        (status C(completed)); the next phase playbook requires it. Traffic does not move.
      - V(restore) undoes the last change if the run O(run_id) made it, and does nothing
        otherwise. The phase playbooks use it to bring every load balancer back to the
        previous split when one of them fails to move.
      - V(resize) replaces the backends of both sides with O(stable) and O(candidate) and keeps
        everything else in the state (share, phase, status, versions, colours, salt), so users
        stay on their side. C(playbooks/scale.yml) uses it to add and drain application hosts
        in one atomic step per balancer. It needs a state.
      - V(join) gives a balancer that has no state the split of the fleet it joins, whole, from
        O(fleet_split), that is sides and backends, share, phase, status, salt and sticky keys, so every
        user lands on the same side whichever balancer answers. The nginx role uses it for a
        balancer added to a running fleet. A balancer that has a state is refused.
    type: str
    choices: [set, rollback, promote, complete, restore, resize, join]
    default: set
  fleet_split:
    description:
      - With O(operation=join), and only then, the split the other balancers agree on, that is the C(state)
        that M(supersmartmatch.platform.traffic_split_info) returns on one of them (keys C(stable),
        C(candidate) with C(backends), C(version) and C(color), and C(percent), C(phase), C(status),
        C(salt), C(sticky_key), C(sticky_fallback), C(server_options), C(keepalive)). Every value is
        validated as the other operations validate it.
    type: dict
  expected_generation:
    description:
      - The generation of the state this change was planned from. When the state is at another
        generation, the call fails with nothing changed, C(conflict=true), the state's
        C(generation) and C(moved) (who moved it, when and how).
      - Allowed with every operation; omit it for an emergency V(rollback), which always wins.
    type: int
  stable:
    description:
      - Backends (C(host:port), port in ASCII digits 1-65535) of the stable side.
        Required with O(operation=set) and O(operation=resize).
    type: list
    elements: str
  candidate:
    description:
      - Backends (C(host:port)) of the candidate side. Required with O(operation=set) and
        O(operation=resize).
    type: list
    elements: str
  percent:
    description:
      - Share of users sent to the candidate, from 0 to 100, at most two decimals, as a number
        or a string of ASCII digits with an optional C(.); C(5_0), a space or non-ASCII digits
        are refused.
      - Required with O(operation=set); not allowed otherwise.
    type: raw
  stable_version:
    description:
      - Version running on the stable side (recorded in the state and the file's summary line).
      - 1 to 64 of C(A-Z a-z 0-9 . _ + -), starting with a letter or digit.
    type: str
  candidate_version:
    description: Version running on the candidate side; same charset as O(stable_version).
    type: str
  stable_color:
    description: Slot colour of the stable side, such as C(blue); same charset as O(stable_version).
    type: str
  candidate_color:
    description: Slot colour of the candidate side, such as C(green); same charset as O(stable_version).
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
      - The NGINX variable hashed to pin a user to a side (one C($name)).
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
      - Empty, or the charset of O(stable_version).
    type: str
    default: ''
  keepalive:
    description:
      - Idle keepalive connections kept per worker to each upstream (0 disables, at most 10000).
      - Only with O(operation=set). Defaults to the value in the state, else 32. Kept in the state.
    type: int
  server_options:
    description:
      - Parameters of every C(server) line of both upstreams, as C(name=value) separated by spaces.
        Known parameters only, each once - C(weight) (1-1000), C(max_fails) (0-1000),
        C(fail_timeout) (an NGINX time, digits with an optional C(ms), C(s), C(m) or C(h)) and
        C(max_conns) (0-100000); anything else is refused. An empty string sets none.
      - Only with O(operation=set). Defaults to the value in the state, else
        C(max_fails=3 fail_timeout=10s). Kept in the state, normalised, so V(rollback) and
        V(restore) render what was set.
    type: str
  history_limit:
    description: Number of history entries kept in the state file (0 keeps all).
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
  - A change that only moves comments (a new generation, a status) rewrites the file without a reload.
seealso:
  - module: supersmartmatch.platform.traffic_split_info
  - module: supersmartmatch.platform.rollout_lock
'''

EXAMPLES = r'''
- name: Send 5 % of users to the green slot, if nobody moved the split since the plan
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
    server_options: max_fails=3 fail_timeout=10s
    expected_generation: "{{ split_info.generation }}"

- name: Add app3 to both sides, keeping the share, phase and cohort (scale.yml)
  supersmartmatch.platform.traffic_split:
    service: supersmartmatch
    operation: resize
    stable: [app1:5062, app2:5062, app3:5062]
    candidate: [app1:5070, app2:5070, app3:5070]
    expected_generation: "{{ split_info.generation }}"

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
  returned: success
  type: dict
  sample: {"generation": 3, "percent": 5.0, "phase": "canary", "status": "in_progress",
           "stable": {"backends": ["app1:5062"], "version": "1.0.0", "color": "blue"},
           "candidate": {"backends": ["app1:5070"], "version": "2.0.0", "color": "green"}, "salt": "2.0.0",
           "updated_at": "2026-11-25T10:00:00+00:00", "updated_by": "ci"}
split:
  description: The split after the change (what would be applied in check mode).
  returned: success
  type: dict
  sample: {"generation": 4, "percent": 25.0, "phase": "extended", "status": "in_progress",
           "stable": {"backends": ["app1:5062"], "version": "1.0.0", "color": "blue"},
           "candidate": {"backends": ["app1:5070"], "version": "2.0.0", "color": "green"}, "salt": "2.0.0",
           "updated_at": "2026-11-25T12:00:00+00:00", "updated_by": "ci"}
generation:
  description:
    - The state's generation after the call (the one it would reach in check mode); unchanged
      when nothing changed or the call failed.
  returned: always
  type: int
  sample: 4
previous_generation:
  description: The state's generation before the call (0 without a state).
  returned: always
  type: int
  sample: 3
repaired:
  description: Why the live split file had drifted from the state, when a rollback repaired it.
  returned: when a rollback repaired drift
  type: str
  sample: the split file is at generation 4 with 5 % on the candidate but the state is at generation 3 with 0 % on the candidate
conflict:
  description: True when the call was refused because the state was not at O(expected_generation).
  returned: on a compare-and-set refusal
  type: bool
  sample: true
moved:
  description: The state's last change (its last history entry) when a compare-and-set was refused.
  returned: on a compare-and-set refusal
  type: dict
  sample: {"generation": 8, "by": "alice@ctl", "at": "2026-11-29T18:00:01+00:00", "operation": "rollback",
           "phase": "rollback", "status": "rolled_back", "run_id": "5f0c..."}
drift:
  description: True when the call was refused because the live split file is not what the state renders.
  returned: on a drift refusal
  type: bool
  sample: true
drift_reason:
  description: What differs between the live split file and the state.
  returned: on a drift refusal
  type: str
  sample: the split file is at generation 4 with 5 % on the candidate but the state is at generation 3 with 0 % on the candidate
variable:
  description: The NGINX variable holding the chosen upstream, for C(proxy_pass http://<variable>;).
  returned: success
  type: str
  sample: $supersmartmatch_backend
config_path:
  description: Path of the split file.
  returned: success
  type: str
  sample: /etc/nginx/traffic_split/supersmartmatch.conf
state_path:
  description: Path of the state file.
  returned: success
  type: str
  sample: /var/lib/supersmartmatch/traffic/supersmartmatch.json
reloaded:
  description: Whether NGINX was reloaded (and started new workers).
  returned: success
  type: bool
  sample: true
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split as ts
from ansible_collections.supersmartmatch.platform.plugins.module_utils.locking import LockError
from ansible_collections.supersmartmatch.platform.plugins.module_utils.nginx import (
    NGINX_ARGUMENT_SPEC, NginxError, nginx_from_params)
from ansible_collections.supersmartmatch.platform.plugins.module_utils.traffic_split_validate import (
    SERVICE_ARGUMENT_SPEC, SplitError)


def argument_spec():
    spec = dict(
        operation=dict(type='str', default='set', choices=list(ts.OPERATIONS)),
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
        keepalive=dict(type='int'),
        server_options=dict(type='str'),
        expected_generation=dict(type='int'),
        history_limit=dict(type='int', default=100),
        run_by=dict(type='str'),
        run_id=dict(type='str'),
        fleet_split=dict(type='dict'),
    )
    spec.update(SERVICE_ARGUMENT_SPEC)
    spec.update(NGINX_ARGUMENT_SPEC)
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_if=[('operation', 'set', ('stable', 'candidate', 'percent')),
                     ('operation', 'resize', ('stable', 'candidate')),
                     ('operation', 'join', ('fleet_split',))],
        supports_check_mode=True,
    )
    params = module.params
    binary = params['nginx_bin']
    if not os.path.isabs(binary):
        params['nginx_bin'] = module.get_bin_path(binary, required=True)
    try:
        result = ts.execute(params, nginx_from_params(module), check_mode=module.check_mode, diff=module._diff)
    except (SplitError, LockError) as exc:
        module.fail_json(msg=str(exc), changed=False, **getattr(exc, 'details', {}))
    except NginxError as exc:
        module.fail_json(msg=str(exc), changed=exc.changed, **exc.details)
    except (IOError, OSError) as exc:
        module.fail_json(msg='traffic_split could not read or write its files, nothing was changed: %s' % exc,
                         changed=False)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
