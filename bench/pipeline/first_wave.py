#!/usr/bin/env python3
"""One wave of N concurrent requests, one per connection, against a fresh
worker (bench/pipeline/first_wave.sh starts it): each connection is opened,
sends its request and reads its answer; the latency of each is taken from
its send to its answer's last byte (time.monotonic_ns).  The worker's CPU
(/proc/<pid>/schedstat, ns) and minor page faults (/proc/<pid>/stat) are
read before the first connection and after the last answer, and also
--start-at seconds after the requests were sent (default 0.25: the demo's
first mock answers at 0.3 s), for the wave's start alone: the accepts,
the reads and each order's start up to its first timers.

  first_wave.py --port 20500 --path /orders/process --worker PID -n 1000

Prints one line:
  WAVE n=1000 ok=1000 p50_ms=.. p99_ms=.. max_ms=.. worker_cpu_ms=..
       worker_minflt=.. start_cpu_ms=.. start_minflt=..
"""

import argparse
import asyncio
import sys
import time

BODY = (b'{"order_id": 1001, "user_id": 42, '
        b'"items": [{"sku": "BOOK-1", "qty": 1}]}')


def worker_cpu_ns(pid):
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def worker_minflt(pid):
    with open(f"/proc/{pid}/stat") as f:
        # after "pid (comm)": state is field 3, minflt field 10
        return int(f.read().rsplit(")", 1)[1].split()[7])


async def one(port, request, opened, go, latencies, statuses):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened.release()
    await go.wait()
    start = time.monotonic_ns()
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    latencies.append((time.monotonic_ns() - start) / 1e6)
    statuses.append(int(head.split(b" ", 2)[1]))
    writer.close()


async def main(args):
    request = (f"POST {args.path} HTTP/1.1\r\nHost: bench\r\n"
               f"Content-Type: application/json\r\n"
               f"Content-Length: {len(BODY)}\r\n\r\n").encode() + BODY
    opened = asyncio.Semaphore(0)
    go = asyncio.Event()
    latencies, statuses = [], []

    cpu0 = worker_cpu_ns(args.worker)
    flt0 = worker_minflt(args.worker)

    tasks = [asyncio.create_task(one(args.port, request, opened, go,
                                     latencies, statuses))
             for _ in range(args.n)]
    # every connection open (accepted by the kernel) before any request:
    # the wave is the requests, not the connects
    for _ in range(args.n):
        await opened.acquire()
    go.set()
    await asyncio.sleep(args.start_at)
    cpu_start = worker_cpu_ns(args.worker)
    flt_start = worker_minflt(args.worker)
    await asyncio.wait_for(asyncio.gather(*tasks), args.timeout)
    await asyncio.sleep(0.5)

    cpu1 = worker_cpu_ns(args.worker)
    flt1 = worker_minflt(args.worker)

    latencies.sort()
    n = len(latencies)

    def pct(p):
        return latencies[min(n - 1, int(n * p / 100))]

    print(f"WAVE n={args.n} ok={statuses.count(200)} "
          f"p50_ms={pct(50):.1f} p99_ms={pct(99):.1f} "
          f"max_ms={latencies[-1]:.1f} "
          f"worker_cpu_ms={(cpu1 - cpu0) / 1e6:.1f} "
          f"worker_minflt={flt1 - flt0} "
          f"start_cpu_ms={(cpu_start - cpu0) / 1e6:.1f} "
          f"start_minflt={flt_start - flt0}")
    return 0 if statuses.count(200) == args.n else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/orders/process")
    ap.add_argument("--worker", type=int, required=True)
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--start-at", type=float, default=0.25)
    sys.exit(asyncio.run(main(ap.parse_args())))
