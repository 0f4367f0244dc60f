"""S3 configuration code of the minio role (plugins/module_utils/minio_s3.py) with a fake client."""
import base64
from types import SimpleNamespace

import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import minio_s3 as ms


class FakeClient:
    """The minio.Minio methods the role uses, over an in-memory state; records the writes."""

    def __init__(self, buckets=None):
        # name -> {"sse": algorithm or None, "versioning": status or None}
        self.buckets = {name: dict(state) for name, state in (buckets or {}).items()}
        self.writes = []

    def bucket_exists(self, name):
        return name in self.buckets

    def make_bucket(self, name):
        self.writes.append(("make_bucket", name))
        self.buckets[name] = {"sse": None, "versioning": None}

    def get_bucket_encryption(self, name):
        sse = self.buckets[name]["sse"]
        return None if sse is None else SimpleNamespace(rule=SimpleNamespace(sse_algorithm=sse))

    def set_bucket_encryption(self, name, config):
        self.writes.append(("set_bucket_encryption", name, config))
        self.buckets[name]["sse"] = config["algorithm"]

    def get_bucket_versioning(self, name):
        return SimpleNamespace(status=self.buckets[name]["versioning"] or "Off")

    def set_bucket_versioning(self, name, config):
        self.writes.append(("set_bucket_versioning", name, config))
        self.buckets[name]["versioning"] = config["status"]


BUILDERS = {"sse_s3": lambda: {"algorithm": "AES256"},
            "versioning": lambda enabled: {"status": "Enabled" if enabled else "Suspended"}}


@pytest.mark.parametrize("name, problem", [
    ("matching-artifacts", None),
    ("a1.b2-c3", None),
    ("ab", "3-63 characters"),
    ("a" * 64, "3-63 characters"),
    ("Upper", "3-63 characters"),
    ("-start", "3-63 characters"),
    ("end-", "3-63 characters"),
    ("under_score", "3-63 characters"),
    ("bad\nname", "3-63 characters"),
    ("artifacts\n", "3-63 characters"),
    ("a..b", 'no ".."'),
    ("a.-b", 'no ".."'),
    ("192.168.1.10", "IP address"),
    ("xn--bucket", "reserved"),
    ("data-s3alias", "reserved"),
    (42, "must be a string"),
])
def test_bucket_name_problem(name, problem):
    found = ms.bucket_name_problem(name)
    if problem is None:
        assert found is None
    else:
        assert problem in found


@pytest.mark.parametrize("buckets, expected", [
    (["a-bucket"], [{"name": "a-bucket", "encryption": "sse-s3", "versioning": True}]),
    ([{"name": "scratch", "versioning": False}], [{"name": "scratch", "encryption": "sse-s3", "versioning": False}]),
    ([{"name": "open", "encryption": "none"}], [{"name": "open", "encryption": "none", "versioning": True}]),
    ([], []),
])
def test_normalize_buckets(buckets, expected):
    assert ms.normalize_buckets(buckets) == expected


@pytest.mark.parametrize("buckets, message", [
    ("a-bucket", "must be a list"),
    ([{"name": "dup"}, "dup"], "listed twice"),
    ([{"name": "x-y", "encryption": "sse-kms"}], "encryption must be one of sse-s3, none"),
    ([{"name": "x-y", "versioning": "yes"}], "versioning must be true or false"),
    ([{"name": "x-y", "policy": "public"}], "unknown key(s) policy"),
    ([["x-y"]], "each bucket is a name or"),
    ([{"name": "Bad"}], "3-63 characters"),
])
def test_normalize_buckets_refuses(buckets, message):
    with pytest.raises(ms.MinioConfigError) as error:
        ms.normalize_buckets(buckets)
    assert message in str(error.value)


WANT = {"name": "b-1", "encryption": "sse-s3", "versioning": True}
WANT_NO_VERSIONS = dict(WANT, versioning=False)
WANT_PLAIN = dict(WANT, encryption="none")


@pytest.mark.parametrize("wanted, exists, sse, versioning, expected", [
    (WANT, False, None, None, ["create", "encrypt", "enable_versioning"]),
    (WANT, True, None, "Off", ["encrypt", "enable_versioning"]),
    (WANT, True, "AES256", "Enabled", []),
    (WANT, True, "aws:kms", "Enabled", ["encrypt"]),
    (WANT, True, "AES256", "Suspended", ["enable_versioning"]),
    (WANT_NO_VERSIONS, True, "AES256", "Enabled", ["suspend_versioning"]),
    (WANT_NO_VERSIONS, True, "AES256", "Off", []),
    (WANT_NO_VERSIONS, False, None, None, ["create", "encrypt"]),
    (WANT_PLAIN, True, "AES256", "Enabled", []),
    (WANT_PLAIN, False, None, None, ["create", "enable_versioning"]),
])
def test_bucket_actions(wanted, exists, sse, versioning, expected):
    assert ms.bucket_actions(wanted, exists, sse, versioning) == expected


def test_apply_creates_encrypts_and_versions_then_is_idempotent():
    client = FakeClient({"old": {"sse": None, "versioning": None}, "done": {"sse": "AES256", "versioning": "Enabled"}})
    buckets = ["new-one", "old", "done", {"name": "scratch", "versioning": False}]
    done = ms.apply_buckets(client, buckets, BUILDERS)
    assert done == {"new-one": ["create", "encrypt", "enable_versioning"], "old": ["encrypt", "enable_versioning"],
                    "scratch": ["create", "encrypt"]}
    assert all(state["sse"] == "AES256" for state in client.buckets.values())
    assert client.buckets["scratch"]["versioning"] is None
    client.writes.clear()
    assert ms.apply_buckets(client, buckets, BUILDERS) == {}
    assert client.writes == []


def test_apply_in_check_mode_writes_nothing():
    client = FakeClient()
    assert ms.apply_buckets(client, ["new-one"], BUILDERS, check_mode=True) == {"new-one": ["create", "encrypt", "enable_versioning"]}
    assert client.writes == [] and client.buckets == {}


def test_apply_refuses_bad_input_before_any_write():
    client = FakeClient()
    with pytest.raises(ms.MinioConfigError):
        ms.apply_buckets(client, ["good-one", "Bad"], BUILDERS)
    assert client.writes == []


@pytest.mark.parametrize("value, problem", [
    ("ssm-minio-key:" + base64.b64encode(b"k" * 32).decode(), None),
    ("ssm-minio-key:" + base64.b64encode(b"k" * 16).decode(), "32 bytes, not 16"),
    ("ssm-minio-key:not*base64", "not valid base64"),
    ("no-colon", "<name>:<base64 of 32 bytes>"),
    ("a:b:c", "<name>:<base64 of 32 bytes>"),
    ("bad name:" + base64.b64encode(b"k" * 32).decode(), "key name"),
    (None, "<name>:<base64 of 32 bytes>"),
])
def test_kms_secret_key_problem(value, problem):
    found = ms.kms_secret_key_problem(value)
    if problem is None:
        assert found is None
    else:
        assert problem in found
        if isinstance(value, str) and ":" in value:
            assert value.split(":", 1)[1] not in found


def test_make_kms_secret_key_round_trip():
    raw = bytes(range(32))
    value = ms.make_kms_secret_key("ssm-minio-key", raw)
    assert ms.kms_secret_key_problem(value) is None
    assert base64.b64decode(value.split(":")[1]) == raw
    with pytest.raises(ms.MinioConfigError):
        ms.make_kms_secret_key("ssm-minio-key", b"short")
    with pytest.raises(ms.MinioConfigError):
        ms.make_kms_secret_key("bad:name", raw)


def test_generator_of_the_role_makes_valid_keys(tmp_path):
    """The controller-side generator of roles/minio (vars/main.yml) writes a 0600 file the checks accept."""
    import json
    import os
    import subprocess
    import sys
    import yaml
    from pathlib import Path
    root = Path(__file__).resolve().parents[4]
    script = yaml.safe_load((root / "roles" / "minio" / "vars" / "main.yml").read_text())["__minio_generate_py"]
    target = tmp_path / "creds.json"
    subprocess.run([sys.executable, "-c", script, str(target), "root-user", "ssm-minio-key"], check=True, timeout=60)
    assert (os.stat(target).st_mode & 0o777) == 0o600
    data = json.loads(target.read_text())
    assert ms.kms_secret_key_problem(data["kms_secret_key"]) is None
    assert len(data["root_password"]) == 40 and data["root_user"] == "root-user"
    again = subprocess.run([sys.executable, "-c", script, str(target), "root-user", "ssm-minio-key"], check=False,
                           capture_output=True, timeout=60)
    assert again.returncode != 0 and json.loads(target.read_text()) == data, "an existing file must never be overwritten"
