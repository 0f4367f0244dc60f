"""Poll until a condition holds: the one wait helper of the lab tools, tests and benchmarks.

Standard library only (Python 3.11). Two entry points over one loop:

* ``wait_for(predicate, timeout, what)`` returns the predicate's first truthy
  value, or raises :class:`WaitTimeout` ("timed out after 30 s waiting for
  <what>"). A command-line tool passes ``error=SystemExit`` to exit with that
  message instead; any other exception class taking a message works the same.
* ``poll(predicate, timeout)`` never raises on a timeout: it returns
  ``Waited(value, elapsed)``, where ``value`` is the predicate's last value
  (falsy when time ran out). For measurements (``elapsed``) and for tests that
  assert with their own diagnostics (``assert poll(...).value, diagnostics()``).

The loop, for both::

    call predicate() -> truthy: return it
    proc given and exited -> raise ProcessEnded (its return code, output tail)
    timeout seconds passed since the start -> time out
    sleep delay seconds (never past the deadline), call again

So the predicate is called at least once, and once more at the deadline; a
wait lasts at most ``timeout`` plus one call of the predicate. An exception
whose type is in ``ignore`` counts as a falsy value (the last attempt's is
chained to the WaitTimeout and named in its message); any other exception
propagates at once. Time is read with time.monotonic().

Examples::

    wait_for(lambda: port_open(5000), 10, "the service on 5000")
    state = wait_for(read_state, 600, "the canary at 5 %", delay=0.3, ignore=READ_ERRORS, proc=playbook)
    done, elapsed = poll(promoted, 20, delay=0.2)
"""
from __future__ import annotations

import os
import subprocess
import time
from typing import Any, Callable, NamedTuple

# How much of an ended process's output ProcessEnded keeps (its last characters).
TAIL_CHARS = 6000

# What reading a lab host's state may raise while that state changes: the
# command failed (``docker exec ... cat`` of a file not written yet), the JSON
# is half written (ValueError), a key is not there yet (KeyError).
READ_ERRORS = (subprocess.CalledProcessError, ValueError, KeyError)

Predicate = Callable[[], Any]
Ignored = type[BaseException] | tuple[type[BaseException], ...]


class WaitFailed(Exception):
    """A wait that ended without seeing its condition; ``what`` names the condition."""

    def __init__(self, message: str, what: str):
        super().__init__(message)
        self.what = what


class WaitTimeout(WaitFailed, TimeoutError):
    """The condition did not hold within ``timeout`` seconds.

    ``elapsed``: seconds from the start to the last call; ``last``: the
    predicate's last (falsy) value; ``__cause__``: the ignored exception the
    last call raised, if it raised one.
    """

    def __init__(self, what: str, timeout: float, elapsed: float, last: Any = None,
                 error: BaseException | None = None):
        message = f"timed out after {timeout:g} s waiting for {what}"
        if error is not None:
            message += f" (last error: {error!r})"
        super().__init__(message, what)
        self.timeout, self.elapsed, self.last = timeout, elapsed, last


class ProcessEnded(WaitFailed):
    """The process the wait watched (``proc``) exited before the condition held.

    ``returncode``; ``output``: the last TAIL_CHARS characters of what it
    still had to say on its pipes (stdout then stderr, read with
    ``communicate(timeout=5)``), '' if none were piped. So do not pass a
    ``proc`` whose pipes another thread reads: watch ``proc.poll()`` in the
    predicate instead.
    """

    def __init__(self, proc: subprocess.Popen, what: str):
        self.returncode = proc.returncode
        self.output = _tail(proc)
        message = f"{_name(proc)} ended (rc={self.returncode}) before {what}"
        super().__init__(message + (":\n" + self.output if self.output else ""), what)


class Waited(NamedTuple):
    """What poll() returns: the predicate's last value and the seconds waited until that call returned."""

    value: Any
    elapsed: float


def poll(predicate: Predicate, timeout: float, what: str = "the condition", delay: float = 0.1, *,
         ignore: Ignored = (), proc: subprocess.Popen | None = None) -> Waited:
    """Call ``predicate`` every ``delay`` s until it returns a truthy value or ``timeout`` s have passed.

    Returns ``Waited(value, elapsed)``; on a timeout ``value`` is the last,
    falsy, value (None if the last call raised an ignored exception). Raises
    ProcessEnded if ``proc`` exits first (``what`` names the condition then).
    """
    value, elapsed, _error = _loop(predicate, timeout, what, delay, ignore, proc)
    return Waited(value, elapsed)


def wait_for(predicate: Predicate, timeout: float, what: str = "the condition", delay: float = 0.1, *,
             ignore: Ignored = (), proc: subprocess.Popen | None = None,
             error: type[BaseException] | None = None) -> Any:
    """Call ``predicate`` every ``delay`` s until it returns a truthy value, and return that value.

    Raises WaitTimeout naming ``what`` and ``timeout`` when time runs out, and
    ProcessEnded when ``proc`` exits first; with ``error`` (e.g. SystemExit,
    AssertionError), ``error(message)`` instead, chained to the original.
    """
    try:
        value, elapsed, last_error = _loop(predicate, timeout, what, delay, ignore, proc)
        if value:
            return value
        raise WaitTimeout(what, timeout, elapsed, value, last_error) from last_error
    except WaitFailed as failure:
        if error is None:
            raise
        raise error(str(failure)) from failure


def _loop(predicate, timeout, what, delay, ignore, proc):
    """The one polling loop: (value, elapsed, exception of the last call if ignored)."""
    start = time.monotonic()
    deadline = start + timeout
    while True:
        error = None
        try:
            value = predicate()
        except ignore as exc:
            value, error = None, exc
        now = time.monotonic()
        if value:
            return value, now - start, None
        if proc is not None and proc.poll() is not None:
            raise ProcessEnded(proc, what)
        if now >= deadline:
            return value, now - start, error
        time.sleep(min(delay, deadline - now))


def _name(proc: subprocess.Popen) -> str:
    """The program's file name ('ansible-playbook'), from the Popen's args."""
    args = getattr(proc, "args", None)
    first = args[0] if isinstance(args, (list, tuple)) and args else args
    words = os.fsdecode(first).split() if first else []
    return os.path.basename(words[0]) if words else "the process"


def _tail(proc: subprocess.Popen) -> str:
    """The last TAIL_CHARS characters the ended process left on its pipes."""
    try:
        parts = proc.communicate(timeout=5)
    except (subprocess.TimeoutExpired, ValueError, OSError):  # a pipe held open, closed or unreadable
        return ""
    text = "".join(p.decode(errors="replace") if isinstance(p, bytes) else p for p in parts if p)
    return text[-TAIL_CHARS:]
