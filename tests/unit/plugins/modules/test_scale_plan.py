"""scale_plan through its main path: a plan, a refusal named, the advice."""
import pytest

from ansible_collections.supersmartmatch.platform.plugins.modules import scale_plan as mod

from .helpers import run_main

APPS = [{'host': 'app1', 'address': 'app1'}, {'host': 'app2', 'address': 'app2'}, {'host': 'app3'}]


def info(hosts=('app1', 'app2')):
    return {'exists': True, 'generation': 7, 'drift': False, 'lease': None,
            'state': {'percent': 5.0, 'phase': 'canary',
                      'stable': {'backends': ['%s:5062' % h for h in hosts], 'color': 'blue', 'version': '1.0.0'},
                      'candidate': {'backends': ['%s:5070' % h for h in hosts], 'color': 'green',
                                    'version': '2.0.0'}}}


BALANCERS = {'lb1': info(), 'lb2': info()}


def test_a_plan_changes_nothing_and_says_what_it_needs(capsys):
    out = run_main(mod, dict(app_hosts=APPS, balancers=BALANCERS, min_hosts=2), capsys)
    assert out['changed'] is False and out['needed'] is True and 'failed' not in out
    assert out['add'] == ['app3'] and out['msg'] == 'add app3: 2 -> 3 app host(s)'
    assert [d['version'] for d in out['deploy']] == ['1.0.0', '2.0.0']
    assert out['generations'] == {'lb1': 7, 'lb2': 7}


@pytest.mark.parametrize('args, words', [
    (dict(remove=['app9']), 'scale_remove names app9, not in the app group'),
    (dict(app_hosts=[{'host': 'app1 ; id'}]), "app_hosts: host 'app1 ; id' is not a host name or address"),
    (dict(auto=True, remove=['app3']), 'remove cannot be given with auto=true'),
    (dict(min_hosts=2, remove=['app2', 'app3']), 'below the minimum of 2'),
    (dict(balancers={'lb1': info(), 'lb2': info(('app1',))}), 'the balancers disagree'),
])
def test_refusals_are_named(capsys, args, words):
    params = dict(app_hosts=APPS, balancers=BALANCERS, min_hosts=2)
    params.update(args)
    out = run_main(mod, params, capsys)
    assert out['failed'] is True and words in out['msg'] and 'Traceback' not in out['msg']


def test_auto_advises_then_plans_with_inventory_hosts(capsys):
    out = run_main(mod, dict(app_hosts=APPS, balancers=BALANCERS, min_hosts=2, auto=True, cpu=0.9, memory=0.3),
                   capsys)
    assert out['add'] == ['app3'] and out['advice']['delta'] == 1
    assert out['advice']['reason'].startswith('add 1 app host(s): cpu 90 % (target 70 %), memory 30 %')
