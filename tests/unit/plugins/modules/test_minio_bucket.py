"""The minio_bucket module: parameters, check mode, result, with the SDK's own classes and a fake client.

The client is the only fake (a server is in the molecule scenario ``minio``):
``client_of`` is replaced by one returning FakeMinio, which records calls.
"""
import os
import sys

import pytest
from minio.error import S3Error

from ansible_collections.supersmartmatch.platform.plugins.modules import minio_bucket

from .helpers import run_main

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'module_utils'))
from minio_fakes import FakeMinio  # noqa: E402  pylint: disable=wrong-import-position

SECRET = 'S3cretKeyThatMustNeverShow0123456789'


def args(**extra):
    base = dict(endpoint='127.0.0.1:19000', access_key='minio-admin', secret_key=SECRET, ca_cert='/tmp/ca.crt',
                buckets=[{'name': 'data', 'versioning': True}, {'name': 'logs'}])
    base.update(extra)
    return base


@pytest.fixture(name="client")
def client_fixture(monkeypatch):
    fake = FakeMinio({'logs': {'versioning': None, 'encryption': 'AES256'}})
    seen = {}

    def client_of(params):
        seen.update(params)
        return fake
    monkeypatch.setattr(minio_bucket, 'client_of', client_of)
    fake.params = seen
    return fake


def test_configures_and_reports(client, capsys):
    result = run_main(minio_bucket, args(), capsys)
    assert result['changed'] is True
    assert result['actions'] == ['create bucket data', 'set versioning of data to Enabled',
                                 'set default encryption of data to SSE-S3 (AES256)']
    assert result['buckets'] == {'data': {'versioning': 'Enabled', 'encryption': 'AES256'},
                                 'logs': {'versioning': 'Off', 'encryption': 'AES256'}}
    assert client.buckets['data'] == {'versioning': 'Enabled', 'encryption': 'AES256'}
    assert client.params['region'] == 'us-east-1' and client.params['secure'] is True
    assert SECRET not in str(result)
    again = run_main(minio_bucket, args(), capsys)
    assert again['changed'] is False and again['msg'] == 'every bucket is as wanted'


def test_check_mode_changes_nothing(client, capsys):
    result = run_main(minio_bucket, args(_ansible_check_mode=True), capsys)
    assert result['changed'] is True
    assert result['created'] == ['data']
    assert 'data' not in client.buckets
    assert not [call for call in client.calls if not call[0].startswith(('get_', 'bucket_exists'))]


def test_bad_bucket_refused_before_any_call(client, capsys):
    result = run_main(minio_bucket, args(buckets=[{'name': 'Bad_Name'}]), capsys)
    assert result['failed'] is True
    assert "buckets[0].name 'Bad_Name' is not a valid bucket name" in result['msg']
    assert client.calls == []


@pytest.mark.usefixtures('client')
def test_unknown_encryption_refused_by_the_argument_spec(capsys):
    result = run_main(minio_bucket, args(buckets=[{'name': 'data', 'encryption': 'SSE-C'}]), capsys)
    assert result['failed'] is True
    assert 'SSE-C' in result['msg']


def test_s3_error_reported_with_its_code(monkeypatch, capsys):
    class Denied(FakeMinio):
        def bucket_exists(self, name):
            raise S3Error(None, 'AccessDenied', 'Access Denied.', '/data', 'req-1', 'host-1', bucket_name=name)
    monkeypatch.setattr(minio_bucket, 'client_of', lambda params: Denied())
    result = run_main(minio_bucket, args(), capsys)
    assert result['failed'] is True
    assert result['msg'] == 'S3 error from 127.0.0.1:19000: AccessDenied (Access Denied.)'


def test_server_error_reported_without_the_secret(monkeypatch, capsys):
    class Broken(FakeMinio):
        def bucket_exists(self, name):
            raise OSError('connection refused')
    monkeypatch.setattr(minio_bucket, 'client_of', lambda params: Broken())
    result = run_main(minio_bucket, args(), capsys)
    assert result['failed'] is True
    assert result['msg'] == 'cannot configure the buckets on 127.0.0.1:19000: connection refused'
    assert SECRET not in str(result)


def test_real_client_is_built_with_the_ca_file():
    params = dict(args(), secure=True, region='us-east-1')
    real = minio_bucket.client_of(params)
    assert real._base_url.host == '127.0.0.1:19000'  # pylint: disable=protected-access
    assert real._base_url.is_https  # pylint: disable=protected-access
