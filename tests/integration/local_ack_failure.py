"""Failure paths of the local queue that end in the table.

1. The store refuses the write that completes a message (a trigger on the queue's state table
aborts it, as a full disk or a lost database would): the message is not acknowledged, so it stays
in the queue. It must run again, without a restart, and be completed once the store takes writes
again; nothing else is lost meanwhile.

2. A message waiting for its retry time when the service restarts is read back with that time
still ahead and waits on a timer; stopping the service then leaves it in the table for the next
start, and frees what waited (the sanitizer build exits non-zero on a leak)."""
import collections
import os
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from drlib import Server, wait_until  # noqa: E402


def write_config(tmp, extra=""):
    path = os.path.join(tmp, "config.yaml")
    with open(path, "w") as f:
        f.write("""
mode: local
http: {host: 127.0.0.1, port: 8080, request_timeout: 10s}
""" + extra + """
topics:
  test-events: {type: test}
routes:
  - name: test
    match: {topic: test-events}
    processors: [test]
""")
    return path


def queued(db):
    with sqlite3.connect(db, timeout=30) as c:
        return c.execute("SELECT COUNT(*) FROM queue_seg").fetchone()[0]


def main():
    tmp = tempfile.mkdtemp(prefix="dr-ackfail-")
    srv = Server(config=write_config(tmp), env={"DR_LOG_LEVEL": "info"}).start()
    db = os.path.join(srv.data_dir, "data-router.db")
    gate = os.path.join(srv.data_dir, "gate")

    def counts():
        return collections.Counter(r["seq"] for r in srv.processed())

    assert srv.publish("test-events", [{"data": {"n": 0}, "attributes": {
        "seq": "m0", "test_wait_for": "gate"}}])[0] == 200
    wait_until(lambda: srv.metric("dr_in_flight_messages") == 1, 60, "m0 running")
    with sqlite3.connect(db, timeout=30) as c:
        c.execute("CREATE TRIGGER refuse_completion BEFORE INSERT ON queue_state "
                  "BEGIN SELECT RAISE(ABORT, 'the store refuses writes'); END")
    open(gate, "w").close()
    # Its completion fails: it stays queued and runs again, not only after a restart.
    wait_until(lambda: counts()["m0"] >= 2, 60, "m0 run again after its completion failed")
    assert "ack failed" in srv.tail(1 << 20)
    assert queued(db) == 1
    # Messages published meanwhile are kept too.
    assert srv.publish("test-events", [{"data": {"n": 1}, "attributes": {"seq": "m1"}}])[0] == 200
    with sqlite3.connect(db, timeout=30) as c:
        c.execute("DROP TRIGGER refuse_completion")
    wait_until(lambda: queued(db) == 0 and srv.metric("dr_in_flight_messages") == 0, 60,
               "the queue empty once the store takes writes again")
    c = counts()
    assert c["m0"] >= 2 and c["m1"] >= 1, c
    settled = dict(c)
    # Nothing runs again once completed.
    assert srv.publish("test-events", [{"data": {"n": 2}, "attributes": {"seq": "m2"}}])[0] == 200
    wait_until(lambda: counts()["m2"] == 1 and queued(db) == 0, 60, "m2 processed")
    c = counts()
    assert all(c[k] == n for k, n in settled.items()), (settled, c)
    assert srv.stop() == 0, srv.tail()
    print(f"ok: a failed completion ran again ({settled['m0']} runs) and completed afterwards")
    retry_pending_at_stop()


def retry_pending_at_stop():
    tmp = tempfile.mkdtemp(prefix="dr-retrywait-")
    config = write_config(tmp, "retry:\n  default: {max_attempts: 5, initial: 30s, multiplier: 2, "
                               "max: 60s, jitter: 0}\n")
    srv = Server(config=config).start()
    assert srv.publish("test-events", [{"data": {}, "attributes": {
        "seq": "r0", "test_fail": "transient:1"}}])[0] == 200
    wait_until(lambda: srv.metric("dr_processing_seconds_count",
                                  'processor="test"') or 0, 60, "the first, failing attempt")
    srv.kill9()
    srv = Server(config=config, data_dir=srv.data_dir, port=srv.port).start()
    # read back with its retry time 30 s ahead: it waits, it does not run
    wait_until(lambda: srv.metric("dr_queue_depth") == 0, 30, "the restarted service idle")
    assert not [r for r in srv.processed() if r["seq"] == "r0"]
    assert srv.stop() == 0, srv.tail()
    db = os.path.join(srv.data_dir, "data-router.db")
    assert queued(db) == 1, "the waiting message stays queued for the next start"
    print("ok: a message waiting for its retry time at a stop stays queued, nothing leaked")


if __name__ == "__main__":
    main()
