import base64
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from drlib import BIN, Server, wait_until  # noqa: E402

SERVICE_KEY = "svc-" + "k" * 40
ADMIN_KEY = "adm-" + "a" * 40
JWT_SECRET = "hostile-input-test-secret-0123456789abcdef"


def sha(k):
    return hashlib.sha256(k.encode()).hexdigest()


def write_config(tmp, extra=""):
    path = os.path.join(tmp, "config.yaml")
    with open(path, "w") as f:
        f.write(f"""
mode: local
http: {{host: 127.0.0.1, port: 8080, request_timeout: 4s}}
api_keys:
  - {{name: svc, role: service, sha256: {sha(SERVICE_KEY)}}}
  - {{name: ops, role: admin, sha256: {sha(ADMIN_KEY)}}}
topics:
  test-events: {{type: test}}
routes:
  - name: test
    match: {{topic: test-events}}
    processors: [test]
{extra}""")
    return path


def raw_request(port, data, read=True, timeout=5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    if read:
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
    s.close()
    return out


def error_body(status_body, code):
    status, body = status_body
    assert status == code, (status, body)
    assert isinstance(body, dict) and body["error"]["code"] == code and body["error"]["message"], body
    return body["error"]["message"]


def main():
    tmp = tempfile.mkdtemp(prefix="dr-hostile-")
    srv = Server(config=write_config(tmp), env={"DR_JWT_SECRET": JWT_SECRET}).start()
    svc = {"Authorization": f"Bearer {SERVICE_KEY}"}
    adm = {"X-API-Key": ADMIN_KEY}
    pub = "/v1/projects/p/topics/test-events:publish"

    # API keys: missing, wrong, wrong role, right.
    error_body(srv.request("POST", pub, {"messages": [{"data": "aGk="}]}), 401)
    error_body(srv.request("POST", pub, {"messages": [{"data": "aGk="}]},
                           headers={"Authorization": "Bearer nope"}), 401)
    error_body(srv.get("/admin/dlq", headers=svc), 403)
    assert srv.get("/admin/dlq", headers=adm)[0] == 200
    assert srv.request("POST", pub, {"messages": [{"data": "aGk="}]}, headers=adm)[0] == 200
    # A key sent as a chunked body's trailer is not a header: still 401.
    body = b'{"messages":[{"data":"aGk="}]}'
    out = raw_request(srv.port, (f"POST {pub} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
                                 "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n"
                                 f"\r\n{len(body):x}\r\n").encode() + body +
                      f"\r\n0\r\nX-API-Key: {ADMIN_KEY}\r\n\r\n".encode())
    assert out.startswith(b"HTTP/1.1 401"), out[:200]

    # Malformed bodies.
    assert "JSON" in error_body(srv.request("POST", pub, b"{nope", headers=svc), 400)
    assert "JSON" in error_body(srv.request("POST", pub, b'{"messages":[{"data":"aGk="}]}{"x":1}',
                                            headers=svc), 400)
    assert "Base64" in error_body(srv.request("POST", pub, {"messages": [{"data": "!!"}]},
                                              headers=svc), 400)
    # A NUL in a string would cut it short (data, attribute values, idempotency keys): refused.
    for msg in ({"data": "aGk=\u0000!!"}, {"attributes": {"k": "v\u0000w"}},
                {"data": "aGk=", "attributes": {"idempotency_key": "a\u0000b"}}):
        assert "U+0000" in error_body(srv.request("POST", pub, {"messages": [msg]}, headers=svc),
                                      400)
    # Bytes that are not UTF-8, and an attributes object naming a key twice: refused, and the
    # error says which.
    assert "UTF-8" in error_body(srv.request(
        "POST", pub, b'{"messages":[{"data":"aGk=","attributes":{"k":"\xff\xfe"}}]}',
        headers=svc), 400)
    assert "twice" in error_body(srv.request(
        "POST", pub, b'{"messages":[{"attributes":{"k":"a","k":"b"}}]}', headers=svc), 400)
    error_body(srv.request("POST", pub, {"messages": []}, headers=svc), 400)
    error_body(srv.request("POST", pub, {"nothing": 1}, headers=svc), 400)
    big = {"messages": [{"data": "aGk="}] * 1001}
    assert "1000" in error_body(srv.request("POST", pub, big, headers=svc), 400)
    # Unknown and invalid topics.
    error_body(srv.request("POST", "/v1/projects/p/topics/no-such-topic:publish",
                           {"messages": [{"data": "aGk="}]}, headers=svc), 404)
    error_body(srv.request("POST", "/v1/projects/p/topics/x:publish",
                           {"messages": [{"data": "aGk="}]}, headers=svc), 400)
    error_body(srv.get("/no/such/path"), 404)
    # A dead-letter filter too long for its field is refused, not dropped (which would list
    # every dead letter).
    for q in ("topic=" + "t" * 300, "error=" + "e" * 300, "limit=" + "0" * 70 + "1",
              "since=" + "9" * 80):
        assert "too long" in error_body(srv.get("/admin/dlq?" + q, headers=adm), 400), q
    assert srv.get("/admin/dlq?topic=" + "t" * 255, headers=adm)[0] == 200
    # ... and so is one a %00 would cut short (the rest of it hidden)
    for q in ("topic=test-events%00x", "error=x%00"):
        assert "%00" in error_body(srv.get("/admin/dlq?" + q, headers=adm), 400), q
    # Paths that only look like a dead letter's: no id is read from them.
    for path in ("/admin/dlqX5", "/admin/dlq/5%00/replay", "/admin/dlq/5%00x"):
        assert "no such resource" in error_body(srv.request("DELETE", path, headers=adm),
                                                404), path
    assert "no dead letter 5" in error_body(srv.request("DELETE", "/admin/dlq/5", headers=adm),
                                            404)
    error_body(srv.request("DELETE", "/healthz"), 405)

    # Oversize: a body over the 10 MB publish limit, and one over the HTTP body cap (refused
    # from its Content-Length before it is read).
    payload = base64.b64encode(b"x" * 7_600_000).decode()
    st = srv.request("POST", pub, {"messages": [{"data": payload}]}, headers=svc)
    assert st[0] == 400, st[0]
    head = (f"POST {pub} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {SERVICE_KEY}\r\nContent-Length: 50000000\r\n\r\n").encode()
    out = raw_request(srv.port, head)
    assert out.startswith(b"HTTP/1.1 413"), out[:100]
    # Garbage instead of HTTP, and oversized headers.
    assert raw_request(srv.port, b"\x16\x03\x01\x02\x00garbage\r\n\r\n").startswith(b"HTTP/1.1 400")
    huge = b"GET /healthz HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    out = raw_request(srv.port, huge)
    assert out.startswith(b"HTTP/1.1 431"), out[:200]

    # Slowloris: connections that dribble a request are cut after the request timeout, and the
    # service answers others meanwhile.
    slow = []
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        slow.append(s)
    assert srv.get("/healthz")[0] == 200
    for s in slow:
        s.settimeout(10)
        data = s.recv(4096)
        assert data.startswith(b"HTTP/1.1 408") or data == b"", data[:80]
        s.close()
    assert srv.get("/healthz")[0] == 200

    # Pipelined requests on one connection are answered in order.
    out = raw_request(srv.port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
                                b"GET /version HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert out.count(b"HTTP/1.1 200") == 2 and out.index(b"status") < out.index(b"version"), out

    # Thousands of small requests in one write are all answered, in order (parsed one after
    # the other, not one call deeper and one copy of the rest per request).
    n = 3000
    out = raw_request(srv.port, b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n" * (n - 1) +
                      b"GET /version HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                      timeout=30)
    assert out.count(b"HTTP/1.1 200") == n, out.count(b"HTTP/1.1 200")
    assert out.rindex(b"status") < out.index(b"version"), "answers out of order"

    # A WebSocket upgrade with a frame right behind it in the same write: the frame is not lost
    # in the hand-over from the HTTP server (a ping comes back as a pong with its payload).
    def b64url(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"sub": "u-hostile", "exp": int(time.time()) + 600}).encode())
    sig = b64url(hmac.new(JWT_SECRET.encode(), f"{head}.{claims}".encode(),
                          hashlib.sha256).digest())
    upgrade = (f"GET /ws?access_token={head}.{claims}.{sig} HTTP/1.1\r\nHost: a\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    mask = os.urandom(4)
    ping = bytes([0x89, 0x80 | 5]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(b"hello"))
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    s.sendall(upgrade + ping)
    got = b""
    while b"\x8a\x05hello" not in got:
        chunk = s.recv(65536)
        assert chunk, got
        got += chunk
    assert got.startswith(b"HTTP/1.1 101"), got[:100]
    s.close()

    # Whole numbers in a query are digits and nothing else, in range: anything else is a 400
    # with the JSON error, on every API that takes one.
    user = {"Authorization": f"Bearer {head}.{claims}.{sig}"}
    for path, hdrs, other in (("/admin/dlq", adm, "after=-1"),
                              ("/admin/connections", adm, "after=1x"),
                              ("/api/v1/notifications", user, "before=0")):
        assert srv.get(path + "?limit=5", headers=hdrs)[0] == 200, path
        for q in ("limit=", "limit=12abc", "limit=-1", "limit=%2B5", "limit=+5", "limit=%205",
                  "limit=5%00", "limit=99999999999999999999", other):
            msg = error_body(srv.get(f"{path}?{q}", headers=hdrs), 400)
            assert q.split("=")[0] + ": expected a whole number" in msg, (path, q, msg)

    # A client that pipelines requests without reading the answers is not read from while its
    # responses pile up (they would otherwise queue in memory without bound), and once it reads
    # it gets every answer, in order.
    ok_2xx = 'code="2xx"'
    before = srv.metric("dr_http_requests_total", ok_2xx)
    n = 20000
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", srv.port))
    s.settimeout(20)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n" * n)
    time.sleep(4)
    answered = srv.metric("dr_http_requests_total", ok_2xx) - before
    assert answered < n / 4, f"{answered:.0f} of {n} unread responses queued"
    got, buf = 0, b""
    while got < n:
        chunk = s.recv(1 << 20)
        assert chunk, f"connection closed after {got} responses"
        buf += chunk
        while True:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                break
            head = buf[:head_end].decode()
            assert head.startswith("HTTP/1.1 200"), head
            length = int(head.lower().split("content-length: ")[1].split("\r\n")[0])
            if len(buf) < head_end + 4 + length:
                break
            buf = buf[head_end + 4 + length:]
            got += 1
    s.close()

    # Nothing was lost: the good messages were processed.
    wait_until(lambda: len(srv.processed()) == 1, 30, "the accepted message processed")
    assert srv.stop() == 0

    # Bad configuration stops the start, naming the file, the key and the reason.
    bad = write_config(tmp, "  - name: broken\n    match: {topic: x}\n    processors: [no-such]\n")
    p = subprocess.run([BIN, "serve", "--config", bad], capture_output=True, text=True,
                       timeout=30, env=dict(os.environ, PORT=str(srv.port)))
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert bad in p.stderr and "routes[1].processors[0]" in p.stderr and "no-such" in p.stderr, p.stderr
    # So does a value from the environment the service cannot take.
    for var, val, key in (("PORT", "80abc", "http.port"), ("DR_LOG_LEVEL", "loud", "log_level"),
                          ("DATABASE_URL", "mysql://u:pw@h/db", "store.url")):
        env = dict(os.environ, PORT=str(srv.port), DR_DATA_DIR=tmp)
        env[var] = val
        p = subprocess.run([BIN, "serve"], capture_output=True, text=True, timeout=30, env=env)
        assert p.returncode == 2 and p.stderr.count("\n") == 1, (var, p.returncode, p.stderr)
        assert f"config error: <embedded config/local.yaml>: {key}: " in p.stderr, p.stderr
        assert var in p.stderr and "pw" not in p.stderr, p.stderr
    p = subprocess.run([BIN, "serve", "--config", "/nonexistent.yaml"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and "/nonexistent.yaml" in p.stderr, p.stderr
    for cmd in (["serve"], ["publish"], ["dlq"], ["version"], ["parse", "email"],
                ["parse", "ics"], ["parse", "poll-reply"], ["extract", "shipments"],
                ["extract", "reply"]):
        p = subprocess.run([BIN, *cmd, "--help"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and p.stdout.startswith("usage: data-router"), (cmd, p)
    p = subprocess.run([BIN, "publish", "--topic"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    # Usage errors: exit 2 and one line on stderr, nothing on stdout.
    for cmd in (["bogus"], [], ["dlq"], ["version", "extra"],
                ["publish", "--topic", "t", "--data", "{}", "--data", "{}"],
                ["publish", "--topic", "t", "--data", "{}", "-"]):
        p = subprocess.run([BIN, *cmd], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and not p.stdout, (cmd, p)
    print("ok: hostile input answered with clear errors; service kept serving")


if __name__ == "__main__":
    main()
