"""Two instances share one store. A sits in backlog mode (its router full of messages held at a
gate, more of its own messages left in the table) when B, which owns a message held at another
gate, is killed with SIGKILL. Once B's lease runs out A takes the message over, and A's backlog
reads, which start below it, come across it again while it is still running: it must not be
handed to the router a second time. Every message is processed exactly once."""
import collections
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from drlib import Server, wait_until  # noqa: E402

WORKERS = 3  # A: one per held message, so A's router is full (max_in_flight = WORKERS)


def write_config(tmp):
    path = os.path.join(tmp, "config.yaml")
    with open(path, "w") as f:
        f.write(f"""
mode: local
http: {{host: 127.0.0.1, port: 8080, request_timeout: 10s}}
workers: {WORKERS}
limits: {{max_in_flight: {WORKERS}}}
topics:
  test-events: {{type: test}}
routes:
  - name: test
    match: {{topic: test-events}}
    processors: [test]
""")
    return path


def counts(srv):
    return collections.Counter(r["seq"] for r in srv.processed())


def in_flight(srv):
    return srv.metric("dr_in_flight_messages")


def main():
    tmp = tempfile.mkdtemp(prefix="dr-takeover-")
    config = write_config(tmp)
    # B's lease is short so A takes over soon; A's is longer so that B, which checks for
    # expired rows too, never sees A's as expired.
    a = Server(config=config, env={"DR_INSTANCE_ID": "a", "DR_QUEUE_LEASE_MS": "3000",
                                   "DR_LOG_LEVEL": "info"}).start()
    b = Server(config=config, data_dir=a.data_dir,
               env={"DR_INSTANCE_ID": "b", "DR_QUEUE_LEASE_MS": "1000"})
    b.log_path = os.path.join(tmp, "b.log")
    b.start()
    gate_a = os.path.join(a.data_dir, "gate-a")
    gate_b = os.path.join(a.data_dir, "gate-b")

    # A: every worker held at gate-a fills its router; the rest stays in the table (backlog,
    # cursor below them).
    held = [{"data": {"n": i}, "attributes": {"seq": f"a-held{i}", "test_wait_for": "gate-a"}}
            for i in range(WORKERS)]
    rest = [{"data": {"n": i}, "attributes": {"seq": f"a{i}"}} for i in range(4)]
    assert a.publish("test-events", held + rest)[0] == 200
    wait_until(lambda: in_flight(a) == WORKERS, 60, "A's router full")

    # B: one message (ids above all of A's), held at gate-b; B dies with it.
    assert b.publish("test-events", [{"data": {}, "attributes": {
        "seq": "b0", "test_wait_for": "gate-b"}}])[0] == 200
    wait_until(lambda: in_flight(b) == 1, 60, "B running its message")
    b.kill9()

    # A takes B's row over once B's lease ran out, then runs its own backlog: its table reads
    # start below B's row, which is A's now and still running (held at gate-b).
    wait_until(lambda: "took over queued messages" in a.tail(1 << 20), 120, "A's take-over")
    open(gate_a, "w").close()
    wait_until(lambda: all(counts(a)[f"a{i}"] for i in range(len(rest))), 120,
               "A's own messages processed")
    # A marker published now (its id above B's row) runs only once A's reads passed B's row.
    assert a.publish("test-events", [{"data": {}, "attributes": {"seq": "marker"}}])[0] == 200
    wait_until(lambda: counts(a)["marker"], 120, "marker processed")
    open(gate_b, "w").close()
    wait_until(lambda: counts(a)["b0"] and in_flight(a) == 0, 120, "B's message processed")

    c = counts(a)
    want = [m["attributes"]["seq"] for m in held + rest] + ["b0", "marker"]
    assert set(c) == set(want), c
    twice = {k: n for k, n in c.items() if n != 1}
    assert not twice, f"processed more than once: {twice}"
    assert a.stop() == 0, a.tail()
    print(f"ok: {len(want)} messages over two instances, each processed once after the take-over")


if __name__ == "__main__":
    main()
