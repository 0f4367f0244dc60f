"""playbooks/backup.yml on local-connection balancers, without PostgreSQL.

Each load balancer (lb1, lb2) is this machine with its own split state
directory, live split directory and NGINX directory under tmp_path, the NGINX
one holding a TLS certificate and a private key. The inventory has no
`backup` group, so the pgBackRest play is skipped (and the manifest says so).
What is checked: the archives fetched to the controller and their manifest
(checksums, sizes, modes), that no private key travels, that the balancers
are left as they were, and that an unknown backup type is refused before
anything is written. The pgBackRest part is exercised by molecule/backup.
"""
import hashlib
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from ansible_run import ansible_playbook, link_collection

ROOT = Path(__file__).resolve().parents[3]
PLAYBOOK = ROOT / 'playbooks' / 'backup.yml'
SECRET = 'PRIVATE-KEY-MATERIAL-DO-NOT-SHIP'
LBS = ('lb1', 'lb2')


@pytest.fixture(autouse=True, scope='module')
def collection_link():
    link_collection()


class Fleet(object):
    """lb1 and lb2 (local), each with state/, split/ and nginx/ under tmp_path/<lb>."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.backups = tmp_path / 'backups'
        self.dirs = {}
        hosts = {}
        for lb in LBS:
            base = self.dirs[lb] = tmp_path / lb
            files = {'state/supersmartmatch.json': json.dumps({'service': 'supersmartmatch', 'lb': lb}),
                     'split/supersmartmatch.conf': '# split of %s\n' % lb,
                     'nginx/nginx.conf': 'events {}\n# %s\n' % lb,
                     'nginx/tls/server.crt': '-----BEGIN CERTIFICATE-----\n%s\n' % lb,
                     # the header split in two: this file is packed, and the package suite looks for keys
                     'nginx/tls/server.key': '-----BEGIN ' 'PRIVATE KEY-----\n%s %s\n' % (SECRET, lb)}
            for name, content in files.items():
                (base / name).parent.mkdir(parents=True, exist_ok=True)
                (base / name).write_text(content)
            # become: true stays: on a local connection as root, Ansible skips it (no sudo needed).
            hosts[lb] = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                         'rollout_state_dir': str(base / 'state'), 'rollout_split_dir': str(base / 'split'),
                         'backup_nginx_dir': str(base / 'nginx')}
        inventory = {'all': {'hosts': {'localhost': {'ansible_connection': 'local',
                                                     'ansible_python_interpreter': sys.executable}},
                             'children': {'lb': {'hosts': hosts}}}}
        (tmp_path / 'inventory.yml').write_text(json.dumps(inventory))

    def run(self, extra=None):
        extra = dict({'backup_dir': str(self.backups)}, **(extra or {}))
        (self.tmp / 'extra.json').write_text(json.dumps(extra))
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'),
                   ANSIBLE_COLLECTIONS_PATH=str(ROOT / '.collections'), ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
                   ANSIBLE_LOCAL_TEMP=str(self.tmp / 'tmp'), ANSIBLE_REMOTE_TEMP=str(self.tmp / 'tmp'))
        proc = subprocess.run([ansible_playbook(), '-i', str(self.tmp / 'inventory.yml'),
                               str(PLAYBOOK), '-e', '@%s' % (self.tmp / 'extra.json')],
                              cwd=str(self.tmp), env=env, capture_output=True, text=True, timeout=300, check=False)
        return proc.returncode, proc.stdout + proc.stderr

    def run_dir(self):
        runs = list(self.backups.iterdir())
        assert len(runs) == 1, runs
        return runs[0]

    def files(self):
        return dict((lb, sorted((str(p.relative_to(d)), p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
                                for p in d.rglob('*') if p.is_file())) for lb, d in self.dirs.items())


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def leftovers():
    """What backups leave on a balancer while they run (the archive, in /var/tmp)."""
    return set(Path('/var/tmp').glob('ssm-backup-*'))


@pytest.fixture(scope='module')
def backed_up(tmp_path_factory):
    """One successful run, shared: (fleet, run directory, manifest, (files, /var/tmp leftovers) before the run)."""
    fleet = Fleet(tmp_path_factory.mktemp('backup'))
    before = fleet.files(), leftovers()
    rc, out = fleet.run()
    assert rc == 0, out
    run = fleet.run_dir()
    return fleet, run, json.loads((run / 'manifest.json').read_text()), before


def test_the_manifest_describes_every_archive_and_everything_is_private(backed_up):
    fleet, run, manifest = backed_up[:3]
    assert manifest['id'] == run.name and manifest['type'] == 'full'
    assert manifest['postgresql'] == 'skipped: no backup group in the inventory'
    assert sorted(manifest['balancers']) == list(LBS)
    for lb in LBS:
        entry, archive = manifest['balancers'][lb], run / 'lb' / ('%s.tar.gz' % lb)
        assert entry['archive'] == 'lb/%s.tar.gz' % lb
        assert entry['sha256'] == hashlib.sha256(archive.read_bytes()).hexdigest()
        assert entry['bytes'] == archive.stat().st_size
        assert entry['paths'] == [str(fleet.dirs[lb] / d) for d in ('state', 'split', 'nginx')]
        assert mode(archive) == 0o600
    assert mode(run / 'manifest.json') == 0o600
    assert mode(run) == 0o700 and mode(run / 'lb') == 0o700


def fleet_dir(run, lb):
    """tmp_path/<lb>: the run directory is tmp_path/backups/<id>."""
    return run.parent.parent / lb


def test_each_archive_holds_its_balancers_files_and_no_private_key(backed_up):
    run = backed_up[1]
    for lb in LBS:
        with tarfile.open(str(run / 'lb' / ('%s.tar.gz' % lb))) as tar:
            # members keep their absolute paths (without the leading /): name them from the balancer's directory
            prefix = str(fleet_dir(run, lb)).lstrip('/') + '/'
            members = dict((m.name[len(prefix):] if m.name.startswith(prefix) else m.name, tar.extractfile(m).read().decode())
                           for m in tar.getmembers() if m.isfile())
        assert {'state/supersmartmatch.json', 'split/supersmartmatch.conf', 'nginx/nginx.conf',
                'nginx/tls/server.crt'} <= set(members), sorted(members)
        assert json.loads(members['state/supersmartmatch.json'])['lb'] == lb
        assert '# split of %s' % lb in members['split/supersmartmatch.conf']
        assert not [name for name in members if name.endswith('.key')], sorted(members)
        assert not [name for name, content in members.items() if SECRET in content], sorted(members)


def test_the_balancers_are_left_as_they_were_and_no_archive_stays_behind(backed_up):
    fleet, (files, tmp) = backed_up[0], backed_up[3]
    assert fleet.files() == files
    assert leftovers() <= tmp, sorted(leftovers() - tmp)


def test_an_unknown_backup_type_is_refused_by_name_and_writes_nothing(tmp_path):
    fleet = Fleet(tmp_path)
    before = fleet.files()
    rc, out = fleet.run({'backup_type': 'weekly'})
    assert rc != 0, out
    assert "backup_type must be full, diff or incr (pgBackRest's types), not 'weekly'" in out, out
    assert not fleet.backups.exists()
    assert fleet.files() == before
