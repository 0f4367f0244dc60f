"""The minio role's templates, rendered as the template module does and compared with expected files.

tests/unit/roles/expected/minio/ holds what the environment file and the
systemd unit must be for a single node with four drives, and for four nodes
(the explicit list of every node's drives, and MinIO's {a...b} expansion).
The secrets below are test values; the role generates the real ones. After a
deliberate template change, SSM_WRITE_EXPECTED=1 rewrites the expected files
(review their diff).
"""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "monitoring"))
from roletemplates import render_role_template  # noqa: E402  pylint: disable=wrong-import-position,import-error

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "minio"
EXPECTED = Path(__file__).resolve().parent / "expected" / "minio"
PASSWORD = "TestRootPassword0123456789abcdefghijklmn"
KMS_KEY = "q2Zc4o7bQ1n0jV3kFb5c1mF4cQn1YwP8xJz9r2s6t0A="
NODES = ["minio1", "minio2", "minio3", "minio4"]


def context(nodes, **extra):
    values = {
        "ansible_managed": "Ansible managed (unit test)",
        "inventory_hostname": nodes[0],
        "groups": {"all": list(nodes), "minio": list(nodes)},
        "hostvars": dict((name, {"__minio_name": name + ".example.net"}) for name in nodes),
        "__minio_root_password": PASSWORD,
        "__minio_kms_key": KMS_KEY,
    }
    values.update(extra)
    return values


@pytest.mark.parametrize("template, expected, nodes, overrides", [
    ("minio.env.j2", "single.env", ["minio1"], {}),
    ("minio.env.j2", "single-extra.env", ["minio1"],
     {"minio_volumes": ["/mnt/d1"], "minio_port": 9443, "minio_console_port": 9444, "minio_root_user": "root-admin",
      "minio_kms_key_name": "lab-key", "minio_environment_extra": {"MINIO_CI_CD": "on", "MINIO_BROWSER": "off"}}),
    ("minio.env.j2", "distributed.env", NODES, {"minio_volumes": ["/srv/minio/disk1", "/srv/minio/disk2"]}),
    ("minio.env.j2", "distributed-expansion.env", NODES,
     {"minio_distributed_volumes": "https://minio{1...4}.example.net:9000/srv/minio/disk{1...4}"}),
    ("minio.service.j2", "minio.service", ["minio1"], {}),
], ids=["single", "single-extra", "distributed", "distributed-expansion", "unit"])
def test_rendered_as_expected(template, expected, nodes, overrides):
    rendered = render_role_template(ROLE, template, context(nodes), overrides)
    if os.environ.get("SSM_WRITE_EXPECTED") == "1":
        (EXPECTED / expected).write_text(rendered)
    assert rendered == (EXPECTED / expected).read_text()


def test_secrets_only_in_the_environment_file():
    """The unit reads the secrets from the 0600 environment file: nothing of them is in its command line."""
    unit = render_role_template(ROLE, "minio.service.j2", context(["minio1"]), {})
    assert PASSWORD not in unit and KMS_KEY not in unit
    assert "EnvironmentFile=/etc/default/minio\n" in unit
    assert "ExecStart=/usr/local/bin/minio server $MINIO_OPTS $MINIO_VOLUMES\n" in unit
    env = render_role_template(ROLE, "minio.env.j2", context(["minio1"]), {})
    assert 'MINIO_KMS_SECRET_KEY="minio-sse-key:%s"\n' % KMS_KEY in env
