"""Crash faults against the postgresql_ha lab (Molecule scenario containers), under the write checker.

Each fault case: wait for a healthy cluster (one running leader, every other member
streaming), start tools/write_checker.py writers through the HAProxy read-write port of
the nodes the fault does not touch, inject the fault, hold it, heal it, wait until the
cluster is healthy again (bounded), stop the writers and read the final leader.

Faults: ``docker pause``/``unpause`` (a hung VM, a long GC or I/O stall), ``kill -9`` of
Patroni and PostgreSQL, an nftables partition inside the leader's container, etcd members
stopped, a frozen synchronous standby. Used by molecule/postgresql_ha/tests/
test_postgresql_ha_faults.py and benchmarks/postgresql_failover.py.

Traffic goes only to the scenario's own containers; every wait is bounded.
"""
import json
import subprocess
import time

from labwait import poll
from write_checker import WriteChecker

NODES = ['pg-node1', 'pg-node2', 'pg-node3']
RW_PORT = 5000
PATRONICTL = ['patronictl', '-c', '/etc/patroni/config.yml']
NFT_TABLE = 'pgfault'
# Replicas that acknowledge commits: one named standby, or any of the quorum (Patroni quorum commit)
SYNC_ROLES = ('Sync Standby', 'Quorum Standby')


def sh(cmd, timeout=60):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(cmd, 124, '', 'timed out after %s s' % exc.timeout)


def dexec(node, *argv, timeout=30):
    return sh(['docker', 'exec', node] + list(argv), timeout=timeout)


_ADDRESSES = {}


def address(node):
    if node not in _ADDRESSES:
        proc = sh(['docker', 'inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', node])
        if proc.returncode != 0 or not proc.stdout.strip():
            raise RuntimeError('no address for container %s: %s' % (node, proc.stderr))
        _ADDRESSES[node] = proc.stdout.strip()
    return _ADDRESSES[node]


def paused(node):
    proc = sh(['docker', 'inspect', '-f', '{{.State.Paused}}', node])
    return proc.stdout.strip() == 'true'


def members(node):
    """Patroni's view of the cluster from ``node`` (patronictl list), or [] when it cannot answer."""
    proc = dexec(node, *PATRONICTL, 'list', '-f', 'json', timeout=20)
    if proc.returncode != 0:
        return []
    try:
        return json.loads(proc.stdout)
    except ValueError:
        return []


def cluster_state(nodes=None):
    """{'leader', 'replicas', 'sync', 'timelines'} from the first node that answers, or None."""
    for node in nodes or NODES:
        if paused(node):
            continue
        listing = members(node)
        if listing:
            leaders = [m['Member'] for m in listing if m['Role'] == 'Leader' and m['State'] == 'running']
            return {
                'leaders': leaders,
                'leader': leaders[0] if len(leaders) == 1 else None,
                'streaming': sorted(m['Member'] for m in listing if m['Role'] != 'Leader' and m['State'] == 'streaming'),
                'sync': [m['Member'] for m in listing if m['Role'] in SYNC_ROLES],
                'members': {m['Member']: '%s/%s/TL%s' % (m['Role'], m['State'], m.get('TL')) for m in listing},
            }
    return None


def pg_leaders(nodes=None):
    """Nodes whose PostgreSQL is a running primary (not in recovery), asked over the local socket."""
    found = []
    for node in nodes or NODES:
        if paused(node):
            continue
        proc = dexec(node, 'runuser', '-u', 'postgres', '--', 'psql', '-XtAc', 'SELECT pg_is_in_recovery()', timeout=15)
        if proc.returncode == 0 and proc.stdout.strip() == 'f':
            found.append(node)
    return found


def healthy(nodes=None):
    """The state when there is exactly one leader and every other member streams, else None."""
    nodes = nodes or NODES
    state = cluster_state(nodes)
    if not state or not state['leader'] or len(state['members']) != len(nodes):
        return None
    if state['streaming'] != sorted(n for n in nodes if n != state['leader']):
        return None
    if pg_leaders(nodes) != [state['leader']]:
        return None
    return state


def wait_healthy(bound, nodes=None, delay=1.0):
    """The healthy state (see healthy) once there is one, or None after ``bound`` seconds."""
    return poll(lambda: healthy(nodes), bound, 'a healthy cluster', delay=delay).value


def diagnostics(nodes=None):
    out = []
    for node in nodes or NODES:
        if paused(node):
            out.append('== %s is paused' % node)
            continue
        out.append('== %s patronictl list\n%s' % (node, dexec(node, *PATRONICTL, 'list', timeout=20).stdout))
        out.append('== %s journalctl -u patroni\n%s' % (
            node, dexec(node, 'journalctl', '-u', 'patroni', '-n', '30', '--no-pager').stdout))
    return '\n'.join(out)


# Faults. Each returns nothing and raises RuntimeError when the injection itself failed.

def _check(proc, what):
    if proc.returncode != 0:
        raise RuntimeError('%s failed: %s' % (what, (proc.stderr or proc.stdout).strip()))


def pause(node):
    _check(sh(['docker', 'pause', node]), 'docker pause %s' % node)


def unpause(node):
    _check(sh(['docker', 'unpause', node]), 'docker unpause %s' % node)


def kill9(node):
    """SIGKILL to Patroni and to the postmaster (by their pids), as a crash would."""
    patroni = dexec(node, 'systemctl', 'show', '-p', 'MainPID', '--value', 'patroni.service').stdout.strip()
    postmaster = dexec(node, 'sh', '-c', 'head -n1 /var/lib/postgresql/15/patroni/postmaster.pid').stdout.strip()
    pids = [pid for pid in (patroni, postmaster) if pid.isdigit() and pid != '0']
    if len(pids) != 2:
        raise RuntimeError('kill -9 on %s: pids of Patroni and the postmaster not found (%s)' % (node, pids))
    _check(dexec(node, 'kill', '-9', *pids), 'kill -9 %s on %s' % (' '.join(pids), node))


def nft_isolate(node, peers):
    """Drop all traffic between ``node`` and its peers (PostgreSQL, Patroni, etcd, HAProxy) inside its container."""
    addresses = ', '.join(address(peer) for peer in peers)
    ruleset = ('table inet %s {\n chain input { type filter hook input priority 0; ip saddr { %s } drop; }\n'
               ' chain output { type filter hook output priority 0; ip daddr { %s } drop; }\n}\n'
               % (NFT_TABLE, addresses, addresses))
    proc = subprocess.run(['docker', 'exec', '-i', node, 'nft', '-f', '-'], input=ruleset, capture_output=True,
                          text=True, timeout=30, check=False)
    _check(proc, 'nft isolate %s' % node)


def nft_heal(node):
    _check(dexec(node, 'nft', 'delete', 'table', 'inet', NFT_TABLE), 'nft heal %s' % node)


def etcd(node, action):
    _check(dexec(node, 'systemctl', action, 'etcd.service', timeout=60), 'systemctl %s etcd on %s' % (action, node))


class Case:
    """One fault: ``inject(state)`` and ``heal(state)`` take the healthy state found before it."""

    def __init__(self, name, inject, heal, hold, target, description, quorum_loss=None):
        self.name = name
        self.inject = inject
        self.heal = heal
        self.hold = hold
        self.target = target  # 'leader', 'sync' or 'replicas': which nodes the fault touches
        self.description = description
        # seconds after the quorum is lost (inject() records when, as state['quorum_lost']) after
        # which no write may be acknowledged: Patroni's loop_wait and retry_timeout, then its demotion
        self.quorum_loss = quorum_loss


def _victim(case, state):
    if case.target == 'leader':
        return [state['leader']]
    if case.target == 'sync':
        return state['sync'][:1] or state['streaming'][:1]
    return list(state['streaming'])


def _etcd_two(state):
    first, second = state['streaming'][:2]
    etcd(first, 'stop')
    time.sleep(5)  # one member lost: the quorum (2 of 3) holds, writes go on
    etcd(second, 'stop')
    # the quorum is lost from here: systemctl returns once etcd has stopped,
    # which takes seconds of its own on a loaded machine
    state['quorum_lost'] = time.monotonic()


def _etcd_back(state):
    for node in state['streaming'][:2]:
        etcd(node, 'start')


def cases(ttl=20):
    """The fault matrix, holds relative to the leader key's TTL."""
    return {
        'freeze-short': Case('freeze-short', lambda s: pause(s['leader']), lambda s: unpause(s['leader']),
                             max(2, ttl // 2), 'leader', 'leader frozen (docker pause) for ttl/2, then resumed'),
        'freeze-long': Case('freeze-long', lambda s: pause(s['leader']), lambda s: unpause(s['leader']),
                            ttl + 15, 'leader', 'leader frozen (docker pause) for ttl + 15 s, then resumed'),
        'kill': Case('kill', lambda s: kill9(s['leader']), lambda s: None, 0, 'leader',
                     'kill -9 of Patroni and the postmaster on the leader; systemd starts Patroni again'),
        'partition': Case('partition', lambda s: nft_isolate(s['leader'], [n for n in NODES if n != s['leader']]),
                          lambda s: nft_heal(s['leader']), ttl + 15, 'leader',
                          'leader cut from its peers and etcd (nftables in its container) for ttl + 15 s'),
        'etcd-quorum': Case('etcd-quorum', _etcd_two, _etcd_back, 30, 'replicas',
                            'etcd on one replica stopped, 5 s later on the other too (no quorum) for 25 s',
                            quorum_loss=15),
        'freeze-sync-standby': Case('freeze-sync-standby', lambda s: pause(_victim_sync(s)),
                                    lambda s: unpause(_victim_sync(s)), ttl + 10, 'sync',
                                    'a synchronous (quorum) standby frozen (docker pause) for ttl + 10 s, then resumed'),
    }


def _victim_sync(state):
    return (state['sync'] or state['streaming'])[0]


def run_case(case, password, clients=6, settle=3.0, heal_bound=120.0, nodes=None, log=print):
    """Run one case under the checker; return its report (the caller asserts on it)."""
    nodes = nodes or NODES
    state = wait_healthy(heal_bound, nodes)
    if not state:
        raise RuntimeError('%s: no healthy cluster to start from\n%s' % (case.name, diagnostics(nodes)))
    touched = _victim(case, state) if case.target != 'replicas' else []
    endpoints = [(address(n), RW_PORT) for n in nodes if n not in touched]
    checker = WriteChecker(endpoints, run='%s-%d' % (case.name, time.time_ns()), password=password, clients=clients)
    checker.setup()
    checker.start()
    time.sleep(settle)
    faulted = time.monotonic()
    healed_state = None
    try:
        case.inject(state)
        time.sleep(case.hold)
    finally:
        healed = time.monotonic()
        case.heal(state)
    try:
        healed_state = wait_healthy(heal_bound, nodes)
        recovered = time.monotonic()
        time.sleep(settle)  # writes go on against the healed cluster
    finally:
        checker.stop()
    final = healed_state or cluster_state(nodes) or {}
    report = {
        'case': case.name, 'description': case.description, 'hold_s': case.hold,
        'leader_before': state['leader'], 'leader_after': final.get('leader'),
        'leaders_after': final.get('leaders'), 'members_after': final.get('members'),
        'healthy_after_heal_s': round(recovered - healed, 1) if healed_state else None,
        'first_write_after_fault_s': checker.first_ack_after(faulted),
        'quorum_lost_after_fault_s': (round(state['quorum_lost'] - faulted, 1)
                                      if 'quorum_lost' in state else None),
        'acks_during_quorum_loss': (checker.acks_between(state['quorum_lost'] + case.quorum_loss, healed)
                                    if case.quorum_loss is not None else None),
        'errors': dict(checker.errors),
    }
    if final.get('leader'):
        report.update(checker.verify(address(final['leader']), RW_PORT))
    log('%s: %s' % (case.name, json.dumps(report, sort_keys=True)))
    return report
