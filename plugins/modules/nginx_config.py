#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: nginx_config
short_description: Put an NGINX configuration file in place only after the whole configuration validates
version_added: 0.1.0
description:
  - Writes O(content) to O(path), a file that is part of the NGINX configuration (the main
    file or any included file), or removes it with O(state=absent).
  - The whole configuration, with the new file in it, is first checked with C(nginx -t) in a
    private copy of the tree; only then is the file swapped in atomically and NGINX reloaded
    gracefully. A file that does not validate never reaches O(path), and the module fails with
    NGINX's own message, naming the real file and line.
  - If NGINX does not start new workers after the reload, the previous file is restored.
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
  path:
    description: Absolute path of the configuration file.
    type: path
    required: true
  content:
    description: The file's content. Required with O(state=present).
    type: str
  state:
    description: Whether the file should exist.
    type: str
    choices: [present, absent]
    default: present
  mode:
    description: Permissions of the file (octal string).
    type: str
    default: '0644'
  backup_dir:
    description: If set, the previous version is kept there, named after its full path with C(.prev) added.
    type: path
'''

EXAMPLES = r'''
- name: Install the site, validated before it is in place
  supersmartmatch.platform.nginx_config:
    path: /etc/nginx/conf.d/supersmartmatch.conf
    content: "{{ lookup('ansible.builtin.template', 'site.conf.j2') }}"

- name: Write the main file before NGINX first starts
  supersmartmatch.platform.nginx_config:
    path: /etc/nginx/nginx.conf
    content: "{{ lookup('ansible.builtin.template', 'nginx.conf.j2') }}"
    reload: false
'''

RETURN = r'''
reloaded:
  description: Whether NGINX was reloaded (and started new workers).
  returned: always
  type: bool
  sample: true
path:
  description: The file managed.
  returned: always
  type: str
  sample: /etc/nginx/conf.d/supersmartmatch.conf
'''

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.supersmartmatch.platform.plugins.module_utils.nginx import (
    NGINX_ARGUMENT_SPEC, NginxError, nginx_from_params, read_text)


def main():
    spec = dict(
        path=dict(type='path', required=True),
        content=dict(type='str'),
        state=dict(type='str', default='present', choices=['present', 'absent']),
        mode=dict(type='str', default='0644'),
        backup_dir=dict(type='path'),
    )
    spec.update(NGINX_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=spec, required_if=[('state', 'present', ('content',))],
                           supports_check_mode=True)
    params = module.params
    path = params['path']
    if not os.path.isabs(path):
        module.fail_json(msg='path must be absolute, got %s' % path)
    try:
        mode = int(params['mode'], 8)
    except ValueError:
        module.fail_json(msg='mode must be an octal string such as 0644, got %s' % params['mode'])
    if not os.path.isabs(params['nginx_bin']):
        params['nginx_bin'] = module.get_bin_path(params['nginx_bin'], required=True)
    content = params['content'] if params['state'] == 'present' else None
    if content is not None and not content.endswith('\n'):
        content += '\n'
    current = read_text(path)
    result = dict(changed=False, reloaded=False, path=path)
    if module._diff:
        result['diff'] = dict(before_header=path, after_header=path, before=current or '', after=content or '')
    if content is not None and current == content and os.path.exists(path) and (os.stat(path).st_mode & 0o7777) != mode:
        if not module.check_mode:
            os.chmod(path, mode)
        result['changed'] = True
    try:
        if content is not None and not os.path.isdir(os.path.dirname(path)):
            if module.check_mode:
                result['changed'] = True
                module.exit_json(**result)
            os.makedirs(os.path.dirname(path), 0o755)
        outcome = nginx_from_params(module).apply(
            {path: content}, reload=params['reload'], check_mode=module.check_mode,
            backup_dir=params['backup_dir'], mode=mode)
    except NginxError as exc:
        module.fail_json(msg=str(exc), changed=exc.changed)
    result['changed'] = result['changed'] or outcome['changed']
    result['reloaded'] = outcome['reloaded']
    module.exit_json(**result)


if __name__ == '__main__':
    main()
