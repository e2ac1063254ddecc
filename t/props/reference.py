"""Independent reference implementations, written from the module's
documentation (docs/directives.md) and the data set's definition, never
from its C code: the synthetic records, the three SSE streams, and
Django's pbkdf2_sha256 hash format over Python's hashlib."""

import base64
import hashlib
import hmac

VOCAB = """async await event loop task future coroutine thread
    process queue socket stream buffer request response header
    payload server client worker router handler module nginx
    fastapi uvicorn starlette json token bucket semaphore limit
    rate batch search filter transform aggregate cache index
    vector matrix record field value schema parser lexer
    compiler kernel memory latency throughput signal timer sleep
    yield gather select epoll pool executor lambda closure""".split()

assert len(VOCAB) == 64
M32 = 0xffffffff


def _words(i):
    x = ((i + 1) * 2654435761) & M32
    out = []
    for _ in range(6):
        x ^= (x << 13) & M32
        x ^= x >> 17
        x ^= (x << 5) & M32
        r = x % 1000
        out.append('python' if r == 0 else VOCAB[r % 64])
    return out


def record(i):
    return 'record %d: %s' % (i, ' '.join(_words(i)))


def score(i):
    return (i * 37) % 101


def category(i):
    return _words(i)[0]


assert record(0) == 'record 0: matrix coroutine worker thread json worker'


# --- SSE streams, ids as docs/directives.md defines them ----------------

def _agg_new():
    return {'count': 0, 'sum': 0, 'min': None, 'max': None}


def _agg_add(a, v):
    a['count'] += 1
    a['sum'] += v
    a['min'] = v if a['min'] is None else min(a['min'], v)
    a['max'] = v if a['max'] is None else max(a['max'], v)


def _agg_out(a):
    return {'count': a['count'], 'sum': a['sum'],
            'avg': (a['sum'] / a['count']) if a['count'] else 0.0,
            'min': a['min'] or 0, 'max': a['max'] or 0}


def fnv1a_upper(start, end):
    h = 2166136261
    for i in range(start, end):
        for ch in record(i).upper().encode('ascii'):
            h = ((h ^ ch) * 16777619) & M32
    return h


def sse_stream(mode, data_size, batch_size, keyword=None, fail_at=None):
    """The uninterrupted stream: [(id or None, data)] without the timing
    fields of "complete" (compare with strip_timing())."""
    ev = []
    matches = 0
    overall = _agg_new()
    cats = {}
    start = 0
    while start < data_size:
        end = min((start // batch_size + 1) * batch_size, data_size)
        failing = fail_at is not None and start <= fail_at < end
        if failing:
            end = fail_at
        if mode == 'search':
            kw = keyword
            for i in range(start, end):
                if kw in record(i).encode('ascii'):
                    matches += 1
                    ev.append((2 * i + 1, {'type': 'match', 'item': {
                        'id': i, 'content': record(i)}}))
            if not failing:
                ev.append((2 * end, {'type': 'progress', 'processed': end,
                                     'total': data_size, 'matches': matches}))
        elif mode == 'transform':
            if end > start:
                ev.append((2 * end, {
                    'type': 'batch',
                    'batch_num': (end + batch_size - 1) // batch_size,
                    'items_processed': end,
                    'checksum': '%08x' % fnv1a_upper(start, end),
                    'sample': record(start).upper()}))
        else:
            for i in range(start, end):
                _agg_add(overall, score(i))
                _agg_add(cats.setdefault(category(i), _agg_new()), score(i))
            if end > start:
                ev.append((2 * end, {
                    'type': 'stage',
                    'stage': (end + batch_size - 1) // batch_size,
                    'processed': end, 'total': data_size,
                    'partial': _agg_out(overall)}))
        if failing:
            ev.append((None, {'type': 'error', 'message':
                              'injected failure at record %d' % fail_at}))
            return ev
        start = end
    done = {'type': 'complete'}
    if mode == 'search':
        done['total_matches'] = matches
    elif mode == 'transform':
        done['total_processed'] = data_size
    else:
        done['total_processed'] = data_size
        done['result'] = _agg_out(overall)
        done['by_category'] = {k: _agg_out(v) for k, v in cats.items()}
    ev.append((2 * data_size + 1, done))
    return ev


def strip_timing(events):
    out = []
    for i, d in events:
        if d.get('type') == 'complete':
            d = {k: v for k, v in d.items()
                 if k not in ('total_time', 'total_time_ms')}
        out.append((i, d))
    return out


class Avg(float):
    """An average as the module prints it, "%.2f": equal to any number
    within half a cent of the exact value (the last digit of x.xx5 may
    go either way in floating point)."""

    def __eq__(self, other):
        return (isinstance(other, (int, float))
                and abs(float(self) - other) <= 0.005 + 1e-9)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = float.__hash__

    def __repr__(self):
        return '~%.3f' % float(self)


def approx_avgs(d):
    """the reference's averages, compared as the module prints them"""
    if isinstance(d, dict):
        return {k: (Avg(v) if k == 'avg' else approx_avgs(v))
                for k, v in d.items()}
    return d


# --- Django's pbkdf2_sha256 -----------------------------------------------

def django_hash(password, salt, iterations):
    """password and salt are str (Django hashes their UTF-8 bytes)."""
    dk = hashlib.pbkdf2_hmac('sha256', password.encode('utf-8'),
                             salt.encode('utf-8'), iterations)
    return 'pbkdf2_sha256$%d$%s$%s' % (iterations, salt,
                                       base64.b64encode(dk).decode('ascii'))


def django_verify(password, encoded):
    """Django's PBKDF2PasswordHasher.verify, over hashlib."""
    algorithm, iterations, salt, digest = encoded.split('$', 3)
    if algorithm != 'pbkdf2_sha256':
        return False
    dk = hashlib.pbkdf2_hmac('sha256', password.encode('utf-8'),
                             salt.encode('utf-8'), int(iterations))
    return hmac.compare_digest(base64.b64encode(dk).decode('ascii'), digest)
