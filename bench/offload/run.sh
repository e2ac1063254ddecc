#!/usr/bin/env bash
# Offload benchmark (docs/benchmarks/offload.md).  Short runs (<= 10 s
# each), 127.0.0.1 only, a private prefix under build/, port $PORT.
#   bench/offload/run.sh            (from the repository root, after make)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PORT=${PORT:-21100}
NGINX=${NGINX:-/usr/sbin/nginx}
SO=$ROOT/build/nginx/objs/ngx_http_asyncx_module.so
PREFIX=$ROOT/build/bench-offload
CPU_THREADS=${CPU_THREADS:-$(nproc)}
DUR=${DUR:-8}
B=http://127.0.0.1:$PORT
HERE=$ROOT/bench/offload

[ -f "$SO" ] || { echo "build the module first: make" >&2; exit 1; }

N=$ROOT/build/nginx
cc -O2 -Wall -Wno-unused-parameter -I"$N/src/core" -I"$N/src/event" \
   -I"$N/src/event/modules" -I"$N/src/os/unix" -I"$N/objs" -I"$ROOT/src" \
   -I"$ROOT/src/demo" \
   -o "$ROOT/build/offload-baseline" "$HERE/baseline.c" \
   "$ROOT/src/ngx_http_asyncx_util.c" "$ROOT/src/demo/ngx_http_asyncx_dataset.c" \
   -lcrypto -lcjson -lpcre2-8
BASE=$ROOT/build/offload-baseline

rm -rf "$PREFIX"
mkdir -p "$PREFIX"/{conf,logs,temp}
sed -e "s|@MODULE_SO@|$SO|" -e "s|@PORT@|$PORT|" \
    -e "s|@CPU_THREADS@|$CPU_THREADS|" "$HERE/nginx.conf.in" \
    > "$PREFIX/conf/nginx.conf"

"$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
trap 'kill -QUIT $NGINX_PID 2>/dev/null || true; wait $NGINX_PID 2>/dev/null || true' EXIT

for _ in $(seq 50); do
    curl -sf "$B/ping" >/dev/null && break
    sleep 0.1
done

echo "== machine"
date
echo "nproc=$(nproc) kernel=$(uname -r) cpu_pool_threads=$CPU_THREADS"
grep -m1 'model name' /proc/cpuinfo || true
uptime

echo
echo "== 1. PBKDF2-HMAC-SHA256, 600000 iterations"
echo "-- baseline: PKCS5_PBKDF2_HMAC called directly, one core"
"$BASE" pbkdf2 600000 3
echo "-- idle latency of /ping (same worker), 50 req/s"
"$HERE/probe.pl" "$B/ping" 50 2
echo "-- nginx: wrk -t2 -c8 -d${DUR}s POST /auth/hash, probing /ping meanwhile"
"$HERE/probe.pl" "$B/ping" 50 $((DUR - 1)) > "$PREFIX/probe.txt" &
PROBE=$!
wrk -t2 -c8 -d"${DUR}s" --latency -s "$HERE/hash.lua" "$B/auth/hash" \
    | grep -E 'Requests/sec|Latency|50%|99%|requests in|Non-2xx'
wait $PROBE
echo "-- /ping while hashing saturates the CPU pool:"
cat "$PREFIX/probe.txt"

echo
echo "== 2. JSON parsing, the 10,000-item data set document (1,163,303 bytes)"
echo "-- baseline: cJSON_ParseWithLengthOpts called directly, one core"
"$BASE" json 10000 3
echo "-- nginx, one request: parse_ms as measured in the thread"
for _ in 1 2 3; do
    curl -s -X POST "$B/parse/json" | grep -o '"parse_ms":[0-9.]*,"bytes":[0-9]*,"mb_per_s":[0-9.]*'
done
echo "-- nginx: wrk -t2 -c4 -d${DUR}s POST /parse/json (empty body: generate + parse)"
wrk -t2 -c4 -d"${DUR}s" --latency -s "$HERE/post.lua" "$B/parse/json" \
    | grep -E 'Requests/sec|Latency|99%|requests in|Non-2xx'
echo "-- nginx: wrk -t2 -c4 -d${DUR}s POST /parse/json with the 1.16 MB document as body"
python3 - "$PREFIX/doc.json" <<'PY'
import sys
V = """async await event loop task future coroutine thread
process queue socket stream buffer request response header
payload server client worker router handler module nginx
fastapi uvicorn starlette json token bucket semaphore limit
rate batch search filter transform aggregate cache index
vector matrix record field value schema parser lexer
compiler kernel memory latency throughput signal timer sleep
yield gather select epoll pool executor lambda closure""".split()
def rec(i):
    x = ((i + 1) * 2654435761) % 2**32; w = []
    for _ in range(6):
        x ^= (x << 13) % 2**32; x ^= x >> 17; x ^= (x << 5) % 2**32
        r = x % 1000; w.append("python" if r == 0 else V[r % 64])
    return "record %d: %s" % (i, " ".join(w))
doc = "[" + ", ".join('{"id": %d, "content": "%s", "score": %d, "tags": ["a", "b"]}'
                      % (i, rec(i), (i * 37) % 101) for i in range(10000)) + "]"
open(sys.argv[1], "w").write(doc)
PY
BODY_FILE="$PREFIX/doc.json" wrk -t2 -c4 -d"${DUR}s" --latency \
    -s "$HERE/post-file.lua" "$B/parse/json" \
    | grep -E 'Requests/sec|Latency|99%|requests in|Non-2xx'

echo
echo "== 3. Regex bulk matching over 1,000,000 data set records"
for pat in 'python' 'python \w+' '\b(nginx|fastapi)\b.*\bjson\b'; do
    echo "-- pattern: $pat"
    echo -n "   baseline (PCRE2 JIT directly, one core): "
    "$BASE" regex "$pat" 1000000
    json_pat=$(printf '%s' "$pat" | sed 's/\\/\\\\/g')
    for _ in 1 2 3; do
        echo -n "   nginx: "
        curl -s -X POST "$B/regex/match" \
            -d "{\"pattern\": \"$json_pat\", \"count\": 1000000, \"limit\": 0}" \
            | grep -o '"match_count":[0-9]*,"total":[0-9]*\|"match_ms":[0-9.]*,"matches_per_s":[0-9]*' | tr '\n' ' '
        echo
    done
done
echo "-- nginx: wrk -t2 -c4 -d${DUR}s, pattern \"python\" over 100,000 records per request"
cat > "$PREFIX/regex.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"pattern": "python", "count": 100000, "limit": 0}'
LUA
wrk -t2 -c4 -d"${DUR}s" --latency -s "$PREFIX/regex.lua" "$B/regex/match" \
    | grep -E 'Requests/sec|Latency|99%|requests in|Non-2xx'

echo
echo "== pool counters after the run"
curl -s "$B/asyncx/status"
echo
