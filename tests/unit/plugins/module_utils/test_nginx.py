"""Tests of the validation tree and of the swap/restore logic."""
import os

import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import nginx as ng


def make_tree(tmp_path):
    conf = tmp_path / 'nginx.conf'
    (tmp_path / 'split').mkdir()
    (tmp_path / 'conf.d').mkdir()
    (tmp_path / 'split' / 'a.conf').write_text('# a\nupstream a { server x:1; }\n')
    (tmp_path / 'conf.d' / 'site.conf').write_text('server { include snippets.inc; }  # include nope;\n')
    (tmp_path / 'snippets.inc').write_text('location / { }\n')
    conf.write_text('events {}\nhttp {\n    include %s/split/*.conf;\n    include conf.d/*.conf;\n}\n' % tmp_path)
    return conf


def test_tree_adds_a_new_file_matched_by_glob_and_keeps_live_tree(tmp_path):
    conf = make_tree(tmp_path)
    new = str(tmp_path / 'split' / 'b.conf')
    tree = ng.ValidationTree(str(conf), {new: 'upstream b { server y:2; }\n'})
    main = tree.build()
    try:
        assert os.path.dirname(main) == str(tmp_path)  # beside the real main file
        text = open(main).read()
        included = [line.strip() for line in text.splitlines() if 'include' in line]
        copies = [part.split()[1].rstrip(';') for line in included for part in line.split('; ') if part]
        originals = [tree.copies[c] for c in copies]
        assert originals[:2] == [str(tmp_path / 'split' / 'a.conf'), new]
        assert open(copies[1]).read() == 'upstream b { server y:2; }\n'
        site_copy = [c for c in copies if tree.copies[c].endswith('site.conf')][0]
        site = open(site_copy).read()
        assert '# include nope;' in site  # comments untouched
        assert 'snippets.inc' in tree.explain(site)
        assert not os.path.exists(new)  # the live tree did not change
    finally:
        tree.cleanup()
    assert not os.path.exists(main)
    assert not os.path.exists(tree.workdir)


def test_tree_replaces_and_removes(tmp_path):
    conf = make_tree(tmp_path)
    target = str(tmp_path / 'split' / 'a.conf')
    tree = ng.ValidationTree(str(conf), {target: 'upstream a2 { server z:3; }\n'})
    tree.build()
    try:
        replaced = [c for c, o in tree.copies.items() if o == target]
        assert open(replaced[0]).read() == 'upstream a2 { server z:3; }\n'
        msg = tree.explain('nginx: [emerg] bad thing in %s:1' % replaced[0])
        assert msg == 'nginx: [emerg] bad thing in %s (new version):1' % target
    finally:
        tree.cleanup()
    tree = ng.ValidationTree(str(conf), {target: None})
    tree.build()
    try:
        assert target not in tree.copies.values()
    finally:
        tree.cleanup()


def test_tree_rejects_include_loops(tmp_path):
    conf = tmp_path / 'nginx.conf'
    conf.write_text('include nginx.conf;\n')
    tree = ng.ValidationTree(str(conf), {})
    with pytest.raises(ng.NginxError) as err:
        tree.build()
    assert 'nest deeper' in str(err.value)
    assert not os.path.exists(tree.workdir)


@pytest.mark.parametrize('text, expected', [
    ('user x;\npid /tmp/n.pid;\n', '/tmp/n.pid'),
    ('  pid "/run/x.pid" ;', '/run/x.pid'),
    ('# pid /nope;\n', '/run/nginx.pid'),
    ('', '/run/nginx.pid'),
])
def test_pid_file_of(text, expected):
    assert ng.pid_file_of(text) == expected


class FakeRun(object):
    """Records commands; nginx -t passes unless told otherwise."""

    def __init__(self, test_rc=0, reload_rc=0):
        self.calls = []
        self.test_rc = test_rc
        self.reload_rc = reload_rc

    def __call__(self, args):
        self.calls.append(list(args))
        if '-t' in args:
            return self.test_rc, '', 'nginx: [emerg] unknown directive "bogus"' if self.test_rc else ''
        return self.reload_rc, '', 'reload failed' if self.reload_rc else ''


def nginx_with(tmp_path, run, monkeypatch, workers):
    conf = make_tree(tmp_path)
    nginx = ng.Nginx(run, binary='nginx', main_conf=str(conf), reload_timeout=0.2)
    monkeypatch.setattr(nginx, 'running_master', lambda: 4242)
    sequence = iter(workers)
    monkeypatch.setattr(ng, 'worker_pids', lambda master: next(sequence))
    return nginx


def test_apply_validates_swaps_and_confirms_reload(tmp_path, monkeypatch):
    run = FakeRun()
    nginx = nginx_with(tmp_path, run, monkeypatch, [{1, 2}, {1, 2}, {3, 4}])
    target = str(tmp_path / 'split' / 'a.conf')
    result = nginx.apply({target: 'new\n'}, backup_dir=str(tmp_path))
    assert result == {'changed': True, 'reloaded': True, 'changed_files': [target]}
    assert open(target).read() == 'new\n'
    assert open(ng.backup_path(str(tmp_path), target)).read().startswith('# a')
    assert os.path.basename(ng.backup_path('/b', '/etc/nginx/conf.d/x.conf')) == 'etc_nginx_conf.d_x.conf.prev'
    assert run.calls[0][:2] == ['nginx', '-t'] and run.calls[1][-2:] == ['-s', 'reload']


def test_apply_rejected_config_changes_nothing(tmp_path, monkeypatch):
    run = FakeRun(test_rc=1)
    nginx = nginx_with(tmp_path, run, monkeypatch, [])
    target = str(tmp_path / 'split' / 'a.conf')
    with pytest.raises(ng.NginxError) as err:
        nginx.apply({target: 'bogus;\n'})
    assert 'unknown directive "bogus"' in str(err.value)
    assert open(target).read().startswith('# a')
    assert len(run.calls) == 1  # no reload


def test_apply_restores_previous_file_when_reload_does_not_take(tmp_path, monkeypatch):
    run = FakeRun()
    same = {1, 2}
    nginx = nginx_with(tmp_path, run, monkeypatch, [same] * 1000)
    new = str(tmp_path / 'split' / 'new.conf')
    target = str(tmp_path / 'split' / 'a.conf')
    with pytest.raises(ng.NginxError) as err:
        nginx.apply({target: 'changed\n', new: 'fresh\n'})
    assert 'started no new workers' in str(err.value)
    assert 'previous configuration was restored' in str(err.value)
    assert open(target).read().startswith('# a')
    assert not os.path.exists(new)


def test_apply_refuses_when_nginx_is_not_running(tmp_path, monkeypatch):
    run = FakeRun()
    nginx = nginx_with(tmp_path, run, monkeypatch, [])
    monkeypatch.setattr(nginx, 'running_master', lambda: None)
    target = str(tmp_path / 'split' / 'a.conf')
    with pytest.raises(ng.NginxError) as err:
        nginx.apply({target: 'x\n'})
    assert 'NGINX is not running' in str(err.value)
    assert run.calls == []


def test_apply_no_change_does_nothing(tmp_path, monkeypatch):
    run = FakeRun()
    nginx = nginx_with(tmp_path, run, monkeypatch, [])
    target = str(tmp_path / 'split' / 'a.conf')
    assert nginx.apply({target: open(target).read()})['changed'] is False
    assert run.calls == []


@pytest.mark.parametrize('reload, force, calls, reloaded', [
    (True, True, ['-t', '-s'], True),    # what NGINX runs may not be what is on disk: reload anyway
    (True, False, [], False),
    (False, True, [], False),            # reload=false wins
])
def test_apply_force_reload_of_unchanged_files(tmp_path, monkeypatch, reload, force, calls, reloaded):
    run = FakeRun()
    nginx = nginx_with(tmp_path, run, monkeypatch, [{1, 2}, {3, 4}])
    target = str(tmp_path / 'split' / 'a.conf')
    result = nginx.apply({target: open(target).read()}, reload=reload, force_reload=force)
    assert result == {'changed': False, 'reloaded': reloaded, 'changed_files': []}
    assert [c[1] if c[1] == '-t' else c[-2] for c in run.calls] == calls


def test_apply_force_reload_refuses_when_nginx_is_not_running(tmp_path, monkeypatch):
    nginx = nginx_with(tmp_path, FakeRun(), monkeypatch, [])
    monkeypatch.setattr(nginx, 'running_master', lambda: None)
    target = str(tmp_path / 'split' / 'a.conf')
    with pytest.raises(ng.NginxError) as err:
        nginx.apply({target: open(target).read()}, force_reload=True)
    assert 'NGINX is not running' in str(err.value)


def test_apply_check_mode_validates_only(tmp_path, monkeypatch):
    run = FakeRun()
    nginx = nginx_with(tmp_path, run, monkeypatch, [])
    target = str(tmp_path / 'split' / 'a.conf')
    assert nginx.apply({target: 'x\n'}, check_mode=True)['changed'] is True
    assert open(target).read().startswith('# a')
    assert [c[1] for c in run.calls] == ['-t']


def test_write_atomic_leaves_no_temp_files(tmp_path):
    path = str(tmp_path / 'f.conf')
    ng.write_atomic(path, 'one')
    ng.write_atomic(path, 'two', mode=0o600)
    assert open(path).read() == 'two'
    assert os.listdir(str(tmp_path)) == ['f.conf']
    assert oct(os.stat(path).st_mode & 0o777) == '0o600'
