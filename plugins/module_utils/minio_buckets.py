# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Buckets of a MinIO server through the S3 API: what must change, and doing it.

``plan`` is pure: from the wanted buckets and what the server has now, the
ordered list of actions (create a bucket, set its versioning, set or remove
its default encryption). ``read_state`` and ``apply`` are the I/O layer, over
a client object with the methods of ``minio.Minio`` that they use (the
module passes a real one; the unit tests a fake).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# S3 bucket naming rules (as MinIO applies them): 3 to 63 characters, lower
# case letters, digits, '.' and '-', starting and ending with a letter or a
# digit, no '..', not an IPv4 address, no 'xn--' prefix or '-s3alias' suffix.
BUCKET_RE = re.compile(r'^(?!xn--)(?!.*\.\.)(?!.*-s3alias\Z)(?!\d+\.\d+\.\d+\.\d+\Z)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\Z')
ENCRYPTIONS = ('SSE-S3', 'none')
SSE_S3_ALGORITHM = 'AES256'

CREATE = 'create'
VERSIONING = 'versioning'
ENCRYPTION = 'encryption'
REMOVE_ENCRYPTION = 'remove_encryption'


class BucketError(Exception):
    """A wanted bucket that cannot be configured as asked."""


def normalize(buckets):
    """The wanted buckets, each ``{name, versioning, encryption}`` with its defaults, or BucketError."""
    out = []
    seen = set()
    for index, item in enumerate(buckets):
        if not isinstance(item, dict):
            raise BucketError('buckets[%d] must be a dict with a name, got %r' % (index, item))
        unknown = sorted(set(item) - set(('name', 'versioning', 'encryption')))
        if unknown:
            raise BucketError('buckets[%d] has unknown keys %s (name, versioning, encryption)' % (index, ', '.join(unknown)))
        name = item.get('name')
        if not isinstance(name, str) or not BUCKET_RE.match(name):
            raise BucketError('buckets[%d].name %r is not a valid bucket name (3 to 63 characters: lower case letters, '
                              'digits, "." and "-", starting and ending with a letter or digit)' % (index, name))
        if name in seen:
            raise BucketError('bucket %s is listed twice' % name)
        seen.add(name)
        versioning = item.get('versioning', False)
        if not isinstance(versioning, bool):
            raise BucketError('buckets[%d].versioning must be true or false, got %r' % (index, versioning))
        encryption = item.get('encryption', 'SSE-S3')
        if encryption not in ENCRYPTIONS:
            raise BucketError('buckets[%d].encryption must be one of %s, got %r' % (index, ', '.join(ENCRYPTIONS), encryption))
        out.append({'name': name, 'versioning': versioning, 'encryption': encryption})
    return out


def plan(wanted, current):
    """Actions that bring the server to ``wanted`` (normalized buckets), in order.

    ``current`` maps each existing bucket's name to ``{versioning, encryption}``:
    versioning ``Enabled``, ``Suspended`` or ``Off`` (never enabled), and the
    default encryption algorithm (``AES256`` for SSE-S3) or None. A missing
    bucket is created, then configured as a new one (versioning Off, no
    default encryption). Buckets not wanted are left alone.
    Each action is ``(kind, bucket, value)``.
    """
    actions = []
    for bucket in wanted:
        name = bucket['name']
        state = current.get(name)
        if state is None:
            actions.append((CREATE, name, None))
            state = {'versioning': 'Off', 'encryption': None}
        if bucket['versioning'] and state['versioning'] != 'Enabled':
            actions.append((VERSIONING, name, 'Enabled'))
        elif not bucket['versioning'] and state['versioning'] == 'Enabled':
            # S3 versioning can only be suspended once enabled.
            actions.append((VERSIONING, name, 'Suspended'))
        if bucket['encryption'] == 'SSE-S3' and state['encryption'] != SSE_S3_ALGORITHM:
            actions.append((ENCRYPTION, name, SSE_S3_ALGORITHM))
        elif bucket['encryption'] == 'none' and state['encryption'] is not None:
            actions.append((REMOVE_ENCRYPTION, name, None))
    return actions


def describe(action):
    """One line for an action."""
    kind, name, value = action
    if kind == CREATE:
        return 'create bucket %s' % name
    if kind == VERSIONING:
        return 'set versioning of %s to %s' % (name, value)
    if kind == ENCRYPTION:
        return 'set default encryption of %s to SSE-S3 (%s)' % (name, value)
    return 'remove default encryption of %s' % name


def read_state(client, names):
    """What the server has now for the buckets ``names`` (as ``plan`` takes it); absent buckets are left out."""
    current = {}
    for name in names:
        if not client.bucket_exists(name):
            continue
        versioning = client.get_bucket_versioning(name)
        status = getattr(versioning, 'status', None) or 'Off'
        encryption = client.get_bucket_encryption(name)
        rule = getattr(encryption, 'rule', None)
        current[name] = {'versioning': status, 'encryption': getattr(rule, 'sse_algorithm', None)}
    return current


def apply(client, actions, region, types):
    """Perform ``actions`` in order with ``client``. ``types`` gives the SDK's classes:
    ``VersioningConfig``, ``SSEConfig`` and ``Rule`` (from minio.versioningconfig and minio.sseconfig)."""
    for kind, name, value in actions:
        if kind == CREATE:
            client.make_bucket(name, location=region)
        elif kind == VERSIONING:
            client.set_bucket_versioning(name, types['VersioningConfig'](value))
        elif kind == ENCRYPTION:
            client.set_bucket_encryption(name, types['SSEConfig'](types['Rule'].new_sse_s3_rule()))
        elif kind == REMOVE_ENCRYPTION:
            client.delete_bucket_encryption(name)
        else:
            raise BucketError('unknown action %r' % (kind,))


def summary(wanted, current, actions):
    """The module's result: each wanted bucket as it is after the actions, and what was done."""
    after = {}
    for bucket in wanted:
        state = dict(current.get(bucket['name']) or {'versioning': 'Off', 'encryption': None})
        for kind, name, value in actions:
            if name != bucket['name']:
                continue
            if kind == VERSIONING:
                state['versioning'] = value
            elif kind == ENCRYPTION:
                state['encryption'] = value
            elif kind == REMOVE_ENCRYPTION:
                state['encryption'] = None
        after[bucket['name']] = {'versioning': state['versioning'], 'encryption': state['encryption']}
    return {
        'changed': bool(actions),
        'buckets': after,
        'actions': [describe(action) for action in actions],
        'created': [name for kind, name, _value in actions if kind == CREATE],
    }
