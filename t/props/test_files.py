"""/files/write and /files/read with generated names, bytes and query
spellings, checked against the file system itself: a name is decoded
exactly once (percent-escapes only, "+" stays "+"), the bytes written are
the bytes read, and nothing lands anywhere but where the name says."""

import base64
import os
import shutil
import unittest
import urllib.parse

from hypothesis import HealthCheck, assume, example, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize,
                                 invariant, rule)

import checks
from common import N, SEED, prop
from harness import FILE_MAX, SERVER, get, post


# the characters whose handling differs between decoders
TRICKY = ['+', '%', '?', '#', '&', '=', ' ', ';', '"', "'", '*', '~',
          '%2B', '%3F', '%20', '%41', '%%', '..', '.', '-', ':', '@',
          '가', 'é', '\U0001f600', '\u2028', '\ufeff', '\n', '\x01', '\x7f']
name_chars = st.one_of(
    st.sampled_from(TRICKY),
    st.characters(blacklist_characters='/\\\x00',
                   blacklist_categories=('Cs', 'Cc')))
names = st.lists(name_chars, min_size=1, max_size=12).map(''.join).filter(
    lambda s: s not in ('.', '..') and len(s.encode('utf-8')) <= 200)
contents = st.one_of(st.binary(max_size=300),
                     st.text(max_size=200).map(lambda s: s.encode('utf-8')),
                     st.binary(min_size=FILE_MAX - 2, max_size=FILE_MAX))


def full_quote(name):
    """every byte but unreserved ones escaped"""
    return urllib.parse.quote(name.encode('utf-8'), safe='')


def minimal_quote(name):
    """only what cannot appear in a query argument value raw: "%", "&",
    "#", space and bytes outside ASCII; "+", "?", "=" and "/" stay raw
    (RFC 3986 allows them in a query)"""
    return urllib.parse.quote(name.encode('utf-8'), safe="+?=/:@!$'()*,;~")


def on_disk(name):
    return os.path.join(SERVER.files, name)


def clear_files():
    for n in os.listdir(SERVER.files):
        p = os.path.join(SERVER.files, n)
        if os.path.isdir(p) and not os.path.islink(p):
            shutil.rmtree(p)
        else:
            os.unlink(p)


def read_back(r):
    doc = checks.json_answer(r, statuses=(200,))
    if doc['encoding'] == 'utf-8':
        return doc['content'].encode('utf-8')
    assert doc['encoding'] == 'base64', doc
    return base64.b64decode(doc['content'], validate=True)


class Files(unittest.TestCase):

    def setUp(self):
        clear_files()

    @prop(1.5, name=names, data=contents,
          spelling=st.sampled_from([full_quote, minimal_quote]))
    @example(name='a+b.txt', data=b'x', spelling=minimal_quote)
    @example(name='notes?secret.txt', data=b'x', spelling=full_quote)
    @example(name='c++.txt', data=b'x', spelling=full_quote)
    @example(name='%41.txt', data=b'x', spelling=full_quote)
    def test_write_read_roundtrip(self, name, data, spelling):
        """What is written under a name is on disk under exactly that name
        and reads back byte for byte, whatever the query spelling."""
        clear_files()
        q = spelling(name)
        r = post('/files/write?path=' + q, data)
        if r.status == 400 and any(c < ' ' or c == '\x7f' for c in name):
            # refusing control characters in names is a policy, allowed
            checks.json_error(r, 400)
            self.assertEqual(os.listdir(SERVER.files), [])
            return
        doc = checks.json_answer(r, statuses=(200,))
        self.assertEqual(doc, {'written': len(data), 'path': name,
                               'async': True},
                         checks.where(r, 'path=%s' % q))
        self.assertEqual(os.listdir(SERVER.files), [name],
                         'path=%s wrote another name' % q)
        with open(on_disk(name), 'rb') as f:
            self.assertEqual(f.read(), data)
        r = get('/files/read?path=' + q)
        self.assertEqual(read_back(r), data, checks.where(r, 'read back'))
        r = get('/files/read?path=' + spelling(name + '.missing'))
        checks.json_error(r, 404)

    @prop(1.0, name=names, junk=st.sampled_from(
        ['%', '%z', '%zz', '%2', '%2z', '%G0', '%%41', '%C0%AE', '%FF',
         '%ED%A0%80', '%F4%90%80%80', '%80', '%E4%B8']))
    @example(name='a', junk='%zz')
    def test_undecodable_names(self, name, junk):
        """A path with an invalid percent-escape or bytes that are not
        UTF-8 is refused with 400/403, or written under exactly the bytes
        it spells; never under some other name.  Any answer is valid
        UTF-8 JSON."""
        clear_files()
        q = full_quote(name) + junk
        r = post('/files/write?path=' + q, b'data')
        doc = checks.json_answer(r)
        if r.status in (400, 403):
            self.assertEqual(os.listdir(SERVER.files), [])
            return
        self.assertEqual(r.status, 200, checks.where(r, 'path=' + q))
        # the only acceptable meaning: invalid escapes kept literally,
        # valid ones decoded once
        literal = b''
        raw = q.encode('ascii')
        i = 0
        while i < len(raw):
            if (raw[i:i + 1] == b'%' and len(raw) >= i + 3
                    and all(c in b'0123456789abcdefABCDEF'
                            for c in raw[i + 1:i + 3])):
                literal += bytes([int(raw[i + 1:i + 3], 16)])
                i += 3
            else:
                literal += raw[i:i + 1]
                i += 1
        self.assertEqual(os.listdir(SERVER.files.encode()), [literal],
                         checks.where(r, 'path=%s written as another name'
                                      % q))
        self.assertIsInstance(doc['path'], str)

    @prop(1.0, segs=st.lists(st.sampled_from(
        ['..', '.', 'a', '', '%2E%2E', '.%2E', '%2e.', '..%2F..', '%2F',
         '%5C', '\\', '%00', 'b%00', '%2e%2e%5c']), min_size=1, max_size=6),
        lead=st.sampled_from(['', '/', '%2F', './']))
    def test_no_escape_from_root(self, segs, lead):
        """Generated traversal attempts: nothing is ever written outside the
        root, and a path with a ".." segment, NUL or backslash (after
        decoding) is 403."""
        clear_files()
        q = lead + '/'.join(segs)
        decoded = urllib.parse.unquote_to_bytes(q)
        parts = decoded.split(b'/')
        bad = (decoded.startswith(b'/') or b'..' in parts or b'\x00' in decoded
               or b'\\' in decoded)
        outside = os.path.dirname(SERVER.files)
        before = set(os.listdir(outside))
        r = post('/files/write?path=' + q, b'escape')
        checks.json_answer(r)
        self.assertEqual(set(os.listdir(outside)), before,
                         checks.where(r, 'wrote next to the root'))
        if bad:
            self.assertEqual(r.status, 403, checks.where(r, 'path=' + q))
        r = get('/files/read?path=' + q)
        checks.json_answer(r)
        if bad:
            self.assertEqual(r.status, 403, checks.where(r, 'path=' + q))

    @prop(0.5, name=names, mode=st.sampled_from([0o444, 0o400, 0o644]),
          owner=st.sampled_from(['root', 'worker']))
    def test_unwritable_file_is_403(self, name, mode, owner):
        """A file the worker may not write (0444, or another owner's 0644)
        is refused with 403 and stays as it was: content, mode, owner."""
        clear_files()
        if not SERVER.root:
            assume(owner == 'worker')
        path = on_disk(name)
        with open(path, 'wb') as f:
            f.write(b'original')
        if SERVER.root:
            shutil.chown(path, 'root' if owner == 'root' else 'nobody')
        os.chmod(path, mode)
        assume(not (owner == 'worker' and mode & 0o200))
        st0 = os.stat(path)
        r = post('/files/write?path=' + full_quote(name), b'replaced')
        checks.json_error(r, 403)
        st1 = os.stat(path)
        with open(path, 'rb') as f:
            self.assertEqual(f.read(), b'original')
        self.assertEqual((st1.st_mode, st1.st_uid, st1.st_ino),
                         (st0.st_mode, st0.st_uid, st0.st_ino))


class FileStore(RuleBasedStateMachine):
    """Model: a dict name -> bytes.  Writes, reads, missing files and
    writes into missing directories, in any order, agree with it."""

    def __init__(self):
        super().__init__()
        self.model = {}

    @initialize()
    def empty(self):
        clear_files()
        os.mkdir(os.path.join(SERVER.files, 'd'))
        if SERVER.root:
            shutil.chown(os.path.join(SERVER.files, 'd'), 'nobody')

    @rule(name=st.sampled_from(['a', 'b+c', 'd/e', 'd/f?g', 'x%y', 'z z']),
          data=st.binary(max_size=64))
    def write(self, name, data):
        r = post('/files/write?path=' + full_quote(name), data)
        checks.json_answer(r, statuses=(200,))
        self.model[name] = data

    @rule(name=st.sampled_from(['a', 'b+c', 'd/e', 'd/f?g', 'x%y', 'z z',
                                'nope']))
    def read(self, name):
        r = get('/files/read?path=' + full_quote(name))
        if name in self.model:
            self.assertEqual_(read_back(r), self.model[name])
        else:
            checks.json_error(r, 404)

    @rule(name=st.sampled_from(['missing/a', 'a/b']))
    def write_into_missing_dir(self, name):
        r = post('/files/write?path=' + full_quote(name), b'x')
        checks.json_error(r, 404)

    @invariant()
    def disk_matches_model(self):
        found = {}
        for dirpath, _, files in os.walk(SERVER.files):
            for f in files:
                p = os.path.join(dirpath, f)
                with open(p, 'rb') as fh:
                    found[os.path.relpath(p, SERVER.files)] = fh.read()
        assert found == self.model, (found, self.model)
        checks.log_clean('in the file store model')

    @staticmethod
    def assertEqual_(a, b):
        assert a == b, (a, b)


FileStore = seed(SEED)(FileStore)     # the machine carries the seed
FileStoreTest = FileStore.TestCase
FileStoreTest.settings = settings(max_examples=max(5, N),
                                  stateful_step_count=12, deadline=None,
                                  database=None,
                                  suppress_health_check=list(HealthCheck))
