#!/usr/bin/env bash
# /files/read latency while 40 file streams scan (attack finding A7):
# the demo's configuration on PORT under PREFIX, a generated NDJSON file
# of LINES lines (docs/examples/gen-ndjson.awk), 20 sequential
# /files/read idle, then 20 while 40 searches that parse most lines
# (keyword=GET&field=msg: few matches, every GET line parsed) run; the
# streams' wall time from their start.  ROUNDS rounds.
#
#   bench/sse/io_pool_latency.sh MODULE_SO [PORT] [PREFIX]
set -euo pipefail

SO=${1:?module .so}
PORT=${2:-2920}
PREFIX=${3:-/tmp/asyncx-io-pool-latency}
LINES=${LINES:-600000}
ROUNDS=${ROUNDS:-2}
Q=${Q:-keyword=GET&field=msg}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
P=http://127.0.0.1:$PORT

mkdir -p "$PREFIX"/{conf,logs,html,temp,files,data}
printf 'Hello\n' > "$PREFIX/files/test.txt"
[ -f "$PREFIX/data/big.ndjson" ] || \
    awk -v lines="$LINES" -v seed=1 -f "$ROOT/docs/examples/gen-ndjson.awk" \
        > "$PREFIX/data/big.ndjson"
cp "$SO" "$PREFIX/module.so"
sed -e "s|@PORT@|$PORT|g" -e "s|@MODULE_SO@|$PREFIX/module.so|g" \
    -e "s|@PREFIX@|$PREFIX|g" -e "s|@ROOT@|$ROOT|g" \
    "$ROOT/docs/examples/demo.conf" > "$PREFIX/conf/nginx.conf"
[ "$(id -u)" != 0 ] || chown -R nobody "$PREFIX/files" "$PREFIX/data"

/usr/sbin/nginx -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf"
trap 'kill -QUIT "$(cat "$PREFIX/logs/nginx.pid")"' EXIT
sleep 1
cat "$PREFIX/data/big.ndjson" > /dev/null     # in the page cache
echo "file: $(stat -c %s "$PREFIX/data/big.ndjson") bytes, query: $Q"

lat() {
    for i in $(seq 1 20); do
        curl -s -o /dev/null -w "%{time_total}\n" "$P/files/read?path=test.txt"
    done | sort -n | awk '{a[NR]=$1} END {printf "p50 %.1f ms max %.1f ms",
                                          a[10]*1000, a[20]*1000}'
}

for round in $(seq 1 "$ROUNDS"); do
    echo "round $round idle: /files/read $(lat)"
    t0=$(date +%s.%N)
    pids=""
    for i in $(seq 1 40); do
        curl -s -o /dev/null "$P/ndjson/search?file=big.ndjson&$Q" &
        pids="$pids $!"
    done
    sleep 1
    echo "round $round 40 streams: /files/read $(lat)"
    wait $pids
    echo "round $round 40 streams took $(echo "$(date +%s.%N) - $t0" | bc) s"
done

curl -s "$P/asyncx/status" | python3 -c 'import json, sys
d = json.load(sys.stdin)
print("jobs:", {k: v["completed"] for k, v in d["pools"].items()})'
