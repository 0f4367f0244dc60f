#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: scale_plan
short_description: Decide which application hosts join or leave the balancers' upstreams
version_added: 0.3.0
description:
  - The decision step of C(playbooks/scale.yml), the guide's auto-scaling (an HPA of 3 to 10 replicas) for
    application hosts behind NGINX. It reads nothing itself and changes nothing.
  - The inventory's application group is the wanted fleet. Hosts of O(app_hosts) that no balancer's upstream
    names yet join it; hosts named in O(remove) leave it. Every balancer must be readable, have a state,
    not drift, hold no live rollout lease and agree with the others, else nothing is planned.
  - The fleet's size must stay within O(min_hosts) and O(max_hosts); a fleet outside them may still move
    toward them.
  - It returns the backends of both sides after the change (for M(supersmartmatch.platform.traffic_split)
    with O(supersmartmatch.platform.traffic_split#module:operation=resize)), and the slots a new host must
    run (the stable release, and the candidate while a rollout is in flight or after a promotion, so that a
    rollback finds it there).
  - With O(auto=true) it first advises, as Kubernetes' HPA does, how many hosts the fleet needs from the mean
    CPU and memory utilisation against their targets, then plans with inventory hosts only (spare hosts of
    the group to add, the last members to remove). With neither reading it advises no change.
author:
  - SuperSmartMatch platform team (@supersmartmatch)
extends_documentation_fragment:
  - supersmartmatch.platform.attributes
attributes:
  check_mode:
    support: full
    details: The module changes nothing.
  diff_mode:
    support: none
options:
  app_hosts:
    description:
      - The application group in inventory order, each C({host, address}); C(address) is what the upstreams
        name (the C(supersmartmatch.platform.backends) filter's C(ssm_backend_address), else the host name).
    type: list
    elements: dict
    required: true
  balancers:
    description: Each balancer's M(supersmartmatch.platform.traffic_split_info) result, by host name.
    type: dict
    required: true
  leases:
    description:
      - Each balancer's M(supersmartmatch.platform.rollout_lock) result, by host name, when the run took the
        rollout lease first; a balancer whose lease could not be taken is refused by name.
    type: dict
    default: {}
  remove:
    description: Application hosts to drain out of the upstreams (and whose slots the playbook then stops).
    type: list
    elements: str
    default: []
  min_hosts:
    description: Smallest fleet allowed.
    type: int
    default: 3
  max_hosts:
    description: Largest fleet allowed.
    type: int
    default: 10
  run_id:
    description: The run that took the balancers' rollout lease for this change (its own lease does not refuse).
    type: str
  slot_ports:
    description: Port of each slot colour.
    type: dict
    default: {blue: 5062, green: 5070}
  auto:
    description: Advise from O(cpu) and O(memory), and plan with the advice (not with O(remove)).
    type: bool
    default: false
  cpu:
    description: Mean CPU utilisation of the fleet's hosts, from 0 to 1 (null when Prometheus had none).
    type: raw
  memory:
    description: Mean memory utilisation of the fleet's hosts, from 0 to 1 (null when Prometheus had none).
    type: raw
  cpu_target:
    description: CPU utilisation the fleet is sized for.
    type: float
    default: 0.70
  memory_target:
    description: Memory utilisation the fleet is sized for.
    type: float
    default: 0.80
seealso:
  - module: supersmartmatch.platform.traffic_split
  - module: supersmartmatch.platform.traffic_split_info
'''

EXAMPLES = r'''
- name: Plan the change of fleet
  supersmartmatch.platform.scale_plan:
    app_hosts: [{host: app1, address: app1}, {host: app2, address: app2}, {host: app3, address: app3}]
    balancers: "{{ dict(groups['lb'] | zip(groups['lb'] | map('extract', hostvars, '_scale_info'))) }}"
    remove: [app3]
    min_hosts: 2
  register: scale
'''

RETURN = r'''
add:
  description: Hosts that join the upstreams.
  returned: success
  type: list
  elements: str
  sample: [app3]
remove:
  description: Hosts drained out of the upstreams.
  returned: success
  type: list
  elements: str
stop:
  description: Hosts whose slots are stopped (O(remove), also those already out of the upstreams).
  returned: success
  type: list
  elements: str
members:
  description: The fleet after the change, in inventory order.
  returned: success
  type: list
  elements: str
stable_backends:
  description: The stable side's backends after the change.
  returned: success
  type: list
  elements: str
  sample: [app1:5062, app2:5062, app3:5062]
candidate_backends:
  description: The candidate side's backends after the change.
  returned: success
  type: list
  elements: str
deploy:
  description: The slots a new host runs, each C({color, version, port}).
  returned: success
  type: list
  elements: dict
  sample: [{"color": "blue", "version": "1.0.0", "port": 5062}]
generations:
  description: Each balancer's state generation the plan was made from (for compare-and-set).
  returned: success
  type: dict
size_before:
  description: Hosts behind the balancers now.
  returned: success
  type: int
size_after:
  description: Hosts behind the balancers after the change.
  returned: success
  type: int
needed:
  description: Whether any host joins or leaves the upstreams.
  returned: success
  type: bool
advice:
  description: With O(auto=true), C({desired, delta, reason}).
  returned: with auto
  type: dict
msg:
  description: What the change does, or why it is refused.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supersmartmatch.platform.plugins.module_utils import scale


def inventory_of(app_hosts):
    pairs = []
    for item in app_hosts:
        host, address = item.get('host'), item.get('address') or item.get('host')
        for name, value in (('host', host), ('address', address)):
            if not isinstance(value, str) or not scale.HOST_RE.match(value):
                raise scale.ScaleError('app_hosts: %s %r is not a host name or address' % (name, value))
        pairs.append((host, address))
    return pairs


def main():
    module = AnsibleModule(argument_spec=dict(
        app_hosts=dict(type='list', elements='dict', required=True),
        balancers=dict(type='dict', required=True),
        leases=dict(type='dict', default={}),
        remove=dict(type='list', elements='str', default=[]),
        min_hosts=dict(type='int', default=3),
        max_hosts=dict(type='int', default=10),
        slot_ports=dict(type='dict', default={'blue': 5062, 'green': 5070}),
        run_id=dict(type='str'),
        auto=dict(type='bool', default=False),
        cpu=dict(type='raw'),
        memory=dict(type='raw'),
        cpu_target=dict(type='float', default=0.70),
        memory_target=dict(type='float', default=0.80),
    ), supports_check_mode=True)
    params = module.params
    balancers = dict((lb, dict(info or {}, lease_taken=params['leases'].get(lb) or {}))
                     for lb, info in params['balancers'].items())
    try:
        inventory = inventory_of(params['app_hosts'])
        bounds = dict(min_hosts=params['min_hosts'], max_hosts=params['max_hosts'], slot_ports=params['slot_ports'],
                      run_id=params['run_id'])
        if params['auto']:
            if params['remove']:
                raise scale.ScaleError('remove cannot be given with auto=true: the advice picks the hosts')
            result = scale.plan_auto(inventory, balancers, params['cpu'], params['memory'],
                                     params['cpu_target'], params['memory_target'], **bounds)
        else:
            result = scale.plan(inventory, balancers, remove=params['remove'], **bounds)
    except scale.ScaleError as exc:
        module.fail_json(msg=str(exc))
    # a plan: nothing changes here (scale.yml reports what it changes)
    result['needed'] = result.pop('changed')
    result['changed'] = False
    module.exit_json(**result)


if __name__ == '__main__':
    main()
