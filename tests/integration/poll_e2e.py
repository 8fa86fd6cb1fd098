"""Meeting polls end to end in local mode, and the poll / iCalendar CLI tools.

What is observed, and how:
  - answers stored: read from the service's SQLite file (<data_dir>/data-router.db, tables
    poll_responses / poll_participants) with Python's sqlite3, read-only while it runs (WAL);
  - notifications: the test config routes topic client-notifications to the `test` processor,
    which records each message it sees (its ordering key is the notification's room) in
    <data_dir>/test-processed.jsonl; nothing else reads that topic here;
  - the non-participant's reply: GET /admin/dlq?reason=not_a_participant; a reply found in
    another user's mailbox: reason not_organizer_mailbox.
Latency is measured from the publish request to the answer row being visible in the store.
"""
import base64
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from drlib import BIN, SRC, Server, wait_until  # noqa: E402

DATA = os.environ.get("DR_TEST_DATA", os.path.join(SRC, "tests", "data"))

POLL = {
    "poll_id": "p-e2e", "organizer_user_id": "u-org", "org_id": "o-1",
    "title": "Planning meeting",
    "slots": [
        {"slot_id": "a", "start": "2026-03-02T10:00:00+01:00", "end": "2026-03-02T11:00:00+01:00",
         "label": "Mon 2 Mar, 10:00"},
        {"slot_id": "b", "start": "2026-03-03T15:00:00+01:00", "end": "2026-03-03T16:00:00+01:00",
         "label": "Tue 3 Mar, 15:00"},
        {"slot_id": "c", "start": "2026-03-04T09:30:00+01:00", "end": "2026-03-04T10:30:00+01:00"},
    ],
    "participants": [{"email": "Kim.Lee@example.com", "name": "Kim"},
                     {"email": "sam@example.org", "name": "Sam"},
                     {"email": "ana@example.net"}],
    "message_id": "<poll-e2e@example.com>", "reply_token": "tokE2E",
}

QUOTE = ("\n\nOn Fri, Feb 27, 2026 at 9:00 AM Dana <dana@example.com> wrote:\n"
         "> Which times work?\n> 1. Mon 2 Mar, 10:00\n> 2. Tue 3 Mar, 15:00\n> 3. Wed 4 Mar\n")

ICS_REPLY = "\r\n".join([
    "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//e2e//EN", "METHOD:REPLY",
    "BEGIN:VEVENT", "UID:anything@example.org", "DTSTAMP:20260227T110000Z",
    "DTSTART:20260303T140000Z", "ATTENDEE;PARTSTAT=ACCEPTED:mailto:sam@example.org",
    "END:VEVENT", "END:VCALENDAR", ""])


def cli(*args, stdin=None):
    p = subprocess.run([BIN, *args], input=stdin, capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def check_cli():
    # extract reply: fixtures with the expected reply text next to them (talon)
    base = os.path.join(DATA, "replies", "talon", "standard_replies")
    for name in ("iphone", "sparrow"):
        rc, out, err = cli("extract", "reply", os.path.join(base, name + ".eml"))
        assert rc == 0, err
        got = json.loads(out)
        want = open(os.path.join(base, name + "_reply_text"), encoding="utf-8").read()
        assert got["quoted"] is True, got
        assert got["reply_text"] == want.split("\n")[0].strip(), (got, want)
    rc, out, _ = cli("extract", "reply", "-", stdin=b"Works for me!" + QUOTE.encode())
    assert rc == 0 and json.loads(out) == {"reply_text": "Works for me!", "quoted": True}, out
    rc, out, err = cli("extract", "reply", "/nonexistent/file")
    assert rc == 1 and "cannot open" in err, (rc, err)

    # parse poll-reply: an .eml (From becomes the participant) and plain text on stdin
    with tempfile.TemporaryDirectory() as d:
        poll = os.path.join(d, "poll.json")
        with open(poll, "w") as f:
            json.dump(POLL, f)
        eml = os.path.join(d, "reply.eml")
        with open(eml, "w") as f:
            f.write("From: Kim Lee <kim.lee@example.com>\nTo: dana@example.com\n"
                    "Subject: Re: Planning\nDate: Fri, 27 Feb 2026 10:00:00 +0000\n\n"
                    "1 yes, 2 no. Thanks!" + QUOTE)
        rc, out, err = cli("parse", "poll-reply", "--poll", poll, eml)
        assert rc == 0, err
        got = json.loads(out)
        assert got["poll_id"] == "p-e2e" and got["participant"] == "kim.lee@example.com", got
        assert got["responses"] == [{"slot_id": "a", "answer": "yes"},
                                    {"slot_id": "b", "answer": "no"}], got
        assert got["comment"] == "Thanks!", got
        rc, out, err = cli("parse", "poll-reply", "--poll", poll, "-",
                           stdin=b"Only the Tuesday one works")
        assert rc == 0, err
        got = json.loads(out)
        assert got["participant"] is None and {"slot_id": "b", "answer": "yes"} in got["responses"]
        rc, _, err = cli("parse", "poll-reply", eml)
        assert rc == 2 and "usage" in err, (rc, err)
        with open(eml, "w") as f:
            f.write("From: Eve <eve@example.com>\nTo: dana@example.com\n"
                    "Subject: Re: Planning\n\n1 yes" + QUOTE)
        rc, out, err = cli("parse", "poll-reply", "--poll", poll, eml)
        assert rc == 1 and out == "" and err.count("\n") == 1, (rc, out, err)
        assert "not_a_participant" in err, err
        # a From that GMime would read as Kim's, but which is nobody's address
        with open(eml, "w") as f:
            f.write("From: kim.lee@example.com@evil.example\nTo: dana@example.com\n"
                    "Subject: Re: Planning\n\n1 yes" + QUOTE)
        rc, out, err = cli("parse", "poll-reply", "--poll", poll, eml)
        assert rc == 1 and out == "" and "invalid_email" in err, (rc, out, err)
        assert "kim.lee" not in err, err

    # parse ics: valid samples, then malformed ones (exit 1 with the parser's reason)
    for name in ("minimal.ics", "daily_recur.ics", "google_birthday.ics"):
        rc, out, err = cli("parse", "ics", os.path.join(DATA, "ics", "icaljs", "samples", name))
        assert rc == 0, (name, err)
        assert json.loads(out)["events"], name
    rc, out, err = cli("parse", "ics", "-", stdin=ICS_REPLY.encode())
    got = json.loads(out)
    assert rc == 0 and got["method"] == "REPLY", got
    assert got["events"][0]["attendees"][0]["partstat"] == "ACCEPTED", got
    for name in ("crash.ics", "2446.ics"):
        rc, out, err = cli("parse", "ics", os.path.join(DATA, "ics", "libical", name))
        assert rc == 1 and out == "" and "invalid iCalendar" in err, (name, rc, err)

    # an unknown option is a usage error, not a file name; an oversize file says so
    for tool in (("parse", "email"), ("parse", "ics"), ("extract", "shipments"),
                 ("extract", "reply")):
        rc, out, err = cli(*tool, "--bogus")
        assert rc == 2 and out == "" and err.count("\n") == 1 and "usage" in err, (tool, rc, err)
    with tempfile.TemporaryDirectory() as d:
        big = os.path.join(d, "big.eml")
        with open(big, "wb") as f:
            f.write(b"From: a@example.org\n\n" + b"x" * (26 << 20))
        for tool in (("parse", "email"), ("extract", "shipments")):
            rc, out, err = cli(*tool, big)
            assert rc == 1 and out == "" and err.count("\n") == 1, (tool, rc, err)
            assert "limit" in err, (tool, err)
    print("ok: CLI tools")


def config(data_dir):
    """The embedded defaults plus a route that records client notifications."""
    text = open(os.path.join(SRC, "config", "local.yaml"), encoding="utf-8").read()
    route = ("  - name: e2e-notifications\n"
             "    match: {topic: [client-notifications]}\n"
             "    processors: [test]\n")
    assert "  - name: default\n" in text
    text = text.replace("  - name: default\n", route + "  - name: default\n", 1)
    path = os.path.join(data_dir, "config.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def answers(db, email):
    try:
        rows = db.execute("SELECT slot_id, answer FROM poll_responses "
                          "WHERE poll_id = 'p-e2e' AND participant_email = ?", (email,)).fetchall()
    except sqlite3.OperationalError:  # locked for a moment, or tables not there yet
        return None
    return dict(rows)


def publish_and_wait(srv, db, msg_type, payload, email, want):
    """Publishes one message; returns the milliseconds until its answers are stored."""
    t0 = time.monotonic()
    st, body = srv.publish("meeting-responses", [{"data": payload,
                                                  "attributes": {"type": msg_type}}])
    assert st == 200, body
    wait_until(lambda: answers(db, email) == want, 30, f"answers of {email}", interval=0.002)
    return (time.monotonic() - t0) * 1000


def notifications(srv):
    return [r for r in srv.processed() if r["topic"] == "client-notifications"]


def check_service():
    data_dir = tempfile.mkdtemp(prefix="dr-poll-e2e-")
    srv = Server(config=config(data_dir), data_dir=data_dir).start()
    try:
        run_service(srv)
    except BaseException:
        print(srv.tail(), file=sys.stderr)
        raise
    finally:
        rc = srv.stop()
    assert rc == 0, f"exit code {rc}"


def run_service(srv):
    st, body = srv.publish("meeting-responses", [{"data": POLL,
                                                  "attributes": {"type": "poll_created"}}])
    assert st == 200, body
    dbpath = os.path.join(srv.data_dir, "data-router.db")
    wait_until(lambda: os.path.exists(dbpath), 30, "the store file")
    db = sqlite3.connect(f"file:{dbpath}?mode=ro", uri=True, timeout=5, isolation_level=None)

    def poll_stored():
        try:
            return db.execute("SELECT COUNT(*) FROM polls WHERE poll_id = 'p-e2e'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0
    wait_until(poll_stored, 30, "the poll to be stored")

    timings = {}
    # 1. plain-text email reply, found by its reply token (no poll_id), plus-addressed sender
    # poll_response_email names the mailbox it arrived in: the organizer's
    kim = {"user_id": "u-org", "org_id": "o-1",
           "reply_token": "tokE2E", "from": "Kim <Kim.Lee+polls@Example.com>",
           "date": "2026-02-27T10:00:00Z", "message_id": "<kim-1@example.com>",
           "subject": "Re: Planning meeting", "body_text": "1 yes, 2 no, 3 maybe" + QUOTE}
    timings["email"] = publish_and_wait(srv, db, "poll_response_email", kim,
                                        "kim.lee@example.com", {"a": "yes", "b": "no", "c": "maybe"})
    # 2. an iCalendar REPLY inside a raw RFC 5322 message, found by In-Reply-To
    raw = ("From: Sam <sam@example.org>\r\nTo: dana@example.com\r\n"
           "Subject: Accepted: Planning meeting\r\nDate: Fri, 27 Feb 2026 11:00:00 +0000\r\n"
           "Message-ID: <sam-1@example.org>\r\nIn-Reply-To: <poll-e2e@example.com>\r\n"
           "MIME-Version: 1.0\r\nContent-Type: text/calendar; method=REPLY; charset=utf-8\r\n"
           "\r\n" + ICS_REPLY)
    sam = {"user_id": "u-org", "org_id": "o-1",
           "raw": base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")}
    timings["ics"] = publish_and_wait(srv, db, "poll_response_email", sam, "sam@example.org",
                                      {"b": "yes"})
    # 3. a structured answer
    ana = {"poll_id": "p-e2e", "participant_email": "ana@example.net",
           "responses": [{"slot_id": "a", "answer": "no"}, {"slot_id": "c", "answer": "yes"}],
           "comment": "mornings are hard"}
    timings["structured"] = publish_and_wait(srv, db, "poll_response", ana, "ana@example.net",
                                             {"a": "no", "c": "yes"})
    # 4. Kim's older email arrives late: nothing changes
    old = dict(kim, date="2026-02-26T10:00:00Z", message_id="<kim-0@example.com>",
               body_text="1 no, 2 yes")
    st, _ = srv.publish("meeting-responses", [{"data": old,
                                               "attributes": {"type": "poll_response_email"}}])
    assert st == 200
    # 5. a non-participant: dead-lettered with not_a_participant
    eve = dict(kim, **{"from": "Eve <eve@evil.example>", "message_id": "<eve@evil.example>"})
    st, _ = srv.publish("meeting-responses", [{"data": eve,
                                               "attributes": {"type": "poll_response_email"}}])
    assert st == 200

    def dead():
        st, dl = srv.get("/admin/dlq?reason=not_a_participant")
        return st == 200 and dl["count"] >= 1 and dl
    dl = wait_until(dead, 30, "the non-participant's dead letter")
    assert dl["count"] == 1, dl
    d = dl["dead_letters"][0]
    assert d["processor"] == "meeting_poll" and d["topic"] == "meeting-responses", d
    assert "eve@evil.example" not in (d["error"] or ""), d  # addresses are redacted
    # 6. a participant's reply found in another org's mailbox: dead-lettered, changes nothing
    other = dict(kim, user_id="eve", org_id="other-org", date="2026-03-01T10:00:00Z",
                 message_id="<kim-9@example.com>", body_text="1 no, 2 no, 3 no")
    st, _ = srv.publish("meeting-responses", [{"data": other,
                                               "attributes": {"type": "poll_response_email"}}])
    assert st == 200

    def foreign():
        st, dl = srv.get("/admin/dlq?reason=not_organizer_mailbox")
        return st == 200 and dl["count"] >= 1 and dl
    dl = wait_until(foreign, 30, "the other mailbox's dead letter")
    assert dl["count"] == 1 and dl["dead_letters"][0]["processor"] == "meeting_poll", dl

    # the late older email was processed (its message left the queue) and changed nothing
    wait_until(lambda: srv.metric("dr_in_flight_messages") == 0, 30, "nothing in flight")
    assert answers(db, "kim.lee@example.com") == {"a": "yes", "b": "no", "c": "maybe"}
    assert db.execute("SELECT COUNT(*) FROM poll_participants WHERE poll_id = 'p-e2e' "
                      "AND responded_ms IS NOT NULL").fetchone()[0] == 3
    assert db.execute("SELECT COUNT(*) FROM poll_responses WHERE participant_email LIKE "
                      "'%evil%'").fetchone()[0] == 0

    # notifications: 3 answers x (organizer room + meeting room); the old email and the
    # rejected one notify nobody
    def rooms():
        got = notifications(srv)
        return len(got) >= 6 and got
    got = wait_until(rooms, 30, "six notifications")
    time.sleep(0.3)
    got = notifications(srv)
    keys = sorted(r["key"] for r in got)
    assert keys == ["meeting:p-e2e"] * 3 + ["user:u-org"] * 3, keys
    st, dl = srv.get("/admin/dlq")
    assert st == 200 and dl["count"] == 2, dl
    print("ok: poll e2e; publish -> answers stored (ms): " +
          ", ".join(f"{k}={v:.1f}" for k, v in timings.items()))
    for k, v in timings.items():
        assert v < 1000, f"{k}: {v:.0f} ms from publish to stored (target < 1 s)"


def main():
    check_cli()
    check_service()


if __name__ == "__main__":
    main()
