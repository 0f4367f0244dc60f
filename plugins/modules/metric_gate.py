#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
---
module: metric_gate
short_description: Decide whether a rollout phase may go on, from Prometheus or JSON metrics
version_added: 0.1.0
description:
  - >-
    Measures a list of O(checks) O(count) times and returns one verdict, V(passed),
    V(failed), V(inconclusive), V(error) or V(aborted), like an Argo Rollouts analysis run. The
    rollout playbooks run it during the hold of each phase (canary, extended, full).
  - >-
    With O(provider=prometheus) each check's C(query) is a PromQL instant query sent as
    C(GET <url>/api/v1/query?query=...); the value is the single sample of the instant
    vector, or the scalar. An empty vector is no data; more than one series is an
    error (C(query returned N series, expected 1)); a range vector or string is an error.
  - >-
    With O(provider=http_json) the URL is fetched (C(GET)) for each measurement and the
    check's C(query) is a JMESPath expression selecting the value in the document.
    null (missing key) and an empty list are no data; a one-element list is unwrapped;
    a longer list is an error.
  - >-
    Values are converted to numbers. Numbers and numeric strings are used as they are,
    V(true)/V(false) count as 1/0 (so C(status == 'ok') with C(min=1) checks a health
    endpoint), NaN (C("NaN") from Prometheus, C(NaN) in JSON) is B(no data), C(+Inf)/C(-Inf)
    are compared normally (and reported as null). Any other value (a non-numeric string, an
    object) is an B(error), as a bad query is.
  - >-
    B(Outcomes.) Every measurement of a check has one outcome.
    V(passed) when C(min <= value <= max) - both bounds are B(inclusive), a value equal to
    C(min) or C(max) passes; it is V(failed) when C(value < min) or C(value > max).
    With a C(baseline_query), the ratio C(value / baseline) must also satisfy
    C(min_ratio <= ratio <= max_ratio) (inclusive; a ratio within a relative 1e-9 of a bound
    counts as equal, to absorb float rounding such as C(0.09 / 0.1 = 0.8999999999999999)), e.g. candidate p95 <= 1.2 x stable p95;
    a baseline that is 0, NaN or has no data makes the measurement V(inconclusive)
    (unless C(min)/C(max) already failed it).
    No data is handled by O(on_no_data). V(error) when no measurement could be taken:
    provider unreachable, TLS failure, timeout, HTTP status >= 400, bad JSON, Prometheus
    C("status":"error") (bad query), too many series, non-numeric value.
  - >-
    B(Errors are not measurements.) A check whose measurement errors is retried after
    O(error_retry_interval) without using one of the O(count) sample slots. When one check
    errors O(consecutive_error_limit) times in a row the gate stops with the verdict
    V(error). A good (passed, failed or inconclusive) measurement of the check resets its
    count. Errors still appear in RV(measurements) with outcome V(error).
  - >-
    B(Failure.) A check fails when its failed measurements exceed O(failure_limit)
    (strictly greater: C(failed > failure_limit); with the default 0 the first failed
    measurement fails the gate). The gate then stops at once, without taking the
    remaining samples.
  - >-
    B(Verdict) is the worst over the checks, C(error > failed > inconclusive > passed):
    V(error) if a check reached O(consecutive_error_limit); else V(failed) if a check has more
    than O(failure_limit) failed measurements; else V(inconclusive) if any check has any
    inconclusive measurement (as Argo marks the run inconclusive) or was never measured
    (the gate stopped before its C(initial_delay)); else V(passed). Failed
    measurements within O(failure_limit) do not change a V(passed) verdict.
  - >-
    In classic mode (no O(resume_file)) the task fails for V(failed), V(error) and V(aborted),
    and for V(inconclusive) unless O(allow_inconclusive=true). Its message names each check at fault with its failing
    values (up to 4 significant digits) and threshold, e.g.
    C(metric gate 'canary' failed: precision 0.912, 0.93 < min 0.94 in 2 of 3 measurements).
    RV(measurements) and RV(summary) are returned in every case, failures included.
  - >-
    B(Compare checks - the Kayenta-style judge.) A check with C(kind=compare) judges the
    candidate against the stable side statistically instead of against fixed numbers, so a
    release that is 40 % slower but still under an absolute threshold is caught. Each round
    reads both series with Prometheus range queries (C(query) for the candidate,
    C(baseline_query) for the stable side; C(GET <url>/api/v1/query_range)) over the window
    from O(start_at) (else the first round) to now, at C(step) seconds (default O(interval));
    NaN points are dropped, more than one series is an error. The two samples are compared with
    a two-sided B(Mann-Whitney U test) (normal approximation with tie and continuity correction)
    and the B(Hodges-Lehmann) estimate of the shift C(candidate - stable) (the median of all
    pairwise differences) with its distribution-free confidence interval at C(confidence)
    (default 0.98). With C(direction=higher_is_worse) (the default; latency, error rate) the
    check V(failed) when the whole confidence interval lies above the tolerance
    C((max_ratio - 1) x median(stable)), that is when the candidate is, at that confidence,
    worse than C(max_ratio) x the stable side; with C(direction=lower_is_worse) (precision,
    throughput) it fails when the interval lies below C((min_ratio - 1) x median(stable)).
    Otherwise the check V(passed). Fewer than C(min_samples) (default 10) values on either side
    is V(inconclusive), never a pass. The window grows every round, so a compare check's verdict
    is its latest judgement (its first rounds, with too few samples, do not make the gate
    inconclusive); a failed judgement counts against O(failure_limit) as any failed
    measurement. The statistics are pure Python (no SciPy on the host); the unit tests check
    them against C(scipy.stats.mannwhitneyu). Range-query points are assumed independent;
    consecutive points of a C(rate()) over a window longer than the step are correlated, which
    narrows the interval: keep a tolerance (C(max_ratio) 1.1 or more) rather than 1.
  - >-
    B(Watch.) With O(watch), the gate reads a JSON file on its host (such as the
    C(traffic_split) state of the balancer, field C(generation)) before every round and at least
    every second while it waits. When the field no longer holds O(watch.expected) (C(8) and
    C("8") are the same), or the file is gone or unreadable, the gate stops at once with the
    verdict V(aborted) and RV(watch) says who moved it, e.g.
    C(metric gate 'canary': aborted, the watched state moved to generation 9 (rollback by bob@ctl at <time>)).
    V(aborted) is terminal.
  - >-
    B(Step mode.) With O(resume_file) (and O(run_key)), each call runs exactly one round and
    returns, and the next call with the same O(run_key) continues the same gate from the file
    (mode 0600, written atomically): it waits until the round is due (O(start_at),
    O(initial_delay), per-check C(initial_delay), O(interval), O(error_retry_interval), watching
    O(watch) every second), measures, saves and returns RV(finished), RV(verdict) (V(running)
    until finished), RV(round), RV(rounds_total), RV(remaining_s), RV(summary),
    RV(measurements) and RV(message). A retry of errored checks is a call of its own (RV(round)
    C(retry=true), same index). Loop on it with C(until: result.finished) so each round reaches
    the terminal as it happens. In step mode the task B(never fails because of a verdict) (only
    bad input fails it): the caller decides from RV(verdict). A finished gate stays in the file,
    marked finished: a repeat call with the same O(run_key) returns the same result, with
    RV(repeated=true), without measuring again; another O(run_key) starts a new gate, and the
    same O(run_key) with other checks or timing is refused.
  - >-
    B(Confirm - a manual gate, Flagger's confirm-promotion.) In step mode, with O(confirm), every call
    first reads the approval record O(confirm.path) on the gate's host (written by
    M(supersmartmatch.platform.rollout_approval), for example from C(playbooks/approve.yml)), then again
    every second while it waits for the round, with O(watch) (a watch that moved still wins: V(aborted)).
    When the record holds a decision (V(approved) or V(rejected)) for the run O(confirm.run_id), the call
    returns at once without measuring: RV(finished) stays false, RV(verdict) V(running), RV(round) null,
    and RV(confirm) holds the decision, who made it and when; the caller stops looping (C(until:
    result.finished or result.confirm.decided)) and decides. With O(confirm.url), each call also POSTs
    O(confirm.body) (JSON) to that approval webhook once (once per round); a 2xx answer approves, anything
    else (another status, a timeout, no answer) keeps waiting and is reported in RV(confirm). The gate's
    own verdict is never changed by a decision.
  - >-
    B(Timing.) The module waits O(initial_delay), then takes O(count) sample rounds; a
    round measures every check once (retrying errors). A round starts O(interval) seconds
    after the start of the last attempt of the previous one, so request time does not
    stretch the cadence. The run time is bounded by about
    C(initial_delay + interval x [count - 1] + errors x error_retry_interval), plus
    request time (at most O(timeout) per request); errors are at most
    C(count x checks x [consecutive_error_limit - 1] + 1). Use the task's
    C(timeout) keyword or C(async) for very long gates.
author:
  - SuperSmartMatch platform team (@supersmartmatch)
extends_documentation_fragment:
  - supersmartmatch.platform.attributes
attributes:
  check_mode:
    support: full
    details: Querying is read-only, so check mode measures and decides exactly as a normal run.
  diff_mode:
    support: none
requirements:
  - jmespath (python3-jmespath on Debian) on the target host, for O(provider=http_json).
options:
  provider:
    description: Where values come from.
    type: str
    choices: [prometheus, http_json]
    default: prometheus
  url:
    description:
      - With V(prometheus), the server base URL such as C(http://prometheus:9090)
        (C(/api/v1/query) is appended unless the URL already ends with it).
      - With V(http_json), the URL of the JSON document, such as C(http://app1:5070/health).
      - A check may override it with its own C(url).
      - Not logged (C(no_log)), as it may carry credentials. Messages name the endpoint as
        C(host:port/path), never the URL itself.
    type: str
    required: true
  checks:
    description:
      - The checks, each a dict with the keys below. Unknown keys are rejected.
      - C(name) (required, unique) names the check in messages and in RV(summary).
      - C(query) (required) is a PromQL query or a JMESPath expression.
      - C(min), C(max) are inclusive bounds on the value.
      - C(baseline_query) with C(min_ratio) and/or C(max_ratio) (>= 0) bounds
        C(value / baseline), both inclusive.
      - C(url) and C(baseline_url) (optional) override O(url) for the query and the
        baseline query (C(baseline_url) defaults to the check's C(url)).
      - C(provider) (optional) overrides O(provider) for this check, so one gate can
        combine, say, the candidate's C(/health) (V(http_json)) with Prometheus metrics;
        give such a check its own C(url).
      - C(on_no_data) (optional, V(fail), V(pass) or V(inconclusive)) overrides O(on_no_data)
        for this check, e.g. a health check that must answer (V(fail)) next to metrics that
        may not have data yet (V(inconclusive)).
      - C(initial_delay) (optional, seconds >= 0) leaves this check out of every round that
        starts less than that long after the first round, as Argo's per-metric
        C(initialDelay), so metrics that need a few scrapes after a traffic shift are
        not read as no data while the other checks measure from the first round. It must leave
        the check at least one round (C(initial_delay <= interval x [count - 1])).
      - A check needs at least one of C(min), C(max), C(min_ratio), C(max_ratio);
        C(min) must not exceed C(max). Bad input fails before any request.
      - C(kind) (optional, V(threshold) or V(compare), default V(threshold)). A V(compare) check
        (see the description) needs C(query), C(baseline_query) and, with C(direction)
        V(higher_is_worse) (default), C(max_ratio >= 1), or with V(lower_is_worse),
        C(0 < min_ratio <= 1); it takes no C(min)/C(max). Its own keys, refused on other checks, are
        C(confidence) (0.5 to < 1, default 0.98), C(min_samples) (whole number >= 3, default 10),
        C(step) (seconds between range-query points, default O(interval); required when
        O(interval) is 0), C(lookback) (seconds >= 0, default 0; the window opens that long
        before O(start_at), else the first round, for example at the traffic shift when the first
        round waits for a warm-up). A compare check's C(initial_delay) opens its window that much
        later too, leaving out, say, a new release's cold start, and counts from the window's
        opening, so the check takes part from C(initial_delay - lookback) seconds after the first
        round (from the first round when the lookback covers the delay), C(pairing) (V(unpaired), default -
        the two sides' points as two samples, Mann-Whitney U and the two-sample Hodges-Lehmann shift; or
        V(paired) - the points read at the same instants on both sides, C(candidate - max_ratio x stable) at
        each, Wilcoxon's signed-rank test and the one-sample Hodges-Lehmann interval, so load both sides
        share cancels out; C(min_samples) then counts the instants with a value on both sides), C(source)
        (V(points), default - the queries' values over the window, as C(pairing) says; or V(histogram) - the
        queries are histogram bucket selectors such as C(x_bucket{version="1.2.0"}), each round reads the answers
        each side gave over the window (one instant query at its end, the C(increase) of each bucket summed by
        C(le)), and the
        check fails when, at C(confidence), more of the candidate's answers than C(1 - quantile) lie beyond
        C(max_ratio) x the upper confidence bound of the stable side's quantile (one-sided binomial test);
        C(min_samples) then counts answers; V(histogram) needs C(direction=higher_is_worse) and no pairing) and
        C(quantile) (with V(histogram), > 0 and < 1, default 0.95). It needs O(provider=prometheus).
    type: list
    elements: dict
    required: true
  count:
    description: Number of sample rounds (>= 1).
    type: int
    default: 1
  interval:
    description: Seconds between sample rounds (>= 0, fractions allowed).
    type: float
    default: 60
  initial_delay:
    description: Seconds to wait before the first measurement (>= 0).
    type: float
    default: 0
  start_at:
    description:
      - Time (seconds since the epoch, on the clock of the host running the module) before
        which the first round is not taken; with O(initial_delay), the later of the two.
      - Anchors the gate to an event, such as the traffic shift of a canary, however long the
        task took to start (module transfer, C(async) start-up).
    type: float
  failure_limit:
    description: Failed measurements tolerated per check; the gate fails when a check has more (C(failed > failure_limit)).
    type: int
    default: 0
  consecutive_error_limit:
    description: Errors in a row of one check that end the gate with verdict V(error) (>= 1).
    type: int
    default: 4
  error_retry_interval:
    description: Seconds before a check whose measurement errored is measured again (>= 0).
    type: float
    default: 10
  on_no_data:
    description:
      - What a measurement without data (empty vector, NaN, null, missing key) counts as.
      - V(fail) counts it as failed, V(pass) as passed, V(inconclusive) as inconclusive.
    type: str
    choices: [fail, pass, inconclusive]
    default: inconclusive
  allow_inconclusive:
    description: Do not fail the task when the verdict is V(inconclusive).
    type: bool
    default: false
  timeout:
    description: Seconds allowed for each HTTP request (> 0).
    type: float
    default: 10
  headers:
    description:
      - Extra HTTP headers, such as C(Authorization).
      - Not logged (C(no_log)), so their values are masked in the task output and logs.
    type: dict
    default: {}
  validate_certs:
    description: Verify the server's TLS certificate.
    type: bool
    default: true
  ca_path:
    description: CA bundle (PEM) used to verify the server's certificate.
    type: path
  name:
    description: Name of the gate, shown in messages (for example the phase).
    type: str
  labels:
    description: Labels of the gate (service, version...), shown in messages and returned.
    type: dict
    default: {}
  watch:
    description:
      - A JSON file on the gate's host whose field must keep its value while the gate runs;
        when it moves the gate stops with V(aborted) (see the description).
    type: dict
    suboptions:
      path:
        description: Absolute path of the JSON file, such as the C(traffic_split) state of the service.
        type: path
        required: true
      field:
        description: The top-level key to compare.
        type: str
        default: generation
      expected:
        description: The value the field had when the gate was planned.
        type: raw
        required: true
  confirm:
    description:
      - Step mode only - a manual gate (Flagger's confirm-promotion, see the description) - the approval
        record to read and, optionally, an approval webhook to poll.
    type: dict
    suboptions:
      path:
        description: Absolute path of the approval record on the gate's host (M(supersmartmatch.platform.rollout_approval)).
        type: path
        required: true
      run_id:
        description: The run whose approval counts; a record naming another run is still waiting.
        type: str
        required: true
      url:
        description:
          - Approval webhook, POSTed O(confirm.body) once per call; a 2xx answer approves. Empty or absent - none.
          - Not logged (C(no_log)), as it may carry credentials; never shown in messages.
        type: str
      body:
        description: The JSON document posted to O(confirm.url) (the event - service, phase, release, run).
        type: dict
        default: {}
      timeout:
        description: Seconds allowed for the request to O(confirm.url) (> 0, at most 300).
        type: float
        default: 10
  resume_file:
    description:
      - Step mode (see the description) - the file on the gate's host that keeps the gate
        between calls (absolute path; its directory must exist). Requires O(run_key).
      - The file is the gate's own progress record, so it is written in check mode too.
    type: path
  run_key:
    description:
      - Names the gate kept in O(resume_file), such as the rollout's run id and phase. Another
        value starts a new gate. Only with O(resume_file).
    type: str
notes:
  - C(changed) is always false.
  - O(url) and O(headers) are C(no_log); credentials are never written to RV(measurements),
    RV(message) or O(resume_file).
  - Runs on the target host with the standard library (HTTP through C(ansible.module_utils.urls)).
seealso:
  - module: supersmartmatch.platform.traffic_split
  - name: Argo Rollouts analysis
    description: The model for failure_limit, consecutive_error_limit and inconclusive.
    link: https://argoproj.github.io/argo-rollouts/features/analysis/
'''

EXAMPLES = r'''
- name: Canary gate, 3 samples a minute apart
  supersmartmatch.platform.metric_gate:
    name: canary
    labels: {service: supersmartmatch, version: 2.0.0}
    url: http://prometheus:9090
    count: 3
    interval: 60
    initial_delay: 30
    checks:
      - name: precision
        query: avg(ssm_match_precision{color="green"})
        min: 0.94
      - name: error_rate
        query: sum(rate(http_requests_total{color="green",code=~"5.."}[2m])) / sum(rate(http_requests_total{color="green"}[2m]))
        max: 0.01
      - name: p95_vs_stable
        query: histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{color="green"}[5m])))
        baseline_query: histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{color="blue"}[5m])))
        max_ratio: 1.2
  register: gate

- name: Hold the canary one round per task retry, printing each round, stopping if the split moves
  supersmartmatch.platform.metric_gate:
    name: canary
    url: http://prometheus:9090
    count: 240
    interval: 30
    start_at: "{{ shift_time }}"
    resume_file: /var/lib/supersmartmatch/gate-canary.json
    run_key: "{{ run_id }}-canary"
    watch:
      path: /var/lib/supersmartmatch/traffic_split/supersmartmatch.json
      expected: "{{ planned_generation }}"
    checks:
      - name: p95_vs_stable
        kind: compare
        query: histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{color="green"}[1m])))
        baseline_query: histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{color="blue"}[1m])))
        direction: higher_is_worse
        max_ratio: 1.1
        confidence: 0.98
      # the same question on the answers themselves: the candidate's median at most 1.1 x the stable one's
      - name: p50_vs_stable
        kind: compare
        source: histogram
        quantile: 0.5
        query: http_request_duration_seconds_bucket{color="green"}
        baseline_query: http_request_duration_seconds_bucket{color="blue"}
        max_ratio: 1.1
      - name: precision
        query: avg(ssm_match_precision{color="green"})
        min: 0.94
  register: round
  until: round.finished
  retries: 300
  delay: 0

- name: Health endpoint of the candidate
  supersmartmatch.platform.metric_gate:
    provider: http_json
    url: http://app1:5070/health
    error_retry_interval: 2
    checks:
      - name: healthy
        query: "status == 'ok'"
        min: 1
      - name: up
        query: up
        min: 1
'''

RETURN = r'''
verdict:
  description:
    - V(passed), V(failed), V(inconclusive), V(error) or V(aborted) (the watched state moved).
    - In step mode V(running) until RV(finished).
  returned: always
  type: str
  sample: failed
finished:
  description: Step mode - whether the gate has its final verdict (loop with C(until) on it).
  returned: with O(resume_file)
  type: bool
  sample: false
current:
  description: Step mode - the verdict the gate would have if it ended now (V(aborted) once aborted).
  returned: with O(resume_file)
  type: str
  sample: passed
round:
  description:
    - Step mode - the round this call measured, or null when none was (aborted first, or a repeat call).
    - C(index) (1-based), C(time) (ISO 8601 UTC), C(retry) (a retry of the checks that errored in
      that round), C(results) - per check measured, C(name), C(value), C(outcome) (V(passed),
      V(failed), V(inconclusive), V(error) or V(no_data), with C(counted_as) the outcome it counted as),
      C(threshold) (text) and C(message).
  returned: with O(resume_file)
  type: dict
  sample: {"index": 3, "time": "2026-11-29T18:01:30.000+00:00", "retry": false, "results": [
           {"name": "precision", "value": 0.97, "outcome": "passed", "threshold": "value >= 0.94",
            "message": "0.97 within value >= 0.94"}]}
rounds_total:
  description: Step mode - O(count).
  returned: with O(resume_file)
  type: int
  sample: 240
remaining_s:
  description: Step mode - seconds of the hold left, until O(start_at) (else the first round) + (O(count) - 1) x O(interval); 0 when finished.
  returned: with O(resume_file)
  type: float
  sample: 7080.0
confirm:
  description:
    - With O(confirm) - C(decided) (bool) and C(decision) (V(waiting), V(approved) or V(rejected)); once decided,
      C(by), C(at), C(source) (V(approve.yml) for the record, V(webhook) for a 2xx from O(confirm.url)) and
      C(comment); C(url_status) (the webhook's last HTTP status, or null) and C(problem) (why the record or the
      webhook could not be read, without the URL).
  returned: with O(confirm)
  type: dict
  sample: {"decided": true, "decision": "approved", "by": "alice@laptop", "at": "2026-11-29T18:10:00Z",
           "source": "approve.yml", "comment": null}
repeated:
  description: Step mode - true when the gate had already finished and this call only returned its result.
  returned: with O(resume_file)
  type: bool
  sample: false
watch:
  description:
    - With O(watch) - C(changed) (whether the watched state moved) and C(value); when it moved, also
      C(updated_by), C(updated_at), C(phase), C(status) and C(operation) (of the last entry of the
      document's C(history)), or C(problem) when the file was gone or unreadable.
  returned: with O(watch)
  type: dict
  sample: {"changed": true, "value": 9, "updated_by": "bob@ctl", "updated_at": "2026-11-29T18:00:00+00:00",
           "phase": "rollback", "status": "rolled_back", "operation": "rollback"}
message:
  description: The verdict and, per check at fault, its values and threshold.
  returned: always
  type: str
  sample: "metric gate 'canary' failed: precision 0.912, 0.93 < min 0.94 in 2 of 2 measurements"
measurements:
  description:
    - Every measurement in order, errors included (outcome V(error)).
    - C(check), C(sample) (1-based round), C(time) (ISO 8601 UTC, when the query was sent),
      C(value) (float, or null for no data, errors and infinities), C(baseline) (only for
      checks with a baseline_query), C(outcome) and C(message).
    - A compare check's C(value) is the estimated ratio candidate/stable, C(baseline) the stable
      median, and C(judge) holds the sample sizes, C(u), C(p_value), C(shift), C(ci), both medians,
      C(ratio) and C(allowed_shift); with C(source=histogram), C(baseline) is the stable side's quantile and
      C(judge) holds the answers of each side, C(p_value), C(candidate_quantile), C(baseline_quantile),
      C(baseline_bound), C(limit), C(exceeding), C(expected) and C(ratio).
  returned: always
  type: list
  elements: dict
  sample: [{"check": "precision", "sample": 1, "time": "2026-11-25T10:00:00.000+00:00", "value": 0.912,
            "outcome": "failed", "message": "0.912 < min 0.94"}]
summary:
  description:
    - Per check name, the number of measurements of each outcome (C(passed), C(failed),
      C(inconclusive), C(error)), C(measurements) (good ones), C(consecutive_errors),
      C(error_limit_reached), C(last_value), C(last_baseline) (ratio checks), C(last_error)
      (if any), C(threshold) (text) and the check's own C(verdict).
  returned: always
  type: dict
  sample: {"precision": {"passed": 0, "failed": 2, "inconclusive": 0, "error": 0, "measurements": 2,
           "consecutive_errors": 0, "error_limit_reached": false, "last_value": 0.93,
           "threshold": "value >= 0.94", "verdict": "failed"}}
samples:
  description: Sample rounds started.
  returned: always
  type: int
  sample: 2
stopped_early:
  description: Whether measurements were skipped because the verdict was already decided.
  returned: always
  type: bool
  sample: true
duration:
  description: Seconds the gate took.
  returned: always
  type: float
  sample: 121.4
name:
  description: The gate's O(name).
  returned: always
  type: str
labels:
  description: The gate's O(labels).
  returned: always
  type: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.urls import open_url
from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate as mg
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_providers import make_fetch_series
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_step import run_step
from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_watch import make_watch, unchanged
from ansible_collections.supersmartmatch.platform.plugins.module_utils.rollout_approval import (
    ApprovalError, ConfirmPoller, make_post, normalize_confirm)

try:
    import jmespath
    HAS_JMESPATH = True
    JMESPATH_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the target
    jmespath = None
    HAS_JMESPATH = False
    JMESPATH_IMPORT_ERROR = exc


def argument_spec():
    return dict(
        provider=dict(type='str', default='prometheus', choices=list(mg.PROVIDERS)),
        url=dict(type='str', required=True, no_log=True),
        checks=dict(type='list', elements='dict', required=True),
        count=dict(type='int', default=1),
        interval=dict(type='float', default=60.0),
        initial_delay=dict(type='float', default=0.0),
        start_at=dict(type='float'),
        failure_limit=dict(type='int', default=0),
        consecutive_error_limit=dict(type='int', default=4),
        error_retry_interval=dict(type='float', default=10.0),
        on_no_data=dict(type='str', default='inconclusive', choices=list(mg.NO_DATA_POLICIES)),
        allow_inconclusive=dict(type='bool', default=False),
        timeout=dict(type='float', default=10.0),
        headers=dict(type='dict', default={}, no_log=True),
        validate_certs=dict(type='bool', default=True),
        ca_path=dict(type='path'),
        name=dict(type='str'),
        labels=dict(type='dict', default={}),
        watch=dict(type='dict', options=dict(
            path=dict(type='path', required=True),
            field=dict(type='str', default='generation'),
            expected=dict(type='raw', required=True),
        )),
        resume_file=dict(type='path'),
        run_key=dict(type='str', no_log=False),
        confirm=dict(type='dict', options=dict(
            path=dict(type='path', required=True),
            run_id=dict(type='str', required=True),
            url=dict(type='str', no_log=True),
            body=dict(type='dict', default={}),
            timeout=dict(type='float', default=10.0),
        )),
    )


def uses_json(params):
    return params['provider'] == 'http_json' or any(
        isinstance(c, dict) and c.get('provider') == 'http_json' for c in params['checks'] or [])


def json_search():
    """``(compile_expr, search)`` for JMESPath, compiling each expression once."""
    compiled = {}

    def compile_expr(expr):
        if expr not in compiled:
            compiled[expr] = jmespath.compile(expr)
        return compiled[expr]

    def search(expr, doc):
        return compile_expr(expr).search(doc)

    return compile_expr, search


def validate_step(params):
    """``(resume_file, run_key)`` for step mode, ``(None, None)`` for classic mode."""
    resume_file, run_key = params['resume_file'], params['run_key']
    if resume_file is None:
        if run_key is not None:
            raise mg.GateError('run_key needs resume_file (it names the gate kept in that file)')
        if params.get('confirm') is not None:
            raise mg.GateError('confirm needs step mode (resume_file and run_key): the caller decides between rounds')
        return None, None
    if not resume_file.startswith('/') or '\x00' in resume_file:
        raise mg.GateError('resume_file must be an absolute path, got %r' % resume_file)
    if not isinstance(run_key, str) or not run_key.strip():
        raise mg.GateError('resume_file needs run_key (a non-empty string naming this gate, e.g. the run id)')
    return resume_file, run_key.strip()


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    base = dict(changed=False, name=params['name'], labels=params['labels'], verdict='error',
                measurements=[], summary={}, samples=0, stopped_early=False, duration=0.0)
    title = mg.gate_title(params['name'], params['labels'])
    compile_expr = search = None
    if uses_json(params):
        if not HAS_JMESPATH:
            text = missing_required_lib('jmespath')
            module.fail_json(msg=text, message=text, exception=str(JMESPATH_IMPORT_ERROR), **base)
        compile_expr, search = json_search()
    try:
        settings = mg.validate_params(params, compile_expr)
        resume_file, run_key = validate_step(params)
        confirm = normalize_confirm(params['confirm'])
    except (mg.GateError, ApprovalError) as exc:
        text = '%s: %s' % (title, exc)
        module.fail_json(msg=text, message=text, **base)

    fetch_json = mg.make_fetch_json(open_url, timeout=settings['timeout'], headers=params['headers'],
                                    validate_certs=params['validate_certs'], ca_path=params['ca_path'])
    fetch_value = mg.make_fetch_value(settings['provider'], settings['url'], fetch_json, search)
    fetch_series = make_fetch_series(settings['url'], fetch_json)
    watch = make_watch(settings['watch'])
    message_options = dict(
        name=params['name'], labels=params['labels'], failure_limit=settings['failure_limit'],
        consecutive_error_limit=settings['consecutive_error_limit'], on_no_data=settings['on_no_data'],
        allow_inconclusive=params['allow_inconclusive'],
        watch_field=settings['watch']['field'] if settings['watch'] else 'generation')
    started = time.monotonic()
    if resume_file:
        try:
            poller = ConfirmPoller(confirm, post=make_post(open_url)) if confirm else None
            result = run_step(settings['checks'], settings, fetch_value, resume_file, run_key, title=title,
                              message_options=message_options, watch=watch, fetch_series=fetch_series,
                              confirm=poller)
        except (mg.GateError, OSError) as exc:
            text = '%s: %s' % (title, exc)
            module.fail_json(msg=text, message=text, **base)
        output = dict(base)
        output.update(result, duration=round(time.monotonic() - started, 3))
        if settings['watch'] and 'watch' not in output:
            output['watch'] = unchanged(settings['watch'])
        # step mode never fails the task because of a verdict: the caller loops until finished
        module.exit_json(**output)

    result = mg.run_gate(
        settings['checks'], fetch_value, count=settings['count'], interval=settings['interval'],
        initial_delay=settings['initial_delay'], failure_limit=settings['failure_limit'],
        consecutive_error_limit=settings['consecutive_error_limit'],
        error_retry_interval=settings['error_retry_interval'], on_no_data=settings['on_no_data'],
        start_at=settings['start_at'], watch=watch, fetch_series=fetch_series)
    message = mg.gate_message(result, settings['checks'], **message_options)
    output = dict(base)
    output.update(verdict=result['verdict'], message=message,
                  measurements=mg.public_measurements(result['measurements']), summary=result['summary'],
                  samples=result['samples'], stopped_early=result['stopped_early'],
                  duration=round(time.monotonic() - started, 3))
    if settings['watch']:
        output['watch'] = result['watch'] or unchanged(settings['watch'])
    if mg.task_failed(result['verdict'], params['allow_inconclusive']):
        module.fail_json(msg=message, **output)
    module.exit_json(**output)


if __name__ == '__main__':
    main()
