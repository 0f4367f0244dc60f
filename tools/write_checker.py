"""Jepsen-style write checker for the PostgreSQL tier: which acknowledged writes survive a fault.

Many clients insert unique ids through one or more endpoints (the HAProxy read-write
ports of the nodes), each on its own connection. A client records an id as
*acknowledged* only when the server answered its INSERT (autocommit: the COMMIT)
without error, and as *attempted* before it sends it. After the fault and the
recovery, ``verify`` reads the ids of the run from the final leader and reports:

- acknowledged and present;
- acknowledged and missing (a durability bug: must be 0);
- unacknowledged but present (allowed: the answer was lost, not the write);
- the longest time without an acknowledged write.

Timeouts are enforced on the client side only (asynchronous libpq, select with a
deadline, then the connection is dropped). A server-side ``statement_timeout`` or a
query cancel would be wrong here: PostgreSQL answers a cancelled wait for a
synchronous standby with a WARNING and a *successful* COMMIT, so the checker would
count as acknowledged a write that is only on the old primary.

Used by molecule/postgresql_ha/tests/test_postgresql_ha_faults.py and
benchmarks/postgresql_failover.py. Traffic goes only to the endpoints given.
"""
import itertools
import select
import threading
import time

TABLE_SQL = ('CREATE TABLE IF NOT EXISTS write_check (run text NOT NULL, id bigint NOT NULL, client int NOT NULL, '
             'PRIMARY KEY (run, id))')


def longest_gap(ack_times, start, end):
    """Longest interval in [start, end] without an acknowledgement (times in seconds, any order)."""
    if end < start:
        raise ValueError('end (%r) is before start (%r)' % (end, start))
    points = [start] + sorted(t for t in ack_times if start <= t <= end) + [end]
    return max(b - a for a, b in zip(points, points[1:]))


def summarize(acked, attempted, present, start, end):
    """The checker's verdict.

    acked: {id: monotonic time of the acknowledgement}; attempted: ids sent (acknowledged or not);
    present: ids read from the final leader; start/end: monotonic bounds of the writing period.
    """
    acked_ids = set(acked)
    present = set(present)
    unexpected = present - set(attempted) - acked_ids
    if unexpected:
        raise ValueError('ids never sent are present: %s' % sorted(unexpected)[:10])
    missing = sorted(acked_ids - present)
    return {
        'attempted': len(set(attempted) | acked_ids),
        'acknowledged': len(acked_ids),
        'acknowledged_present': len(acked_ids & present),
        'acknowledged_missing': len(missing),
        'missing_ids': missing[:20],
        'unacknowledged_present': len(present - acked_ids),
        'longest_gap_s': round(longest_gap(acked.values(), start, end), 2),
    }


def _wait(conn, deadline):
    """Drive an asynchronous psycopg2 connection until ready; raise TimeoutError past the deadline."""
    import psycopg2.extensions as ext  # imported here: the pure functions above need no driver
    while True:
        state = conn.poll()
        if state == ext.POLL_OK:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError('no answer in time')
        if state == ext.POLL_READ:
            select.select([conn.fileno()], [], [], left)
        elif state == ext.POLL_WRITE:
            select.select([], [conn.fileno()], [], left)
        else:  # pragma: no cover - psycopg2 documents only the states above
            raise RuntimeError('unexpected poll state %r' % state)


class WriteChecker:
    """Writers inserting unique ids through ``endpoints`` [(host, port)], one thread and connection each."""

    def __init__(self, endpoints, run, password, clients=6, user='supersmartmatch', dbname='supersmartmatch',
                 sslmode='require', timeout=3.0, pause=0.05):
        if not endpoints:
            raise ValueError('at least one endpoint is needed')
        if clients < 1:
            raise ValueError('clients must be at least 1')
        self.endpoints = list(endpoints)
        self.run = run
        self.clients = clients
        self.timeout = timeout
        self.pause = pause
        self._conninfo = dict(user=user, dbname=dbname, sslmode=sslmode, password=password)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = []
        self.acked = {}
        self.attempted = set()
        self.errors = {}
        self.start_time = self.end_time = None

    def connect(self, host, port, deadline):
        import psycopg2
        conn = psycopg2.connect(host=host, port=port, connect_timeout=max(1, int(self.timeout)), async_=1,
                                **self._conninfo)
        try:
            _wait(conn, deadline)
        except BaseException:
            conn.close()
            raise
        return conn

    def execute(self, conn, sql, params, deadline):
        cur = conn.cursor()
        cur.execute(sql, params)
        _wait(conn, deadline)
        return cur

    def setup(self, bound=30.0):
        """Create the table through the first endpoint that answers (retried up to ``bound`` seconds)."""
        deadline = time.monotonic() + bound
        last = None
        while time.monotonic() < deadline:
            for host, port in self.endpoints:
                conn = None
                try:
                    conn = self.connect(host, port, time.monotonic() + self.timeout)
                    self.execute(conn, TABLE_SQL, None, time.monotonic() + self.timeout * 3)
                    return
                except Exception as exc:  # any driver or network error: try the next endpoint
                    last = exc
                finally:
                    if conn is not None:
                        conn.close()
            time.sleep(0.5)
        raise RuntimeError('could not create the checker table through %s: %s' % (self.endpoints, last))

    def _client(self, number):
        host, port = self.endpoints[number % len(self.endpoints)]
        conn = None
        while not self._stop.is_set():
            with self._lock:
                ident = next(self._ids)
                self.attempted.add(ident)
            try:
                if conn is None:
                    conn = self.connect(host, port, time.monotonic() + self.timeout)
                self.execute(conn, 'INSERT INTO write_check (run, id, client) VALUES (%s, %s, %s)',
                             (self.run, ident, number), time.monotonic() + self.timeout)
                with self._lock:
                    self.acked[ident] = time.monotonic()
            except Exception as exc:  # not acknowledged: drop the connection, count the error kind
                key = type(exc).__name__
                with self._lock:
                    self.errors[key] = self.errors.get(key, 0) + 1
                if conn is not None:
                    conn.close()
                    conn = None
                self._stop.wait(0.2)
            self._stop.wait(self.pause)
        if conn is not None:
            conn.close()

    def start(self):
        self.start_time = time.monotonic()
        for number in range(self.clients):
            thread = threading.Thread(target=self._client, args=(number,), name='writer-%d' % number, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout * 3 + 5)
        self.end_time = time.monotonic()

    def first_ack_after(self, moment):
        """Seconds from ``moment`` (monotonic) to the first acknowledgement after it, or None."""
        later = [t for t in self.acked.values() if t > moment]
        return round(min(later) - moment, 2) if later else None

    def acks_between(self, begin, end):
        return sum(1 for t in self.acked.values() if begin <= t <= end)

    def verify(self, host, port, bound=60.0):
        """Read the run's ids through (host, port) (the final leader's endpoint) and summarize."""
        deadline = time.monotonic() + bound
        last = None
        while time.monotonic() < deadline:
            conn = None
            try:
                conn = self.connect(host, port, time.monotonic() + self.timeout)
                cur = self.execute(conn, 'SELECT id FROM write_check WHERE run = %s', (self.run,),
                                   time.monotonic() + 30)
                present = {row[0] for row in cur.fetchall()}
                return summarize(self.acked, self.attempted, present, self.start_time, self.end_time)
            except Exception as exc:  # retried until the bound: the leader may still be settling
                last = exc
            finally:
                if conn is not None:
                    conn.close()
            time.sleep(1)
        raise RuntimeError('could not read the checker table through %s:%d: %s' % (host, port, last))
