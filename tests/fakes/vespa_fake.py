#!/usr/bin/env python3
"""A fake Vespa /document/v1 endpoint for tests (Vespa itself cannot run here).

It checks the documented request shapes and answers with the documented response shapes:

  GET    /document/v1/<ns>/<doctype>/docid/<id>  200 {"pathId","id","fields"} | 404 {"pathId","id"}
  POST   same path, body {"fields":{...}}          put: stores (replaces) the document
  PUT    same path, body {"fields":{"f":{"assign":v}}}, ?create=true to upsert
  DELETE same path                                 remove (200 also when absent, as Vespa does)

Anything else gets Vespa's error shape {"pathId","message"} with 400 (bad path, unknown document
type, missing or wrong Content-Type, malformed JSON, a body that is not {"fields":{...}}, bad field
names, bad timeout) or 405. Documents are kept in memory.

Control API (JSON), for tests to steer it:
  POST /_fake/control  {"fail_status": 503|null,     answer every document request with it
                        "fail_next": N, "fail_next_status": 429,   the next N requests only
                        "retry_after": "1"|null,     Retry-After header on those failures
                        "delay_ms": M,               before every document answer
                        "missing_remove_status": 200|404}   DELETE of an absent document
  GET  /_fake/documents  {"documents":[{"id","namespace","doctype","docid","fields"}]}
  GET  /_fake/received   {"requests":[{"method","path","query","content_type","traceparent",
                                       "body","status","docid","doctype"}]}
  POST /_fake/reset      forgets documents, requests and failure settings
  GET  /_fake/stats      {"requests","by_status":{...},"max_active"}

Usage: vespa_fake.py [--port N] [--doctypes email,calendar_event,contact]
Prints "listening <port>" on stdout once it accepts connections.
"""
import argparse
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH_RE = re.compile(r"^/document/v1/([^/]+)/([^/]+)/docid/([^/]+)$")
FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TIMEOUT_RE = re.compile(r"^[0-9]+(\.[0-9]+)?(ks|s|ms|us)?$")
UPDATE_OPS = {"assign"}
MAX_BODY = 64 * 1024 * 1024


class State:
    def __init__(self, doctypes):
        self.lock = threading.Lock()
        self.doctypes = set(doctypes)
        self.reset()

    def reset(self):
        self.docs = {}
        self.received = []
        self.fail_status = None
        self.fail_next = 0
        self.fail_next_status = 429
        self.retry_after = None
        self.delay_ms = 0
        self.missing_remove_status = 200
        self.by_status = {}
        self.active = 0
        self.max_active = 0


class VespaError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Vespa's container does
    server_version = "vespa-fake"
    # Headers and body are separate writes: with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms) and the fake, not the client, would set the pace.
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):  # quiet: tests read the control API instead
        pass

    # ---- plumbing ----

    def _send(self, status, obj, extra=None):
        raw = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def _body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            raise VespaError(400, "chunked request bodies are not supported by this fake")
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise VespaError(413, "request too large")
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def _dispatch(self, method):
        st = self.server.state
        split = urllib.parse.urlsplit(self.path)
        try:
            body = self._body()
        except VespaError as e:
            self.close_connection = True
            self._send(e.status, {"pathId": split.path, "message": e.message})
            return
        if split.path.startswith("/_fake/"):
            self._control(method, split.path, body)
            return
        with st.lock:
            st.active += 1
            st.max_active = max(st.max_active, st.active)
        try:
            self._document(method, split, body)
        finally:
            with st.lock:
                st.active -= 1

    # ---- control API ----

    def _control(self, method, path, body):
        st = self.server.state
        with st.lock:
            if path == "/_fake/control" and method == "POST":
                try:
                    c = json.loads(body or b"{}")
                except ValueError:
                    self._send(400, {"message": "bad control JSON"})
                    return
                for key in ("fail_status", "fail_next", "fail_next_status", "retry_after",
                            "delay_ms", "missing_remove_status"):
                    if key in c:
                        setattr(st, key, c[key])
                self._send(200, {"ok": True})
            elif path == "/_fake/reset" and method == "POST":
                st.reset()
                self._send(200, {"ok": True})
            elif path == "/_fake/documents" and method == "GET":
                docs = [{"id": f"id:{ns}:{dt}::{docid}", "namespace": ns, "doctype": dt,
                         "docid": docid, "fields": fields}
                        for (ns, dt, docid), fields in sorted(st.docs.items())]
                self._send(200, {"documents": docs})
            elif path == "/_fake/received" and method == "GET":
                self._send(200, {"requests": list(st.received)})
            elif path == "/_fake/stats" and method == "GET":
                self._send(200, {"requests": len(st.received), "by_status": st.by_status,
                                 "max_active": st.max_active})
            else:
                self._send(404, {"message": "unknown control path"})

    # ---- /document/v1 ----

    def _document(self, method, split, body):
        st = self.server.state
        rec = {"method": method, "path": split.path,
               "query": dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True)),
               "content_type": self.headers.get("Content-Type"),
               "traceparent": self.headers.get("traceparent"), "body": None,
               "docid": None, "doctype": None}
        try:
            rec["body"] = json.loads(body) if body else None
        except ValueError:
            rec["body"] = {"unparsable": len(body)}
        with st.lock:
            delay = st.delay_ms
        if delay:
            time.sleep(delay / 1000.0)
        extra = {}
        try:
            m = PATH_RE.match(split.path)
            if not m:
                raise VespaError(400, f"Unsupported path {split.path}")
            ns, doctype, docid = (urllib.parse.unquote(p, errors="strict") for p in m.groups())
            rec["docid"], rec["doctype"] = docid, doctype
            pid = split.path
            vid = f"id:{ns}:{doctype}::{docid}"
            with st.lock:
                if st.fail_next > 0:
                    st.fail_next -= 1
                    if st.retry_after is not None:
                        extra["Retry-After"] = str(st.retry_after)
                    raise VespaError(st.fail_next_status,
                                     "Rejecting execution due to overload: too many in flight")
                if st.fail_status:
                    if st.retry_after is not None:
                        extra["Retry-After"] = str(st.retry_after)
                    raise VespaError(st.fail_status, "Service unavailable (fake outage)")
            status, answer = self._apply(method, split, ns, doctype, docid, body, pid, vid)
        except VespaError as e:
            status, answer = e.status, {"pathId": split.path, "message": e.message}
        except UnicodeDecodeError:
            status, answer = 400, {"pathId": split.path, "message": "Invalid percent-encoding"}
        rec["status"] = status
        with st.lock:
            st.received.append(rec)
            st.by_status[str(status)] = st.by_status.get(str(status), 0) + 1
        self._send(status, answer, extra)

    def _json_body(self, body):
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise VespaError(400, f"Unsupported Content-Type '{ctype}', expected application/json")
        try:
            doc = json.loads(body)
        except ValueError as e:
            raise VespaError(400, f"Could not parse JSON: {e.msg}")
        if not isinstance(doc, dict):
            raise VespaError(400, "Expected a JSON object")
        unknown = set(doc) - {"fields", "condition", "create"}
        if unknown:
            raise VespaError(400, f"Unexpected key(s) in document JSON: {sorted(unknown)}")
        fields = doc.get("fields")
        if not isinstance(fields, dict):
            raise VespaError(400, "Missing or invalid 'fields' object")
        for name in fields:
            if not FIELD_RE.match(name):
                raise VespaError(400, f"No field '{name}' in the structure of the document type")
        return doc, fields

    def _apply(self, method, split, ns, doctype, docid, body, pid, vid):
        st = self.server.state
        q = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        if "timeout" in q and not TIMEOUT_RE.match(q["timeout"]):
            raise VespaError(400, f"Invalid timeout '{q['timeout']}'")
        if doctype not in st.doctypes:
            raise VespaError(400, f"Document type {doctype} does not exist")
        key = (ns, doctype, docid)
        if method == "GET":
            with st.lock:
                fields = st.docs.get(key)
            if fields is None:
                return 404, {"pathId": pid, "id": vid}
            return 200, {"pathId": pid, "id": vid, "fields": fields}
        if method == "POST":
            _, fields = self._json_body(body)
            with st.lock:
                st.docs[key] = dict(fields)
            return 200, {"pathId": pid, "id": vid}
        if method == "PUT":
            doc, fields = self._json_body(body)
            create = q.get("create") == "true" or doc.get("create") is True
            for name, upd in fields.items():
                if not isinstance(upd, dict) or len(upd) != 1 or next(iter(upd)) not in UPDATE_OPS:
                    raise VespaError(400, f"Field '{name}': expected an update such as "
                                          "{\"assign\": value}")
            with st.lock:
                cur = st.docs.get(key)
                if cur is None and not create:
                    return 200, {"pathId": pid, "id": vid, "message": "document not found"}
                cur = dict(cur or {})
                for name, upd in fields.items():
                    cur[name] = upd["assign"]
                st.docs[key] = cur
            return 200, {"pathId": pid, "id": vid}
        if method == "DELETE":
            if body:
                raise VespaError(400, "DELETE takes no body")
            with st.lock:
                existed = st.docs.pop(key, None) is not None
                missing = st.missing_remove_status
            if not existed and missing != 200:
                return missing, {"pathId": pid, "id": vid, "message": "document not found"}
            return 200, {"pathId": pid, "id": vid}
        raise VespaError(405, f"Method {method} not supported")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--doctypes", default="email,calendar_event,contact")
    args = ap.parse_args()
    ThreadingHTTPServer.request_queue_size = 256
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.state = State(args.doctypes.split(","))
    print(f"listening {srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
