#!/usr/bin/env python3
"""Times a consumer draining a backlog, from its Prometheus counter (used by bench/run drain).

    drain_watch.py NAME METRICS_URL SERIES N CONSUMER_PID EMULATOR_PID

Polls METRICS_URL every 10 ms until the sample SERIES reaches N or 300 s pass. The rate runs from
the first poll that saw a message to the poll that saw N, so neither consumer's start-up is
counted; mid_rate is the rate between 10 % and 90 % of N. Prints comment lines and one RESULT line
of key=value pairs.
"""
import os
import sys
import time
import urllib.request

HZ = os.sysconf("SC_CLK_TCK")


def count(url, series):
    """The series' value, 0 if absent, None if the consumer did not answer."""
    try:
        body = urllib.request.urlopen(url, timeout=2).read().decode()
    except OSError:
        return None
    for line in body.splitlines():
        if line.startswith(series + " "):
            return int(float(line.split()[-1]))
    return 0


def ticks(pid):
    """utime + stime of a process, all threads, in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return 0
    p = s[s.rindex(")") + 2 :].split()
    return int(p[11]) + int(p[12])


def main():
    name, url, series, n, cpid, epid = sys.argv[1:7]
    n = int(n)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    start = time.monotonic()
    deadline = start + 300
    t1 = None
    c = c1 = e0 = k0 = 0
    samples = []  # (time, count) from the first message on
    misses = 0  # polls the consumer did not answer
    while time.monotonic() < deadline:
        got = count(url, series)
        now = time.monotonic()
        if got is None:
            misses += 1
            time.sleep(0.01)
            continue
        c = got
        if t1 is None and c > 0:
            t1, c1, e0, k0 = now, c, ticks(epid), ticks(cpid)
        if t1 is not None:
            samples.append((now, c))
        if c >= n:
            break
        time.sleep(0.01)
    t2, e1, k1 = time.monotonic(), ticks(epid), ticks(cpid)
    span = t2 - t1 if t1 is not None else 0.0
    done = c - c1
    rate = done / span if span > 0 else 0.0
    emu_cores = (e1 - e0) / HZ / span if span > 0 else 0.0
    cores = (k1 - k0) / HZ / span if span > 0 else 0.0
    emu_us = (e1 - e0) / HZ * 1e6 / done if done > 0 else 0.0
    us = (k1 - k0) / HZ * 1e6 / done if done > 0 else 0.0
    first = t1 - start if t1 is not None else -1
    # the middle of the drain, 10 % to 90 % of the backlog: neither consumer's ramp-up (nor the
    # emulator's compiling its pull path) nor the tail
    mid = 0.0
    lo = next((x for x in samples if x[1] >= n * 0.1), None)
    hi = next((x for x in samples if x[1] >= n * 0.9), None)
    if lo and hi and hi[0] > lo[0]:
        mid = (hi[1] - lo[1]) / (hi[0] - lo[0])
    # the longest time the count stood still before the end: a stall of the consumer (or of
    # the emulator)
    gap, since = 0.0, None
    for (ta, ca), (tb, cb) in zip(samples, samples[1:]):
        since = ta if since is None else since
        if cb != ca:
            gap, since = max(gap, tb - since), None
    print(f"# {name}: {c} of {n} consumed; first message {first:.2f} s after the consumer "
          f"started, then {rate:.0f} msg/s ({mid:.0f} msg/s from 10 % to 90 %); emulator {emu_cores:.2f} cores ({emu_us:.0f} us/msg), "
          f"consumer {cores:.2f} cores ({us:.0f} us/msg); longest stand-still {gap:.2f} s, "
          f"{misses} unanswered polls")
    print(f"RESULT mode=drain messages={n} consumed={c} complete={int(c >= n)} "
          f"e2e_rate={rate:.0f} mid_rate={mid:.0f} emu_cores={emu_cores:.2f} emu_us_per_msg={emu_us:.0f} "
          f"cpu_cores={cores:.2f} cpu_us_per_msg={us:.0f} load1={load} still_s={gap:.2f} misses={misses}")
    return 0 if c >= n else 1


if __name__ == "__main__":
    sys.exit(main())
