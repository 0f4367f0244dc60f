#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: minio_bucket
short_description: Buckets of a MinIO server with SSE-S3 default encryption and versioning, through the S3 API
version_added: 0.3.0
description:
  - Creates the buckets that are missing, sets SSE-S3 (C(AES256)) as their default encryption unless a bucket
    says O(buckets[].encryption=none), and enables (or suspends) versioning, with the C(minio) Python SDK.
  - Reads first and writes only what differs; encryption is never removed.
  - Runs where the SDK is installed (usually the controller, with C(delegate_to)); the server's certificate is
    verified against O(ca_cert).
requirements:
  - minio (Python SDK) >= 7.2
author:
  - SuperSmartMatch platform team (@supersmartmatch)
extends_documentation_fragment:
  - supersmartmatch.platform.attributes
attributes:
  check_mode:
    support: full
    details: In check mode the buckets are read and the actions are reported, nothing is written.
  diff_mode:
    support: none
options:
  endpoint:
    description: C(host:port) of the S3 API.
    type: str
    required: true
  access_key:
    description: Access key (the root user).
    type: str
    required: true
  secret_key:
    description: Secret key (the root password).
    type: str
    required: true
  ca_cert:
    description: CA bundle that signed the server's certificate.
    type: path
  buckets:
    description: Buckets to manage.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Bucket name (S3 rules, checked in full).
        type: str
        required: true
      encryption:
        description: Default encryption of new objects.
        type: str
        choices: [sse-s3, none]
        default: sse-s3
      versioning:
        description: Keep every version of each object.
        type: bool
        default: true
'''

EXAMPLES = r'''
- name: Buckets with SSE-S3 and versioning
  supersmartmatch.platform.minio_bucket:
    endpoint: minio1:9000
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_password }}"
    ca_cert: "{{ minio_pki_dir }}/ca.crt"
    buckets:
      - name: matching-artifacts
      - {name: scratch, versioning: false}
  delegate_to: localhost
  run_once: true
'''

RETURN = r'''
actions:
  description: What was done (or would be in check mode) per bucket, among create, encrypt, enable_versioning, suspend_versioning.
  returned: always
  type: dict
  sample: {"matching-artifacts": ["create", "encrypt", "enable_versioning"]}
'''

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.supersmartmatch.platform.plugins.module_utils import minio_s3

try:
    import urllib3
    from minio import Minio
    from minio.commonconfig import ENABLED
    from minio.error import MinioException
    from minio.sseconfig import Rule, SSEConfig
    from minio.versioningconfig import SUSPENDED, VersioningConfig
    HAS_MINIO = True
    MINIO_IMPORT_ERROR = None
except ImportError:
    HAS_MINIO = False
    MINIO_IMPORT_ERROR = traceback.format_exc()
    MinioException = Exception
    ENABLED = SUSPENDED = None


BUILDERS = {
    'sse_s3': lambda: SSEConfig(Rule.new_sse_s3_rule()),
    'versioning': lambda enabled: VersioningConfig(ENABLED if enabled else SUSPENDED),
}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            endpoint=dict(type='str', required=True),
            access_key=dict(type='str', required=True, no_log=True),
            secret_key=dict(type='str', required=True, no_log=True),
            ca_cert=dict(type='path'),
            buckets=dict(type='list', elements='dict', required=True, options=dict(
                name=dict(type='str', required=True),
                encryption=dict(type='str', default='sse-s3', choices=['sse-s3', 'none']),
                versioning=dict(type='bool', default=True),
            )),
        ),
        supports_check_mode=True,
    )
    if not HAS_MINIO:
        module.fail_json(msg=missing_required_lib('minio'), exception=MINIO_IMPORT_ERROR)
    p = module.params
    try:
        buckets = minio_s3.normalize_buckets(p['buckets'])
    except minio_s3.MinioConfigError as exc:
        module.fail_json(msg=str(exc))
    http = urllib3.PoolManager(cert_reqs='CERT_REQUIRED', ca_certs=p['ca_cert'],
                               timeout=urllib3.Timeout(connect=10, read=30), retries=urllib3.Retry(total=3, backoff_factor=0.5))
    client = Minio(p['endpoint'], access_key=p['access_key'], secret_key=p['secret_key'], secure=True, http_client=http)
    try:
        actions = minio_s3.apply_buckets(client, buckets, BUILDERS, check_mode=module.check_mode)
    except (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        module.fail_json(msg='S3 configuration of %s failed: %s' % (p['endpoint'], exc))
    module.exit_json(changed=bool(actions), actions=actions)


if __name__ == '__main__':
    main()
