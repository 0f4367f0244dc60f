"""Helpers: run a module's main() the way Ansible does; a balancer's directories."""
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split as ts
from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split_render as rd
from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split_state as st
from ansible_collections.supersmartmatch.platform.plugins.module_utils.nginx import write_atomic


def run_main(module, args, capsys):
    """Run ``module.main()`` as Ansible would; return its JSON result."""
    capsys.readouterr()
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    out = capsys.readouterr().out
    return json.loads(out)


class Dirs(object):
    def __init__(self, tmp_path):
        self.config_dir = str(tmp_path / 'split')
        self.state_dir = str(tmp_path / 'state')

    def args(self, **extra):
        args = dict(service='svc', stable=['app1:5062'], candidate=['app1:5070'], percent=5, phase='canary',
                    stable_version='1.0.0', candidate_version='2.0.0', salt='2.0.0', config_dir=self.config_dir,
                    state_dir=self.state_dir, nginx_bin='/bin/false', reload=False)
        args.update(extra)
        return args

    def snapshot(self):
        """Every file but the module lock (an empty flock file, created by the first call)."""
        files = {}
        for directory in (self.config_dir, self.state_dir):
            if os.path.isdir(directory):
                for name in os.listdir(directory):
                    if name == '.svc.module.lock':
                        continue
                    with open(os.path.join(directory, name)) as handle:
                        files[os.path.join(directory, name)] = handle.read()
        return files

    def seed(self):
        """A state at generation 2 (canary, 5 %) and its split file, as the module writes them."""
        os.makedirs(self.config_dir)
        os.makedirs(self.state_dir)
        state = None
        for params in (dict(percent=0, phase='bootstrap'), dict(percent=5, phase='canary')):
            split = ts.plan_split(dict(self.args(), operation='set', **params), state)
            state = st.new_state(state, split, 'seed@ctl', 'seed-run')
        write_atomic(os.path.join(self.state_dir, 'svc.json'), st.dump_state(state))
        write_atomic(os.path.join(self.config_dir, 'svc.conf'), rd.render_state(state))
        return state
