"""The limiter against its definition (docs/directives.md,
asyncx_limit_zone), measured with the module's own monotonic numbers
(the start/end offsets /rate-limit-test reports), never with the
client's clock: at most `concurrency` calls inside at once, first come
first served, every call admitted, and the zone empty again afterwards.
(The token bucket refills from nginx's cached clock, which may lag the
reported microseconds by a whole event-loop turn on a busy machine, so
a per-window rate bound here would depend on the machine's speed.)"""

import socket
import time
import unittest

from hypothesis import strategies as st

import checks
from common import prop
from harness import PORT, get, request

RATE, CONCURRENCY = 100, 3                # zone "tight" in harness.py
SLACK_MS = 1.0                            # timer and clock granularity


class Limit(unittest.TestCase):

    @prop(0.3, n=st.integers(1, 40))
    def test_tight_zone(self, n):
        r = get('/tight-test?requests=%d' % n)
        doc = checks.json_answer(r, statuses=(200,))
        res = doc['results']
        self.assertEqual([x['status'] for x in res], [200] * n, doc)
        self.assertEqual((doc['max_concurrent'], doc['max_per_second']),
                         (CONCURRENCY, RATE))
        spans = [(x['start_ms'], x['end_ms']) for x in res]
        # concurrency: calls inside at the same moment
        for s, _ in spans:
            inside = sum(1 for a, b in spans if a <= s < b - SLACK_MS)
            self.assertLessEqual(inside, CONCURRENCY,
                                 'more than %d inside at %.3f ms: %r'
                                 % (CONCURRENCY, s, spans))
        # first come, first served: the calls were issued in id order
        order = [x['id'] for x in sorted(res, key=lambda x: x['start_ms'])]
        self.assertEqual(order, sorted(order), 'admitted out of order: %r'
                         % [(x['id'], x['start_ms']) for x in res])
        st_ = checks.json_answer(get('/tight-status'), statuses=(200,))
        self.assertEqual((st_['concurrent']['current'], st_['waiting']),
                         (0, 0), st_)

    @prop(0.2, keys=st.lists(st.binary(min_size=1, max_size=40).map(
        lambda b: bytes(c for c in b if c not in b'\r\n\x00') or b'k'),
        min_size=1, max_size=4))
    def test_full_zone_logs_keys_safely(self, keys):
        """A zone full of keys in use refuses a new key with 503 and a
        documented alert; the key, chosen by the client, reaches the log
        escaped: valid UTF-8, no control bytes (no terminal escapes)."""
        held = []
        z = checks.json_answer(get('/asyncx/status'))['limit_zones']['keyed']
        before = z['admitted']
        try:
            for i in range(150):         # more keys than 32k can hold
                s = socket.create_connection(('127.0.0.1', PORT))
                s.sendall(b'GET /keyed/hold?delay=1s HTTP/1.1\r\nHost: x\r\n'
                          b'X-Props-Key: hold-%d\r\n\r\n' % i)
                held.append(s)
            # every held request decided: admitted (answers in 1 s) or
            # refused at once (the zone is full)
            refused = set()
            deadline = time.monotonic() + 20
            while True:
                for i, s in enumerate(held):
                    if i in refused:
                        continue
                    try:
                        if s.recv(64, socket.MSG_DONTWAIT | socket.MSG_PEEK):
                            refused.add(i)
                    except BlockingIOError:
                        pass
                z = checks.json_answer(get('/asyncx/status'))[
                    'limit_zones']['keyed']
                if z['admitted'] - before + len(refused) >= len(held):
                    break
                assert time.monotonic() < deadline, (z, len(refused))
                time.sleep(0.02)
            assert refused, 'zone "keyed" never filled: %r' % z
            for k in keys:
                r = request('GET', '/keyed/call',
                            headers=[(b'X-Props-Key', k + b'\xff\x1b[31m')])
                checks.json_answer(r, statuses=(503,), allow_5xx=(503,))
        finally:
            for s in held:
                s.close()
        deadline = time.monotonic() + 20  # the held calls end (1 s timers)
        while checks.json_answer(get('/asyncx/status'))['limit_zones'][
                'keyed']['concurrent']['current']:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        checks.log_clean('after filling zone "keyed"',
                         expected_alert=rb'zone "keyed" is full')
