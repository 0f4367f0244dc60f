# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/status.yml: where traffic is on every balancer, as a table or JSON.

Built from the views of ``traffic_split_info`` (see rollout_plan.views_of)
and the last gate round (a live hold's, else the last report's).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.supersmartmatch.platform.plugins.module_utils.rollout_plan import fmt_pct


def row(view):
    if view['status'] != 'ok':
        return {'host': view['host'], 'reachable': False, 'split': 'UNKNOWN (%s)' % view.get('msg'),
                'percent': None, 'phase': None, 'status': None, 'generation': None, 'drift': None, 'lease': None}
    info = view['info']
    state = info.get('state') or {}
    if not info.get('exists'):
        return {'host': view['host'], 'reachable': True, 'split': 'no state (not provisioned)', 'percent': None,
                'phase': None, 'status': None, 'generation': None, 'drift': bool(info.get('drift')), 'lease': None}
    stable, cand = state.get('stable') or {}, state.get('candidate') or {}
    pct = float(state.get('percent') or 0)
    lease = info.get('lease')
    return {
        'host': view['host'], 'reachable': True,
        'split': '%s %s %s %% | %s %s %s %%' % (
            stable.get('version') or '-', stable.get('color') or '-', fmt_pct(100 - pct),
            cand.get('version') or '-', cand.get('color') or '-', fmt_pct(pct)),
        'percent': pct, 'phase': state.get('phase'), 'status': state.get('status'),
        'generation': info.get('generation'), 'drift': bool(info.get('drift')),
        'drift_reason': info.get('drift_reason'),
        'lease': None if not lease else {'holder': lease.get('holder'), 'run_id': lease.get('run_id'),
                                         'phase': lease.get('phase'), 'expires_at': lease.get('expires_at'),
                                         'expired': bool(lease.get('expired'))},
        'updated_by': state.get('updated_by'), 'updated_at': state.get('updated_at'),
    }


def last_round(gate):
    """The last round of a gate result or report (``measurements`` with ``sample``)."""
    measurements = (gate or {}).get('measurements') or []
    if not measurements:
        return None
    last = max(m.get('sample') or 0 for m in measurements)
    checks = [m for m in measurements if (m.get('sample') or 0) == last]
    return {'round': last, 'time': checks[-1].get('time'),
            'checks': [{'name': m.get('check'), 'value': m.get('value'), 'outcome': m.get('outcome'),
                        'message': m.get('message')} for m in checks]}


def approval_of(record):
    """What a balancer's approval record says while a phase waits (or was just decided), else None.

    ``record`` is the JSON of ``<service>.approval.json`` (rollout_approval);
    a closed record (the phase ended) is history, not shown.
    """
    if not isinstance(record, dict) or record.get('status') not in ('waiting', 'approved', 'rejected'):
        return None
    return {'status': record['status'], 'release': record.get('release'), 'phase': record.get('phase'),
            'run_id': record.get('run_id'), 'holder': record.get('holder'), 'opened_at': record.get('opened_at'),
            'deadline_at': record.get('deadline_at'), 'by': record.get('by'), 'at': record.get('at')}


def status(views, gate=None, gate_source=None, approvals=None):
    rows = [row(v) for v in views]
    for r in rows:
        r['approval'] = approval_of((approvals or {}).get(r['host'])) if r['reachable'] else None
    unknown = [r['host'] for r in rows if not r['reachable']]
    drift = [r['host'] for r in rows if r['drift']]
    keys = set((r['split'], r['phase'], r['status']) for r in rows if r['reachable'])
    return {'balancers': rows, 'unknown': unknown, 'drift': drift, 'agree': len(keys) <= 1 and not unknown,
            'gate': last_round(gate), 'gate_source': gate_source}


def _approval_lines(doc):
    """``WAITING FOR APPROVAL`` (with how to approve or reject), or the decision not yet acted on."""
    # one line per wait (each balancer opens its record a moment apart: the earliest deadline is shown)
    groups, deadlines = {}, {}
    for r in doc['balancers']:
        a = r.get('approval')
        if a:
            key = (a['status'], a['phase'], a['release'], a['run_id'], a['by'])
            groups.setdefault(key, []).append(r['host'])
            if a['deadline_at'] and (deadlines.get(key) is None or a['deadline_at'] < deadlines[key]):
                deadlines[key] = a['deadline_at']  # ISO times of one format: sorted as text
    lines = []
    for key, hosts in sorted(groups.items(), key=lambda item: item[1]):
        state, phase, release, _run_id, by = key
        deadline = deadlines.get(key)
        if state == 'waiting':
            lines.append('WAITING FOR APPROVAL: the %s of %s on %s, until %s: playbooks/approve.yml -e release_version=%s '
                         '(add -e decision=reject to roll back)' % (phase, release, ', '.join(hosts), deadline, release))
        else:
            lines.append('The %s of %s was %s by %s on %s (the holding run acts on it at its next round)'
                         % (phase, release, state.upper(), by, ', '.join(hosts)))
    return lines


def _cell(value):
    return '-' if value is None or value == '' else str(value)


def table(doc):
    """Text lines: one row per balancer, then the last gate round."""
    header = ('balancer', 'stable v colour % | candidate v colour %', 'phase', 'status', 'gen', 'drift', 'lease')
    body = []
    for r in doc['balancers']:
        lease = r.get('lease')
        lease_text = '-' if not lease else '%s until %s%s' % (
            lease['holder'], lease['expires_at'], ' (expired)' if lease['expired'] else '')
        drift = '-' if r['drift'] is None else ('DRIFT: %s' % r.get('drift_reason') if r['drift'] else 'no')
        body.append((r['host'], r['split'], _cell(r['phase']), _cell(r['status']), _cell(r['generation']), drift,
                     lease_text))
    widths = [max(len(str(x[i])) for x in [header] + body) for i in range(len(header))]
    lines = ['  '.join(str(x[i]).ljust(widths[i]) for i in range(len(header))).rstrip() for x in [header] + body]
    if doc['unknown']:
        lines.append('UNKNOWN: %s (did not answer: their split is unknown)' % ', '.join(doc['unknown']))
    if doc['drift']:
        lines.append('DRIFT: %s (run playbooks/rollback.yml to repair)' % ', '.join(doc['drift']))
    if not doc['agree'] and not doc['unknown']:
        lines.append('The balancers DISAGREE on where traffic goes: run playbooks/rollback.yml')
    lines.extend(_approval_lines(doc))
    gate = doc.get('gate')
    if gate:
        lines.append('last gate round %s at %s (%s):' % (gate['round'], gate['time'], doc.get('gate_source') or '-'))
        for c in gate['checks']:
            lines.append('  %s: %s %s%s' % (c['name'], _cell(c['value']), c['outcome'],
                                            ' (%s)' % c['message'] if c.get('message') else ''))
    return lines
