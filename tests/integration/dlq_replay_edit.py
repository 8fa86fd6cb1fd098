"""One dead letter replayed with an edit: its data is base64 as the publish API takes it.

The publish API takes a message's data in the standard base64 alphabet with padding, or the
URL-safe one with or without (as Pub/Sub does); an edit's `data` is held to the same rule, so
whatever can be published can be put back. An edit that gives both `payload` and `data` (each
replaces the message's data) is refused with 400, and the dead letter stays as it was.

Messages on `edit-test` have no route, so they are dead letters, and so is each replayed one
again (a new dead letter with the same message id), which shows the data it was replayed with.
"""
import base64
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from drlib import Server, api_error, call, routed_config, wait_until  # noqa: E402

TOPIC = "edit-test"
PUBLISH = f"/v1/projects/local/topics/{TOPIC}:publish"

# data as sent, and the bytes it stands for (None: not base64 to either)
CASES = [
    ("aGVsbG8=", b"hello"),  # standard, padded
    ("aGVsbG8", b"hello"),  # standard alphabet, unpadded
    ("-_8", b"\xfb\xff"),  # URL-safe, unpadded
    ("-_8=", b"\xfb\xff"),  # URL-safe, padded
    ("+/8", None),  # the standard alphabet needs its padding
    ("aGVs bG8=", None),
]


def dead_letters(srv):
    st, _, body = call(srv, "GET", f"/admin/dlq?topic={TOPIC}&limit=1000")
    assert st == 200, body
    return body["dead_letters"]


def data_of(d):
    return base64.b64decode(d["message"]["data"], validate=True)


def replayed(srv, d):
    """The dead letter that d's message became again once replayed."""
    def again():
        return next((x for x in dead_letters(srv)
                     if x["message_id"] == d["message_id"] and x["id"] != d["id"]), None)
    return wait_until(again, 60, f"dead letter {d['id']} replayed and dead again")


def main():
    data_dir = tempfile.mkdtemp(prefix="dr-it-")
    srv = Server(config=routed_config(data_dir, TOPIC, ["test-events"]),
                 data_dir=data_dir).start()

    # What the publish API takes.
    for i, (text, want) in enumerate(CASES):
        st, body = srv.request("POST", PUBLISH,
                               {"messages": [{"data": text, "attributes": {"case": str(i)}}]})
        assert st == (400 if want is None else 200), (text, st, body)
    published = sum(want is not None for _, want in CASES)
    dls = wait_until(lambda: (lambda x: x if len(x) == published else None)(dead_letters(srv)),
                     60, "every published message dead-lettered")
    for d in dls:
        assert data_of(d) == CASES[int(d["message"]["attributes"]["case"])][1], d

    # An edit's data is held to the same rule.
    d = dls[0]
    for text, want in CASES:
        resp = call(srv, "POST", f"/admin/dlq/{d['id']}/replay", {"data": text})
        if want is None:
            msg = api_error(resp, 400, "INVALID_ARGUMENT")
            assert "data: invalid base64" in msg, (text, msg)
            continue
        assert resp[0] == 200 and resp[2]["replayed"] == d["id"], (text, resp)
        d = replayed(srv, d)
        assert data_of(d) == want, (text, d)

    # payload and data together: refused, nothing replayed.
    resp = call(srv, "POST", f"/admin/dlq/{d['id']}/replay",
                {"payload": {"n": 1}, "data": "aGk="})
    msg = api_error(resp, 400, "INVALID_ARGUMENT")
    assert "payload and data" in msg and "not both" in msg, msg
    assert set(resp[2]) == {"error"}, resp
    st, _, same = call(srv, "GET", f"/admin/dlq/{d['id']}")
    assert st == 200 and same == d, (st, same, d)
    resp = call(srv, "POST", f"/admin/dlq/{d['id']}/replay", {"data": "aGk=", "payload": None})
    assert "payload and data" in api_error(resp, 400, "INVALID_ARGUMENT"), resp

    # The payload alone is taken, as JSON.
    st, _, res = call(srv, "POST", f"/admin/dlq/{d['id']}/replay", {"payload": {"n": 1}})
    assert st == 200, res
    d = replayed(srv, d)
    assert data_of(d) == b'{"n":1}', d
    assert srv.stop() == 0
    print("ok: an edit's data is taken as the publish API takes it; payload and data together "
          "are refused")


if __name__ == "__main__":
    main()
