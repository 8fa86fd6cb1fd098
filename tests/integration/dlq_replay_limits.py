"""Paced dead-letter replay jobs at their edges: a job the store fails, and the cap on jobs.

A job whose store work fails ends `failed` with `last_error` saying why, replays nothing more and
takes no slot; its dead letters stay. The store is made to fail, once the job has started (its
start writes the job's row), by another process holding SQLite's write lock (as a long write of
another instance would) past the busy timeout.

At most 16 jobs run at once: the 17th gets 429 RESOURCE_EXHAUSTED in the API's JSON error shape
and starts nothing; a job cancelled, or one that ends by itself, frees its slot for the next.

Messages on `limits-test` have no route, so they are dead letters, and so is each replayed one
again (with a new id, outside the set of the job that replayed it).
"""
import json
import os
import sqlite3
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from drlib import Server, api_error, call, replay_job, routed_config, wait_until  # noqa: E402

N = 40
MAX_RUNNING = 16
TOPIC = "limits-test"


def jobs(srv):
    st, _, body = call(srv, "GET", "/admin/dlq/replay/jobs")
    assert st == 200, body
    return body["jobs"]


def dead_ids(srv):
    st, _, body = call(srv, "GET", f"/admin/dlq?topic={TOPIC}&limit=1000")
    assert st == 200, body
    return sorted(d["id"] for d in body["dead_letters"])


def start(srv, rate):
    st, headers, j = call(srv, "POST", "/admin/dlq/replay", {"filter": {"topic": TOPIC},
                                                             "rate": rate})
    assert st == 202 and j["state"] == "running", (st, j)
    assert headers["Location"] == j["url"], headers
    return j


def refused(srv):
    """A paced replay is refused as one job too many: 429 in the API's error shape."""
    resp = call(srv, "POST", "/admin/dlq/replay", {"filter": {"topic": TOPIC}, "rate": 0.001})
    assert "too many replay jobs" in api_error(resp, 429, "RESOURCE_EXHAUSTED"), resp
    assert set(resp[2]) == {"error"} and "Location" not in resp[1], resp
    return True


def audit_lines(srv, msg):
    with open(srv.log_path, encoding="utf-8", errors="replace") as f:
        return [json.loads(line) for line in f if f'"msg":"{msg}"' in line]


def failed_job(srv):
    """The store stays locked past its busy timeout while a job runs: the job ends failed with
    the reason, and replays nothing more. A job's start writes its row, so the lock is taken once
    the job has replayed its first dead letter."""
    orig = set(dead_ids(srv))
    j = start(srv, 1)
    assert j["matched"] == N and j["last_error"] is None, j
    wait_until(lambda: replay_job(srv, j["id"])["replayed"] >= 1, 60, "the job replaying")
    db = sqlite3.connect(os.path.join(srv.data_dir, "data-router.db"), timeout=30,
                         isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")  # the write lock, held past the store's busy timeout
        before = [i for i in dead_ids(srv) if i in orig]  # no replay can commit now
        end = wait_until(lambda: (lambda x: x if x["state"] != "running" else None)(
            replay_job(srv, j["id"])), 60, "the job to end while the store is locked")
    finally:
        db.rollback()
        db.close()
    assert end["state"] == "failed", end
    assert end["last_error"] and end["last_error"].startswith("store: "), end
    assert end["finished"] and end["errors"] == 0, end
    assert end["replayed"] == N - len(before) >= 1, (end, len(before))
    assert (end["id"], end["matched"], end["rate"]) == (j["id"], N, 1), end
    # it stays as it ended once the store answers again, and replays nothing more
    assert [i for i in dead_ids(srv) if i in orig] == before
    assert replay_job(srv, j["id"]) == end
    # cancelling it answers it as it ended
    st, _, c = call(srv, "DELETE", f"/admin/dlq/replay/jobs/{j['id']}")
    assert st == 200 and c == end, (st, c)
    lines = [x for x in audit_lines(srv, "dead-letter replay job finished") if x["job"] == j["id"]]
    assert len(lines) == 1 and lines[0]["state"] == "failed", lines
    assert lines[0]["component"] == "audit" and lines[0]["replayed"] == end["replayed"], lines
    return end


def job_cap(srv, failed):
    """16 jobs run at once, the 17th is refused, a job that ends frees its slot."""
    running = [start(srv, 0.001) for _ in range(MAX_RUNNING)]  # the failed job takes no slot
    # each replays one dead letter, then waits 1000 s for its next
    for j in running:
        wait_until(lambda: replay_job(srv, j["id"])["replayed"] == 1, 60,
                   f"job {j['id']} replaying")

    assert refused(srv)
    started = [x for x in audit_lines(srv, "dead-letter replay job started")
               if x["job"] == running[0]["id"]]
    assert len(started) == 1 and type(started[0]["rate"]) is float, started
    assert started[0]["rate"] == 0.001, started
    listed = jobs(srv)
    assert [x["id"] for x in listed] == [j["id"] for j in reversed(running)] + [failed["id"]]
    assert [x["state"] for x in listed] == ["running"] * MAX_RUNNING + ["failed"], listed

    # A cancel frees its slot, for one job more, and no more than that.
    st, _, c = call(srv, "DELETE", f"/admin/dlq/replay/jobs/{running[0]['id']}")
    assert st == 200 and c["state"] == "cancelled" and c["replayed"] == 1, (st, c)
    running = running[1:] + [start(srv, 0.001)]
    assert refused(srv)
    # A job that ends by itself frees its slot too: one over a single dead letter is done after
    # its first step.
    st, _, c = call(srv, "POST", f"/admin/dlq/replay/jobs/{running[0]['id']}/cancel")
    assert st == 200 and c["state"] == "cancelled", (st, c)
    st, _, short = call(srv, "POST", "/admin/dlq/replay",
                        {"filter": {"topic": TOPIC}, "rate": 0.001, "limit": 1})
    assert st == 202 and short["matched"] == 1, (st, short)
    wait_until(lambda: replay_job(srv, short["id"])["state"] == "done", 60,
               "the one-letter job done")
    start(srv, 0.001)
    assert refused(srv)

    for j in jobs(srv):
        if j["state"] == "running":
            st, _, c = call(srv, "DELETE", f"/admin/dlq/replay/jobs/{j['id']}")
            assert st == 200 and c["state"] == "cancelled", (st, c)
    states = [x["state"] for x in jobs(srv)]
    assert "running" not in states and states.count("failed") == 1, states


def main():
    data_dir = tempfile.mkdtemp(prefix="dr-it-")
    config = routed_config(data_dir, TOPIC, ["test-events"])
    srv = Server(config=config, data_dir=data_dir).start()
    msgs = [{"data": {"n": i}, "attributes": {"seq": str(i)}} for i in range(N)]
    assert srv.publish(TOPIC, msgs)[0] == 200
    wait_until(lambda: len(dead_ids(srv)) == N, 60, "every message dead-lettered")

    failed = failed_job(srv)
    job_cap(srv, failed)
    assert srv.stop() == 0
    print("ok: a job the store fails ends failed with its reason; the 17th running job is "
          "refused with 429 until one ends")


if __name__ == "__main__":
    main()
