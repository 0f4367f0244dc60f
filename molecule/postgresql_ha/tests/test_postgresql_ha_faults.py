"""Fault matrix of the postgresql_ha role under the write checker (issue 13), on the converged cluster.

Runs after test_postgresql_ha.py (file order). Every case (tools/pg_faults.py) injects a
crash fault while writers insert unique ids through the HAProxy read-write port of the
untouched nodes, heals it, and must end with: 0 acknowledged writes missing, exactly one
leader, every member streaming again within HEAL_BOUND_S, without a human.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd()), "tools"))

import pg_faults  # noqa: E402  (path set just above)

APP_PASSWORD = "molecule-app-secret"  # the scenario's test-only secret
TTL, LOOP_WAIT = 20, 5  # the role's defaults, in force in this scenario
HEAL_BOUND_S = 90.0  # every member streaming again after the heal (documented in the role README)
KILL_GAP_S = TTL + LOOP_WAIT + 5  # a killed leader: writes back within this (its Patroni restarts or fails over)
REPLICA_FREEZE_GAP_S = 5.0  # longest write gap while a quorum standby is frozen: the other one acknowledges

CASES = pg_faults.cases(ttl=TTL)


def run(name):
    case = CASES[name]
    report = pg_faults.run_case(case, APP_PASSWORD, heal_bound=HEAL_BOUND_S)
    context = "%s\n%s" % (report, pg_faults.diagnostics())
    assert report["healthy_after_heal_s"] is not None, "not healthy within %.0f s of the heal\n%s" % (HEAL_BOUND_S,
                                                                                                      context)
    assert report["leaders_after"] == [report["leader_after"]], context
    assert report["acknowledged"] > 0, context
    assert report["acknowledged_missing"] == 0, "acknowledged writes lost: %s\n%s" % (report["missing_ids"], context)
    assert report["acknowledged_present"] == report["acknowledged"], context
    return report, context


def gap_bound(name):
    """The longest time without an acknowledged write that the case may show.

    The first acknowledged write after the fault proves nothing (a commit in flight when the
    fault hit counts), so the write gap is judged. A leader frozen or cut off for longer than
    the ttl must be replaced while it is still out: writes come back before the heal (the
    benchmark measures them against ttl + loop_wait + 5 s). A short freeze has no failover:
    writes come back when the leader resumes.
    """
    case = CASES[name]
    if name == "kill":
        return KILL_GAP_S
    if case.hold >= TTL:
        return case.hold
    return case.hold + 5


@pytest.mark.parametrize("name", ["freeze-short", "freeze-long", "kill", "partition"])
def test_leader_fault_loses_no_acknowledged_write(name):
    report, context = run(name)
    assert report["first_write_after_fault_s"] is not None, context
    assert report["longest_gap_s"] < gap_bound(name), "no acknowledged write for %s s (bound %s s)\n%s" % (
        report["longest_gap_s"], gap_bound(name), context)


def test_etcd_quorum_loss_stops_writes_and_recovers():
    report, context = run("etcd-quorum")
    # No split: with 2 of 3 etcd members down nobody holds the leader key, so nothing is acknowledged.
    assert report["acks_during_quorum_loss"] == 0, context
    assert report["leader_after"], context


def test_frozen_replica_does_not_stall_writes():
    # Quorum commit (ANY 1 of the two replicas): the frozen one is not waited for, for longer than the ttl.
    report, context = run("freeze-sync-standby")
    assert report["leader_after"] == report["leader_before"], context
    assert report["longest_gap_s"] <= REPLICA_FREEZE_GAP_S, context
