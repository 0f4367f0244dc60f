#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: deployment_validation
short_description: Judge the smoke tests of a deployment and print their table
version_added: 0.3.0
description:
  - The decision step of C(playbooks/validate_deployment.yml) (the guide's C(validate_deployment.sh),
    C(run_smoke_tests.sh), C(check_service_health.sh) and C(validate_data_integrity.sh)).
  - The playbook sends one labelled match request through every load balancer and its feedback (carrying the
    C(feedback_token) of that match answer, as the service requires), reads the
    C(/health) of every live slot on every application host, and reads the match and feedback rows those
    requests wrote back through PostgreSQL's read-only endpoint. This module judges each reading and returns
    one row per check and host; a host of O(expected_hosts) that gave no reading at all is a blocker row.
  - The feedback passes when it is accepted (HTTP 202). A refused token (HTTP 401, with the service's reason
    C(missing), C(malformed), C(expired) or C(forged)) is a blocker whose detail asks whether all slots share
    C(app_feedback_key).
  - It fails, after building its table in RV(table), when a row is a blocker, unless O(fail_on_blocker=false).
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
      - What each host recorded, by host name, as registered results. C(match) and C(feedback) (balancers,
        M(ansible.builtin.uri) of C(POST /api/v2/match) and of C(POST /api/v2/feedback) with that match's
        C(feedback_token)); C(health) (application
        hosts, a loop of M(ansible.builtin.uri) of C(GET /health) whose C(item) holds C(colour), C(port) and
        C(version)); C(rows) (C(psql -At -F '|') lines C(<table>|<candidate id>|<count>), or C({skipped_reason})
        without a PostgreSQL group).
    type: dict
    required: true
  expected_hosts:
    description: Hosts that must have given at least one reading.
    type: list
    elements: str
    default: []
  run:
    description: The validation run, C(YYYYmmddTHHMMSSZ); each balancer's smoke candidate is C(validate-<run>-<host>).
    type: str
    required: true
  expected_top:
    description: The offer id the labelled smoke request must rank first.
    type: str
    required: true
  live_versions:
    description:
      - The versions that may answer (the stable one, and the candidate while it takes traffic). Empty when no
        balancer could be read, and then every answer is a blocker.
    type: list
    elements: str
    required: true
  fail_on_blocker:
    description: Fail when a row is a blocker (V(false) lets a playbook print the table first).
    type: bool
    default: true
seealso:
  - module: supersmartmatch.platform.pre_deployment_check
'''

EXAMPLES = r'''
- name: Judge the smoke tests
  supersmartmatch.platform.deployment_validation:
    hosts: "{{ dict(groups['lb'] | zip(groups['lb'] | map('extract', hostvars, '__validate_raw'))) }}"
    expected_hosts: "{{ groups['lb'] }}"
    run: 20261130T120000Z
    expected_top: smoke-best
    live_versions: [2.0.0]
'''

RETURN = r'''
rows:
  description: One row per check and host, C({check, host, status, detail}).
  returned: always
  type: list
  elements: dict
  sample: [{"check": "smoke match", "host": "lb1", "status": "pass",
            "detail": "top offer smoke-best as labelled, answered by 2.0.0 (green)"}]
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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supersmartmatch.platform.plugins.module_utils import precheck, validation


def check_params(params):
    """A clear message for the first bad parameter, or None."""
    if not validation.RUN_RE.match(params['run']):
        return 'run must be a UTC timestamp YYYYmmddTHHMMSSZ, got %r' % params['run']
    bad = [host for host in params['hosts'] if not validation.HOST_RE.match(host)]
    if bad:
        return 'hosts: %r is not a host name (letters, digits, ".", "_", "-")' % bad[0]
    return precheck.raw_problem(params['hosts'], validation.RAW_KEYS)


def main():
    module = AnsibleModule(argument_spec=dict(
        hosts=dict(type='dict', required=True),
        expected_hosts=dict(type='list', elements='str', default=[]),
        run=dict(type='str', required=True),
        expected_top=dict(type='str', required=True),
        live_versions=dict(type='list', elements='str', required=True),
        fail_on_blocker=dict(type='bool', default=True),
    ), supports_check_mode=True)
    params = module.params
    problem = check_params(params)
    if problem:
        precheck.refuse(module, problem)
    result = validation.report(params['hosts'], params['expected_hosts'], params['run'], params['expected_top'],
                               params['live_versions'])
    precheck.finish(module, result, params['fail_on_blocker'])


if __name__ == '__main__':
    main()
