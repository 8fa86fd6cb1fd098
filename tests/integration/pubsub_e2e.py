import hashlib
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from drlib import Server, wait_until  # noqa: E402
from emulator import Emulator  # noqa: E402

PROJECT = "dr-it"


def config(tmp, name, body):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        f.write(body)
    return path


def keyed(i, tag):
    """The same, with an ordering key and a priority: per-key order must hold end to end."""
    m = message(i, tag)
    m["attributes"]["priority"] = str(i % 10)
    m["orderingKey"] = f"{tag}k{i % 10}"
    return m


def message(i, tag):
    # The emulator numbers message ids from 1 again after a restart; real Pub/Sub ids never
    # repeat. An idempotency key keeps dedup (which would rightly drop a repeated id) exact.
    attrs = {"seq": f"{tag}{i}", "type": "test", "idempotency_key": f"{tag}{i}"}
    if i % 29 == 3:
        attrs["test_fail"] = "transient:2"
    elif i % 53 == 7:
        attrs["test_fail"] = "permanent"
    return {"data": {"n": i, "pad": "y" * 900}, "attributes": attrs}


def drain(emu, sub):
    """Everything left on a subscription (acked, so a second call sees only new arrivals)."""
    got = []
    while True:
        msgs = emu.pull(sub, 100, True)
        if not msgs:
            return got
        got += msgs
        emu.ack(sub, [m["ackId"] for m in msgs])


def setup_pull(emu):
    for t in ("test-a", "test-a-dlq", "test-n", "test-n-dlq"):
        emu.topic(t)
    emu.subscription("dr-test-a", "test-a", enableMessageOrdering=True)
    emu.subscription("watch-a-dlq", "test-a-dlq")
    # the router never dead-letters type "nack" itself (max_attempts 50): Pub/Sub's policy must
    emu.subscription("dr-test-n", "test-n", deadLetterPolicy={
        "deadLetterTopic": f"projects/{PROJECT}/topics/test-n-dlq", "maxDeliveryAttempts": 5})
    emu.subscription("watch-n-dlq", "test-n-dlq")


def pull_flow(tmp, transport):
    emu = Emulator(PROJECT).start()
    try:
        setup_pull(emu)
        cfg = config(tmp, f"pull-{transport}.yaml", f"""
mode: pubsub
topics: {{test-a: {{type: test}}, test-n: {{type: nack}}}}
retry:
  types:
    test: {{max_attempts: 6, initial: 10ms, multiplier: 2, max: 100ms, jitter: 0.1}}
    nack: {{max_attempts: 50, initial: 10ms, multiplier: 1, max: 10ms, jitter: 0}}
pubsub:
  project: {PROJECT}
  subscriptions: [{{name: dr-test-a, topic: test-a}}, {{name: dr-test-n, topic: test-n}}]
  transport: {transport}
  pulls_in_flight: 4
  ack_deadline_seconds: 20
  nack_after_ms: 0
routes:
  - {{name: t, match: {{topic: [test-a, test-n]}}, processors: [test]}}
""")
        srv = Server(config=cfg, env={"PUBSUB_EMULATOR_HOST": emu.host,
                                      "PUBSUB_PROJECT_ID": PROJECT,
                                      "DR_LOG_LEVEL": "info"}).start()
        with open(srv.log_path, "rb") as f:
            assert f'"transport":"{transport}"'.encode() in f.read(), "transport not in use"
        first = [message(i, "a") for i in range(1000)]
        for k in range(0, len(first), 250):
            emu.publish("test-a", first[k:k + 250])
        # a message Pub/Sub itself must dead-letter after 5 deliveries
        emu.publish("test-n", [{"data": "never", "attributes": {"seq": "n0",
                                                                "test_fail": "transient:1000"}}])

        # Restart the emulator mid-run: its state is in memory, so topics and subscriptions are
        # created again; the router must reconnect and carry on with what is published next.
        wait_until(lambda: len(srv.processed()) > 200, 120, "processing under way")
        emu.stop()
        emu2 = Emulator(PROJECT, port=emu.port).start()
        emu = emu2
        setup_pull(emu)
        second = [keyed(i, "b") for i in range(1000)]
        for k in range(0, len(second), 250):
            emu.publish("test-a", second[k:k + 250])

        want_ok = {m["attributes"]["seq"] for m in second
                   if m["attributes"].get("test_fail") != "permanent"}
        want_dead = {m["attributes"]["seq"] for m in second
                     if m["attributes"].get("test_fail") == "permanent"}
        wait_until(lambda: {r["seq"] for r in srv.processed()} >= want_ok, 180,
                   "second half processed after the emulator restart")

        def dead_seqs():
            st, dl = srv.get("/admin/dlq?reason=test_permanent&limit=1000")
            return {d["message"]["attributes"]["seq"] for d in dl["dead_letters"]}
        wait_until(lambda: dead_seqs() >= want_dead, 120, "permanent failures dead-lettered")

        # Dead letters are also published to <topic>-dlq.
        dlq_seen = set()

        def dlq_has_all():
            for m in drain(emu, "watch-a-dlq"):
                attrs = m["message"].get("attributes", {})
                assert attrs.get("dr_reason") == "test_permanent", attrs
                dlq_seen.add(attrs["seq"])
            return dlq_seen >= want_dead
        wait_until(dlq_has_all, 60, "dead letters on test-a-dlq")

        # Per ordering key, each message first ran after the earlier ones of its key.
        first = {}
        for pos, r in enumerate(srv.processed()):
            first.setdefault(r["seq"], pos)
        for k in range(10):
            seqs = [m["attributes"]["seq"] for m in second
                    if m["orderingKey"] == f"bk{k}" and m["attributes"]["seq"] in want_ok]
            positions = [first[q] for q in seqs]
            assert positions == sorted(positions), f"order broken for key bk{k}"

        # Transient failures succeeded on the third attempt.
        rec = {r["seq"]: r for r in srv.processed()}
        for m in second:
            a = m["attributes"]
            if a.get("test_fail") == "transient:2":
                assert rec[a["seq"]]["attempt"] == 3, rec[a["seq"]]

        # The subscription is empty at the end: nothing unacked comes back.
        wait_until(lambda: srv.metric("dr_in_flight_messages") == 0, 60, "nothing in flight")
        assert srv.stop() == 0
        leftover = emu.pull("dr-test-a", 100, True)
        assert leftover == [], f"{len(leftover)} messages left on the subscription"
        print(f"pull over {transport}: ok (emulator restart survived, dead letters stored and "
              "published)")

        # Pub/Sub's own dead-letter policy on dr-test-n (state before the restart is gone, so
        # check it on a fresh run against the new emulator).
        srv2 = Server(config=cfg, data_dir=srv.data_dir, port=srv.port,
                      env={"PUBSUB_EMULATOR_HOST": emu.host, "PUBSUB_PROJECT_ID": PROJECT}).start()
        emu.publish("test-n", [{"data": "never", "attributes": {"seq": "n1", "idempotency_key": "n1",
                                                                "test_fail": "transient:1000"}}])
        got = []

        def policy_dead():
            got.extend(drain(emu, "watch-n-dlq"))
            return any(m["message"].get("attributes", {}).get("seq") == "n1" for m in got)
        wait_until(policy_dead, 120, "Pub/Sub's dead-letter policy to move the message")
        m = [m for m in got if m["message"]["attributes"].get("seq") == "n1"][0]
        assert m["message"]["attributes"].get("CloudPubSubDeadLetterSourceDeliveryCount") == "5", m
        assert srv2.stop() == 0
        print(f"pull over {transport}: ok (subscription dead-letter policy honoured)")
    finally:
        emu.stop()


def push_flow(tmp):
    emu = Emulator(PROJECT).start()
    try:
        emu.topic("test-b")
        cfg = config(tmp, "push.yaml", f"""
mode: pubsub
topics: {{test-b: {{type: test}}}}
retry:
  types:
    test: {{max_attempts: 6, initial: 10ms, multiplier: 2, max: 100ms, jitter: 0.1}}
pubsub:
  project: {PROJECT}
  subscriptions: [{{name: dr-push-b, topic: test-b}}]
  push: {{enabled: true}}
routes:
  - {{name: t, match: {{topic: test-b}}, processors: [test]}}
""")
        srv = Server(config=cfg, env={"PUBSUB_EMULATOR_HOST": emu.host,
                                      "PUBSUB_PROJECT_ID": PROJECT}).start()
        emu.subscription("dr-push-b", "test-b",
                         pushConfig={"pushEndpoint": f"{srv.url}/pubsub/push"})
        msgs = [message(i, "p") for i in range(500)]
        for k in range(0, len(msgs), 250):
            emu.publish("test-b", msgs[k:k + 250])
        want_ok = {m["attributes"]["seq"] for m in msgs
                   if m["attributes"].get("test_fail") != "permanent"}
        want_dead = {m["attributes"]["seq"] for m in msgs
                     if m["attributes"].get("test_fail") == "permanent"}
        wait_until(lambda: {r["seq"] for r in srv.processed()} >= want_ok, 180,
                   "pushed messages processed")

        def dead():
            st, dl = srv.get("/admin/dlq?reason=test_permanent&limit=1000")
            return {d["message"]["attributes"]["seq"] for d in dl["dead_letters"]} >= want_dead
        wait_until(dead, 60, "pushed permanent failures dead-lettered")
        # every push was answered 2xx (durable), so nothing is redelivered: each ran once
        counts = {}
        for r in srv.processed():
            counts[r["seq"]] = counts.get(r["seq"], 0) + 1
        assert max(counts.values()) == 1, "a pushed message ran twice"
        # malformed push bodies are refused with a JSON error
        st, body = srv.request("POST", "/pubsub/push", b"{oops")
        assert st == 400 and body["error"]["code"] == 400
        st, body = srv.request("POST", "/pubsub/push", {"message": {"data": "aGk="},
                                                        "subscription": "projects/x/subscriptions/unknown"})
        assert st == 404
        assert srv.stop() == 0
        print("push: ok")
    finally:
        emu.stop()


def emit_keys(tmp):
    """What a message emits goes out with an idempotency_key derived from the message's own key
    (its idempotency_key, else its id) and the emit's place: a redelivered message processed
    again emits the same keys, and where those are consumed the repeats are duplicates. An emit
    that cannot be published (its topic missing) is a failed attempt: retried with the retry
    policy's backoff, then dead-lettered (emit_failed), not redelivered at once for ever."""
    emu = Emulator(PROJECT).start()
    try:
        for t in ("test-e", "test-e-out"):
            emu.topic(t)
        emu.subscription("dr-test-e", "test-e")
        emu.subscription("watch-e-out", "test-e-out")
        cfg = config(tmp, "emit.yaml", f"""
mode: pubsub
topics: {{test-e: {{type: test}}}}
retry:
  types:
    test: {{max_attempts: 3, initial: 10ms, multiplier: 1, max: 10ms, jitter: 0}}
pubsub:
  project: {PROJECT}
  subscriptions: [{{name: dr-test-e, topic: test-e}}]
  transport: rest
routes:
  - {{name: t, match: {{topic: [test-e]}}, processors: [test]}}
""")
        srv = Server(config=cfg, env={"PUBSUB_EMULATOR_HOST": emu.host,
                                      "PUBSUB_PROJECT_ID": PROJECT}).start()
        ids = emu.publish("test-e", [
            {"data": {"n": 1}, "attributes": {"seq": "e1", "idempotency_key": "k-e1",
                                               "test_emit": "test-e-out"}},
            {"data": {"n": 2}, "attributes": {"seq": "e2", "test_emit": "test-e-out"}},
            {"data": {"n": 3}, "attributes": {"seq": "e3", "test_emit": "test-e-out",
                                               "idempotency_key": ""}},
        ])
        got = []
        wait_until(lambda: len(got.__iadd__(drain(emu, "watch-e-out"))) >= 3, 60,
                   "three emits on test-e-out")

        def key(parent):
            return "em-" + hashlib.sha256(f"{parent}/0".encode()).hexdigest()[:24]
        # the test processor's emit names its parent (test_parent)
        by = {m["message"]["attributes"]["test_parent"]: m["message"]["attributes"] for m in got}
        assert len(by) == 3, got
        assert by[ids[0]]["idempotency_key"] == key("k-e1"), by[ids[0]]
        assert by[ids[1]]["idempotency_key"] == key(ids[1]), (ids, by[ids[1]])
        # an empty key is no key: the message's id is
        assert by[ids[2]]["idempotency_key"] == key(ids[2]), (ids, by[ids[2]])

        # the subscription has no dead-letter policy: the router counts the attempts itself
        emu.publish("test-e", [{"data": {"n": 4}, "attributes": {"seq": "e4",
                                                                 "test_emit": "no-such-topic"}}])

        def dead():
            st, dl = srv.get("/admin/dlq?reason=emit_failed")
            return dl["dead_letters"] if st == 200 and dl["dead_letters"] else None
        dl = wait_until(dead, 60, "the message dead-lettered (emit_failed)")
        assert len(dl) == 1 and dl[0]["attempts"] == 3, dl
        assert "no-such-topic" in dl[0]["error"] and "404" in dl[0]["error"], dl
        wait_until(lambda: srv.metric("dr_in_flight_messages") == 0, 60, "nothing in flight")
        assert srv.stop() == 0
        runs = [r["attempt"] for r in srv.processed() if r["seq"] == "e4"]
        assert runs == [1, 2, 3], runs
        assert emu.pull("dr-test-e", 100, True) == [], "the dead-lettered message was not acked"
        print("emits: ok (idempotency keys derived from their message; a failed emit retried, "
              "then dead-lettered)")
    finally:
        emu.stop()


def auto_create(tmp):
    """With auto_create the router creates its topic, dead-letter topic and subscription; the
    subscription orders by key (enableMessageOrdering: the emulator, as Pub/Sub, takes it at
    creation only and refuses to change it later). A retry of a message with an ordering key stays
    in the router, even with a dead-letter policy and nack_after_ms 0 (where other retries go back
    to Pub/Sub): the next message of its key runs after it."""
    emu = Emulator(PROJECT).start()
    try:
        cfg = config(tmp, "auto.yaml", f"""
mode: pubsub
topics: {{test-o: {{type: test}}}}
pubsub:
  project: {PROJECT}
  subscriptions: [{{name: dr-test-o, topic: test-o}}]
  transport: rest
  auto_create: true
  ack_deadline_seconds: 30
  max_delivery_attempts: 5
  nack_after_ms: 0
retry:
  types:
    test: {{max_attempts: 5, initial: 10ms, multiplier: 1, max: 10ms, jitter: 0}}
routes:
  - {{name: t, match: {{topic: [test-o]}}, processors: [test]}}
""")
        srv = Server(config=cfg, env={"PUBSUB_EMULATOR_HOST": emu.host,
                                      "PUBSUB_PROJECT_ID": PROJECT}).start()

        def created():
            st, body = emu.call("GET", "subscriptions/dr-test-o")
            return body if st == 200 else None
        sub = wait_until(created, 60, "the subscription to be created")
        assert sub.get("enableMessageOrdering") is True, sub
        assert sub["ackDeadlineSeconds"] == 30, sub
        assert sub["deadLetterPolicy"] == {
            "deadLetterTopic": f"projects/{PROJECT}/topics/test-o-dlq",
            "maxDeliveryAttempts": 5}, sub
        emu.publish("test-o", [
            {"data": {"n": 1}, "attributes": {"seq": "o1", "test_fail": "transient:1"},
             "orderingKey": "k1"},
            {"data": {"n": 2}, "attributes": {"seq": "o2"}, "orderingKey": "k1"}])
        wait_until(lambda: len(srv.processed()) >= 2, 60, "both messages processed")
        got = [(r["seq"], r["attempt"]) for r in srv.processed()]
        assert got == [("o1", 2), ("o2", 1)], got
        wait_until(lambda: srv.metric("dr_in_flight_messages") == 0, 60, "nothing in flight")
        assert srv.stop() == 0
        print("auto_create: ok (subscription ordered by key, with its dead-letter policy; a retry "
              "keeps its key's order)")
    finally:
        emu.stop()


def main():
    tmp = tempfile.mkdtemp(prefix="dr-pubsub-")
    auto_create(tmp)
    emit_keys(tmp)
    for transport in ("grpc", "rest"):
        pull_flow(tmp, transport)
    push_flow(tmp)


if __name__ == "__main__":
    main()
