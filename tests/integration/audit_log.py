"""The audit log against the real binary: one line per admin request (the key's name, or
"anonymous" or "loopback", the method, the path, the status), per action on dead letters (the
ids, the counts) and per inbox access (the user, the action, the counts), written although the
log level is error, and nothing secret in the log:
no API key, no token, no notification content, no full address, no query value that might be a
credential."""
import base64
import hashlib
import hmac
import json
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from drlib import Server, wait_until  # noqa: E402

SERVICE_KEY = "svc-" + "k" * 40
ADMIN_KEY = "adm-" + "a" * 40
WRONG_KEY = "wrong-" + "w" * 40
JWT_SECRET = "audit-log-test-secret-0123456789abcdef"
SECRETS = ["TOP-SECRET-TITLE", "BODY-SECRET", "DATA-SECRET", "QUERY-SECRET"]


def sha(k):
    return hashlib.sha256(k.encode()).hexdigest()


def write_config(tmp, keys=True):
    path = os.path.join(tmp, "config.yaml")
    with open(path, "w") as f:
        f.write("mode: local\nhttp: {host: 127.0.0.1, port: 8080}\n")
        if keys:
            f.write(f"api_keys:\n  - {{name: svc, role: service, sha256: {sha(SERVICE_KEY)}}}\n"
                    f"  - {{name: ops, role: admin, sha256: {sha(ADMIN_KEY)}}}\n")
        f.write("topics:\n  client-notifications: {type: client_notification}\n"
                "  test-events: {type: test}\n"
                "routes:\n  - name: notify\n    match: {topic: client-notifications}\n"
                "    processors: [realtime]\n"
                "  - name: test\n    match: {topic: test-events}\n    processors: [test]\n")
    return path


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def token(sub):
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"sub": sub, "org": "acme",
                                "exp": int(time.time()) + 600}).encode())
    sig = b64url(hmac.new(JWT_SECRET.encode(), f"{head}.{claims}".encode(),
                          hashlib.sha256).digest())
    return f"{head}.{claims}.{sig}"


def audit_lines(srv):
    out = []
    with open(srv.log_path) as f:
        for line in f:
            if line.strip():
                o = json.loads(line)  # every line of the log is one JSON object
                if o.get("component") == "audit":
                    out.append(o)
    return out


def new_lines(srv, before, msg):
    return [o for o in audit_lines(srv)[before:] if o["msg"] == msg]


class WebSocket:
    """Just enough of a client: the upgrade, masked text frames out, text frames in."""

    def __init__(self, port, tok):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.s.sendall((f"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {tok}\r\n\r\n")
                       .encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.recv_some()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 101"), head

    def recv_some(self):
        chunk = self.s.recv(65536)
        assert chunk, "connection closed"
        return chunk

    def send(self, obj):
        data = json.dumps(obj).encode()
        assert len(data) < 126
        mask = os.urandom(4)
        self.s.sendall(bytes([0x81, 0x80 | len(data)]) + mask +
                       bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def frame(self, want):
        """The next text frame whose JSON has type want (others are skipped)."""
        while True:
            while len(self.buf) < 2:
                self.buf += self.recv_some()
            n, off = self.buf[1] & 0x7F, 2
            if n == 126:
                while len(self.buf) < 4:
                    self.buf += self.recv_some()
                n, off = int.from_bytes(self.buf[2:4], "big"), 4
            elif n == 127:
                while len(self.buf) < 10:
                    self.buf += self.recv_some()
                n, off = int.from_bytes(self.buf[2:10], "big"), 10
            while len(self.buf) < off + n:
                self.buf += self.recv_some()
            op, payload, self.buf = self.buf[0] & 0x0F, self.buf[off:off + n], self.buf[off + n:]
            if op == 1:
                o = json.loads(payload)
                if o.get("type") == want:
                    return o

    def close(self):
        self.s.close()


def main():
    tmp = tempfile.mkdtemp(prefix="dr-audit-")
    srv = Server(config=write_config(tmp),
                 env={"DR_JWT_SECRET": JWT_SECRET, "DR_LOG_LEVEL": "error"}).start()
    svc = {"Authorization": f"Bearer {SERVICE_KEY}"}
    adm = {"X-API-Key": ADMIN_KEY}
    alice = token("alice")
    carol = token("carol.jones@example.com")
    try:
        # Notifications to read, with content that must never reach the log.
        notes = [{"notification_id": f"n-{i}", "user_id": "alice", "org_id": "acme",
                  "notification_type": "system.test", "title": "TOP-SECRET-TITLE",
                  "message": "BODY-SECRET", "data": {"x": "DATA-SECRET"}} for i in (1, 2)]
        notes.append({"notification_id": "n-carol", "user_id": "carol.jones@example.com",
                      "notification_type": "system.test", "title": "TOP-SECRET-TITLE"})
        st, body = srv.publish("client-notifications", [{"data": n} for n in notes],
                               headers=svc)
        assert st == 200, (st, body)
        assert new_lines(srv, 0, "admin request") == [], "a publish is not an admin request"
        me = {"Authorization": f"Bearer {alice}"}
        wait_until(lambda: srv.get("/api/v1/notifications/unread-count", headers=me)[1]
                   .get("unread") == 2, 60, "alice's two notifications stored")

        # Admin requests: one line each, allowed or not, with who made them.
        admin_requests = [
            ("GET", "/admin/routes", adm, 200, "ops"),
            ("GET", "/admin/dlq?topic=t1&access_token=QUERY-SECRET", adm, 200, "ops"),
            ("DELETE", "/admin/dlq/99", adm, 404, "ops"),
            ("GET", "/admin/connections?user=alice", adm, 200, "ops"),
            ("GET", "/admin/breakers", svc, 403, "svc"),
            ("GET", "/admin/routes", {"Authorization": f"Bearer {WRONG_KEY}"}, 401, "anonymous"),
            ("GET", "/admin/connections", {}, 401, "anonymous"),
        ]
        before = len(audit_lines(srv))
        for method, path, headers, status, _ in admin_requests:
            assert srv.request(method, path, headers=headers)[0] == status, (method, path)
        got = new_lines(srv, before, "admin request")
        assert len(got) == len(admin_requests), got
        for line, (method, path, _, status, actor) in zip(got, admin_requests):
            assert line["level"] == "info", line
            assert (line["actor"], line["method"], line["status"]) == (actor, method, status), line
            assert line["path"] == path.split("?")[0], line
            assert line["peer"] == "127.0.0.1", line
        assert got[1]["query"] == "topic=t1&access_token=*", got[1]
        assert got[3]["query"] == "user=alice", got[3]

        # Inbox accesses: one line each with the user, the action and the counts.
        before = len(audit_lines(srv))
        st, page = srv.get("/api/v1/notifications?limit=10", headers=me)
        assert st == 200 and len(page["notifications"]) == 2, page
        assert srv.get("/api/v1/notifications/unread-count", headers=me)[0] == 200
        assert srv.request("POST", "/api/v1/notifications/n-1/read", headers=me)[0] == 200
        assert srv.request("POST", "/api/v1/notifications/n-none/read", headers=me)[0] == 404
        st, marked = srv.request("POST", "/api/v1/notifications/read-all", headers=me)
        assert st == 200, marked
        got = new_lines(srv, before, "inbox access")
        assert [(o["action"], o["status"]) for o in got] == [
            ("list", 200), ("unread_count", 200), ("read", 200), ("read", 404),
            ("read_all", 200)], got
        assert all(o["actor"] == "alice" and o["via"] == "http" for o in got), got
        assert (got[0]["count"], got[0]["limit"], got[0]["unread_only"]) == (2, 10, 0), got[0]
        assert got[1]["unread"] == 2, got[1]
        assert got[2]["notification_id"] == "n-1" and got[2]["seq"] > 0, got[2]
        assert got[3]["notification_id"] == "n-none" and "seq" not in got[3], got[3]
        assert got[4]["up_to"] == marked["up_to"], got[4]

        # Actions on dead letters: one line each, with ids and counts, never the message.
        st, body = srv.publish("test-events", [
            {"data": {"x": "DATA-SECRET"}, "attributes": {"test_fail": "permanent", "n": str(i)}}
            for i in (1, 2)], headers=svc)
        assert st == 200, (st, body)
        dls = wait_until(lambda: (lambda d: d if len(d) == 2 else None)(
            srv.get("/admin/dlq?topic=test-events", headers=adm)[1]["dead_letters"]), 60,
            "two dead letters")
        before = len(audit_lines(srv))
        assert srv.request("DELETE", f"/admin/dlq/{dls[0]['id']}", headers=adm)[0] == 200
        st, res = srv.request("POST", f"/admin/dlq/{dls[1]['id']}/replay",
                              {"attributes": {"n": "2"}}, headers=adm)
        assert st == 200, res
        st, res = srv.request("POST", "/admin/dlq/replay",
                              {"filter": {"topic": "test-events"}, "dry_run": True}, headers=adm)
        assert st == 200 and res["replayed"] == 0, res
        st, job = srv.request("POST", "/admin/dlq/replay",
                              {"filter": {"topic": "test-events"}, "rate": 5}, headers=adm)
        assert st in (200, 202) and job["id"], (st, job)
        wait_until(lambda: srv.get(f"/admin/dlq/replay/jobs/{job['id']}", headers=adm)[1]
                   .get("state") != "running", 60, "the replay job to end")
        assert srv.request("DELETE", f"/admin/dlq/replay/jobs/{job['id']}", headers=adm)[0] == 200

        def one(msg):
            got = new_lines(srv, before, msg)
            assert len(got) == 1 and got[0]["level"] == "info", (msg, got)
            return got[0]
        assert one("dead letter discarded")["id"] == dls[0]["id"]
        line = one("dead letter replayed")
        assert (line["id"], line["message_id"], line["edited"]) == (
            dls[1]["id"], dls[1]["message_id"], 1), line
        line = one("dead letters replayed by filter")
        assert (line["dry_run"], line["replayed"]) == (1, 0), line
        line = one("dead-letter replay job started")
        assert (line["job"], line["matched"], line["rate"]) == (job["id"], job["matched"], 5), line
        assert type(line["rate"]) in (int, float), line  # a number, as in the job
        assert one("dead-letter replay job cancel")["job"] == job["id"]
        line = one("dead-letter replay job finished")
        assert (line["job"], line["state"]) == (job["id"], "done"), line

        # An ack over the WebSocket marks read as well: audited the same way.
        before = len(audit_lines(srv))
        ws = WebSocket(srv.port, alice)
        ws.frame("welcome")
        ws.send({"type": "ack", "id": "n-2"})
        line = wait_until(lambda: (new_lines(srv, before, "inbox access") or [None])[0], 30,
                          "the ack's audit line")
        assert (line["actor"], line["action"], line["via"], line["status"],
                line["notification_id"]) == ("alice", "read", "ws", 200, "n-2"), line
        ws.close()

        # A user id that is an address is not written in full.
        before = len(audit_lines(srv))
        assert srv.get("/api/v1/notifications",
                       headers={"Authorization": f"Bearer {carol}"})[0] == 200
        got = new_lines(srv, before, "inbox access")
        assert len(got) == 1 and got[0]["actor"] == "c***@example.com", got
        # Unauthenticated inbox requests touch nothing and are refused before any access.
        before = len(audit_lines(srv))
        assert srv.get("/api/v1/notifications")[0] == 401
        assert new_lines(srv, before, "inbox access") == []
    finally:
        assert srv.stop() == 0

    log = open(srv.log_path).read()
    for secret in [ADMIN_KEY, SERVICE_KEY, WRONG_KEY, alice, carol, JWT_SECRET, *SECRETS,
                   "carol.jones"]:
        assert secret not in log, f"{secret[:12]}... is in the log"

    # Without keys, a loopback client is the actor.
    tmp2 = tempfile.mkdtemp(prefix="dr-audit-")
    open_srv = Server(config=write_config(tmp2, keys=False),
                      env={"DR_JWT_SECRET": JWT_SECRET}).start()
    try:
        assert open_srv.get("/admin/routes")[0] == 200
        got = new_lines(open_srv, 0, "admin request")
        assert [(o["actor"], o["path"], o["status"]) for o in got] == [
            ("loopback", "/admin/routes", 200)], got
    finally:
        assert open_srv.stop() == 0
    print("ok: admin requests, dead-letter actions and inbox accesses audited at log level "
          "error, nothing secret logged")


if __name__ == "__main__":
    main()
