#!/usr/bin/python3
# An HTTP/2 client for t/013-http2.t (Debian's python3-h2): many streams
# on one connection, cleartext (prior knowledge) or TLS (ALPN h2), with
# the control a browser never gives: a tiny flow-control window, no
# WINDOW_UPDATE (a client that stops reading), a body sent in part,
# RST_STREAM or a closed connection at a chosen point.
#
#   /usr/bin/python3 t/h2client.py < spec.json > result.json
#
# spec: {"port": N, "tls": false, "window": 65535, "ack": true,
#        "requests": [{"method": "GET", "path": "/x", "body": "text",
#                      "body_hex": "00ff", "repeat": 1,
#                      "no_length": false, "declare": N,
#                      "partial": N, "frame": N, "headers": [[k, v]]}],
#        "until": "done" | "data" | {"status": "http://...", "expr": "..."}
#                 | {"body_re": "regex"},
#        "then": "rst" | "close" | "wait" | "rst_open",
#        "after": {"status": ..., "expr": ...},
#        "timeout": 60}
#
# "partial": only that many body bytes are sent and the stream stays
# open; "declare": the content-length sent (default: the body's length,
# none with "no_length"); "frame": DATA frames of at most that size.
# "until": when to act: every stream answered ("done", the default),
# every stream has received a DATA frame ("data"), or a Python
# expression over the JSON of an HTTP/1.1 GET of "status" is true (the
# test's own numbers, polled: never a sleep).  "then": "rst" resets every
# stream not yet ended, "rst_open" too but only the streams with no
# answer yet, "close" closes the TCP connection, "wait" waits for every
# stream to end.  "after": polled like "until" after the action, on the
# same connection kept open, then every remaining stream is reset.
#
# result: {"ok": true if every wait was met, "responses": [{"status",
#          "headers": {name: value}, "body" (text, invalid UTF-8 as
#          U+FFFD), "utf8": bool, "bytes", "ended", "reset" (code or
#          null)}], "alive": whether a request after the action on the
#          same connection was answered (for "rst")}

import json
import re
import socket
import ssl
import sys
import time
import urllib.request

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings


def poll(cond, deadline):
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(cond['status'], timeout=5) as f:
                s = json.loads(f.read())
            if eval(cond['expr'], {}, {'s': s}):
                return True
        except (OSError, ValueError, KeyError, TypeError):
            pass
        time.sleep(0.02)
    return False


class Client:

    def __init__(self, spec):
        sock = socket.create_connection(('127.0.0.1', spec['port']),
                                        timeout=10)
        if spec.get('tls'):
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(['h2'])
            sock = ctx.wrap_socket(sock, server_hostname='localhost')
            if sock.selected_alpn_protocol() != 'h2':
                raise SystemExit('TLS: ALPN did not select h2')
        self.sock = sock
        self.ack = spec.get('ack', True)
        window = spec.get('window', 65535)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(
            client_side=True, header_encoding='utf-8',
            validate_outbound_headers=False))
        self.conn.local_settings = h2.settings.Settings(
            client=True, initial_values={
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window,
                h2.settings.SettingCodes.ENABLE_PUSH: 0})
        self.conn.initiate_connection()
        self.streams = {}
        self.pending = {}       # stream id: body bytes still to send
        self.closed = False
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        if data and not self.closed:
            # pump() leaves a short timeout; a write may take longer
            self.sock.settimeout(30)
            self.sock.sendall(data)

    def start(self, req):
        body = req.get('body')
        if 'body_hex' in req:
            body = bytes.fromhex(req['body_hex'])
        elif body is not None:
            body = body.encode('utf-8')
        sid = self.conn.get_next_available_stream_id()
        headers = [(':method', req.get('method', 'GET')),
                   (':path', req['path']), (':scheme', 'http'),
                   (':authority', 'localhost')]
        if body is not None and not req.get('no_length'):
            headers.append(('content-length',
                            str(req.get('declare', len(body)))))
        headers += [tuple(h) for h in req.get('headers', [])]
        self.conn.send_headers(sid, headers, end_stream=body is None)
        if 'declare' in req or req.get('no_length'):
            # let the server judge a length that does not match
            self.conn._get_stream_by_id(sid)._expected_content_length = None
        self.streams[sid] = {'status': None, 'headers': {}, 'data': b'',
                             'ended': False, 'reset': None}
        if body is not None:
            if 'partial' in req:
                body = body[:req['partial']]
            self.pending[sid] = [body, 'partial' not in req,
                                 req.get('frame', 16384)]
        self.send_bodies()
        return sid

    def send_bodies(self):
        for sid, p in list(self.pending.items()):
            body, end, frame = p
            st = self.streams[sid]
            if st['ended'] or st['reset'] is not None:
                del self.pending[sid]
                continue
            try:
                while body:
                    n = min(len(body), frame,
                            self.conn.local_flow_control_window(sid),
                            self.conn.max_outbound_frame_size)
                    if n <= 0:
                        break
                    self.conn.send_data(sid, body[:n])
                    body = body[n:]
                if not body and end:
                    self.conn.end_stream(sid)
                if not body:
                    del self.pending[sid]
                else:
                    p[0] = body
            except (h2.exceptions.StreamClosedError,
                    h2.exceptions.ProtocolError):
                del self.pending[sid]
        self.flush()

    def pump(self, timeout):
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            return True
        except OSError:
            self.closed = True
            return False
        if not data:
            self.closed = True
            return False
        for e in self.conn.receive_data(data):
            st = self.streams.get(getattr(e, 'stream_id', None))
            if isinstance(e, h2.events.ResponseReceived) and st:
                st['headers'] = dict(e.headers)
                st['status'] = int(st['headers'][':status'])
            elif isinstance(e, h2.events.DataReceived):
                if st is not None:
                    st['data'] += e.data
                if self.ack and e.flow_controlled_length:
                    try:
                        self.conn.acknowledge_received_data(
                            e.flow_controlled_length, e.stream_id)
                    except h2.exceptions.StreamClosedError:
                        pass
            elif isinstance(e, h2.events.StreamEnded) and st:
                st['ended'] = True
            elif isinstance(e, h2.events.StreamReset) and st:
                st['reset'] = int(e.error_code)
        self.send_bodies()
        return True

    def over(self, sids):
        return all(self.streams[s]['ended']
                   or self.streams[s]['reset'] is not None for s in sids)

    def wait(self, pred, deadline):
        while time.time() < deadline:
            if pred():
                return True
            if not self.pump(0.02):
                return pred()
        return pred()

    def wait_status(self, cond, deadline):
        # keep the connection served while the numbers are polled
        while time.time() < deadline:
            if poll(cond, time.time() + 0.001):
                return True
            self.pump(0.02)
        return False

    def rst(self, sids):
        for s in sids:
            try:
                self.conn.reset_stream(s, error_code=8)    # CANCEL
            except (h2.exceptions.StreamClosedError,
                    h2.exceptions.ProtocolError):
                pass
            self.pending.pop(s, None)
        self.flush()


def main():
    spec = json.load(sys.stdin)
    deadline = time.time() + spec.get('timeout', 60)
    c = Client(spec)
    sids = []
    for req in spec['requests']:
        for _ in range(req.get('repeat', 1)):
            sids.append(c.start(req))

    until = spec.get('until', 'done')
    if until == 'done':
        ok = c.wait(lambda: c.over(sids), deadline)
    elif until == 'data':
        ok = c.wait(lambda: all(c.streams[s]['data'] for s in sids),
                    deadline)
    elif 'body_re' in until:
        # every stream's body so far matches (a heartbeat arrived, say)
        ok = c.wait(lambda: all(re.search(until['body_re'],
                                          c.streams[s]['data'].decode(
                                              'utf-8', 'replace'))
                                for s in sids), deadline)
    elif until.get('data'):
        # some DATA on every stream, then the numbers
        ok = c.wait(lambda: all(c.streams[s]['data'] for s in sids),
                    deadline) and c.wait_status(until, deadline)
    else:
        ok = c.wait_status(until, deadline)

    then = spec.get('then', 'wait')
    alive = None
    if then in ('rst', 'rst_open'):
        c.rst([s for s in sids if not c.streams[s]['ended']
               and (then == 'rst' or c.streams[s]['status'] is None)])
        probe = c.start({'path': spec.get('probe', '/')})
        # its header (a stalled window may hold its body)
        alive = c.wait(lambda: c.streams[probe]['status'] is not None
                       or c.over([probe]), deadline) \
            and c.streams[probe]['status'] is not None
        del c.streams[probe]
    elif then == 'close':
        c.sock.close()
        c.closed = True
    else:
        ok = c.wait(lambda: c.over(sids), deadline) and ok

    if 'after' in spec and not c.closed:
        ok = c.wait_status(spec['after'], deadline) and ok
        c.rst([s for s in sids if not c.over([s])])

    out = []
    for s in sids:
        st = c.streams[s]
        try:
            body, utf8 = st['data'].decode('utf-8'), True
        except UnicodeDecodeError:
            body, utf8 = st['data'].decode('utf-8', 'replace'), False
        out.append({'status': st['status'], 'headers': st['headers'],
                    'body': body, 'utf8': utf8, 'bytes': len(st['data']),
                    'ended': st['ended'], 'reset': st['reset']})
    json.dump({'ok': ok, 'alive': alive, 'responses': out}, sys.stdout)
    if not c.closed:
        c.sock.close()


main()
