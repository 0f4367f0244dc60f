"""tools/trafficgen.py against real local service instances on loopback."""
import http.server
import json
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import trafficgen as tg
from labwait import poll
from supersmartmatch_service import matching
from supersmartmatch_service.config import Config
from supersmartmatch_service.server import SSMServer

SCRIPT = Path(__file__).resolve().parents[3] / "tools" / "trafficgen.py"


@pytest.mark.parametrize("values, pct, expected", [
    ([], 50, None),
    ([7], 99, 7),
    ([1, 2, 3, 4], 50, 2),
    ([4, 3, 2, 1], 75, 3),
    (list(range(1, 11)), 0, 1),
    (list(range(1, 11)), 50, 5),
    (list(range(1, 11)), 95, 10),
    (list(range(1, 101)), 95, 95),
    (list(range(1, 101)), 99, 99),
    (list(range(1, 101)), 100, 100),
    ([0.5, 0.1, 0.3], 50, 0.3),
])
def test_percentile_nearest_rank(values, pct, expected):
    assert tg.percentile(values, pct) == expected


@pytest.mark.parametrize("pct", [-1, 100.1])
def test_percentile_rejects_out_of_range(pct):
    with pytest.raises(ValueError):
        tg.percentile([1], pct)


def test_dataset_is_deterministic_and_labelled_by_the_service_scoring():
    cases = tg.build_dataset(seed=3, size=50)
    assert cases == tg.build_dataset(seed=3, size=50)
    assert cases != tg.build_dataset(seed=4, size=50)
    for case in cases:
        assert 5 <= len(case.offers) <= 10
        ranked = matching.rank(matching.parse_candidate(case.candidate), [matching.parse_offer(o) for o in case.offers])
        assert ranked[0]["offer_id"] == case.label and ranked[0]["score"] - ranked[1]["score"] >= 0.01


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_load_healthy_counts_and_precision(serve):
    before = time.time()
    report = tg.run_load([serve(SSM_VERSION="1.2.0")], requests=50, users=20, concurrency=4)
    after = time.time()
    assert report["stopped_by"] == "requests" and not report["running"]
    assert (report["total_requests"], report["match_requests"], report["feedback_requests"]) == (100, 50, 50)
    assert report["failed_requests"] == 0 and report["client_errors"] == 0 and report["errors"] == []
    v = report["versions"]["1.2.0"]
    assert v["count"] == 50 and v["share_pct"] == 100.0 and v["status"] == {"200": 50}
    assert v["feedback_status"] == {"202": 50}
    assert v["precision"] == 1.0 and report["precision"] == 1.0
    assert 0 < v["latency_ms"]["p50"] <= v["latency_ms"]["p95"] <= v["latency_ms"]["p99"]
    assert report["users_seen"] == 20 and report["users_switched"] == 0
    assert "user_versions" not in report and tg.exit_code(report) == 0
    assert before <= v["first_seen"] <= v["last_seen"] <= after + 0.001  # when the version answered


class Recorder(http.server.ThreadingHTTPServer):
    """A stand-in service recording (path, X-API-Key, Cookie, JSON body) of every request.

    Its match answers rank the offers as given and carry a feedback_token (unless ``token`` is
    false, as a release before signed feedback); feedback answers 202.
    """

    daemon_threads = True

    def __init__(self, token=True):
        self.token = token
        self.seen = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), RecorderHandler)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class RecorderHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.seen.append((self.path, self.headers.get("X-API-Key"), self.headers.get("Cookie"), body))
        if self.path == tg.MATCH_PATH:
            answer = {"candidate_id": body["candidate"]["id"], "version": "7.0.0", "slot": "blue",
                      "matches": [{"offer_id": o["id"], "score": 1.0} for o in body["offers"]]}
            if self.server.token:
                answer["feedback_token"] = "tok-%s-%s" % (body["candidate"]["id"], body["offers"][0]["id"])
            status = 200
        else:
            answer, status = {"accepted": True}, 202
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args):
        pass


@pytest.fixture
def recorder():
    """recorder(token=True) -> a running Recorder."""
    servers = []

    def _start(token=True):
        server = Recorder(token)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return server
    yield _start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_every_request_of_a_user_carries_its_api_key_and_feedback_its_token(recorder):
    server = recorder()
    report = tg.run_load([server.url], requests=12, users=4, concurrency=2)
    assert report["failed_requests"] == 0 and report["feedback_requests"] == 12
    assert len(server.seen) == 24
    for path, api_key, cookie, body in server.seen:
        user = cookie.split("=", 1)[1]
        assert api_key == f"ssm-lab-{user}", (path, api_key, cookie)
        if path == tg.FEEDBACK_PATH:  # the token its match answer gave (the recorder's tokens name the case)
            assert body["feedback_token"] == "tok-%s-%s" % (body["candidate_id"], body["offer_id"])
    assert {k for _p, k, _c, _b in server.seen} == {f"ssm-lab-u{i}" for i in range(4)}


def test_api_key_prefix_option_and_disabled(recorder):
    custom = recorder()
    tg.run_load([custom.url], requests=3, users=3, concurrency=1, api_key_prefix="bench-")
    assert sorted({k for _p, k, _c, _b in custom.seen}) == ["bench-u0", "bench-u1", "bench-u2"]
    probe = recorder()
    tg.run_probe([probe.url], users=5, concurrency=2, api_key_prefix="")
    assert len(probe.seen) == 5 and {k for _p, k, _c, _b in probe.seen} == {None}
    with pytest.raises(ValueError, match="api_key_prefix"):
        tg.LoadRunner([custom.url], requests=1, api_key_prefix="a b")


def test_an_answer_without_a_token_gets_feedback_without_one(recorder):
    server = recorder(token=False)
    report = tg.run_load([server.url], requests=3, users=3, concurrency=1)
    assert report["feedback_requests"] == 3 and report["client_errors"] == 0
    assert all("feedback_token" not in body for path, _k, _c, body in server.seen if path == tg.FEEDBACK_PATH)


def test_feedback_without_its_token_is_refused_by_the_service(serve):
    """What the token is for: the load's own feedback counts (202), a replayed one for another offer does not."""
    url = serve()
    report = tg.run_load([url], requests=5, users=5, concurrency=1)
    assert report["versions"]["1.0.0"]["feedback_status"] == {"202": 5}
    target = tg.Target.parse(url)
    client = tg.Client()
    answer = client.post(target, tg.MATCH_PATH, tg.build_dataset()[0].match_body(), "u0").body
    forged = {"candidate_id": answer["candidate_id"], "offer_id": answer["matches"][-1]["offer_id"], "correct": False,
              "feedback_token": answer["feedback_token"]}
    refused = client.post(target, tg.FEEDBACK_PATH, forged, "u0")
    assert refused.status == 401 and refused.body["reason"] == "forged"


def test_load_keep_alive_mode(serve):
    report = tg.run_load([serve()], requests=30, users=5, concurrency=2, keep_alive=True)
    assert report["failed_requests"] == 0 and report["precision"] == 1.0


def test_load_degraded_precision_collapses(serve):
    report = tg.run_load([serve(SSM_FAULT_DEGRADED="1")], requests=100, concurrency=4)
    assert report["failed_requests"] == 0
    assert report["precision"] < 0.94


def test_load_counts_server_errors_as_failures(serve):
    url = serve(SSM_FAULT_ERROR_RATE="1")
    report = tg.run_load([url], requests=20, concurrency=4)
    assert report["failed_requests"] == report["server_errors"] == 20
    assert report["match_requests"] == 20 and report["feedback_requests"] == 0
    assert report["versions"]["1.0.0"]["status"] == {"500": 20} and report["versions"]["1.0.0"]["failed"] == 20
    assert report["errors"] == [{"message": f"match via {url}: HTTP 500", "count": 20}]
    assert report["precision"] is None
    assert tg.exit_code(report) == 1 and tg.exit_code(report, allow_failures=True) == 0


def test_load_counts_connection_errors_without_retry(serve):
    dead = f"http://127.0.0.1:{free_port()}"
    report = tg.run_load([serve(), dead], requests=10, concurrency=2)
    assert report["match_requests"] == 10 and report["connection_errors"] == 5
    assert report["failed_requests"] == 5 and report["unversioned"] == 5
    assert "ConnectionRefusedError" in report["errors"][0]["message"] and dead in report["errors"][0]["message"]


def test_4xx_are_counted_apart_from_failures(serve):
    report = tg.run_load([serve() + "/wrong-prefix"], requests=6, concurrency=2)
    assert report["client_errors"] == 6 and report["failed_requests"] == 0
    assert report["versions"]["1.0.0"]["status"] == {"404": 6}


def test_two_targets_share_and_switched_users(serve):
    blue, green = serve(SSM_VERSION="1.0.0"), serve(SSM_VERSION="2.0.0", SSM_SLOT="green")
    # Round-robin over 2 targets with 3 users: every user lands on both versions.
    report = tg.run_load([blue, green], requests=60, users=3, concurrency=3)
    assert {k: v["share_pct"] for k, v in report["versions"].items()} == {"1.0.0": 50.0, "2.0.0": 50.0}
    assert report["users_seen"] == 3 and report["users_switched"] == 3


def test_probe_reports_version_per_user(serve):
    blue, green = serve(SSM_VERSION="1.0.0"), serve(SSM_VERSION="2.0.0", SSM_SLOT="green")
    report = tg.run_probe([blue, green], users=100, concurrency=8)
    assert report["mode"] == "probe" and report["match_requests"] == 100 and report["feedback_requests"] == 0
    assert len(report["user_versions"]) == 100
    assert report["user_versions"]["u0"] == "1.0.0" and report["user_versions"]["u1"] == "2.0.0"
    assert sorted(set(report["user_versions"].values())) == ["1.0.0", "2.0.0"]
    assert report["versions"]["2.0.0"]["count"] == 50 and report["users_switched"] == 0


def test_stops_by_duration(serve):
    start = time.monotonic()
    report = tg.run_load([serve()], duration=0.5, concurrency=2)
    assert 0.5 <= time.monotonic() - start < 3
    assert report["stopped_by"] == "duration" and report["match_requests"] > 0


def test_rate_limit(serve):
    report = tg.run_load([serve()], duration=1.0, rate=10, concurrency=4)
    assert 5 <= report["match_requests"] <= 12


def test_runner_in_background_stops_on_stop(serve):
    runner = tg.LoadRunner([serve()], duration=60, concurrency=2).start()
    poll(lambda: runner.report()["match_requests"] >= 5, 5, delay=0.05)
    assert runner.running
    start = time.monotonic()
    report = runner.stop()
    assert time.monotonic() - start < 5 and not runner.running
    assert report["stopped_by"] == "stop_event" and report["failed_requests"] == 0
    assert report["match_requests"] >= 5 and report["elapsed_s"] < 30


def test_run_load_stops_on_external_event_and_stop_file(serve, tmp_path):
    url, event = serve(), threading.Event()
    threading.Timer(0.3, event.set).start()
    assert tg.run_load([url], duration=60, stop_event=event)["stopped_by"] == "stop_event"
    stop_file = tmp_path / "stop"
    threading.Timer(0.3, stop_file.touch).start()
    report = tg.run_load([url], duration=60, stop_file=str(stop_file))
    assert report["stopped_by"] == "stop_file" and report["elapsed_s"] < 10


@pytest.mark.parametrize("kwargs", [
    {}, {"duration": 4000}, {"duration": 0}, {"requests": 0}, {"requests": 1, "rate": 0},
    {"requests": 1, "cacert": "x", "insecure": True},
])
def test_runner_rejects_unbounded_or_bad_options(kwargs):
    with pytest.raises(ValueError):
        tg.LoadRunner(["http://127.0.0.1:9"], **kwargs)


def test_target_must_be_http_url():
    with pytest.raises(ValueError):
        tg.LoadRunner(["ftp://x"], requests=1)


def cli(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False)


def test_cli_load_and_probe(serve, tmp_path):
    url = serve(SSM_VERSION="4.0.0")
    out = tmp_path / "report.json"
    proc = cli("load", "--target", url, "--requests", "20", "--users", "5", "--report-json", str(out))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["match_requests"] == 20 and report["versions"]["4.0.0"]["precision"] == 1.0
    assert "4.0.0" in proc.stdout and "share%" in proc.stdout
    proc = cli("probe", "--target", url, "--users", "30", "--quiet", "--report-json", str(out))
    assert proc.returncode == 0 and proc.stdout == ""
    assert len(json.loads(out.read_text())["user_versions"]) == 30


def test_cli_api_key_prefix(recorder):
    server = recorder()
    proc = cli("load", "--target", server.url, "--requests", "2", "--users", "2", "--api-key-prefix", "cli-", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert sorted({k for _p, k, _c, _b in server.seen}) == ["cli-u0", "cli-u1"]
    none = recorder()
    assert cli("probe", "--target", none.url, "--users", "2", "--api-key-prefix", "", "--quiet").returncode == 0
    assert {k for _p, k, _c, _b in none.seen} == {None}


def test_cli_exit_codes(serve):
    bad = serve(SSM_FAULT_ERROR_RATE="1")
    assert cli("load", "--target", bad, "--requests", "3", "--quiet").returncode == 1
    assert cli("load", "--target", bad, "--requests", "3", "--quiet", "--allow-failures").returncode == 0
    usage = cli("load", "--target", bad)
    assert usage.returncode == 2 and "bound" in usage.stderr


@pytest.fixture
def tls_server(tmp_path):
    """The service behind TLS with a self-signed certificate for ssm.test."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=ssm.test",
                    "-addext", "subjectAltName=DNS:ssm.test"], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = SSMServer(Config.from_env({"SSM_PORT": "0", "SSM_BIND": "127.0.0.1", "SSM_VERSION": "5.0.0"}))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}", str(cert)
    server.shutdown()
    server.server_close()


def test_https_cacert_sni_and_insecure(tls_server):
    url, cacert = tls_server
    ok = tg.run_load([url], requests=4, concurrency=1, cacert=cacert, host_header="ssm.test")
    assert ok["failed_requests"] == 0 and ok["versions"]["5.0.0"]["precision"] == 1.0
    wrong_name = tg.run_load([url], requests=2, concurrency=1, cacert=cacert)
    assert wrong_name["connection_errors"] == 2
    assert "CERTIFICATE_VERIFY_FAILED" in wrong_name["errors"][0]["message"]
    insecure = tg.run_load([url], requests=2, concurrency=1, insecure=True)
    assert insecure["failed_requests"] == 0
