"""Paced dead-letter replay: a background job that holds no thread while it waits.

With one libuv pool thread (UV_THREADPOOL_SIZE=1), a replay with a rate answers 202 with a job at
once, its progress advances, requests that need the pool are answered while slow jobs run, two
jobs over the same dead letters queue each message once, a cancel stops a job with what it
replayed so far, a shutdown during a job exits 0 without waiting for it, and a restart resumes
the job with its id and counts (and loses nothing it replayed).

Messages on `replay-test` are dead-lettered (no_route) by a first instance whose config has no
route for the topic; the next instances route it to the test processor, which records every
run, so each replayed message can be seen processed exactly once.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from drlib import (BIN, Server, api_error, call, replay_job, routed_config,  # noqa: E402
                   wait_until)

N = 40
TOPIC = "replay-test"


def dead_seqs(srv):
    st, _, body = call(srv, "GET", f"/admin/dlq?topic={TOPIC}&limit=1000")
    assert st == 200, body
    return [d["message"]["attributes"]["seq"] for d in body["dead_letters"]]


def processed_seqs(srv):
    return [r["seq"] for r in srv.processed() if r["topic"] == TOPIC]


def check_exactly_once(srv, replayed):
    """Every replayed message ran once, and what did not run is still a dead letter."""
    wait_until(lambda: len(processed_seqs(srv)) >= replayed, 60, f"{replayed} replays processed")
    ran, dead = processed_seqs(srv), dead_seqs(srv)
    assert len(ran) == len(set(ran)) == replayed, (replayed, sorted(ran))
    assert len(dead) == len(set(dead)) == N - replayed, (replayed, sorted(dead))
    assert set(ran) | set(dead) == {str(i) for i in range(N)} and not set(ran) & set(dead)


def start_job(srv, body):
    st, headers, j = call(srv, "POST", "/admin/dlq/replay", body)
    assert st == 202, (st, j)
    assert j["state"] in ("running", "done") and j["url"] == f"/admin/dlq/replay/jobs/{j['id']}"
    assert headers["Location"] == j["url"], headers
    for k in ("replayed", "matched", "errors", "skipped"):
        assert isinstance(j[k], int), j
    assert j["started"] and j["finished"] is None or j["state"] == "done"
    return j


def bad_input(srv):
    for rate in (0, -1, "fast", None, 1e9, 0.00001):
        msg = api_error(call(srv, "POST", "/admin/dlq/replay", {"rate": rate}), 400,
                        "INVALID_ARGUMENT")
        assert "rate" in msg, msg
    for limit in (0, -5, 1.5, "10", 100001):
        msg = api_error(call(srv, "POST", "/admin/dlq/replay", {"rate": 1, "limit": limit}),
                        400, "INVALID_ARGUMENT")
        assert "limit" in msg, msg
    api_error(call(srv, "POST", "/admin/dlq/replay", {"rate": 1, "filter": "all"}), 400,
              "INVALID_ARGUMENT")
    api_error(call(srv, "POST", "/admin/dlq/replay", {"rate": 1, "dry_run": "yes"}), 400,
              "INVALID_ARGUMENT")
    # A misspelt option or filter, or a filter that is not a string, is refused: dropped, it
    # would replay every dead letter (or not be a dry run).
    for body, what in (({"dryrun": True}, "dryrun: unknown"),
                       ({"dry_run": True, "filter": {"topc": TOPIC}}, "filter.topc: unknown"),
                       ({"filter": {"topic": 5}}, "filter.topic: expected a string"),
                       ({"filter": {"error": "e" * 300}}, "filter.error: value too long")):
        msg = api_error(call(srv, "POST", "/admin/dlq/replay", body), 400, "INVALID_ARGUMENT")
        assert what in msg, (body, msg)
    # An edit of one dead letter is held to what a publish may carry.
    one = call(srv, "GET", f"/admin/dlq?topic={TOPIC}&limit=1")[2]["dead_letters"][0]["id"]
    for body, what in (({"atributes": {"k": "v"}}, "atributes: unknown"),
                       ({"attributes": {"k": 5}}, "a string"),
                       ({"attributes": {f"k{i}": "v" for i in range(101)}}, "at most 100"),
                       ({"attributes": {"k": "v" * 1025}}, "at most 1024 bytes"),
                       ({"attributes": {"k": "a\u0000b"}}, "U+0000"),
                       ({"data": 5}, "base64")):
        msg = api_error(call(srv, "POST", f"/admin/dlq/{one}/replay", body), 400,
                        "INVALID_ARGUMENT")
        assert what in msg, (body, msg)
    assert len(dead_seqs(srv)) == N
    assert "no replay job 12345" in api_error(
        call(srv, "GET", "/admin/dlq/replay/jobs/12345"), 404, "NOT_FOUND")
    api_error(call(srv, "DELETE", "/admin/dlq/replay/jobs/12345"), 404, "NOT_FOUND")
    api_error(call(srv, "POST", "/admin/dlq/replay/jobs/12345/cancel"), 404, "NOT_FOUND")
    for path in ("/admin/dlq/replay/jobs/abc", "/admin/dlq/replay/jobs/-1",
                 "/admin/dlq/replay/jobs/1/x", "/admin/dlq/replay/jobsX"):
        api_error(call(srv, "GET", path), 404, "NOT_FOUND")
    api_error(call(srv, "POST", "/admin/dlq/replay/jobs"), 405, "METHOD_NOT_ALLOWED")
    api_error(call(srv, "PUT", "/admin/dlq/replay/jobs/12345"), 405, "METHOD_NOT_ALLOWED")
    # nothing was started by any of it
    st, _, jobs = call(srv, "GET", "/admin/dlq/replay/jobs")
    assert st == 200 and jobs == {"jobs": [], "count": 0}, jobs


def cli(srv, *args):
    p = subprocess.run([BIN, "dlq", *args, "--url", srv.url], capture_output=True, text=True,
                       timeout=120)
    out = json.loads(p.stdout) if p.returncode == 0 or p.stdout.strip() else None
    return p.returncode, out, p.stderr


def command_line(srv, replayed):
    left = N - replayed
    rc, out, err = cli(srv, "replay", "--all", "--topic", TOPIC, "--dry-run")
    assert rc == 0 and out["matched"] == left and out["replayed"] == 0, (rc, out, err)
    for bad in (["replay", "--all", "--rate", "fast"], ["replay", "5", "--rate", "3"],
                ["replay", "--all", "--wait"], ["replay", "--all", "--dry-run", "--rate", "1"],
                ["replay", "--all", "--after", "3"], ["list", "--rate", "2"], ["cancel"],
                ["job", "x"]):
        rc, out, err = cli(srv, *bad)
        assert rc == 2 and err.count("\n") == 1 and out is None, (bad, rc, err)
    rc, out, err = cli(srv, "replay", "--all", "--topic", TOPIC, "--rate", "0")
    assert rc == 1 and "HTTP 400" in err and "rate" in err and err.count("\n") == 1, (rc, err)
    rc, out, err = cli(srv, "job", "12345")
    assert rc == 1 and "HTTP 404: no replay job 12345" in err, (rc, err)
    rc, out, err = cli(srv, "cancel", "12345")
    assert rc == 1 and "HTTP 404" in err, (rc, err)

    # A job printed at once, then followed to its end.
    rc, j, err = cli(srv, "replay", "--all", "--topic", TOPIC, "--limit", "3", "--rate", "5")
    assert rc == 0 and j["matched"] == 3 and j["url"].endswith(str(j["id"])), (rc, j, err)
    rc, done, err = cli(srv, "job", str(j["id"]), "--wait")
    assert rc == 0 and done["state"] == "done" and done["replayed"] == 3, (rc, done, err)
    # Started and followed in one command: only the final job is printed.
    rc, done2, err = cli(srv, "replay", "--all", "--topic", TOPIC, "--limit", "2", "--rate", "4",
                         "--wait")
    assert rc == 0 and done2["state"] == "done" and done2["replayed"] == 2, (rc, done2, err)
    # Cancelled: following it ends with 1 and the job as it ended.
    rc, j3, err = cli(srv, "replay", "--all", "--topic", TOPIC, "--rate", "0.01")
    assert rc == 0 and j3["state"] == "running", (rc, j3, err)
    rc, c3, err = cli(srv, "cancel", str(j3["id"]))
    assert rc == 0 and c3["state"] == "cancelled", (rc, c3, err)
    rc, f3, err = cli(srv, "job", str(j3["id"]), "--wait")
    assert rc == 1 and f3 == c3, (rc, f3, err)
    rc, jobs, err = cli(srv, "jobs")
    assert rc == 0 and [x["id"] for x in jobs["jobs"]][:3] == [j3["id"], done2["id"], j["id"]], jobs
    return replayed + 3 + 2 + c3["replayed"]


def main():
    # 1. N dead letters (no route for the topic yet).
    data_dir = tempfile.mkdtemp(prefix="dr-it-")
    srv = Server(config=routed_config(data_dir, TOPIC, ["test-events"]), data_dir=data_dir).start()
    msgs = [{"data": {"n": i}, "attributes": {"seq": str(i)}} for i in range(N)]
    assert srv.publish(TOPIC, msgs)[0] == 200
    wait_until(lambda: len(dead_seqs(srv)) == N, 60, "every message dead-lettered")
    assert srv.stop() == 0

    # 2. The topic is routed now; one pool thread for everything.
    routed = routed_config(data_dir, TOPIC, ["test-events", TOPIC])
    env = {"UV_THREADPOOL_SIZE": "1"}
    srv = Server(config=routed, data_dir=data_dir, env=env).start()
    bad_input(srv)

    # A dry run with a rate replays nothing, so it answers at once as before.
    st, _, dry = call(srv, "POST", "/admin/dlq/replay",
                      {"filter": {"topic": TOPIC}, "rate": 1, "dry_run": True})
    assert st == 200 and dry["matched"] == N and dry["replayed"] == 0, dry

    # Two jobs over the same dead letters: a quick one over the first 10, a slow one over all.
    j1 = start_job(srv, {"filter": {"topic": TOPIC}, "rate": 2, "limit": 10})
    assert j1["matched"] == 10 and j1["rate"] == 2 and j1["filter"] == {"topic": TOPIC}, j1
    j2 = start_job(srv, {"filter": {"topic": TOPIC}, "rate": 0.1})
    assert N - 10 <= j2["matched"] <= N and j2["state"] == "running", j2  # job 1 started
    st, _, jobs = call(srv, "GET", "/admin/dlq/replay/jobs")
    assert st == 200 and [j["id"] for j in jobs["jobs"]] == [j2["id"], j1["id"]], jobs

    # The pool is free while both wait: store reads, readiness and publishing are answered.
    first = wait_until(lambda: replay_job(srv, j1["id"])["replayed"] or None, 60, "job 1 started")
    st, _, dl = call(srv, "GET", "/admin/dlq?limit=1")
    assert st == 200 and dl["count"] == 1, dl
    st, _, one = call(srv, "GET", f"/admin/dlq/{dl['dead_letters'][0]['id']}")
    assert st in (200, 404), one  # a job may have replayed it meanwhile
    assert call(srv, "GET", "/readyz")[0] == 200
    st, _, pub = call(srv, "POST", "/v1/projects/local/topics/test-events:publish",
                      {"messages": [{"data": "e30=", "attributes": {"seq": "live"}}]})
    assert st == 200, pub
    wait_until(lambda: any(r["seq"] == "live" for r in srv.processed()), 60,
               "a live message processed while the jobs run")

    # Progress advances, and the quick job finishes with its whole set accounted for.
    wait_until(lambda: replay_job(srv, j1["id"])["replayed"] > first, 60, "job 1 progressing")
    done1 = wait_until(lambda: (lambda j: j if j["state"] != "running" else None)(
        replay_job(srv, j1["id"])), 120, "job 1 done")
    assert done1["state"] == "done" and done1["finished"] and done1["errors"] == 0, done1
    assert done1["replayed"] + done1["skipped"] == 10 and done1["replayed"] >= 1, done1

    # Cancel the slow one: the answer carries the final counts; nothing more is replayed.
    st, _, c2 = call(srv, "DELETE", f"/admin/dlq/replay/jobs/{j2['id']}")
    assert st == 200 and c2["state"] == "cancelled" and c2["finished"], c2
    assert c2["replayed"] < N, c2
    st, _, again = call(srv, "POST", f"/admin/dlq/replay/jobs/{j2['id']}/cancel")
    assert st == 200 and again == c2, (again, c2)
    replayed = done1["replayed"] + c2["replayed"]
    check_exactly_once(srv, replayed)
    time.sleep(2)  # a cancelled job that went on would replay more in this time
    assert replay_job(srv, j2["id"]) == c2
    check_exactly_once(srv, replayed)

    # 3. A shutdown while a job runs: exits promptly with 0, and the job stays running in the
    # store for the next start, which resumes it with the same id and what it had replayed.
    assert srv.stop() == 0
    # The job's end is an audit line: written at log level error too. The log file is shared
    # with the servers before, whose jobs' lines it holds as well.
    log_from = os.path.getsize(os.path.join(data_dir, "server.log"))
    srv = Server(config=routed, data_dir=data_dir, env=dict(env, DR_LOG_LEVEL="error")).start()
    j3 = start_job(srv, {"filter": {"topic": TOPIC}, "rate": 0.5})
    assert j3["matched"] == N - replayed, (j3, replayed)
    wait_until(lambda: replay_job(srv, j3["id"])["replayed"] >= 2, 60, "job 3 progressing")
    srv.proc.send_signal(signal.SIGTERM)
    try:
        rc = srv.proc.wait(30)  # the job alone would need over a minute
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        raise AssertionError("shutdown waited for the replay job")
    assert rc == 0, f"exit {rc}: {srv.tail()}"
    with open(srv.log_path, encoding="utf-8", errors="replace") as f:
        f.seek(log_from)
        ends = [json.loads(line) for line in f.read().splitlines()
                if '"dead-letter replay job finished"' in line]
    assert ends == [], ends

    srv = Server(config=routed, data_dir=data_dir, env=env).start()
    st, _, jobs = call(srv, "GET", "/admin/dlq/replay/jobs")
    assert st == 200 and [j["id"] for j in jobs["jobs"]][0] == j3["id"], jobs
    resumed = jobs["jobs"][0]
    assert resumed["state"] == "running" and resumed["replayed"] >= 2, resumed
    assert (resumed["matched"], resumed["rate"], resumed["filter"]) == (
        j3["matched"], 0.5, {"topic": TOPIC}), resumed
    st, _, c3 = call(srv, "DELETE", f"/admin/dlq/replay/jobs/{j3['id']}")
    assert st == 200 and c3["state"] == "cancelled" and c3["replayed"] >= resumed["replayed"], c3
    replayed += c3["replayed"]
    check_exactly_once(srv, replayed)
    time.sleep(2)  # a cancelled job that went on would replay more in this time
    check_exactly_once(srv, replayed)

    # 4. The command line.
    replayed = command_line(srv, replayed)
    check_exactly_once(srv, replayed)
    assert srv.stop() == 0
    print(f"ok: paced replay jobs with one pool thread; {replayed} of {N} dead letters "
          f"replayed once each by finished, cancelled and resumed jobs and the CLI")


if __name__ == "__main__":
    main()
