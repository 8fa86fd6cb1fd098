"""Helpers for data-router's integration tests: run the real binary, talk to it over HTTP."""
import base64
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

BIN = os.environ.get("DR_BIN", "build-test/data-router")
SRC = os.environ.get("DR_SOURCE_DIR", ".")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_until(pred, timeout=120.0, what="condition", interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Server:
    """One data-router process with its own port and data directory."""

    def __init__(self, config=None, env=None, data_dir=None, port=None):
        self.port = port or free_port()
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="dr-it-")
        self.config = config
        self.env = dict(os.environ)
        self.env.update({"PORT": str(self.port), "DR_DATA_DIR": self.data_dir,
                         "DR_LOG_LEVEL": "warn"})
        self.env.update(env or {})
        self.proc = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(self.data_dir, "server.log")

    def start(self, wait=True):
        args = [BIN, "serve"]
        if self.config:
            args += ["--config", self.config]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, env=self.env, stdout=self.log, stderr=self.log)
        if wait:
            wait_until(self.healthy, 60, "the service to answer /healthz")
        return self

    def healthy(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"service exited with {self.proc.returncode}: {self.tail()}")
        try:
            return self.get("/healthz")[0] == 200
        except OSError:
            return False

    def tail(self, n=4000):
        with open(self.log_path, "rb") as f:
            return f.read()[-n:].decode(errors="replace")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise AssertionError("service did not stop within the deadline")
        return self.proc.returncode if self.proc else None

    def request(self, method, path, body=None, headers=None):
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw and raw[:1] in b"{[" else raw)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def publish(self, topic, messages, project="local", headers=None):
        body = {"messages": [encode(m) for m in messages]}
        return self.request("POST", f"/v1/projects/{project}/topics/{topic}:publish", body,
                            headers=headers)

    def processed(self):
        path = os.path.join(self.data_dir, "test-processed.jsonl")
        if not os.path.exists(path):
            return []
        out = []
        with open(path, "rb") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                if not line.endswith(b"\n"):
                    # the last line, cut short by a kill -9 during its write: not a record (its
                    # message was not acknowledged and runs again after the restart)
                    break
                try:
                    out.append(json.loads(line))
                except ValueError as e:
                    raise AssertionError(f"{path} line {n} is not JSON ({e}): {line[:300]!r}")
        return out

    def metric(self, name, labels=""):
        status, text = self.get("/metrics")
        assert status == 200
        want = f"{name}{{{labels}}} "
        for line in text.decode().splitlines():
            if line.startswith(want):
                return float(line[len(want):])
        return 0.0


def routed_config(data_dir, topic, routed):
    """Writes a local-mode config in data_dir with the topics test-events and topic, of which
    those in routed go to the test processor (the others' messages become dead letters,
    no_route); returns its path."""
    path = os.path.join(data_dir, f"config-{len(routed)}.yaml")
    with open(path, "w") as f:
        f.write(f"""
mode: local
topics:
  {topic}: {{type: test}}
  test-events: {{type: test}}
routes:
  - name: test
    match: {{topic: [{", ".join(routed)}]}}
    processors: [test]
""")
    return path


def call(srv, method, path, body=None, timeout=20):
    """(status, headers, json body), with a bound on how long the answer may take."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(srv.url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers, json.loads(e.read() or b"null")


def api_error(resp, code, status):
    """The message of an error answer from call(), after checking its code and status."""
    st, _, body = resp
    assert st == code, resp
    assert body["error"]["code"] == code and body["error"]["status"] == status, body
    return body["error"]["message"]


def replay_job(srv, jid):
    """A dead-letter replay job as GET /admin/dlq/replay/jobs/{id} shows it."""
    st, _, body = call(srv, "GET", f"/admin/dlq/replay/jobs/{jid}")
    assert st == 200, body
    return body


def encode(m):
    """{data: obj|str|bytes, attributes: {}, orderingKey: ""} → Pub/Sub's wire shape."""
    data = m.get("data", "")
    if not isinstance(data, (bytes, str)):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    out = {"data": base64.b64encode(data).decode()}
    if m.get("attributes"):
        out["attributes"] = m["attributes"]
    if m.get("orderingKey"):
        out["orderingKey"] = m["orderingKey"]
    return out
