"""Zero, negative, huge and oddly spelled numbers in every numeric query
argument outside the streams (test_sse has those): inside the documented
range the request does what it says, outside it is a 400 JSON error."""

import unittest

from hypothesis import example
from hypothesis import strategies as st

import checks
from common import prop
from harness import JSON_MAX_ITEMS, get, post

spellings = st.one_of(
    st.integers(-10, 2 ** 66).map(str),
    st.sampled_from(['0', '-0', '00', '007', '+1', '-1', '1e3', '0x10', '1.0',
                     '1.5', '', '%20', '1%20', '%201', '%00', '%2B1', 'NaN',
                     '4294967296', '4294967297', '18446744073709551615',
                     '18446744073709551616', '99999999999999999999999']))


def decimal_in(value, lo, hi):
    return value.isdigit() and lo <= int(value) <= hi


class Numbers(unittest.TestCase):

    @prop(1.0, value=st.one_of(spellings,
                               st.integers(1, JSON_MAX_ITEMS).map(str)))
    @example(value=str(JSON_MAX_ITEMS + 1))
    def test_parse_json_items(self, value):
        r = post('/parse/json?items=' + value, b'')
        doc = checks.json_answer(r)
        if decimal_in(value, 1, JSON_MAX_ITEMS):
            self.assertEqual((r.status, doc.get('parsed_items'),
                              doc.get('source')),
                             (200, int(value), 'generated'),
                             checks.where(r, value))
        else:
            self.assertEqual(r.status, 400, checks.where(r, value))

    @prop(1.0, value=st.one_of(spellings, st.integers(1, 100).map(str)))
    def test_rate_limit_test_requests(self, value):
        r = get('/rate-limit-test?requests=' + value)
        doc = checks.json_answer(r)
        if decimal_in(value, 1, 100):
            self.assertEqual((r.status, doc['total_requests'],
                              len(doc['results'])),
                             (200, int(value), int(value)),
                             checks.where(r, value))
            self.assertEqual([x['id'] for x in doc['results']],
                             list(range(1, int(value) + 1)))
        else:
            self.assertEqual(r.status, 400, checks.where(r, value))

    @prop(1.0, value=st.one_of(spellings, st.integers(400, 599).map(str)))
    def test_mock_fail_status(self, value):
        r = get('/external/x?fail=external&fail_status=' + value)
        in_range = decimal_in(value, 400, 599)
        # the simulated failure is the service's answer, not an error shape
        doc = checks.json_answer(r, allow_5xx=range(500, 600),
                                 shape=not in_range)
        if in_range:
            self.assertEqual((r.status, doc.get('status')),
                             (int(value), int(value)),
                             checks.where(r, value))
        else:
            self.assertEqual(r.status, 400, checks.where(r, value))

    @prop(1.0, value=st.one_of(
        spellings.filter(lambda v: v not in ('1', '2', '+1', '%2B1')),
        st.integers(0, 20).map(lambda n: '%dms' % n),
        st.sampled_from(['2001ms', '3s', '1m', '1h', '1d', '1y',
                         '1M', '1w', '0s', '1ms1', 's', 'ms', '1 s'])))
    def test_mock_delay(self, value):
        """delay= is an nginx time (a bare number is seconds) up to the
        location's max_delay (2s here); the answer says delay_ms."""
        r = get('/external/x?delay=' + value.replace(' ', '%20'))
        doc = checks.json_answer(r)
        if r.status == 200:
            self.assertLessEqual(doc['delay_ms'], 2000, checks.where(r, value))
        else:
            self.assertEqual(r.status, 400, checks.where(r, value))
        if decimal_in(value, 0, 2):
            self.assertEqual((r.status, doc.get('delay_ms')),
                             (200, int(value) * 1000), checks.where(r, value))
        if value.endswith('ms') and decimal_in(value[:-2], 0, 2000):
            self.assertEqual((r.status, doc.get('delay_ms')),
                             (200, int(value[:-2])), checks.where(r, value))

    @prop(0.5, value=st.one_of(spellings, st.integers(1, 70000).map(str)))
    def test_mock_big(self, value):
        """fail_mode=big&big=N: a JSON answer of N bytes (+ newline) when
        N is large enough for the JSON around the padding."""
        r = get('/external/x?fail=external&fail_mode=big&big=' + value)
        doc = checks.json_answer(r)
        if decimal_in(value, 1, 16 * 1024 * 1024):
            self.assertEqual(r.status, 200, checks.where(r, value))
            if int(value) >= 64:
                self.assertEqual(len(r.body), int(value) + 1,
                                 checks.where(r, value))
            self.assertEqual(doc['service'], 'external')
        else:
            self.assertEqual(r.status, 400, checks.where(r, value))
