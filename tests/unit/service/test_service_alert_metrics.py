"""The service metrics the alerting rules need (roles/monitoring alerts):
the depth of the write-behind queue of match records, and cache hits and misses.

The database driver is a fake whose connect() blocks on an event: once the
writer thread holds the first record (it is connecting), every record queued
after it waits in the queue, so the depth is exact, without any timing.
"""
import re
import threading

import pytest

from supersmartmatch_service.config import Config
from supersmartmatch_service.database import MATCH_QUEUE_SIZE, Database
from supersmartmatch_service.metrics import Metrics

MATCHES = [{"offer_id": "o-1", "score": 1.0}]


class BlockingDriver:
    """psycopg2 stand-in: connect() waits for ``release`` and then fails."""

    class Error(Exception):
        pass

    def __init__(self):
        self.entered = threading.Event()
        self.release = threading.Event()

    def connect(self, **_params):
        self.entered.set()
        assert self.release.wait(30), "test never released the fake database"
        raise self.Error("could not connect to server")


def gauge(text, name):
    found = re.findall(r'^%s\{version="1\.0\.0",slot="blue"\} (\S+)$' % re.escape(name), text, re.M)
    assert len(found) == 1, text
    return float(found[0])


def test_no_queue_gauge_without_a_database():
    text = Metrics("1.0.0", "blue").render()
    assert "ssm_match_write_queue_depth" not in text
    assert "ssm_match_write_queue_capacity" not in text


@pytest.mark.parametrize("records, waiting", [(1, 0), (2, 1), (5, 4), (150, 149)])
def test_queue_depth_counts_the_records_waiting_for_the_writer(records, waiting):
    metrics = Metrics("1.0.0", "blue")
    driver = BlockingDriver()
    database = Database(Config.from_env({"SSM_DATABASE_HOST": "db1", "SSM_VERSION": "1.0.0"}), metrics,
                        driver=driver, log=lambda _message: None)
    try:
        database.record_match("c-0", "digest", False, MATCHES)
        assert driver.entered.wait(30)  # the writer took the first record and is connecting
        for index in range(1, records):
            database.record_match(f"c-{index}", "digest", False, MATCHES)
        text = metrics.render()
        assert "# TYPE ssm_match_write_queue_depth gauge" in text
        assert gauge(text, "ssm_match_write_queue_depth") == waiting
        assert gauge(text, "ssm_match_write_queue_capacity") == MATCH_QUEUE_SIZE
    finally:
        driver.release.set()
        database.close(timeout=30)  # the writer drains the queue (every record fails: counted)
    text = metrics.render()
    assert gauge(text, "ssm_match_write_queue_depth") == 0
    assert metrics.database_error_counts()["insert_match"] == records


@pytest.mark.parametrize("results, expected", [
    ([], {"hit": 0, "miss": 0, "error": 0}),
    (["hit", "hit", "miss"], {"hit": 2, "miss": 1, "error": 0}),
    (["miss"] * 3 + ["error"], {"hit": 0, "miss": 3, "error": 1}),
])
def test_cache_hits_and_misses_are_counters_from_zero(results, expected):
    metrics = Metrics("1.0.0", "blue")
    metrics.enable_cache()
    for result in results:
        metrics.record_cache(result)
    text = metrics.render()
    assert "# TYPE ssm_cache_requests_total counter" in text
    for result, count in expected.items():
        assert f'ssm_cache_requests_total{{version="1.0.0",slot="blue",result="{result}"}} {count}' in text
