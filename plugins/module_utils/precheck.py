# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/pre_deployment_check.yml: what each raw reading means, the table, the verdict.

The playbook reads (``nginx -t``, traffic_split_info, ``openssl x509 -enddate``,
``df``, Patroni's ``/cluster``, ``CLUSTER INFO``, ``/-/ready``, ``pgbackrest
info``) and changes nothing; every decision is one of the functions below,
each returning ``(status, detail)`` with status ``pass``, ``fail`` (a
blocker), ``warn`` (shown, not a blocker) or ``skip``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import json
import re
import time

from ansible_collections.supersmartmatch.platform.plugins.module_utils.scale import upstream_addresses

PASS, FAIL, WARN, SKIP = 'pass', 'fail', 'warn', 'skip'
REDIS_SLOTS = 16384
CHECKS = ('nginx config', 'split state', 'rollout lease', 'app fleet', 'certificate', 'disk space', 'patroni',
          'redis cluster', 'prometheus', 'alertmanager', 'backup')
RAW_KEYS = ('nginx', 'split', 'certificates', 'disk', 'patroni', 'redis', 'ready', 'backup')
_ENDDATE = re.compile(r'notAfter=([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4}) GMT\s*\Z')
_MONTHS = ('Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec')


def nginx_config(data):
    """``nginx -t``: rc and stderr."""
    if data.get('rc') == 0:
        return PASS, 'configuration valid'
    lines = [line for line in (data.get('stderr') or data.get('msg') or '').splitlines() if line.strip()]
    return FAIL, 'nginx -t failed: %s' % (lines[0] if lines else 'rc=%s' % data.get('rc'))


def split_state(info):
    """traffic_split_info's result: the state agrees with the live file."""
    if info.get('failed'):
        return FAIL, 'traffic_split_info failed: %s' % info.get('msg')
    if not info.get('exists'):
        return WARN, 'no split state yet (not provisioned by the nginx role?)'
    if info.get('drift'):
        return FAIL, 'drift: %s; run playbooks/rollback.yml' % info.get('drift_reason')
    state = info.get('state') or {}
    detail = 'live file at generation %s, %s %% on the candidate' % (info.get('generation'), state.get('percent', 0))
    return PASS, detail


def lease(info):
    """No rollout lease held (an expired one is free)."""
    if info.get('failed'):
        return FAIL, 'traffic_split_info failed: %s' % info.get('msg')
    held = info.get('lease')
    if not held:
        return PASS, 'no lease held'
    if held.get('expired'):
        return PASS, 'expired lease of %s (free)' % held.get('run_id')
    return FAIL, 'lease held by %s for %s (%s), until %s' % (held.get('holder'), held.get('run_id'),
                                                             held.get('phase'), held.get('expires_at'))


def fleet(info, addresses):
    """The upstreams name exactly the app group's hosts (``addresses``, as the backends filter names them).

    A phase builds its upstreams from the app group: a host the upstreams lack
    would get stable traffic on a slot where nothing runs, and a host the group
    lacks would leave the upstreams without a drain. scale.yml does both safely.
    """
    if info.get('failed'):
        return FAIL, 'traffic_split_info failed: %s' % info.get('msg')
    if not info.get('exists'):
        return WARN, 'no split state yet (not provisioned by the nginx role?)'
    state = info.get('state') or {}
    members = upstream_addresses(state)
    missing = [a for a in addresses if a not in members]
    extra = sorted(members - set(addresses))
    problems = []
    if missing:
        problems.append('%s in the app group but in no upstream (add with playbooks/scale.yml)' % ', '.join(missing))
    if extra:
        problems.append('%s in the upstreams but not in the app group (put it back, then drain it with '
                        'playbooks/scale.yml -e scale_remove=<host>)' % ', '.join(extra))
    if problems:
        return FAIL, '; '.join(problems)
    return PASS, '%d app host(s) in the upstreams, as in the app group' % len(members)


def not_after(text):
    """Epoch of ``notAfter=Nov 29 12:00:00 2027 GMT`` (openssl x509 -enddate), or None."""
    match = _ENDDATE.match((text or '').strip())
    if not match or match.group(1) not in _MONTHS:
        return None
    mon, day, hh, mm, ss, year = match.groups()
    return calendar.timegm((int(year), _MONTHS.index(mon) + 1, int(day), int(hh), int(mm), int(ss), 0, 0, 0))


def certificate(data, now, days):
    """``openssl x509 -noout -enddate -in <path>``: valid for more than ``days`` days."""
    path = data.get('path', 'certificate')
    if data.get('rc') != 0:
        return FAIL, '%s unreadable: %s' % (path, (data.get('stderr') or data.get('msg') or '').strip()[:200])
    end = not_after(data.get('stdout'))
    if end is None:
        return FAIL, '%s: cannot read its end date from %r' % (path, (data.get('stdout') or '')[:80])
    left = (end - now) / 86400.0
    ends = time.strftime('%Y-%m-%d', time.gmtime(end))
    if left < 0:
        return FAIL, '%s expired on %s' % (path, ends)
    if left < days:
        return FAIL, '%s expires on %s, in %.1f days (< %d)' % (path, ends, left, days)
    return PASS, '%s valid until %s (%d days)' % (path, ends, int(left))


def disk(data, min_free_percent):
    """``df -P -k <path>``: free space above ``min_free_percent`` on the filesystem."""
    if data.get('rc') != 0:
        return FAIL, 'df failed: %s' % (data.get('stderr') or data.get('msg') or '').strip()[:200]
    lines = [line.split() for line in (data.get('stdout') or '').splitlines()[1:] if line.strip()]
    if not lines or len(lines[-1]) < 6:
        return FAIL, 'df gave no reading'
    fields = lines[-1]
    try:
        size, avail = int(fields[1]), int(fields[3])
    except ValueError:
        return FAIL, 'df gave no reading'
    if size <= 0:
        return FAIL, 'df reports a filesystem of size 0 at %s' % fields[-1]
    free = 100.0 * avail / size
    text = '%.1f %% free on %s (%.1f GiB)' % (free, fields[-1], avail / 1048576.0)
    return (PASS if free >= min_free_percent else FAIL), text + ('' if free >= min_free_percent else
                                                                 ' (< %s %%)' % min_free_percent)


def patroni(data, max_lag_bytes):
    """Patroni's ``GET /cluster``: one leader, every other member streaming, lag under the bound."""
    if data.get('status') != 200 or not isinstance(data.get('json'), dict):
        return FAIL, 'Patroni REST API did not answer: %s' % (data.get('msg') or data.get('status'))
    members = data['json'].get('members') or []
    leaders = [m.get('name') for m in members if m.get('role') in ('leader', 'standby_leader')]
    if len(leaders) != 1:
        return FAIL, 'expected one leader, found %d (%s)' % (len(leaders), ', '.join(leaders) or 'none')
    problems, replicas = [], []
    for member in members:
        if member.get('name') == leaders[0]:
            continue
        replicas.append(member.get('name'))
        if member.get('state') not in ('streaming', 'running'):
            problems.append('%s is %s' % (member.get('name'), member.get('state')))
            continue
        lag = member.get('lag')
        if not isinstance(lag, int):
            problems.append('%s has unknown lag (%s)' % (member.get('name'), lag))
        elif lag > max_lag_bytes:
            problems.append('%s lags %d bytes (> %d)' % (member.get('name'), lag, max_lag_bytes))
    if not replicas:
        return FAIL, 'leader %s has no replica' % leaders[0]
    if problems:
        return FAIL, '; '.join(problems)
    return PASS, 'leader %s, %d streaming replica(s) within %d bytes' % (leaders[0], len(replicas), max_lag_bytes)


def redis(data):
    """``CLUSTER INFO`` (after AUTH): state ok and every slot assigned and ok."""
    if data.get('rc') != 0:
        return FAIL, 'redis-cli failed: %s' % (data.get('stderr') or data.get('msg') or '').strip()[:200]
    fields = dict(line.strip().split(':', 1) for line in (data.get('stdout') or '').splitlines() if ':' in line)
    state = fields.get('cluster_state')
    if state is None:
        return FAIL, 'no CLUSTER INFO answer: %s' % (data.get('stdout') or '').strip()[:200]
    try:
        assigned, ok = int(fields.get('cluster_slots_assigned', -1)), int(fields.get('cluster_slots_ok', -1))
    except ValueError:
        return FAIL, 'CLUSTER INFO unreadable'
    if state != 'ok' or assigned != REDIS_SLOTS or ok != REDIS_SLOTS:
        return FAIL, 'cluster_state:%s, %s of %d slots assigned, %s ok' % (state, assigned, REDIS_SLOTS, ok)
    return PASS, 'cluster_state:ok, %d slots covered' % REDIS_SLOTS


def ready(data, what):
    """``GET /-/ready`` of Prometheus or Alertmanager."""
    if data.get('status') == 200:
        return PASS, '%s ready' % what
    return FAIL, '%s did not answer ready: %s' % (what, data.get('msg') or data.get('status'))


def backup(data, now, max_age_hours):
    """``pgbackrest --stanza=S info --output=json``: a backup that ended within ``max_age_hours``."""
    if data.get('rc') != 0:
        return FAIL, 'pgbackrest info failed: %s' % (data.get('stderr') or data.get('msg') or '').strip()[:200]
    try:
        stanzas = json.loads(data.get('stdout') or '')
    except ValueError:
        return FAIL, 'pgbackrest info gave no JSON'
    backups = [b for s in stanzas if isinstance(s, dict) for b in s.get('backup') or []
               if isinstance(b, dict) and isinstance(b.get('timestamp', {}).get('stop'), int)]
    if not backups:
        return FAIL, 'no backup in the repository'
    last = max(backups, key=lambda b: b['timestamp']['stop'])
    stop = last['timestamp']['stop']
    age = (now - stop) / 3600.0
    latest = '%s (%s) ended %s' % (last.get('label', '?'), last.get('type', '?'),
                                   time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(stop)))
    if age > max_age_hours:
        return FAIL, 'latest backup %s, %.1f h ago (> %s h)' % (latest, age, max_age_hours)
    return PASS, 'latest backup %s, %.1f h ago' % (latest, age)


def evaluate(reading, now, thresholds):
    """One reading ``{check, host, data}`` -> its row ``{check, host, status, detail}``."""
    check, data = reading['check'], reading.get('data') or {}
    if data.get('unreachable'):
        status, detail = FAIL, 'host did not answer'
    elif check == 'nginx config':
        status, detail = nginx_config(data)
    elif check == 'split state':
        status, detail = split_state(data)
    elif check == 'rollout lease':
        status, detail = lease(data)
    elif check == 'app fleet':
        status, detail = fleet(data, thresholds.get('app_addresses') or [])
    elif check == 'certificate':
        status, detail = certificate(data, now, thresholds['cert_days'])
    elif check == 'disk space':
        status, detail = disk(data, thresholds['min_free_percent'])
    elif check == 'patroni':
        status, detail = patroni(data, thresholds['max_lag_bytes'])
    elif check == 'redis cluster':
        status, detail = redis(data)
    elif check in ('prometheus', 'alertmanager'):
        status, detail = ready(data, check.capitalize())
    elif check == 'backup':
        if data.get('skipped_reason'):
            status, detail = WARN, data['skipped_reason']
        else:
            status, detail = backup(data, now, thresholds['backup_max_age_hours'])
    else:
        raise ValueError('unknown check %r' % check)
    return {'check': check, 'host': reading['host'], 'status': status, 'detail': detail}


def readings_of(host, raw, fleet_check=False):
    """What one host's plays recorded (``__precheck_raw``) -> its readings ``{check, host, data}``.

    ``raw`` holds the registered results: ``nginx`` and ``split`` (balancers), ``certificates``
    and ``ready`` (loop results, the path or the check in ``item``), ``disk``, ``patroni``,
    ``redis`` and ``backup``. A missing or skipped result gives no reading.
    """
    def taken(result):
        return isinstance(result, dict) and not result.get('skipped')

    out = []
    if taken(raw.get('nginx')):
        out.append({'check': 'nginx config', 'host': host, 'data': raw['nginx']})
    if taken(raw.get('split')):
        out.append({'check': 'split state', 'host': host, 'data': raw['split']})
        out.append({'check': 'rollout lease', 'host': host, 'data': raw['split']})
        if fleet_check:
            out.append({'check': 'app fleet', 'host': host, 'data': raw['split']})
    for result in (raw.get('certificates') or {}).get('results') or []:
        if taken(result):
            out.append({'check': 'certificate', 'host': host, 'data': dict(result, path=result.get('item'))})
    if taken(raw.get('disk')):
        out.append({'check': 'disk space', 'host': host, 'data': raw['disk']})
    if taken(raw.get('patroni')):
        out.append({'check': 'patroni', 'host': host, 'data': raw['patroni']})
    if taken(raw.get('redis')):
        out.append({'check': 'redis cluster', 'host': host, 'data': raw['redis']})
    for result in (raw.get('ready') or {}).get('results') or []:
        if taken(result) and (result.get('item') or {}).get('check') in ('prometheus', 'alertmanager'):
            out.append({'check': result['item']['check'], 'host': host, 'data': result})
    if taken(raw.get('backup')):
        out.append({'check': 'backup', 'host': host, 'data': raw['backup']})
    return out


def silent_hosts(hosts, expected):
    """Rows for hosts that should have answered and recorded nothing (unreachable, frozen, failed)."""
    return [{'check': 'reachable', 'host': host, 'status': FAIL,
             'detail': 'no reading: the host did not answer (unreachable, frozen or failed)'}
            for host in expected if not hosts.get(host)]


def report(hosts, expected_hosts, now, thresholds):
    """Every row (silent hosts first), the blockers, and the verdict. ``hosts``: host -> raw."""
    fleet_check = bool(thresholds.get('app_addresses'))
    readings = sorted((r for host in hosts for r in readings_of(host, hosts[host] or {}, fleet_check)),
                      key=lambda r: (CHECKS.index(r['check']), r['host']))
    return verdict(silent_hosts(hosts, expected_hosts) + [evaluate(r, now, thresholds) for r in readings])


def verdict(rows):
    """The rows, their blockers (status fail), the count of each status, and whether none blocks."""
    blockers = [r for r in rows if r['status'] == FAIL]
    counts = dict((s, sum(1 for r in rows if r['status'] == s)) for s in (PASS, FAIL, WARN, SKIP))
    return {'rows': rows, 'blockers': blockers, 'passed': not blockers, 'counts': counts}


def raw_problem(hosts, keys):
    """A clear message for the first malformed host record (``hosts``: host -> raw readings), or None."""
    for host, raw in hosts.items():
        if raw is not None and not isinstance(raw, dict):
            return 'hosts[%s]: must be a dict of registered results, got %s' % (host, type(raw).__name__)
        for key, value in (raw or {}).items():
            if key not in keys:
                return 'hosts[%s]: unknown reading %r (known: %s)' % (host, key, ', '.join(keys))
            if not isinstance(value, dict):
                return 'hosts[%s][%s]: must be a registered result (a dict), got %s' % (
                    host, key, type(value).__name__)
    return None


def finish(module, result, fail_on_blocker):
    """End a checks module: its rows, blockers, verdict, table and verdict line; failed on a blocker if asked."""
    lines = table(result)
    out = dict(changed=False, rows=result['rows'], blockers=result['blockers'], passed=result['passed'],
               table=lines, msg=lines[-1])
    if not result['passed'] and fail_on_blocker:
        module.fail_json(**out)
    module.exit_json(**out)


def refuse(module, problem):
    """End a checks module on a bad parameter: the problem named, nothing judged."""
    module.fail_json(msg=problem, changed=False, rows=[], blockers=[], passed=False, table=[])


def table(result):
    """The report as aligned text lines, blockers marked, and a closing verdict line."""
    rows = result['rows']
    width_c = max([len('check')] + [len(r['check']) for r in rows])
    width_h = max([len('host')] + [len(r['host']) for r in rows])
    lines = ['%-*s  %-*s  %-6s  %s' % (width_c, 'check', width_h, 'host', 'result', 'detail')]
    for r in rows:
        lines.append('%-*s  %-*s  %-6s  %s' % (width_c, r['check'], width_h, r['host'],
                                               r['status'].upper(), r['detail']))
    counts = result['counts']
    if result['passed']:
        lines.append('PASSED: %d check(s) passed, %d warning(s), no blocker' % (counts[PASS], counts[WARN]))
    else:
        lines.append('BLOCKED: %d blocker(s): %s' % (len(result['blockers']), '; '.join(
            '%s on %s' % (r['check'], r['host']) for r in result['blockers'])))
    return lines
