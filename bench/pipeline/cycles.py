#!/usr/bin/python3
# steady.sh's window: at lock-step, C orders start together each cycle,
# so a window of a fixed time holds 4 or 5 waves (+-20 % at 8 s).  This
# one runs from the first poll (every 50 ms) after the count reaches a
# multiple of C to the first poll after CYCLES more waves: whole cycles,
# the same phase at both ends.  Prints "orders cpu_ns".
#   cycles.py PORT WORKER_PID C CYCLES RUN
import http.client
import json
import sys
import time

port, pid, c, cycles, run = (int(sys.argv[1]), sys.argv[2], int(sys.argv[3]),
                             int(sys.argv[4]), sys.argv[5])
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def sample():
    conn.request("GET", "/asyncx/status")
    p = json.loads(conn.getresponse().read())["pipelines"]
    n = p["mock"]["total"] if run == "calib" else p["total"]
    with open("/proc/%s/schedstat" % pid) as f:
        return n, int(f.read().split()[0])


def wait_for(target):
    while True:
        n, t = sample()
        if n >= target:
            return n, t
        if time.monotonic() > deadline:
            # the client stopped first: no whole window
            print(0, 0)
            sys.exit(0)
        time.sleep(0.05)


deadline = time.monotonic() + 3 * cycles + 6


n, _ = sample()
first = (n // c + 1) * c
n0, t0 = wait_for(first)
# the status answer costs the worker too: few polls inside the window
# (a cycle lasts at least the orders' 1.9 s)
time.sleep(cycles * 1.85)
n1, t1 = wait_for(first + cycles * c)
print(n1 - n0, t1 - t0)
