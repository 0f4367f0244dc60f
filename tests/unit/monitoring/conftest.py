"""Fixtures of the monitoring role's unit tests: rendered templates, promtool, amtool (see roletemplates.py)."""
import pytest
import yaml
from roletemplates import render, run, tool


@pytest.fixture
def rendered(tmp_path):
    """rendered(template, name, **overrides) -> path of the rendered file in tmp_path."""
    def _rendered(template, name, **overrides):
        path = tmp_path / name
        path.write_text(render(template, **overrides))
        return path
    return _rendered


@pytest.fixture
def promtool_test(tmp_path):
    """promtool_test(rule_files, tests, evaluation_interval) -> CompletedProcess of `promtool test rules`."""
    promtool = tool("promtool", "prometheus")

    def _test(rule_files, tests, evaluation_interval="15s"):
        spec = {"rule_files": [str(p) for p in rule_files], "evaluation_interval": evaluation_interval,
                "tests": tests}
        path = tmp_path / "test.yml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return run([promtool, "test", "rules", str(path)], tmp_path)
    return _test


@pytest.fixture
def amtool():
    """amtool(*args) -> CompletedProcess."""
    path = tool("amtool", "prometheus-alertmanager")
    return lambda *args: run([path, *args], "/")
