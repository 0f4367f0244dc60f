# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/validate_deployment.yml: what each smoke-test reading means, and the rows of a fleet.

The playbook sends one labelled match and its feedback (with the match answer's
``feedback_token``, which the service requires) through every balancer, reads
each live slot's ``/health`` on every application host, and reads the match and
feedback rows back through PostgreSQL's read-only endpoint. Each function here returns
``(status, detail)`` (see precheck); precheck.verdict and precheck.table finish the job.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.supersmartmatch.platform.plugins.module_utils.precheck import (
    FAIL, PASS, WARN, silent_hosts, verdict)

CHECKS = ('slot health', 'smoke match', 'feedback', 'rows replicated')
RAW_KEYS = ('match', 'feedback', 'health', 'rows')
RUN_RE = re.compile(r'[0-9]{8}T[0-9]{6}Z\Z')
HOST_RE = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z')


def candidate_id(run, host):
    """The smoke test's candidate id on one balancer (unique per run and balancer)."""
    return 'validate-%s-%s' % (run, host)


def _answer(data):
    body = data.get('json')
    return body if isinstance(body, dict) else {}


def _http_problem(data, expected_status):
    if data.get('status') == expected_status:
        return None
    return 'HTTP %s (expected %d): %s' % (data.get('status'), expected_status,
                                          str(data.get('msg') or data.get('content') or '')[:160])


def smoke_match(data, expected_top, live_versions):
    """``POST /api/v2/match`` through a balancer: 200, the expected best offer, a live version."""
    problem = _http_problem(data, 200)
    if problem:
        return FAIL, 'match: %s' % problem
    body = _answer(data)
    matches = body.get('matches') if isinstance(body.get('matches'), list) else []
    top = matches[0].get('offer_id') if matches and isinstance(matches[0], dict) else None
    version, slot = body.get('version'), body.get('slot')
    if version not in live_versions:
        live = ', '.join(live_versions) or 'no balancer read'
        return FAIL, 'answered by %s (%s), which is not live (%s)' % (version, slot, live)
    if top != expected_top:
        return FAIL, 'top offer %s, expected %s (answered by %s, %s)' % (top, expected_top, version, slot)
    return PASS, 'top offer %s as labelled, answered by %s (%s)' % (top, version, slot)


def feedback(data):
    """``POST /api/v2/feedback`` through a balancer: 202 accepted.

    A 401 is the service refusing the feedback token the match answer gave (its reason: missing,
    malformed, expired or forged): the slots behind the balancer do not share app_feedback_key, or
    the answering release issues no token.
    """
    if data.get('status') == 401:
        body = _answer(data)
        return FAIL, ('feedback refused (HTTP 401, %s): %s; do all slots share app_feedback_key?'
                      % (body.get('reason', 'no reason given'),
                         str(body.get('error') or data.get('content') or data.get('msg') or '')[:160]))
    problem = _http_problem(data, 202)
    if problem:
        return FAIL, 'feedback: %s' % problem
    if _answer(data).get('accepted') is not True:
        return FAIL, 'feedback not accepted: %s' % str(data.get('json'))[:160]
    return PASS, 'accepted by %s (%s)' % (_answer(data).get('version'), _answer(data).get('slot'))


def slot_health(result):
    """``GET /health`` of one live slot on an application host (the loop item names it)."""
    item = result.get('item') or {}
    what = '%s slot (%s)' % (item.get('colour'), item.get('version'))
    problem = _http_problem(result, 200)
    if problem:
        return FAIL, '%s: %s' % (what, problem)
    body = _answer(result)
    if body.get('status') != 'ok':
        return FAIL, '%s: status %s' % (what, body.get('status'))
    if body.get('version') != item.get('version'):
        return FAIL, '%s: runs %s' % (what, body.get('version'))
    return PASS, '%s ok' % what


def rows_replicated(data, ids):
    """``psql -At -F '|'`` lines ``<table>|<candidate id>|<count>`` read through the read-only endpoint.

    Returns one ``(balancer, status, detail)`` per balancer of ``ids`` (balancer -> candidate id).
    """
    if data.get('skipped_reason'):
        return [(host, WARN, data['skipped_reason']) for host in sorted(ids)]
    if data.get('rc') != 0:
        why = (data.get('stderr') or data.get('msg') or '').strip().splitlines()
        return [(host, FAIL, 'read-only endpoint query failed: %s' % (why[0][:200] if why else 'rc=%s' % data.get('rc')))
                for host in sorted(ids)]
    counts = {}
    for line in (data.get('stdout') or '').splitlines():
        parts = line.split('|')
        if len(parts) == 3 and parts[2].isdigit():
            counts[(parts[0], parts[1])] = int(parts[2])
    out = []
    for host in sorted(ids):
        matches, feedbacks = counts.get(('matches', ids[host]), 0), counts.get(('feedback', ids[host]), 0)
        if matches and feedbacks:
            out.append((host, PASS, '%d match and %d feedback row(s) of %s read back from a replica'
                        % (matches, feedbacks, ids[host])))
        else:
            out.append((host, FAIL, '%s: %d match and %d feedback row(s) readable (expected both)'
                        % (ids[host], matches, feedbacks)))
    return out


def report(hosts, expected_hosts, run, expected_top, live_versions):
    """Every row (silent hosts first), the blockers and the verdict. ``hosts``: host -> raw readings."""
    rows = silent_hosts(hosts, expected_hosts)
    balancers = sorted(h for h in hosts if isinstance((hosts[h] or {}).get('match'), dict)
                       and not hosts[h]['match'].get('skipped'))
    for host in sorted(hosts):
        raw = hosts[host] or {}
        for result in (raw.get('health') or {}).get('results') or []:
            if not result.get('skipped'):
                status, detail = slot_health(result)
                rows.append({'check': 'slot health', 'host': host, 'status': status, 'detail': detail})
    for host in balancers:
        raw = hosts[host]
        status, detail = smoke_match(raw['match'], expected_top, live_versions)
        rows.append({'check': 'smoke match', 'host': host, 'status': status, 'detail': detail})
        if isinstance(raw.get('feedback'), dict) and not raw['feedback'].get('skipped'):
            status, detail = feedback(raw['feedback'])
        else:
            status, detail = FAIL, 'no feedback sent (the match failed)'
        rows.append({'check': 'feedback', 'host': host, 'status': status, 'detail': detail})
    ids = dict((host, candidate_id(run, host)) for host in balancers)
    for host in sorted(hosts):
        data = (hosts[host] or {}).get('rows')
        if isinstance(data, dict) and not data.get('skipped'):
            for balancer, status, detail in rows_replicated(data, ids):
                rows.append({'check': 'rows replicated', 'host': '%s via %s' % (balancer, host), 'status': status,
                             'detail': detail})
    return verdict(rows)
