import collections
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from drlib import Server, wait_until  # noqa: E402

TOTAL = int(os.environ.get("DR_E2E_MESSAGES", "10000"))
BATCH = 500
TOPICS = ["test-a", "test-b", "test-c"]


def message(i):
    attrs = {"seq": str(i), "priority": str(i % 10)}
    if i % 37 == 5:
        attrs["test_fail"] = "transient:2"
    elif i % 101 == 7:
        attrs["test_fail"] = "permanent"
    if i % 3 == 0:
        attrs["test_sleep_ms"] = "1"
    m = {"data": {"n": i, "pad": "x" * 900}, "attributes": attrs}
    if i % 5 != 0:
        m["orderingKey"] = f"k{i % 40}"
    return m


def publish_range(srv, lo, hi):
    for start in range(lo, hi, BATCH):
        batch = [message(i) for i in range(start, min(hi, start + BATCH))]
        topic = TOPICS[(start // BATCH) % 3]
        status, body = srv.publish(topic, batch)
        assert status == 200, (status, body)
        assert len(body["messageIds"]) == len(batch)
        assert len(set(body["messageIds"])) == len(batch)


def main():
    msgs = {i: message(i) for i in range(TOTAL)}
    permanent = {i for i, m in msgs.items() if m["attributes"].get("test_fail") == "permanent"}
    transient = {i for i, m in msgs.items() if m["attributes"].get("test_fail", "").startswith("transient")}
    ok = set(range(TOTAL)) - permanent

    env = {}
    if os.environ.get("DR_E2E_DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DR_E2E_DATABASE_URL"]
    srv = Server(env=env).start()
    publish_range(srv, 0, TOTAL // 2)
    # Crash with work in flight, then come back on the same data directory.
    srv.kill9()
    before = len({int(r["seq"]) for r in srv.processed()})
    print(f"killed after {before} of {TOTAL // 2} published messages were processed")
    srv = Server(data_dir=srv.data_dir, port=srv.port, env=env).start()
    publish_range(srv, TOTAL // 2, TOTAL)

    def done():
        seen = {int(r["seq"]) for r in srv.processed()}
        st, dl = srv.get("/admin/dlq?reason=test_permanent&limit=1000")
        return seen >= ok and st == 200 and dl["count"] >= len(permanent)

    wait_until(done, 300, "every message processed or dead-lettered")

    records = srv.processed()
    seen = {int(r["seq"]) for r in records}
    assert seen == ok, f"missing {sorted(ok - seen)[:10]} unexpected {sorted(seen - ok)[:10]}"

    # Transient failures succeeded on their third attempt. A message inside a processor at the
    # kill had an attempt counted for it (the running file): at most one per worker.
    workers = os.cpu_count() or 2
    attempts = {int(r["seq"]): r["attempt"] for r in records}
    bad = [i for i in transient if i in ok and attempts[i] not in (3, 4)]
    assert not bad, f"transient messages not retried as configured: {bad[:10]}"
    blamed = [i for i in transient if attempts[i] == 4]

    # Per-key order: the first time each message ran, it ran after the earlier ones of its key.
    first = {}
    for pos, r in enumerate(records):
        first.setdefault(int(r["seq"]), pos)
    by_key = collections.defaultdict(list)
    for i in sorted(ok):
        key = msgs[i].get("orderingKey")
        if key:
            by_key[key].append(i)
    for key, seqs in by_key.items():
        positions = [first[i] for i in seqs]
        assert positions == sorted(positions), f"order broken for {key}"

    # Dead letters hold their reason and the original message.
    st, dl = srv.get("/admin/dlq?reason=test_permanent&limit=1000")
    assert st == 200
    dls = dl["dead_letters"]
    dead = {int(d["message"]["attributes"]["seq"]) for d in dls}
    assert dead == permanent, (sorted(dead - permanent)[:5], sorted(permanent - dead)[:5])
    for d in dls:
        assert d["processor"] == "test" and d["error"] and d["attempts"] in (1, 2), d
        assert d["topic"] in TOPICS
    blamed += [d for d in dls if d["attempts"] == 2]
    assert len(blamed) <= workers, f"more messages blamed for the kill than workers: {blamed}"

    # Bulk replay by filter, as a dry run, counts without touching anything.
    st, res = srv.request("POST", "/admin/dlq/replay",
                          {"filter": {"reason": "test_permanent"}, "dry_run": True})
    assert st == 200 and res["matched"] == len(permanent) and res["replayed"] == 0, res

    # Replay each with the failure switch removed: they are processed.
    for d in dls:
        attrs = {k: v for k, v in d["message"]["attributes"].items() if k != "test_fail"}
        st, res = srv.request("POST", f"/admin/dlq/{d['id']}/replay", {"attributes": attrs})
        assert st == 200, res
    wait_until(lambda: {int(r["seq"]) for r in srv.processed()} >= set(range(TOTAL)), 120,
               "replayed messages processed")
    st, dl = srv.get("/admin/dlq")
    assert st == 200 and dl["count"] == 0, dl

    wait_until(lambda: srv.metric("dr_in_flight_messages") == 0, 60, "nothing in flight")
    # this process (after the restart) counted the dead letters of the second half
    after_restart = {i for i in permanent if i >= TOTAL // 2}
    counted = sum(srv.metric("dr_dead_letters_total", f'topic="{t}",reason="test_permanent"')
                  for t in TOPICS)
    assert counted >= len(after_restart) > 0, (counted, len(after_restart))
    rc = srv.stop()
    assert rc == 0, f"exit code {rc}"
    print(f"ok: {TOTAL} messages, {len(permanent)} dead-lettered and replayed, "
          f"{len(transient)} retried, {len(by_key)} ordering keys")


if __name__ == "__main__":
    main()
