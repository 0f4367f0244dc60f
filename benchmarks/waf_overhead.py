"""Benchmark: the WAF's cost and its false positives, on a balancer.

On one running balancer container (the lab's ssm-lb1 by default, or the edge
scenario's edge-lb1 with --container), adds two loopback-only servers for the
run: 127.0.0.1:18081 with ModSecurity (the role's rules file, CRS, the same
exclusions) and 127.0.0.1:18082 with ModSecurity off, both proxying to the same
backend as the site and without rate limit, so the only difference between
them is the WAF. A client inside the container sends the traffic generator's
labelled match requests to both, alternating (one request to each in turn,
so drift affects both sides alike), and reports p50/p95 latency of each side,
their difference and ratio. The false-positive rate is every request of the
labelled set (match and feedback) sent through the WAF side: any 403 counts.
The two servers are removed and NGINX reloaded at the end.

    python benchmarks/waf_overhead.py [--container ssm-lb1] [--requests 2000]

Writes benchmarks/results/waf_overhead.json and its section of
docs/benchmarks.md. Traffic stays on the container's loopback; loops are bounded.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

from labtools import RESULTS, ROOT, write_section

BEGIN, END = '<!-- waf_overhead:begin -->', '<!-- waf_overhead:end -->'
BENCH_CONF = '/etc/nginx/conf.d/zz-waf-benchmark.conf'
WORK = '/var/tmp/waf-benchmark'  # not /tmp: a tmpfs that docker cp cannot write to
SERVERS = """\
# Temporary servers of benchmarks/waf_overhead.py (removed at the end of the run).
server {{
    listen 127.0.0.1:18081;
    access_log off;
    modsecurity on;
    location / {{ proxy_pass http://${service}_backend; proxy_http_version 1.1; proxy_set_header Connection ""; }}
}}
server {{
    listen 127.0.0.1:18082;
    access_log off;
    modsecurity off;
    location / {{ proxy_pass http://${service}_backend; proxy_http_version 1.1; proxy_set_header Connection ""; }}
}}
"""

# Runs inside the container with its python3 (the traffic generator and the
# service's scoring copied next to it).
DRIVER = r'''
import json, sys, time
sys.path[:0] = ["{work}", "{work}/src"]
import trafficgen
requests = {requests}
cases = trafficgen.build_dataset()
client = trafficgen.Client(keep_alive=True, timeout=60)
waf, plain = trafficgen.Target.parse("http://127.0.0.1:18081"), trafficgen.Target.parse("http://127.0.0.1:18082")
lat = {{"waf": [], "plain": []}}
for i in range(50):  # warm-up, both sides
    for t in (waf, plain):
        client.post(t, trafficgen.MATCH_PATH, cases[i % len(cases)].match_body(), "u%d" % i)
statuses = {{"waf": {{}}, "plain": {{}}}}
for i in range(requests):
    case = cases[i % len(cases)]
    order = ((waf, "waf"), (plain, "plain")) if i % 2 == 0 else ((plain, "plain"), (waf, "waf"))
    for target, name in order:
        resp = client.post(target, trafficgen.MATCH_PATH, case.match_body(), "u%d" % i)
        lat[name].append(resp.latency_ms)
        statuses[name][resp.status] = statuses[name].get(resp.status, 0) + 1
# false positives: the whole labelled set (the generator's real flow: match, then feedback) through the WAF
report = trafficgen.run_load(["http://127.0.0.1:18081"], requests=len(cases), users=len(cases), concurrency=2, timeout=60)
codes = {{}}
for v in report["versions"].values():
    for code, n in list(v["status"].items()) + list(v["feedback_status"].items()):
        codes[code] = codes.get(code, 0) + n
fp = {{"requests": report["total_requests"], "blocked": codes.get("403", 0),
       "other_errors": report["client_errors"] - codes.get("403", 0) + report["failed_requests"], "statuses": codes}}
print(json.dumps({{"latencies": lat, "statuses": statuses, "false_positives": fp}}))
'''


def docker(*args, check=True, **kw):
    return subprocess.run(['docker'] + list(args), capture_output=True, text=True, check=check, **kw)


def sh(container, script, check=True, timeout=120):
    return docker('exec', container, 'bash', '-c', script, check=check, timeout=timeout)


def pct(values, p):
    ordered = sorted(values)
    return ordered[max(1, -(-len(ordered) * p // 100)) - 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--container', default='ssm-lb1')
    parser.add_argument('--service', default='supersmartmatch')
    parser.add_argument('--requests', type=int, default=2000, help='match requests per side (max 20000)')
    args = parser.parse_args()
    if not 100 <= args.requests <= 20000:
        raise SystemExit('--requests must be 100..20000')
    sh(args.container, 'rm -rf %s && mkdir -p %s/src' % (WORK, WORK))
    docker('cp', os.path.join(ROOT, 'tools', 'trafficgen.py'), '%s:%s/' % (args.container, WORK))
    docker('cp', os.path.join(ROOT, 'service', 'src', 'supersmartmatch_service'), '%s:%s/src/' % (args.container, WORK))
    conf = SERVERS.format(service=args.service)
    sh(args.container, "cat > %s <<'CONF'\n%sCONF\nnginx -t -q && systemctl reload nginx" % (BENCH_CONF, conf))
    try:
        sh(args.container, 'for i in $(seq 1 50); do curl -s -o /dev/null http://127.0.0.1:18082/health && exit 0; sleep 0.2; done; exit 1')
        proc = docker('exec', '-i', args.container, 'python3', '-', check=False, timeout=1800,
                      input=DRIVER.format(work=WORK, requests=args.requests))
        if proc.returncode != 0:
            raise SystemExit('benchmark driver failed:\n' + proc.stderr[-3000:])
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        sh(args.container, 'rm -f %s && nginx -t -q && systemctl reload nginx; rm -rf %s' % (BENCH_CONF, WORK), check=False)
    waf, plain = data['latencies']['waf'], data['latencies']['plain']
    result = {
        'date': datetime.date.today().isoformat(), 'host': platform.node(), 'cpus': os.cpu_count(),
        'container': args.container, 'requests_per_side': args.requests,
        'waf': {'p50_ms': round(pct(waf, 50), 3), 'p95_ms': round(pct(waf, 95), 3)},
        'plain': {'p50_ms': round(pct(plain, 50), 3), 'p95_ms': round(pct(plain, 95), 3)},
        'statuses': data['statuses'], 'false_positives': data['false_positives'],
    }
    for p in ('p50', 'p95'):
        result['overhead_%s_ms' % p] = round(result['waf'][p + '_ms'] - result['plain'][p + '_ms'], 3)
        result['ratio_%s' % p] = round(result['waf'][p + '_ms'] / result['plain'][p + '_ms'], 3)
    fp = result['false_positives']
    result['false_positive_rate'] = fp['blocked'] / fp['requests'] if fp['requests'] else None
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, 'waf_overhead.json'), 'w') as handle:
        json.dump(result, handle, indent=2)
    lines = [
        'Measured %s on %s (%d cores), balancer container `%s`: %d labelled match requests to each side, '
        'alternating, keep-alive, one client on the container\'s loopback.' % (
            result['date'], result['host'], result['cpus'] or 0, args.container, args.requests),
        '',
        '| | with ModSecurity + CRS | without | overhead | ratio | target |',
        '|---|---|---|---|---|---|',
        '| p50 latency | %.2f ms | %.2f ms | %+.2f ms | %.2f | |' % (
            result['waf']['p50_ms'], result['plain']['p50_ms'], result['overhead_p50_ms'], result['ratio_p50']),
        '| p95 latency | %.2f ms | %.2f ms | %+.2f ms | %.2f | overhead < 2 ms |' % (
            result['waf']['p95_ms'], result['plain']['p95_ms'], result['overhead_p95_ms'], result['ratio_p95']),
        '| false positives on the labelled set (match + feedback) | %d blocked of %d (%.1f %%) | | | | 0 |' % (
            fp['blocked'], fp['requests'], 100.0 * (result['false_positive_rate'] or 0)),
    ]
    write_section(BEGIN, END, lines)
    print('\n'.join(lines))
    return 0 if fp['blocked'] == 0 and fp['other_errors'] == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
