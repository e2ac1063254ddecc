"""JSON on every endpoint that reads one, against Python's json module as
an RFC 8259 reference: /parse/json counts what json counts; a document
that RFC 8259 refuses (leading NUL or control bytes, raw control
characters in strings, invalid UTF-8, leading zeros, ...) is refused with
400 by every JSON endpoint alike; deep nesting is an error, never a
crash; /regex/match agrees with Python's re on a shared regex subset."""

import json
import re
import unittest

from hypothesis import example
from hypothesis import strategies as st

import checks
from common import prop
from harness import post

# JSON values; floats without nan/inf (JSON has none)
scalars = (st.none() | st.booleans() | st.integers(-2 ** 53, 2 ** 53)
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(st.characters(blacklist_categories=('Cs',)),
                     max_size=20))
documents = st.recursive(
    scalars,
    lambda inner: (st.lists(inner, max_size=6)
                   | st.dictionaries(st.text(st.characters(
                       blacklist_categories=('Cs',)), max_size=8), inner,
                       max_size=6)),
    max_leaves=40)


def dumps(doc, style):
    indent, ascii_only, seps = style
    return json.dumps(doc, indent=indent, ensure_ascii=ascii_only,
                      separators=seps).encode('utf-8')


styles = st.tuples(st.sampled_from([None, 0, 2, '\t']), st.booleans(),
                   st.sampled_from([(',', ':'), (', ', ': '),
                                    (' ,\r\n', ' :\t')]))


def rfc8259(data):
    """True if data is one RFC 8259 JSON text (UTF-8, no BOM)."""
    if data.startswith(b'\xef\xbb\xbf'):
        return None                      # a BOM MAY be ignored: either
    try:
        checks.strict_loads(data)
        return True
    except (ValueError, checks.StrictJSONError):
        return False


# what a corrupted document may carry: RFC 8259 refuses every one but
# the whitespace
CORRUPTIONS = [b'\x00', b'\x01', b'\x08', b'\x0b', b'\x0c', b'\x1f', b'\x7f',
               b'\xff', b'\xc0\xae', b'\xed\xa0\x80', b'\xf4\x90\x80\x80',
               b'\xe4\xb8', b'\x80', b' ', b'\t', b'\r\n', b'\xef\xbb\xbf',
               b'//', b'/*x*/', b',', b'01', b'+1', b'1.', b'.5', b'-.5',
               b'1.e5', b'NaN', b'Infinity', b"'x'", b'"\\x41"', b'"\\u12"',
               b'"\\ud800"', b'"\\udc00\\ud800"', b'"\x01"', b'"\x1f"',
               b'"\t"', b'"\n"', b'"\x7f"', b'"\\u0000"', b'tru', b'nul',
               b'[1,]', b'{"a":1,}', b'{"a"}', b'[', b']', b'"']


def corrupt(data, where, what):
    i = where % (len(data) + 1)
    return data[:i] + what + data[i:]


# every JSON endpoint, with a valid document that the corruption goes into
# and its answer when the document is fine
ENDPOINT_DOCS = {
    '/parse/json': b'{"k": ["v", 1, 2.5e3, true, null]}',
    '/auth/hash': b'{"password": "pw123"}',
    '/auth/verify': (b'{"password": "pw", "hash": "pbkdf2_sha256$1$salt$'
                     + b'A' * 43 + b'="}'),
    '/regex/match': b'{"pattern": "v", "texts": ["v", "w"]}',
    '/orders/process': b'{"order_id": 1, "items": ["v"]}',
}


class JSON(unittest.TestCase):

    @prop(1.5, doc=documents, style=styles)
    def test_parse_counts_like_python(self, doc, style):
        """parsed_items, type and bytes of any document, as json sees it."""
        data = dumps(doc, style)
        r = post('/parse/json', data)
        if r.status == 400 and checks.holds_nul(doc):
            checks.json_error(r, 400)    # a documented limit (RFC 8259 s9)
            return
        got = checks.json_answer(r, statuses=(200,))
        if isinstance(doc, list):
            want = ('array', len(doc))
        elif isinstance(doc, dict):
            want = ('object', len(doc))
        else:
            want = ('scalar', 1)
        self.assertEqual((got['type'], got['parsed_items'], got['bytes'],
                          got['source']), want + (len(data), 'body'),
                         checks.where(r, 'for %r' % data[:200]))

    @prop(0.5, n=st.integers(0, 40), dup=st.integers(2, 5))
    def test_duplicate_keys_counted_as_written(self, n, dup):
        """Members are counted as written (json's object_pairs_hook)."""
        pairs = ['"k%d": %d' % (i % dup, i) for i in range(n)]
        data = ('{' + ', '.join(pairs) + '}').encode()
        r = post('/parse/json', data)
        got = checks.json_answer(r, statuses=(200, 400))
        if r.status == 200:
            self.assertEqual(got['parsed_items'], n, checks.where(r, data))

    @prop(2.0, endpoint=st.sampled_from(sorted(ENDPOINT_DOCS)),
          where=st.integers(0, 200), what=st.sampled_from(CORRUPTIONS),
          lead=st.booleans())
    @example(endpoint='/parse/json', where=0, what=b'\x00', lead=True)
    @example(endpoint='/auth/hash', where=0, what=b'\x01', lead=True)
    @example(endpoint='/regex/match', where=0, what=b'\x0b', lead=True)
    @example(endpoint='/parse/json', where=6, what=b'"\x01"', lead=False)
    def test_rfc8259_everywhere(self, endpoint, where, what, lead):
        """Every JSON endpoint accepts exactly what RFC 8259 accepts: a
        corrupted document is a 400 exactly when Python's strict json
        refuses it (a BOM may go either way)."""
        base = ENDPOINT_DOCS[endpoint]
        data = (what + base) if lead else corrupt(base, where, what)
        verdict = rfc8259(data)
        r = post(endpoint, data)
        doc = checks.json_answer(r)
        if verdict is None:
            return
        if not verdict:
            self.assertEqual(r.status, 400, checks.where(
                r, '%s accepted a document RFC 8259 refuses: %r'
                % (endpoint, data)))
        elif not checks.holds_nul(checks.strict_loads(data)):
            # still valid JSON; it may have lost its meaning (a password
            # that is a number), so only a refusal on syntax is wrong
            self.assertFalse(r.status == 400 and 'JSON' in doc.get(
                'error', '') and 'invalid JSON' in doc.get('error', ''),
                checks.where(r, '%s refused valid JSON %r' % (endpoint,
                                                              data)))

    @prop(0.5, depth=st.integers(1, 100000),
          endpoint=st.sampled_from(sorted(ENDPOINT_DOCS)),
          kind=st.sampled_from(['[', '{"a":']))
    @example(depth=100000, endpoint='/parse/json', kind='[')
    @example(depth=100000, endpoint='/orders/process', kind='{"a":')
    def test_deep_nesting(self, depth, endpoint, kind):
        """Nesting up to 500 levels is parsed (parse/json counts 1 item);
        deeper may be refused with 400; nothing crashes or hangs."""
        close = ']' if kind == '[' else '}'
        data = (kind * depth + '1' + close * depth).encode()
        if endpoint != '/parse/json':
            data = b'{"password": "p", "pattern": "a", "texts": ["a"], ' \
                   b'"x": ' + data + b'}'
        r = post(endpoint, data)
        doc = checks.json_answer(r)
        if endpoint == '/parse/json' and depth <= 500:
            self.assertEqual(r.status, 200, checks.where(r, 'depth %d'
                                                         % depth))
            self.assertEqual(doc['parsed_items'], 1)
        else:
            self.assertIn(r.status, (200, 400, 413), checks.where(r, depth))

    @prop(1.0, before=st.text(max_size=5), after=st.text(max_size=5),
          endpoint=st.sampled_from(['/parse/json', '/auth/hash',
                                    '/regex/match']))
    @example(before='a', after='b', endpoint='/regex/match')
    def test_nul_in_strings(self, before, after, endpoint):
        """A NUL (\\u0000) inside a JSON string keeps the string's full
        length or is refused with 400 (RFC 8259 section 9 allows limits on
        the contents of strings); the answer never shows a truncated
        string."""
        s = before + '\x00' + after
        if endpoint == '/parse/json':
            r = post(endpoint, json.dumps({s: s, 'k': [s]}))
            doc = checks.json_answer(r, statuses=(200, 400))
            if r.status == 200:
                self.assertEqual(doc['parsed_items'], 2)
        elif endpoint == '/auth/hash':
            r = post(endpoint, json.dumps({'password': s}))
            checks.json_answer(r, statuses=(200, 400))
        else:
            # the example: "a\u0000b" must not match "axb"
            r = post(endpoint, json.dumps({'pattern': re.escape(s),
                                           'texts': [before + 'x' + after,
                                                     s, before]}))
            doc = checks.json_answer(r, statuses=(200, 400))
            if r.status == 200:
                self.assertEqual(
                    [(m['index'], m['text'], m['match'])
                     for m in doc['first_matches']], [(1, s, s)],
                    checks.where(r, 'pattern %r' % s))

    @prop(0.5, endpoint=st.sampled_from(['/auth/hash', '/auth/verify',
                                         '/regex/match']),
          first=st.text(min_size=1, max_size=6),
          second=st.text(min_size=1, max_size=6))
    @example(endpoint='/auth/verify', first='right', second='wrong')
    def test_duplicate_members_the_module_reads(self, endpoint, first,
                                                second):
        """A member the module acts on ("password", "hash", "pattern",
        "texts") given twice is refused with 400: the module reads the
        first, Python's json and JavaScript the last, so a proxy or a log
        in front would see another password or pattern than the one used
        (I-JSON, RFC 7493: names MUST be unique)."""
        key = {'/auth/hash': 'password', '/auth/verify': 'password',
               '/regex/match': 'pattern'}[endpoint]
        rest = {'/auth/hash': '',
                '/auth/verify': ', "hash": "pbkdf2_sha256$1$s$' + 'A' * 43
                                + '="',
                '/regex/match': ', "texts": ["a"]'}[endpoint]
        data = ('{"%s": %s, "%s": %s%s}' % (key, json.dumps(first), key,
                                            json.dumps(second), rest))
        r = post(endpoint, data)
        checks.json_error(r, 400)
