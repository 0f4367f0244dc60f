# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Input validation for traffic_split, traffic_split_info and rollout_lock.

Every string that can reach an NGINX file is matched here in full (``\\Z``,
never ``$``, which also matches before a trailing newline) against a narrow
charset, and only ASCII digits count as digits. Every refusal is a
``SplitError`` whose message names the option and the bad value.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import re

SERVICE_RE = re.compile(r'[a-z][a-z0-9_]{0,62}\Z')
HOST_RE = re.compile(r'(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)\Z')
PORT_RE = re.compile(r'[0-9]{1,5}\Z')
NGINX_VAR_RE = re.compile(r'\$[A-Za-z_][A-Za-z0-9_]{0,63}\Z')
LABEL_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9._+-]{0,63}\Z')
PERCENT_TEXT_RE = re.compile(r'[0-9]{1,3}(\.[0-9]{1,2})?\Z')
RUN_TEXT_RE = re.compile(r'[A-Za-z0-9_][A-Za-z0-9._@:+-]{0,127}\Z')
NGINX_TIME_RE = re.compile(r'[0-9]{1,6}(ms|s|m|h)?\Z')
DIGITS_RE = re.compile(r'[0-9]{1,6}\Z')

# server parameters that server_options may set: name -> (min, max) for a
# count, None for an NGINX time. Listed in the order they are rendered.
SERVER_PARAMETERS = (
    ('weight', (1, 1000)),
    ('max_fails', (0, 1000)),
    ('fail_timeout', None),
    ('max_conns', (0, 100000)),
)
DEFAULT_SERVER_OPTIONS = 'max_fails=3 fail_timeout=10s'
DEFAULT_KEEPALIVE = 32
KEEPALIVE_MAX = 10000

# Options shared by traffic_split and traffic_split_info (doc fragment
# supersmartmatch.platform.traffic_split).
SERVICE_ARGUMENT_SPEC = dict(
    service=dict(type='str', required=True),
    config_dir=dict(type='path', default='/etc/nginx/traffic_split'),
    state_dir=dict(type='path', default='/var/lib/supersmartmatch/traffic'),
)


class SplitError(Exception):
    """Bad input or an unusable state: nothing has been changed.

    ``details`` are extra result keys for ``fail_json`` (``conflict``,
    ``drift``, ``generation``...), so that a playbook can act on them.
    """

    def __init__(self, message, **details):
        super(SplitError, self).__init__(message)
        self.details = details


def full_match(regex, value):
    """True when ``value`` is a str matched by ``regex`` in full."""
    return isinstance(value, str) and regex.match(value) is not None


def format_percent(number):
    """``5.0`` -> ``'5'``, ``12.5`` -> ``'12.5'``."""
    if float(number).is_integer():
        return '%d' % int(number)
    return ('%.2f' % number).rstrip('0').rstrip('.')


def parse_percent(value):
    """Return ``value`` as a float in [0, 100] with at most two decimals.

    Accepts an int or float (not a bool), or a string of ASCII digits with an
    optional ``.`` and at most two decimals. ``'5_0'``, ``' 5'``, ``'5\\n'``
    and non-ASCII digits, which ``float()`` would take, are refused.
    """
    bad = 'percent must be a number from 0 to 100, got %r' % (value,)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SplitError(bad)
    if isinstance(value, str):
        if not full_match(PERCENT_TEXT_RE, value):
            if re.match(r'-?[0-9]+(\.[0-9]+)?\Z', value):
                number = float(value)
                if number < 0 or number > 100:
                    raise SplitError('percent must be between 0 and 100, got %s' % value)
                raise SplitError('percent has at most two decimals (NGINX split_clients), got %r' % (value,))
            raise SplitError(bad + ' (ASCII digits with at most two decimals)')
        number = float(value)
    else:
        number = float(value)
        if math.isnan(number) or math.isinf(number):
            raise SplitError(bad)
    if number < 0 or number > 100:
        raise SplitError('percent must be between 0 and 100, got %s' % format_percent(number))
    if round(number, 2) != number:
        raise SplitError('percent has at most two decimals (NGINX split_clients), got %r' % (value,))
    return number


def validate_service(name):
    if not full_match(SERVICE_RE, name):
        raise SplitError(
            'service must start with a lower-case letter and contain only a-z, 0-9 and _ '
            '(up to 63; it names NGINX upstreams, variables and files), got %r' % (name,))
    return name


def parse_backend(item):
    """Validate one ``host:port`` backend and return it normalised."""
    if not isinstance(item, str) or not item.strip():
        raise SplitError('backend must be a "host:port" string, got %r' % (item,))
    text = item.strip()
    host, sep, port = text.rpartition(':')
    if not sep or not host:
        raise SplitError('backend %r must be "host:port"' % (item,))
    if not full_match(HOST_RE, host):
        raise SplitError('backend %r has an invalid host %r' % (item, host))
    if not full_match(PORT_RE, port) or not 0 < int(port) < 65536:
        raise SplitError('backend %r has an invalid port %r (ASCII digits, 1-65535)' % (item, port))
    return '%s:%d' % (host, int(port))


def parse_backends(items, side):
    if items is None:
        raise SplitError('%s is required: a list of "host:port" backends' % side)
    if isinstance(items, str):
        items = [items]
    if not isinstance(items, (list, tuple)) or not items:
        raise SplitError('%s must be a non-empty list of "host:port" backends' % side)
    result = []
    for item in items:
        backend = parse_backend(item)
        if backend in result:
            raise SplitError('%s lists backend %s twice' % (side, backend))
        result.append(backend)
    return result


def validate_sides(stable, candidate):
    shared = sorted(set(stable) & set(candidate))
    if shared:
        raise SplitError('stable and candidate must not share backends: %s' % ', '.join(shared))


def validate_nginx_variable(value, option):
    if not full_match(NGINX_VAR_RE, value):
        raise SplitError('%s must be one NGINX variable such as $cookie_ssm_uid, got %r' % (option, value))
    return value


def validate_label(value, option, optional=True):
    """A version or a colour: ``[A-Za-z0-9][A-Za-z0-9._+-]{0,63}`` (None when optional)."""
    if value is None and optional:
        return None
    if not full_match(LABEL_RE, value):
        raise SplitError('%s must be 1 to 64 of A-Z a-z 0-9 . _ + - starting with a letter or digit, got %r'
                         % (option, value))
    return value


def validate_salt(value):
    value = '' if value is None else value
    if value != '' and not full_match(LABEL_RE, value):
        raise SplitError('salt must be empty or 1 to 64 of A-Z a-z 0-9 . _ + - starting with a letter or digit, '
                         'got %r' % (value,))
    return value


def validate_run_text(value, option, optional=False):
    """run_id, holder, phase of a lease: a safe charset, up to 128 characters."""
    if optional and value in (None, ''):
        return value
    if not full_match(RUN_TEXT_RE, value):
        raise SplitError('%s must be 1 to 128 of A-Z a-z 0-9 . _ @ : + - (not starting with a punctuation mark), '
                         'got %r' % (option, value))
    return value


def _check_parameter(name, limits, value, option):
    if limits is None:
        if not full_match(NGINX_TIME_RE, value):
            raise SplitError('%s: %s must be an NGINX time (ASCII digits with an optional ms, s, m or h), got %r'
                             % (option, name, value))
        return value
    if not full_match(DIGITS_RE, value) or not limits[0] <= int(value) <= limits[1]:
        raise SplitError('%s: %s must be a whole number from %d to %d, got %r'
                         % (option, name, limits[0], limits[1], value))
    return str(int(value))


def parse_server_options(text, option='server_options'):
    """Parse ``server`` parameters into their normalised text.

    Only ``weight``, ``max_fails``, ``fail_timeout`` and ``max_conns`` are
    known, each at most once; they come back in that order, single-spaced, so
    that two spellings of the same options render the same file.
    """
    if text is None:
        text = DEFAULT_SERVER_OPTIONS
    if not isinstance(text, str):
        raise SplitError('%s must be a string such as %r, got %r' % (option, DEFAULT_SERVER_OPTIONS, text))
    known = dict(SERVER_PARAMETERS)
    found = {}
    for token in re.split(r'[ \t]+', text.strip(' \t')) if text.strip(' \t') else []:
        name, sep, value = token.partition('=')
        if not sep or name not in known:
            raise SplitError('%s: %r is not one of %s (as name=value), nothing was changed'
                             % (option, token, ', '.join(n for n, _l in SERVER_PARAMETERS)))
        if name in found:
            raise SplitError('%s sets %s twice' % (option, name))
        found[name] = _check_parameter(name, known[name], value, option)
    return ' '.join('%s=%s' % (name, found[name]) for name, _l in SERVER_PARAMETERS if name in found)


def validate_keepalive(value):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= KEEPALIVE_MAX:
        raise SplitError('keepalive must be a whole number from 0 to %d, got %r' % (KEEPALIVE_MAX, value))
    return value


def validate_generation(value, option='expected_generation'):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SplitError('%s must be a whole number >= 0, got %r' % (option, value))
    return value
