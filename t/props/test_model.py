"""Model-based: random sequences of pipelines, streams (finished, failed,
abandoned by the client), offload jobs, limiter tests and worker kills,
against a model of /asyncx/status.  Whenever the server is idle again,
every in-flight counter is 0 and every total moved by exactly what the
sequence did; the pipeline's answer follows its documented rules for any
set of failing calls.  (Worker kills: test_worker_kill.py, run last.)"""

import signal
import socket
import time

from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (RuleBasedStateMachine, initialize,
                                 invariant, precondition, rule)

import checks
from common import N, SEED
from harness import PORT, SERVER, get, post
from reference import sse_stream

CALLS = [('s1', 'user', False), ('s1', 'stock', False),
         ('s1', 'price', True), ('s2', 'ship', False)]
IDLE_SECONDS = 10


def status():
    """/asyncx/status, parsed"""
    r = get('/asyncx/status')
    return checks.json_answer(r, statuses=(200,))


def counters(doc):
    """the numbers the model follows, flattened"""
    out = {}
    for pool, c in doc['pools'].items():
        for k, v in c.items():
            if k not in ('completed', 'failed'):
                out['pools.%s.%s' % (pool, k)] = v
        # README counts a 4xx answer as "failed", the code as "completed":
        # the model holds either, their sum is what it predicts
        out['pools.%s.done' % pool] = (c['completed'] + c['failed']
                                       + c.get('cancelled', 0))
    for k, v in doc['pipelines'].items():
        if k == 'mock':
            out['mock.active'] = v['active']
            out['mock.total'] = v['total']
        else:
            out['pipelines.' + k] = v
    for k, v in doc['streams'].items():
        out['streams.' + k] = v
    z = doc['limit_zones']['props']
    out['limit.current'] = z['concurrent']['current']
    out['limit.waiting'] = z['waiting']
    out['limit.admitted'] = z['admitted']
    return out


# what the model predicts; other numbers (a later version's extra
# counters) are not compared
MODELLED = {'pipelines.active', 'pipelines.total', 'pipelines.failed',
            'pipelines.aborted', 'pipelines.calls', 'pipelines.call_errors',
            'mock.active', 'mock.total', 'streams.active', 'streams.total',
            'streams.completed', 'streams.aborted', 'streams.errors',
            'streams.events', 'limit.current', 'limit.waiting',
            'limit.admitted'} | {
    'pools.%s.%s' % (p, k) for p in ('props_io', 'props_cpu')
    for k in ('posted', 'queued', 'running', 'done', 'rejected')}

IN_FLIGHT = ['pipelines.active', 'mock.active', 'streams.active',
             'limit.current', 'limit.waiting', 'pools.props_io.queued',
             'pools.props_io.running', 'pools.props_cpu.queued',
             'pools.props_cpu.running']


def pipeline_model(fails):
    """What /orders/process answers when the calls in `fails` fail
    (docs/directives.md, asyncx_stage / asyncx_call_optional)."""
    if '*' in fails:
        fails = {name for _, name, _ in CALLS}
    failed, skipped, warnings, issued = [], [], [], []
    first_required = None
    for stage in ('s1', 's2'):
        calls = [c for c in CALLS if c[0] == stage]
        if first_required:
            skipped += [name for _, name, _ in calls]
            continue
        for _, name, optional in calls:
            issued.append(name)
            if name in fails:
                failed.append(name)
                if optional:
                    warnings.append(name)
                elif first_required is None:
                    first_required = name
    return failed, skipped, warnings, issued, first_required


class StatusModel(RuleBasedStateMachine):

    def __init__(self):
        super().__init__()
        self.want = None
        self.unknown = set()             # counters a rule cannot predict
        self.slow_steps = 0              # reloads and abandoned pipelines

    @initialize()
    def baseline(self):
        self.wait_idle()
        self.want = counters(status())

    def add(self, key, n=1):
        self.want[key] += n

    def wait_idle(self):
        """in-flight counters at 0, or the invariant's assertion"""
        deadline = time.monotonic() + IDLE_SECONDS
        while True:
            got = counters(status())
            busy = {k: got[k] for k in IN_FLIGHT if got[k]}
            if not busy or time.monotonic() > deadline:
                return got, busy
            time.sleep(0.05)

    @rule(fails=st.one_of(st.sets(st.sampled_from([c[1] for c in CALLS])),
                          st.just({'*'})),
          sequential=st.booleans(),
          mode=st.sampled_from(['status', 'text', 'big', 'slow']),
          body=st.sampled_from(
              [b'', b'{"order_id": 1}', b'[1, "\\u00e9"]', b'null']))
    def pipeline(self, fails, sequential, mode, body):
        q = '?fail=' + (','.join(sorted(fails)) or 'none')
        q += '&fail_mode=' + mode + ('&fail_delay=400ms' if mode == 'slow'
                                       else '')
        if sequential:
            q += '&mode=sequential'
        r = post('/orders/process' + q, body)
        doc = checks.json_answer(r, allow_5xx=(502,), statuses=(200, 502),
                                 pipeline=True)
        failed, skipped, warnings, issued, first = pipeline_model(fails)
        assert r.status == (502 if first else 200), checks.where(r, fails)
        assert doc.get('failed_calls', []) == failed, checks.where(r, fails)
        assert doc.get('skipped_calls', []) == skipped, checks.where(r, fails)
        assert len(doc.get('warnings', [])) == len(warnings), \
            checks.where(r, fails)
        assert list(doc['호출별_소요시간_ms']) == issued, checks.where(r, fails)
        assert doc['mode'] == ('sequential' if sequential else 'parallel')
        if first:
            assert doc['error'] == 'required call "%s" failed' % first
        # each failed call's slot says how it failed (docs/directives.md)
        kind, status = {'status': ('status', 500),
                        'text': ('invalid_json', 200),
                        'big': ('too_large', 200),
                        'slow': ('timeout', 504)}[mode]
        stages = doc['단계별_결과']
        for stage, name, _ in CALLS:
            slot = stages[stage][name]
            if name in failed:
                assert (slot.get('kind'), slot.get('status')) == (
                    kind, status), checks.where(r, '%s: %r' % (name, slot))
            elif name in skipped:
                assert slot.get('skipped') is True, checks.where(r, name)
            else:
                assert 'error' not in slot, checks.where(r, name)
        self.add('pipelines.total')
        self.add('pipelines.failed', 1 if first else 0)
        self.add('pipelines.calls', len(issued))
        self.add('pipelines.call_errors', len(failed))
        self.add('mock.total', len(issued))

    @rule(mode=st.sampled_from(['search', 'transform', 'aggregate']),
          size=st.integers(1, 300), fail_at=st.none() | st.integers(1, 299))
    def stream(self, mode, size, fail_at):
        if fail_at is not None and fail_at >= size:
            fail_at = None
        q = '/stream/%s?keyword=python&data_size=%d&batch_size=50' % (mode,
                                                                      size)
        if fail_at:
            q += '&fail_at=%d' % fail_at
        events = checks.sse_events(get(q))
        assert len(events) == len(sse_stream(mode, size, 50, b'python',
                                             fail_at)), q
        self.add('streams.total')
        self.add('streams.errors' if fail_at else 'streams.completed')
        self.add('streams.events', len(events))
        self.unknown |= {'pools.props_cpu.posted', 'pools.props_cpu.done'}

    @rule(mode=st.sampled_from(['search', 'transform', 'aggregate']),
          read=st.integers(0, 3000))
    def stream_abandoned(self, mode, read):
        """a client that reads a little of a long stream and leaves"""
        s = socket.create_connection(('127.0.0.1', PORT))
        s.sendall(('GET /stream/%s?keyword=python&data_size=200000&'
                   'batch_size=10 HTTP/1.1\r\nHost: x\r\n\r\n'
                   % mode).encode())
        got = b''
        s.settimeout(10)
        while len(got) < read + 1:
            data = s.recv(4096)
            if not data:
                break
            got += data
        s.close()
        self.add('streams.total')
        self.add('streams.aborted')
        self.unknown |= {'streams.events', 'pools.props_cpu.posted',
                         'pools.props_cpu.done'}

    @rule(ok=st.booleans())
    def offload_hash(self, ok):
        r = post('/auth/hash', b'{"password": "pw"}' if ok else b'{}')
        checks.json_answer(r, statuses=(200 if ok else 400,))
        self.add('pools.props_cpu.posted')
        self.add('pools.props_cpu.done')

    @rule(n=st.integers(1, 12))
    def limit_test(self, n):
        r = get('/rate-limit-test?requests=%d' % n)
        doc = checks.json_answer(r, statuses=(200,))
        assert [x['status'] for x in doc['results']] == [200] * n, doc
        self.add('limit.admitted', n)
        self.add('mock.total', n)

    @precondition(lambda self: self.slow_steps < 2)
    @rule()
    def pipeline_abandoned(self):
        """the client leaves while the first stage's calls wait (300 ms
        mock timers); it leaves only once the pipeline runs, so the request is
        certainly counted, however slow the machine"""
        self.slow_steps += 1
        before = counters(status())['pipelines.total']
        s = socket.create_connection(('127.0.0.1', PORT))
        s.sendall(b'POST /orders/slow?delay=300ms HTTP/1.1\r\nHost: x\r\n'
                  b'Content-Length: 0\r\n\r\n')
        deadline = time.monotonic() + IDLE_SECONDS
        while counters(status())['pipelines.total'] == before:
            assert time.monotonic() < deadline, 'the pipeline did not start'
            time.sleep(0.01)
        s.close()
        self.add('pipelines.total')
        self.unknown |= {'pipelines.aborted', 'pipelines.calls',
                         'mock.total', 'pipelines.failed',
                         'pipelines.call_errors'}

    @precondition(lambda self: self.slow_steps < 2)
    @rule(hold=st.sampled_from(['pipeline', 'stream', 'none']))
    def reload(self, hold):
        """nginx -s reload with a request in flight: the old worker
        finishes it (graceful), the counters live on in the shared zone
        and stay true (docs/directives.md, asyncx_status)"""
        self.slow_steps += 1
        old = set(SERVER.worker_pids())
        s = None
        if hold == 'pipeline':
            s = socket.create_connection(('127.0.0.1', PORT))
            s.sendall(b'POST /orders/slow?delay=300ms HTTP/1.1\r\n'
                      b'Host: x\r\nConnection: close\r\n'
                      b'Content-Length: 0\r\n\r\n')
        elif hold == 'stream':
            s = socket.create_connection(('127.0.0.1', PORT))
            s.sendall(b'GET /stream/search?keyword=python&data_size=3000&'
                      b'batch_size=10 HTTP/1.1\r\nHost: x\r\n'
                      b'Connection: close\r\n\r\n')
        if s is not None:
            s.settimeout(IDLE_SECONDS)
            first = s.recv(1)            # it runs in an old worker
            assert first, 'no answer before the reload'
        SERVER.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + IDLE_SECONDS
        while set(SERVER.worker_pids()) & old or len(
                SERVER.worker_pids()) < 2:
            if s is not None:
                break                    # the old worker waits for it
            assert time.monotonic() < deadline, 'reload did not finish'
            time.sleep(0.05)
        if s is not None:
            data = first
            while True:
                d = s.recv(65536)
                if not d:
                    break
                data += d
            s.close()
            assert data.startswith(b'HTTP/1.1 200'), data[:200]
            if hold == 'pipeline':
                self.add('pipelines.total')
                self.add('pipelines.calls', 4)
                self.add('mock.total', 4)
            else:
                self.add('streams.total')
                self.add('streams.completed')
                self.unknown |= {'streams.events'}
            self.unknown |= {'pools.props_cpu.posted', 'pools.props_cpu.done'}
        while set(SERVER.worker_pids()) & old:
            assert time.monotonic() < deadline + IDLE_SECONDS, \
                'old workers did not exit after their last request'
            time.sleep(0.05)
        SERVER.new_log()                 # reload notices

    @invariant()
    def counters_match(self):
        if self.want is None:
            return
        got, busy = self.wait_idle()
        assert not busy, 'in-flight counters not back to 0 when idle: %r' \
            % busy
        for k in self.unknown:
            self.want[k] = got[k]
        self.unknown = set()
        diff = {k: (got[k], self.want[k]) for k in MODELLED
                if got[k] != self.want[k]}
        assert not diff, 'status counters (got, model): %r' % diff
        checks.log_clean('in the status model')


StatusModel = seed(SEED)(StatusModel)     # the machine carries the seed
StatusModelTest = StatusModel.TestCase
# stateful examples start minimal: too few of them are all empty programs
StatusModelTest.settings = settings(max_examples=max(5, N // 2),
                                    stateful_step_count=10, deadline=None,
                                    database=None,
                                    suppress_health_check=list(HealthCheck))
