#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: minio_bucket
short_description: Create MinIO buckets and set their versioning and default encryption through the S3 API
version_added: 0.3.0
description:
  - Makes sure each bucket of O(buckets) exists on a MinIO (or other S3) server, with versioning enabled or not,
    and with SSE-S3 default encryption (C(AES256)) unless told otherwise, so that an object written without any
    encryption header is stored encrypted.
  - Talks to the server with the C(minio) Python SDK (no C(mc) client needed), from the host the task runs on
    (usually the controller).
  - Buckets not listed are left alone; a listed bucket is never deleted. Versioning, once enabled, can only be
    suspended (an S3 rule).
author:
  - SuperSmartMatch platform team (@supersmartmatch)
extends_documentation_fragment:
  - supersmartmatch.platform.attributes
attributes:
  check_mode:
    support: full
    details: The server is read, nothing is changed; the result lists what would be done.
  diff_mode:
    support: none
requirements:
  - minio (Python SDK) >= 7.2
options:
  endpoint:
    description: The server as C(host:port), without a scheme.
    type: str
    required: true
  access_key:
    description: Access key (the MinIO root user, or a user allowed to configure the buckets).
    type: str
    required: true
  secret_key:
    description: Secret key of O(access_key).
    type: str
    required: true
  secure:
    description: Use HTTPS. Only set V(false) for a test server without TLS.
    type: bool
    default: true
  ca_cert:
    description:
      - CA certificate file (PEM) that signed the server's certificate. Without it the system's trust store is used.
    type: path
  region:
    description: Region of the server (the location of created buckets).
    type: str
    default: us-east-1
  buckets:
    description: The buckets to configure.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Bucket name (S3 rules, 3 to 63 characters, lower case letters, digits, C(.) and C(-)).
        type: str
        required: true
      versioning:
        description: Versioning enabled (V(true)) or, when it was enabled, suspended (V(false)).
        type: bool
        default: false
      encryption:
        description:
          - Default encryption of the bucket. V(SSE-S3) encrypts every object written without an encryption header
            with the server's KMS key (MinIO needs C(MINIO_KMS_SECRET_KEY) or a KMS); V(none) removes it.
        type: str
        choices: [SSE-S3, none]
        default: SSE-S3
seealso:
  - name: MinIO Python SDK
    description: The client library the module uses.
    link: https://min.io/docs/minio/linux/developers/python/API.html
'''

EXAMPLES = r'''
- name: Buckets, encrypted by default
  supersmartmatch.platform.minio_bucket:
    endpoint: minio1.example.net:9000
    ca_cert: /etc/ssl/lab-ca.crt
    access_key: "{{ minio_root_user }}"
    secret_key: "{{ minio_root_password }}"
    buckets:
      - name: backups
        versioning: true
      - name: uploads
  delegate_to: localhost
  run_once: true
  no_log: true
'''

RETURN = r'''
buckets:
  description: Each listed bucket as it is after the run (as it would be, in check mode).
  returned: success
  type: dict
  sample: {"backups": {"versioning": "Enabled", "encryption": "AES256"}}
actions:
  description: What was done (or would be done, in check mode), one line per action.
  returned: success
  type: list
  elements: str
  sample: ["create bucket backups", "set versioning of backups to Enabled",
           "set default encryption of backups to SSE-S3 (AES256)"]
created:
  description: Buckets created.
  returned: success
  type: list
  elements: str
msg:
  description: What the run did, or why it failed.
  returned: always
  type: str
'''

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.supersmartmatch.platform.plugins.module_utils import minio_buckets as mb

MINIO_IMPORT_ERROR = None
try:
    import urllib3
    from minio import Minio
    from minio.error import S3Error
    from minio.sseconfig import Rule, SSEConfig
    from minio.versioningconfig import VersioningConfig
except ImportError:
    MINIO_IMPORT_ERROR = traceback.format_exc()
    S3Error = None


def client_of(params):
    """A minio.Minio client for the module's parameters (certificate checked, short timeouts, a few retries)."""
    pool = dict(timeout=urllib3.Timeout(connect=10, read=60),
                retries=urllib3.Retry(total=3, backoff_factor=0.5, status_forcelist=[500, 502, 503, 504]))
    if params['ca_cert']:
        pool.update(cert_reqs='CERT_REQUIRED', ca_certs=params['ca_cert'])
    return Minio(params['endpoint'], access_key=params['access_key'], secret_key=params['secret_key'],
                 secure=params['secure'], region=params['region'], http_client=urllib3.PoolManager(**pool))


def main():
    module = AnsibleModule(argument_spec=dict(
        endpoint=dict(type='str', required=True),
        access_key=dict(type='str', required=True, no_log=True),
        secret_key=dict(type='str', required=True, no_log=True),
        secure=dict(type='bool', default=True),
        ca_cert=dict(type='path'),
        region=dict(type='str', default='us-east-1'),
        buckets=dict(type='list', elements='dict', required=True, options=dict(
            name=dict(type='str', required=True),
            versioning=dict(type='bool', default=False),
            encryption=dict(type='str', choices=list(mb.ENCRYPTIONS), default='SSE-S3'),
        )),
    ), supports_check_mode=True)
    if MINIO_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib('minio'), exception=MINIO_IMPORT_ERROR)
    params = module.params
    try:
        wanted = mb.normalize(params['buckets'])
    except mb.BucketError as exc:
        module.fail_json(msg=str(exc))
    try:
        client = client_of(params)
        current = mb.read_state(client, [bucket['name'] for bucket in wanted])
        actions = mb.plan(wanted, current)
        if not module.check_mode:
            mb.apply(client, actions, params['region'],
                     dict(VersioningConfig=VersioningConfig, SSEConfig=SSEConfig, Rule=Rule))
    except Exception as exc:  # pylint: disable=broad-exception-caught
        if isinstance(exc, S3Error):
            code, message = getattr(exc, 'code', ''), getattr(exc, 'message', '')
            module.fail_json(msg='S3 error from %s: %s (%s)' % (params['endpoint'], code, message))
        module.fail_json(msg='cannot configure the buckets on %s: %s' % (params['endpoint'], exc))
    result = mb.summary(wanted, current, actions)
    result['msg'] = '; '.join(result['actions']) if actions else 'every bucket is as wanted'
    module.exit_json(**result)


if __name__ == '__main__':
    main()
