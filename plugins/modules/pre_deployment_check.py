#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: pre_deployment_check
short_description: Judge the readings of a pre-deployment check and print its table
version_added: 0.3.0
description:
  - The decision step of C(playbooks/pre_deployment_check.yml) (the guide's C(pre_deployment_check.sh)). The
    playbook reads, on every host and without changing anything, the NGINX configuration test, the split
    state against the live file, the rollout lease, certificate end dates, free disk space, Patroni's
    cluster, Redis C(CLUSTER INFO), Prometheus and Alertmanager readiness and the latest pgBackRest backup.
    This module judges each reading against the thresholds and returns one row per check and host.
  - A host of O(expected_hosts) that gave no reading at all (unreachable, frozen, failed) is a blocker row
    of its own, named.
  - The module fails, after printing its table in RV(table), when any row is a blocker (C(FAIL)). Warnings
    (C(WARN), for example no backup repository configured) are shown and do not block.
  - It reads and writes nothing on the host it runs on.
author:
  - SuperSmartMatch platform team (@supersmartmatch)
extends_documentation_fragment:
  - supersmartmatch.platform.attributes
attributes:
  check_mode:
    support: full
    details: The module changes nothing; it judges the same way in check mode.
  diff_mode:
    support: none
options:
  hosts:
    description:
      - What each host recorded, by host name. Each value holds the registered results of the playbook's
        reading tasks under C(nginx) (C(nginx -t)), C(split) (M(supersmartmatch.platform.traffic_split_info)),
        C(certificates) (a loop of C(openssl x509 -noout -enddate -in <path>), the path as C(item)),
        C(disk) (C(df -P -k)), C(patroni) (M(ansible.builtin.uri) of C(/cluster)), C(redis) (C(rc),
        C(stdout), C(stderr) of C(CLUSTER INFO)), C(ready) (a loop of M(ansible.builtin.uri) of C(/-/ready),
        C(item.check) V(prometheus) or V(alertmanager)) and C(backup) (C(pgbackrest info --output=json), or
        C({skipped_reason}) when no stanza is configured). A missing or skipped result gives no row.
    type: dict
    required: true
  expected_hosts:
    description: Hosts that must have given at least one reading (every host of the checked groups).
    type: list
    elements: str
    default: []
  app_addresses:
    description:
      - The app group's hosts as the upstreams name them (the C(supersmartmatch.platform.backends) filter's
        addresses). Given, every balancer gets an C(app fleet) row, a blocker when its upstreams name other
        hosts than these (a host added to the group but not by C(playbooks/scale.yml), or one taken out of
        the group without a drain).
    type: list
    elements: str
    default: []
  cert_days:
    description: A certificate that ends within this many days is a blocker.
    type: int
    default: 14
  min_free_percent:
    description: Free space, in percent of the filesystem, below which a host is a blocker.
    type: float
    default: 10.0
  max_lag_bytes:
    description: Replication lag, in bytes, above which a Patroni replica is a blocker.
    type: int
    default: 16777216
  backup_max_age_hours:
    description: The latest backup must have ended within this many hours.
    type: float
    default: 26.0
  fail_on_blocker:
    description:
      - Fail when a row is a blocker. V(false) returns the same result without failing, so that a
        playbook can print the table first and then stop (what C(playbooks/pre_deployment_check.yml) does).
    type: bool
    default: true
seealso:
  - module: supersmartmatch.platform.traffic_split_info
  - module: supersmartmatch.platform.rollout_lock
'''

EXAMPLES = r'''
- name: Judge what the plays before read
  supersmartmatch.platform.pre_deployment_check:
    hosts: "{{ dict(groups['lb'] | zip(groups['lb'] | map('extract', hostvars, '__precheck_raw'))) }}"
    expected_hosts: "{{ groups['lb'] + groups['app'] }}"
    cert_days: 30
'''

RETURN = r'''
rows:
  description: One row per check and host, C({check, host, status, detail}), status C(pass), C(fail), C(warn).
  returned: always
  type: list
  elements: dict
  sample: [{"check": "rollout lease", "host": "lb1", "status": "fail",
            "detail": "lease held by ci@runner for canary-2.0.0-20261129T180000Z-1 (canary), until 2026-11-29T21:00:00Z"}]
blockers:
  description: The rows whose status is C(fail).
  returned: always
  type: list
  elements: dict
passed:
  description: True when no row is a blocker.
  returned: always
  type: bool
table:
  description: The rows as aligned text lines, then a C(PASSED) or C(BLOCKED) line.
  returned: always
  type: list
  elements: str
msg:
  description: The verdict line.
  returned: always
  type: str
'''

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supersmartmatch.platform.plugins.module_utils import precheck


def check_params(params):
    """A clear message for the first bad parameter, or None."""
    problem = precheck.raw_problem(params['hosts'], precheck.RAW_KEYS)
    if problem:
        return problem
    if params['cert_days'] < 0:
        return 'cert_days must be 0 or more, got %d' % params['cert_days']
    if not 0 <= params['min_free_percent'] < 100:
        return 'min_free_percent must be from 0 to under 100, got %s' % params['min_free_percent']
    if params['max_lag_bytes'] < 0:
        return 'max_lag_bytes must be 0 or more, got %d' % params['max_lag_bytes']
    if params['backup_max_age_hours'] <= 0:
        return 'backup_max_age_hours must be above 0, got %s' % params['backup_max_age_hours']
    return None


def main():
    module = AnsibleModule(argument_spec=dict(
        hosts=dict(type='dict', required=True),
        expected_hosts=dict(type='list', elements='str', default=[]),
        app_addresses=dict(type='list', elements='str', default=[]),
        cert_days=dict(type='int', default=14),
        min_free_percent=dict(type='float', default=10.0),
        max_lag_bytes=dict(type='int', default=16777216),
        backup_max_age_hours=dict(type='float', default=26.0),
        fail_on_blocker=dict(type='bool', default=True),
    ), supports_check_mode=True)
    params = module.params
    problem = check_params(params)
    if problem:
        precheck.refuse(module, problem)
    thresholds = dict((k, params[k]) for k in ('cert_days', 'min_free_percent', 'max_lag_bytes',
                                               'backup_max_age_hours', 'app_addresses'))
    result = precheck.report(params['hosts'], params['expected_hosts'], time.time(), thresholds)
    precheck.finish(module, result, params['fail_on_blocker'])


if __name__ == '__main__':
    main()
