"""Per-API-key rate limits against the real binary: a key with a rate and burst gets its burst,
then 429 RESOURCE_EXHAUSTED with Retry-After, on the publish API and the admin API; keys without
a limit, and other limited keys, go on unaffected; refusals are counted by key name and audited.
Rates are so low (one request per 1000 s) that no token comes back while the test runs: nothing
depends on timing."""
import hashlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from drlib import Server  # noqa: E402

KEYS = {  # name: (key, role, settings)
    "capped": ("cap-" + "c" * 40, "service", ", rate: 0.001, burst: 3"),
    "other": ("oth-" + "o" * 40, "service", ", rate: 0.001, burst: 2"),
    "free": ("fre-" + "f" * 40, "service", ""),
    "ops": ("ops-" + "a" * 40, "admin", ", rate: 0.001, burst: 2"),
    "probe": ("prb-" + "p" * 40, "service", ", rate: 0.001, burst: 1"),
}


def write_config(tmp):
    path = os.path.join(tmp, "config.yaml")
    with open(path, "w") as f:
        f.write("mode: local\nhttp: {host: 127.0.0.1, port: 8080}\napi_keys:\n")
        for name, (key, role, extra) in KEYS.items():
            sha = hashlib.sha256(key.encode()).hexdigest()
            f.write(f"  - {{name: {name}, role: {role}, sha256: {sha}{extra}}}\n")
        f.write("topics:\n  test-events: {type: test}\n"
                "routes:\n  - name: test\n    match: {topic: test-events}\n"
                "    processors: [test]\n")
    return path


def auth(name):
    return {"Authorization": f"Bearer {KEYS[name][0]}"}


def publish(srv, name, n=1):
    return srv.publish("test-events", [{"data": {"n": i}} for i in range(n)], headers=auth(name))


def refused(srv, method, path, name, body=None):
    """Makes the request and checks the 429: Pub/Sub's error body and a Retry-After."""
    req = urllib.request.Request(srv.url + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    for k, v in auth(name).items():
        req.add_header(k, v)
    try:
        urllib.request.urlopen(req, timeout=30)
    except urllib.error.HTTPError as e:
        assert e.code == 429, (e.code, path)
        err = json.loads(e.read())["error"]
        assert err["code"] == 429 and err["status"] == "RESOURCE_EXHAUSTED", err
        assert name in err["message"], err
        retry = e.headers.get("Retry-After")
        assert retry is not None and retry.isdigit() and int(retry) >= 1, retry
        return int(retry)
    raise AssertionError(f"{method} {path} with key {name} was not refused")


def main():
    tmp = tempfile.mkdtemp(prefix="dr-rate-")
    srv = Server(config=write_config(tmp)).start()
    pub = "/v1/projects/local/topics/test-events:publish"
    msg = {"messages": [{"data": "eyJ4IjoxfQ=="}]}
    try:
        # The burst, then 429 with a Retry-After as long as a token takes (1000 s at this rate).
        for _ in range(3):
            assert publish(srv, "capped", 5)[0] == 200  # a request, whatever it carries
        assert refused(srv, "POST", pub, "capped", msg) >= 900
        refused(srv, "POST", pub, "capped", msg)
        # Other keys are not affected: one without a limit, one with its own bucket.
        for _ in range(20):
            assert publish(srv, "free")[0] == 200
        for _ in range(2):
            assert publish(srv, "other")[0] == 200
        refused(srv, "POST", pub, "other", msg)
        # The admin API: the same, per key.
        assert srv.get("/admin/routes", headers=auth("ops"))[0] == 200
        assert srv.get("/admin/connections", headers=auth("ops"))[0] == 200
        refused(srv, "GET", "/admin/breakers", "ops")
        # A request the key may not make is refused for that, and takes nothing from its bucket.
        for _ in range(3):
            assert srv.get("/admin/routes", headers=auth("probe"))[0] == 403
        assert publish(srv, "probe")[0] == 200
        refused(srv, "POST", pub, "probe", msg)
        # Refusals by key name; the refused admin request is in the audit log with its 429.
        assert srv.metric("dr_api_key_rate_limited_total", 'key="capped"') == 2
        assert srv.metric("dr_api_key_rate_limited_total", 'key="other"') == 1
        assert srv.metric("dr_api_key_rate_limited_total", 'key="ops"') == 1
        assert srv.metric("dr_api_key_rate_limited_total", 'key="probe"') == 1
        assert srv.metric("dr_api_key_rate_limited_total", 'key="free"') == 0
        with open(srv.log_path) as f:
            audit = [json.loads(line) for line in f if '"component":"audit"' in line]
        breakers = [o for o in audit if o.get("path") == "/admin/breakers"]
        assert [(o["actor"], o["status"]) for o in breakers] == [("ops", 429)], audit
    finally:
        assert srv.stop() == 0
    log = open(srv.log_path).read()
    for key, _, _ in KEYS.values():
        assert key not in log
    print("ok: per-key rate limits refuse with 429 and leave other keys alone")


if __name__ == "__main__":
    main()
