"""Fakes shared by the metric_gate unit tests: one fake timeline and a scripted fetch."""
from ansible_collections.supersmartmatch.platform.plugins.module_utils import metric_gate as mg

T0 = 1700000000.0


class FakeTime(object):
    """clock/now/sleep over one fake timeline; records every sleep."""

    def __init__(self):
        self.t = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.t += seconds

    def clock(self):
        return self.t

    def now(self):
        return T0 + self.t


class Script(object):
    """fetch_value fake: per query a list of results (numbers, None, NaN or exceptions).

    The last result repeats once the list is used up. ``cost`` advances the clock per call.
    """

    def __init__(self, script, fake=None, cost=0.0):
        self.script = dict((key, list(values)) for key, values in script.items())
        self.calls = []
        self.providers = []
        self.fake = fake
        self.cost = cost

    def __call__(self, query, url=None, provider=None):
        self.calls.append((query, url))
        self.providers.append(provider)
        if self.fake is not None:
            self.fake.t += self.cost
        values = self.script[query]
        item = values.pop(0) if len(values) > 1 else values[0]
        if isinstance(item, Exception):
            raise item
        return item


E = mg.ProviderError('HTTP 500 Internal Server Error from http://prom/api/v1/query')


def check(name='precision', **bounds):
    return mg.normalize_check(dict(dict(name=name, query=name), **bounds), 0)


def ratio_check(**bounds):
    return mg.normalize_check(dict(dict(name='p95', query='p95', baseline_query='p95_stable'), **bounds), 0)


def gate(script, checks=None, fake=None, cost=0.0, **options):
    fake = fake or FakeTime()
    fetch = Script(script, fake, cost)
    options.setdefault('interval', 60.0)
    options.setdefault('error_retry_interval', 10.0)
    result = mg.run_gate(checks or [check(min=0.94)], fetch, sleep=fake.sleep, clock=fake.clock, now=fake.now,
                         **options)
    return result, fetch, fake


def outcomes(result):
    return [m['outcome'] for m in result['measurements']]
