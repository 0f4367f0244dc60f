"""The NGINX split file: rendering (everything validated), parsing it back, drift."""
import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split as ts
from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split_render as rd
from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split_state as st
from ansible_collections.supersmartmatch.platform.plugins.module_utils.traffic_split_validate import SplitError

from splitcases import base_params

# What the module rendered before generations existed (a state without them).
LEGACY_FILE = (
    '# Managed by supersmartmatch.platform.traffic_split - do not edit by hand.\n'
    '# service=svc stable=1.0.0 candidate=2.0.0 percent=5\n\n'
    'upstream svc_stable {\n    server app1:5062 max_fails=3 fail_timeout=10s;\n'
    '    server app2:5062 max_fails=3 fail_timeout=10s;\n    keepalive 32;\n}\n\n'
    'upstream svc_candidate {\n    server app1:5070 max_fails=3 fail_timeout=10s;\n'
    '    server app2:5070 max_fails=3 fail_timeout=10s;\n    keepalive 32;\n}\n\n'
    'map $cookie_ssm_uid $svc_split_key {\n    ""      $remote_addr;\n    default $cookie_ssm_uid;\n}\n\n'
    'split_clients "${svc_split_key}2.0.0" $svc_backend {\n    5%  svc_candidate;\n    *   svc_stable;\n}\n')


def state_of(**extra):
    return st.new_state(None, ts.plan_split(base_params(**extra), None), 'me', 'r1')


@pytest.mark.parametrize('percent, buckets', [
    (0, ['    *   svc_stable;']),
    (5, ['    5%  svc_candidate;', '    *   svc_stable;']),
    (12.5, ['    12.5%  svc_candidate;', '    *   svc_stable;']),
    (100, ['    *   svc_candidate;']),
])
def test_render_config_candidate_bucket_first(percent, buckets):
    text = rd.render_config(ts.plan_split(base_params(percent=percent), None))
    block = text.split('split_clients "${svc_split_key}2.0.0" $svc_backend {\n')[1].split('}')[0]
    assert block.splitlines() == buckets


def test_render_config_upstreams_and_key():
    text = rd.render_config(ts.plan_split(base_params(keepalive=0, server_options=''), None))
    assert 'upstream svc_stable {\n    server app1:5062;\n    server app2:5062;\n}' in text
    assert 'upstream svc_candidate {\n    server app1:5070;\n    server app2:5070;\n}' in text
    assert 'map $cookie_ssm_uid $svc_split_key {\n    ""      $remote_addr;\n    default $cookie_ssm_uid;\n}' in text
    assert 'keepalive' not in text


def test_render_config_server_options():
    text = rd.render_config(ts.plan_split(base_params(server_options='max_conns=50 weight=3', keepalive=4), None))
    assert '    server app1:5062 weight=3 max_conns=50;\n' in text
    assert '    keepalive 4;\n' in text


@pytest.mark.parametrize('generation, line', [
    (0, '# service=svc stable=1.0.0 candidate=2.0.0 percent=5'),
    (8, '# generation=8 service=svc stable=1.0.0 candidate=2.0.0 percent=5'),
])
def test_render_records_the_generation(generation, line):
    text = rd.render_config(ts.plan_split(base_params(), None), generation)
    assert text.splitlines()[:2] == [rd.MANAGED_HEADER, line]


def test_generation_zero_renders_what_the_module_rendered_before():
    assert rd.render_config(ts.plan_split(base_params(), None), 0) == LEGACY_FILE


def test_render_is_deterministic():
    split = ts.plan_split(base_params(), None)
    assert rd.render_config(split, 3) == rd.render_config(dict(split), 3)


@pytest.mark.parametrize('percent, present, absent', [
    (0, 'upstream svc_stable', 'upstream svc_candidate'),
    (100, 'upstream svc_candidate', 'upstream svc_stable'),
])
def test_side_without_traffic_is_not_rendered(percent, present, absent):
    text = rd.render_config(ts.plan_split(base_params(percent=percent), None))
    assert present in text and absent not in text


# A state read from disk may hold anything (a hand edit, a version written
# before the validation existed): nothing of it reaches NGINX unchecked.
@pytest.mark.parametrize('change, message', [
    (lambda s: s['candidate'].update(version='2.0.0\n} server {'), 'candidate version must be'),
    (lambda s: s['stable'].update(version='1 0'), 'stable version must be'),
    (lambda s: s.update(salt='x"; }'), 'salt must be'),
    (lambda s: s.update(sticky_key='$a\n'), 'sticky_key must be'),
    (lambda s: s.update(sticky_fallback='remote_addr'), 'sticky_fallback must be'),
    (lambda s: s.update(server_options='max_fails=3; } server {'), 'server_options'),
    (lambda s: s.update(keepalive='32'), 'keepalive must be'),
    (lambda s: s.update(percent='5_0'), 'percent must be'),
    (lambda s: s.update(percent=True), 'percent must be'),
    (lambda s: s.update(service='svc\n'), 'service must start'),
    (lambda s: s['stable'].update(backends=['app1:5062;']), 'invalid port'),
    (lambda s: s['stable'].update(backends=['app1:05062']), 'is not normalised'),
    (lambda s: s['stable'].update(backends=[]), 'stable has no backends'),
])
def test_render_refuses_what_it_cannot_render_safely(change, message):
    state = state_of()
    change(state)
    with pytest.raises(SplitError) as err:
        rd.render_state(state)
    assert message in str(err.value)


@pytest.mark.parametrize('percent, stable, candidate', [
    (0, ['app1:5062', 'app2:5062'], []),
    (5, ['app1:5062', 'app2:5062'], ['app1:5070', 'app2:5070']),
    (33.33, ['app1:5062', 'app2:5062'], ['app1:5070', 'app2:5070']),
    (100, [], ['app1:5070', 'app2:5070']),
])
def test_parse_live_reads_back_what_was_rendered(percent, stable, candidate):
    text = rd.render_config(ts.plan_split(base_params(percent=percent), None), 7)
    assert rd.parse_live(text, 'svc') == {
        'managed': True, 'generation': 7, 'percent': float(percent), 'stable_backends': stable,
        'candidate_backends': candidate, 'stable_version': '1.0.0', 'candidate_version': '2.0.0'}


@pytest.mark.parametrize('text, expected', [
    (None, None),
    (LEGACY_FILE, {'managed': True, 'generation': None, 'percent': 5.0}),
    ('upstream svc_stable {\n    server a:1;\n}\n', {'managed': False, 'generation': None, 'percent': None}),
    ('', {'managed': False, 'generation': None, 'percent': None}),
    (LEGACY_FILE.replace('5%  svc_candidate', '50%  svc_candidate'), {'managed': True, 'percent': 50.0}),
])
def test_parse_live_of_other_files(text, expected):
    live = rd.parse_live(text, 'svc')
    if expected is None:
        assert live is None
    else:
        assert dict((k, live[k]) for k in expected) == expected


def edit(text, old, new):
    assert old in text
    return text.replace(old, new)


@pytest.mark.parametrize('make_live, reason', [
    (rd.render_state, None),
    (lambda s: None, 'the split file is missing but the state is at generation 1 with 5 % on the candidate'),
    (lambda s: rd.render_config(dict(s, percent=25.0), 2),
     'the split file is at generation 2 with 25 % on the candidate but the state is at generation 1 with 5 % on the '
     'candidate'),
    (lambda s: edit(rd.render_state(s), '5%  svc_candidate', '50%  svc_candidate'),
     'the split file is at generation 1 with 50 % on the candidate but the state is at generation 1 with 5 % on the '
     'candidate (edited by hand?)'),
    (lambda s: edit(rd.render_state(s), 'server app1:5070 ', 'server evil:80 '),
     'the split file at generation 1 differs from what the state renders (edited by hand?)'),
    (lambda s: edit(rd.render_state(s), '# generation=1 ', '# '),
     'the split file is at generation 0 with 5 % on the candidate but the state is at generation 1'),
    (lambda s: rd.render_state(s).split('\n', 2)[2],
     'the split file was not written by traffic_split (no managed header) and the state is at generation 1'),
])
def test_drift_reason(make_live, reason):
    state = state_of()
    got = rd.drift_reason(state, make_live(state))
    if reason is None:
        assert got is None
    else:
        assert got.startswith(reason), got


def test_no_drift_without_state():
    assert rd.drift_reason(None, None) is None
    assert rd.drift_reason(None, LEGACY_FILE) is None


def test_legacy_state_and_file_do_not_drift():
    state = state_of()
    for key in ('generation', 'server_options', 'keepalive'):
        del state[key]
    assert rd.drift_reason(state, LEGACY_FILE.replace('app2:5062', 'X').replace('app2:5070', 'Y')) is not None
    state['stable']['backends'] = ['app1:5062', 'app2:5062']
    state['candidate']['backends'] = ['app1:5070', 'app2:5070']
    assert rd.drift_reason(state, LEGACY_FILE) is None


def test_drift_when_the_state_cannot_be_rendered():
    state = state_of()
    state['candidate']['version'] = 'x\ny'
    assert rd.drift_reason(state, None).startswith('the state cannot be rendered (candidate version must be')


@pytest.mark.parametrize('text, expected', [(None, None), ('# a\nx\n# b\ny', 'x\ny')])
def test_body(text, expected):
    assert rd.body(text) == expected
