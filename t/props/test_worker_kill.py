"""kill -9 of every worker with work in flight (a stream its client does
not read, a pipeline waiting on its calls, a held limiter slot): once
the new workers answer, the in-flight counters of /asyncx/status return
to the truth (issue 11), and the limiter gives the dead workers' slots
back (docs/directives.md, "Fairness and dead workers").  Runs last: the
file name sorts after the other suites."""

import os
import signal
import socket
import time
import unittest

import checks
from harness import PORT, SERVER, get
from test_model import IDLE_SECONDS, IN_FLIGHT, counters, status


def send(raw):
    s = socket.create_connection(('127.0.0.1', PORT))
    s.sendall(raw)
    return s


def wait_for(cond, what, seconds=IDLE_SECONDS):
    deadline = time.monotonic() + seconds
    while True:
        got = counters(status())
        if cond(got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError('%s: %r' % (what, got))
        time.sleep(0.05)


class WorkerKill(unittest.TestCase):

    def test_counters_after_kill_9(self):
        checks.log_clean('before the kill')
        held = [
            send(b'GET /stream/search?keyword=python&data_size=200000&'
                 b'batch_size=10 HTTP/1.1\r\nHost: x\r\n\r\n'),
            send(b'POST /orders/process?delay=1500ms HTTP/1.1\r\nHost: x\r\n'
                 b'Content-Length: 0\r\n\r\n'),
            send(b'GET /external/hold?delay=1500ms HTTP/1.1\r\nHost: x\r\n'
                 b'\r\n'),
        ]
        # everything is in flight (timers of 1.5 s, a stream nobody reads)
        wait_for(lambda c: c['streams.active'] >= 1
                 and c['pipelines.active'] >= 1 and c['mock.active'] >= 4
                 and c['limit.current'] >= 1, 'work did not start')
        for pid in SERVER.worker_pids():
            os.kill(pid, signal.SIGKILL)
        for s in held:
            s.close()
        deadline = time.monotonic() + IDLE_SECONDS
        while True:
            try:
                get('/asyncx/status', timeout=2)
                break
            except (AssertionError, OSError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        # a request that needs a slot reclaims the dead workers' ones
        r = get('/external/after-kill')
        checks.json_answer(r, statuses=(200,))
        got = wait_for(lambda c: not any(c[k] for k in IN_FLIGHT),
                       'in-flight counters stay above 0 after kill -9 of '
                       'the workers that held the work')
        self.assertEqual([got[k] for k in IN_FLIGHT], [0] * len(IN_FLIGHT))
        # the master's "exited on signal 9" lines are expected here
        log = SERVER.new_log()
        self.assertIn(b'exited on signal 9', log)
