"""The limiter against its definition (docs/directives.md,
asyncx_limit_zone), measured with the module's own monotonic numbers
(the start/end offsets /rate-limit-test reports), never with the
client's clock: at most `concurrency` calls inside at once, first come
first served, every call admitted, and the zone empty again afterwards.
(The token bucket refills from nginx's cached clock, which may lag the
reported microseconds by a whole event-loop turn on a busy machine, so
a per-window rate bound here would depend on the machine's speed.)"""

import unittest

from hypothesis import strategies as st

import checks
from common import prop
from harness import get

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
