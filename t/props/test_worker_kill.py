"""kill -9 of every worker with work in flight (a stream its client does
not read, a pipeline waiting on its calls, a held limiter slot).  Once the
new workers answer, the in-flight counters of /asyncx/status return to
the truth (issue 11), and the limiter's status stops counting the dead
workers' requests.  Runs last: the file name sorts after the others."""

import os
import signal
import socket
import time
import unittest

import checks
from harness import PORT, SERVER, get
from test_model import IDLE_SECONDS, counters, status

# what issue 11 names: pipelines.active, mock.active, streams.active,
# and the pools' queued/running
ISSUE_COUNTERS = ['pipelines.active', 'mock.active', 'streams.active',
                  'pools.props_io.queued', 'pools.props_io.running',
                  'pools.props_cpu.queued', 'pools.props_cpu.running']
LIMIT_COUNTERS = ['limit.current', 'limit.waiting']


def send(raw):
    s = socket.create_connection(('127.0.0.1', PORT))
    s.sendall(raw)
    return s


def wait_for(cond, what, keys, seconds=IDLE_SECONDS):
    deadline = time.monotonic() + seconds
    while True:
        got = counters(status())
        if cond(got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError('%s: %r' % (what, {k: got[k] for k in keys}))
        time.sleep(0.05)


def kill_workers_with_work_in_flight():
    """returns once the new workers answer"""
    checks.log_clean('before the kill')
    held = [
        send(b'GET /stream/search?keyword=python&data_size=200000&'
             b'batch_size=10 HTTP/1.1\r\nHost: x\r\n\r\n'),
        send(b'POST /orders/slow?delay=1500ms HTTP/1.1\r\nHost: x\r\n'
             b'Content-Length: 0\r\n\r\n'),
        send(b'GET /external/hold?delay=1500ms HTTP/1.1\r\nHost: x\r\n\r\n'),
    ]
    # everything in flight (timers of 1.5 s, a stream nobody reads)
    wait_for(lambda c: c['streams.active'] >= 1 and c['pipelines.active'] >= 1
             and c['mock.active'] >= 4 and c['limit.current'] >= 1,
             'work did not start', ISSUE_COUNTERS + LIMIT_COUNTERS)
    for pid in SERVER.worker_pids():
        os.kill(pid, signal.SIGKILL)
    for s in held:
        s.close()
    deadline = time.monotonic() + IDLE_SECONDS
    while True:
        try:
            get('/asyncx/status', timeout=2)
            return
        except (AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class WorkerKill(unittest.TestCase):

    def tearDown(self):
        # the master's "exited on signal 9" alerts are expected here
        log = SERVER.new_log()
        self.assertIn(b'exited on signal 9', log)

    def test_counters_after_kill_9(self):
        """pipelines/mock/streams active and the pools' queued/running
        return to 0 (nothing runs any more)"""
        kill_workers_with_work_in_flight()
        got = wait_for(lambda c: not any(c[k] for k in ISSUE_COUNTERS),
                       'in-flight counters stay above 0 after kill -9 of '
                       'the workers that held the work', ISSUE_COUNTERS)
        self.assertEqual([got[k] for k in ISSUE_COUNTERS],
                         [0] * len(ISSUE_COUNTERS))

    def test_limiter_status_after_kill_9(self):
        """the zone's concurrent.current and waiting stop counting requests
        of dead workers, also while no request needs their slot"""
        kill_workers_with_work_in_flight()
        r = get('/external/after-kill')
        checks.json_answer(r, statuses=(200,))
        got = wait_for(lambda c: not any(c[k] for k in LIMIT_COUNTERS),
                       'the limiter status counts requests of killed '
                       'workers', LIMIT_COUNTERS)
        self.assertEqual([got[k] for k in LIMIT_COUNTERS],
                         [0] * len(LIMIT_COUNTERS))
