"""Benchmark: what the data tier costs and saves, and how fast the service recovers.

Starts a throw-away PostgreSQL 15 (TLS, scram) and a 6-node Redis Cluster on
loopback (tools/datatier_lab.py, no containers), then runs the service (a
subprocess, ``python -m supersmartmatch_service``) in each configuration and
measures, with sequential keep-alive requests to 127.0.0.1 only:

* ``POST /api/v2/match`` latency (median and p95 per run) for small (10 offers)
  and large (200 offers) requests: without data tier, with PostgreSQL only
  (one insert per match), with PostgreSQL + cache (every request a hit after
  a warm-up pass), and with the cache killed (backing off);
* the first match after the cache died (the request that discovers it);
* the first feedback after every database session was terminated (what a
  Patroni failover behind HAProxy does): reconnect + retry;
* recovery: from ``pg_ctl start`` returning until /health answers 200 again.

Each measure is repeated ``--runs`` times (default 3); prints min/median/max
over runs and writes benchmarks/results/service_data_tier.json.

    scripts/setup && .venv/bin/python benchmarks/service_data_tier.py [--runs 3] [--requests 200]

The service needs psycopg2 and redis: it runs with ``$VENV/bin/python``
(default .venv, see requirements-test.txt). Every loop is bounded.
"""
import argparse
import datetime
import http.client
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from datatier_lab import LocalPostgres, LocalRedisCluster, free_ports  # noqa: E402
from labwait import wait_for  # noqa: E402

VENV = os.environ.get("VENV", os.path.join(ROOT, ".venv"))
RESULT = os.path.join(ROOT, "benchmarks", "results", "service_data_tier.json")


def body(offers, seed):
    skills = ["python", "sql", "go", "rust", "java", "k8s", "aws", "react"]
    return {
        "candidate": {"id": f"bench-{seed}", "skills": skills[: 2 + seed % 4], "experience_years": 1 + seed % 9,
                      "location": "paris"},
        "offers": [{"id": f"o{i}", "required_skills": [skills[(i + seed) % 8], skills[(i * 3) % 8]],
                    "min_experience": i % 10, "location": ["paris", "lyon", "remote"][i % 3]}
                   for i in range(offers)],
    }


class Service:
    """The service in a subprocess on a free loopback port."""

    def __init__(self, env):
        self.port = free_ports(1)[0]
        full = {"PATH": "/usr/bin:/bin", "PYTHONPATH": os.path.join(ROOT, "service", "src"), "SSM_PORT": str(self.port),
                "SSM_BIND": "127.0.0.1", "SSM_VERSION": "9.9.0", "SSM_SLOT": "blue", **env}
        self.proc = subprocess.Popen([os.path.join(VENV, "bin", "python"), "-m", "supersmartmatch_service"],
                                     env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.conn = None
        wait_for(self._up, 20, "the service to listen")

    def _up(self):
        if self.proc.poll() is not None:
            raise SystemExit(f"service exited: {self.proc.stderr.read()}")
        try:
            return self.call("GET", "/health")[0] in (200, 503)
        except OSError:
            self.conn = None
            return False

    def call(self, method, path, payload=None):
        """One request on the kept-alive connection -> (status, seconds, decoded body).

        A kept-alive connection the server closed while idle (75 s) is reopened once, untimed.
        """
        data = None if payload is None else json.dumps(payload).encode()
        for attempt in (1, 2):
            reused = self.conn is not None
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            start = time.perf_counter()
            try:
                self.conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
                resp = self.conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if reused and attempt == 1:
                    continue
                raise
            elapsed = time.perf_counter() - start
            return resp.status, elapsed, json.loads(raw) if raw.startswith(b"{") else raw.decode()
        raise AssertionError("unreachable")

    def stop(self):
        if self.conn is not None:
            self.conn.close()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def latencies(service, payloads, requests):
    """Send ``requests`` matches cycling over ``payloads``; return the per-request seconds (all must be 200)."""
    out = []
    for i in range(requests):
        status, elapsed, answer = service.call("POST", "/api/v2/match", payloads[i % len(payloads)])
        if status != 200:
            raise SystemExit(f"match answered {status}: {answer}")
        out.append(elapsed)
    return out


def summary_ms(samples):
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered) * 1000, 3),
            "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 3)}


def spread(values):
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200, help="match requests per measure and run")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 20 or not 10 <= args.requests <= 10000:
        parser.error("--runs must be 1..20 and --requests 10..10000")

    sizes = {"small": 10, "large": 200}
    payloads = {name: [body(n, seed) for seed in range(20)] for name, n in sizes.items()}
    results = {"runs": args.runs, "requests": args.requests, "offers": sizes, "latency": {}, "events": {}}
    started = time.monotonic()
    pg = LocalPostgres()
    services = []
    try:
        def measure(label, service, rounds=args.runs):
            for size, items in payloads.items():
                per_run = [summary_ms(latencies(service, items, args.requests)) for _run in range(rounds)]
                results["latency"][f"{label}/{size}"] = {
                    "median_ms": spread([r["median_ms"] for r in per_run]),
                    "p95_ms": spread([r["p95_ms"] for r in per_run])}

        plain = Service({})
        services.append(plain)
        measure("none", plain)
        db_only = Service(pg.env())
        services.append(db_only)
        measure("database", db_only)

        redis = LocalRedisCluster()
        try:
            cached = Service({**pg.env(), **redis.env(), "SSM_CACHE_RETRY_S": "60"})
            services.append(cached)
            for items in payloads.values():
                latencies(cached, items, len(items))  # warm-up: every later request is a hit
            measure("database+cache(hit)", cached)
            redis.kill()
            status, elapsed, _answer = cached.call("POST", "/api/v2/match", payloads["small"][0])
            if status != 200:
                raise SystemExit(f"match answered {status} with the cache down")
            measure("database+cache(down)", cached)
            results["events"]["first_match_after_cache_died_ms"] = round(elapsed * 1000, 1)
        finally:
            redis.destroy()

        failover, recovery = [], []
        # the real flow: the feedback sends back the feedback_token of the match answer it rates
        status, _elapsed, answer = db_only.call("POST", "/api/v2/match", payloads["small"][0])
        if status != 200:
            raise SystemExit(f"match answered {status}: {answer}")
        feedback = {"candidate_id": answer["candidate_id"], "offer_id": answer["matches"][0]["offer_id"],
                    "correct": True, "feedback_token": answer["feedback_token"]}
        for _run in range(args.runs):
            if db_only.call("POST", "/api/v2/feedback", feedback)[0] != 202:
                raise SystemExit("feedback not stored before the session drop")
            pg.psql(pg.database, f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{pg.role}';")
            status, elapsed, answer = db_only.call("POST", "/api/v2/feedback", feedback)
            if status != 202:
                raise SystemExit(f"feedback after the session drop answered {status}: {answer}")
            failover.append(elapsed * 1000)

            pg.stop()
            wait_for(lambda: db_only.call("GET", "/health")[0] == 503, 15, "/health 503")
            pg.start()
            up = time.monotonic()
            wait_for(lambda: db_only.call("GET", "/health")[0] == 200, 30, "/health 200", delay=0.05)
            recovery.append((time.monotonic() - up) * 1000)
        results["events"]["feedback_after_sessions_dropped_ms"] = spread(failover)
        results["events"]["health_ok_after_database_restart_ms"] = spread(recovery)
    finally:
        for service in services:
            service.stop()
        pg.destroy()
    results["wall_seconds"] = round(time.monotonic() - started, 1)
    results["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")

    os.makedirs(os.path.dirname(RESULT), exist_ok=True)
    with open(RESULT, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)
    print(f"match latency, ms (min/median/max over {args.runs} runs of {args.requests} sequential keep-alive requests)")
    print(f"{'configuration/request':32} {'median':>22} {'p95':>22}")
    for label, value in results["latency"].items():
        med, p95 = value["median_ms"], value["p95_ms"]
        print(f"{label:32} {med['min']:6.3f}/{med['median']:6.3f}/{med['max']:6.3f}   "
              f"{p95['min']:6.3f}/{p95['median']:6.3f}/{p95['max']:6.3f}")
    for label, value in results["events"].items():
        print(f"{label}: {value}")
    print(f"wall time {results['wall_seconds']} s; written to {RESULT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
