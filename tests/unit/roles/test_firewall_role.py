"""The firewall role's rules derived from an inventory, and its refusals, without containers.

Runs the role's preflight task file (which derives each host's allow rules)
in check mode on local-connection hosts with given addresses, and reads the
derived rules; bad input is refused with a message naming it.
"""
import json

import pytest

from rolerun import flat, link_collection, run_tasks

GROUPS = {"lb": ["lb1", "lb2"], "app": ["app1"], "monitoring": ["mon1"], "postgresql": ["data1", "data2"],
          "redis": ["data1", "data2"]}
ADDRESSES = {"lb1": "10.0.0.11", "lb2": "10.0.0.12", "app1": "10.0.0.21", "mon1": "10.0.0.31",
             "data1": "10.0.0.41", "data2": "10.0.0.42"}
HOST_VARS = {name: {"firewall_address": address} for name, address in ADDRESSES.items()}
SHOW = """\
    - name: Show the derived rules
      ansible.builtin.debug:
        var: _firewall_allow
"""


@pytest.fixture(autouse=True, scope="module")
def collection_link():
    link_collection()


@pytest.fixture(scope="module")
def derived(tmp_path_factory):
    """{host: {rule name: (ports, sources)}} for the default rules and one management network."""
    tmp_path = tmp_path_factory.mktemp("derive")
    rc, out = run_tasks(tmp_path, "firewall", GROUPS, "preflight.yml", host_vars=HOST_VARS, extra_tasks=SHOW,
                        extra_vars={"firewall_management_networks": ["192.168.50.0/24"]}, json_output=True)
    assert rc == 0, out
    report = json.loads(out[out.index("{"):])
    shown = [t for t in report["plays"][0]["tasks"] if t["task"]["name"] == "Show the derived rules"][0]
    return {host: {rule["name"]: (rule["ports"], sorted(rule["sources"])) for rule in result["_firewall_allow"]}
            for host, result in shown["hosts"].items()}


SSH = ("SSH from the management network and the controller", ([22], ["192.168.50.0/24"]))
NODE = ("node exporter from monitoring", ([9100], ["10.0.0.31"]))


@pytest.mark.parametrize("host, expected", [
    ("lb1", dict([SSH, NODE, ("web from anywhere to the balancers", ([80, 443], ["0.0.0.0/0", "::/0"])),
                  ("nginx exporter from monitoring", ([9113], ["10.0.0.31"]))])),
    ("app1", dict([SSH, NODE, ("app slots from the balancers and monitoring", ([5062, 5070], ["10.0.0.11", "10.0.0.12", "10.0.0.31"]))])),
    ("data1", dict([SSH, NODE,
                    ("PostgreSQL endpoints from the app hosts", ([5000, 5001], ["10.0.0.21"])),
                    ("PostgreSQL, Patroni, etcd and HAProxy among the data nodes",
                     ([2379, 2380, 5000, 5001, 5432, 8008], ["10.0.0.41", "10.0.0.42"])),
                    ("Redis from the app hosts", ([6379, 6380], ["10.0.0.21"])),
                    ("Redis and its cluster bus among the Redis nodes",
                     ([6379, 6380, 16379, 16380], ["10.0.0.41", "10.0.0.42"]))])),
    ("mon1", dict([SSH, NODE, ("Prometheus from the balancers (metric gates) and the management network",
                               ([9090], ["10.0.0.11", "10.0.0.12", "192.168.50.0/24"]))])),
])
def test_rules_derived_from_the_inventory(derived, host, expected):
    assert derived[host] == expected


@pytest.mark.parametrize("overrides, message", [
    ({"firewall_management_networks": ["10.0.0.0/33"]}, "not an IPv4 or IPv6 address or network: 10.0.0.0/33"),
    ({"firewall_public_networks": ["0.0.0.0/0 } accept; tcp dport 22"]}, "not an IPv4 or IPv6 address or network"),
    ({"firewall_extra_rules": [{"name": "x", "to": ["app"], "ports": [70000], "from": ["lb"]}]}, "(bad: x)"),
    ({"firewall_extra_rules": [{"name": "x\n accept", "to": ["app"], "ports": [1], "from": ["lb"]}]}, "(bad: rule 10)"),
    ({"firewall_extra_rules": [{"name": "y", "to": "app", "ports": [1]}]}, "(bad: y)"),
    ({"firewall_raw_rules": ["tcp dport 1 accept; flush ruleset"]}, "a raw rule is one line without ; or #"),
    ({"firewall_table": "filter; flush ruleset"}, "firewall_table must be lower-case letters"),
])
def test_bad_input_refused(tmp_path, overrides, message):
    rc, out = run_tasks(tmp_path, "firewall", GROUPS, "preflight.yml", hosts="app1", host_vars=HOST_VARS,
                        extra_vars=overrides)
    assert rc != 0, out
    assert "Bad firewall role input:" in flat(out), out
    assert message in flat(out), out
    assert "Derive this host" not in out  # stopped at the first check
