"""The backends filter: host:port strings of a slot."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.supersmartmatch.platform.plugins.filter.backends import backends


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
