"""A stand-in for minio.Minio in the unit tests of the S3 configuration logic (minio_buckets, minio_bucket).

It keeps buckets in a dict and records every call; the classes below have the
attributes of the SDK's VersioningConfig, SSEConfig and Rule that the code reads.
"""


class Versioning(object):
    def __init__(self, status=None):
        self.status = status


class Rule(object):
    def __init__(self, sse_algorithm):
        self.sse_algorithm = sse_algorithm

    @classmethod
    def new_sse_s3_rule(cls):
        return cls('AES256')


class SSEConfig(object):
    def __init__(self, rule):
        self.rule = rule


TYPES = {'VersioningConfig': Versioning, 'SSEConfig': SSEConfig, 'Rule': Rule}


class FakeMinio(object):
    """The methods of minio.Minio that the I/O layer uses, over a dict of buckets; every call is recorded."""

    def __init__(self, buckets=None):
        self.buckets = dict(buckets or {})
        self.calls = []

    def bucket_exists(self, name):
        self.calls.append(('bucket_exists', name))
        return name in self.buckets

    def get_bucket_versioning(self, name):
        self.calls.append(('get_bucket_versioning', name))
        return Versioning(self.buckets[name]['versioning'])

    def get_bucket_encryption(self, name):
        self.calls.append(('get_bucket_encryption', name))
        algorithm = self.buckets[name]['encryption']
        return SSEConfig(Rule(algorithm)) if algorithm else None

    def make_bucket(self, name, location=None):
        self.calls.append(('make_bucket', name, location))
        assert name not in self.buckets
        self.buckets[name] = {'versioning': None, 'encryption': None}

    def set_bucket_versioning(self, name, config):
        self.calls.append(('set_bucket_versioning', name, config.status))
        self.buckets[name]['versioning'] = config.status

    def set_bucket_encryption(self, name, config):
        self.calls.append(('set_bucket_encryption', name, config.rule.sse_algorithm))
        self.buckets[name]['encryption'] = config.rule.sse_algorithm

    def delete_bucket_encryption(self, name):
        self.calls.append(('delete_bucket_encryption', name))
        self.buckets[name]['encryption'] = None
