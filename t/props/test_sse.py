"""The three SSE streams against reference.sse_stream() (the data set and
the id scheme of docs/directives.md), and resuming: a stream resumed with
Last-Event-ID L sends exactly the events of the uninterrupted stream
whose id is greater than L."""

import unittest

from hypothesis import example
from hypothesis import strategies as st

import checks
from common import prop
from harness import SSE_MAX_DATA_SIZE, get, request
from reference import VOCAB, approx_avgs, sse_stream, strip_timing

keywords = st.one_of(
    st.sampled_from(['python', 'record', 'a', 'record 1', ': ', 'xyz'] +
                    VOCAB[:8]),
    st.text(st.sampled_from('abcdeilmnoprstuy 0123:'), min_size=1,
            max_size=5))


@st.composite
def streams(draw):
    mode = draw(st.sampled_from(['search', 'transform', 'aggregate']))
    data_size = draw(st.integers(1, 2500))
    batch_size = draw(st.one_of(st.integers(1, 50),
                                st.integers(1, data_size + 10)))
    keyword = draw(keywords) if mode == 'search' else None
    fail_at = (draw(st.none() | st.integers(1, data_size - 1))
               if data_size > 1 else None)
    return mode, data_size, batch_size, keyword, fail_at


def target(mode, data_size, batch_size, keyword, fail_at):
    q = '/stream/%s?data_size=%d&batch_size=%d' % (mode, data_size,
                                                    batch_size)
    if keyword is not None:
        q += '&keyword=' + ''.join(
            c if c.isalnum() else '%%%02X' % ord(c) for c in keyword)
    if fail_at is not None:
        q += '&fail_at=%d' % fail_at
    return q


def fetch(q, last_id=None):
    headers = [] if last_id is None else [('Last-Event-ID', str(last_id))]
    return get(q, headers=headers)


def same_events(got, want, what):
    """equal event lists, or an error naming the first difference"""
    got, want = normal(got), normal(want)
    if got == want:
        return
    i = next((k for k, (g, w) in enumerate(zip(got, want)) if g != w),
             min(len(got), len(want)))
    raise AssertionError(
        '%s: %d events, expected %d; first difference at event %d:\n'
        '  got      %r\n  expected %r\n  (previous: %r)'
        % (what, len(got), len(want), i, got[i] if i < len(got) else None,
           want[i] if i < len(want) else None,
           want[i - 1] if 0 < i <= len(want) else None))


def normal(events):
    """events without timing fields, the reference's averages as
    reference.Avg (compares like the module's two decimals)"""
    return [(i, approx_avgs(d)) for i, d in strip_timing(events)]


class SSE(unittest.TestCase):

    @prop(1.0, s=streams())
    @example(s=('search', 10000, 1000, 'python', None))
    def test_stream_like_reference(self, s):
        """Every event of the uninterrupted stream, in order, as the
        reference computes it."""
        mode, data_size, batch_size, keyword, fail_at = s
        want = sse_stream(mode, data_size, batch_size,
                          keyword.encode() if keyword else None, fail_at)
        r = fetch(target(*s))
        got = checks.sse_events(r)
        same_events(got, want, target(*s))
        last = got[-1][1]
        if last['type'] == 'complete':
            self.assertRegex(last['total_time'], r'^\d+\.\d\d초$')
            self.assertIsInstance(last['total_time_ms'], (int, float))

    @prop(1.5, s=streams(), pick=st.integers(0, 10 ** 6))
    @example(s=('search', 10000, 1000, 'python', None), pick=-1)
    @example(s=('search', 30, 10, 'record', None), pick=9)   # id 19
    def test_resume_at_every_event(self, s, pick):
        """Resuming after any event of the stream (the id a browser would
        send back) gives exactly the events after it; after "complete",
        204."""
        mode, data_size, batch_size, keyword, fail_at = s
        full = sse_stream(mode, data_size, batch_size,
                          keyword.encode() if keyword else None, fail_at)
        ids = [i for i, _ in full if i is not None]
        if not ids:
            return                       # failed before its first event
        last_id = ids[pick % len(ids)] if pick >= 0 else ids[-2]
        r = fetch(target(*s), last_id)
        if last_id == 2 * data_size + 1:
            self.assertEqual(r.status, 204, checks.where(r, 'after complete'))
            return
        want = [(i, d) for i, d in full if i is None or i > last_id]
        same_events(checks.sse_events(r), want,
                    '%s resumed after %d' % (target(*s), last_id))

    @prop(1.0, s=streams(), last_id=st.integers(0, 6000))
    def test_resume_at_any_position(self, s, last_id):
        """Any Last-Event-ID, also one that names no event: the events with
        a greater id, each as in the uninterrupted stream; past the end
        (above 2 * data_size), 204."""
        mode, data_size, batch_size, keyword, fail_at = s
        full = sse_stream(mode, data_size, batch_size,
                          keyword.encode() if keyword else None, fail_at)
        if fail_at is not None and (last_id + 1) // 2 > fail_at:
            # past the injected failure there is no uninterrupted stream
            # to compare with
            last_id = 2 * fail_at
        r = fetch(target(*s), last_id)
        if last_id > 2 * data_size:
            self.assertEqual(r.status, 204, checks.where(r, 'past the end'))
            return
        want = [(i, d) for i, d in full if i is None or i > last_id]
        same_events(checks.sse_events(r), want,
                    '%s resumed after %d' % (target(*s), last_id))

    @prop(1.0, value=st.one_of(
        st.text(st.characters(min_codepoint=0x20, blacklist_categories=(
            'Cs',)), max_size=12),
        st.binary(max_size=12).map(
            lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7f)),
        st.integers(-10, 2 ** 70).map(str),
        st.sampled_from(['', ' ', '1 2', '0x10', '+1', '-0', '1e3', '1.0',
                         str(2 ** 62), str(2 ** 62 + 1), str(2 ** 64),
                         '\xff', '\u00e9'])))
    def test_last_event_id_values(self, value):
        """Any Last-Event-ID header value: a stream, a 204, or a 400 JSON
        error that is valid UTF-8 even when the value is not."""
        if isinstance(value, str):
            value = value.encode('utf-8')
        value = value.strip(b' \t')
        r = request('GET', '/stream/transform?data_size=20&batch_size=5',
                    headers=[(b'Last-Event-ID', value)])
        if r.status == 200:
            checks.sse_events(r)
        elif r.status != 204:
            checks.json_error(r, 400)
        if value.isdigit() and int(value) <= 2 ** 62:
            self.assertEqual(r.status, 204 if int(value) > 40 else 200,
                             checks.where(r, value))

    @prop(1.5, mode=st.sampled_from(['search', 'transform', 'aggregate']),
          arg=st.sampled_from(['data_size', 'batch_size', 'fail_at']),
          value=st.one_of(
              st.integers(-2 ** 65, 2 ** 65).map(str),
              st.sampled_from(['0', '-1', '-0', '00', '01', '+1', '1e3',
                               '0x10', '1.0', '%201', '1%20', '', '%20',
                               '%00', '18446744073709551616',
                               '18446744073709551615', str(2 ** 63),
                               str(SSE_MAX_DATA_SIZE),
                               str(SSE_MAX_DATA_SIZE + 1), '100000',
                               '100001'])))
    def test_numeric_arguments(self, mode, arg, value):
        """data_size, batch_size and fail_at: a decimal within the
        documented range starts the stream, anything else is 400 JSON."""
        q = '/stream/%s?keyword=python&%s=%s' % (mode, arg, value)
        if arg != 'data_size':
            q += '&data_size=300'
        r = get(q)
        lo, hi = {'data_size': (1, SSE_MAX_DATA_SIZE),
                  'batch_size': (1, 100000),
                  'fail_at': (1, 299)}[arg]
        ok = value.isdigit() and lo <= int(value) <= hi
        if ok:
            events = checks.sse_events(r)
            self.assertIn(events[-1][1]['type'], ('complete', 'error'))
        else:
            checks.json_error(r, 400)

    @prop(0.5, keyword=st.sampled_from(['record 1', 'record+1', 'c++',
                                        'python', 'x%41', 'await?',
                                        'record 1+', 'py%thon', '%2B']),
          raw=st.booleans())
    @example(keyword='record+1', raw=True)
    def test_keyword_decoding(self, keyword, raw):
        """The keyword is its query value decoded once, percent-escapes
        only: "+" is a plus, "?" and "%41" are themselves."""
        import urllib.parse
        spelled = urllib.parse.quote(keyword, safe='+?' if raw else '')
        q = '/stream/search?data_size=300&batch_size=100&keyword=' + spelled
        want = sse_stream('search', 300, 100, keyword.encode())
        same_events(checks.sse_events(get(q)), want, q)
