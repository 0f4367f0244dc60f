"""The judge's recording rule, with `promtool test rules` on the role's rendered rule file.

ssm:latency_p95_computed:seconds and ssm:latency_mean_computed:seconds are the
p95 and the mean of the match answers a release computed itself: the overall
histogram (cache hits included) must not leak into them, and with no computed
answer in the window there is no value.
"""
from test_alert_rules import APP, BUCKETS, series, counter


def buckets(name, le_from, per_step, labels):
    """Every observation in the bucket whose upper bound is ``le_from`` (and above)."""
    index = BUCKETS.index(le_from)
    return [series(name, dict(labels, le=le), counter(per_step if position >= index else 0))
            for position, le in enumerate(BUCKETS)]


def test_p95_of_computed_answers_ignores_the_cached_ones(promtool_test, rendered):
    # all requests (mostly cache hits) under 5 ms; every computed answer between 25 and 50 ms
    inputs = (buckets("ssm_http_request_duration_seconds_bucket", "0.005", 100,
                      dict(APP, path="/api/v2/match", status="200"))
              + buckets("ssm_match_computed_duration_seconds_bucket", "0.05", 2, APP))
    labels = {"slot": APP["slot"], "version": APP["version"]}
    tests = [{"interval": "15s", "input_series": inputs, "promql_expr_test": [
        # p95 interpolated in the 25-50 ms bucket: 0.025 + 0.95 * 0.025
        {"expr": "ssm:latency_p95_computed:seconds", "eval_time": "10m",
         "exp_samples": [{"labels": 'ssm:latency_p95_computed:seconds{slot="%(slot)s",version="%(version)s"}' % labels,
                          "value": 0.04875}]},
        {"expr": "ssm:latency_p95:seconds", "eval_time": "10m",
         "exp_samples": [{"labels": 'ssm:latency_p95:seconds{slot="%(slot)s",version="%(version)s"}' % labels,
                          "value": 0.00475}]},
    ]}]
    result = promtool_test([rendered("recording.rules.yml.j2", "recording.yml")], tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mean_of_computed_answers_ignores_the_cached_ones(promtool_test, rendered):
    # cache hits: 100 per step at 1 ms on the overall histogram; computed answers: 2 per step at 31.25 ms
    inputs = (buckets("ssm_http_request_duration_seconds_bucket", "0.005", 100,
                      dict(APP, path="/api/v2/match", status="200"))
              + [series("ssm_http_request_duration_seconds_sum", dict(APP, path="/api/v2/match", status="200"),
                        counter(0.1)),
                 series("ssm_match_computed_duration_seconds_sum", APP, counter(0.0625)),
                 series("ssm_match_computed_duration_seconds_count", APP, counter(2))])
    labels = {"slot": APP["slot"], "version": APP["version"]}
    tests = [{"interval": "15s", "input_series": inputs, "promql_expr_test": [
        {"expr": "ssm:latency_mean_computed:seconds", "eval_time": "10m",
         "exp_samples": [{"labels": 'ssm:latency_mean_computed:seconds{slot="%(slot)s",version="%(version)s"}' % labels,
                          "value": 0.03125}]}]}]
    result = promtool_test([rendered("recording.rules.yml.j2", "recording.yml")], tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_computed_answer_in_the_window_gives_no_number(promtool_test, rendered):
    # the histogram exists (rendered from zero) but nothing was computed: 0/0
    inputs = buckets("ssm_match_computed_duration_seconds_bucket", "0.05", 0, APP) + [
        series("ssm_match_computed_duration_seconds_sum", APP, counter(0)),
        series("ssm_match_computed_duration_seconds_count", APP, counter(0))]
    tests = [{"interval": "15s", "input_series": inputs, "promql_expr_test": [
        {"expr": "ssm:latency_p95_computed:seconds > 0", "eval_time": "10m", "exp_samples": []},
        {"expr": "ssm:latency_mean_computed:seconds > 0", "eval_time": "10m", "exp_samples": []}]}]
    result = promtool_test([rendered("recording.rules.yml.j2", "recording.yml")], tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_judge_window_is_its_own(promtool_test, rendered):
    """Computed answers until 60 s, none after: at 90 s a 15 s judge window has no value, the 1 m gate window has."""
    inputs = [series("ssm_match_computed_duration_seconds_bucket", dict(APP, le=le), "0+1x12 12x12")
              for le in BUCKETS]  # 5 s samples: rising for 60 s, then flat

    def check(window, expect_value):
        samples = [{"labels": 'ssm:latency_p95_computed:seconds{slot="blue",version="1.0.0"}', "value": 0.00475}]
        tests = [{"interval": "5s", "input_series": inputs, "promql_expr_test": [
            {"expr": "ssm:latency_p95_computed:seconds > 0", "eval_time": "90s",
             "exp_samples": samples if expect_value else []}]}]
        rules = rendered("recording.rules.yml.j2", "recording-%s.yml" % window, monitoring_judge_window=window)
        return promtool_test([rules], tests, evaluation_interval="5s")
    for window, expect_value in (("15s", False), ("1m", True)):
        result = check(window, expect_value)
        assert result.returncode == 0, window + result.stdout + result.stderr
