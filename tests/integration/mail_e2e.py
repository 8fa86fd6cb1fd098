"""Email pipeline end to end in local mode (email -> shipment -> notifications).

What is observed, and how:
  - shipments: read from the service's SQLite file (<data_dir>/data-router.db, tables shipments
    and shipment_events) with Python's sqlite3, read-only while it runs (WAL);
  - expectations: tests/data/shipment/mail_and_packages/expectations.json (carrier and status
    from the upstream fixture names, tracking numbers asserted by upstream tests);
  - notifications: the embedded config routes client-notifications to the `realtime` processor,
    which stores each one (table rt_notifications: room, type, body_json) before fanning it out;
    they are read from there. Run 2 adds a carrier status provider to the same config;
  - dead letters: GET /admin/dlq?reason=...;
  - the carrier API: a fake aggregator (Python stdlib HTTP server) that checks the documented
    request shape (GET /trackings/{number}, X-Api-Key, Accept: application/json) and fails its
    first request for one number with 503 to exercise the retry.
"""
import base64
import http.server
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(__file__))
from drlib import BIN, SRC, Server, wait_until  # noqa: E402

DATA = os.environ.get("DR_TEST_DATA", os.path.join(SRC, "tests", "data"))
MAIL = os.path.join(DATA, "shipment", "mail_and_packages")
STATUS = {"shipped": "in_transit"}
# Numbers upstream redacted into ones their carrier's check digit refutes: the email processor
# does not forward them (it logs how many), so they are neither stored nor dead-lettered.
REFUTED = {"4212345678", "1Z2345YY0678901234"}
# The UPS email with its number given a valid check digit, for the carrier provider run.
UPS_VALID = "1Z2345YY0678901238"
API_KEY = "test-key-6f1e"


def cases():
    with open(os.path.join(MAIL, "expectations.json"), encoding="utf-8") as f:
        return json.load(f)["cases"]


def raw_of(name, replace=None):
    with open(os.path.join(MAIL, name), "rb") as f:
        raw = f.read()
    if replace:
        raw = raw.replace(replace[0].encode(), replace[1].encode())
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def email_msg(user, name, replace=None):
    return {"data": {"user_id": user, "org_id": "o-e2e", "account": "me@example.com",
                     "provider": "gmail", "email_id": name, "thread_id": "t-" + name,
                     "received_at": "2026-03-01T10:00:00Z", "raw": raw_of(name, replace)}}


def open_db(srv):
    path = os.path.join(srv.data_dir, "data-router.db")
    wait_until(lambda: os.path.exists(path), 30, "the store file")
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5, isolation_level=None)


def query(db, sql, args=()):
    try:
        return db.execute(sql, args).fetchall()
    except sqlite3.OperationalError:  # tables not there yet, or locked for a moment
        return None


def dlq(srv, reason):
    st, body = srv.get(f"/admin/dlq?reason={reason}&limit=100")
    assert st == 200, body
    return body.get("dead_letters", [])


def check_cli():
    ups = os.path.join(MAIL, "ups_out_for_delivery.eml")
    p = subprocess.run([BIN, "parse", "email", ups], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    cls = out["classification"]
    assert cls["primary"] == "shipment", cls
    # the redacted number fails the UPS check digit: listed, but not as a UPS number
    assert cls["shipment"]["carrier"] == "ups", cls
    assert {"tracking_number": "1Z2345YY0678901234", "carrier": None,
            "status": "out_for_delivery", "valid": False} in cls["shipment"]["tracking_numbers"]
    assert out["subject"] and out["from"]["address"].endswith("@ups.com"), out["from"]
    p = subprocess.run([BIN, "parse", "email", "-"], input=b"", capture_output=True, timeout=60)
    assert p.returncode == 1 and p.stdout == b"" and b"parse email" in p.stderr, p
    p = subprocess.run([BIN, "parse", "email", "a", "b"], capture_output=True, timeout=60)
    assert p.returncode == 2, p
    print("ok: parse email")
    # extract shipments: from an email file, and from text on the command line
    p = subprocess.run([BIN, "extract", "shipments", ups], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == "out_for_delivery"
    p = subprocess.run([BIN, "extract", "shipments", "--text",
                        "Your parcel 1Z999AA10123456784 was delivered today"],
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert [(s["tracking_number"], s["carrier"], s["valid"]) for s in out["shipments"]] == \
        [("1Z999AA10123456784", "ups", True)], out
    assert out["status"] == "delivered", out
    # a check digit changed: not reported as UPS
    p = subprocess.run([BIN, "extract", "shipments", "--text", "tracking 1Z999AA10123456785"],
                       capture_output=True, timeout=60)
    assert p.returncode == 0 and not any(s["carrier"] == "ups" and s["valid"]
                                         for s in json.loads(p.stdout)["shipments"]), p.stdout
    p = subprocess.run([BIN, "extract", "shipments", "--text"], capture_output=True, timeout=60)
    assert p.returncode == 2, p
    print("ok: extract shipments")


def run_default():
    """The embedded default config: shipments stored, notifications emitted, bad mail DLQ'd."""
    srv = Server(env={"DR_LOG_LEVEL": "info"}).start()  # info: "email processed" lines
    try:
        db = open_db(srv)
        want = {}  # tracking number -> (carrier, status)
        for c in cases():
            name = os.path.basename(c["fixture"])
            st, body = srv.publish("email-backfill", [email_msg("u-e2e", name)])
            assert st == 200, body
            status = STATUS.get(c["status_label"], c["status_label"])
            for tn in c.get("asserted", {}).get("tracking", []):
                if tn not in REFUTED:
                    want[tn] = (c["carrier"], status)
        assert len(want) >= 2
        bad = [{"data": {"user_id": "u-e2e", "email_id": "bad-b64", "raw": "***not base64***"}},
               {"data": {"user_id": "u-e2e", "email_id": "not-mail",
                         "raw": base64.urlsafe_b64encode(b"\x00\x01\x02").decode()}},
               {"data": {"email_id": "no-user", "subject": "hi"}}]
        st, body = srv.publish("email-backfill", bad)
        assert st == 200, body

        def stored():
            rows = query(db, "SELECT tracking_number, carrier, status FROM shipments "
                             "WHERE user_id = 'u-e2e'")
            got = {r[0]: (r[1], r[2]) for r in rows or []}
            return got if all(tn in got for tn in want) else None
        got = wait_until(stored, 120, "the asserted tracking numbers to be stored")
        for tn, exp in want.items():
            assert got[tn] == exp, (tn, got[tn], exp)
        events = query(db, "SELECT COUNT(*) FROM shipment_events e JOIN shipments s "
                           "ON s.id = e.shipment_id WHERE s.user_id = 'u-e2e'")[0][0]
        assert events >= len(got), (events, got)
        print(f"ok: {len(got)} shipments stored from {len(cases())} carrier emails "
              f"({len(want)} asserted upstream), {events} tracking events")

        def unverifiable():
            n = 0
            for line in srv.tail(1 << 24).splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("msg") == "email processed":
                    n += int(rec.get("unverifiable_numbers", 0))
            return n if n >= len(REFUTED) else None
        n = wait_until(unverifiable, 60, "the refuted numbers to be counted as not forwarded")
        stored = query(db, "SELECT tracking_number FROM shipments WHERE user_id = 'u-e2e'")
        assert not REFUTED & {r[0] for r in stored}, stored
        print(f"ok: {n} numbers failing their carrier's check digit not forwarded")

        # two dead letters with the email processor's reasons
        def dead():
            a, b = dlq(srv, "invalid_payload"), dlq(srv, "invalid_email")
            return (a, b) if len(a) >= 2 and len(b) >= 1 else None
        a, b = wait_until(dead, 60, "the malformed emails to be dead-lettered")
        assert all(d["processor"] == "email" and d["topic"] == "email-backfill" for d in a + b)
        assert any("base64url" in d["error"] for d in a), a
        assert any("user_id" in d["error"] for d in a), a
        assert b[0]["error"], b
        print(f"ok: malformed email dead-lettered: {[d['error'] for d in a + b]}")
        # by now the shipment processor has had the forwarded numbers long since
        d = dlq(srv, "invalid_tracking_number")
        assert not [x for x in d for tn in REFUTED if tn in x["error"]], d
        print("ok: no dead letter for a number the email processor did not forward")

        # notifications: every new shipment told twice (user and shipment rooms), plus progress.
        # Emails whose numbers were not asserted upstream may still be stored after `got` was
        # read, so the shipments are read again until they and their notifications agree.
        def told():
            ships = {r[0] for r in query(db, "SELECT tracking_number FROM shipments "
                                             "WHERE user_id = 'u-e2e'") or []}
            rows = query(db, "SELECT room, type FROM rt_notifications WHERE user_id = 'u-e2e'")
            ship = [r[0] for r in rows or [] if r[1] == "shipment.updated"]
            agree = (ships >= set(got)
                     and len([r for r in ship if r == "user:u-e2e"]) == len(ships)
                     and {r for r in ship if r != "user:u-e2e"} == {f"shipment:{tn}"
                                                                   for tn in ships})
            return rows if agree else None
        seen = wait_until(told, 60, "one notification per shipment in each of its two rooms")
        ship = [r[0] for r in seen if r[1] == "shipment.updated"]
        progress = [r for r in seen if r[1] == "email.processed"]
        assert 1 <= len(progress) < len(cases()), progress
        print(f"ok: {len(ship)} shipment.updated and {len(progress)} email.processed "
              f"notifications for {len(cases())} emails")
    except BaseException:
        print(srv.tail(), file=sys.stderr)
        raise
    finally:
        rc = srv.stop()
    assert rc == 0, f"exit code {rc}"


class FakeCarrier(http.server.BaseHTTPRequestHandler):
    """GET /trackings/{number}, X-Api-Key, Accept: application/json -> the documented JSON."""
    requests = []
    errors = []
    fail_first = set()

    def do_GET(self):
        path = self.path
        FakeCarrier.requests.append((path, dict(self.headers)))
        if self.headers.get("X-Api-Key") != API_KEY:
            FakeCarrier.errors.append(f"bad key on {path}")
            return self.answer(401, {"error": "key"})
        if "application/json" not in self.headers.get("Accept", ""):
            FakeCarrier.errors.append(f"no Accept on {path}")
        if not path.startswith("/v1/trackings/") or "?" in path:
            FakeCarrier.errors.append(f"unexpected path {path}")
            return self.answer(404, {})
        number = path.rsplit("/", 1)[1]
        if number in FakeCarrier.fail_first:
            FakeCarrier.fail_first.discard(number)
            return self.answer(503, {"error": "busy"})
        if not number.startswith("1Z"):
            return self.answer(404, {"error": "unknown"})
        self.answer(200, {"status": "Delivered", "events": [
            {"status": "In Transit", "time": "2020-09-22T08:00:00Z", "location": "Hub"},
            {"status": "Delivered", "time": "2030-01-01T12:00:00Z", "location": "Front door",
             "detail": "Left at front door"}]})

    def do_POST(self):
        FakeCarrier.errors.append(f"POST {self.path}")
        self.answer(405, {})

    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def provider_config(data_dir, url):
    text = open(os.path.join(SRC, "config", "local.yaml"), encoding="utf-8").read()
    lines = text.split("\n")
    idx = [i for i, x in enumerate(lines) if x.startswith("  shipment:")]
    assert len(idx) == 1, "processors.shipment not in config/local.yaml"
    lines[idx[0]] = (f"  shipment: {{provider: {{url: \"{url}\", rate_per_sec: 50, "
                     f"timeout_ms: 5000}}}}")
    path = os.path.join(data_dir, "config.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def run_provider():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeCarrier)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/v1/"
    FakeCarrier.fail_first = {UPS_VALID}
    data_dir = tempfile.mkdtemp(prefix="dr-mail-e2e-")
    srv = Server(config=provider_config(data_dir, url), data_dir=data_dir,
                 env={"DR_CARRIER_API_KEY": API_KEY}).start()
    try:
        db = open_db(srv)
        msgs = [email_msg("u-p", "ups_out_for_delivery.eml", ("1Z2345YY0678901234", UPS_VALID)),
                email_msg("u-p", "gls_delivered.eml")]
        with open(os.path.join(DATA, "email", "replies", "gmail.eml"), "rb") as f:
            msgs.append({"data": {"user_id": "u-p", "email_id": "reply-1",
                                  "raw": base64.urlsafe_b64encode(f.read()).decode()}})
        st, body = srv.publish("email-backfill", msgs)
        assert st == 200, body

        def ups_delivered():
            r = query(db, "SELECT status, status_detail, location FROM shipments "
                          "WHERE user_id = 'u-p' AND tracking_number = '" + UPS_VALID + "'")
            return r[0] if r and r[0][0] == "delivered" else None
        row = wait_until(ups_delivered, 120, "the provider's delivered status")
        assert row == ("delivered", "Left at front door", "Front door"), row
        src = query(db, "SELECT source, COUNT(*) FROM shipment_events e JOIN shipments s ON "
                        "s.id = e.shipment_id WHERE s.tracking_number = '" + UPS_VALID + "' "
                        "GROUP BY source ORDER BY source")
        assert dict(src) == {"carrier_api": 2, "email": 1}, src
        # the 503 was retried: two requests for the UPS number; GLS unknown to the provider
        ups = [p for p, _ in FakeCarrier.requests if p.endswith("/" + UPS_VALID)]
        assert len(ups) == 2, FakeCarrier.requests
        assert not FakeCarrier.errors, FakeCarrier.errors
        wait_until(lambda: query(db, "SELECT status FROM shipments WHERE user_id = 'u-p' AND "
                                     "carrier = 'gls'") == [("delivered",)], 60, "GLS stored")

        def notes():
            rows = query(db, "SELECT room, type, body_json FROM rt_notifications "
                             "WHERE user_id = 'u-p'")
            return rows if rows and len([r for r in rows if r[1] == "shipment.updated"]) >= 4 \
                else None
        rows = wait_until(notes, 60, "shipment.updated notifications")
        ship = [(r[0], json.loads(r[2])["data"]) for r in rows if r[1] == "shipment.updated"]
        ups_notes = [d for room, d in ship if d["tracking_number"] == UPS_VALID]
        assert {room for room, d in ship if d["tracking_number"] == UPS_VALID} == \
            {"user:u-p", "shipment:" + UPS_VALID}, ship
        assert all(d["status"] == "delivered" and d["carrier"] == "ups" for d in ups_notes)
        progress = [json.loads(r[2])["data"] for r in rows if r[1] == "email.processed"]
        assert progress and len(progress) <= 3, progress
        assert all(p["processed"] >= 1 for p in progress), progress
        assert not [r for r in rows if r[1] == "shipment.updated" and "@" in r[2]], \
            "no address in shipment notifications"
        print(f"ok: carrier provider: {len(FakeCarrier.requests)} requests "
              f"(one 503 retried), {len(ship)} shipment.updated and {len(progress)} "
              f"email.processed notifications")
    except BaseException:
        print(srv.tail(), file=sys.stderr)
        raise
    finally:
        rc = srv.stop()
        httpd.shutdown()
    assert rc == 0, f"exit code {rc}"


def main():
    check_cli()
    run_default()
    run_provider()
    print("ok: mail e2e")


if __name__ == "__main__":
    main()
