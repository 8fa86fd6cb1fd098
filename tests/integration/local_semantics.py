import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from drlib import Server, wait_until  # noqa: E402

TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def seqs(srv):
    return [r["seq"] or "" for r in srv.processed()]


def idle(srv):
    return srv.metric("dr_in_flight_messages") == 0


def main():
    srv = Server().start()

    # Idempotency: a second publish with the same key is acknowledged but not processed again.
    st, a = srv.publish("test-events", [{"data": {"n": 1}, "attributes": {"seq": "first", "idempotency_key": "K1"}}])
    assert st == 200
    wait_until(lambda: "first" in seqs(srv), 30, "first processed")
    st, b = srv.publish("test-events", [{"data": {"n": 2}, "attributes": {"seq": "dup", "idempotency_key": "K1"}}])
    assert st == 200 and b["messageIds"] == a["messageIds"], (a, b)
    srv.publish("test-events", [{"data": {"n": 3}, "attributes": {"seq": "marker"}}])
    wait_until(lambda: "marker" in seqs(srv) and idle(srv), 30, "marker processed")
    assert "dup" not in seqs(srv)

    # Emits: the follow-up is durable and processed, with the parent's traceparent.
    srv.publish("test-events", [{"data": {"n": 4}, "attributes": {
        "seq": "parent", "test_emit": "test-followups", "traceparent": TRACE}}])
    wait_until(lambda: len([r for r in srv.processed() if r["topic"] == "test-followups"]) == 1,
               30, "follow-up processed")
    st, dl = srv.get("/admin/dlq")
    assert dl["count"] == 0

    # Graceful shutdown: slow work in flight; SIGTERM; exit 0 within the deadline; nothing lost.
    slow = [{"data": {"n": i}, "attributes": {"seq": f"slow{i}", "test_sleep_ms": "1500"}}
            for i in range(12)]
    assert srv.publish("test-events", slow)[0] == 200
    wait_until(lambda: any(s.startswith("slow") for s in seqs(srv)), 30, "slow work started")
    t0 = time.time()
    srv.proc.send_signal(signal.SIGTERM)
    rc = srv.proc.wait(30)
    took = time.time() - t0
    assert rc == 0, f"exit {rc}: {srv.tail()}"
    assert took < 25, f"shutdown took {took:.1f}s"
    done_before = {s for s in seqs(srv) if s.startswith("slow")}
    assert len(done_before) < 12, "shutdown should not wait for queued work"

    # Restart: the rest runs; the idempotency key is still remembered.
    srv = Server(data_dir=srv.data_dir, port=srv.port).start()
    wait_until(lambda: {f"slow{i}" for i in range(12)} <= set(seqs(srv)), 120,
               "slow work finished after restart")
    st, c = srv.publish("test-events", [{"data": {"n": 5}, "attributes": {"seq": "dup2", "idempotency_key": "K1"}}])
    srv.publish("test-events", [{"data": {"n": 6}, "attributes": {"seq": "marker2"}}])
    wait_until(lambda: "marker2" in seqs(srv) and idle(srv), 30, "marker2 processed")
    assert "dup2" not in seqs(srv), "idempotency key forgotten across a restart"
    assert srv.stop() == 0
    print(f"ok: dedup across restart, emits, graceful shutdown in {took:.1f}s "
          f"({len(done_before)} of 12 slow messages finished before exit, the rest after)")


if __name__ == "__main__":
    main()
