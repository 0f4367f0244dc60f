"""How tools/redis_faults.py reads a Redis Cluster: CLUSTER NODES parsing and the settled check, on canned output."""
import subprocess

import redis_faults  # tools/ is on the path (tests/unit/conftest.py)

NODES = {
    # id, address, flags, master, primary at 7001..7003, replicas at 7004..7006
    "a": ("127.0.0.1:7001", "master", "-", "0-5460"),
    "b": ("127.0.0.1:7002", "master", "-", "5461-10922"),
    "c": ("127.0.0.1:7003", "master", "-", "10923-16383"),
    "d": ("127.0.0.1:7004", "slave", "a", ""),
    "e": ("127.0.0.1:7005", "slave", "b", ""),
    "f": ("127.0.0.1:7006", "slave", "c", ""),
}


def nodes_text(me, changes=None):
    lines = []
    for node_id, (address, flags, master, slots) in NODES.items():
        address, flags, master, slots = (changes or {}).get(node_id, (address, flags, master, slots))
        flags = "myself," + flags if node_id == me else flags
        lines.append(f"{node_id} {address}@17001 {flags} {master} 0 1 1 connected {slots}".rstrip())
    return "\n".join(lines) + "\n"


class FakeCluster:
    """``cli(port, ...)`` answers like redis-cli: CLUSTER NODES from that node's view, INFO replication."""

    def __init__(self, views=None, links=None):
        self.ports = list(range(7001, 7007))
        self.views = views or {}
        self.links = links or {}

    def cli(self, port, *args):
        me = "abcdef"[port - 7001]
        if args[:2] == ("CLUSTER", "NODES"):
            text = self.views.get(port, nodes_text(me))
        else:
            role = "master" if NODES[me][1] == "master" else "slave"
            text = f"# Replication\r\nrole:{role}\r\nmaster_link_status:{self.links.get(port, 'up')}\r\n"
        return subprocess.CompletedProcess(args, 0 if text else 1, text, "")


def test_cluster_view_parses_roles_slots_and_failures():
    text = nodes_text("a", {"b": ("127.0.0.1:7002", "master,fail?", "-", "5461-10922 10923 [77->-x]")})
    view = redis_faults.cluster_view(FakeCluster(views={7001: text}), 7001)
    by_id = {n["id"]: n for n in view}
    assert by_id["a"] == {"id": "a", "address": "127.0.0.1:7001", "primary": True, "master": "-", "ok": True,
                          "slots": [(0, 5460)]}
    assert by_id["b"]["ok"] is False and by_id["b"]["slots"] == [(5461, 10922), (10923, 10923)]
    assert by_id["d"]["primary"] is False and by_id["d"]["master"] == "a"
    assert redis_faults.split(view) == (["127.0.0.1:7001", "127.0.0.1:7003"],
                                        ["127.0.0.1:7004", "127.0.0.1:7005", "127.0.0.1:7006"])


def test_settled_needs_every_node_to_agree_and_every_replica_linked():
    assert redis_faults.settled(FakeCluster())[0]["id"] == "a"
    # a resumed primary that still believes it is one: its view differs from the others'
    stale = nodes_text("a", {"d": ("127.0.0.1:7004", "master", "-", "0-5460")})
    assert redis_faults.settled(FakeCluster(views={7001: stale})) is None
    # a replica still at its first sync
    assert redis_faults.settled(FakeCluster(links={7005: "down"})) is None
    # a node that does not answer
    assert redis_faults.settled(FakeCluster(views={7006: ""})) is None
    assert redis_faults.layout(FakeCluster(views={7001: ""})) == (
        ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"], ["127.0.0.1:7004", "127.0.0.1:7005", "127.0.0.1:7006"])


def test_match_loop_counts_answers_that_differ_only_in_their_feedback_token_as_correct():
    """Every match answer signs its own feedback_token: the loop compares the rest of the answer."""
    expected = [{"matches": [{"offer_id": "o1"}], "feedback_token": "v1.1.aaa"}]
    answers = [(200, {"matches": [{"offer_id": "o1"}], "feedback_token": "v1.2.bbb"}),
               (200, {"matches": [{"offer_id": "o2"}], "feedback_token": "v1.1.aaa"}),
               (503, {"matches": [{"offer_id": "o1"}], "feedback_token": "v1.2.bbb"})]

    def ask(payload):
        if len(answers) == 1:
            loop._stop.set()  # the loop ends after this answer
        return answers.pop(0)

    loop = redis_faults.MatchLoop(ask, [{}], expected)
    loop._loop()  # in this thread
    assert (loop.ok, loop.wrong, loop.errors) == (1, 2, 0)
