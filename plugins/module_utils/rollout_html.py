# -*- coding: utf-8 -*-
# Copyright: SuperSmartMatch platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A phase report as a self-contained HTML page with SVG charts.

No script, no CDN, no external font: the page is viewable offline and can be
attached to a ticket. Built from the JSON report alone (``rollout_verdict.
build_report``): one timeline chart per gate metric (the candidate, the stable
side when measured, the threshold lines, the failing rounds marked), the split
over time, the verdict with its reason, who ran it and the versions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import html

WIDTH, HEIGHT = 640, 220
PAD_L, PAD_R, PAD_T, PAD_B = 64, 16, 16, 36
COLORS = {'candidate': '#1f6feb', 'stable': '#6e7781', 'threshold': '#cf222e', 'split': '#8250df'}
VERDICT_COLORS = {'passed': '#1a7f37', 'promoted': '#1a7f37', 'rolled_back': '#cf222e', 'failed': '#cf222e',
                  'aborted': '#9a6700', 'inconclusive': '#9a6700', 'approval_timeout': '#9a6700', 'refused': '#6e7781'}
OUTCOME_MARKS = {'failed': '#cf222e', 'error': '#bc4c00', 'inconclusive': '#6e7781', 'no_data': '#6e7781'}


def esc(value):
    return html.escape('' if value is None else str(value), quote=True)


def epoch(text):
    """ISO-8601 UTC text -> epoch seconds (None if unreadable)."""
    if not text:
        return None
    value = str(text).replace('Z', '+00:00')
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def _nice(value):
    if value is None:
        return '-'
    return ('%.4g' % value)


class Scale(object):
    """Maps data coordinates into the chart's pixel box."""

    def __init__(self, x0, x1, y0, y1):
        if x1 <= x0:
            x1 = x0 + 1
        if y1 <= y0:
            y0, y1 = y0 - 0.5, y1 + 0.5
        self.x0, self.x1, self.y0, self.y1 = x0, x1, y0, y1

    def x(self, value):
        return PAD_L + (value - self.x0) / (self.x1 - self.x0) * (WIDTH - PAD_L - PAD_R)

    def y(self, value):
        return HEIGHT - PAD_B - (value - self.y0) / (self.y1 - self.y0) * (HEIGHT - PAD_T - PAD_B)


def _axes(scale, y_label, x_label='seconds since the phase started'):
    parts = ['<rect x="%d" y="%d" width="%d" height="%d" fill="#ffffff" stroke="#d0d7de"/>'
             % (PAD_L, PAD_T, WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B)]
    for i in range(5):
        value = scale.y0 + (scale.y1 - scale.y0) * i / 4.0
        y = scale.y(value)
        parts.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#eaeef2"/>' % (PAD_L, WIDTH - PAD_R, y, y))
        parts.append('<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="#57606a">%s</text>'
                     % (PAD_L - 4, y + 3, esc(_nice(value))))
    for i in range(5):
        value = scale.x0 + (scale.x1 - scale.x0) * i / 4.0
        x = scale.x(value)
        parts.append('<text x="%.1f" y="%d" font-size="10" text-anchor="middle" fill="#57606a">%d</text>'
                     % (x, HEIGHT - PAD_B + 14, round(value - scale.x0)))
    parts.append('<text x="%d" y="%d" font-size="10" fill="#57606a">%s</text>' % (PAD_L, HEIGHT - 4, esc(x_label)))
    parts.append('<text x="12" y="%d" font-size="10" fill="#57606a" transform="rotate(-90 12 %d)" '
                 'text-anchor="middle">%s</text>' % (HEIGHT // 2, HEIGHT // 2, esc(y_label)))
    return parts


def _svg(title, parts, cls):
    return ('<svg class="%s" role="img" aria-label="%s" width="%d" height="%d" viewBox="0 0 %d %d" '
            'xmlns="http://www.w3.org/2000/svg">%s</svg>' % (cls, esc(title), WIDTH, HEIGHT, WIDTH, HEIGHT, ''.join(parts)))


def metric_chart(name, points, bounds, start, end=None):
    """SVG of one gate metric: ``points`` are dicts with t, value, baseline, outcome."""
    xs = [p['t'] for p in points] or [start, start + 1]
    values = [p['value'] for p in points if p['value'] is not None]
    values += [p['baseline'] for p in points if p.get('baseline') is not None]
    values += [b for b in bounds.values() if b is not None]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    margin = (hi - lo) * 0.1 or abs(hi) * 0.1 or 0.1
    scale = Scale(start, max(xs + [start + 1, end or start]), lo - margin, hi + margin)
    parts = _axes(scale, name)
    for label, bound in sorted(bounds.items()):
        if bound is None:
            continue
        y = scale.y(bound)
        parts.append('<line class="threshold" x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="6 4"/>'
                     % (PAD_L, WIDTH - PAD_R, y, y, COLORS['threshold']))
        parts.append('<text x="%d" y="%.1f" font-size="10" text-anchor="end" fill="%s">%s %s</text>'
                     % (WIDTH - PAD_R - 2, y - 3, COLORS['threshold'], esc(label), esc(_nice(bound))))
    for series, key, dash in (('candidate', 'value', ''), ('stable', 'baseline', ' stroke-dasharray="3 3"')):
        coords = ['%.1f,%.1f' % (scale.x(p['t']), scale.y(p[key])) for p in points if p.get(key) is not None]
        if coords:
            parts.append('<polyline class="series-%s" fill="none" stroke="%s" stroke-width="2"%s points="%s"/>'
                         % (series, COLORS[series], dash, ' '.join(coords)))
            for point in coords:
                x, y = point.split(',')
                parts.append('<circle cx="%s" cy="%s" r="2.5" fill="%s"/>' % (x, y, COLORS[series]))
    for p in points:
        color = OUTCOME_MARKS.get(p['outcome'])
        if not color:
            continue
        x = scale.x(p['t'])
        y = scale.y(p['value']) if p['value'] is not None else HEIGHT - PAD_B - 6
        parts.append('<circle class="mark-%s" cx="%.1f" cy="%.1f" r="6" fill="none" stroke="%s" stroke-width="2">'
                     '<title>%s</title></circle>' % (esc(p['outcome']), x, y, color, esc(p.get('message') or p['outcome'])))
    return _svg('gate metric %s' % name, parts, 'chart metric')


def split_chart(timeline, start, end):
    """SVG of the candidate's share over the phase (a step line)."""
    points = [(e['t'], float(e['percent'])) for e in timeline if e.get('percent') is not None]
    scale = Scale(start, max([end, start + 1] + [t for t, _p in points]), 0.0, 100.0)
    parts = _axes(scale, 'candidate share (%)')
    coords = []
    for i, (t, pct) in enumerate(points):
        if i:
            coords.append('%.1f,%.1f' % (scale.x(t), scale.y(points[i - 1][1])))
        coords.append('%.1f,%.1f' % (scale.x(t), scale.y(pct)))
    if points:
        coords.append('%.1f,%.1f' % (scale.x(max(end, points[-1][0])), scale.y(points[-1][1])))
        parts.append('<polyline class="series-split" fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                     % (COLORS['split'], ' '.join(coords)))
    for e in timeline:
        if e.get('percent') is None:
            continue
        x = scale.x(e['t'])
        right = x > WIDTH - PAD_R - 120
        parts.append('<text x="%.1f" y="%.1f" font-size="10" fill="#24292f"%s>%s %s %%</text>'
                     % (x - 3 if right else x + 3, scale.y(float(e['percent'])) - 4,
                        ' text-anchor="end"' if right else '', esc(str(e.get('event')).replace('_', ' ')),
                        esc(_nice(float(e['percent'])))))
    return _svg('candidate share over time', parts, 'chart split')


def _bounds(check):
    return dict((k, check.get(k)) for k in ('min', 'max') if check.get(k) is not None)


def charts_data(report):
    """(start, end, {metric: points}, {metric: bounds}) from a report."""
    start = epoch(report.get('started_at')) or 0.0
    end = epoch(report.get('finished_at')) or start
    hold = (report.get('gates') or {}).get('hold') or {}
    bounds = dict((c['name'], _bounds(c)) for c in hold.get('checks') or [] if c.get('name'))
    series = {}
    for m in hold.get('measurements') or []:
        t = epoch(m.get('time'))
        if t is None:
            continue
        series.setdefault(m.get('check'), []).append(
            {'t': t, 'value': m.get('value'), 'baseline': m.get('baseline'), 'outcome': m.get('outcome'),
             'message': m.get('message')})
    return start, end, series, bounds


def render(report):
    """The whole page."""
    start, end, series, bounds = charts_data(report)
    verdict = report.get('verdict') or 'unknown'
    timeline = [dict(e, t=epoch(e.get('time')) or start) for e in report.get('timeline') or []]
    hold = (report.get('gates') or {}).get('hold') or {}
    rows = []
    for name, c in sorted((hold.get('summary') or {}).items()):
        rows.append('<tr><td>%s</td><td class="v-%s">%s</td><td>%s</td><td>%s</td><td>%s</td></tr>' % (
            esc(name), esc(c.get('verdict')), esc(c.get('verdict')), esc(c.get('measurements')),
            esc(_nice(c.get('last_value')) if isinstance(c.get('last_value'), (int, float)) else c.get('last_value')),
            esc(c.get('threshold'))))
    failures = ''.join('<li><b>[%s %s]</b> %s</li>' % (esc(f.get('host')), esc(f.get('step')), esc(f.get('msg')))
                       for f in report.get('failures') or [])
    balancers = ''.join('<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>' % (
        esc(host), esc(b.get('status')), esc(b.get('percent')), esc(b.get('generation')))
        for host, b in sorted((report.get('balancers') or {}).items()))
    metric_svgs = ''.join('<section class="metric"><h3>%s</h3>%s</section>' % (
        esc(name), metric_chart(name, points, bounds.get(name, {}), start, end))
        for name, points in sorted(series.items()) if any(p['value'] is not None for p in points) or points)
    style = ('body{font-family:sans-serif;margin:24px;color:#24292f;max-width:720px}'
             'h1{font-size:20px}h2{font-size:16px;margin-top:24px}h3{font-size:13px;margin:12px 0 4px}'
             'table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #d0d7de;padding:3px 8px;text-align:left}'
             '.verdict{display:inline-block;padding:4px 10px;border-radius:4px;color:#fff;font-weight:bold}'
             '.v-failed,.v-error{color:#cf222e}.v-passed{color:#1a7f37}.v-inconclusive{color:#9a6700}'
             'dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:13px}dt{color:#57606a}')
    return ''.join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<title>%s of %s: %s</title><style>%s</style></head><body>' % (
            esc(report.get('phase')), esc(report.get('release')), esc(verdict), style),
        '<h1>%s of %s <span class="verdict" style="background:%s">%s</span></h1>' % (
            esc(report.get('phase')), esc(report.get('release')), VERDICT_COLORS.get(verdict, '#6e7781'),
            esc(verdict.upper().replace('_', ' '))),
        '<p class="reason">%s</p>' % esc(report.get('advice') or (
            'every gate passed' if verdict in ('passed', 'promoted') else '')),
        '<ul class="failures">%s</ul>' % failures if failures else '',
        '<dl><dt>service</dt><dd>%s</dd><dt>run</dt><dd>%s</dd><dt>by</dt><dd>%s</dd><dt>stable</dt><dd>%s</dd>'
        '<dt>candidate</dt><dd>%s</dd><dt>started</dt><dd>%s</dd><dt>finished</dt><dd>%s (%s s, hold %s s)</dd></dl>' % (
            esc(report.get('service')), esc(report.get('run_id')), esc(report.get('by')),
            esc(report.get('stable_version')), esc(report.get('release')), esc(report.get('started_at')),
            esc(report.get('finished_at')), esc(report.get('duration_s')), esc(report.get('hold_s'))),
        '<h2>Split over time</h2>', split_chart(timeline, start, end),
        '<h2>Gate metrics</h2>' if metric_svgs else '', metric_svgs,
        ('<h2>Gate summary: %s</h2><table><tr><th>check</th><th>verdict</th><th>measurements</th><th>last</th>'
         '<th>threshold</th></tr>%s</table>' % (esc(hold.get('verdict')), ''.join(rows))) if rows else '',
        '<h2>Load balancers</h2><table><tr><th>host</th><th>status</th><th>candidate %%</th><th>generation</th></tr>'
        '%s</table>' % balancers if balancers else '',
        '</body></html>\n'])
