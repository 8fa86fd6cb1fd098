"""Paced dead-letter replay jobs outlive their process.

A job's row in the store holds its cursor and counts. After a SIGKILL mid-job, a restart (on
another port, so as another instance) takes the job over once its heartbeat is stale and resumes
it with the same id, rate and filter; after a SIGTERM the next start takes it at once; after a
SIGKILL and a restart on the same port (the same instance), it is taken back at once and can be
cancelled, which leaves the rest dead letters. A job is cancelled through another instance on the
same store too. Each dead letter is replayed, and each replayed
message processed, exactly once, and a finished job's counts add up.

Messages on each case's topic are dead-lettered (no_route) by a first instance whose config has
no route for it; the next instances route it to the test processor, which records every run.
With DR_RESUME_DATABASE_URL (PostgreSQL) only the SIGKILL case runs, on that database.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from drlib import BIN, Server, call, replay_job, routed_config, wait_until  # noqa: E402

N = 20
# short heartbeats and queue leases: a dead instance's jobs and queued replays are taken over in
# about a second, not minutes
ENV = {"DR_REPLAY_HEARTBEAT_MS": "300", "DR_QUEUE_LEASE_MS": "1000"}
if os.environ.get("DR_RESUME_DATABASE_URL"):
    ENV["DATABASE_URL"] = os.environ["DR_RESUME_DATABASE_URL"]


def dead_seqs(srv, topic):
    st, _, body = call(srv, "GET", f"/admin/dlq?topic={topic}&limit=1000")
    assert st == 200, body
    return [d["message"]["attributes"]["seq"] for d in body["dead_letters"]]


def processed_seqs(srv, topic):
    return [r["seq"] for r in srv.processed() if r["topic"] == topic]


def setup(topic):
    """N dead letters on topic; (data dir, routed config)."""
    data_dir = tempfile.mkdtemp(prefix="dr-it-")
    srv = Server(config=routed_config(data_dir, topic, ["test-events"]), data_dir=data_dir,
                 env=ENV).start()
    msgs = [{"data": {"n": i}, "attributes": {"seq": str(i)}} for i in range(N)]
    assert srv.publish(topic, msgs)[0] == 200
    wait_until(lambda: len(dead_seqs(srv, topic)) == N, 60, "every message dead-lettered")
    assert srv.stop() == 0
    return data_dir, routed_config(data_dir, topic, ["test-events", topic])


def start_job(srv, topic, rate):
    st, _, j = call(srv, "POST", "/admin/dlq/replay", {"filter": {"topic": topic}, "rate": rate})
    assert st == 202 and j["state"] == "running" and j["matched"] == N, (st, j)
    return j


def interrupted(topic, rate, how, same_port=False, restart_env=ENV):
    """A job over N dead letters, stopped by signal `how` after a few replays, and the
    server started again on the same data: (job as started, new server, job as seen at once)."""
    data_dir, routed = setup(topic)
    srv = Server(config=routed, data_dir=data_dir, env=ENV).start()
    j = start_job(srv, topic, rate)
    wait_until(lambda: replay_job(srv, j["id"])["replayed"] >= 3, 60, "the job progressing")
    if how == "kill":
        srv.kill9()
    else:
        assert srv.stop() == 0
    port = srv.port if same_port else None
    srv = Server(config=routed, data_dir=data_dir, env=restart_env, port=port).start()
    st, _, now = call(srv, "GET", f"/admin/dlq/replay/jobs/{j['id']}")
    assert st == 200, (st, now)  # the job outlived its process, under its id
    assert now["state"] == "running", now
    assert (now["id"], now["rate"], now["filter"], now["matched"]) == (
        j["id"], rate, {"topic": topic}, N), (now, j)
    assert 0 < now["replayed"] < N, now
    return j, srv, now


def check_exactly_once(srv, topic, replayed):
    """Every replayed message ran once, and what did not run is still a dead letter."""
    wait_until(lambda: len(processed_seqs(srv, topic)) >= replayed, 60,
               f"{replayed} replays processed")
    ran, dead = processed_seqs(srv, topic), dead_seqs(srv, topic)
    assert len(ran) == len(set(ran)) == replayed, (replayed, sorted(ran))
    assert len(dead) == len(set(dead)) == N - replayed, (replayed, sorted(dead))
    assert set(ran) | set(dead) == {str(i) for i in range(N)} and not set(ran) & set(dead)


def resumed_to_end(topic, how, restart_env=ENV):
    j, srv, _ = interrupted(topic, 5, how, restart_env=restart_env)
    done = wait_until(lambda: (lambda x: x if x["state"] != "running" else None)(
        replay_job(srv, j["id"])), 60, "the resumed job done")
    assert done["state"] == "done" and done["finished"] and done["errors"] == 0, done
    assert done["replayed"] + done["skipped"] == done["matched"] == N, done
    check_exactly_once(srv, topic, N)
    st, _, jobs = call(srv, "GET", "/admin/dlq/replay/jobs")
    assert st == 200 and [x for x in jobs["jobs"] if x["id"] == j["id"]] == [done], jobs
    assert srv.stop() == 0


def cancelled_after_restart(topic):
    j, srv, _ = interrupted(topic, 2, "kill", same_port=True)
    st, _, c = call(srv, "DELETE", f"/admin/dlq/replay/jobs/{j['id']}")
    assert st == 200 and c["state"] == "cancelled" and c["finished"], (st, c)
    # what it replayed ran once; the rest stay dead letters, also after a while
    replayed = N - len(dead_seqs(srv, topic))
    assert 3 <= replayed < N and c["replayed"] <= replayed, (c, replayed)
    check_exactly_once(srv, topic, replayed)
    time.sleep(2)  # a job that went on would replay more in this time
    assert replay_job(srv, j["id"]) == c
    check_exactly_once(srv, topic, replayed)
    assert srv.stop() == 0


def cancelled_elsewhere(topic):
    """Two instances on one store: a job running on the first is cancelled through the second,
    which ends it in the store; the first sees that at its next step and replays no more."""
    data_dir, routed = setup(topic)
    a = Server(config=routed, data_dir=data_dir, env=ENV).start()
    b = Server(config=routed, data_dir=data_dir, env=ENV).start()
    j = start_job(a, topic, 2)
    wait_until(lambda: replay_job(a, j["id"])["replayed"] >= 2, 60, "the job progressing")
    assert replay_job(b, j["id"])["state"] == "running"
    st, _, c = call(b, "DELETE", f"/admin/dlq/replay/jobs/{j['id']}")
    assert st == 200 and c["state"] == "cancelled" and c["finished"], (st, c)
    assert replay_job(a, j["id"]) == c
    time.sleep(2)  # the first instance, had it gone on, would replay about 4 more
    replayed = N - len(dead_seqs(a, topic))
    # at most the step under way when the cancel landed replays after it
    assert c["replayed"] <= replayed <= c["replayed"] + 1, (c, replayed)
    assert replay_job(a, j["id"]) == replay_job(b, j["id"]) == c
    check_exactly_once(a, topic, replayed)
    assert b.stop() == 0 and a.stop() == 0


def followed_through_restart(topic):
    """`data-router dlq job ID --wait`, started before an orderly restart on the same port, waits
    for the server to answer again and ends with the job done after it."""
    data_dir, routed = setup(topic)
    srv = Server(config=routed, data_dir=data_dir, env=ENV).start()
    j = start_job(srv, topic, 5)
    errf = tempfile.NamedTemporaryFile(mode="w+", prefix="dr-follow-", suffix=".err")
    follower = subprocess.Popen([BIN, "dlq", "job", str(j["id"]), "--wait", "--url", srv.url],
                                stdout=subprocess.PIPE, stderr=errf, text=True)
    try:
        wait_until(lambda: replay_job(srv, j["id"])["replayed"] >= 3, 60, "the job progressing")
        assert srv.stop() == 0
        # the restart only once the follower has found no server
        wait_until(lambda: "does not answer; waiting for it" in open(errf.name).read(), 60,
                   "the follower to notice the stop")
        srv = Server(config=routed, data_dir=data_dir, env=ENV, port=srv.port).start()
        out, _ = follower.communicate(timeout=120)
    finally:
        if follower.poll() is None:
            follower.kill()
    err = open(errf.name).read()
    errf.close()
    assert follower.returncode == 0, (follower.returncode, out, err)
    done = json.loads(out)
    assert done["id"] == j["id"] and done["state"] == "done", done
    assert done["replayed"] + done["skipped"] == done["matched"] == N, done
    check_exactly_once(srv, topic, N)
    assert srv.stop() == 0


def main():
    resumed_to_end("resume-kill", "kill")
    if os.environ.get("DR_RESUME_DATABASE_URL"):
        print("ok: a replay job resumed after SIGKILL on PostgreSQL, each message once")
        return
    # An orderly stop hands its jobs over: the next instance takes them at once, though its
    # heartbeat (a minute) would take three minutes to find them stale.
    resumed_to_end("resume-term", "term", dict(ENV, DR_REPLAY_HEARTBEAT_MS="60000"))
    cancelled_after_restart("resume-cancel")
    cancelled_elsewhere("resume-elsewhere")
    followed_through_restart("resume-follow")
    print("ok: replay jobs resumed after SIGKILL and SIGTERM with their ids, each message once; "
          "a resumed job cancelled leaves the rest dead letters; --wait follows a job through a "
          "restart")


if __name__ == "__main__":
    main()
