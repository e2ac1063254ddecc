"""What every answer and every error.log line must satisfy, whatever the
input: valid UTF-8, valid JSON (RFC 8259, strict) or valid SSE, the
module's one error shape, no crash, no 5xx the client did not cause."""

import json
import re

from harness import SERVER


class StrictJSONError(ValueError):
    pass


def _no_constant(name):
    raise StrictJSONError('not JSON: %s' % name)


def strict_loads(data):
    """RFC 8259 JSON from bytes: UTF-8, no NaN/Infinity, no lone surrogate
    escapes, no duplicate keys."""
    text = data.decode('utf-8')          # raises on invalid UTF-8

    def pairs(items):
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            raise StrictJSONError('duplicate key in %r' % keys)
        for k in keys:
            _no_surrogates(k)
        return dict(items)

    value = json.loads(text, parse_constant=_no_constant,
                       object_pairs_hook=pairs)
    _walk_strings(value)
    return value


def _no_surrogates(s):
    if re.search('[\ud800-\udfff]', s):
        raise StrictJSONError('lone surrogate escape in %r' % s)


def _walk_strings(v):
    if isinstance(v, str):
        _no_surrogates(v)
    elif isinstance(v, list):
        for x in v:
            _walk_strings(x)
    elif isinstance(v, dict):
        for x in v.values():
            _walk_strings(x)


def holds_nul(doc):
    """True if a string or member name of a parsed document has U+0000:
    RFC 8259 section 9 lets an implementation limit "the character
    contents of strings", and the module refuses U+0000 (cJSON would cut
    the string there), documented in docs/directives.md"""
    if isinstance(doc, str):
        return '\x00' in doc
    if isinstance(doc, list):
        return any(holds_nul(x) for x in doc)
    if isinstance(doc, dict):
        return any(holds_nul(k) or holds_nul(v) for k, v in doc.items())
    return False


def where(resp, what):
    return '%s\n  status %d, headers %r\n  body %r' % (
        what, resp.status, resp.headers, resp.body[:600])


def json_answer(resp, allow_5xx=(), statuses=None, pipeline=False,
                shape=True):
    """The body of any answer of a JSON endpoint: parsed, checked.  A
    pipeline's failure answer is its full document with "error" and
    "status" added (docs/directives.md), not the bare error shape."""
    assert resp.status < 500 or resp.status in allow_5xx, \
        where(resp, 'a 5xx the client did not cause')
    if statuses is not None:
        assert resp.status in statuses, \
            where(resp, 'status not in %r' % (statuses,))
    ctype = resp.header('content-type') or ''
    assert ctype.split(';')[0].strip() == 'application/json', \
        where(resp, 'Content-Type is not application/json')
    try:
        resp.body.decode('utf-8')
    except UnicodeDecodeError as e:
        raise AssertionError(where(resp, 'body is not valid UTF-8: %s' % e))
    try:
        doc = strict_loads(resp.body)
    except (ValueError, StrictJSONError) as e:
        raise AssertionError(where(resp, 'body is not valid JSON: %s' % e))
    if resp.status >= 400 and shape:
        if pipeline and isinstance(doc, dict) and 'mode' in doc:
            assert doc.get('status') == resp.status and isinstance(
                doc.get('error'), str), where(resp, 'pipeline failure shape')
        else:
            error_shape(resp, doc)
    return doc


def error_shape(resp, doc):
    assert isinstance(doc, dict) and set(doc) == {'error', 'status'}, \
        where(resp, 'not the module\'s error shape {"error", "status"}')
    assert isinstance(doc['error'], str) and doc['error'], \
        where(resp, 'empty error message')
    assert doc['status'] == resp.status, \
        where(resp, '"status" differs from the HTTP status')
    if resp.status == 405:
        allow = resp.header('allow')
        assert allow, where(resp, '405 without an Allow header (RFC 9110)')


def json_error(resp, status, allow_5xx=()):
    doc = json_answer(resp, allow_5xx=allow_5xx)
    assert resp.status == status, where(resp, 'expected status %d' % status)
    return doc


SSE_LINE = re.compile(rb'^(id|data|event|retry)?: ?(.*)$')


def sse_events(resp):
    """[(id or None, parsed data)] of a complete text/event-stream."""
    assert resp.status == 200, where(resp, 'stream did not start')
    ctype = resp.header('content-type') or ''
    assert ctype.startswith('text/event-stream'), \
        where(resp, 'not text/event-stream')
    try:
        resp.body.decode('utf-8')
    except UnicodeDecodeError as e:
        raise AssertionError(where(resp, 'stream is not UTF-8: %s' % e))
    assert resp.body.endswith(b'\n\n'), where(resp, 'last event unterminated')
    events = []
    for block in resp.body[:-2].split(b'\n\n'):
        ev_id, data = None, []
        for line in block.split(b'\n'):
            if line.startswith(b':'):
                continue
            m = SSE_LINE.match(line)
            assert m and m.group(1), where(resp, 'bad SSE line %r' % line)
            if m.group(1) == b'id':
                assert re.match(rb'^\d+$', m.group(2)), \
                    where(resp, 'non-numeric id %r' % line)
                ev_id = int(m.group(2))
            elif m.group(1) == b'data':
                data.append(m.group(2))
        if not data and ev_id is None:
            continue                     # a comment-only block
        assert data, where(resp, 'event without data: %r' % block)
        try:
            doc = strict_loads(b'\n'.join(data))
        except (ValueError, StrictJSONError) as e:
            raise AssertionError(where(resp, 'event data is not JSON: %s: %r'
                                       % (e, block)))
        events.append((ev_id, doc))
    return events


LOG_LINE = re.compile(rb'^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[(\w+)\] \d+#\d+: '
                      rb'(?:\*\d+ )?(asyncx)?')
BAD_LEVELS = (b'alert', b'crit', b'emerg')


def log_clean(context='', expected_alert=None):
    """Every error.log line written since the last check: a real nginx
    line (no line forged by a client's newline), valid UTF-8 without
    control bytes in what the module wrote, no crash or alert (but the
    documented ones matching expected_alert, a regex)."""
    data = SERVER.new_log()
    problems = []
    for line in data.split(b'\n'):
        if not line:
            continue
        if (b'runtime error:' in line or b'Sanitizer' in line
                or line.startswith(b'==')):
            problems.append('sanitizer report: %r' % line[:300])
            continue
        m = LOG_LINE.match(line)
        if not m:
            problems.append('not an nginx log line (forged by a newline in '
                            'client data?): %r' % line[:300])
            continue
        if m.group(1) in BAD_LEVELS and not (
                expected_alert and re.search(expected_alert, line)):
            problems.append('[%s] line: %r' % (m.group(1).decode(),
                                               line[:300]))
        if b'exited on signal' in line or b'Sanitizer' in line:
            problems.append('worker crash: %r' % line[:300])
        if m.group(2):
            # what the module wrote; nginx appends the request line, a
            # client's raw bytes, after ", client: "
            own = line.rsplit(b', client: ', 1)[0]
            try:
                own.decode('utf-8')
            except UnicodeDecodeError:
                problems.append('module log line is not UTF-8: %r'
                                % own[:300])
            if re.search(rb'[\x00-\x08\x0b-\x1f\x7f]', own):
                problems.append('control byte (terminal escape?) in a module '
                                'log line: %r' % own[:300])
    assert not problems, ('error.log %s:\n  ' % context) + '\n  '.join(
        problems[:10])
