"""The write checker's verdict (tools/write_checker.py): pure functions, table-driven."""
import socket
import time

import pytest

import write_checker  # tools/ is on the path (tests/unit/conftest.py)


@pytest.mark.parametrize("acks, start, end, expected", [
    ([], 0.0, 10.0, 10.0),                        # nothing acknowledged: the whole period
    ([5.0], 0.0, 10.0, 5.0),                      # one ack in the middle
    ([1.0, 2.0, 9.5], 0.0, 10.0, 7.5),            # the hole between two acks
    ([9.0, 1.0, 2.0], 0.0, 10.0, 7.0),            # order does not matter
    ([0.5, 1.0, 1.5], 0.0, 10.0, 8.5),            # the tail after the last ack counts
    ([-3.0, 2.0, 42.0], 0.0, 10.0, 8.0),          # acks outside the period are ignored
    ([], 4.0, 4.0, 0.0),                          # empty period
])
def test_longest_gap(acks, start, end, expected):
    assert write_checker.longest_gap(acks, start, end) == pytest.approx(expected)


def test_longest_gap_refuses_a_reversed_period():
    with pytest.raises(ValueError, match="before start"):
        write_checker.longest_gap([], 5.0, 1.0)


@pytest.mark.parametrize("acked, attempted, present, expected", [
    # every acknowledged write is there
    ({1: 1.0, 2: 2.0}, {1, 2}, {1, 2},
     dict(acknowledged=2, acknowledged_present=2, acknowledged_missing=0, unacknowledged_present=0, attempted=2)),
    # an acknowledged write lost: the bug the checker exists for
    ({1: 1.0, 2: 2.0, 3: 3.0}, {1, 2, 3}, {1, 3},
     dict(acknowledged=3, acknowledged_present=2, acknowledged_missing=1, missing_ids=[2], unacknowledged_present=0)),
    # a write whose answer was lost but which committed: allowed, counted apart
    ({1: 1.0}, {1, 2, 3}, {1, 2},
     dict(acknowledged=1, acknowledged_present=1, acknowledged_missing=0, unacknowledged_present=1, attempted=3)),
    # nothing survived
    ({1: 1.0, 2: 2.0}, {1, 2}, set(),
     dict(acknowledged_present=0, acknowledged_missing=2, missing_ids=[1, 2])),
])
def test_summarize(acked, attempted, present, expected):
    report = write_checker.summarize(acked, attempted, present, 0.0, 10.0)
    for key, value in expected.items():
        assert report[key] == value, key


def test_summarize_refuses_ids_never_sent():
    with pytest.raises(ValueError, match="never sent"):
        write_checker.summarize({1: 1.0}, {1}, {1, 99}, 0.0, 2.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(endpoints=[]), "at least one endpoint"),
    (dict(endpoints=[("127.0.0.1", 5000)], clients=0), "clients must be at least 1"),
])
def test_checker_refuses_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_checker.WriteChecker(run="r", password="p", **kwargs)


def test_checker_counts_nothing_acknowledged_when_no_server_answers():
    """A closed loopback port: every attempt fails, nothing is acknowledged, errors are counted."""
    with socket.socket() as sock:  # a port that was free a moment ago and is now closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    checker = write_checker.WriteChecker([("127.0.0.1", port)], run="r", password="p", clients=2, timeout=1.0)
    checker.start()
    deadline = time.monotonic() + 5
    while not checker.errors and time.monotonic() < deadline:
        time.sleep(0.05)
    checker.stop()
    assert checker.acked == {}
    assert sum(checker.errors.values()) >= 1
    assert checker.attempted
    assert checker.first_ack_after(checker.start_time) is None
