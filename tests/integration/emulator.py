"""A private Pub/Sub emulator for one test, plus a small REST client for it."""
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from drlib import encode, free_port, wait_until

EMU = os.environ.get("DR_TEST_EMULATOR_CMD",
                     "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator")


class Emulator:
    def __init__(self, project="dr-it", port=None):
        self.project = project
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="dr-emu-")
        self.proc = None

    def start(self):
        props = os.path.join(self.dir, "jul.properties")
        with open(props, "w") as f:
            f.write(".level=WARNING\n")
        env = dict(os.environ, JAVA_OPTS="-Xmx512m -Dio.netty.noPreferDirect=true "
                   f"-Dio.netty.allocator.type=unpooled -Djava.util.logging.config.file={props}")
        log = open(os.path.join(self.dir, "emulator.log"), "ab")
        self.proc = subprocess.Popen([EMU, "--host=127.0.0.1", f"--port={self.port}"], env=env,
                                     stdout=log, stderr=log, start_new_session=True)
        wait_until(self._up, 60, "the Pub/Sub emulator")
        return self

    def _up(self):
        try:
            with urllib.request.urlopen(f"http://{self.host}/", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://{self.host}/v1/projects/{self.project}/{path}",
                                     data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                raw = r.read()
                return r.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def topic(self, name):
        st, body = self.call("PUT", f"topics/{name}", {})
        assert st in (200, 409), (st, body)

    def subscription(self, name, topic, **extra):
        body = {"topic": f"projects/{self.project}/topics/{topic}", "ackDeadlineSeconds": 20}
        body.update(extra)
        st, res = self.call("PUT", f"subscriptions/{name}", body)
        assert st in (200, 409), (st, res)

    def publish(self, topic, messages):
        msgs = [encode(m) for m in messages]
        st, res = self.call("POST", f"topics/{topic}:publish", {"messages": msgs})
        assert st == 200, (st, res)
        return res["messageIds"]

    def pull(self, sub, n=100, immediately=True):
        st, res = self.call("POST", f"subscriptions/{sub}:pull",
                            {"maxMessages": n, "returnImmediately": immediately})
        assert st == 200, (st, res)
        return res.get("receivedMessages", [])

    def ack(self, sub, ids):
        if ids:
            st, res = self.call("POST", f"subscriptions/{sub}:acknowledge", {"ackIds": ids})
            assert st == 200, (st, res)
