"""/regex/match against Python's re on a subset where PCRE2 and re agree
(literals, ".", classes, greedy and lazy quantifiers, alternation,
groups): the same texts match, with the same first match, and the answer
echoes pattern, texts and matches whole."""

import json
import re
import unittest

from hypothesis import example
from hypothesis import strategies as st

import checks
from common import prop
from harness import REGEX_MAX_TEXTS, post
from reference import record

ALPHABET = 'ab가\x00\U0001f600 .'

lit_chars = st.sampled_from(list(ALPHABET) + ['\n', '+', '(', '$'])


def lit(c):
    if c.isalnum() and c.isascii():
        return c
    if ord(c) < 0x20:
        return '\\x%02x' % ord(c)         # both: \xhh
    if c.isascii():
        return '\\' + c                   # escaped punctuation
    return c                              # raw UTF-8


atoms = st.one_of(
    lit_chars.map(lit),
    st.just('.'),
    st.sampled_from(['[ab]', '[^a]', '[a-c가]', '\\d', '\\w', '\\s']))


def patterns():
    return st.recursive(
        atoms,
        lambda inner: st.one_of(
            st.tuples(inner, inner).map(''.join),
            st.tuples(inner, st.sampled_from(['*', '+', '?', '*?', '+?',
                                              '{1,2}'])).map(
                lambda t: '(?:%s)%s' % t),
            st.tuples(inner, inner).map(lambda t: '(%s|%s)' % t)),
        max_leaves=6)


texts = st.lists(st.text(st.sampled_from(list(ALPHABET) + ['\n', '1']),
                         max_size=12), min_size=1, max_size=8)


def python_matches(pattern, subjects):
    rx = re.compile(pattern)
    out = []
    for i, s in enumerate(subjects):
        m = rx.search(s)
        if m:
            out.append((i, s, m.group(0)))
    return out


class Regex(unittest.TestCase):

    @prop(1.5, pattern=patterns(), subjects=texts, limit=st.integers(0, 10))
    @example(pattern='a\\x00b', subjects=['axb', 'a\x00b'], limit=10)
    def test_matches_like_python_re(self, pattern, subjects, limit):
        """match_count and first_matches equal Python re's search results
        (ASCII-only \\d, \\w, \\s: both engines default to that)."""
        want = python_matches('(?a)' + pattern, subjects)
        r = post('/regex/match', json.dumps({'pattern': pattern,
                                             'texts': subjects,
                                             'limit': limit}))
        if r.status == 400 and any('\x00' in s for s in subjects):
            # refusing a NUL in a string is allowed (issue 11), cutting
            # the string there is not
            checks.json_error(r, 400)
            return
        doc = checks.json_answer(r, statuses=(200,))
        got = [(m['index'], m['text'], m['match'])
               for m in doc['first_matches']]
        self.assertEqual((doc['match_count'], doc['total'], got,
                          doc['pattern']),
                         (len(want), len(subjects), want[:limit], pattern),
                         checks.where(r, 'pattern %r on %r' % (pattern,
                                                               subjects)))

    @prop(0.5, pattern=st.sampled_from(['python', 'record \\d+:', '^record 1',
                                        'async$', '(await|yield) \\w+',
                                        'x{3}', '']),
          count=st.integers(1, REGEX_MAX_TEXTS))
    def test_dataset_like_python_re(self, pattern, count):
        """{"count": N} matches the data set records as re does."""
        subjects = [record(i) for i in range(count)]
        want = python_matches(pattern, subjects)
        r = post('/regex/match', json.dumps({'pattern': pattern,
                                             'count': count, 'limit': 3}))
        doc = checks.json_answer(r, statuses=(200,))
        self.assertEqual((doc['match_count'], doc['source']),
                         (len(want), 'dataset'))
        self.assertEqual([(m['index'], m['text'], m['match'])
                          for m in doc['first_matches']], want[:3])

    @prop(1.0, key=st.sampled_from(['count', 'limit']),
          value=st.one_of(st.integers(-2 ** 70, 2 ** 70),
                          st.floats(allow_nan=False, allow_infinity=False),
                          st.sampled_from([0, -0.0, 0.5, 1e300, -1e300,
                                           '1', None, True, [], {}])))
    def test_numbers_out_of_range(self, key, value):
        """count (1..max texts) and limit (0..100) accept integers only:
        anything else is 400, never a 5xx."""
        doc = {'pattern': 'a', key: value}
        if key == 'limit':
            doc['texts'] = ['a']
        r = post('/regex/match', json.dumps(doc))
        ans = checks.json_answer(r, statuses=(200, 400))
        lo, hi = (1, REGEX_MAX_TEXTS) if key == 'count' else (0, 100)
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and float(value).is_integer() and lo <= value <= hi)
        self.assertEqual(r.status, 200 if ok else 400,
                         checks.where(r, '%s=%r' % (key, value)))
        if ok and key == 'count':
            self.assertEqual(ans['total'], int(value))

    @prop(0.5, junk=st.binary(min_size=1, max_size=8))
    def test_invalid_utf8_texts_are_never_echoed_raw(self, junk):
        """Texts or patterns with bytes that are not UTF-8 get a 400 or an
        answer that is valid UTF-8 JSON."""
        for body in (b'{"pattern": ".", "texts": ["' + junk.replace(
                         b'"', b'').replace(b'\\', b'') + b'"]}',
                     b'{"pattern": "' + junk.replace(b'"', b'').replace(
                         b'\\', b'') + b'", "texts": ["a"]}'):
            r = post('/regex/match', body)
            checks.json_answer(r, statuses=(200, 400))
