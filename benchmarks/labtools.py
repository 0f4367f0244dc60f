"""Shared helpers of the lab benchmarks: run playbooks, set up a fresh lab, write a doc section.

Traffic goes only to 127.0.0.1 (the lab's published ports).
"""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))  # for trafficgen, imported by the benchmarks

VENV = os.environ.get('VENV', os.path.join(ROOT, '.venv'))
TARGETS = ['https://127.0.0.1:8443', 'https://127.0.0.1:9443']
CLIENT = dict(cacert=os.path.join(ROOT, '.work', 'pki', 'ca.crt'), host_header='supersmartmatch.lab')
DOC = os.path.join(ROOT, 'docs', 'benchmarks.md')
RESULTS = os.path.join(ROOT, 'benchmarks', 'results')


def run(cmd, **kw):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'))
    check = kw.pop('check', False)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=check, **kw)


def playbook(name, *extra, expect_rc=0):
    """Run playbooks/<name>; return (wall seconds, output). Exit if the return code is unexpected
    (``expect_rc`` 0: success, another number: a failure, None: either)."""
    cmd = [os.path.join(VENV, 'bin', 'ansible-playbook'), 'playbooks/%s' % name] + list(extra)
    started = time.monotonic()
    proc = run(cmd, timeout=1800)
    elapsed = time.monotonic() - started
    output = proc.stdout + proc.stderr
    if expect_rc is not None and (proc.returncode == 0) != (expect_rc == 0):
        expected = 'success' if expect_rc == 0 else 'a failure'
        raise SystemExit('%s: rc=%d, expected %s:\n%s' % (name, proc.returncode, expected, output[-4000:]))
    return elapsed, output


def build_wheels(*versions):
    for version in versions:
        run([os.path.join(VENV, 'bin', 'python'), 'tools/build_wheel.py', '--version', version, '--out', 'dist', '--force'],
            check=True)


def fresh_lab(*versions):
    """A fresh lab (scripts/lab down/up) provisioned with 1.0.0; wheels of ``versions`` built."""
    for step in (['scripts/lab', 'down'], ['scripts/lab', 'up']):
        proc = run(step, timeout=900)
        if proc.returncode != 0:
            raise SystemExit('%s failed:\n%s' % (' '.join(step), proc.stdout[-3000:] + proc.stderr[-3000:]))
    build_wheels('1.0.0', *versions)
    playbook('site.yml', '-e', 'ssm_initial_version=1.0.0')


def prepare_lab(versions, reuse=False):
    """The lab for a benchmark: the wheels of ``versions`` built, on the lab as it is (``reuse``, the
    benchmarks' --no-setup) or on a fresh one (fresh_lab)."""
    if reuse:
        build_wheels(*versions)
    else:
        fresh_lab(*versions)


def write_section(begin, end, lines):
    """Replace the text between the ``begin`` and ``end`` markers of docs/benchmarks.md."""
    text = open(DOC).read() if os.path.exists(DOC) else '# Benchmarks\n'
    if begin not in text:
        text = text.rstrip('\n') + '\n\n%s\n%s\n' % (begin, end)
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    with open(DOC, 'w') as handle:
        handle.write(head + '\n'.join([begin, ''] + lines + ['', end]) + tail)
