"""Benchmark: what the WAF costs, and what it blocks that it should not, on loopback.

Two NGINX instances run the nginx role's own rendered configuration
(tools/edge_lab.py): one with ModSecurity v3 and the OWASP CRS (the role's
defaults: blocking, paranoia level ``--paranoia``), one with
``nginx_waf_enabled: false``. Both proxy to the same real service
(``python -m supersmartmatch_service``) over TLS, and neither rate limits (so
that only the WAF differs). The rounds alternate between them (ABAB..., the
order swapped every round), each sending the traffic generator's whole
labelled set (a match and its signed feedback per case) over kept-alive
connections, so that the time measured is NGINX's and the WAF's, not TLS
handshakes.

Reported, from the same run:

- p50 and p95 of the match requests' latency as the client sees it, with and
  without the WAF, their difference (target: p95 overhead under 2 ms) and
  their ratio;
- false positives: requests of the labelled set the WAF refused (4xx), and
  its audit log entries (a rule matched), over every round (target: 0);
- as a control that the WAF is on: an SQL injection and an XSS request, which
  must be refused (403).

    scripts/setup && python benchmarks/waf_cost.py [--rounds 6] [--paranoia 1]

Writes benchmarks/results/waf_cost.json and its section of docs/benchmarks.md.
Traffic goes only to 127.0.0.1; every loop is bounded.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile

from labtools import RESULTS, write_section

import trafficgen  # noqa: E402  (on the path set by labtools)
from edge_lab import SERVER_NAME, Client, EdgeNginx, Service, make_pki, require_tools  # noqa: E402

BEGIN, END = '<!-- waf_cost:begin -->', '<!-- waf_cost:end -->'
ATTACKS = (
    ('SQL injection', {"candidate": {"id": "c1' OR '1'='1' UNION SELECT password FROM users --",
                                     "skills": ["python"], "experience_years": 3, "location": "paris"},
                       "offers": [{"id": "o1", "required_skills": ["python"], "min_experience": 1,
                                   "location": "paris"}]}),
    ('XSS', {"candidate": {"id": "<script>alert(document.cookie)</script>", "skills": ["python"],
                           "experience_years": 3, "location": "paris"},
             "offers": [{"id": "o1", "required_skills": ["python"], "min_experience": 1, "location": "paris"}]}),
)


def one_round(edge, cafile, dataset):
    """The whole labelled set through ``edge``: (match latencies p50, p95 in ms, requests, refused)."""
    report = trafficgen.run_load([edge.url()], requests=len(dataset), dataset=dataset, cacert=cafile,
                                 host_header=SERVER_NAME, concurrency=2, keep_alive=True, users=1000)
    if report['failed_requests']:
        raise RuntimeError('requests failed through %s: %s' % (edge.url(), report['errors']))
    latency = report['versions']['1.0.0']['latency_ms']
    return latency['p50'], latency['p95'], report['total_requests'], report['client_errors']


def measure(rounds, paranoia):
    require_tools()
    work = tempfile.mkdtemp(prefix='ssm-waf-cost.')
    service = None
    edges = {}
    try:
        pki = make_pki(os.path.join(work, 'pki'))
        os.makedirs(os.path.join(work, 'service'))
        service = Service(os.path.join(work, 'service'))
        backend = '127.0.0.1:%d' % service.port
        for name, waf in (('waf', True), ('plain', False)):
            edges[name] = EdgeNginx(os.path.join(work, name), backend, pki['ec'],  # the lab's key type
                                    nginx_waf_enabled=waf, nginx_waf_paranoia_level=paranoia,
                                    nginx_rate_limit_enabled=False).start()
        client = Client(pki['ca'])
        controls = {what: client.call(edges['waf'], 'POST', '/api/v2/match', body)[0] for what, body in ATTACKS}
        controls_plain = {what: client.call(edges['plain'], 'POST', '/api/v2/match', body)[0]
                          for what, body in ATTACKS}
        dataset = trafficgen.build_dataset()
        one_round(edges['waf'], pki['ca'], dataset[:20])  # warm both (connections, caches)
        one_round(edges['plain'], pki['ca'], dataset[:20])
        audited_before = len(edges['waf'].audit_entries())
        samples = {'waf': [], 'plain': []}
        for number in range(rounds):
            order = ('waf', 'plain') if number % 2 == 0 else ('plain', 'waf')
            for name in order:
                samples[name].append(one_round(edges[name], pki['ca'], dataset))
        audited = len(edges['waf'].audit_entries()) - audited_before
    finally:
        for edge in edges.values():
            edge.stop()
        if service is not None:
            service.stop()
        shutil.rmtree(work, ignore_errors=True)
    return samples, audited, controls, controls_plain, len(dataset)


def summarize(samples, audited, controls, controls_plain, cases, paranoia):
    def med(name, index):
        return round(statistics.median(s[index] for s in samples[name]), 3)

    waf_p50, waf_p95, plain_p50, plain_p95 = med('waf', 0), med('waf', 1), med('plain', 0), med('plain', 1)
    requests = sum(s[2] for s in samples['waf'])
    refused = sum(s[3] for s in samples['waf'])
    return {
        'date': datetime.date.today().isoformat(),
        'machine': '%s (%d cores)' % (platform.node(), os.cpu_count() or 0),
        'paranoia_level': paranoia,
        'rounds': len(samples['waf']),
        'cases_per_round': cases,
        'p50_ms': {'waf': waf_p50, 'plain': plain_p50},
        'p95_ms': {'waf': waf_p95, 'plain': plain_p95},
        'overhead_ms': {'p50': round(waf_p50 - plain_p50, 3), 'p95': round(waf_p95 - plain_p95, 3)},
        'ratio': {'p50': round(waf_p50 / plain_p50, 3) if plain_p50 else None,
                  'p95': round(waf_p95 / plain_p95, 3) if plain_p95 else None},
        'rounds_ms': {name: [[s[0], s[1]] for s in samples[name]] for name in samples},
        'labelled_requests_through_waf': requests,
        'false_positives': refused,
        'audit_entries': audited,
        'attacks_refused': controls,
        'attacks_without_waf': controls_plain,
    }


def doc_lines(result):
    o, r = result['overhead_ms'], result['ratio']
    blocked = all(status == 403 for status in result['attacks_refused'].values())
    return [
        'Measured %s on %s: NGINX with the role\'s rendered configuration on loopback, the real service '
        'behind it, TLS with kept-alive connections, no rate limit; %d rounds alternating between the WAF '
        '(ModSecurity v3, OWASP CRS 3.3.4, blocking, paranoia level %d) and no WAF, each round the whole '
        'labelled set (%d cases: a match and its signed feedback each). Latency of the match requests as '
        'the client sees it, medians of the rounds.'
        % (result['date'], result['machine'], result['rounds'], result['paranoia_level'],
           result['cases_per_round']),
        '',
        '| match requests | without WAF | with WAF | overhead | ratio | target |',
        '|---|---|---|---|---|---|',
        '| p50 | %.2f ms | %.2f ms | %+.2f ms | %.2f x | |' % (
            result['p50_ms']['plain'], result['p50_ms']['waf'], o['p50'], r['p50'] or 0),
        '| p95 | %.2f ms | %.2f ms | %+.2f ms | %.2f x | overhead < 2 ms: %s |' % (
            result['p95_ms']['plain'], result['p95_ms']['waf'], o['p95'], r['p95'] or 0,
            'met' if o['p95'] < 2 else '**missed**'),
        '',
        'False positives: **%d** of %d labelled requests refused by the WAF, %d audit log entries '
        '(target 0). Control, same run: %s with the WAF (%s), %s without.'
        % (result['false_positives'], result['labelled_requests_through_waf'], result['audit_entries'],
           ', '.join('%s %s' % (what, status) for what, status in result['attacks_refused'].items()),
           'both refused' if blocked else '**not all refused**',
           ', '.join('%s %s' % (what, status) for what, status in result['attacks_without_waf'].items())),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--rounds', type=int, default=6)
    parser.add_argument('--paranoia', type=int, default=1, choices=(1, 2, 3, 4))
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error('--rounds must be at least 2 (the order alternates)')
    result = summarize(*measure(args.rounds, args.paranoia), paranoia=args.paranoia)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, 'waf_cost.json'), 'w') as handle:
        json.dump(result, handle, indent=2)
    lines = doc_lines(result)
    write_section(BEGIN, END, lines)
    print('\n'.join(lines))
    ok = (result['false_positives'] == 0 and result['audit_entries'] == 0
          and all(status == 403 for status in result['attacks_refused'].values()))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
