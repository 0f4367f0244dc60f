# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the minio role (documented in minio_buckets.yml); the logic is in module_utils/minio_s3.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError
from ansible_collections.supersmartmatch.platform.plugins.module_utils import minio_s3


def minio_buckets(buckets):
    try:
        return minio_s3.normalize_buckets(buckets)
    except minio_s3.MinioConfigError as exc:
        raise AnsibleFilterError('minio_buckets: %s' % exc)


class FilterModule(object):
    def filters(self):
        return {'minio_buckets': minio_buckets}
