"""A message that kills the process: each death while it runs counts an attempt (the running
file), so it is dead-lettered ("crashed") once its attempts are used up, and the service stays
up; messages that were not running are not blamed; an orderly stop blames nothing."""
import os
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from drlib import Server, wait_until  # noqa: E402

MAX_ATTEMPTS = 3


def write_config(tmp):
    path = os.path.join(tmp, "config.yaml")
    with open(path, "w") as f:
        f.write(f"""
mode: local
workers: 1
topics:
  test-events: {{type: test}}
retry:
  types:
    test: {{max_attempts: {MAX_ATTEMPTS}, initial: 10ms, multiplier: 2, max: 50ms, jitter: 0}}
processors:
  test: {{crash: true}}
routes:
  - name: test
    match: {{topic: test-events}}
    processors: [test]
""")
    return path


def runs(srv, seq):
    return [r["attempt"] for r in srv.processed() if r["seq"] == seq]


def died(srv):
    """Waits for the process to end by itself; its exit status."""
    rc = srv.proc.wait(60)
    assert rc != 0, f"exit {rc}: {srv.tail()}"
    return rc


def restart(srv, config, wait=True):
    """The same instance again (its port and data directory: its rows and running file)."""
    return Server(config=config, data_dir=srv.data_dir, port=srv.port,
                  env={"DR_LOG_LEVEL": "info"}).start(wait)


def dead_letters(srv):
    st, body = srv.get("/admin/dlq")
    assert st == 200, body
    return body["dead_letters"]


def main():
    tmp = tempfile.mkdtemp(prefix="dr-crash-")
    config = write_config(tmp)
    srv = Server(config=config, env={"DR_LOG_LEVEL": "info"}).start()

    # Kills the process on its first two attempts: runs a third time, and that one counts.
    before = [{"data": {"n": i}, "attributes": {"seq": f"before{i}"}} for i in range(5)]
    assert srv.publish("test-events", before)[0] == 200
    wait_until(lambda: all(runs(srv, f"before{i}") for i in range(5)), 60, "first messages")
    st, _ = srv.publish("test-events", [{"data": {}, "attributes": {"seq": "twice", "test_crash": "2"}}])
    assert st == 200
    died(srv)
    srv = restart(srv, config, wait=False)  # dies again, maybe before it answers
    died(srv)
    srv = restart(srv, config)
    wait_until(lambda: runs(srv, "twice"), 60, "the third attempt")
    assert runs(srv, "twice") == [3], runs(srv, "twice")
    assert "the last process stopped while processing messages" in srv.tail(20000), srv.tail()

    # Kills the process every time: after MAX_ATTEMPTS deaths it is a dead letter, the service
    # stays up, and the messages queued behind it, never running at a death, keep attempt 1.
    poison = [{"data": {}, "attributes": {"seq": "poison", "test_crash": "always"}}]
    behind = [{"data": {"n": i}, "attributes": {"seq": f"behind{i}"}} for i in range(20)]
    assert srv.publish("test-events", poison + behind)[0] == 200
    for i in range(MAX_ATTEMPTS):
        died(srv)
        srv = restart(srv, config, wait=i + 1 == MAX_ATTEMPTS)
    wait_until(lambda: dead_letters(srv), 60, "the dead letter")
    dl = dead_letters(srv)
    assert len(dl) == 1, dl
    d = dl[0]
    assert d["reason"] == "crashed", d
    assert d["attempts"] == MAX_ATTEMPTS, d
    assert "stopped while processing it" in d["error"], d
    assert d["processor"] is None, d
    wait_until(lambda: all(runs(srv, f"behind{i}") for i in range(20)), 60, "the rest")
    for i in range(20):
        assert set(runs(srv, f"behind{i}")) == {1}, (i, runs(srv, f"behind{i}"))
    assert srv.healthy()

    # The dead letter replays like any other (and kills no more when it is fixed: without
    # test_crash it just runs).
    st, body = srv.request("POST", f"/admin/dlq/{d['id']}/replay",
                           {"attributes": {"seq": "poison-fixed"}})
    assert st == 200, body
    wait_until(lambda: runs(srv, "poison-fixed"), 60, "the replayed message")
    assert runs(srv, "poison-fixed") == [1], runs(srv, "poison-fixed")

    # An orderly stop while a message runs blames nothing: the stop clears the running file, so
    # the next start finds nothing running (no "stopped while processing" line) and the
    # message, if it runs again, runs at attempt 1.
    blamed = "the last process stopped while processing messages"
    st, _ = srv.publish("test-events", [{"data": {}, "attributes": {
        "seq": "slow", "test_wait_for": "gate"}}])
    assert st == 200
    wait_until(lambda: srv.metric("dr_in_flight_messages") == 1, 30, "the slow message held")
    srv.proc.send_signal(signal.SIGTERM)
    open(os.path.join(srv.data_dir, "gate"), "w").close()
    assert srv.proc.wait(60) == 0, srv.tail()
    with open(srv.log_path, "rb") as f:
        before = f.read().decode(errors="replace").count(blamed)
    srv = restart(srv, config)
    wait_until(lambda: runs(srv, "slow"), 60, "the slow message")
    assert set(runs(srv, "slow")) == {1}, runs(srv, "slow")
    with open(srv.log_path, "rb") as f:
        after = f.read().decode(errors="replace").count(blamed)
    assert after == before, "an orderly stop left a message in the running file"
    assert srv.stop() == 0
    print("ok")


if __name__ == "__main__":
    main()
