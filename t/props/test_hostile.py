"""Malformed requests to every endpoint: random methods, bodies, headers,
query strings and numbers.  Whatever comes in, the answer is the module's
JSON (or a valid event stream), with a sensible 4xx status, a 405 with
Allow, no 5xx, no hang, no crash, and a clean error.log."""

import json
import unittest
import urllib.parse

from hypothesis import example
from hypothesis import strategies as st

import checks
from common import prop
from harness import ENDPOINTS, request

METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS',
           'PROPFIND', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'FOO',
           'X_Y', 'GETS', 'POSTX']

methods = st.one_of(st.sampled_from(METHODS),
                    st.text('ABCDEFGHIJKLMNOPQRSTUVWXYZ_', min_size=1,
                            max_size=10).filter(lambda m: m != 'TRACE'))
paths = st.sampled_from(sorted(ENDPOINTS))

bodies = st.one_of(
    st.none(), st.binary(max_size=200),
    st.sampled_from([b'', b'{}', b'[]', b'null', b'{"password": ""}',
                     b'{"password": 1}', b'{"pattern": "(", "texts": []}',
                     b'{"pattern": "a", "count": 0}', b'\x00' * 10,
                     b'{"a":' * 50, b'\xff\xfe\xfd',
                     b'{"items": [1, 2,, 3]}']),
    st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(
        st.sampled_from(['password', 'hash', 'pattern', 'texts', 'count',
                         'limit', 'order_id', 'x']),
        st.one_of(st.none(), st.integers(), st.text(max_size=8),
                  st.lists(st.text(max_size=4), max_size=3)), max_size=4)))

query_keys = st.sampled_from(['path', 'items', 'requests', 'keyword',
                              'data_size', 'batch_size', 'fail_at', 'mode',
                              'fail', 'fail_mode', 'fail_status', 'delay',
                              'big', 'fail_delay', 'x'])
query_values = st.one_of(
    st.text(max_size=10).map(lambda s: urllib.parse.quote(s, safe='')),
    st.binary(max_size=6).map(lambda b: urllib.parse.quote(b, safe='')),
    st.integers(-2 ** 70, 2 ** 70).map(str),
    st.sampled_from(['0', '-1', '+1', '1e9', '0x1', '%00', '%', '%zz', '',
                     '18446744073709551616', '4294967296', '1ms', '0ms',
                     '1s', '99999999999d', '-1s', 'status', 'slow', 'text',
                     'big', '*', 'user', 'sequential', 'parallel', 'a%2Cb',
                     '%EB%B0%B0%EC%86%A1']))
queries = st.lists(st.tuples(query_keys, query_values), max_size=4).map(
    lambda kv: '&'.join('%s=%s' % p for p in kv))


def check_answer(r, method, path):
    """The answer to anything: JSON error shape or a normal answer."""
    if method == 'HEAD':
        assert not r.body, checks.where(r, 'HEAD with a body')
        assert r.status < 500 or r.status in (502, 503, 504), \
            checks.where(r, 'HEAD answered a 5xx')
        if r.status == 405:
            assert r.header('allow'), checks.where(r, '405 without Allow')
        return
    if r.status == 405:
        checks.json_error(r, 405)
        allow = [m.strip() for m in r.header('allow').split(',')]
        self_allowed = ENDPOINTS[path]
        if self_allowed is not None:
            assert set(allow) == set(self_allowed), \
                checks.where(r, 'Allow %r, expected %r' % (allow,
                                                         self_allowed))
        return
    if method not in ('GET', 'HEAD', 'POST') and ENDPOINTS[path] is not None:
        raise AssertionError(checks.where(r, '%s %s not refused with 405'
                                          % (method, path)))
    ctype = r.header('content-type') or ''
    if ctype.startswith('text/event-stream'):
        checks.sse_events(r)
    elif r.status != 204:
        checks.json_answer(r, allow_5xx=(502, 503, 504),
                           pipeline=(path == '/orders/process'))


class Hostile(unittest.TestCase):

    @prop(2.0, method=methods, path=paths, query=queries, body=bodies,
          chunked=st.booleans(),
          ctype=st.sampled_from([None, 'application/json', 'text/plain',
                                 'application/x-www-form-urlencoded',
                                 'multipart/form-data; boundary=x']))
    @example(method='PUT', path='/auth/hash', query='', body=b'{}',
             chunked=False, ctype=None)
    # found under ASan: a HEAD of the limiter test with several calls,
    # a chunked JSON body to the pipeline and to the mock
    @example(method='HEAD', path='/rate-limit-test', query='requests=3',
             body=None, chunked=False, ctype=None)
    @example(method='POST', path='/orders/process', query='', body=b'{}',
             chunked=True, ctype='application/json')
    @example(method='POST', path='/external/call', query='', body=b'{}',
             chunked=True, ctype='application/json')
    def test_anything_to_any_endpoint(self, method, path, query, body,
                                      chunked, ctype):
        target = path + ('?' + query if query else '')
        headers = [('Content-Type', ctype)] if ctype else []
        r = request(method, target, body=body, headers=headers,
                    chunked=chunked and body is not None)
        check_answer(r, method, path)

    @prop(0.5, path=paths, extra=st.integers(1, 4096))
    @example(path='/parse/json', extra=1)
    def test_body_over_client_max_body_size(self, path, extra):
        """A declared body over client_max_body_size is refused with the
        module's JSON 413 (not nginx's HTML page), before it is read."""
        from harness import BODY_MAX
        limit = int(BODY_MAX.rstrip('m')) * 1024 * 1024
        if ENDPOINTS[path] is None or 'POST' not in ENDPOINTS[path]:
            return
        raw = ('POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n'
               'Content-Length: %d\r\n\r\n' % (path, limit + extra)).encode()
        from harness import raw_request
        r = raw_request(raw + b'{')
        checks.json_error(r, 413)

    @prop(1.0, path=paths, name=st.sampled_from(
        ['Content-Length', 'Transfer-Encoding', 'Last-Event-ID', 'Expect',
         'Content-Type', 'X-Junk']), value=st.one_of(
        st.sampled_from(['-1', '0', '1', '7', 'abc', '99999999999999999999',
                         'chunked', 'gzip', 'chunked, gzip', '100-continue',
                         '1, 2']),
        st.binary(max_size=10).map(lambda b: bytes(
            c for c in b if c >= 0x20 and c != 0x7f))))
    def test_strange_headers(self, path, name, value):
        """Odd framing headers: nginx refuses framing it cannot parse
        itself (400, 501, 413), and the error_page recipe of
        docs/directives.md gives those the module's JSON shape too; any
        answer the module gives is its JSON."""
        if isinstance(value, str):
            value = value.encode()
        method = 'POST' if ENDPOINTS[path] is None or \
            'POST' in ENDPOINTS[path] else 'GET'
        body = b''
        if name == 'Content-Length' and value.isdigit() and int(value) < 100:
            body = b'{' * int(value)     # as long as it says
        elif name == 'Transfer-Encoding' and value.endswith(b'chunked'):
            body = b'1\r\n{\r\n0\r\n\r\n'
        raw = (method.encode() + b' ' + path.encode()
               + b'?keyword=a&path=x&data_size=5 HTTP/1.1\r\nHost: x\r\n'
               b'Connection: close\r\n' + name.encode() + b': ' + value
               + b'\r\n\r\n' + body)
        from harness import raw_request
        r = raw_request(raw, timeout=None)
        if r.status == 501:              # a Transfer-Encoding nginx lacks
            checks.json_error(r, 501, allow_5xx=(501,))
            return
        check_answer(r, method, path)
