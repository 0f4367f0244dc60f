"""The pki role on the controller (it only ever runs there): a CA and a host certificate, idempotent, bad names refused."""
import subprocess

import pytest

from rolerun import ensure_collection_link, flat, run_playbook

PLAY = """\
- name: Lab CA
  hosts: h1
  gather_facts: false
  tasks:
    - name: PKI
      ansible.builtin.include_role:
        name: supersmartmatch.platform.pki
      vars:
        pki_dir: {pki_dir}
        pki_cert_name: {cert_name}
        pki_common_name: h1.lab
        pki_subject_alt_names: {sans}
"""


@pytest.fixture(autouse=True, scope="module")
def collection_link():
    ensure_collection_link()


def openssl(*args):
    return subprocess.run(["openssl"] + list(args), capture_output=True, text=True, check=False, timeout=60)


def test_ca_and_certificate_made_once_and_verified(tmp_path):
    pki = tmp_path / "pki"
    play = PLAY.format(pki_dir=pki, cert_name="vault-h1", sans='["DNS:h1.lab", "IP:127.0.0.1"]')
    rc, out = run_playbook(tmp_path, play, {"pki": ["h1"]}, check=False)
    assert rc == 0, out
    assert (pki.stat().st_mode & 0o777) == 0o700
    assert ((pki / "ca.key").stat().st_mode & 0o777) == 0o600
    assert ((pki / "vault-h1.key").stat().st_mode & 0o777) == 0o600
    verified = openssl("verify", "-CAfile", str(pki / "ca.crt"), str(pki / "vault-h1.crt"))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    text = openssl("x509", "-in", str(pki / "vault-h1.crt"), "-noout", "-text").stdout
    assert "DNS:h1.lab" in text and "IP Address:127.0.0.1" in text
    rc, out = run_playbook(tmp_path, play, {"pki": ["h1"]}, check=False)
    assert rc == 0 and "changed=0" in out, out


@pytest.mark.parametrize("cert_name, sans, message", [
    ("../escape", '["DNS:h1.lab"]', "pki_cert_name must be letters"),
    ("h1", '[]', "a non-empty list of DNS:<name> or IP:<address>"),
    ("h1", '["DNS:h1.lab\\nDNS:evil"]', "invalid: DNS:h1.lab"),
    ("h1", '["URI:https://x"]', "invalid: URI:https://x"),
])
def test_bad_names_refused_before_anything_is_made(tmp_path, cert_name, sans, message):
    pki = tmp_path / "pki"
    rc, out = run_playbook(tmp_path, PLAY.format(pki_dir=pki, cert_name=cert_name, sans=sans), {"pki": ["h1"]}, check=False)
    assert rc != 0, out
    assert message in flat(out), out
    assert not pki.exists()
