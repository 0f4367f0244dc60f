"""The collection as users install it (scripts/test package).

Builds the tarball with ``ansible-galaxy collection build`` from a tree that
holds what a working tree holds after a lab run, and checks that

* nothing generated is packed: no ``.work`` path, no private key, no
  generated password (test_tarball_*);
* the galaxy.yml dependencies name every collection the content uses, with
  ranges the installed ansible package satisfies (test_dependencies_*);
* ``ansible-galaxy collection install --offline`` puts it into a fresh path
  (dependencies resolved against the installed ones, never Galaxy), and from
  there every module and role has an ``ansible-doc`` page and every playbook
  passes ``ansible-playbook supersmartmatch.platform.<name> --syntax-check``;
* galaxy-importer passes on the tarball without a warning;
* ``antsibull-changelog lint`` passes and CHANGELOG.rst is what
  ``antsibull-changelog generate`` makes of changelogs/;
* ``ansible-builder create`` makes the build context of
  execution-environment.yml, and introspection finds the Python and system
  requirements that meta/execution-environment.yml declares.

The tree: by default a copy of the tracked files with representative
generated files planted into it (PLANTED below: a lab CA key, TLS keys,
generated passwords, reports, virtualenvs, wheels, caches, results), so the
suite does not need a lab. With PACKAGE_SOURCE=<dir> it builds <dir> as it
is instead: the demo suite points it at the clone it ran the demo in, so the
real keys and passwords of a lab run are checked too (their values are read
from <dir>/.work).

Tools: ansible-* from PATH (the test virtualenv); galaxy-importer,
ansible-builder and antsibull-changelog from PACKAGE_VENV (default
$VENV/package, made by scripts/setup from requirements-package.txt).
"""

import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tarfile

import pytest
import yaml

from ansible.galaxy.dependency_resolution.versioning import meets_requirements

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMESPACE, NAME = 'supersmartmatch', 'platform'
FQCN = '%s.%s' % (NAMESPACE, NAME)

# Top-level (or nested) directories and files that are generated and must
# never be packed. A member whose path has one of these as a component
# prefix is a leak.
GENERATED_PREFIXES = (
    '.work/', '.venv/', '.collections/', '.ansible/', '.cache/', '.pytest_cache/', 'dist/', 'build/', 'results/',
    'benchmarks/results/', 'tests/output/',
)
GENERATED_COMPONENTS = ('.work', '.venv', '.pytest_cache', '.mypy_cache', '.ruff_cache', '.tox', '__pycache__', '.molecule')
GENERATED_SUFFIXES = ('.tar.gz', '.whl', '.pyc', '.retry', '.log', '.key', '.pem', '.p12', '.csr', '.srl')
PEM_PRIVATE = re.compile(rb'-----BEGIN [A-Z ]*PRIVATE KEY-----')


def _pem_key():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def planted_files():
    """Representative generated files of a working tree after a lab run, the
    demo, the tests and the benchmarks (path -> bytes)."""
    def password():
        return secrets.token_urlsafe(24).encode()

    return {
        '.work/pki/ca.key': _pem_key(),
        '.work/pki/ca.crt': b'-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
        '.work/pki/lb1.key': _pem_key(),
        '.work/pki-postgresql/data1.key': _pem_key(),
        '.work/secrets/postgresql_superuser': password(),
        '.work/secrets/postgresql_app': password(),
        '.work/secrets/redis_cluster': password(),
        '.work/reports/canary-2.0.0-20261129T000000Z-1.json': b'{"phase": "canary"}\n',
        '.work/reports/audit.log': b'{"phase": "canary"}\n',
        '.work/demo/site.log': b'PLAY RECAP\n',
        '.work/demo-summary.json': b'{"passed": true}\n',
        '.venv/pyvenv.cfg': b'home = /usr/bin\n',
        '.venv/package/pyvenv.cfg': b'home = /usr/bin\n',
        '.ansible/tmp/ansible-local-1/x': b'x\n',
        '.cache/molecule/platform/rollout/state.yml': b'converged: true\n',
        'molecule/rollout/.molecule/state.yml': b'converged: true\n',
        '.pytest_cache/v/cache/lastfailed': b'{}\n',
        'tests/unit/.pytest_cache/v/cache/lastfailed': b'{}\n',
        'plugins/modules/__pycache__/traffic_split.cpython-311.pyc': b'\x00pyc',
        'service/src/supersmartmatch_service.egg-info/PKG-INFO': b'Name: supersmartmatch-service\n',
        'dist/supersmartmatch_service-2.0.0-py3-none-any.whl': b'PK\x03\x04',
        'dist/collection/supersmartmatch-platform-0.0.1.tar.gz': b'\x1f\x8b',
        'supersmartmatch-platform-0.0.1.tar.gz': b'\x1f\x8b',
        'benchmarks/results/rollback.json': b'{}\n',
        'results/run.json': b'{}\n',
        'tests/output/junit/x.xml': b'<x/>\n',
    }


def secret_values(tree):
    """Every generated secret of a tree: the contents of .work/secrets/*,
    every private key under .work, and the sha256 of every file under .work
    (a copy under another name is a leak too)."""
    values, digests = set(), set()
    work = os.path.join(tree, '.work')
    for base, _dirs, files in os.walk(work):
        for name in files:
            path = os.path.join(base, name)
            if os.path.islink(path):
                continue
            with open(path, 'rb') as handle:
                data = handle.read()
            if data.strip():
                digests.add(hashlib.sha256(data).hexdigest())
            if os.path.relpath(path, work).split(os.sep)[0] == 'secrets' and data.strip():
                values.add(data.strip())
            values.update(m.group(0) for m in re.finditer(rb'-----BEGIN [A-Z ]*PRIVATE KEY-----[^-]+', data))
    return values, digests


def leaks(members, secrets_found, digests):
    """Problems in the tarball members ``(name, bytes or None)``: generated
    paths, private keys, secret values, copies of generated files."""
    problems = []
    for name, data in members:
        rel = name.split('/', 3)[-1] if name.startswith('ansible_collections/') else name
        rel = rel.lstrip('./') if rel.startswith('./') else rel
        parts = rel.split('/')
        if (any((rel + '/').startswith(prefix) for prefix in GENERATED_PREFIXES)
                or any(part in GENERATED_COMPONENTS or part.endswith('.egg-info') for part in parts)
                or rel.endswith(GENERATED_SUFFIXES)):
            problems.append('%s: a generated path' % name)
        if data is None:
            continue
        if PEM_PRIVATE.search(data):
            problems.append('%s: holds a private key' % name)
        for value in secrets_found:
            if value in data:
                problems.append('%s: holds a generated secret' % name)
                break
        if data.strip() and hashlib.sha256(data).hexdigest() in digests:
            problems.append('%s: a copy of a file under .work' % name)
    return problems


def tar_members(path):
    with tarfile.open(path, 'r:gz') as tar:
        for member in tar.getmembers():
            data = tar.extractfile(member).read() if member.isfile() else None
            yield member.name, data


def run(cmd, cwd=None, env=None, timeout=900):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, '%s failed (rc=%s)\n--- stdout\n%s\n--- stderr\n%s' % (
        ' '.join(cmd), result.returncode, result.stdout[-6000:], result.stderr[-6000:])
    return result


def clean_env(**extra):
    """The environment of a user outside this repository: no ANSIBLE_CONFIG
    (the repo's ansible.cfg would add .collections), no collections path but
    the ones given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_')}
    env.update(extra)
    return env


# --- pure helpers: they can fail ----------------------------------------------

@pytest.mark.parametrize('name, data, expected', [
    ('ansible_collections/x/y/roles/app/tasks/main.yml', b'- name: x\n', []),
    ('roles/app/tasks/main.yml', b'- name: x\n', []),
    ('.work/secrets/redis_cluster', b'x', ['.work/secrets/redis_cluster: a generated path']),
    ('tests/.pytest_cache/v', None, ['tests/.pytest_cache/v: a generated path']),
    ('service/src/x.egg-info/PKG-INFO', b'', ['service/src/x.egg-info/PKG-INFO: a generated path']),
    ('dist/a.whl', b'', ['dist/a.whl: a generated path']),
    ('docs/key.md', b'-----BEGIN EC ' b'PRIVATE KEY-----\nMHc\n', ['docs/key.md: holds a private key']),  # split: this file is packed
    ('docs/pw.md', b'the password is s3cr3t-value\n', ['docs/pw.md: holds a generated secret']),
    ('docs/copy.txt', b'{"phase": "canary"}\n', ['docs/copy.txt: a copy of a file under .work']),
])
def test_leak_scan(name, data, expected):
    digests = {hashlib.sha256(b'{"phase": "canary"}\n').hexdigest()}
    assert leaks([(name, data)], {b's3cr3t-value'}, digests) == expected


# --- the tree, the tarball, the installed collection ---------------------------

@pytest.fixture(scope='session')
def package_venv():
    venv = os.environ.get('PACKAGE_VENV') or os.path.join(os.environ.get('VENV') or os.path.join(ROOT, '.venv'), 'package')
    for tool in ('python', 'ansible-builder', 'antsibull-changelog'):
        assert os.access(os.path.join(venv, 'bin', tool), os.X_OK), (
            '%s/bin/%s is missing: scripts/setup makes that virtualenv (requirements-package.txt)' % (venv, tool))
    return venv


@pytest.fixture(scope='session')
def work(tmp_path_factory):
    return tmp_path_factory.mktemp('package')


@pytest.fixture(scope='session')
def tree(work):
    """The collection source to build (see the module docstring)."""
    given = os.environ.get('PACKAGE_SOURCE')
    if given:
        assert os.path.isfile(os.path.join(given, 'galaxy.yml')), 'PACKAGE_SOURCE=%s has no galaxy.yml' % given
        return given
    dest = str(work / 'src')
    os.makedirs(dest)
    files = subprocess.run(['git', 'ls-files', '-z'], cwd=ROOT, capture_output=True, check=True).stdout.split(b'\0')
    for rel in filter(None, (f.decode() for f in files)):
        src = os.path.join(ROOT, rel)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))
    for rel, data in planted_files().items():
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        with open(os.path.join(dest, rel), 'wb') as handle:
            handle.write(data)
    os.chmod(os.path.join(dest, '.work', 'secrets'), 0o700)
    # the symlink scripts/link-collection makes (a loop back to the root)
    link = os.path.join(dest, '.collections', 'ansible_collections', NAMESPACE, NAME)
    os.makedirs(os.path.dirname(link))
    os.symlink(os.path.join('..', '..', '..'), link)
    return dest


@pytest.fixture(scope='session')
def galaxy(tree):
    with open(os.path.join(tree, 'galaxy.yml'), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope='session')
def tarball(tree, work, galaxy):
    out = str(work / 'out')
    run(['ansible-galaxy', 'collection', 'build', '--output-path', out], cwd=tree, env=clean_env())
    path = os.path.join(out, '%s-%s-%s.tar.gz' % (NAMESPACE, NAME, galaxy['version']))
    assert os.path.isfile(path), os.listdir(out)
    return path


@pytest.fixture(scope='session')
def installed(tarball, work):
    dest = str(work / 'collections')
    run(['ansible-galaxy', 'collection', 'install', '--offline', '-p', dest, tarball], cwd=str(work),
        env=clean_env(ANSIBLE_COLLECTIONS_PATH=dest))
    path = os.path.join(dest, 'ansible_collections', NAMESPACE, NAME)
    assert os.path.isfile(os.path.join(path, 'MANIFEST.json'))
    return dest


def test_tarball_holds_nothing_generated(tree, tarball):
    members = list(tar_members(tarball))
    assert any(name == 'roles/rollout/tasks/plan.yml' for name, _data in members), 'the roles are not packed'
    found, digests = secret_values(tree)
    # the planted secrets and keys (3 passwords, 3 keys), or those of a lab
    # run (the demo's passwords and the lab CA key), are all seen
    assert len(found) >= (1 if os.environ.get('PACKAGE_SOURCE') else 6) and digests, 'no secret found under .work'
    assert leaks(members, found, digests) == []


def test_tarball_planted_files_would_be_caught(tree, tarball):
    """Every planted file, if it were packed, is reported by leaks()."""
    found, digests = secret_values(tree)
    for rel, data in planted_files().items():
        assert leaks([(rel, data)], found, digests), '%s would not be reported' % rel


# --- dependencies ---------------------------------------------------------------

def used_collections():
    """Collections named by FQCN in the content users install (roles,
    playbooks, inventories, plugins), other than ansible.builtin and this one:
    every ``ns.coll.x`` token whose ``ns.coll`` is an installed collection."""
    import ansible_collections
    roots = [p for p in ansible_collections.__path__ if os.path.isdir(p)]
    known = set()
    for root in roots:
        for ns in os.listdir(root):
            if os.path.isdir(os.path.join(root, ns)):
                known.update('%s.%s' % (ns, c) for c in os.listdir(os.path.join(root, ns))
                             if os.path.isfile(os.path.join(root, ns, c, 'MANIFEST.json')))
    found = {}
    token = re.compile(r'\b([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.[a-z_][a-z0-9_]*\b')
    for top in ('roles', 'playbooks', 'inventories', 'plugins', 'meta'):
        for base, _dirs, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if not name.endswith(('.yml', '.yaml', '.j2', '.py')):
                    continue
                path = os.path.join(base, name)
                with open(path, encoding='utf-8') as handle:
                    for match in token.finditer(handle.read()):
                        coll = match.group(1)
                        if coll in known and coll not in ('ansible.builtin', 'ansible.legacy', FQCN):
                            found.setdefault(coll, os.path.relpath(path, ROOT))
    return found


def test_dependencies_declare_every_collection_used(galaxy):
    used = used_collections()
    assert 'community.crypto' in used, 'the scan found nothing: it is broken'
    missing = {c: where for c, where in used.items() if c not in (galaxy.get('dependencies') or {})}
    assert not missing, 'used but not in galaxy.yml dependencies: %s' % missing


def test_dependencies_ranges_match_the_ansible_package(galaxy):
    import ansible_collections
    for coll, spec in sorted((galaxy.get('dependencies') or {}).items()):
        ns, name = coll.split('.')
        manifests = [os.path.join(p, ns, name, 'MANIFEST.json') for p in ansible_collections.__path__]
        manifests = [m for m in manifests if os.path.isfile(m)]
        assert manifests, '%s is declared but not installed with the ansible package' % coll
        with open(manifests[0], encoding='utf-8') as handle:
            version = json.load(handle)['collection_info']['version']
        assert meets_requirements(version, spec), '%s %s does not satisfy %s' % (coll, version, spec)
        assert '<' in spec, '%s: give an upper bound (%s)' % (coll, spec)


def test_installed_manifest_declares_the_dependencies(installed, galaxy):
    with open(os.path.join(installed, 'ansible_collections', NAMESPACE, NAME, 'MANIFEST.json'), encoding='utf-8') as handle:
        manifest = json.load(handle)
    assert manifest['collection_info']['dependencies'] == galaxy['dependencies']


# --- as users run it -------------------------------------------------------------

def _content(kind):
    if kind == 'modules':
        return sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, 'plugins', 'modules'))
                      if f.endswith('.py') and not f.startswith('_'))
    if kind == 'roles':
        return sorted(d for d in os.listdir(os.path.join(ROOT, 'roles')) if os.path.isdir(os.path.join(ROOT, 'roles', d)))
    return sorted(f[:-4] for f in os.listdir(os.path.join(ROOT, 'playbooks')) if f.endswith('.yml'))


@pytest.mark.parametrize('module', _content('modules'))
def test_ansible_doc_module(installed, work, module):
    out = run(['ansible-doc', '--json', '-t', 'module', '%s.%s' % (FQCN, module)], cwd=str(work),
              env=clean_env(ANSIBLE_COLLECTIONS_PATH=installed)).stdout
    doc = json.loads(out)['%s.%s' % (FQCN, module)]
    assert doc['doc']['short_description']
    assert doc['doc']['filename'].startswith(installed), 'documented from elsewhere: %s' % doc['doc']['filename']
    assert doc['examples'] and doc['return']


@pytest.mark.parametrize('role', _content('roles'))
def test_ansible_doc_role(installed, work, role):
    out = run(['ansible-doc', '--json', '-t', 'role', '%s.%s' % (FQCN, role)], cwd=str(work),
              env=clean_env(ANSIBLE_COLLECTIONS_PATH=installed)).stdout
    doc = json.loads(out)['%s.%s' % (FQCN, role)]
    assert doc['path'].startswith(installed), 'documented from elsewhere: %s' % doc['path']
    assert 'main' in doc['entry_points'] or role == 'rollout'
    for name, entry in doc['entry_points'].items():
        assert entry.get('short_description'), '%s entry point %s has no description' % (role, name)


@pytest.mark.parametrize('playbook', _content('playbooks'))
def test_collection_playbook_syntax(installed, work, playbook):
    inventory = os.path.join(installed, 'ansible_collections', NAMESPACE, NAME, 'inventories', 'lab')
    result = run(['ansible-playbook', '%s.%s' % (FQCN, playbook), '--syntax-check', '-i', inventory], cwd=str(work),
                 env=clean_env(ANSIBLE_COLLECTIONS_PATH=installed))
    assert 'playbook: ' + os.path.join(installed, 'ansible_collections', NAMESPACE, NAME, 'playbooks') in result.stdout


def test_collection_playbooks_listed_match_the_tree(installed):
    """The installed collection carries exactly the playbooks of playbooks/."""
    path = os.path.join(installed, 'ansible_collections', NAMESPACE, NAME, 'playbooks')
    assert sorted(f[:-4] for f in os.listdir(path) if f.endswith('.yml')) == _content('playbooks')


# --- galaxy-importer, changelog, execution environment ---------------------------

def test_galaxy_importer(package_venv, tarball, work):
    cwd = str(work / 'importer')
    os.makedirs(cwd, exist_ok=True)
    env = clean_env(GALAXY_IMPORTER_CONFIG=os.path.join(ROOT, 'tests', 'package', 'galaxy-importer.cfg'),
                    PATH=os.path.join(package_venv, 'bin') + os.pathsep + os.environ.get('PATH', ''))
    runner = os.path.join(ROOT, 'tests', 'package', 'run_importer.py')  # galaxy_importer.main, lint timeout raised
    result = run([os.path.join(package_venv, 'bin', 'python'), runner, tarball], cwd=cwd, env=env, timeout=1200)
    lines = result.stdout.splitlines()
    assert 'Importer processing completed successfully' in lines, result.stdout[-4000:]
    assert 'Linting collection via ansible-lint' in result.stdout, 'ansible-lint did not run'
    bad = [line for line in lines if line.startswith(('WARNING', 'ERROR'))]
    assert not bad, '\n'.join(bad)
    with open(os.path.join(cwd, 'importer_result.json'), encoding='utf-8') as handle:
        data = json.load(handle)
    names = {(c['content_type'], c['name']) for c in data['contents']}
    for module in _content('modules'):
        assert ('module', module) in names
    for role in _content('roles'):
        assert ('role', role) in names


def test_changelog_lint(package_venv, tree):
    result = run([os.path.join(package_venv, 'bin', 'antsibull-changelog'), 'lint'], cwd=tree)
    assert result.stdout.strip() == '' and result.stderr.strip() == ''


def test_changelog_is_generated_from_changelogs(package_venv, tree, work):
    out = str(work / 'CHANGELOG.rst')
    run([os.path.join(package_venv, 'bin', 'antsibull-changelog'), 'generate', '--output', out], cwd=tree)
    with open(out, encoding='utf-8') as handle:
        generated = handle.read()
    with open(os.path.join(tree, 'CHANGELOG.rst'), encoding='utf-8') as handle:
        committed = handle.read()
    assert committed == generated, 'CHANGELOG.rst is stale: run antsibull-changelog generate (or release)'


def test_execution_environment_context(package_venv, tree, tarball, work):
    ee = str(work / 'ee')
    os.makedirs(os.path.join(ee, 'dist', 'collection'))
    for name in ('execution-environment.yml', 'requirements.txt', 'bindep.txt'):
        shutil.copy2(os.path.join(tree, name), ee)
    shutil.copy2(tarball, os.path.join(ee, 'dist', 'collection'))
    run([os.path.join(package_venv, 'bin', 'ansible-builder'), 'create', '-f', 'execution-environment.yml',
         '-c', 'context', '--output-filename', 'Containerfile'], cwd=ee)
    with open(os.path.join(ee, 'context', 'Containerfile'), encoding='utf-8') as handle:
        containerfile = handle.read()
    with open(os.path.join(ee, 'context', '_build', 'requirements.yml'), encoding='utf-8') as handle:
        requirements = yaml.safe_load(handle)
    assert requirements['collections'][0]['type'] == 'file'
    assert os.path.isfile(os.path.join(ee, 'context', '_build', 'collection', os.path.basename(tarball)))
    assert 'ansible-galaxy collection install' in containerfile and 'COPY _build/collection/' in containerfile


def test_execution_environment_introspection(package_venv, installed):
    """What ansible-builder finds in the installed collection is what
    meta/execution-environment.yml declares."""
    out = run([os.path.join(package_venv, 'bin', 'ansible-builder'), 'introspect', '--sanitize', installed]).stdout
    data = yaml.safe_load(out.split('---', 1)[1])

    def ours(items):
        return sorted(i.split('#')[0].strip() for i in items if 'from collection %s' % FQCN in i)

    with open(os.path.join(ROOT, 'requirements.txt'), encoding='utf-8') as handle:
        wanted_py = sorted(line.split('#')[0].strip() for line in handle
                           if line.split('#')[0].strip() and not re.match(r'ansible(-core)?\W', line))
    with open(os.path.join(ROOT, 'bindep.txt'), encoding='utf-8') as handle:
        wanted_sys = sorted(line.split('#')[0].strip() for line in handle if line.split('#')[0].strip())
    assert ours(data['python']) == wanted_py
    assert ours(data['system']) == wanted_sys
    assert any(i.startswith('openssh-client') for i in wanted_sys)
