"""The phase report as a page: self-contained, charts present, text escaped (module_utils/rollout_html.py)."""
import re

import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import rollout_html as rh


def sample_report(verdict='rolled_back', release='4.0.0'):
    measurements = []
    for i, (precision, outcome) in enumerate([(0.97, 'passed'), (0.96, 'passed'), (0.41, 'failed')]):
        t = '2026-11-29T18:00:%02dZ' % (20 + 5 * i)
        measurements.append({'check': 'precision', 'time': t, 'value': precision, 'outcome': outcome,
                             'message': 'precision %s' % precision, 'sample': i + 1})
        measurements.append({'check': 'latency_p95', 'time': t, 'value': 0.02 + i * 0.001, 'baseline': 0.019,
                             'outcome': 'passed', 'message': '', 'sample': i + 1})
    measurements.append({'check': 'error_rate', 'time': '2026-11-29T18:00:20Z', 'value': None, 'outcome': 'no_data',
                         'message': 'no data', 'sample': 1})
    return {
        'service': 'supersmartmatch', 'run_id': 'canary-%s-1' % release, 'phase': 'canary', 'release': release,
        'verdict': verdict, 'by': 'alice@ctl', 'started_at': '2026-11-29T18:00:00Z',
        'finished_at': '2026-11-29T18:00:40Z', 'duration_s': 40, 'hold_s': 30, 'stable_version': '1.0.0',
        'advice': 'All traffic is back on the stable release',
        'failures': [{'host': 'lb1', 'step': 'hold', 'msg': 'precision 0.41 < min 0.94'}],
        'balancers': {'lb1': {'status': 'ok', 'percent': 0, 'generation': 8},
                      'lb2': {'status': 'unknown', 'reason': 'unreachable'}},
        'timeline': [{'time': '2026-11-29T18:00:00Z', 'percent': 0, 'event': 'start'},
                     {'time': '2026-11-29T18:00:05Z', 'percent': 5, 'event': 'shift'},
                     {'time': '2026-11-29T18:00:40Z', 'percent': 0, 'event': verdict}],
        'gates': {'hold': {'verdict': 'failed', 'message': 'precision failed',
                           'checks': [{'name': 'precision', 'min': 0.94}, {'name': 'latency_p95', 'max': 0.2},
                                      {'name': 'error_rate', 'max': 0.02}],
                           'summary': {'precision': {'verdict': 'failed', 'measurements': 3, 'last_value': 0.41,
                                                     'threshold': 'value >= 0.94'}},
                           'measurements': measurements}},
    }


def polylines(page, cls):
    return re.findall(r'<polyline class="%s"[^>]* points="([^"]*)"' % cls, page)


def test_page_has_a_chart_per_metric_and_the_split():
    page = rh.render(sample_report())
    assert page.count('<svg class="chart metric"') == 3
    assert page.count('<svg class="chart split"') == 1
    split = polylines(page, 'series-split')
    assert len(split) == 1 and len(split[0].split()) >= 4          # a step line: start, shift, end
    candidates = polylines(page, 'series-candidate')
    assert len(candidates) == 2 and all(len(p.split()) == 3 for p in candidates)
    assert len(polylines(page, 'series-stable')) == 1                # latency has a baseline
    assert page.count('class="threshold"') == 3
    assert page.count('class="mark-failed"') == 1 and page.count('class="mark-no_data"') == 1
    assert 'ROLLED BACK' in page and 'precision 0.41 &lt; min 0.94' in page


def test_page_is_self_contained():
    page = rh.render(sample_report())
    assert not re.search(r'(src|href)\s*=', page)
    assert '<script' not in page and '@import' not in page and 'url(' not in page


@pytest.mark.parametrize('release', ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>'])
def test_text_is_escaped(release):
    page = rh.render(sample_report(release=release))
    assert '<script>' not in page and '<img' not in page


def test_a_refused_phase_still_renders():
    report = {'phase': 'extended', 'release': '3.0.0', 'verdict': 'refused', 'started_at': '2026-11-29T18:00:00Z',
              'finished_at': '2026-11-29T18:00:03Z', 'failures': [{'host': 'lb1', 'step': 'plan', 'msg': 'needs'}],
              'gates': {}, 'timeline': [{'time': '2026-11-29T18:00:00Z', 'percent': 0, 'event': 'start'}]}
    page = rh.render(report)
    assert '<svg class="chart split"' in page and 'chart metric' not in page
