"""The S3 configuration of the minio role: the pure plan, and the I/O layer against a fake client.

The fake stands for ``minio.Minio`` in these unit tests of the logic only; the
molecule scenario ``minio`` runs the module against a real server.
"""
import pytest
from minio_fakes import TYPES, FakeMinio

from ansible_collections.supersmartmatch.platform.plugins.module_utils import minio_buckets as mb


def wanted(*buckets):
    return mb.normalize(list(buckets))


@pytest.mark.parametrize('bucket, current, actions', [
    # a new bucket: created, then encrypted (and versioned when asked)
    ({'name': 'data'}, {}, [('create', 'data', None), ('encryption', 'data', 'AES256')]),
    ({'name': 'data', 'versioning': True}, {},
     [('create', 'data', None), ('versioning', 'data', 'Enabled'), ('encryption', 'data', 'AES256')]),
    ({'name': 'data', 'encryption': 'none'}, {}, [('create', 'data', None)]),
    # as wanted: nothing
    ({'name': 'data'}, {'data': {'versioning': 'Off', 'encryption': 'AES256'}}, []),
    ({'name': 'data', 'versioning': True}, {'data': {'versioning': 'Enabled', 'encryption': 'AES256'}}, []),
    ({'name': 'data'}, {'data': {'versioning': 'Suspended', 'encryption': 'AES256'}}, []),
    ({'name': 'data', 'encryption': 'none'}, {'data': {'versioning': 'Off', 'encryption': None}}, []),
    # an existing bucket without default encryption gets it
    ({'name': 'data'}, {'data': {'versioning': 'Off', 'encryption': None}}, [('encryption', 'data', 'AES256')]),
    # SSE-KMS default encryption is replaced by SSE-S3
    ({'name': 'data'}, {'data': {'versioning': 'Off', 'encryption': 'aws:kms'}}, [('encryption', 'data', 'AES256')]),
    # versioning: enabled from Off or Suspended; suspended (never Off) when no longer wanted
    ({'name': 'data', 'versioning': True}, {'data': {'versioning': 'Off', 'encryption': 'AES256'}},
     [('versioning', 'data', 'Enabled')]),
    ({'name': 'data', 'versioning': True}, {'data': {'versioning': 'Suspended', 'encryption': 'AES256'}},
     [('versioning', 'data', 'Enabled')]),
    ({'name': 'data'}, {'data': {'versioning': 'Enabled', 'encryption': 'AES256'}},
     [('versioning', 'data', 'Suspended')]),
    # encryption removed only when asked
    ({'name': 'data', 'encryption': 'none'}, {'data': {'versioning': 'Off', 'encryption': 'AES256'}},
     [('remove_encryption', 'data', None)]),
], ids=['new', 'new-versioned', 'new-unencrypted', 'as-wanted', 'as-wanted-versioned', 'suspended-kept',
        'as-wanted-unencrypted', 'encrypt-existing', 'kms-to-s3', 'enable-from-off', 'enable-from-suspended',
        'suspend', 'remove-encryption'])
def test_plan(bucket, current, actions):
    assert mb.plan(wanted(bucket), current) == actions


def test_plan_leaves_other_buckets_alone_and_keeps_order():
    current = {'zeta': {'versioning': 'Enabled', 'encryption': None}, 'alpha': {'versioning': 'Off', 'encryption': None}}
    actions = mb.plan(wanted({'name': 'beta'}, {'name': 'alpha'}), current)
    assert actions == [('create', 'beta', None), ('encryption', 'beta', 'AES256'), ('encryption', 'alpha', 'AES256')]


@pytest.mark.parametrize('buckets, message', [
    ([{'name': 'Data'}], "buckets[0].name 'Data' is not a valid bucket name"),
    ([{'name': 'ab'}], "is not a valid bucket name"),
    ([{'name': 'a' * 64}], "is not a valid bucket name"),
    ([{'name': 'a..b'}], "is not a valid bucket name"),
    ([{'name': '10.0.0.1'}], "is not a valid bucket name"),
    ([{'name': 'xn--data'}], "is not a valid bucket name"),
    ([{'name': 'data-s3alias'}], "is not a valid bucket name"),
    ([{'name': 'data\n'}], "is not a valid bucket name"),
    ([{'name': None}], "is not a valid bucket name"),
    ([{'name': 'data'}, {'name': 'data'}], 'bucket data is listed twice'),
    ([{'name': 'data', 'versioning': 'yes'}], "buckets[0].versioning must be true or false, got 'yes'"),
    ([{'name': 'data', 'encryption': 'SSE-C'}], "buckets[0].encryption must be one of SSE-S3, none, got 'SSE-C'"),
    ([{'name': 'data', 'lifecycle': 7}], 'buckets[0] has unknown keys lifecycle'),
    (['data'], "buckets[0] must be a dict with a name, got 'data'"),
])
def test_normalize_refuses(buckets, message):
    with pytest.raises(mb.BucketError) as err:
        mb.normalize(buckets)
    assert message in str(err.value)


def test_normalize_defaults():
    assert mb.normalize([{'name': 'a.b-c'}]) == [{'name': 'a.b-c', 'versioning': False, 'encryption': 'SSE-S3'}]


def test_describe_and_summary():
    want = wanted({'name': 'data', 'versioning': True}, {'name': 'logs', 'encryption': 'none'})
    current = {'logs': {'versioning': 'Enabled', 'encryption': 'AES256'}}
    actions = mb.plan(want, current)
    result = mb.summary(want, current, actions)
    assert result == {
        'changed': True,
        'buckets': {'data': {'versioning': 'Enabled', 'encryption': 'AES256'},
                    'logs': {'versioning': 'Suspended', 'encryption': None}},
        'actions': ['create bucket data', 'set versioning of data to Enabled',
                    'set default encryption of data to SSE-S3 (AES256)', 'set versioning of logs to Suspended',
                    'remove default encryption of logs'],
        'created': ['data'],
    }
    assert mb.summary(want, mb_after(want), [])['changed'] is False


def mb_after(want):
    return dict((b['name'], {'versioning': 'Enabled' if b['versioning'] else 'Off',
                             'encryption': 'AES256' if b['encryption'] == 'SSE-S3' else None}) for b in want)


# --- I/O layer against a fake client --------------------------------------------------------------

def test_read_state():
    client = FakeMinio({'data': {'versioning': 'Enabled', 'encryption': 'AES256'},
                        'logs': {'versioning': None, 'encryption': None}})
    assert mb.read_state(client, ['data', 'logs', 'absent']) == {
        'data': {'versioning': 'Enabled', 'encryption': 'AES256'},
        'logs': {'versioning': 'Off', 'encryption': None}}
    assert ('get_bucket_versioning', 'absent') not in client.calls


def test_apply_then_nothing_left_to_do():
    """Applying the plan converges: read again, the plan is empty (the module's idempotence)."""
    client = FakeMinio({'logs': {'versioning': 'Enabled', 'encryption': None}})
    want = wanted({'name': 'data', 'versioning': True}, {'name': 'logs'})
    actions = mb.plan(want, mb.read_state(client, ['data', 'logs']))
    client.calls = []
    mb.apply(client, actions, 'us-east-1', TYPES)
    assert client.calls == [('make_bucket', 'data', 'us-east-1'), ('set_bucket_versioning', 'data', 'Enabled'),
                            ('set_bucket_encryption', 'data', 'AES256'), ('set_bucket_versioning', 'logs', 'Suspended'),
                            ('set_bucket_encryption', 'logs', 'AES256')]
    assert client.buckets == {'data': {'versioning': 'Enabled', 'encryption': 'AES256'},
                              'logs': {'versioning': 'Suspended', 'encryption': 'AES256'}}
    assert mb.plan(want, mb.read_state(client, ['data', 'logs'])) == []


def test_apply_removes_encryption():
    client = FakeMinio({'data': {'versioning': None, 'encryption': 'AES256'}})
    mb.apply(client, mb.plan(wanted({'name': 'data', 'encryption': 'none'}), mb.read_state(client, ['data'])),
             'us-east-1', TYPES)
    assert client.buckets['data']['encryption'] is None


def test_apply_refuses_an_unknown_action():
    with pytest.raises(mb.BucketError):
        mb.apply(FakeMinio(), [('delete', 'data', None)], 'us-east-1', TYPES)


def test_apply_stops_at_the_first_error():
    class Failing(FakeMinio):
        def set_bucket_versioning(self, name, config):
            raise RuntimeError('AccessDenied')

    client = Failing()
    with pytest.raises(RuntimeError):
        mb.apply(client, mb.plan(wanted({'name': 'data', 'versioning': True}), {}), 'us-east-1', TYPES)
    assert client.buckets == {'data': {'versioning': None, 'encryption': None}}
