"""Preflight of the minio role, without a MinIO binary or containers.

Runs the real role with ansible-playbook in check mode against inventories of
local-connection hosts (nothing installed, nothing started): the preflight is
the first thing the role does, and each bad case must stop there with a
message naming the variable. The "binary" is a small file of the test (its
sha256 is all the preflight reads).
"""
import hashlib
import json
import sys

import pytest
from ansible_run import link_collection, run_check, run_preflight_cases

PLAYBOOK_MAIN = """\
- name: Apply the role
  hosts: minio
  gather_facts: false
  roles:
    - role: supersmartmatch.platform.minio
"""
PLAYBOOK_PREFLIGHT = """\
- name: Apply the preflight of the role
  hosts: minio
  gather_facts: false
  tasks:
    - name: MinIO preflight
      ansible.builtin.include_role:
        name: supersmartmatch.platform.minio
        tasks_from: preflight.yml
"""
INSTALL_MARK = "Install | Create the group"


def flat(text):
    """Output with line wrapping and indentation removed (messages are wrapped by the callback)."""
    return " ".join(text.split())


@pytest.fixture(autouse=True, scope="module")
def collection_link():
    link_collection()


@pytest.fixture(name="binary")
def binary_fixture(tmp_path):
    """A stand-in file for the binary and its sha256 (the preflight only hashes it; nothing runs it)."""
    path = tmp_path / "minio-binary"
    path.write_bytes(b"not a real minio binary, only hashed by the preflight\n")
    return str(path), hashlib.sha256(path.read_bytes()).hexdigest()


def run_role(tmp_path, hosts=("minio1",), role_vars=None, preflight_only=False, controller_dirs=True):
    """Apply the role (or only its preflight) in check mode with ``role_vars``; return (rc, output).
    The controller directories (secrets, PKI) are in tmp_path unless ``controller_dirs`` is false."""
    minio_hosts = {}
    for index, name in enumerate(hosts, start=1):
        minio_hosts[name] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                             "minio_node_address": "10.0.0.%d" % index}
    inventory = {"all": {"children": {"minio": {"hosts": minio_hosts}}}}
    (tmp_path / "inventory.yml").write_text(json.dumps(inventory), encoding="utf-8")
    (tmp_path / "play.yml").write_text(PLAYBOOK_PREFLIGHT if preflight_only else PLAYBOOK_MAIN, encoding="utf-8")
    variables = dict(role_vars or {})
    if controller_dirs:
        variables.update(minio_secrets_dir=str(tmp_path / "secrets"), minio_pki_dir=str(tmp_path / "pki"))
    (tmp_path / "vars.json").write_text(json.dumps(variables), encoding="utf-8")
    return run_check(tmp_path, tmp_path / "inventory.yml", tmp_path / "play.yml", "-e", "@%s" % (tmp_path / "vars.json"))


def test_no_binary_refused_with_the_reason(tmp_path):
    rc, out = run_role(tmp_path)
    assert rc != 0, out
    text = flat(out)
    assert "No MinIO binary given: set minio_binary_path (a file on the controller) or minio_binary_url, " \
           "with minio_binary_sha256 in both cases." in text, out
    assert "The role downloads nothing by default: MinIO stopped publishing binaries in October 2025" in text, out
    assert INSTALL_MARK not in out
    assert not (tmp_path / "secrets").exists()


def test_wrong_sha256_refused(tmp_path, binary):
    path, _sha = binary
    wrong = "0" * 64
    rc, out = run_role(tmp_path, role_vars={"minio_binary_path": path, "minio_binary_sha256": wrong})
    assert rc != 0, out
    assert "minio_binary_path %s has sha256 %s, not minio_binary_sha256 %s" % (path, _sha, wrong) in flat(out), out
    assert INSTALL_MARK not in out


@pytest.mark.parametrize("count", [2, 3])
def test_two_or_three_nodes_refused(tmp_path, binary, count):
    path, sha = binary
    hosts = ["minio%d" % n for n in range(1, count + 1)]
    rc, out = run_role(tmp_path, hosts=hosts, role_vars={"minio_binary_path": path, "minio_binary_sha256": sha})
    assert rc != 0, out
    assert "MinIO runs on 1 node (with several drives, minio_volumes) or distributed on at least 4 nodes; " \
           "group 'minio' (minio_group) has %d (%s). 2 or 3 nodes are refused" % (count, ", ".join(hosts)) in flat(out), out
    assert INSTALL_MARK not in out


@pytest.mark.parametrize("buckets, bad", [
    ([{"name": "backups"}, {"name": "Uploads"}, {"name": "ab"}, {"name": "a..b"}, {"name": "192.168.1.10"},
      {"name": "data-"}, {"name": "xn--data"}],
     ["Uploads", "ab", "a..b", "192.168.1.10", "data-", "xn--data"]),
    ([{"name": "ok-bucket\nx"}], None),
], ids=["bad-names", "newline"])
def test_bad_bucket_names_refused(tmp_path, binary, buckets, bad):
    """Every bad name is listed (upper case, too short, '..', an IP address, trailing '-', 'xn--'), good ones are not;
    a name with a newline is refused (the anchored pattern matches the whole string)."""
    path, sha = binary
    rc, out = run_role(tmp_path, role_vars={"minio_binary_path": path, "minio_binary_sha256": sha, "minio_buckets": buckets})
    assert rc != 0, out
    text = flat(out)
    assert "minio_buckets must list distinct buckets, each {name, versioning: true/false, encryption: SSE-S3 or none}" in text, out
    if bad:
        assert "bad names: %s" % bad in text, out
    assert INSTALL_MARK not in out


# A URL instead of the file: the batch's binary path emptied.
URL = {"minio_binary_path": ""}
SETTINGS_CASES = [
    ({"minio_binary_sha256": "abc"}, "minio_binary_sha256 must be the binary's sha256 (64 lower-case hex digits), got 'abc'"),
    ({"minio_binary_sha256": ""}, "minio_binary_sha256 must be the binary's sha256"),
    ({"minio_binary_url": "https://mirror.example.net/minio"}, "Give minio_binary_path or minio_binary_url, not both"),
    (dict(URL, minio_binary_url="https://mirror.example.net/minio", minio_binary_sha256=""),
     "minio_binary_sha256 must be the binary's sha256"),
    (dict(URL, minio_binary_url="http://mirror.example.net/minio"), "minio_binary_url must be an https:// URL"),
    (dict(URL, minio_binary_url="https://mirror.example.net/minio?x=1"), "minio_binary_url must be an https:// URL"),
    (dict(URL, minio_binary_url="https://a b/minio"), "minio_binary_url must be an https:// URL"),
    ({"minio_volumes": ["relative/disk"]}, "minio_volumes must list at least one distinct absolute path"),
    ({"minio_volumes": ["/srv/minio/../etc"]}, "minio_volumes must list at least one distinct absolute path"),
    ({"minio_volumes": ["/srv/minio disk"]}, "minio_volumes must list at least one distinct absolute path"),
    ({"minio_volumes": ["/srv/a", "/srv/a"]}, "minio_volumes must list at least one distinct absolute path"),
    ({"minio_distributed_volumes": "https://minio{1...4}:9000/d"}, "minio_distributed_volumes is for the distributed layout only"),
    ({"minio_root_user": "a b"}, "minio_root_user 3 to 64 letters"),
    ({"minio_kms_key_name": "key:x"}, "minio_kms_key_name 1 to 64 letters"),
    ({"minio_node_name": "bad_name!"}, "minio_node_name must be a host name (got 'bad_name!')"),
    ({"minio_port": 9001}, "minio_port and minio_console_port distinct ports"),
    ({"minio_environment_extra": {"MINIO_ROOT_PASSWORD": "x"}}, "minio_environment_extra must map MINIO_* names"),
    ({"minio_environment_extra": {"MINIO_CI_CD": "on\nMINIO_X=1"}}, "minio_environment_extra must map MINIO_* names"),
    ({"minio_environment_extra": {"PATH": "/tmp"}}, "minio_environment_extra must map MINIO_* names"),
    ({"minio_tls_mode": "self"}, "minio_tls_mode must be lab_ca"),
    ({"minio_tls_mode": "provided", "minio_tls_cert_src": "/nonexistent.crt"}, "minio_tls_mode must be lab_ca"),
    ({"minio_secrets_backend": "etcd"}, "minio_secrets_backend must be vault or file (got 'etcd')"),
    ({"minio_secrets_backend": "vault", "minio_vault_url": "vault:8200"}, "minio_vault_url must be http(s)://host[:port]"),
    ({"minio_secrets_backend": "vault", "minio_vault_url": "https://vault1:8200", "minio_vault_auth_method": "approle"},
     "approle needs minio_vault_role_id and minio_vault_secret_id"),
    ({"minio_node_address": "not-an-ip"}, "minio_node_address must be this node's IPv4 address"),
    ({"minio_buckets": [{"name": "data"}, {"name": "data"}]}, "minio_buckets must list distinct buckets"),
    ({"minio_buckets": [{"name": "data", "versioning": "yes"}]}, "minio_buckets must list distinct buckets"),
    ({"minio_buckets": [{"name": "data", "encryption": "SSE-KMS"}]}, "minio_buckets must list distinct buckets"),
    ({"minio_buckets": [{"name": "data", "encrypt": True}]}, "minio_buckets must list distinct buckets"),
]
SETTINGS_IDS = ["short-sha", "no-sha", "both-sources", "url-without-sha", "url-plain-http", "url-query", "url-space",
                "relative-volume", "dotdot-volume", "space-volume", "duplicate-volume", "distributed-volumes-single",
                "root-user", "kms-key-name", "node-name", "same-ports", "managed-env", "env-newline", "env-not-minio",
                "tls-mode", "tls-provided-missing", "backend", "vault-url", "approle", "node-address",
                "bucket-duplicate", "bucket-versioning-not-bool", "bucket-unknown-encryption", "bucket-unknown-key"]


@pytest.fixture(name="refusals", scope="module")
def refusals_fixture(tmp_path_factory):
    """Every case of SETTINGS_CASES in one ansible-playbook run (ansible_run.run_preflight_cases), each a
    single node with the binary given, and last a good node that must pass beside them: what each case's
    node was refused with. The controller directories are the batch's own."""
    tmp = tmp_path_factory.mktemp("minio-cases")
    path = tmp / "minio-binary"
    path.write_bytes(b"not a real minio binary, only hashed by the preflight\n")
    base = {"minio_binary_path": str(path), "minio_binary_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "minio_node_address": "10.0.0.1", "minio_secrets_dir": str(tmp / "secrets"), "minio_pki_dir": str(tmp / "pki")}
    cases = [{"minio1": extra} for extra, _message in SETTINGS_CASES] + [{"minio1": {}}]
    return run_preflight_cases(tmp, "minio", "minio_group", cases, base_vars=base)


@pytest.mark.parametrize("index", range(len(SETTINGS_CASES)), ids=SETTINGS_IDS)
def test_bad_settings_refused(refusals, index):
    results, out = refusals
    assert SETTINGS_CASES[index][1] in results[index], (results[index], out[-3000:])


def test_a_good_node_beside_the_refused_ones_passes(refusals):
    """The control case of the batch: refusals are each case's own, not the batch's."""
    results, out = refusals
    assert results[-1] == "", (results[-1], out[-3000:])


def test_bad_distributed_volumes_refused(tmp_path, binary):
    path, sha = binary
    hosts = ["minio%d" % n for n in range(1, 5)]
    for value in ("http://minio{1...4}:9000/d", "https://minio{1...4}:9000/d{1...4} ; rm -rf /", "https://minio1:9000"):
        rc, out = run_role(tmp_path, hosts=hosts, role_vars={"minio_binary_path": path, "minio_binary_sha256": sha,
                                                             "minio_distributed_volumes": value}, preflight_only=True)
        assert rc != 0, out
        assert "must be MINIO_VOLUMES URLs separated by single spaces" in flat(out), out


@pytest.mark.parametrize("hosts, extra", [
    (["minio1"], {}),
    (["minio%d" % n for n in range(1, 5)], {"minio_distributed_volumes": "https://minio{1...4}.example.net:9000/srv/minio/disk{1...4}"}),
    (["minio%d" % n for n in range(1, 6)], {}),
    (["minio1"], {"minio_buckets": [{"name": "backups", "versioning": True}, {"name": "uploads.eu-1", "encryption": "none"}],
                  "minio_environment_extra": {"MINIO_CI_CD": "on"}}),
    (["minio1"], {"minio_secrets_backend": "vault", "minio_vault_url": "https://vault1:8200"}),
], ids=["single", "distributed-expansion", "distributed-5", "buckets", "vault-backend"])
def test_good_settings_pass_the_preflight(tmp_path, binary, hosts, extra):
    """Control cases: the same runs pass when nothing is wrong (the failures above are the checks')."""
    path, sha = binary
    rc, out = run_role(tmp_path, hosts=hosts, role_vars=dict({"minio_binary_path": path, "minio_binary_sha256": sha}, **extra),
                       preflight_only=True)
    assert rc == 0, out
    assert "failed=0" in out


def test_default_controller_directories_pass_the_preflight(tmp_path, binary):
    """The defaults put the secrets and the PKI under <playbook_dir>/../.work (a path with '..')."""
    path, sha = binary
    rc, out = run_role(tmp_path, role_vars={"minio_binary_path": path, "minio_binary_sha256": sha}, preflight_only=True,
                       controller_dirs=False)
    assert rc == 0, out
