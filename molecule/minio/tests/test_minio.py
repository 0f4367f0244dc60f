"""Verify the minio role on minio-node1: encryption by default, TLS required, secrets kept out of sight.

Commands run in the container through the docker backend. curl signs its S3
requests itself (--aws-sigv4); it gets the root credentials through a config
read from stdin (-K -), which the shell fills from /etc/default/minio inside
the container, so they are never on a command line (not even docker exec's).
"""
import os
import stat

import pytest
import testinfra

NODE = "minio-node1"
CA = "/home/minio-user/.minio/certs/CAs/ca.crt"
URL = "https://127.0.0.1:9000"
SECRETS = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", ""), "secrets")
CREDENTIALS = ('. /etc/default/minio && printf \'user = "%s:%s"\\n\' "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" | ')
S3 = ("curl -sS --fail-with-body -K - --aws-sigv4 aws:amz:us-east-1:s3 -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' "
      "--cacert %s " % CA)

testinfra_hosts = ["docker://%s" % NODE]


@pytest.fixture(scope="module", name="node")
def node_fixture():
    return testinfra.get_host("docker://%s" % NODE)


def s3(node, args):
    """An S3 request signed with the root credentials; returns the command result."""
    return node.run(CREDENTIALS + S3 + args)


def test_service_and_files(node):
    assert node.service("minio.service").is_running
    assert node.service("minio.service").is_enabled
    env = node.file("/etc/default/minio")
    assert (env.user, env.group, env.mode) == ("minio-user", "minio-user", 0o600)
    key = node.file("/home/minio-user/.minio/certs/private.key")
    assert (key.user, key.mode) == ("minio-user", 0o600)
    assert node.file("/usr/local/bin/minio").mode == 0o755
    for drive in range(1, 5):
        assert node.file("/srv/minio/disk%d" % drive).user == "minio-user"


def test_tls_required(node):
    plain = node.run("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9000/minio/health/live")
    assert plain.stdout.strip() != "200", "plain HTTP answered 200"
    secure = node.run("curl -sS -o /dev/null -w '%%{http_code}' --cacert %s %s/minio/health/live" % (CA, URL))
    assert secure.rc == 0 and secure.stdout.strip() == "200", secure.stderr


def test_object_without_encryption_header_is_stored_encrypted(node):
    put = s3(node, "-T /etc/hostname %s/ssm-encrypted/verify/plain.txt" % URL)
    assert put.rc == 0, put.stdout + put.stderr
    head = s3(node, "-I %s/ssm-encrypted/verify/plain.txt" % URL)
    assert head.rc == 0, head.stdout + head.stderr
    headers = dict(line.split(":", 1) for line in head.stdout.splitlines() if ":" in line)
    headers = dict((k.strip().lower(), v.strip()) for k, v in headers.items())
    assert headers.get("x-amz-server-side-encryption") == "AES256", head.stdout
    body = s3(node, "%s/ssm-encrypted/verify/plain.txt" % URL)
    assert body.rc == 0 and body.stdout == node.file("/etc/hostname").content_string


def test_versioned_bucket_keeps_versions(node):
    for attempt in (1, 2):
        assert s3(node, "-T /etc/hostname %s/ssm-versioned/verify/twice.txt" % URL).rc == 0, attempt
    head = s3(node, "-I %s/ssm-versioned/verify/twice.txt" % URL)
    lower = head.stdout.lower()
    assert "x-amz-server-side-encryption: aes256" in lower, head.stdout
    assert "x-amz-version-id:" in lower and "x-amz-version-id: null" not in lower, head.stdout


def test_unauthenticated_request_refused(node):
    anonymous = node.run("curl -s -o /dev/null -w '%%{http_code}' --cacert %s %s/ssm-encrypted/verify/plain.txt"
                         % (CA, URL))
    assert anonymous.stdout.strip() == "403"


def test_secrets_kept_in_0600_files_and_off_command_lines(node):
    for name in ("minio_root_password", "minio_kms_secret_key"):
        path = os.path.join(SECRETS, name)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    with open(os.path.join(SECRETS, "minio_root_password"), encoding="utf-8") as handle:
        password = handle.read().strip()
    with open(os.path.join(SECRETS, "minio_kms_secret_key"), encoding="utf-8") as handle:
        key = handle.read().strip()
    commands = node.check_output("ps -eo args")
    assert "minio server" in commands
    assert password not in commands and key not in commands
    assert node.check_output("grep -c '^MINIO_KMS_SECRET_KEY=\"minio-sse-key:' /etc/default/minio") == "1"
