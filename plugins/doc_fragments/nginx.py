# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options shared by every module that changes a live NGINX configuration.
    DOCUMENTATION = r'''
options:
  nginx_bin:
    description:
      - The NGINX binary used for C(nginx -t) and the default reload command.
    type: path
    default: nginx
  nginx_conf:
    description:
      - The main NGINX configuration file. The new configuration is validated with
        C(nginx -t -c) on a private copy of the tree rooted here, in which the new
        file takes the place of the old one, before anything is written to the
        live paths.
    type: path
    default: /etc/nginx/nginx.conf
  reload:
    description:
      - Reload NGINX gracefully after a change and wait for its new workers.
      - When V(true), NGINX must be running; the module fails, changing nothing, if it is not.
    type: bool
    default: true
  reload_command:
    description:
      - Command (argument list, no shell) that reloads NGINX.
      - Defaults to C(<nginx_bin> -c <nginx_conf> -s reload).
    type: list
    elements: str
  reload_timeout:
    description:
      - Seconds to wait for NGINX to start new workers after the reload. If none
        appear, the previous files are restored and the module fails.
    type: float
    default: 10
'''
