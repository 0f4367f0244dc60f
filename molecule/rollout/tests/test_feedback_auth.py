"""Feedback through the balancers is authenticated (issue 9, item 5).

Forged feedback sent through both load balancers gets 401, and the value the
precision gate reads (``ssm:feedback_precision:ratio`` in the lab's
Prometheus) does not move; honest feedback (the token of the match it rates)
is taken. Changes no split and no release: it only needs the lab after
converge (site.yml), and takes about 40 s.
"""
import json
import os
import subprocess
import time
import urllib.parse

# the scenario's constants (and trafficgen on sys.path) come from the main test module
from test_rollout import CACERT, CLIENT, INVENTORY, TARGETS, trafficgen

PRECISION = 'ssm:feedback_precision:ratio'


def prom_query(expr):
    """Instant query on the lab's Prometheus (from inside mon1) -> {version: value}."""
    url = 'http://127.0.0.1:9090/api/v1/query?' + urllib.parse.urlencode({'query': expr})
    out = subprocess.run(['docker', 'exec', 'mon1', 'curl', '-sf', url], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    data = json.loads(out)
    assert data['status'] == 'success', data
    return {r['metric'].get('version', ''): float(r['value'][1]) for r in data['data']['result']}


def wait_for(what, predicate, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, 'timed out waiting for ' + what
        time.sleep(2)


def settled(expr):
    """The value of ``expr`` once two queries 6 s apart (more than a scrape) agree."""
    def same():
        first = prom_query(expr)
        time.sleep(6)
        return first if first and first == prom_query(expr) else None
    return wait_for('%s to settle' % expr, same)


def test_forged_feedback_through_the_balancers_is_401_and_the_precision_gate_is_unaffected():
    assert INVENTORY and os.path.exists(CACERT), 'run through molecule (molecule test -s rollout)'
    honest = trafficgen.run_load(TARGETS, requests=200, users=200, concurrency=4, **CLIENT)
    assert honest['failed_requests'] == 0 and honest['feedback_refused'] == 0, honest['errors']
    versions = list(honest['versions'])
    assert len(versions) == 1, versions  # the live release (site.yml: one version on every balancer)
    version = versions[0]
    assert honest['versions'][version]['feedback_status'] == {'202': 200}
    wait_for('the honest feedback in Prometheus',
             lambda: prom_query('sum by (version) (ssm_feedback_total{version="%s"}) >= 200' % version))
    before = settled('sum by (version) (ssm_feedback_total{version="%s"})' % version)
    precision = wait_for('the precision of ' + version,
                         lambda: prom_query('min by (version) (%s{version="%s"})' % (PRECISION, version)))
    assert precision[version] >= 0.94

    # An attacker failing a good release: every rating inverted, the token's signature replaced.
    forged = trafficgen.run_load(TARGETS, requests=300, users=300, concurrency=4, forge_feedback=True, **CLIENT)
    assert forged['failed_requests'] == 0, forged['errors']
    assert forged['versions'][version]['feedback_status'] == {'401': 300} and forged['feedback_refused'] == 300
    # Feedback without any token is refused too.
    client = trafficgen.Client(**CLIENT)
    case = trafficgen.build_dataset(size=1)[0]
    answer = client.post(trafficgen.Target.parse(TARGETS[0]), trafficgen.MATCH_PATH, case.match_body(), 'u-attacker')
    bare = {'candidate_id': case.candidate['id'], 'offer_id': answer.body['matches'][0]['offer_id'], 'correct': False}
    assert client.post(trafficgen.Target.parse(TARGETS[1]), trafficgen.FEEDBACK_PATH, bare, 'u-attacker').status == 401

    # Prometheus saw the refusals (so it also saw anything counted with them) ...
    wait_for('the refused feedback in Prometheus', lambda: prom_query(
        'sum by (version) (ssm_feedback_not_counted_total{version="%s",reason=~"forged|missing"}) >= 301' % version))
    time.sleep(12)  # two more evaluations of the recording rules (5 s in this scenario)
    # ... and not one of them was counted: the feedback counters and the gate's value did not move.
    after = prom_query('sum by (version) (ssm_feedback_total{version="%s"})' % version)
    assert after == before, (before, after)
    assert prom_query('min by (version) (%s{version="%s"})' % (PRECISION, version))[version] >= 0.94
