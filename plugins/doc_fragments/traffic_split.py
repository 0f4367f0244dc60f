# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options shared by traffic_split and traffic_split_info
    # (module_utils.traffic_split_validate.SERVICE_ARGUMENT_SPEC).
    DOCUMENTATION = r'''
options:
  service:
    description:
      - Name of the service. Names the NGINX upstreams C(<service>_stable) and
        C(<service>_candidate), the variable C($<service>_backend) that a server block
        uses in C(proxy_pass http://$<service>_backend;), and the files C(<service>.conf)
        and C(<service>.json).
      - Starts with a lower-case letter, then up to 62 of C(a-z), C(0-9) and C(_).
    type: str
    required: true
  config_dir:
    description: Directory, included by NGINX in the C(http) context, where C(<service>.conf) lives.
    type: path
    default: /etc/nginx/traffic_split
  state_dir:
    description: Directory holding C(<service>.json), the state with its history.
    type: path
    default: /var/lib/supersmartmatch/traffic
'''
