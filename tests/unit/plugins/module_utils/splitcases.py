"""Parameters of a typical traffic_split call, and a balancer's files with a fake NGINX, shared by
the traffic_split unit tests."""

import os

from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split as ts
from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split_state as st
from ansible_collections.supersmartmatch.platform.plugins.module_utils.nginx import read_text, write_atomic


def base_params(**extra):
    params = dict(service='svc', operation='set', stable=['app1:5062', 'app2:5062'],
                  candidate=['app1:5070', 'app2:5070'], percent=5, phase='canary',
                  stable_version='1.0.0', candidate_version='2.0.0', stable_color='blue',
                  candidate_color='green', salt='2.0.0', sticky_key=None, sticky_fallback=None)
    params.update(extra)
    return params


class FakeNginx(object):
    """Writes the files as Nginx.apply does (validation and reload aside) and records the calls."""

    def __init__(self):
        self.calls = []

    def apply(self, files, reload=True, check_mode=False, backup_dir=None, mode=0o644, force_reload=False):
        changed = [p for p in files if files[p] != read_text(p)]
        self.calls.append(dict(files=dict(files), reload=reload, check_mode=check_mode, force_reload=force_reload))
        if not check_mode:
            for path in changed:
                write_atomic(path, files[path], mode)
        return {'changed': bool(changed), 'reloaded': bool(reload and (changed or force_reload)) and not check_mode,
                'changed_files': changed}


class Host(object):
    """A load balancer's two directories and the calls made on it."""

    def __init__(self, tmp_path):
        self.config_dir = str(tmp_path / 'split')
        self.state_dir = str(tmp_path / 'state')
        self.config_path = os.path.join(self.config_dir, 'svc.conf')
        self.state_path = os.path.join(self.state_dir, 'svc.json')
        self.nginx = FakeNginx()

    def call(self, check_mode=False, **params):
        base = dict(service='svc', config_dir=self.config_dir, state_dir=self.state_dir, reload=True,
                    history_limit=100, run_by='tester', expected_generation=None)
        if params.get('operation', 'set') == 'set':
            base.update(base_params())
        base.update(params)
        return ts.execute(base, self.nginx, check_mode=check_mode)

    def files(self):
        return (read_text(self.config_path), read_text(self.state_path))

    def state(self):
        return st.read_json(self.state_path)
