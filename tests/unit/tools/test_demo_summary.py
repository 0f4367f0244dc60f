"""tools/demo_summary.py: the demo's tables and closing verdict from its JSON files."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import demo_summary as ds

SCRIPT = Path(__file__).resolve().parents[3] / "tools" / "demo_summary.py"


def probe(**shares):
    return {"total_requests": 10000, "failed_requests": 0, "client_errors": 0,
            "versions": {v: {"count": int(s * 100), "share_pct": s} for v, s in shares.items()}}


def report(phase, verdict, release="2.0.0", percent=None):
    return {
        "service": "supersmartmatch", "run_id": "%s-%s-x" % (phase, release), "phase": phase, "release": release,
        "verdict": verdict, "split_before": {"percent": 0}, "split_after": {"percent": percent, "status": "holding"},
        "failures": [], "duration_s": 40, "hold_s": 20,
        "gates": {"hold": {"verdict": "passed", "message": None, "measurements": [{}, {}],
                           "summary": {"precision": {"verdict": "passed", "last_value": 0.97, "threshold": ">= 0.94",
                                                     "passed": 2, "failed": 0, "inconclusive": 0, "error": 0,
                                                     "measurements": 2}}}},
    }


def good_phases():
    return [
        ds.phase_record(report("canary", "passed", percent=5), probe(**{"1.0.0": 95.1, "2.0.0": 4.9})),
        ds.phase_record(report("extended", "passed", percent=25), probe(**{"1.0.0": 74.8, "2.0.0": 25.2})),
        ds.phase_record(report("full", "promoted", percent=100), probe(**{"2.0.0": 100.0})),
    ]


TRAFFIC_OK = {"total_requests": 5000, "failed_requests": 0, "client_errors": 0, "versions": {}}


def _mutate(index, **changes):
    phases = good_phases()
    phases[index].update(changes)
    return phases


@pytest.mark.parametrize("phases, traffic, problems", [
    (good_phases(), TRAFFIC_OK, []),
    (_mutate(0, verdict="rolled_back"), TRAFFIC_OK, ["canary: verdict rolled_back, expected passed"]),
    (_mutate(2, verdict="passed"), TRAFFIC_OK, ["full: verdict passed, expected promoted"]),
    (_mutate(0, release_share_pct=6.01), TRAFFIC_OK,
     ["canary: 2.0.0 observed on 6.01 % of users, expected 5.0 % +/- 1.0 pp"]),
    (_mutate(1, release_share_pct=24.0), TRAFFIC_OK, []),  # exactly 1 pp off is within
    (_mutate(2, release_share_pct=98.9), TRAFFIC_OK,
     ["full: 2.0.0 observed on 98.9 % of users, expected 100.0 % +/- 1.0 pp"]),
    (_mutate(1, probe_failed_requests=3), TRAFFIC_OK, ["extended: 3 failed requests in the probe"]),
    (good_phases(), {"total_requests": 5000, "failed_requests": 1, "client_errors": 0},
     ["background traffic: 1 failed requests of 5000"]),
    # a WAF 403, a rate limit 429 or a refused feedback (401) blocks a legitimate request
    (good_phases(), dict(TRAFFIC_OK, client_errors=2), ["background traffic: 2 blocked requests (4xx) of 5000"]),
    (_mutate(0, probe_blocked_requests=1), TRAFFIC_OK, ["canary: 1 blocked requests (4xx) in the probe"]),
    (good_phases(), {"total_requests": 0},
     ["background traffic: None failed requests of 0", "background traffic: None blocked requests (4xx) of 0"]),
    (good_phases()[:2], TRAFFIC_OK, ["phases run: canary, extended, expected canary, extended, full"]),
    ([], TRAFFIC_OK, ["phases run: none, expected canary, extended, full"]),
])
def test_summarize(phases, traffic, problems):
    summary = ds.summarize(phases, traffic, checks=CHECKS_OK)
    assert summary["problems"] == problems
    assert summary["passed"] is (not problems)
    assert ds.check(summary) == problems


CHECKS_OK = {name: {"passed": True, "table": ["check host result detail", "PASSED: 9 check(s) passed"]}
             for name in ds.CHECKS}
VERDICTS = {name: "PASSED: 9 check(s) passed" for name in ds.CHECKS}


@pytest.mark.parametrize("summary, problems", [
    ({"passed": True, "problems": [], "checks": VERDICTS}, []),
    ({"passed": False, "problems": ["x"], "checks": VERDICTS}, ["x"]),
    ({"passed": False, "problems": [], "checks": VERDICTS}, ["the summary does not say the demo passed"]),
    ({}, ["no pre_deployment_check, validate_deployment table: the phases did not run it"]),
    ({"passed": True, "problems": ["x"], "checks": VERDICTS}, ["x", "the summary says passed but lists problems"]),
    ({"passed": True, "problems": [], "checks": {"pre_deployment_check": "PASSED"}},
     ["no validate_deployment table: the phases did not run it", "the summary says passed but lists problems"]),
])
def test_check(summary, problems):
    assert ds.check(summary) == problems


def test_a_check_with_a_blocker_fails_the_summary():
    checks = dict(CHECKS_OK, validate_deployment={"passed": False, "table": ["BLOCKED: 1 blocker(s): reachable on lb2"]})
    summary = ds.summarize(good_phases(), TRAFFIC_OK, checks=checks)
    assert summary["problems"] == ["validate_deployment: BLOCKED: 1 blocker(s): reachable on lb2"]
    assert summary["checks"]["validate_deployment"] == "BLOCKED: 1 blocker(s): reachable on lb2"
    assert "validate_deployment: BLOCKED: 1 blocker(s): reachable on lb2" in ds.format_summary(summary)


@pytest.mark.parametrize("before, now, contents, expected", [
    ([], ["a.json"], {"a.json": ("canary", "2.0.0")}, "a.json"),
    (["old.json"], ["old.json", "new.json", "audit.log"],
     {"old.json": ("canary", "2.0.0"), "new.json": ("canary", "2.0.0")}, "new.json"),
    ([], ["x.json", "y.json"], {"x.json": ("extended", "2.0.0"), "y.json": ("canary", "2.0.0")}, "y.json"),
    ([], ["x.json"], {"x.json": ("canary", "3.0.0")}, ds.DemoError),
    (["a.json"], ["a.json"], {"a.json": ("canary", "2.0.0")}, ds.DemoError),
    ([], ["a.json", "b.json"], {"a.json": ("canary", "2.0.0"), "b.json": ("canary", "2.0.0")}, ds.DemoError),
])
def test_new_report_name(before, now, contents, expected):
    def read(name):
        return {"phase": contents[name][0], "release": contents[name][1]}

    if expected is ds.DemoError:
        with pytest.raises(ds.DemoError):
            ds.new_report_name(before, now, "canary", "2.0.0", read)
    else:
        assert ds.new_report_name(before, now, "canary", "2.0.0", read) == expected


@pytest.mark.parametrize("versions, version, share", [
    ({"2.0.0": {"share_pct": 5.12}}, "2.0.0", 5.12),
    ({"1.0.0": {"share_pct": 100.0}}, "2.0.0", 0.0),
    ({}, "2.0.0", 0.0),
])
def test_share_of(versions, version, share):
    assert ds.share_of({"versions": versions}, version) == share


def test_phase_record_and_tables():
    record = ds.phase_record(report("canary", "passed", percent=5), probe(**{"1.0.0": 95.0, "2.0.0": 5.0}))
    assert record["release_share_pct"] == 5.0
    assert record["checks"]["precision"]["last_value"] == 0.97
    text = ds.format_phase(record)
    assert "verdict: passed" in text and "precision" in text and "2.0.0 5.00 %" in text
    summary = ds.summarize(good_phases(), TRAFFIC_OK)
    assert "PASSED" in ds.format_summary(summary)
    bad = ds.summarize(good_phases()[:1], {"failed_requests": 2})
    assert "PROBLEM: background traffic: 2 failed requests" in ds.format_summary(bad)


def test_cli_end_to_end(tmp_path):
    """The phase, summary and check commands on files, as scripts/demo runs them."""
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "old.json").write_text(json.dumps(report("canary", "passed", percent=5)))
    phase_files = []
    for rec in good_phases():
        before = tmp_path / ("before-" + rec["phase"])
        before.write_text("\n".join(p.name for p in reports.iterdir()))
        rep = report(rec["phase"], rec["verdict"], percent=100)
        (reports / ("%s-new.json" % rec["phase"])).write_text(json.dumps(rep))
        probe_file = tmp_path / ("probe-%s.json" % rec["phase"])
        probe_file.write_text(json.dumps(probe(**rec["observed"])))
        out = tmp_path / ("phase-%s.json" % rec["phase"])
        done = subprocess.run([sys.executable, str(SCRIPT), "phase", "--report-dir", str(reports), "--before", str(before),
                               "--phase", rec["phase"], "--release", "2.0.0", "--probe", str(probe_file),
                               "--out", str(out)], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        phase_files.append(str(out))
    traffic = tmp_path / "traffic.json"
    traffic.write_text(json.dumps(TRAFFIC_OK))
    summary = tmp_path / "summary.json"
    for name, report_ in CHECKS_OK.items():
        (tmp_path / (name + ".json")).write_text(json.dumps(report_))
        phase_files = ["--check", str(tmp_path / (name + ".json"))] + phase_files
    done = subprocess.run([sys.executable, str(SCRIPT), "summary", "--traffic", str(traffic), "--out", str(summary)]
                          + phase_files, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validate_deployment: PASSED: 9 check(s) passed" in done.stdout
    assert json.loads(summary.read_text())["passed"] is True
    assert subprocess.run([sys.executable, str(SCRIPT), "check", str(summary)], check=False).returncode == 0
    # a failed run: the summary command and the check both exit non-zero, naming the problem
    traffic.write_text(json.dumps(dict(TRAFFIC_OK, failed_requests=4)))
    done = subprocess.run([sys.executable, str(SCRIPT), "summary", "--traffic", str(traffic), "--out", str(summary)]
                          + phase_files, capture_output=True, text=True, check=False)
    assert done.returncode == 1
    done = subprocess.run([sys.executable, str(SCRIPT), "check", str(summary)], capture_output=True, text=True, check=False)
    assert done.returncode == 1 and "4 failed requests" in done.stderr
    # a missing file: a clear message, no traceback
    done = subprocess.run([sys.executable, str(SCRIPT), "check", str(tmp_path / "nope.json")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "cannot read" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize('report,rc,printed', [
    ({'passed': True, 'table': ['check  host  result  detail', 'PASSED: 1 check(s) passed, 0 warning(s), no blocker']},
     0, 'PASSED: 1 check(s)'),
    ({'passed': False, 'table': ['check  host  result  detail', 'BLOCKED: 1 blocker(s): reachable on lb2']},
     1, 'BLOCKED: 1 blocker(s): reachable on lb2'),
    ({'passed': True, 'table': []}, 2, 'holds no table'),
])
def test_table_prints_the_table_of_a_check_report(tmp_path, capsys, report, rc, printed):
    path = tmp_path / 'pre_deployment_check.json'
    path.write_text(json.dumps(report))
    assert ds.main(['table', str(path), '--title', 'pre-deployment check']) == rc
    out = capsys.readouterr()
    assert printed in out.out + out.err
