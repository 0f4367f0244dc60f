"""tools/labwait.py: the one poll-until-true loop, on a fake clock (no real sleeping, no timing)."""
import os
import subprocess
import sys

import pytest

import labwait
from labwait import READ_ERRORS, TAIL_CHARS, ProcessEnded, Waited, WaitFailed, WaitTimeout, poll, wait_for


class FakeTime:
    """Stands for the time module inside labwait: sleep() only moves the clock."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = FakeTime()
    monkeypatch.setattr(labwait, "time", fake)
    return fake


class Script:
    """A predicate that plays ``steps`` in turn (the last one again and again).

    A step is a value to return or an exception to raise; every call costs
    ``cost`` seconds of the fake clock.
    """

    def __init__(self, clock, steps, cost=0.0):
        self.clock, self.steps, self.cost, self.calls = clock, list(steps), cost, 0

    def __call__(self):
        step = self.steps[min(self.calls, len(self.steps) - 1)]
        self.calls += 1
        self.clock.now += self.cost
        if isinstance(step, BaseException):
            raise step
        return step


class FakeProc:
    """A Popen that exits after ``running`` polls, with ``output`` left on its pipes."""

    def __init__(self, running, output=("", None), returncode=2, args=("/usr/bin/ansible-playbook", "canary.yml")):
        self.running, self.output, self.code, self.args = running, output, returncode, args
        self.returncode = None

    def poll(self):
        if self.running > 0:
            self.running -= 1
            return None
        self.returncode = self.code
        return self.code

    def communicate(self, timeout=None):
        assert timeout is not None, "without a timeout, a pipe held open by a grandchild would block the wait"
        return self.output


CALLED = subprocess.CalledProcessError(1, ["docker", "exec", "lb1", "cat", "state.json"])

SUCCESSES = [
    # id, steps, timeout, delay, expected value, calls, sleeps
    ("first try", [5], 10, 0.5, 5, 1, []),
    ("after three falsy values", [0, None, "", "ok"], 10, 0.5, "ok", 4, [0.5, 0.5, 0.5]),
    ("on the call at the deadline", [False, False, {"lb1": 5}], 1, 0.5, {"lb1": 5}, 3, [0.5, 0.5]),
    ("timeout 0: one call", [True], 0, 0.5, True, 1, []),
]


@pytest.mark.parametrize("steps, timeout, delay, expected, calls, sleeps",
                         [case[1:] for case in SUCCESSES], ids=[case[0] for case in SUCCESSES])
def test_returns_the_first_truthy_value(clock, steps, timeout, delay, expected, calls, sleeps):
    predicate = Script(clock, steps)
    assert wait_for(predicate, timeout, "it", delay) == expected
    assert (predicate.calls, clock.sleeps) == (calls, sleeps)


TIMEOUTS = [
    # id, steps, timeout, delay, cost of a call, calls, sleeps, elapsed
    ("delay divides the timeout", [False], 1, 0.25, 0, 5, [0.25] * 4, 1.0),
    ("the last sleep stops at the deadline", [None], 1, 0.75, 0, 3, [0.75, 0.25], 1.0),
    ("a call slower than the timeout", [0], 1, 0.25, 2, 1, [], 2.0),
    ("timeout 0", [""], 0, 0.25, 0, 1, [], 0.0),
]


@pytest.mark.parametrize("steps, timeout, delay, cost, calls, sleeps, elapsed",
                         [case[1:] for case in TIMEOUTS], ids=[case[0] for case in TIMEOUTS])
def test_timeout_raises_naming_what_and_the_timeout(clock, steps, timeout, delay, cost, calls, sleeps, elapsed):
    predicate = Script(clock, steps, cost)
    with pytest.raises(WaitTimeout) as raised:
        wait_for(predicate, timeout, "the canary of 3.1.0 at 5 %", delay)
    assert str(raised.value) == "timed out after %g s waiting for the canary of 3.1.0 at 5 %%" % timeout
    assert (predicate.calls, clock.sleeps) == (calls, sleeps)
    failure = raised.value
    assert (failure.what, failure.timeout, failure.elapsed, failure.last) == (
        "the canary of 3.1.0 at 5 %", timeout, elapsed, steps[-1])
    assert isinstance(failure, TimeoutError) and isinstance(failure, WaitFailed) and failure.errno is None
    assert failure.__cause__ is None


@pytest.mark.usefixtures("clock")
def test_a_fractional_timeout_is_named_as_given():
    with pytest.raises(WaitTimeout, match=r"^timed out after 0\.5 s waiting for /health 200$"):
        wait_for(lambda: False, 0.5, "/health 200")


IGNORED = [
    # id, ignore, steps
    ("one type", KeyError, [KeyError("percent"), 7]),
    ("a tuple", (KeyError, ValueError), [KeyError("percent"), ValueError("half-written JSON"), 7]),
    ("READ_ERRORS: a failed docker exec", READ_ERRORS, [CALLED, ValueError("Expecting value"), KeyError("x"), 7]),
    ("a subclass of an ignored type", OSError, [ConnectionRefusedError(111, "refused"), 7]),
]


@pytest.mark.parametrize("ignore, steps", [case[1:] for case in IGNORED], ids=[case[0] for case in IGNORED])
def test_ignored_exceptions_are_retried(clock, ignore, steps):
    predicate = Script(clock, steps)
    assert wait_for(predicate, 10, "it", 0.5, ignore=ignore) == 7
    assert predicate.calls == len(steps)
    assert clock.sleeps == [0.5] * (len(steps) - 1)


def test_a_timeout_after_an_ignored_exception_names_and_chains_it(clock):
    with pytest.raises(WaitTimeout) as raised:
        wait_for(Script(clock, [False, CALLED]), 1, "lb1's state", 0.5, ignore=READ_ERRORS)
    assert str(raised.value).startswith("timed out after 1 s waiting for lb1's state (last error: CalledProcessError(")
    assert raised.value.__cause__ is CALLED and raised.value.last is None


def test_an_earlier_ignored_exception_is_not_blamed_for_a_later_falsy_value(clock):
    with pytest.raises(WaitTimeout) as raised:
        wait_for(Script(clock, [KeyError("x"), False]), 1, "it", 0.5, ignore=KeyError)
    assert "last error" not in str(raised.value) and raised.value.__cause__ is None


PROPAGATED = [
    # id, ignore, steps, calls
    ("nothing ignored", (), [KeyError("percent")], 1),
    ("another type ignored", KeyError, [RuntimeError("boom")], 1),
    ("after ignored ones", (KeyError, ValueError), [KeyError("a"), ValueError("b"), RuntimeError("boom")], 3),
    ("CalledProcessError unless ignored", (ValueError, KeyError), [CALLED], 1),
]


@pytest.mark.parametrize("ignore, steps, calls", [case[1:] for case in PROPAGATED],
                         ids=[case[0] for case in PROPAGATED])
def test_other_exceptions_propagate_at_once(clock, ignore, steps, calls):
    predicate = Script(clock, steps)
    with pytest.raises(type(steps[-1])) as raised:
        wait_for(predicate, 10, "it", 0.5, ignore=ignore)
    assert raised.value is steps[-1]
    assert predicate.calls == calls and len(clock.sleeps) == calls - 1


PROCS = [
    # id, FakeProc arguments, expected message start, expected output
    ("text stdout", dict(running=2, output=("PLAY [lb]\nfatal: lb2 unreachable\n", None)),
     "ansible-playbook ended (rc=2) before the lease on lb2:\n", "PLAY [lb]\nfatal: lb2 unreachable\n"),
    ("bytes on stdout and stderr", dict(running=0, output=(b"out\n", b"err\xff\n"), returncode=1,
                                        args=["python3", "-m", "x"]),
     "python3 ended (rc=1) before the lease on lb2:\n", "out\nerr\ufffd\n"),
    ("a long output keeps its tail", dict(running=1, output=("x" * 10000 + "LAST LINE", None)),
     "ansible-playbook ended (rc=2) before the lease on lb2:\n", ("x" * 10000 + "LAST LINE")[-TAIL_CHARS:]),
    ("nothing piped, a shell command", dict(running=0, output=(None, None), returncode=-9, args="sleep 600 && true"),
     "sleep ended (rc=-9) before the lease on lb2", ""),
]


@pytest.mark.parametrize("proc_args, message, output", [case[1:] for case in PROCS], ids=[case[0] for case in PROCS])
def test_a_process_that_exited_stops_the_wait_with_its_output_tail(clock, proc_args, message, output):
    proc = FakeProc(**proc_args)
    predicate = Script(clock, [False])
    with pytest.raises(ProcessEnded) as raised:
        wait_for(predicate, 300, "the lease on lb2", 0.3, proc=proc)
    assert str(raised.value) == message + output
    assert (raised.value.returncode, raised.value.output, raised.value.what) == (proc.code, output, "the lease on lb2")
    assert len(raised.value.output) <= TAIL_CHARS
    assert predicate.calls == proc_args["running"] + 1
    assert clock.sleeps == [0.3] * proc_args["running"], "waited on although the process had ended"


@pytest.mark.usefixtures("clock")
def test_a_real_process_that_exited():
    proc = subprocess.Popen([sys.executable, "-c", "import sys; print('TASK [x] ok'); sys.exit('fatal: no lease')"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.wait(timeout=60)
    with pytest.raises(ProcessEnded) as raised:
        wait_for(lambda: False, 300, "the lease", proc=proc)
    name = os.path.basename(sys.executable)
    assert str(raised.value) == "%s ended (rc=1) before the lease:\nTASK [x] ok\nfatal: no lease\n" % name


def test_the_process_ends_the_wait_on_the_first_falsy_call_after_it_exited(clock):
    proc = FakeProc(3)
    predicate = Script(clock, [False])
    with pytest.raises(ProcessEnded):
        poll(predicate, 300, "it", 0.3, proc=proc)
    assert predicate.calls == 4 and clock.sleeps == [0.3] * 3


def test_a_condition_met_as_the_process_exits_wins(clock):
    assert wait_for(Script(clock, [False, "done"]), 300, "it", 0.3, proc=FakeProc(1)) == "done"


def test_a_running_process_does_not_stop_the_wait(clock):
    assert wait_for(Script(clock, [False] * 5 + ["ok"]), 300, "it", 0.3, proc=FakeProc(100)) == "ok"


def test_a_process_that_never_ends_still_times_out(clock):
    with pytest.raises(WaitTimeout):
        wait_for(Script(clock, [False]), 1, "it", 0.5, proc=FakeProc(100))


ERRORS = [
    # id, error class, what happens
    ("SystemExit on a timeout", SystemExit,
     lambda: wait_for(lambda: False, 2, "the canary at 5 %", 1, error=SystemExit)),
    ("AssertionError on a timeout", AssertionError,
     lambda: wait_for(lambda: 0, 2, "the canary at 5 %", 1, error=AssertionError)),
    ("SystemExit when the process ended", SystemExit,
     lambda: wait_for(lambda: False, 2, "the canary at 5 %", 1, proc=FakeProc(0), error=SystemExit)),
]


@pytest.mark.parametrize("error, run", [case[1:] for case in ERRORS], ids=[case[0] for case in ERRORS])
@pytest.mark.usefixtures("clock")
def test_error_replaces_the_exception_keeping_the_message(error, run):
    with pytest.raises(error) as raised:
        run()
    assert raised.type is error  # the class itself, not a subclass
    assert isinstance(raised.value.__cause__, WaitFailed)
    assert str(raised.value) == str(raised.value.__cause__)
    assert "the canary at 5 %" in str(raised.value)


POLLS = [
    # id, steps, timeout, delay, cost, expected Waited
    ("success: the value and the seconds until it", [0, 0, "up"], 10, 0.25, 0.5, Waited("up", 2.0)),
    ("timeout: the last falsy value", [0, 0, ""], 1, 0.5, 0, Waited("", 1.0)),
    ("timeout after an ignored exception: None", [0, KeyError("x")], 1, 0.5, 0, Waited(None, 1.0)),
]


@pytest.mark.parametrize("steps, timeout, delay, cost, expected", [case[1:] for case in POLLS],
                         ids=[case[0] for case in POLLS])
def test_poll_returns_the_value_and_the_elapsed_seconds_and_never_raises_on_a_timeout(clock, steps, timeout, delay,
                                                                                      cost, expected):
    waited = poll(Script(clock, steps, cost), timeout, delay=delay, ignore=KeyError)
    assert waited == expected
    value, elapsed = waited
    assert (value, elapsed) == (waited.value, waited.elapsed)


def test_the_real_clock_is_used_by_default():
    assert wait_for(lambda: "at once", 1, "it") == "at once"
    assert poll(lambda: 1, 1).elapsed >= 0
