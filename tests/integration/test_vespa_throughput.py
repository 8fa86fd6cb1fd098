"""Throughput of the vespa processor against the fake, with 1, 4 and 16 workers.

Each worker blocks on its own request while the processor's I/O thread keeps them all on the wire,
so with a slow Vespa (the fake answers after delay_ms) throughput grows with the workers until
max_in_flight caps it. The numbers are printed, not asserted (they depend on the machine); what is
asserted: every operation arrives, and the fake never sees more than max_in_flight at once.
"""
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from drlib import Server, wait_until  # noqa: E402
from test_vespa import Fake, in_flight, op, publish  # noqa: E402

MAX_IN_FLIGHT = 8

CONFIG = """
mode: local
workers: {workers}
log_level: warn
topics:
  vespa-index: {{type: index_operation}}
breakers:
  vespa: {{failure_threshold: 3, open_for: 1s}}
processors:
  vespa: {{endpoint: "{endpoint}", max_in_flight: {max_in_flight}, timeout: 10s}}
routes:
  - name: vespa
    match: {{topic: [vespa-index]}}
    processors: [vespa]
  - name: default
    default: true
    processors: [log]
"""


def run(workers, count, delay_ms):
    fake = Fake()
    srv = None
    try:
        fake.control(delay_ms=delay_ms)
        cfg = os.path.join(tempfile.mkdtemp(prefix="dr-vespa-tp-"), "vespa.yaml")
        with open(cfg, "w") as f:
            f.write(CONFIG.format(workers=workers, endpoint=fake.url,
                                  max_in_flight=MAX_IN_FLIGHT))
        srv = Server(config=cfg).start()
        msgs = [op("put", "email", f"u{i % 7}:t{i}", {"subject": f"s{i}", "n": i})
                for i in range(count)]
        t0 = time.monotonic()
        publish(srv, msgs)
        wait_until(lambda: fake._call("GET", "/_fake/stats")["requests"] >= count, 300,
                   "every operation at the fake", interval=0.005)
        elapsed = time.monotonic() - t0
        wait_until(lambda: in_flight(srv) == 0, 60, "nothing in flight")
        stats = fake._call("GET", "/_fake/stats")
        assert stats["by_status"] == {"200": count}, stats
        assert len(fake.documents()) == count
        assert stats["max_active"] <= MAX_IN_FLIGHT, stats
        rc = srv.stop()
        srv = None
        assert rc == 0, rc
        return count / elapsed, stats["max_active"]
    finally:
        if srv:
            srv.stop()
        fake.stop()


def main():
    os.environ.pop("DR_VESPA_URL", None)
    print(f"{'workers':>7} {'delay':>6} {'ops':>5} {'ops/s':>8} {'max at fake':>11}")
    for workers, count, delay in ((1, 100, 20), (4, 400, 20), (16, 800, 20), (16, 2000, 0)):
        rate, peak = run(workers, count, delay)
        print(f"{workers:>7} {delay:>4}ms {count:>5} {rate:>8.0f} {peak:>11}")


if __name__ == "__main__":
    main()
