"""Configuration errors from the environment or the file exit 2 with one line on stderr that
names the variable or the key, and the reason; a service dependency that is merely down is not
one.

  - REDIS_URL that is not a Redis URL, or one with a bad port (its password never printed);
  - GOOGLE_APPLICATION_CREDENTIALS in pubsub mode (no emulator): a missing file, a file that is
    not JSON, a JSON file that is not a service-account key (neither the file's contents nor the
    key printed);
  - a configuration file with a key that is not one (store.uri for store.url), or a value it
    cannot take: exit 2 with one line naming the file, the key and the reason;
  - REDIS_URL of a Redis server that is down at start-up: the service starts, serves, and joins
    the bus once a Redis server comes up on that port (dr_realtime_bus_state 2).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from drlib import BIN, Server, free_port, wait_until  # noqa: E402

SECRET = "s3cret-Do-Not-Print"


def serve(env_extra, drop=()):
    env = dict(os.environ, PORT=str(free_port()), DR_DATA_DIR=tempfile.mkdtemp(prefix="dr-cfg-"))
    for k in drop:
        env.pop(k, None)
    env.update(env_extra)
    return subprocess.run([BIN, "serve"], capture_output=True, text=True, timeout=30, env=env)


def expect_config_error(env_extra, var, drop=()):
    p = serve(env_extra, drop)
    assert p.returncode == 2, (env_extra, p.returncode, p.stderr)
    assert p.stderr.count("\n") == 1 and not p.stdout, (env_extra, p.stderr, p.stdout)
    assert "config error" in p.stderr and var in p.stderr, (env_extra, p.stderr)
    assert SECRET not in p.stderr, p.stderr
    return p.stderr.strip()


def check_redis_url():
    for url in ("garbage", f"redis://user:{SECRET}@127.0.0.1:99999", "http://127.0.0.1:6379"):
        line = expect_config_error({"REDIS_URL": url}, "REDIS_URL")
        assert "redis.url" in line, line
        print(f"ok: REDIS_URL={url.replace(SECRET, '***')!r}: {line}")


def check_credentials():
    tmp = tempfile.mkdtemp(prefix="dr-cfg-creds-")
    not_json = os.path.join(tmp, "not-json")
    with open(not_json, "w") as f:
        f.write(f"-----BEGIN PRIVATE KEY-----\n{SECRET}\n")
    not_sa = os.path.join(tmp, "not-sa.json")
    with open(not_sa, "w") as f:
        f.write('{"type":"authorized_user","client_id":"x","client_secret":"%s"}' % SECRET)
    bad_key = os.path.join(tmp, "bad-key.json")
    with open(bad_key, "w") as f:
        f.write('{"type":"service_account","client_email":"a@p.iam.gserviceaccount.com",'
                '"private_key_id":"k1","private_key":"%s"}' % SECRET)
    pubsub = {"DR_MODE": "pubsub", "PUBSUB_PROJECT_ID": "p-cfg"}
    for path in ("/nonexistent", not_json, not_sa, bad_key):
        line = expect_config_error(dict(pubsub, GOOGLE_APPLICATION_CREDENTIALS=path),
                                   "GOOGLE_APPLICATION_CREDENTIALS", drop=("PUBSUB_EMULATOR_HOST",))
        print(f"ok: GOOGLE_APPLICATION_CREDENTIALS={os.path.basename(path)}: {line}")
    shutil.rmtree(tmp)


def serve_file(text):
    tmp = tempfile.mkdtemp(prefix="dr-cfg-file-")
    path = os.path.join(tmp, "bad.yaml")
    with open(path, "w") as f:
        f.write(text)
    env = dict(os.environ, PORT=str(free_port()), DR_DATA_DIR=tmp)
    for k in ("DATABASE_URL", "REDIS_URL", "DR_MODE"):
        env.pop(k, None)
    p = subprocess.run([BIN, "serve", "--config", path], capture_output=True, text=True,
                       timeout=30, env=env)
    shutil.rmtree(tmp)
    return p, path


FILE_ERRORS = [
    # a misspelt key stops the start instead of leaving the default in force
    ("store: {uri: 'postgresql://nowhere/db'}\n", "store.uri: unknown key"),
    ("dedup: {windw: 1h}\n", "dedup.windw: unknown key"),
    ("processors: {email: {progress_interval: 5}}\n",
     "processors.email.progress_interval: unknown key"),
    # "nan" overflowed the dedup cut-off (now - window) and crashed the first publish
    ("dedup: {window: nan}\n", "dedup.window: expected a duration such as 250ms, 30s, 5m, 24h, "
     "not 'nan'"),
    ("dedup: {window: 36501d}\n", "dedup.window: out of range: must be from 0ms to 36500d"),
    # 10 ms, or 10 s?
    ("http: {request_timeout: 10}\n",
     "http.request_timeout: give a unit: ms, s, m, h or d, such as 10s (not 10)"),
]


def check_file_errors():
    for text, reason in FILE_ERRORS:
        p, path = serve_file(text)
        assert p.returncode == 2, (text, p.returncode, p.stderr)
        assert p.stderr.count("\n") == 1 and not p.stdout, (text, p.stderr, p.stdout)
        assert f"config error: {path}: {reason}" in p.stderr, (text, p.stderr)
        print(f"ok: {text.strip()!r}: {p.stderr.strip()}")


def check_redis_down_at_start():
    port = free_port()
    srv = Server(env={"REDIS_URL": f"redis://127.0.0.1:{port}"}).start()
    redis = None
    try:
        time.sleep(1)
        assert srv.proc.poll() is None, srv.tail()
        assert srv.get("/healthz")[0] == 200
        assert srv.metric("dr_realtime_bus_state") != 2
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: srv.metric("dr_realtime_bus_state") == 2, 60,
                   "the bus to connect once Redis is up")
        print("ok: Redis down at start-up: the service ran and connected when it came up")
    except BaseException:
        print(srv.tail(), file=sys.stderr)
        raise
    finally:
        rc = srv.stop()
        if redis:
            redis.terminate()
            redis.wait(10)
    assert rc == 0, f"exit code {rc}"


def main():
    check_file_errors()
    check_redis_url()
    check_credentials()
    check_redis_down_at_start()
    print("ok: configuration exit codes")


if __name__ == "__main__":
    main()
