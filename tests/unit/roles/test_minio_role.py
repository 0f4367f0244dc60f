"""The minio role without containers: preflight refusals (nothing changes) and templates vs expected files."""
from pathlib import Path

import pytest

from rolerun import ensure_collection_link, flat, render_templates, run_role

EXPECTED = Path(__file__).resolve().parent / "expected" / "minio"
ONE = {"minio": ["m1"]}
FOUR = {"minio": ["m1", "m2", "m3", "m4"]}
BINARY = {"minio_binary_url": "https://example.test/minio", "minio_binary_sha256": "b" * 64}
FAKE_SECRETS = {"__minio_secrets": {"root_user": "ssm-minio-root", "root_password": "FAKE-root-password-for-templates",
                                    "kms_secret_key": "ssm-minio-key:" + "A" * 43 + "="}}


@pytest.fixture(autouse=True, scope="module")
def collection_link():
    ensure_collection_link()


@pytest.mark.parametrize("groups, extra, message", [
    (ONE, {}, "No MinIO binary: MinIO stopped publishing binaries in October 2025 and this role downloads nothing by default"),
    (ONE, {"minio_binary_url": "https://example.test/minio"}, "No MinIO binary"),
    (ONE, dict(BINARY, minio_binary_src="/tmp/minio"), "Give exactly one of minio_binary_src"),
    (ONE, {"minio_binary_url": "http://example.test/minio", "minio_binary_sha256": "b" * 64}, "No MinIO binary"),
    ({"minio": ["m1", "m2"]}, BINARY, "MinIO runs on one node with at least 2 drives, or distributed on at least 4 nodes"),
    (ONE, dict(BINARY, minio_drives=["/srv/minio/disk1"]), "1 drive(s) here"),
    (ONE, dict(BINARY, minio_drives=["/srv/a", "relative/b"]), "distinct absolute paths"),
    (ONE, dict(BINARY, minio_drives=["/srv/a", "/srv/a"]), "distinct absolute paths"),
    (ONE, dict(BINARY, minio_kms_key_name="bad:name"), "Invalid setting"),
    (ONE, dict(BINARY, minio_node_address="m1\nMINIO_X=1"), "Invalid setting"),
    (ONE, dict(BINARY, minio_tls_mode="provided"), "Invalid setting"),
    (ONE, dict(BINARY, minio_secret_store="vault"), "With minio_secret_store=vault, give minio_vault_url"),
    (ONE, dict(BINARY, minio_buckets=["Bad_Bucket"]), "minio_buckets: bucket 'Bad_Bucket'"),
    (ONE, dict(BINARY, minio_buckets=[{"name": "ok-bucket", "encryption": "sse-c"}]), "encryption must be one of sse-s3, none"),
], ids=["no-binary", "url-without-sha", "both-sources", "http-url", "two-nodes", "one-drive", "relative-drive",
        "same-drive", "kms-name", "address-injection", "tls-provided", "vault-without-url", "bucket-name", "bucket-encryption"])
def test_preflight_refuses(tmp_path, groups, extra, message):
    rc, out = run_role(tmp_path, "minio", groups, "minio", extra_vars=extra, tasks_from="preflight.yml")
    assert rc != 0, out
    assert message in flat(out), out


def test_preflight_refuses_before_any_change(tmp_path):
    rc, out = run_role(tmp_path, "minio", ONE, "minio", extra_vars={})
    assert rc != 0, out
    assert "Secrets | Create the secrets directory" not in out and "Install |" not in out
    assert "changed=0" in out


@pytest.mark.parametrize("groups", [ONE, FOUR], ids=["single-node", "distributed"])
def test_good_inventory_passes_the_preflight(tmp_path, groups):
    extra = dict(BINARY, minio_buckets=["artifacts", {"name": "scratch", "versioning": False}])
    rc, out = run_role(tmp_path, "minio", groups, "minio", extra_vars=extra, tasks_from="preflight.yml")
    assert rc == 0, out
    assert "failed=0" in out


@pytest.mark.parametrize("groups, suffix", [(ONE, "single"), (FOUR, "distributed")])
def test_templates_match_expected_files(tmp_path, groups, suffix):
    rendered = render_templates(tmp_path, "minio", groups, "m1", ["minio.default.j2", "minio.env.j2", "minio.service.j2"],
                                dict(BINARY, **FAKE_SECRETS))
    for name, text in rendered.items():
        expected = EXPECTED / ("%s.%s" % (name[:-3], suffix))
        assert text == expected.read_text(), "%s differs from %s" % (name, expected)
    # The settings file carries no secret; the process gets only the path of the secrets file.
    assert "FAKE-root-password" not in rendered["minio.default.j2"]
    assert "MINIO_CONFIG_ENV_FILE=/etc/minio/minio.env" in rendered["minio.default.j2"]
    assert "FAKE-root-password" in rendered["minio.env.j2"]
