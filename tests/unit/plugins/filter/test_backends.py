"""The backends filter: host:port strings of a slot."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.supersmartmatch.platform.plugins.filter.backends import backend_addresses, backends


@pytest.mark.parametrize('hosts, hostvars, port, expected', [
    (['app1', 'app2'], {'app1': {}, 'app2': {}}, 5062, ['app1:5062', 'app2:5062']),
    (['app1', 'app2'], {'app1': {'ssm_backend_address': '198.51.100.21'}, 'app2': {}}, '5070',
     ['198.51.100.21:5070', 'app2:5070']),
    ([], {}, 5062, []),
    (None, {}, 5062, []),
])
def test_backends(hosts, hostvars, port, expected):
    assert backends(hosts, hostvars, port) == expected


@pytest.mark.parametrize('port, message', [('http', 'port must be a number'), (0, 'port must be 1-65535'),
                                           (70000, 'port must be 1-65535')])
def test_backends_rejects_bad_ports(port, message):
    with pytest.raises(AnsibleFilterError) as err:
        backends(['app1'], {}, port)
    assert message in str(err.value)


def test_backend_addresses_name_hosts_as_the_upstreams_do():
    hostvars = {'app1': {'ssm_backend_address': '10.0.0.1'}, 'app2': {}}
    assert backend_addresses(['app1', 'app2', 'app3'], hostvars) == [
        {'host': 'app1', 'address': '10.0.0.1'}, {'host': 'app2', 'address': 'app2'},
        {'host': 'app3', 'address': 'app3'}]
    assert backends(['app1', 'app2'], hostvars, 5062) == ['10.0.0.1:5062', 'app2:5062']
