"""Table-driven tests of traffic_split's input validation: every refusal names the problem."""
import pytest

from ansible_collections.supersmartmatch.platform.plugins.module_utils import traffic_split_validate as v


@pytest.mark.parametrize('value, expected', [
    (0, 0.0), (5, 5.0), ('25', 25.0), (100, 100.0), ('12.5', 12.5), (0.01, 0.01), ('99.99', 99.99),
    ('100', 100.0), ('0', 0.0), ('5.0', 5.0), (12.25, 12.25),
])
def test_parse_percent_accepts(value, expected):
    assert v.parse_percent(value) == expected


@pytest.mark.parametrize('value, message', [
    (101, 'between 0 and 100, got 101'),
    (-1, 'between 0 and 100, got -1'),
    ('101', 'between 0 and 100, got 101'),
    ('-1', 'between 0 and 100, got -1'),
    ('abc', "number from 0 to 100, got 'abc'"),
    (None, 'number from 0 to 100'),
    (True, 'number from 0 to 100'),
    (False, 'number from 0 to 100'),
    ('nan', 'number from 0 to 100'),
    ('inf', 'number from 0 to 100'),
    (float('nan'), 'number from 0 to 100'),
    (float('inf'), 'number from 0 to 100'),
    (5.555, 'at most two decimals'),
    ('5.555', 'at most two decimals'),
    ([5], 'number from 0 to 100'),
    ('5_0', "got '5_0'"),
    ('\u0665', 'ASCII digits'),            # ARABIC-INDIC DIGIT FIVE: float() takes it
    ('\uff15', 'ASCII digits'),            # FULLWIDTH DIGIT FIVE
    (' 5', "got ' 5'"),
    ('5 ', "got '5 '"),
    ('5\n', "got '5\\n'"),
    ('.5', "got '.5'"),
    ('5.', "got '5.'"),
    ('1e1', "got '1e1'"),
    ('+5', "got '+5'"),
    ('', "got ''"),
])
def test_parse_percent_rejects(value, message):
    with pytest.raises(v.SplitError) as err:
        v.parse_percent(value)
    assert message in str(err.value)


@pytest.mark.parametrize('number, text', [(5.0, '5'), (12.5, '12.5'), (0.25, '0.25'), (100, '100')])
def test_format_percent(number, text):
    assert v.format_percent(number) == text


@pytest.mark.parametrize('item, expected', [
    ('app1:5062', 'app1:5062'), (' 10.0.0.1:80 ', '10.0.0.1:80'), ('[::1]:5070', '[::1]:5070'),
    ('app-1.example.com:0443', 'app-1.example.com:443'), ('a:65535', 'a:65535'), ('a:1', 'a:1'),
])
def test_parse_backend_accepts(item, expected):
    assert v.parse_backend(item) == expected


@pytest.mark.parametrize('item, message', [
    ('app1', 'must be "host:port"'), (':80', 'must be "host:port"'), ('app1:0', 'invalid port'),
    ('app1:70000', 'invalid port'), ('app 1:80', 'invalid host'), ('app1:http', 'invalid port'),
    ('', 'must be a "host:port" string'), (5062, 'must be a "host:port" string'),
    ('a;b:80', 'invalid host'),
    ('host:\u00b2', 'invalid port'),             # SUPERSCRIPT TWO: isdigit() but not int()
    ('host:\u0665\u0660', 'invalid port'),       # Arabic-Indic digits: int() takes them
    ('host:080000', 'invalid port'),
    ('host:-80', 'invalid port'),
    ('host:+80', 'invalid port'),
    ('app1\n:80', 'invalid host'),
    ('app1:80;server x:1', 'invalid host'),
    ('app1:8 0', 'invalid port'),
    ('app1.:80', 'invalid host'),
    ('[::1\n]:80', 'invalid host'),
])
def test_parse_backend_rejects(item, message):
    with pytest.raises(v.SplitError) as err:
        v.parse_backend(item)
    assert message in str(err.value)


@pytest.mark.parametrize('items, message', [
    ([], 'non-empty list'), (None, 'stable is required'), (['a:1', 'a:1'], 'twice'), ({'a': 1}, 'non-empty list'),
])
def test_parse_backends_rejects(items, message):
    with pytest.raises(v.SplitError) as err:
        v.parse_backends(items, 'stable')
    assert message in str(err.value)


@pytest.mark.parametrize('name, ok', [
    ('supersmartmatch', True), ('svc_2', True), ('a' * 63, True), ('Svc', False), ('2svc', False),
    ('svc-x', False), ('', False), ('a' * 64, False), (None, False), ('svc\n', False), ('../x', False),
    ('x/../y', False), ('svc ', False),
])
def test_validate_service(name, ok):
    if ok:
        assert v.validate_service(name) == name
    else:
        with pytest.raises(v.SplitError) as err:
            v.validate_service(name)
        assert 'service must start with a lower-case letter' in str(err.value)


@pytest.mark.parametrize('value, ok', [
    ('2.0.0', True), ('1.0.0-rc.1+build.5', True), ('v2', True), ('a' * 64, True), ('blue', True),
    ('', False), ('-1', False), ('.1', False), ('a' * 65, False), ('2.0.0\n', False), ('2.0.0\n}', False),
    ('2.0 0', False), ('2.0.0;', False), ('2:0', False), ('\u0662.0', False), (2, False),
])
def test_validate_label(value, ok):
    if ok:
        assert v.validate_label(value, 'candidate_version') == value
    else:
        with pytest.raises(v.SplitError) as err:
            v.validate_label(value, 'candidate_version')
        assert 'candidate_version must be 1 to 64 of' in str(err.value)


def test_validate_label_optional():
    assert v.validate_label(None, 'stable_color') is None
    with pytest.raises(v.SplitError):
        v.validate_label(None, 'stable_color', optional=False)


@pytest.mark.parametrize('value, expected', [('', ''), (None, ''), ('2.0.0', '2.0.0'), ('a_b+c-d', 'a_b+c-d')])
def test_validate_salt_accepts(value, expected):
    assert v.validate_salt(value) == expected


@pytest.mark.parametrize('value', ['x y', 'x\n', '2.0.0\n', 'a"b', '{x}', 'a:b', '-x', 'a' * 65, 5])
def test_validate_salt_rejects(value):
    with pytest.raises(v.SplitError) as err:
        v.validate_salt(value)
    assert 'salt must be empty or 1 to 64 of' in str(err.value)


@pytest.mark.parametrize('value, ok', [
    ('$cookie_ssm_uid', True), ('$remote_addr', True), ('$http_x_user', True),
    ('cookie', False), ('$a; return 500', False), ('$a\n', False), ('$', False), ('$1a', False),
    ('$a b', False), ('${a}', False), (None, False),
])
def test_validate_nginx_variable(value, ok):
    if ok:
        assert v.validate_nginx_variable(value, 'sticky_key') == value
    else:
        with pytest.raises(v.SplitError) as err:
            v.validate_nginx_variable(value, 'sticky_key')
        assert 'sticky_key must be one NGINX variable' in str(err.value)


@pytest.mark.parametrize('text, expected', [
    (None, 'max_fails=3 fail_timeout=10s'),
    ('', ''),
    ('  ', ''),
    ('max_fails=3 fail_timeout=10s', 'max_fails=3 fail_timeout=10s'),
    ('fail_timeout=10s   max_fails=3', 'max_fails=3 fail_timeout=10s'),
    ('max_conns=100 weight=5', 'weight=5 max_conns=100'),
    ('weight=1000 max_fails=0 fail_timeout=500ms max_conns=0', 'weight=1000 max_fails=0 fail_timeout=500ms max_conns=0'),
    ('fail_timeout=30', 'fail_timeout=30'), ('fail_timeout=1h', 'fail_timeout=1h'), ('fail_timeout=2m', 'fail_timeout=2m'),
    ('weight=007', 'weight=7'),
])
def test_parse_server_options_accepts(text, expected):
    assert v.parse_server_options(text) == expected


@pytest.mark.parametrize('text, message', [
    ('backup', "'backup' is not one of weight, max_fails, fail_timeout, max_conns"),
    ('down', "'down' is not one of"),
    ('max_fails=3; } server { listen 81; }', 'max_fails must be a whole number from 0 to 1000'),
    ('max_fails=3\nserver', 'max_fails must be a whole number from 0 to 1000'),
    ('slow_start=10s', "'slow_start=10s' is not one of"),
    ('weight=0', 'weight must be a whole number from 1 to 1000'),
    ('weight=1001', 'weight must be a whole number from 1 to 1000'),
    ('max_fails=1001', 'max_fails must be a whole number from 0 to 1000'),
    ('max_conns=100001', 'max_conns must be a whole number from 0 to 100000'),
    ('max_fails=-1', 'max_fails must be a whole number'),
    ('max_fails=\u0663', 'max_fails must be a whole number'),
    ('fail_timeout=10x', 'fail_timeout must be an NGINX time'),
    ('fail_timeout=10s;', 'fail_timeout must be an NGINX time'),
    ('fail_timeout=', 'fail_timeout must be an NGINX time'),
    ('max_fails=3 max_fails=4', 'sets max_fails twice'),
    ('weight', "'weight' is not one of"),
    (5, 'server_options must be a string'),
])
def test_parse_server_options_rejects(text, message):
    with pytest.raises(v.SplitError) as err:
        v.parse_server_options(text)
    assert message in str(err.value)


@pytest.mark.parametrize('value, ok', [(0, True), (32, True), (10000, True), (-1, False), (10001, False),
                                       (True, False), ('32', False), (None, False)])
def test_validate_keepalive(value, ok):
    if ok:
        assert v.validate_keepalive(value) == value
    else:
        with pytest.raises(v.SplitError) as err:
            v.validate_keepalive(value)
        assert 'keepalive must be a whole number from 0 to 10000' in str(err.value)


@pytest.mark.parametrize('value, ok', [(None, True), (0, True), (7, True), (-1, False), (True, False), ('7', False)])
def test_validate_generation(value, ok):
    if ok:
        assert v.validate_generation(value) == value
    else:
        with pytest.raises(v.SplitError) as err:
            v.validate_generation(value)
        assert 'expected_generation must be a whole number >= 0' in str(err.value)


@pytest.mark.parametrize('value, ok', [
    ('canary-2.0.0-20261129T180000Z-42', True), ('alice@ctl.example.com', True), ('root@lb-1', True),
    ('_svc@host', True), ('a' * 128, True), ('', False), ('a' * 129, False), ('a b', False), ('a\n', False),
    ('../x', False), ('-x', False), ('a/b', False), ('a;b', False), (None, False), (5, False),
])
def test_validate_run_text(value, ok):
    if ok:
        assert v.validate_run_text(value, 'run_id') == value
    else:
        with pytest.raises(v.SplitError) as err:
            v.validate_run_text(value, 'run_id')
        assert 'run_id must be 1 to 128 of' in str(err.value)
