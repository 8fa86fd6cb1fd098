"""The vespa processor end to end: the real binary in local mode feeding a fake Vespa.

Index operations published to `vespa-index` end up as exactly the expected documents; an outage
(503) opens the `vespa` breaker, pauses the processor and parks the operations without
dead-lettering them until Vespa answers again; 429s are absorbed by in-process retries; a 400 is a
dead letter with reason vespa_rejected; a 404 on remove is success; without an endpoint the
operations are acknowledged as skipped. Nothing here waits for a fixed time: every wait polls.
"""
import json
import os
import subprocess
import sys
import tempfile
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from drlib import SRC, Server, wait_until  # noqa: E402

FAKE = os.path.join(SRC, "tests", "fakes", "vespa_fake.py")
TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


class Fake:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, FAKE, "--port", "0"],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().split()
        assert line and line[0] == "listening", f"fake did not start: {line}"
        self.url = f"http://127.0.0.1:{line[1]}"

    def _call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def control(self, **kw):
        self._call("POST", "/_fake/control", kw)

    def documents(self):
        return {(d["doctype"], d["docid"]): d["fields"]
                for d in self._call("GET", "/_fake/documents")["documents"]}

    def received(self):
        return self._call("GET", "/_fake/received")["requests"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


CONFIG = """
mode: local
http: {{host: 127.0.0.1, port: 8080, request_timeout: 10s}}
data_dir: ./data
workers: 4
log_level: warn
topics:
  vespa-index: {{type: index_operation}}
retry:
  default: {{max_attempts: 5, initial: 50ms, multiplier: 2, max: 500ms, jitter: 0.2}}
breakers:
  default: {{failure_threshold: 5, open_for: 10s}}
  vespa: {{failure_threshold: 3, open_for: 1s}}
processors:
  vespa:
    endpoint: "{endpoint}"
    timeout: 5s
    retries: 2
    backoff: 10ms
    backoff_max: 100ms
    max_in_flight: 16
routes:
  - name: vespa
    match: {{topic: [vespa-index]}}
    processors: [vespa]
  - name: default
    default: true
    processors: [log]
"""


def op(operation, doctype, docid, fields=None):
    data = {"operation": operation, "doctype": doctype, "docid": docid,
            "user_id": docid.split(":")[0]}
    if fields is not None:
        data["fields"] = fields
    return {"data": data, "orderingKey": docid}


def apply(expected, m):
    d = m["data"]
    key = (d["doctype"], d["docid"])
    if d["operation"] == "put":
        expected[key] = dict(d["fields"])
    elif d["operation"] == "update":
        expected.setdefault(key, {}).update(d["fields"])
    else:
        expected.pop(key, None)


def publish(srv, msgs):
    for start in range(0, len(msgs), 200):
        batch = msgs[start:start + 200]
        st, body = srv.publish("vespa-index", batch)
        assert st == 200 and len(body["messageIds"]) == len(batch), (st, body)


def in_flight(srv):
    return srv.metric("dr_in_flight_messages")


def dlq(srv, reason=None):
    st, body = srv.get("/admin/dlq?limit=1000" + (f"&reason={reason}" if reason else ""))
    assert st == 200, body
    return body["dead_letters"]


def breaker(srv):
    st, body = srv.get("/admin/breakers")
    assert st == 200, body
    for b in body:
        if b["name"] == "vespa":
            return b
    return None


def feed_and_overwrite(srv, fake, expected):
    """Puts, then updates, removes and re-puts in order per document id."""
    first = [op("put", "email", f"u{i % 3}:m{i}", {"subject": f"s{i}", "n": i})
             for i in range(30)]
    odd = "u1:msg/with?odd#chars% \u00fc"
    first.append(op("put", "email", odd, {"subject": "odd id"}))
    first.append(op("put", "contact", "u2:c1", {"name": "Ann", "emails": ["a@example.org"]}))
    traced = op("put", "calendar_event", "u0:e1", {"title": "standup"})
    traced["attributes"] = {"traceparent": TRACE}
    first.append(traced)
    second = []
    for i in range(10):
        second.append(op("update", "email", f"u{i % 3}:m{i}", {"subject": "updated"}))
    for i in range(10, 15):
        second.append(op("remove", "email", f"u{i % 3}:m{i}"))
    for i in range(15, 18):  # one key, four operations in a row: order decides the result
        key = f"u{i % 3}:m{i}"
        second += [op("put", "email", key, {"subject": "v2"}),
                   op("update", "email", key, {"flag": True}),
                   op("remove", "email", key),
                   op("put", "email", key, {"subject": "v3"})]
    second.append(op("update", "contact", "u9:new", {"name": "created by update"}))
    second.append(op("put", "email", odd, {"subject": "odd id, re-indexed"}))
    for m in first:
        apply(expected, m)
    publish(srv, first)
    wait_until(lambda: in_flight(srv) == 0 and fake.documents() == expected, 120,
               "the first operations in the fake")
    for m in second:
        apply(expected, m)
    publish(srv, second)
    wait_until(lambda: in_flight(srv) == 0 and fake.documents() == expected, 120,
               "every operation applied")
    docs = fake.documents()
    assert docs == expected, (sorted(set(docs) ^ set(expected))[:5])
    assert docs[("email", odd)] == {"subject": "odd id, re-indexed"}
    assert docs[("email", "u0:m15")] == {"subject": "v3"}
    assert docs[("contact", "u9:new")] == {"name": "created by update"}
    assert dlq(srv) == []

    reqs = fake.received()
    assert len(reqs) == len(first) + len(second), len(reqs)
    for r in reqs:
        assert r["status"] == 200, r
        assert r["path"].startswith("/document/v1/datarouter/"), r["path"]
        assert r["query"].get("timeout") == "4500ms", r["query"]
        if r["method"] in ("POST", "PUT"):
            assert r["content_type"].startswith("application/json"), r
            assert set(r["body"]) == {"fields"}, r["body"]
        if r["method"] == "PUT":
            assert r["query"].get("create") == "true", r
            assert all(set(v) == {"assign"} for v in r["body"]["fields"].values()), r["body"]
        if r["method"] == "DELETE":
            assert r["body"] is None, r
    methods = sorted({r["method"] for r in reqs})
    assert methods == ["DELETE", "POST", "PUT"], methods
    odd_paths = {r["path"] for r in reqs if r["docid"] == odd}
    assert odd_paths == {"/document/v1/datarouter/email/docid/"
                         "u1%3Amsg%2Fwith%3Fodd%23chars%25%20%C3%BC"}, odd_paths
    assert [r["traceparent"] for r in reqs if r["docid"] == "u0:e1"] == [TRACE]
    print(f"ok: {len(first) + len(second)} operations, {len(docs)} documents as expected")


def overload_429(srv, fake, expected):
    before = breaker(srv)
    fake.control(fail_next=2, fail_next_status=429, retry_after="0")
    m = op("put", "email", "u5:r1", {"subject": "after 429"})
    apply(expected, m)
    publish(srv, [m])
    wait_until(lambda: in_flight(srv) == 0 and ("email", "u5:r1") in fake.documents(), 60,
               "the operation through two 429s")
    statuses = [r["status"] for r in fake.received() if r["docid"] == "u5:r1"]
    assert statuses == [429, 429, 200], statuses
    after = breaker(srv)
    assert after is None or after["state"] == "closed", after
    assert (after or {}).get("times_opened", 0) == (before or {}).get("times_opened", 0)
    assert srv.metric("dr_vespa_requests_total", 'status="429"') == 2
    assert srv.metric("dr_vespa_retries_total") >= 2
    assert dlq(srv) == []
    print("ok: 429s retried in process, breaker untouched")


def rejected_400(srv, fake):
    publish(srv, [op("put", "nope", "u1:x1", {"subject": "unknown type"}),
                  {"data": {"operation": "put", "doctype": "email", "fields": {}}}])
    wait_until(lambda: len(dlq(srv)) == 2 and in_flight(srv) == 0, 60, "two dead letters")
    [d] = dlq(srv, "vespa_rejected")
    assert d["processor"] == "vespa" and d["attempts"] == 1, d
    assert "Document type nope does not exist" in d["error"], d["error"]
    assert "400" in d["error"], d["error"]
    [bad] = dlq(srv, "invalid_operation")
    assert bad["processor"] == "vespa" and "docid" in bad["error"], bad
    assert [r["status"] for r in fake.received() if r["doctype"] == "nope"] == [400]
    print("ok: 400 → dead letter vespa_rejected; malformed → invalid_operation")


def remove_404(srv, fake):
    fake.control(missing_remove_status=404)
    dead_before = len(dlq(srv))
    publish(srv, [op("remove", "email", "u0:absent")])
    wait_until(lambda: in_flight(srv) == 0
               and any(r["docid"] == "u0:absent" for r in fake.received()), 60, "the remove")
    assert [r["status"] for r in fake.received() if r["docid"] == "u0:absent"] == [404]
    assert len(dlq(srv)) == dead_before
    fake.control(missing_remove_status=200)
    print("ok: 404 on remove is success")


def outage_503(srv, fake, expected):
    dead_before = len(dlq(srv))
    opened_before = (breaker(srv) or {}).get("times_opened", 0)
    fake.control(fail_status=503)
    msgs = [op("put", "email", f"u7:o{i}", {"subject": f"during outage {i}"}) for i in range(40)]
    publish(srv, msgs)

    def open_and_paused():
        b = breaker(srv)
        return b and b["state"] == "open" and "vespa" in b["paused_processors"]

    wait_until(open_and_paused, 60, "the vespa breaker to open and pause the processor")
    # Let at least one half-open probe fail and re-open it: the operations still wait.
    wait_until(lambda: breaker(srv)["times_opened"] >= opened_before + 2, 60, "a failed probe")
    assert len(dlq(srv)) == dead_before, "operations were dead-lettered during the outage"
    assert in_flight(srv) == len(msgs), in_flight(srv)
    assert not any(k[1].startswith("u7:") for k in fake.documents())
    assert srv.metric("dr_breaker_state", 'downstream="vespa"') >= 1
    refused = sum(1 for r in fake.received() if r["status"] == 503)
    assert refused >= 3, refused
    print(f"ok: outage → breaker open, processor paused, {len(msgs)} operations waiting, "
          f"{refused} requests refused, none dead-lettered")

    fake.control(fail_status=None)
    for m in msgs:
        apply(expected, m)
    wait_until(lambda: in_flight(srv) == 0 and fake.documents() == expected, 120,
               "every parked operation delivered after recovery")
    wait_until(lambda: breaker(srv)["state"] == "closed", 60, "the breaker to close")
    assert breaker(srv)["paused_processors"] == []
    assert len(dlq(srv)) == dead_before
    print("ok: Vespa back → breaker closed, every parked operation delivered")


def skipped_without_endpoint():
    srv = Server().start()  # the embedded config: no endpoint
    try:
        publish(srv, [op("put", "email", "u1:s1", {"subject": "x"}),
                      op("remove", "email", "u1:s2")])
        wait_until(lambda: srv.metric("dr_vespa_operations_total",
                                      'operation="put",outcome="skipped"') == 1
                   and srv.metric("dr_vespa_operations_total",
                                  'operation="remove",outcome="skipped"') == 1
                   and in_flight(srv) == 0, 60, "operations acknowledged as skipped")
        assert dlq(srv) == []
    finally:
        assert srv.stop() == 0
    print("ok: no endpoint → operations acknowledged as skipped")


def main():
    os.environ.pop("DR_VESPA_URL", None)
    fake = Fake()
    srv = None
    try:
        cfg = os.path.join(tempfile.mkdtemp(prefix="dr-vespa-"), "vespa.yaml")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(endpoint=fake.url))
        srv = Server(config=cfg).start()
        expected = {}
        feed_and_overwrite(srv, fake, expected)
        overload_429(srv, fake, expected)
        rejected_400(srv, fake)
        remove_404(srv, fake)
        outage_503(srv, fake, expected)
        rc = srv.stop()
        assert rc == 0, f"exit code {rc}"
        srv = None
        skipped_without_endpoint()
    except BaseException:
        if srv:
            print(srv.tail(), file=sys.stderr)
        raise
    finally:
        if srv:
            srv.stop()
        fake.stop()


if __name__ == "__main__":
    main()
