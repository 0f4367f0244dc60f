# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: backends
short_description: List the C(host:port) backends of a slot
version_added: 0.1.0
description:
  - Turns a list of inventory hosts into C(address:port) strings for
    M(supersmartmatch.platform.traffic_split). A host's address is its
    C(ssm_backend_address) variable, else its inventory name.
positional: _input, hostvars, port
options:
  _input:
    description: Inventory host names, such as C(groups['app']).
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  port:
    description: The slot's port.
    type: int
    required: true
'''

EXAMPLES = r'''
stable: "{{ groups['app'] | supersmartmatch.platform.backends(hostvars, 5062) }}"
'''

RETURN = r'''
_value:
  description: One C(address:port) per host, in the order given.
  type: list
  elements: str
'''

from ansible.errors import AnsibleFilterError


def backends(hosts, hostvars, port):
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise AnsibleFilterError('backends: port must be a number, got %r' % (port,))
    if not 0 < port < 65536:
        raise AnsibleFilterError('backends: port must be 1-65535, got %d' % port)
    return ['%s:%d' % (item['address'], port) for item in backend_addresses(hosts, hostvars)]


def backend_addresses(hosts, hostvars):
    """[{'host', 'address'}]: the address the upstreams name each host by."""
    result = []
    for host in hosts or []:
        variables = hostvars[host] if host in hostvars else {}
        result.append({'host': host, 'address': variables.get('ssm_backend_address') or host})
    return result


class FilterModule(object):
    def filters(self):
        return {'backends': backends, 'backend_addresses': backend_addresses}
