"""An orderly stop hands the queue over. Instance A stops (SIGTERM) with messages still in the
table, waiting for their retry; instance B, another owner (its own DR_INSTANCE_ID, as a restart
on another port or host would be), starts on the same store. Both hold leases of an hour, so B
can only run A's messages at once if A ended its leases when it stopped. Each message runs once
more, on B, and none is lost or run twice."""
import collections
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from drlib import Server, wait_until  # noqa: E402

N = 20
LEASE_MS = "3600000"
RETRIED = 'topic="test-events",processor="test",outcome="retry"'


def write_config(tmp):
    path = os.path.join(tmp, "config.yaml")
    with open(path, "w") as f:
        f.write("""
mode: local
topics:
  test-events: {type: test}
retry:
  default: {max_attempts: 5, initial: 20s, multiplier: 1, max: 20s, jitter: 0}
routes:
  - name: test
    match: {topic: test-events}
    processors: [test]
""")
    return path


def runs(srv):
    """(seq, attempt) of the successful runs, counted."""
    return collections.Counter((r["seq"], r["attempt"]) for r in srv.processed())


def main():
    tmp = tempfile.mkdtemp(prefix="dr-handover-")
    config = write_config(tmp)
    a = Server(config=config, env={"DR_INSTANCE_ID": "a", "DR_QUEUE_LEASE_MS": LEASE_MS,
                                   "DR_LOG_LEVEL": "info"}).start()
    msgs = [{"data": {"n": i}, "attributes": {"seq": str(i), "test_fail": "transient:1"}}
            for i in range(N)]
    # and two of one ordering key: the first fails once, the second waits behind its retry
    keyed = [{"data": {"n": k}, "orderingKey": "K",
              "attributes": {"seq": f"k{k}", **({"test_fail": "transient:1"} if k == 1 else {})}}
             for k in (1, 2)]
    assert a.publish("test-events", msgs + keyed)[0] == 200
    # every message failed once and waits 20 s for its retry, in the table (the test processor
    # records successful runs only)
    wait_until(lambda: a.metric("dr_messages_processed_total", RETRIED) == N + 1, 60,
               "every first attempt")
    assert a.stop() == 0, a.tail()
    assert '"queue leases released"' in a.tail(1 << 20), a.tail()
    assert not a.processed(), "A ran a retry before it stopped: nothing was left to hand over"

    b = Server(config=config, data_dir=a.data_dir,
               env={"DR_INSTANCE_ID": "b", "DR_QUEUE_LEASE_MS": LEASE_MS})
    b.log_path = os.path.join(tmp, "b.log")
    b.start()
    wait_until(lambda: sum(runs(b)[(str(i), 2)] for i in range(N)) == N and
               runs(b)[("k2", 1)] == 1, 60,
               "B runs A's messages (they were A's for an hour otherwise)")
    c = runs(b)
    assert len(c) == N + 2 and all(c[(str(i), 2)] == 1 for i in range(N)), c
    # the retry loaded from the table keeps its key's order: k2 still waits for k1
    order = [r["seq"] for r in b.processed() if r["seq"] in ("k1", "k2")]
    assert order == ["k1", "k2"], order
    assert b.metric("dr_messages_processed_total", RETRIED) == 0
    assert b.stop() == 0, b.tail()
    print(f"ok: {N} messages left by an orderly stop ran on the next instance at once, once each")


if __name__ == "__main__":
    main()
