#!/usr/bin/env bash
# User-space instructions of each phase of the demo's order, counted by
# valgrind's cachegrind as instructions.sh counts a whole order: N orders
# arrive at once on N new connections, and one mock is held (delay 60 s)
# so that the orders stop in front of it; the count at rest, less the
# same with one order, over N - 1, is what each order cost up to there.
# The differences between holds are the phases:
#   stage1    the start: the client's request, its pipeline, stage 1's
#             three calls up to their mocks' timers
#   user      ... and the answers of inventory (0.3 s) and price (0.4 s)
#   shipping  ... and user's answer (0.5 s): stage 1 ends, stage 2 starts
#   payment   ... and shipping's answer: stage 2 ends, stage 3 starts
#   none      ... and payment's answer: the order's answer (the final)
# 127.0.0.1 only, port $PORT, a private prefix under build/.
#   [SO=other.so] [PORT=20500] bench/pipeline/phases.sh [N]
# One line per hold:  PHASES hold=user n=1000 per_order=45112 so=...
# docs/benchmarks/pipeline.md.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/pipeline
PORT=${PORT:-20500}
NGINX=${NGINX:-/usr/sbin/nginx}
SO=${SO:-$ROOT/build/nginx/objs/ngx_http_asyncx_module.so}
N=${1:-1000}
PREFIX=$ROOT/build/bench-pipeline-phases
B=http://127.0.0.1:$PORT

command -v valgrind >/dev/null \
    || { echo "valgrind is needed: apt-get install valgrind" >&2; exit 1; }

. "$HERE/../lib.sh"
. "$HERE/runs.sh"

# state: "active pipelines, active mocks, mocks answered or started"
state() {
    curl -s "$B/asyncx/status" | python3 -c 'import json, sys
p = json.load(sys.stdin)["pipelines"]
print(p["active"], p["mock"]["active"], p["mock"]["total"])'
}

# instructions HOLD N: cachegrind's total once N orders stand still
instructions() {
    local hold=$1 n=$2 edit want a i client
    case $hold in
    stage1)   edit='s/delay=[345]00ms/delay=60s/'; want="$n $((3 * n))" ;;
    user)     edit='s/delay=500ms/delay=60s/';     want="$n $n" ;;
    shipping) edit='s/delay=600ms/delay=60s/';     want="$n $n" ;;
    payment)  edit='s/delay=800ms/delay=60s/';     want="$n $n" ;;
    none)     edit='';                             want="0 0" ;;
    *)        echo "unknown hold $hold" >&2; exit 1 ;;
    esac
    cachegrind_start "$HERE/nginx.conf.in" "$edit"
    # N connections, one order each, all sent before any answer; the
    # client holds them open (keep-alive) until it is stopped
    python3 - "$PORT" "$n" <<'EOF' &
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
body = b'{"order_id": 1001, "user_id": 42, "items": [{"sku": "BOOK-1", "qty": 1}]}'
req = (b'POST /orders/process HTTP/1.1\r\nHost: bench\r\n'
       b'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n'
       % len(body)) + body
conns = [socket.create_connection(('127.0.0.1', port)) for _ in range(n)]
for c in conns:
    c.sendall(req)
time.sleep(600)
EOF
    client=$!
    sleep 2
    for i in $(seq 600); do
        a=$(state)
        # at rest: the pipelines and mocks expected (with no hold: all
        # five calls of every order answered, nothing active)
        set -- $a
        if [ "${1:-} ${2:-}" = "$want" ] \
           && { [ "$hold" != none ] || [ "${3:-0}" -ge $(( 5 * n )) ]; }
        then
            break
        fi
        sleep 0.5
    done
    [ "$i" -lt 600 ] || { echo "orders did not come to rest: $a" >&2; exit 1; }
    sleep 1
    stop
    kill "$client" 2>/dev/null || true
    wait "$client" 2>/dev/null || true
    awk '$1 == "summary:" { print $2 }' "$PREFIX/cachegrind.out"
}

for hold in stage1 user shipping payment none; do
    i1=$(instructions "$hold" 1)
    i2=$(instructions "$hold" "$N")
    echo "PHASES hold=$hold n=1,$N per_order=$(( (i2 - i1) / (N - 1) ))" \
         "so=$SO"
done
