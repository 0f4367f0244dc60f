# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""S3 configuration of the minio role (buckets, default encryption, versioning), as plain functions.

The client is any object with the methods of minio.Minio used below; unit tests give a fake one.
The objects written to the server (SSE and versioning configurations) come from `builders`
(see plugins/modules/minio_bucket.py), so this file does not import the minio SDK.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import re

BUCKET_RE = re.compile(r'^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z')
IPV4_RE = re.compile(r'^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+\Z')
KMS_NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z')
ENCRYPTIONS = ('sse-s3', 'none')


class MinioConfigError(ValueError):
    """Bad input, with a message naming the problem."""


def bucket_name_problem(name):
    """Why `name` is not a valid S3 bucket name, or None."""
    if not isinstance(name, str):
        return 'bucket name must be a string, got %r' % (name,)
    if not BUCKET_RE.match(name):
        return ('bucket %r: 3-63 characters, lowercase letters, digits, "." and "-", '
                'starting and ending with a letter or digit' % (name,))
    if '..' in name or '.-' in name or '-.' in name:
        return 'bucket %r: no "..", ".-" or "-."' % (name,)
    if IPV4_RE.match(name):
        return 'bucket %r: must not look like an IP address' % (name,)
    if name.startswith('xn--') or name.startswith('sthree-') or name.endswith('-s3alias'):
        return 'bucket %r: reserved prefix or suffix' % (name,)
    return None


def normalize_buckets(buckets):
    """Validated bucket specs: [{name, encryption (sse-s3 default), versioning (True default)}]."""
    if isinstance(buckets, (str, bytes)) or not isinstance(buckets, (list, tuple)):
        raise MinioConfigError('buckets must be a list of {name, encryption, versioning}, got %r' % (buckets,))
    result, seen = [], set()
    for spec in buckets:
        if isinstance(spec, str):
            spec = {'name': spec}
        if not isinstance(spec, dict):
            raise MinioConfigError('each bucket is a name or a {name, encryption, versioning} mapping, got %r' % (spec,))
        unknown = sorted(set(spec) - {'name', 'encryption', 'versioning'})
        if unknown:
            raise MinioConfigError('bucket %r: unknown key(s) %s' % (spec.get('name'), ', '.join(unknown)))
        problem = bucket_name_problem(spec.get('name'))
        if problem:
            raise MinioConfigError(problem)
        if spec['name'] in seen:
            raise MinioConfigError('bucket %r is listed twice' % spec['name'])
        seen.add(spec['name'])
        encryption = spec.get('encryption', 'sse-s3')
        if encryption not in ENCRYPTIONS:
            raise MinioConfigError('bucket %r: encryption must be one of %s, got %r'
                                   % (spec['name'], ', '.join(ENCRYPTIONS), encryption))
        versioning = spec.get('versioning', True)
        if not isinstance(versioning, bool):
            raise MinioConfigError('bucket %r: versioning must be true or false, got %r' % (spec['name'], versioning))
        result.append({'name': spec['name'], 'encryption': encryption, 'versioning': versioning})
    return result


def bucket_actions(wanted, exists, sse_algorithm, versioning_status):
    """Actions that bring one bucket to `wanted`, from what the server reports.

    sse_algorithm: the default encryption rule's algorithm (None without one);
    versioning_status: 'Enabled', 'Suspended' or 'Off'/None (never enabled).
    Encryption is never removed by the role (a bucket with encryption 'none' is left as it is):
    turning it off is an operator's decision.
    """
    actions = []
    if not exists:
        actions.append('create')
        sse_algorithm, versioning_status = None, None
    if wanted['encryption'] == 'sse-s3' and sse_algorithm != 'AES256':
        actions.append('encrypt')
    current_on = versioning_status == 'Enabled'
    if wanted['versioning'] and not current_on:
        actions.append('enable_versioning')
    elif not wanted['versioning'] and current_on:
        actions.append('suspend_versioning')
    return actions


def apply_buckets(client, buckets, builders, check_mode=False):
    """Create and configure the buckets; return {bucket: [actions]} of what was (or would be) done."""
    done = {}
    for wanted in normalize_buckets(buckets):
        name = wanted['name']
        exists = client.bucket_exists(name)
        sse_algorithm = versioning_status = None
        if exists:
            config = client.get_bucket_encryption(name)
            rule = getattr(config, 'rule', None) if config is not None else None
            sse_algorithm = getattr(rule, 'sse_algorithm', None)
            versioning_status = getattr(client.get_bucket_versioning(name), 'status', None)
        actions = bucket_actions(wanted, exists, sse_algorithm, versioning_status)
        if actions:
            done[name] = actions
        if check_mode:
            continue
        for action in actions:
            if action == 'create':
                client.make_bucket(name)
            elif action == 'encrypt':
                client.set_bucket_encryption(name, builders['sse_s3']())
            elif action == 'enable_versioning':
                client.set_bucket_versioning(name, builders['versioning'](True))
            elif action == 'suspend_versioning':
                client.set_bucket_versioning(name, builders['versioning'](False))
    return done


def kms_secret_key_problem(value):
    """Why `value` is not a MINIO_KMS_SECRET_KEY (<name>:<base64 of 32 bytes>), or None. Never echoes the key."""
    if not isinstance(value, str) or value.count(':') != 1:
        return 'the KMS secret key must be <name>:<base64 of 32 bytes>'
    name, encoded = value.split(':')
    if not KMS_NAME_RE.match(name):
        return 'the KMS key name must be letters, digits, _ or - (1-64 characters)'
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (ValueError, TypeError):
        return 'the KMS secret key is not valid base64'
    if len(raw) != 32:
        return 'the KMS secret key must decode to 32 bytes, not %d' % len(raw)
    return None


def make_kms_secret_key(name, raw):
    """<name>:<base64 of raw>, raw being 32 random bytes."""
    if not KMS_NAME_RE.match(name or ''):
        raise MinioConfigError('the KMS key name must be letters, digits, _ or - (1-64 characters), got %r' % (name,))
    if not isinstance(raw, bytes) or len(raw) != 32:
        raise MinioConfigError('the KMS key needs 32 random bytes')
    return '%s:%s' % (name, base64.b64encode(raw).decode('ascii'))
