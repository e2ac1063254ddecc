"""/auth/hash and /auth/verify against Django's pbkdf2_sha256 computed by
hashlib: hashes the module makes verify in Python, hashes Python makes
verify in the module, both ways for random passwords and salts."""

import json
import re
import unittest

from hypothesis import assume, example
from hypothesis import strategies as st

import checks
from common import prop
from harness import (PASSWORD_MAX, PBKDF2_ITERATIONS, PBKDF2_MAX_ITERATIONS,
                     post)
from reference import django_hash, django_verify

# any Unicode scalar value (no lone surrogates: they have no UTF-8 form),
# with NUL, control characters and astral characters on purpose
chars = st.one_of(
    st.characters(blacklist_categories=('Cs',)),
    st.sampled_from(['\x00', '\x01', '\x1f', '\x7f', '\n', '"', '\\', '$',
                     '\u2028', '\ufeff', '\U0001f600', '가']))
passwords = st.one_of(
    st.text(chars, min_size=1, max_size=40),
    st.text(chars, min_size=PASSWORD_MAX // 4 - 2, max_size=PASSWORD_MAX // 4),
    st.builds(lambda a, b: a + '\x00' + b, st.text(chars, max_size=8),
              st.text(chars, min_size=1, max_size=24)))

# Django salts are text without "$"; its own are 22 alphanumerics
salt_chars = st.characters(blacklist_characters='$',
                           blacklist_categories=('Cs',))
plain_salts = st.text(st.sampled_from(
    'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
    './+=-_!~*()@:;,'), min_size=1, max_size=64)
any_salts = st.one_of(plain_salts, st.text(salt_chars, max_size=80),
                      st.just(''), st.just('a\x00b'))
iterations = st.integers(1, 3000)


def body(doc, ascii_only):
    return json.dumps(doc, ensure_ascii=ascii_only).encode('utf-8')


def utf8_len(s):
    return len(s.encode('utf-8'))


HASH = re.compile(r'^pbkdf2_sha256\$(\d+)\$([^$]*)\$([A-Za-z0-9+/]+=*)$')


class Auth(unittest.TestCase):

    @prop(1.0, pw=passwords, ascii_only=st.booleans())
    @example(pw='secret\x00-and-a-long-suffix', ascii_only=True)
    @example(pw='a' * PASSWORD_MAX, ascii_only=True)          # the limit
    @example(pw='a' * (PASSWORD_MAX + 1), ascii_only=True)    # one over
    @example(pw='가' * (PASSWORD_MAX // 3) + 'a', ascii_only=False)
    @example(pw='\U0001f600' * (PASSWORD_MAX // 4) + 'a', ascii_only=True)
    def test_hash_verifies_in_django(self, pw, ascii_only):
        """/auth/hash of any password: a Django hash that hashlib verifies
        with the whole password, and that a prefix does not verify."""
        r = post('/auth/hash', body({'password': pw}, ascii_only))
        doc = checks.json_answer(r)
        if utf8_len(pw) > PASSWORD_MAX:
            self.assertEqual(r.status, 400, checks.where(r, 'too long'))
            return
        if '\x00' in pw and r.status == 400:
            return                       # refusing NUL is allowed
        self.assertEqual(r.status, 200, checks.where(r, 'hash refused'))
        m = HASH.match(doc['hash'])
        self.assertTrue(m, 'not pbkdf2_sha256$<iter>$<salt>$<b64>: %r'
                        % doc['hash'])
        self.assertEqual(int(m.group(1)), PBKDF2_ITERATIONS)
        self.assertEqual(doc['iterations'], PBKDF2_ITERATIONS)
        self.assertTrue(django_verify(pw, doc['hash']),
                        'hashlib (Django: salt text bytes as salt) does not '
                        'verify %r for password %r' % (doc['hash'], pw))
        if '\x00' in pw:
            # the example: what precedes the NUL must not verify
            # (unless only NULs follow: HMAC pads its key with zeros, so
            # "pw" and "pw\0" are one PBKDF2 password, in Django too)
            prefix = pw.split('\x00')[0]
            self.assertEqual(django_verify(prefix, doc['hash']),
                             pw.rstrip('\x00') == prefix,
                             'hash of %r made over a truncated password'
                             % pw)
        # and the module verifies its own hash, refusing a near miss
        r = post('/auth/verify', body({'password': pw, 'hash': doc['hash']},
                                      ascii_only))
        self.assertEqual(checks.json_answer(r, statuses=(200,))['valid'],
                         True, checks.where(r, 'own hash does not verify'))
        wrong = pw.split('\x00')[0] if '\x00' in pw else pw[:-1] + (
            'x' if pw[-1:] != 'x' else 'y')
        if wrong:
            r = post('/auth/verify', body({'password': wrong,
                                           'hash': doc['hash']}, ascii_only))
            self.assertEqual(checks.json_answer(r, statuses=(200,))['valid'],
                             django_verify(wrong, doc['hash']),
                             checks.where(r, 'password %r against the hash '
                                          'of %r' % (wrong, pw)))

    @prop(1.0, pw=passwords, salt=any_salts, n=iterations,
          ascii_only=st.booleans())
    @example(pw='mypassword', salt='abcdefghijklmnopqrstuv', n=1000,
             ascii_only=True)
    def test_django_hash_verifies_in_module(self, pw, salt, n, ascii_only):
        """A hash computed by hashlib as Django does verifies with the right
        password and not with a wrong one.  Plain salts of at most 64
        characters must work; others may be refused with 400, never
        misjudged."""
        assume(utf8_len(pw) <= PASSWORD_MAX)
        encoded = django_hash(pw, salt, n)
        must_work = (salt != '' and re.match(r'^[ -~]{1,64}$', salt)
                     and '\x00' not in pw)
        for candidate in (pw, pw + 'x', pw.split('\x00')[0]):
            if not candidate or utf8_len(candidate) > PASSWORD_MAX:
                continue
            truth = django_verify(candidate, encoded)
            r = post('/auth/verify', body({'password': candidate,
                                           'hash': encoded}, ascii_only))
            doc = checks.json_answer(r)
            if r.status == 400 and not must_work:
                continue
            self.assertEqual(r.status, 200, checks.where(
                r, 'Django hash %r refused' % encoded))
            self.assertIs(doc['valid'], truth, checks.where(
                r, 'verify(%r, %r) should be %r' % (candidate, encoded,
                                                     truth)))
            self.assertEqual(doc['iterations'], n)

    @prop(1.0, pw=st.text(min_size=1, max_size=10),
          parts=st.lists(st.one_of(
              st.text(max_size=12), st.integers(0, 2 ** 70).map(str),
              st.sampled_from(['pbkdf2_sha256', '0', '00100', '1',
                               str(PBKDF2_MAX_ITERATIONS + 1),
                               '-1', '+5', ' 5', 'AAAA', 'AAAA====',
                               'A' * 43 + '=', '\x00', '====', ''])),
              min_size=1, max_size=6),
          tail=st.sampled_from(['', '\x00', '\x00junk', '$', '\n']))
    def test_malformed_hash_never_verifies(self, pw, parts, tail):
        """Any hash string: 200 only if it is a Django hash hashlib accepts
        for that password, else 400; never valid:true for a string that
        only starts like a good hash."""
        good = django_hash(pw, 'saltsalt', 5)
        for encoded in ('$'.join(parts) + tail, good + tail):
            r = post('/auth/verify', body({'password': pw, 'hash': encoded},
                                          True))
            doc = checks.json_answer(r, statuses=(200, 400))
            if r.status == 200 and doc['valid']:
                m = HASH.match(encoded)
                self.assertTrue(
                    m and int(m.group(1)) <= PBKDF2_MAX_ITERATIONS
                    and not m.group(1).startswith('0')
                    and django_verify(pw, encoded),
                    checks.where(r, 'hash %r accepted as valid' % encoded))

    @prop(0.3, n=st.one_of(st.integers(PBKDF2_MAX_ITERATIONS + 1, 2 ** 64),
                           st.just(0)))
    def test_iterations_out_of_range(self, n):
        """A client-supplied iteration count above the maximum (or 0) is a
        400 before any hashing: it would pin a CPU thread."""
        encoded = 'pbkdf2_sha256$%d$salt$%s' % (n, 'A' * 43 + '=')
        r = post('/auth/verify', body({'password': 'x', 'hash': encoded},
                                      True))
        checks.json_error(r, 400)

    @prop(0.5, doc=st.one_of(
        st.dictionaries(st.text(max_size=10).filter(
            lambda k: k not in ('password', 'hash')), st.none() | st.integers()
                        | st.text(max_size=5) | st.lists(st.integers()),
                        max_size=3),
        st.lists(st.integers(), max_size=3), st.integers(), st.text(),
        st.none(), st.booleans()),
        endpoint=st.sampled_from(['/auth/hash', '/auth/verify']))
    def test_wrong_documents(self, doc, endpoint):
        """Documents without a string password (and hash) are 400."""
        r = post(endpoint, json.dumps(doc))
        checks.json_error(r, 400)
