"""playbooks/scale.yml on local-connection hosts: the paths that change no balancer.

No container and no NGINX: each load balancer is this machine with its own
state directory under tmp_path, holding a split state and the live file it
renders (so traffic_split_info sees no drift). What is checked here is the
playbook's wiring: a request it must refuse is refused by name with nothing
changed and no lease left behind, and a fleet that matches the inventory is
a run that reports no change. Adding and draining hosts, with NGINX and
traffic, is measured on the lab (benchmarks/scale.py).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_run import ansible_playbook, link_collection

from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split as ts
from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split_render as rd
from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split_state as st
from ansible_collections.supersmartmatch.platform.plugins.module_utils.locking import acquire_lease, lease_path, read_lease

ROOT = Path(__file__).resolve().parents[3]
SERVICE = 'supersmartmatch'


@pytest.fixture(autouse=True, scope='module')
def collection_link():
    link_collection()


class Fleet(object):
    """lb1 and lb2 (local, a state of app1 and app2 at 5 % each), and the app hosts given."""

    def __init__(self, tmp_path, apps=('app1', 'app2'), upstream=('app1', 'app2')):
        self.tmp = tmp_path
        self.dirs = {}
        split = ts.plan_split(dict(service=SERVICE, operation='set', percent=5, phase='canary',
                                   stable=['%s:5062' % h for h in upstream], candidate=['%s:5070' % h for h in upstream],
                                   stable_version='1.0.0', candidate_version='2.0.0', stable_color='blue',
                                   candidate_color='green', salt='2.0.0'), None)
        state = st.new_state(None, split, 'tester', 'seed')
        hosts = {}
        for lb in ('lb1', 'lb2'):
            directory = self.dirs[lb] = tmp_path / lb
            (directory / 'split').mkdir(parents=True)
            (directory / ('%s.json' % SERVICE)).write_text(st.dump_state(state))
            (directory / 'split' / ('%s.conf' % SERVICE)).write_text(rd.render_config(split, state['generation']))
            hosts[lb] = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
                         'rollout_state_dir': str(directory), 'rollout_split_dir': str(directory / 'split')}
        inventory = {'all': {'vars': {'rollout_state_dir': str(tmp_path / 'nowhere')},
                             'children': {'lb': {'hosts': hosts},
                                          'app': {'hosts': dict((h, {'ansible_connection': 'local'}) for h in apps)}}}}
        (tmp_path / 'inventory.yml').write_text(json.dumps(inventory))

    def run(self, extra=None):
        (self.tmp / 'extra.json').write_text(json.dumps(extra or {}))
        env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / 'ansible.cfg'),
                   ANSIBLE_COLLECTIONS_PATH=str(ROOT / '.collections'), ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
                   ANSIBLE_LOCAL_TEMP=str(self.tmp / 'tmp'), ANSIBLE_REMOTE_TEMP=str(self.tmp / 'tmp'))
        proc = subprocess.run([ansible_playbook(), '-i', str(self.tmp / 'inventory.yml'),
                               str(ROOT / 'playbooks' / 'scale.yml'), '-e', '@%s' % (self.tmp / 'extra.json')],
                              cwd=str(self.tmp), env=env, capture_output=True, text=True, timeout=300, check=False)
        return proc.returncode, proc.stdout + proc.stderr

    def files(self):
        return dict((lb, sorted((p.name, p.read_text()) for p in d.rglob('*') if p.is_file()))
                    for lb, d in self.dirs.items())


def flat(text):
    return ' '.join(text.split()).replace("''", "'")


def test_a_fleet_as_the_inventory_says_is_a_run_without_change(tmp_path):
    fleet = Fleet(tmp_path)
    before = fleet.files()
    rc, out = fleet.run({'scale_min_hosts': 2})
    assert rc == 0, out
    assert 'the fleet has 2 app host(s) behind the balancers, as the inventory says: nothing to do' in flat(out), out
    assert 'changed=0' in out and 'changed=1' not in out, out
    assert fleet.files() == before


@pytest.mark.parametrize('apps, upstream, extra, message', [
    (('app1', 'app2'), ('app1', 'app2'), {'scale_remove': 'app9', 'scale_min_hosts': 2},
     'scale.yml refused: scale_remove names app9, not in the app group; nothing was changed'),
    (('app1', 'app2'), ('app1', 'app2'), {'scale_remove': 'app2'},
     'scale.yml refused: the fleet would have 1 app host(s), below the minimum of 3 (scale_min_hosts)'),
    (('app1',), ('app1', 'app2'), {'scale_min_hosts': 1},
     'scale.yml refused: the upstreams hold app2, which no app host of the inventory names'),
    (('app1', 'app2', 'app3'), ('app1', 'app2'), {'scale_min_hosts': 2, 'scale_max_hosts': 2},
     'scale.yml refused: the fleet would have 3 app host(s), above the maximum of 2 (scale_max_hosts)'),
])
def test_a_request_it_cannot_meet_is_refused_by_name_and_changes_nothing(tmp_path, apps, upstream, extra, message):
    fleet = Fleet(tmp_path, apps, upstream)
    before = fleet.files()
    rc, out = fleet.run(extra)
    assert rc != 0 and message in flat(out), out
    assert 'Traceback' not in out
    assert fleet.files() == before


def test_a_phase_holding_the_lease_refuses_the_change_and_keeps_its_lease(tmp_path):
    fleet = Fleet(tmp_path, apps=('app1', 'app2', 'app3'))
    for lb in ('lb1', 'lb2'):
        acquire_lease(str(fleet.dirs[lb]), SERVICE, 'canary-2.0.0-x', 'ci@runner', 'canary', 3600)
    before = fleet.files()
    rc, out = fleet.run({'scale_min_hosts': 2})
    assert rc != 0, out
    assert ('scale.yml refused: cannot scale: lb1: a rollout holds the lease (ci@runner, phase canary); scale after '
            'it ends; lb2: a rollout holds the lease') in flat(out), out
    assert fleet.files() == before
    for lb in ('lb1', 'lb2'):
        assert read_lease(lease_path(str(fleet.dirs[lb]), SERVICE))['run_id'] == 'canary-2.0.0-x'
