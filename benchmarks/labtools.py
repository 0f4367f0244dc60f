"""Shared helpers of the lab benchmarks: run playbooks, set up a fresh lab, write a doc section.

The lab is the one ``scripts/lab up`` made (its topology in .work/lab/topology.json), reached over SSH
like production. The lab's shape and names come from scripts/lab's options or its LAB_* environment
variables (LAB_PREFIX, LAB_NETWORK, LAB_SUBNET, LAB_HTTPS_PORT...), so a benchmark can run on its own
lab next to another. Traffic goes only to 127.0.0.1 (the lab's published ports).
"""
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tools'))  # for trafficgen, imported by the benchmarks

VENV = os.environ.get('VENV', os.path.join(ROOT, '.venv'))
TOPOLOGY = os.path.join(ROOT, '.work', 'lab', 'topology.json')
# The default lab's balancers; lb_targets() gives those of the lab actually up.
TARGETS = ['https://127.0.0.1:8443', 'https://127.0.0.1:9443']
CLIENT = dict(cacert=os.path.join(ROOT, '.work', 'pki', 'ca.crt'), host_header='supersmartmatch.lab')
DOC = os.path.join(ROOT, 'docs', 'benchmarks.md')
RESULTS = os.path.join(ROOT, 'benchmarks', 'results')


def topology():
    """The topology of the lab scripts/lab up made last."""
    with open(TOPOLOGY) as handle:
        return json.load(handle)


def lb_targets(lab=None):
    """https://127.0.0.1:<port> of every balancer of the lab, in order."""
    lab = lab or topology()
    return ['https://127.0.0.1:%d' % port['host_port'] for host in lab['hosts'] if 'lb' in host['groups']
            for port in host['published'] if port['name'] == 'https']


def container(name, lab=None):
    """The container of lab host ``name`` (for measurements from the side, never to drive the lab)."""
    return (lab or topology())['prefix'] + name


def machine():
    """Where a benchmark ran: host name, cores, memory, load when it started."""
    with open('/proc/meminfo') as handle:
        mem_kb = int(handle.readline().split()[1])
    return '%s (%d cores, %.0f GiB, load %.1f at start)' % (
        os.uname().nodename, os.cpu_count() or 0, mem_kb / 2 ** 20, os.getloadavg()[0])


def run(cmd, **kw):
    env = kw.pop('env', None) or dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'))
    check = kw.pop('check', False)
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=check, **kw)


def playbook(name, *extra, expect_rc=0, env=None):
    """Run playbooks/<name>; return (wall seconds, output). Exit if the return code is unexpected."""
    cmd = [os.path.join(VENV, 'bin', 'ansible-playbook'), 'playbooks/%s' % name] + list(extra)
    started = time.monotonic()
    proc = run(cmd, timeout=1800, **({'env': dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, 'ansible.cfg'), **env)}
                                     if env else {}))
    elapsed = time.monotonic() - started
    output = proc.stdout + proc.stderr
    if (proc.returncode == 0) != (expect_rc == 0):
        expected = 'success' if expect_rc == 0 else 'a failure'
        raise SystemExit('%s: rc=%d, expected %s:\n%s' % (name, proc.returncode, expected, output[-4000:]))
    return elapsed, output


def build_wheels(*versions):
    for version in versions:
        run([os.path.join(VENV, 'bin', 'python'), 'tools/build_wheel.py', '--version', version, '--out', 'dist', '--force'],
            check=True)


def fresh_lab(*versions, lab_args=(), site_args=()):
    """A fresh lab (scripts/lab down, scripts/lab up ``lab_args``) provisioned with 1.0.0; wheels of ``versions`` built.

    Returns the seconds that ``up`` and site.yml took.
    """
    timings = {}
    for label, step in (('down', ['scripts/lab', 'down']), ('up', ['scripts/lab', 'up'] + list(lab_args))):
        started = time.monotonic()
        proc = run(step, timeout=1800)
        timings[label] = time.monotonic() - started
        if proc.returncode != 0:
            raise SystemExit('%s failed:\n%s' % (' '.join(step), proc.stdout[-3000:] + proc.stderr[-3000:]))
    build_wheels('1.0.0', *versions)
    timings['site'], _output = playbook('site.yml', '-e', 'ssm_initial_version=1.0.0', *site_args)
    return timings


def write_section(begin, end, lines):
    """Replace the text between the ``begin`` and ``end`` markers of docs/benchmarks.md."""
    text = open(DOC).read() if os.path.exists(DOC) else '# Benchmarks\n'
    if begin not in text:
        text = text.rstrip('\n') + '\n\n%s\n%s\n' % (begin, end)
    head, rest = text.split(begin, 1)
    tail = rest.split(end, 1)[1]
    with open(DOC, 'w') as handle:
        handle.write(head + '\n'.join([begin, ''] + lines + ['', end]) + tail)
