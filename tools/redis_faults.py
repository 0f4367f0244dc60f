"""A Redis Cluster primary frozen under load: what the cache loses, and what the service answers.

One run (``freeze_primary``) against a running ``datatier_lab.LocalRedisCluster`` and a
service that uses it as its match cache:

1. the cluster must be at 3 primaries + 3 replicas as every node sees it, each replica
   linked to its primary (bounded wait);
2. a ``CacheWriter`` (redis-py cluster client, 250 ms timeouts) SETs unique keys and
   records every acknowledged SET; a ``MatchLoop`` asks the service for matches, each
   answer compared with the expected one (a service without data tier computed it);
3. one primary is frozen (SIGSTOP to its redis-server, as ``docker pause`` would) for
   ``hold`` seconds while its replica's promotion is watched from the other nodes, then
   resumed (SIGCONT);
4. bounded waits: until every node reports 3 primaries + 3 replicas again, each replica
   linked to its primary, on its own (no command is sent to the cluster), and until both
   loops make progress again;
5. every acknowledged key is read back.

The report (a dict) says what Redis Cluster loses by design: replication is asynchronous,
so a SET acknowledged by a primary just before it froze and not yet on its replica is gone
after the failover. For the service the cache is only a shortcut, so such a loss costs a
recomputation, never a wrong answer. Used by benchmarks/redis_freeze.py and
tests/integration/test_service_data_tier.py.

Traffic goes to 127.0.0.1 only; the process signalled is the caller's own redis-server (by
pid). Every loop and wait is bounded (tools/labwait.py).
"""
import http.client
import os
import signal
import threading
import time

from labwait import poll, wait_for
from write_checker import longest_gap

HEAL_BOUND_S = 60.0
PROGRESS_BOUND_S = 30.0


def cluster_view(redis, port):
    """CLUSTER NODES as seen by the node on ``port``: [{id, address, primary, master, ok, slots}], or None."""
    proc = redis.cli(port, 'CLUSTER', 'NODES')
    if proc.returncode != 0 or not proc.stdout.strip():
        return None
    view = []
    for line in proc.stdout.strip().splitlines():
        fields = line.split()
        flags = fields[2].split(',')
        slots = []
        for spec in fields[8:]:
            if not spec.startswith('['):  # '[slot->-node]': a migration, not an owned slot
                first, _dash, last = spec.partition('-')
                slots.append((int(first), int(last or first)))
        view.append({'id': fields[0], 'address': fields[1].split('@')[0], 'primary': 'master' in flags,
                     'master': fields[3], 'ok': not {'fail', 'fail?'} & set(flags) and fields[7] == 'connected',
                     'slots': slots})
    return view


def split(view):
    """(primaries, replicas): sorted addresses of the nodes of ``view`` that are connected and not failing."""
    primaries = sorted(n['address'] for n in view if n['ok'] and n['primary'])
    replicas = sorted(n['address'] for n in view if n['ok'] and not n['primary'])
    return primaries, replicas


def layout(redis, ports=None):
    """(primaries, replicas) from the first node of ``ports`` (default: all) that answers."""
    for port in redis.ports if ports is None else ports:
        view = cluster_view(redis, port)
        if view is not None:
            return split(view)
    return [], []


def replica_linked(redis, port):
    """True for a primary, or for a replica whose replication link to its primary is up."""
    info = redis.cli(port, 'INFO', 'replication').stdout
    return 'role:master' in info or 'master_link_status:up' in info


def settled(redis):
    """The view of the first node if every node reports the same 3 primaries + 3 replicas and every replica
    is linked to its primary, else None.

    One node's view is not enough: a primary resumed after a failover still reports
    itself as a primary for a moment. The replication links matter too: a replica
    still at its first full sync (a cluster just created) cannot be promoted.
    """
    views = [cluster_view(redis, port) for port in redis.ports]
    if any(view is None for view in views):
        return None
    layouts = {tuple(map(tuple, split(view))) for view in views}
    if len(layouts) != 1:
        return None
    primaries, replicas = layouts.pop()
    if len(primaries) != 3 or len(replicas) != 3:
        return None
    return views[0] if all(replica_linked(redis, port) for port in redis.ports) else None


class Background:
    """A daemon thread running ``self._loop()`` until ``stop()`` (which waits for it, 30 s at most)."""

    def __init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        raise NotImplementedError

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(30)


class CacheWriter(Background):
    """SETs unique keys through a cluster client; records the acknowledged ones with their time."""

    def __init__(self, redis, run):
        from redis.cluster import ClusterNode, RedisCluster
        self.client = RedisCluster(startup_nodes=[ClusterNode('127.0.0.1', p) for p in redis.ports],
                                   password=redis.password, socket_timeout=0.25, socket_connect_timeout=0.25,
                                   cluster_error_retry_attempts=1)
        self.run = run
        self.acked = {}
        self.errors = 0
        super().__init__()

    def _loop(self):
        number = 0
        while not self._stop.is_set():
            number += 1
            key = 'freeze:%s:%d' % (self.run, number)
            try:
                if self.client.set(key, 'v', ex=600):
                    self.acked[key] = time.monotonic()
            except Exception:  # any client error: not acknowledged
                self.errors += 1
                self._stop.wait(0.05)
            self._stop.wait(0.01)

    def acked_in(self, slots, after):
        """Monotonic times of the SETs acknowledged after ``after`` for keys in ``slots`` ([(first, last)])."""
        from redis.crc import key_slot
        return sorted(t for key, t in list(self.acked.items())
                      if t > after and any(a <= key_slot(key.encode()) <= b for a, b in slots))

    def missing(self):
        return [key for key in list(self.acked) if self.client.get(key) is None]


class MatchLoop(Background):
    """Asks ``ask(payload) -> (status, answer)`` in a loop; counts correct, wrong and failed answers.

    An answer is correct when its status is 200 and it equals ``expected`` for that
    payload, ``feedback_token`` aside (see ``untokened``). ``errors`` counts requests that got no HTTP answer at all (OSError,
    HTTPException); that payload is asked again.
    """

    def __init__(self, ask, payloads, expected):
        self.ask, self.payloads, self.expected = ask, payloads, expected
        self.ok = self.wrong = self.errors = 0
        self.slowest_s = 0.0
        super().__init__()

    def _loop(self):
        i = 0
        while not self._stop.is_set():
            index = i % len(self.payloads)
            start = time.perf_counter()
            try:
                status, answer = self.ask(self.payloads[index])
            except (OSError, http.client.HTTPException):
                self.errors += 1
                self._stop.wait(0.05)
                continue
            self.slowest_s = max(self.slowest_s, time.perf_counter() - start)
            if status == 200 and untokened(answer) == untokened(self.expected[index]):
                self.ok += 1
            else:
                self.wrong += 1
            i += 1


def untokened(answer):
    """A match answer without its ``feedback_token``: every answer signs its own (its expiry, the
    answering process's key), so two correct answers to one request differ only there."""
    return {k: v for k, v in answer.items() if k != "feedback_token"} if isinstance(answer, dict) else answer


def freeze_primary(redis, ask, payloads, expected, hold=6.0, victim=0, run='run', heal_bound=HEAL_BOUND_S):
    """Freeze primary number ``victim`` (mod 3) for ``hold`` s under a cache writer and a match loop; the report.

    Raises RuntimeError if the cluster is not at 3 primaries + 3 replicas to begin with (within
    ``heal_bound`` s: a cluster just created takes a moment before every node knows its replicas).
    ``layout_restored_after_resume_s`` is None if the cluster did not settle at 3 + 3
    within ``heal_bound`` s; ``replica_promoted_after_s`` is None if the frozen primary's
    replica was not seen promoted during the freeze; ``cache_and_matches_progressed_after_s``
    (from the settled layout until a SET in the frozen primary's slots is acknowledged and
    a match answered correctly) is None if that did not happen within PROGRESS_BOUND_S.
    """
    view = poll(lambda: settled(redis), heal_bound, delay=0.25).value
    if view is None:
        raise RuntimeError('cluster not at 3 primaries + 3 replicas as seen by every node: %s %s' % layout(redis))
    primaries = sorted((n for n in view if n['ok'] and n['primary']), key=lambda n: n['address'])
    frozen_node = primaries[victim % 3]
    replica = next(n['address'] for n in view if n['master'] == frozen_node['id'])
    frozen_port = int(frozen_node['address'].rsplit(':', 1)[1])
    proc = redis.procs[redis.ports.index(frozen_port)]
    others = [p for p in redis.ports if p != frozen_port]
    writer = CacheWriter(redis, '%s-%d' % (run, time.time_ns()))
    matches = MatchLoop(ask, payloads, expected)
    writer.start()
    matches.start()
    try:
        wait_for(lambda: writer.acked and matches.ok, PROGRESS_BOUND_S,
                 'the cache writer and the match loop to make progress', delay=0.1)
        frozen = time.monotonic()
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            promoted = poll(lambda: replica in layout(redis, others)[0], hold, delay=0.25)
            time.sleep(max(0.0, frozen + hold - time.monotonic()))  # the fault lasts ``hold`` s in any case
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        healed = poll(lambda: settled(redis), heal_bound, delay=0.25)
        settled_at = time.monotonic()
        answered = matches.ok
        progressed = poll(lambda: writer.acked_in(frozen_node['slots'], settled_at) and matches.ok > answered,
                          PROGRESS_BOUND_S, delay=0.1)
    finally:
        matches.stop()
        writer.stop()
    gap = longest_gap(list(writer.acked.values()), frozen, time.monotonic())
    missing = writer.missing()
    in_slots = writer.acked_in(frozen_node['slots'], frozen)
    primaries_after, replicas_after = layout(redis)
    return {'frozen_primary': frozen_node['address'], 'its_replica': replica, 'hold_s': hold,
            'replica_promoted_after_s': round(promoted.elapsed, 2) if promoted.value else None,
            'first_cache_write_in_frozen_slots_s': round(in_slots[0] - frozen, 2) if in_slots else None,
            'layout_restored_after_resume_s': round(healed.elapsed, 2) if healed.value else None,
            'cache_and_matches_progressed_after_s': round(progressed.elapsed, 2) if progressed.value else None,
            'primaries_after': primaries_after, 'replicas_after': replicas_after,
            'cache_sets_acknowledged': len(writer.acked), 'cache_sets_lost': len(missing),
            'cache_sets_lost_keys': sorted(missing)[:20],
            'cache_set_errors': writer.errors, 'longest_cache_write_gap_s': round(gap, 2),
            'match_answers_ok': matches.ok, 'match_answers_wrong': matches.wrong,
            'match_errors': matches.errors, 'slowest_match_s': round(matches.slowest_s, 3)}


def summary_line(record):
    """One line for a person: the run's report."""
    return ('froze %s for %g s (replica promoted after %s s); cache SETs acked %d, lost %d, longest gap %.2f s; '
            'matches ok %d, wrong %d, errors %d, slowest %.3f s; 3+3 again %s s after the resume' % (
                record['frozen_primary'], record['hold_s'], record['replica_promoted_after_s'],
                record['cache_sets_acknowledged'], record['cache_sets_lost'], record['longest_cache_write_gap_s'],
                record['match_answers_ok'], record['match_answers_wrong'], record['match_errors'],
                record['slowest_match_s'], record['layout_restored_after_resume_s']))
