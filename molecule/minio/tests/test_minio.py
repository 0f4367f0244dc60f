"""Verify the minio role on minio-node1: SSE-S3 by default, TLS required, secrets kept out of sight.

The S3 client (minio SDK) runs on the controller over the scenario's network and verifies the
server's certificate against the lab CA.
"""
import io
import json
import os
import subprocess
from pathlib import Path

import pytest
import requests
import urllib3
from minio import Minio

EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
CA = str(EPHEMERAL / "pki" / "ca.crt")
CREDS = EPHEMERAL / "secrets" / "minio-credentials.json"

testinfra_hosts = ["docker://minio-node1"]


def ip():
    out = subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                          "minio-node1"], capture_output=True, text=True, check=True, timeout=30)
    return out.stdout.strip()


@pytest.fixture(scope="module")
def s3():
    creds = json.loads(CREDS.read_text())
    http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=CA)
    return Minio("%s:9000" % ip(), access_key=creds["root_user"], secret_key=creds["root_password"], secure=True,
                 http_client=http)


def test_object_without_headers_is_stored_encrypted(s3):
    s3.put_object("matching-artifacts", "plain.txt", io.BytesIO(b"hello"), 5)
    head = s3.stat_object("matching-artifacts", "plain.txt")
    assert head.metadata.get("x-amz-server-side-encryption") == "AES256", dict(head.metadata)
    assert s3.get_object("matching-artifacts", "plain.txt").read() == b"hello"


def test_buckets_have_default_encryption_and_versioning(s3):
    for bucket, versioning in (("matching-artifacts", "Enabled"), ("scratch", "Off")):
        assert s3.get_bucket_encryption(bucket).rule.sse_algorithm == "AES256"
        assert s3.get_bucket_versioning(bucket).status == versioning


def test_tls_required():
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get("http://%s:9000/minio/health/live" % ip(), timeout=5)
    assert requests.get("https://%s:9000/minio/health/live" % ip(), verify=CA, timeout=5).status_code == 200


def test_credentials_file_and_secrets_out_of_sight(host):
    assert (CREDS.stat().st_mode & 0o777) == 0o600
    creds = json.loads(CREDS.read_text())
    env_file = host.file("/etc/minio/minio.env")
    assert env_file.mode == 0o640 and env_file.user == "root" and env_file.group == "minio-user"
    ps = host.run("ps eww -A").stdout
    journal = host.run("journalctl --no-pager -o cat").stdout
    log = (EPHEMERAL / "ansible.log").read_text()
    for where, text in (("ps eww", ps), ("journal", journal), ("ansible log", log)):
        for name in ("root_password", "kms_secret_key"):
            assert creds[name] not in text, "%s found in the %s" % (name, where)
            assert creds[name].split(":")[-1] not in text
