"""Benchmark: alert latency from fault to receiver, on the monitoring Molecule scenario.

The scenario (molecule/monitoring) runs Prometheus and Alertmanager on
mon-role1, a clean 1.0.0 (blue) and a degraded 2.0.0 (green) on mon-app1, and
the alert sink of prepare.yml on mon-app1 standing in for PagerDuty and Slack
(a real HTTP server recording when each POST arrived). Scrape and rule
evaluation every 2 s, `for` 10 s, Alertmanager group_wait 0 s and
group_interval 1 s (an alert that fires again in a group Alertmanager still
holds waits for the group_interval).

Two faults, each run --runs times:

* **stopped slot**: `systemctl stop supersmartmatch-blue` on mon-app1; the time
  goes from just before the stop (the container's clock) to the arrival of
  the PagerDuty event of SSMServiceUnavailable{slot="blue"}. The slot is
  started again and the run waits for the PagerDuty "resolve".
* **degraded release**: the degraded 2.0.0 is restarted (its counters start
  over, its precision has no data and its alert resolves), then matches and
  the client's feedback on each top offer (with the answer's feedback_token)
  are sent; the time goes from the
  first scrape that saw a wrong answer (the sample's timestamp in Prometheus)
  to the arrival of the PagerDuty event of SSMPrecisionLow{version="2.0.0"}.

Target: `for` + 2 evaluation intervals (14 s). The containers share the
host's clock, so the times compare directly.

    python benchmarks/alert_latency.py [--runs 5] [--reuse] [--keep] [--fault stopped-slot|degraded-release]

Without --reuse it creates and converges the scenario (`molecule converge -s
monitoring`, which also runs prepare), and destroys it at the end unless
--keep. Commands run in the containers with `docker exec`; traffic stays on
the scenario's network; every wait is bounded. Writes
benchmarks/results/alert_latency.json and its section of docs/benchmarks.md.
"""
import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import time

from labtools import RESULTS, VENV, run, write_section
from labwait import wait_for  # tools/, on the path set by labtools

SCENARIO = "monitoring"
APP, MON = "mon-app1", "mon-role1"
FOR_S, EVAL_S = 10, 2
TARGET_S = FOR_S + 2 * EVAL_S
RECORD = "/var/lib/ssm-alert-sink/received.jsonl"
WAIT_S = 90
BEGIN, END = "<!-- alert_latency:begin -->", "<!-- alert_latency:end -->"
MATCH = {"candidate": {"id": "c-1", "skills": ["python", "sql"], "experience_years": 5, "location": "Paris"},
         "offers": [{"id": "o-1", "required_skills": ["python"], "min_experience": 2, "location": "Paris"},
                    {"id": "o-2", "required_skills": ["java"], "min_experience": 8, "location": "Lyon"}]}


def molecule(*args):
    os.environ["PATH"] = os.path.join(VENV, "bin") + os.pathsep + os.environ.get("PATH", "")
    proc = run([os.path.join(VENV, "bin", "molecule"), *args, "-s", SCENARIO], timeout=1800)
    if proc.returncode != 0:
        raise SystemExit("molecule %s failed:\n%s" % (" ".join(args), (proc.stdout + proc.stderr)[-4000:]))


def sh(container, command):
    proc = subprocess.run(["docker", "exec", container, "sh", "-c", command], capture_output=True, text=True,
                          timeout=120, check=False)
    if proc.returncode != 0:
        raise SystemExit("%s: %s failed: %s" % (container, command, proc.stderr[-2000:]))
    return proc.stdout


def events(alertname, label, action="trigger", after=0.0):
    """PagerDuty events of ``alertname`` whose details name ``label`` (e.g. 'slot = blue'), received after ``after``."""
    found = []
    for line in sh(APP, "cat %s 2>/dev/null || true" % RECORD).splitlines():
        record = json.loads(line)
        if not record["path"].startswith("/pagerduty") or record["received"] <= after:
            continue
        body = record["body"]
        details = body["payload"]["custom_details"]
        text = details.get("firing", "") + details.get("resolved", "")
        if body["event_action"] == action and "alertname = %s" % alertname in text and label in text:
            found.append(record)
    return found


def wait(fn, what, timeout=WAIT_S):
    """fn's first truthy value, polled every 0.5 s; exit naming ``what`` after ``timeout`` s."""
    return wait_for(fn, timeout, what, delay=0.5, error=SystemExit)


def prometheus(expr):
    out = sh(MON, "curl -sfG --data-urlencode %s http://127.0.0.1:9090/api/v1/query" % shlex.quote("query=" + expr))
    return json.loads(out)["data"]["result"]


def stopped_slot():
    stopped = float(sh(APP, "date +%s.%N && systemctl stop supersmartmatch-blue.service").split()[0])
    try:
        trigger = wait(lambda: events("SSMServiceUnavailable", "slot = blue", after=stopped), "PagerDuty trigger")
    finally:
        sh(APP, "systemctl start supersmartmatch-blue.service")
    wait(lambda: events("SSMServiceUnavailable", "slot = blue", "resolve", after=stopped), "PagerDuty resolve")
    return trigger[0]["received"] - stopped


def post(port, path, body):
    return sh(APP, "curl -s -H 'Content-Type: application/json' -d %s http://127.0.0.1:%d%s"
              % (shlex.quote(json.dumps(body)), port, path))


def degraded_release():
    restarted = time.time()
    sh(APP, "systemctl restart supersmartmatch-green.service")
    # the new process has no feedback: once the earlier feedback has left the
    # precision window (5 min), no data, and the alert resolves
    wait(lambda: '"status":"ok"' in sh(APP, "curl -s http://127.0.0.1:5070/health").replace(" ", ""), "green healthy")
    if prometheus('ALERTS{alertname="SSMPrecisionLow",version="2.0.0"}'):
        wait(lambda: events("SSMPrecisionLow", "version = 2.0.0", "resolve", after=restarted), "PagerDuty resolve",
             timeout=420)
    post(5070, "/api/v2/match", MATCH)  # the request counters are born and scraped first
    time.sleep(2 * EVAL_S)
    sent = time.time()
    for _request in range(4):  # each feedback with the token of the match answer it rates
        answer = json.loads(post(5070, "/api/v2/match", MATCH))
        top = answer["matches"][0]["offer_id"]
        post(5070, "/api/v2/feedback", {"candidate_id": answer["candidate_id"], "offer_id": top,
                                        "correct": top == "o-1", "feedback_token": answer["feedback_token"]})
    trigger = wait(lambda: events("SSMPrecisionLow", "version = 2.0.0", after=sent), "PagerDuty trigger")
    samples = prometheus('ssm_feedback_total{version="2.0.0",outcome="miss"}[2m]')[0]["values"]
    seen = min(float(t) for t, v in samples if float(v) > 0 and float(t) >= sent - EVAL_S)
    return trigger[0]["received"] - seen


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="use the converged scenario as it is")
    parser.add_argument("--keep", action="store_true", help="do not destroy the scenario at the end")
    parser.add_argument("--fault", choices=["stopped-slot", "degraded-release"], action="append",
                        help="only these faults (repeatable; default both)")
    args = parser.parse_args()
    faults = [(name, fn) for name, fn in (("stopped slot", stopped_slot), ("degraded release", degraded_release))
              if not args.fault or name.replace(" ", "-") in args.fault]
    if not args.reuse:
        molecule("converge")
    try:
        results = {name: [] for name, _fn in faults}
        for index in range(1, args.runs + 1):
            for fault, measure in faults:
                latency = measure()
                results[fault].append(round(latency, 2))
                print("run %d %-16s %5.2f s (target %d s)" % (index, fault, latency, TARGET_S), flush=True)
    finally:
        if not args.reuse and not args.keep:
            molecule("destroy")
    record = {"date": datetime.date.today().isoformat(), "runs": args.runs, "for_s": FOR_S,
              "evaluation_interval_s": EVAL_S, "target_s": TARGET_S, "results": results,
              "load": os.getloadavg()[0]}
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "alert_latency.json"), "w") as handle:
        json.dump(record, handle, indent=2)
    lines = ["Measured %s on %s (2 cores, load %.0f), %d runs of each fault, scrape and evaluation every %d s, "
             "`for` %d s, group_wait 0 s." % (record["date"], os.uname().nodename, record["load"], args.runs,
                                              EVAL_S, FOR_S),
             "", "| fault | alert → receiver | min / median / max | target | within |", "|---|---|---|---|---|"]
    for fault, alert in (("stopped slot", "SSMServiceUnavailable → PagerDuty"),
                         ("degraded release", "SSMPrecisionLow → PagerDuty")):
        values = results.get(fault)
        if not values:
            continue
        lines.append("| %s | %s | %.1f / %.1f / %.1f s | %d s | %d of %d |" % (
            fault, alert, min(values), statistics.median(values), max(values), TARGET_S,
            sum(v <= TARGET_S for v in values), len(values)))
    write_section(BEGIN, END, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
