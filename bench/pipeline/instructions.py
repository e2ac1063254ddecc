"""Send N orders (or /calib requests) over C keep-alive connections, each
sending its next as soon as its answer came; exit 1 unless every answer
was 200.  Used by instructions.sh: what is measured is the server's
instruction count, not this client's timing.
    python3 instructions.py PORT N C PATH
"""
import http.client
import sys
import threading

port, n, conc, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), \
    sys.argv[4]
body = b'{"order_id": 1001, "user_id": 42, "items": [{"sku": "BOOK-1", "qty": 1}]}'
lock = threading.Lock()
left = [n]
bad = []


def client():
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=300)
    while True:
        with lock:
            if left[0] == 0:
                return
            left[0] -= 1
        c.request('POST', path, body, {'Content-Type': 'application/json'})
        r = c.getresponse()
        r.read()
        if r.status != 200:
            with lock:
                bad.append(r.status)


threads = [threading.Thread(target=client) for _ in range(conc)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if bad:
    print('answers other than 200:', bad[:10], file=sys.stderr)
    sys.exit(1)
