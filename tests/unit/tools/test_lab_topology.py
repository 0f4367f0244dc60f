"""tools/lab_topology.py: the lab of N balancers and M application hosts (scripts/lab up --lbs/--apps)."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import lab_topology as lt

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "tools" / "lab_topology.py"


def by_name(hosts):
    return {h["name"]: h for h in hosts}


@pytest.mark.parametrize("lbs, apps, data, names", [
    (2, 2, True, ["lb1", "lb2", "app1", "app2", "mon1", "data1", "data2", "data3"]),
    (16, 2, False, ["lb%d" % i for i in range(1, 17)] + ["app1", "app2", "mon1"]),
    (1, 3, False, ["lb1", "app1", "app2", "app3", "mon1"]),
])
def test_topology_names_the_hosts_asked_for(lbs, apps, data, names):
    assert [h["name"] for h in lt.topology(lbs, apps, data)] == names


def test_addresses_are_unique_in_the_lab_subnet_and_ports_do_not_collide():
    hosts = lt.topology(lt.MAX_LBS, lt.MAX_APPS, True)
    addresses = [h["address"] for h in hosts]
    assert len(set(addresses)) == len(addresses)
    assert all(a.startswith("172.30.90.") and 1 <= int(a.rsplit(".", 1)[1]) <= 254 for a in addresses)
    ports = [p["host_port"] for h in hosts for p in h["published"]]
    assert len(set(ports)) == len(ports) and max(ports) <= 65535
    assert all(p["host_ip"] == "127.0.0.1" for h in hosts for p in h["published"])


def test_the_first_two_balancers_keep_the_default_labs_ports():
    hosts = by_name(lt.topology(4, 2, False))
    assert [p["host_port"] for p in hosts["lb1"]["published"]] == [8443, 8080]
    assert [p["host_port"] for p in hosts["lb2"]["published"]] == [9443, 9080]
    assert [p["host_port"] for p in hosts["lb4"]["published"]] == [11443, 11080]


def test_inventory_groups_hosts_and_copies_the_labs_ssh_settings():
    hosts = lt.topology(3, 2, True)
    inventory = lt.inventory(hosts)["all"]["children"]["supersmartmatch"]
    with open(ROOT / "inventories" / "lab" / "hosts.yml") as handle:
        lab = yaml.safe_load(handle)["all"]["children"]["supersmartmatch"]
    assert inventory["vars"] == lab["vars"]
    assert inventory["vars"]["ansible_connection"] == "ansible.builtin.ssh"
    assert list(inventory["children"]["lb"]["hosts"]) == ["lb1", "lb2", "lb3"]
    assert inventory["children"]["lb"]["hosts"]["lb3"] == {"ansible_host": "172.30.90.103"}
    assert list(inventory["children"]["redis"]["hosts"]) == ["data1", "data2", "data3"]
    assert "postgresql" not in lt.inventory(lt.topology(3, 2, False))["all"]["children"]["supersmartmatch"]["children"]


def test_write_makes_the_inventory_the_topology_and_the_group_vars_link(tmp_path):
    out = tmp_path / "work" / "inventory"
    topology = tmp_path / "work" / "lab" / "topology.yml"
    lt.write(4, 1, False, out=str(out), topology_file=str(topology))
    lab_topology = yaml.safe_load(topology.read_text())["lab_topology"]
    assert [h["name"] for h in lab_topology] == ["lb1", "lb2", "lb3", "lb4", "app1", "mon1"]
    hosts = yaml.safe_load((out / "hosts.yml").read_text())
    assert list(hosts["all"]["children"]["supersmartmatch"]["children"]["app"]["hosts"]) == ["app1"]
    assert (out / "group_vars").resolve() == (ROOT / "inventories" / "lab" / "group_vars").resolve()
    # a second run with another size replaces both files and keeps the link
    lt.write(2, 2, False, out=str(out), topology_file=str(topology))
    assert len(yaml.safe_load(topology.read_text())["lab_topology"]) == 5
    assert (out / "group_vars").is_symlink()


@pytest.mark.parametrize("argv, message", [
    (["--lbs", "0"], "--lbs must be between 1 and 50, got 0"),
    (["--lbs", "51"], "--lbs must be between 1 and 50, got 51"),
    (["--apps", "0"], "--apps must be between 1 and 50, got 0"),
    (["--lbs", "two"], "argument --lbs: invalid int value: 'two'"),
])
def test_bad_sizes_are_refused_by_name_and_nothing_is_written(tmp_path, argv, message):
    def written():
        return [Path(p).read_text() if Path(p).exists() else None for p in (lt.TOPOLOGY, lt.INVENTORY + "/hosts.yml")]
    before = written()
    proc = subprocess.run([sys.executable, str(SCRIPT)] + argv, capture_output=True, text=True, check=False,
                          cwd=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert written() == before
