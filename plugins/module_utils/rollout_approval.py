# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Manual approval of a rollout phase (Flagger's confirm-promotion): the approval record.

With ``rollout_require_approval`` a phase that passed its hold waits for an
approval before it records ``completed`` (and, for ``full``, promotes). The
approval record, ``<state_dir>/<service>.approval.json`` on every load
balancer, goes through these states:

* ``waiting``: the phase opened the wait (``rollout_approval`` state
  ``waiting``), with a deadline ``rollout_approval_timeout`` seconds away;
* ``approved`` or ``rejected``: ``playbooks/approve.yml`` recorded a decision,
  compare-and-set: only on the wait of the release (and phase) it names,
  while that run still holds the lease, before the deadline; a second call
  with the same decision changes nothing, the opposite one is refused;
* ``closed``: the phase ended (its verdict closes the wait, with the outcome).

Every change happens under a ``flock`` guard and is written atomically. The
waiting phase reads the record on its gate host every second (``metric_gate``
option ``confirm``, see :class:`ConfirmPoller`), and may also poll an approval
webhook once per gate round (2xx approves). Times are epoch seconds, given
by the caller (tests inject them).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import json
import os
import re
import time

from ansible_collections.supersmartmatch.platform.plugins.module_utils.metric_gate_watch import read_document
from ansible_collections.supersmartmatch.platform.plugins.module_utils.rollout_hooks import url_problem
from ansible_collections.supersmartmatch.platform.plugins.module_utils.traffic_split_validate import (
    LABEL_RE, RUN_TEXT_RE, SERVICE_RE)

FORMAT = 1
STATUSES = ('waiting', 'approved', 'rejected', 'closed')
DECISIONS = ('approved', 'rejected')
PHASES = ('canary', 'extended', 'full')
COMMENT_RE = re.compile(r'[A-Za-z0-9 ._,:;!?()@+/#=%-]{0,200}\Z')
MAX_URL_TIMEOUT = 300


class ApprovalError(Exception):
    """Bad input: nothing was read or written."""


class ApprovalRefused(Exception):
    """A decision refused (compare-and-set): nothing was changed."""


def iso(epoch):
    return datetime.datetime.fromtimestamp(float(epoch), datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def record_path(state_dir, service):
    return os.path.join(state_dir, '%s.approval.json' % service)


def guard_name(service):
    return '.%s.approval.guard' % service


def _match(pattern, value):
    return isinstance(value, str) and pattern.match(value) is not None


def validate_input(service, run_id=None, release=None, phase=None, holder=None, by=None, comment=None):
    """Refuse, naming the option, any value that could escape state_dir or garble the record."""
    if not _match(SERVICE_RE, service):
        raise ApprovalError('service must start with a lower-case letter and contain only a-z, 0-9 and _ '
                            '(up to 63), got %r' % (service,))
    for option, value in (('run_id', run_id), ('holder', holder), ('by', by)):
        if value is not None and not _match(RUN_TEXT_RE, value):
            raise ApprovalError('%s must be 1 to 128 of A-Z a-z 0-9 . _ @ : + - (not starting with a punctuation '
                                'mark), got %r' % (option, value))
    if release is not None and not _match(LABEL_RE, release):
        raise ApprovalError('release must be 1 to 64 of A-Z a-z 0-9 . _ + - starting with a letter or digit, got %r'
                            % (release,))
    if phase not in (None, '') and phase not in PHASES:
        raise ApprovalError('phase must be one of %s, got %r' % (', '.join(PHASES), phase))
    if comment not in (None, '') and not _match(COMMENT_RE, comment):
        raise ApprovalError('comment must be at most 200 of letters, digits, spaces and . _ , : ; ! ? ( ) @ + / # = %% -'
                            ', got %r' % (comment,))


def what(record):
    """``the canary of 2.0.0 (run canary-2.0.0-…, started by ci@runner)``."""
    return 'the %s of %s (run %s, started by %s)' % (
        record.get('phase'), record.get('release'), record.get('run_id'), record.get('holder'))


def open_wait(existing, service, run_id, release, phase, holder, timeout, now):
    """``(record, changed)``: the record of a phase now waiting for approval, deadline ``timeout`` s away.

    The same run opening its wait again changes nothing; any other record
    (an earlier run's, closed or left behind) is replaced: this run holds the lease.
    """
    if existing and existing.get('run_id') == run_id and existing.get('status') != 'closed':
        return existing, False
    record = {'format': FORMAT, 'service': service, 'run_id': run_id, 'release': release, 'phase': phase,
              'holder': holder, 'status': 'waiting', 'opened_at': iso(now), 'timeout_s': int(timeout),
              'deadline': float(now) + int(timeout), 'deadline_at': iso(float(now) + int(timeout)),
              'decision': None, 'by': None, 'at': None, 'comment': None, 'outcome': None, 'closed_at': None}
    return record, True


def nothing_waiting(service, existing, lease, now):
    live = bool(lease) and float(lease.get('expires') or 0) > now
    closed = bool(existing) and existing.get('status') == 'closed'
    if closed and not (live and lease.get('run_id') != existing.get('run_id')):
        return ('nothing is waiting for approval of %s: the last wait, %s, ended at %s (%s); nothing was changed'
                % (service, what(existing), existing.get('closed_at'), existing.get('outcome') or 'closed'))
    if live:
        return ('nothing is waiting for approval of %s: the %s run %s of %s is still going (a phase waits for '
                'approval only once its hold passed, and only with rollout_require_approval: true); nothing was '
                'changed' % (service, lease.get('phase') or '?', lease.get('run_id'), lease.get('holder')))
    return 'nothing is waiting for approval of %s (no phase is running); nothing was changed' % service


def decide(existing, lease, service, release, phase, decision, by, comment, now):
    """Record ``decision`` (approved or rejected) on the wait of ``release``: ``(record, changed, text)``.

    Compare-and-set: only a wait of that release (and ``phase``, when given)
    that is open, whose run still holds the lease, before its deadline.
    Anything else raises ApprovalRefused with the reason; nothing changes.
    """
    if decision not in DECISIONS:
        raise ApprovalError('decision must be one of %s, got %r' % (', '.join(DECISIONS), decision))
    if not existing or existing.get('status') not in STATUSES or existing.get('status') == 'closed':
        raise ApprovalRefused(nothing_waiting(service, existing, lease, now))
    if str(existing.get('release')) != release or (phase and existing.get('phase') != phase):
        asked = '%s of %s' % (phase, release) if phase else 'a phase of %s' % release
        raise ApprovalRefused('%s is what waits for approval, not %s; nothing was changed' % (what(existing), asked))
    status = existing.get('status')
    if status in DECISIONS:
        done = '%s was already %s by %s at %s' % (what(existing), status, existing.get('by'), existing.get('at'))
        if status == decision:
            return existing, False, done
        hint = ('to send everybody back now, run playbooks/rollback.yml' if status == 'approved'
                else 'the phase rolls back; start again with canary.yml')
        raise ApprovalRefused('%s: %s cannot change that (%s); nothing was changed' % (
            done, 'approving' if decision == 'approved' else 'rejecting', hint))
    if not lease or lease.get('run_id') != existing.get('run_id') or float(lease.get('expires') or 0) <= now:
        raise ApprovalRefused('%s no longer holds the rollout lease (the run ended, died or was rolled back): '
                              'nothing to approve; nothing was changed' % what(existing))
    if now > float(existing.get('deadline') or 0):
        raise ApprovalRefused('the wait for approval of %s ended at %s (rollout_approval_timeout %s s): too late, '
                              'the phase leaves the split as it is; run %s.yml again to hold and wait again, or '
                              'rollback.yml; nothing was changed' % (what(existing), existing.get('deadline_at'),
                                                                     existing.get('timeout_s'), existing.get('phase')))
    record = dict(existing, status=decision, decision=decision, by=by, at=iso(now), comment=comment or None)
    return record, True, '%s %s by %s at %s' % (what(existing), decision, by, record['at'])


def close_wait(existing, run_id, outcome, now):
    """``(record, changed)``: the wait of ``run_id`` closed with ``outcome``; another run's record is left alone."""
    if not existing or existing.get('run_id') != run_id or existing.get('status') == 'closed':
        return existing, False
    return dict(existing, status='closed', outcome=outcome, closed_at=iso(now)), True


def read_record(path):
    """The record at ``path``, None when there is none; ValueError/OSError when it cannot be read."""
    try:
        return read_document(path)
    except (IOError, OSError) as exc:
        if getattr(exc, 'errno', None) == errno.ENOENT:
            return None
        raise


def record_decision(record, run_id):
    """The decision ``approve.yml`` recorded for the run ``run_id``, or None while it waits."""
    if not record or record.get('run_id') != run_id or record.get('status') not in DECISIONS:
        return None
    return {'decided': True, 'decision': record['status'], 'by': record.get('by'), 'at': record.get('at'),
            'comment': record.get('comment'), 'source': 'approve.yml'}


def url_decision(status, now):
    """An approval webhook answering 2xx approves; anything else keeps waiting (None)."""
    if isinstance(status, int) and 200 <= status <= 299:
        return {'decided': True, 'decision': 'approved', 'by': 'the approval webhook', 'at': iso(now),
                'comment': None, 'source': 'webhook', 'url_status': status}
    return None


# --------------------------------------------------------------------------
# metric_gate's confirm option: read on the gate host while the gate waits
# --------------------------------------------------------------------------

def normalize_confirm(confirm):
    """Validate metric_gate's ``confirm`` option; None stays None. Raises ApprovalError."""
    if confirm is None:
        return None
    if not isinstance(confirm, dict):
        raise ApprovalError('confirm must be a dict with path and run_id, got %r' % (confirm,))
    unknown = sorted(set(confirm) - set(('path', 'run_id', 'url', 'body', 'timeout')))
    if unknown:
        raise ApprovalError('confirm: unknown key(s) %s' % ', '.join(unknown))
    path = confirm.get('path')
    if not isinstance(path, str) or not os.path.isabs(path) or '\x00' in path:
        raise ApprovalError('confirm: path must be an absolute path to the approval record, got %r' % (path,))
    if not _match(RUN_TEXT_RE, confirm.get('run_id')):
        raise ApprovalError('confirm: run_id must be 1 to 128 of A-Z a-z 0-9 . _ @ : + -, got %r'
                            % (confirm.get('run_id'),))
    url = confirm.get('url') or None
    if url is not None and url_problem(url, 'confirm: url'):
        raise ApprovalError(url_problem(url, 'confirm: url'))
    body = confirm.get('body')
    if body is not None and not isinstance(body, dict):
        raise ApprovalError('confirm: body must be a dict (the JSON posted to url)')
    timeout = confirm.get('timeout', 10)
    try:
        timeout = float(timeout)
    except (TypeError, ValueError):
        raise ApprovalError('confirm: timeout must be a number of seconds, got %r' % (timeout,))
    if not 0 < timeout <= MAX_URL_TIMEOUT:
        raise ApprovalError('confirm: timeout must be > 0 and <= %d seconds, got %s' % (MAX_URL_TIMEOUT, timeout))
    return {'path': path, 'run_id': confirm['run_id'], 'url': url, 'body': dict(body or {}), 'timeout': timeout}


def make_post(opener):
    """``post(url, body, timeout) -> (status or None, problem or None)`` over ``open_url``; never names the URL."""
    def post(url, body, timeout):
        try:
            response = opener(url, data=json.dumps(body), method='POST', timeout=timeout,
                              headers={'Content-Type': 'application/json'})
            try:
                return int(response.getcode()), None
            finally:
                response.close()
        # any failure is "not approved yet"
        except Exception as exc:  # pylint: disable=broad-except
            code = getattr(exc, 'code', None)
            if isinstance(code, int) and not isinstance(code, bool):
                return code, 'answered HTTP %s' % code
            reason = getattr(exc, 'reason', None) or exc
            return None, 'no answer (%s)' % ' '.join(str(reason).replace(url, '<url>').split())[:200]
    return post


class ConfirmPoller(object):
    """What metric_gate polls in step mode: ``poller()`` is None while waiting, else the decision.

    The record is read at every call (every second while the gate waits);
    the webhook, when there is one, is POSTed once per module call, that is
    once per gate round. ``status()`` is the ``confirm`` result to return.
    """

    def __init__(self, confirm, read=read_record, post=None, now=time.time):
        self.confirm, self.read, self.post, self.now = confirm, read, post, now
        self.url_polled = False
        self.decision = None
        self.problem = None
        self.url_status = None

    def __call__(self):
        if self.decision:
            return self.decision
        try:
            self.decision = record_decision(self.read(self.confirm['path']), self.confirm['run_id'])
        except (OSError, ValueError) as exc:
            self.problem = 'approval record %s unreadable: %s' % (self.confirm['path'], exc)
        if not self.decision and self.confirm['url'] and not self.url_polled and self.post is not None:
            self.url_polled = True
            self.url_status, problem = self.post(self.confirm['url'], self.confirm['body'], self.confirm['timeout'])
            self.problem = problem or self.problem
            self.decision = url_decision(self.url_status, self.now())
        return self.decision

    def status(self):
        if self.decision:
            return dict(self.decision)
        out = {'decided': False, 'decision': 'waiting', 'url_status': self.url_status}
        if self.problem:
            out['problem'] = self.problem
        return out


def confirm_text(status):
    """``approved by alice@ctl at <time> (approve.yml)`` / ``waiting for approval``."""
    if not status or not status.get('decided'):
        return 'waiting for approval%s' % ((' (%s)' % status['problem']) if (status or {}).get('problem') else '')
    return '%s by %s at %s (%s)%s' % (status.get('decision'), status.get('by'), status.get('at'), status.get('source'),
                                      (': %s' % status['comment']) if status.get('comment') else '')
