# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every part of metric_gate shares: outcomes, errors, numbers and their formatting."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import math


PROVIDERS = ('prometheus', 'http_json')
OUTCOMES = ('passed', 'failed', 'inconclusive', 'error')
GOOD_OUTCOMES = ('passed', 'failed', 'inconclusive')
NO_DATA_POLICIES = ('fail', 'pass', 'inconclusive')
VERDICT_RANK = {'passed': 0, 'inconclusive': 1, 'failed': 2, 'error': 3}
CHECK_KEYS = ('name', 'query', 'min', 'max', 'baseline_query', 'min_ratio', 'max_ratio', 'url', 'baseline_url',
              'provider', 'on_no_data', 'initial_delay', 'kind', 'confidence', 'direction', 'min_samples', 'step',
              'lookback', 'pairing', 'source', 'quantile')
PROMETHEUS_PATH = '/api/v1/query'
MAX_BODY = 16 * 1024 * 1024
MAX_LISTED_VALUES = 10
RATIO_TOLERANCE = 1e-9


class GateError(Exception):
    """Bad input: raised before any request is made."""


class ProviderError(Exception):
    """A measurement could not be taken (unreachable, HTTP error, bad JSON, bad query)."""


# --------------------------------------------------------------------------
# Numbers and formatting
# --------------------------------------------------------------------------

def is_nan(value):
    return isinstance(value, float) and math.isnan(value)


def no_data(value):
    """True for the values that mean "no data": None and NaN."""
    return value is None or is_nan(value)


def fmt(value, digits=4, against=None):
    """Format a measured value with up to ``digits`` significant digits.

    If ``against`` (a threshold) would print the same, more digits are used
    (up to 12) so that ``0.93996 < min 0.94`` never reads ``0.94 < min 0.94``.
    """
    if value is None:
        return 'null'
    value = float(value)
    if math.isnan(value):
        return 'NaN'
    if math.isinf(value):
        return '+Inf' if value > 0 else '-Inf'
    text = '%.*g' % (digits, value)
    if against is not None and value != against:
        limit = fmt_bound(against)
        while text == limit and digits < 12:
            digits += 1
            text = '%.*g' % (digits, value)
    return text


def fmt_bound(value):
    """Format a threshold as given by the user (no rounding to 4 digits)."""
    return '%.12g' % float(value)


def to_number(raw, what):
    """Convert a value read from a provider to a float, or None for no data.

    Numbers and numeric strings are converted (``"NaN"`` gives NaN, which
    callers treat as no data); booleans give 1.0/0.0; None stays None.
    Anything else (a non-numeric string, an object) raises ProviderError.
    """
    if raw is None:
        return None
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, (int, float)):
        return float(raw)
    if isinstance(raw, str):
        try:
            return float(raw.strip())
        except ValueError:
            pass
    text = json.dumps(raw) if not isinstance(raw, str) else repr(raw)
    if len(text) > 80:
        text = text[:77] + '...'
    raise ProviderError('%s is not a number: %s' % (what, text))


def parse_bound(value, option, where, minimum=None):
    """Parse a threshold (min, max, ratio) given by the user; None stays None."""
    if value is None:
        return None
    number = None
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
    if number is None or math.isnan(number) or math.isinf(number):
        raise GateError('%s: %s must be a finite number, got %r' % (where, option, value))
    if minimum is not None and number < minimum:
        raise GateError('%s: %s must be >= %s, got %s' % (where, option, fmt_bound(minimum), fmt_bound(number)))
    return number


def iso_utc(timestamp):
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat(timespec='milliseconds')


def json_number(value):
    """Floats for the result: NaN and infinities become None (not valid JSON)."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return None
    return value
