"""The nginx under test and a raw HTTP client for the generated-input layer.

One nginx of our own (private prefix in a temp directory, the module
loaded, workers as "nobody" when run as root, like the demo), started
once per run on TEST_PORT + PROPS_PORT_OFFSET and stopped by its PID.
The client speaks HTTP/1.1 over a plain socket, so a test can send any
bytes: methods, targets, headers and bodies that no library would send.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

NGINX = os.environ.get('TEST_NGINX_BINARY', '/usr/sbin/nginx')
MODULE_SO = (os.environ.get('TEST_NGINX_LOAD_MODULES', '').split() or [
    os.path.join(ROOT, 'build/nginx/objs/ngx_http_asyncx_module.so')])[0]
PORT = (int(os.environ.get('TEST_PORT', '1984'))
        + int(os.environ.get('PROPS_PORT_OFFSET', '8')))

# Work is sized so that every request answers in well under a second on a
# busy 2-core machine: nothing here races CPU time; a request that gets
# no answer at all within this many seconds is a hang.
HANG_SECONDS = float(os.environ.get('PROPS_HANG_SECONDS', '20'))

# small PBKDF2 costs: the layer checks digests, not the CPU
PBKDF2_ITERATIONS = 1000
PBKDF2_MAX_ITERATIONS = 20000
PASSWORD_MAX = 1024
FILE_MAX = 65536
JSON_MAX_ITEMS = 5000
SSE_MAX_DATA_SIZE = 200000
REGEX_MAX_TEXTS = 5000
BODY_MAX = '1m'

CONF = r"""
daemon off;
master_process on;
worker_processes 2;
%(user)s
error_log %(dir)s/logs/error.log %(log_level)s;
pid %(dir)s/logs/nginx.pid;
load_module %(so)s;

thread_pool props_io  threads=2 max_queue=256;
thread_pool props_cpu threads=2 max_queue=256;

events { worker_connections 512; }

http {
    default_type application/json;
    access_log off;
    client_body_temp_path %(dir)s/temp/body;
    proxy_temp_path %(dir)s/temp/proxy;
    fastcgi_temp_path %(dir)s/temp/fastcgi;
    uwsgi_temp_path %(dir)s/temp/uwsgi;
    scgi_temp_path %(dir)s/temp/scgi;
    client_max_body_size %(body_max)s;

    asyncx_thread_pools io=props_io cpu=props_cpu;
    asyncx_pbkdf2_iterations %(iters)d;
    asyncx_pbkdf2_max_iterations %(max_iters)d;
    asyncx_password_max_length %(pw_max)d;
    asyncx_file_max_size %(file_max)d;
    asyncx_json_max_items %(json_items)d;
    asyncx_regex_max_texts %(regex_texts)d;
    asyncx_sse_max_data_size %(sse_max)d;
    asyncx_call_timeout 5s;

    asyncx_limit_zone zone=props:1m rate=1000r/s burst=1000 concurrency=4
                      queue=64 timeout=5s;
    # one bucket per client-chosen key, small enough to fill (test_limit.py)
    asyncx_limit_zone zone=keyed:32k rate=1000r/s concurrency=1 queue=1
                      timeout=5s key=$http_x_props_key;
    # a zone where rate and concurrency both bind (test_limit.py)
    asyncx_limit_zone zone=tight:1m rate=100r/s burst=5 concurrency=3
                      queue=100 timeout=10s;

    server {
        listen 127.0.0.1:%(port)d;

%(error_pages)s
        location = /asyncx/status { asyncx_status; }

        location = /orders/process {
            asyncx_pipeline;
            # the demo's answer and argument policy (fail= reaches the mocks)
            asyncx_pipeline_answer exercise;
            asyncx_pipeline_pass_args on;
            asyncx_pipeline_mode_arg on;
            asyncx_stage s1 user=/svc/user stock=/svc/stock price=/svc/price;
            asyncx_stage s2 ship=/svc/ship;
            asyncx_call_optional price '{"discount": 0}';
            # fail_mode=slow&fail_delay=400ms times a call out (test_model)
            asyncx_call_timeout 300ms;
        }
        # the same calls with the http level's 5 s timeout: for work that
        # must stay in flight (aborts, reloads, kill -9)
        location = /orders/slow {
            asyncx_pipeline;
            asyncx_pipeline_answer exercise;
            asyncx_pipeline_pass_args on;
            asyncx_pipeline_mode_arg on;
            asyncx_stage s1 user=/svc/user stock=/svc/stock price=/svc/price;
            asyncx_stage s2 ship=/svc/ship;
        }
        location = /svc/user  { internal; asyncx_mock_service name=user
                                'json={"user_id": 42}'; }
        location = /svc/stock { internal; asyncx_mock_service name=stock
                                'json={"ok": true}'; }
        location = /svc/price { internal; asyncx_mock_service name=price
                                'json={"price": 10}'; }
        location = /svc/ship  { internal; asyncx_mock_service name=ship
                                'json={"days": 2}'; }

        location = /files/read  { asyncx_file_root files; asyncx_file_read; }
        location = /files/write { asyncx_file_root files; asyncx_file_write; }
        location = /auth/hash   { asyncx_password_hash; }
        location = /auth/verify { asyncx_password_verify; }
        location = /parse/json  { asyncx_json_parse; }
        location = /regex/match { asyncx_regex_match; }

        location /external/ {
            asyncx_limit props;
            asyncx_mock_service name=external max_delay=2s max_big=16m;
        }
        location = /rate-limit-test { asyncx_limit_test props /external/call; }
        location = /rate-limiter/status { asyncx_limit_zone_status props; }

        location /tight/ {
            asyncx_limit tight;
            asyncx_mock_service name=tight delay=20ms max_delay=1s;
        }
        location = /tight-test { asyncx_limit_test tight /tight/call; }

        location /keyed/ {
            asyncx_limit keyed;
            asyncx_mock_service name=keyed max_delay=2s;
        }
        location = /tight-status { asyncx_limit_zone_status tight; }

        location = /stream/search    { asyncx_sse search; }
        location = /stream/transform { asyncx_sse transform; }
        location = /stream/aggregate { asyncx_sse aggregate; }
    }
}
"""

# every location above with the methods its handler serves
def demo_error_pages():
    """The error_page recipe of the demo (docs/examples/demo.conf) for
    what nginx refuses itself (400, 494, 414, 501, 413): the text
    operators copy is what the generated requests meet."""
    with open(os.path.join(ROOT, 'docs/examples/demo.conf')) as f:
        conf = f.read()
    m = re.search(r'^(\s*error_page 400 .*?)^\s*# error pages end$', conf,
                  re.M | re.S)
    if m is None:
        raise SystemExit('props: docs/examples/demo.conf has no error pages')
    return m.group(1)


ENDPOINTS = {
    '/asyncx/status': ('GET', 'HEAD'),
    '/orders/process': ('POST', 'GET', 'HEAD'),
    '/orders/slow': ('POST', 'GET', 'HEAD'),
    '/files/read': ('GET', 'HEAD'),
    '/files/write': ('POST',),
    '/auth/hash': ('POST',),
    '/auth/verify': ('POST',),
    '/parse/json': ('POST',),
    '/regex/match': ('POST',),
    '/external/call': None,        # a mock: any method
    '/keyed/call': None,
    '/rate-limit-test': ('GET', 'HEAD'),
    '/rate-limiter/status': ('GET', 'HEAD'),
    '/tight-test': ('GET', 'HEAD'),
    '/tight-status': ('GET', 'HEAD'),
    '/stream/search': ('GET', 'HEAD'),
    '/stream/transform': ('GET', 'HEAD'),
    '/stream/aggregate': ('GET', 'HEAD'),
}


class Response(object):
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers          # [(lowercased name, value)]
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def json(self):
        return json.loads(self.body.decode('utf-8'))

    def __repr__(self):
        return '<%d %r %r>' % (self.status, self.headers, self.body[:300])


class Hang(AssertionError):
    pass


def _read_exact(sock, buf, n, deadline):
    while len(buf) < n:
        _recv_more(sock, buf, deadline)
    out = bytes(buf[:n])
    del buf[:n]
    return out


def _read_line(sock, buf, deadline):
    while True:
        i = buf.find(b'\r\n')
        if i >= 0:
            line = bytes(buf[:i])
            del buf[:i + 2]
            return line
        _recv_more(sock, buf, deadline)


class Closed(Exception):
    pass


def _recv_more(sock, buf, deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise socket.timeout()
    sock.settimeout(left)
    data = sock.recv(65536)
    if not data:
        raise Closed()
    buf.extend(data)


def raw_request(data, timeout=None, head_only=False):
    """Send raw bytes, parse one HTTP/1.x response.  Raises Hang when no
    complete answer arrives in time, AssertionError when the connection
    closes before a complete answer (a crashed worker looks like that)."""

    timeout = timeout or HANG_SECONDS
    deadline = time.monotonic() + timeout
    sock = socket.create_connection(('127.0.0.1', PORT), timeout=5)
    buf = bytearray()
    try:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            # nginx may answer and close before reading a whole body
            pass
        try:
            status_line = _read_line(sock, buf, deadline)
            while re.match(rb'HTTP/1\.[01] 1\d\d', status_line):
                # 100 Continue and friends: the answer comes after
                while _read_line(sock, buf, deadline):
                    pass
                status_line = _read_line(sock, buf, deadline)
            head = [status_line]
            headers = []
            while True:
                line = _read_line(sock, buf, deadline)
                if not line:
                    break
                head.append(line)
                k, _, v = line.partition(b':')
                headers.append((k.decode('latin-1').strip().lower(),
                                v.decode('latin-1').strip()))
            m = re.match(rb'HTTP/1\.[01] (\d{3}) ?(.*)', status_line)
            if not m:
                raise AssertionError('not an HTTP status line: %r'
                                     % status_line)
            status = int(m.group(1))
            reason = m.group(2).decode('latin-1')
            hd = dict(headers)
            body = b''
            if head_only or status in (204, 304) or 100 <= status < 200:
                pass
            elif hd.get('transfer-encoding', '').lower() == 'chunked':
                parts = []
                while True:
                    size_line = _read_line(sock, buf, deadline)
                    size = int(size_line.split(b';')[0], 16)
                    if size == 0:
                        while _read_line(sock, buf, deadline):
                            pass
                        break
                    parts.append(_read_exact(sock, buf, size, deadline))
                    _read_exact(sock, buf, 2, deadline)
                body = b''.join(parts)
            elif 'content-length' in hd:
                body = _read_exact(sock, buf, int(hd['content-length']),
                                   deadline)
            else:
                try:
                    while True:
                        _recv_more(sock, buf, deadline)
                except Closed:
                    pass
                body = bytes(buf)
            return Response(status, reason, headers, body, b'\r\n'.join(head))
        except socket.timeout:
            raise Hang('no complete answer within %.0f s to %r (got %r)'
                       % (timeout, data[:300], bytes(buf[:300])))
        except ConnectionResetError:
            raise AssertionError('connection reset before a complete answer '
                                 'to %r (got %r)' % (data[:300],
                                                     bytes(buf[:300])))
        except Closed:
            raise AssertionError('connection closed before a complete answer '
                                 'to %r (got %r)' % (data[:300],
                                                     bytes(buf[:300])))
    finally:
        sock.close()


def request(method, target, body=None, headers=(), timeout=None,
            chunked=False):
    """method and target are str or bytes; body bytes or str."""

    if isinstance(method, str):
        method = method.encode('latin-1')
    if isinstance(target, str):
        target = target.encode('latin-1')
    if isinstance(body, str):
        body = body.encode('utf-8')
    lines = [method + b' ' + target + b' HTTP/1.1', b'Host: localhost',
             b'Connection: close']
    for k, v in headers:
        lines.append((k.encode('latin-1') if isinstance(k, str) else k)
                     + b': '
                     + (v.encode('latin-1') if isinstance(v, str) else v))
    if body is not None:
        if chunked:
            lines.append(b'Transfer-Encoding: chunked')
            data = b''
            for i in range(0, len(body), 7):
                piece = body[i:i + 7]
                data += b'%x\r\n' % len(piece) + piece + b'\r\n'
            body = data + b'0\r\n\r\n'
        else:
            lines.append(b'Content-Length: %d' % len(body))
    raw = b'\r\n'.join(lines) + b'\r\n\r\n' + (body or b'')
    return raw_request(raw, timeout=timeout, head_only=(method == b'HEAD'))


def get(target, **kw):
    return request('GET', target, **kw)


def post(target, body, **kw):
    return request('POST', target, body=body, **kw)


class Nginx(object):
    """The nginx under test: one per run, see run.py."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='asyncx-props-')
        self.proc = None
        self.log_pos = 0
        self.root = os.geteuid() == 0

    @property
    def files(self):
        return os.path.join(self.dir, 'files')

    @property
    def error_log(self):
        return os.path.join(self.dir, 'logs', 'error.log')

    def start(self):
        d = self.dir
        for sub in ('logs', 'temp', 'files', 'conf'):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        # workers of a root master run as nobody, as in the demo: a file
        # the worker may not write is then a real case, not a root bypass
        os.chmod(d, 0o755)
        if self.root:
            shutil.chown(self.files, 'nobody')
        conf = CONF % dict(
            error_pages=demo_error_pages(),
            user='user nobody nogroup;' if self.root else '',
            dir=d, so=MODULE_SO, port=PORT, iters=PBKDF2_ITERATIONS,
            max_iters=PBKDF2_MAX_ITERATIONS, pw_max=PASSWORD_MAX,
            file_max=FILE_MAX, json_items=JSON_MAX_ITEMS,
            regex_texts=REGEX_MAX_TEXTS, sse_max=SSE_MAX_DATA_SIZE,
            body_max=BODY_MAX,
            log_level=os.environ.get('PROPS_LOG_LEVEL', 'info'))
        path = os.path.join(d, 'conf', 'nginx.conf')
        with open(path, 'w') as f:
            f.write(conf)
        if not os.path.exists(MODULE_SO):
            raise SystemExit('props: %s is missing, run make' % MODULE_SO)
        t = subprocess.run([NGINX, '-t', '-q', '-p', d + '/', '-c', path],
                           capture_output=True, text=True)
        if t.returncode != 0:
            raise SystemExit('props: nginx -t failed:\n' + t.stderr)
        self.proc = subprocess.Popen([NGINX, '-p', d + '/', '-c', path],
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit('props: nginx exited at start:\n'
                                 + self.read_log().decode('utf-8', 'replace'))
            try:
                socket.create_connection(('127.0.0.1', PORT), 1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit('props: nginx did not listen on %d' % PORT)

    def worker_pids(self):
        out = subprocess.run(['ps', '-o', 'pid=', '--ppid',
                              str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [int(x) for x in out.split()]

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if os.environ.get('TEST_NGINX_ERROR_LOG'):
            with open(os.environ['TEST_NGINX_ERROR_LOG'], 'ab') as out:
                out.write(self.read_log())

    def cleanup(self):
        if not os.environ.get('PROPS_KEEP'):
            shutil.rmtree(self.dir, ignore_errors=True)

    def read_log(self, start=0):
        try:
            with open(self.error_log, 'rb') as f:
                f.seek(start)
                return f.read()
        except FileNotFoundError:
            return b''

    def new_log(self):
        """error.log bytes written since the last call"""
        data = self.read_log(self.log_pos)
        self.log_pos += len(data)
        return data


SERVER = Nginx()
