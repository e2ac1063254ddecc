#!/usr/bin/env bash
# Time to the first event of a file stream, module build A against build
# B (docs/benchmarks/sse.md, "Time to the first event").  127.0.0.1 only,
# ports $PORT (A) and $PORT + 1 (B), private prefixes under build/; both
# nginx (1 worker, thread pools io and cpu of 2 threads) started fresh,
# warmed with 50 streams each, then N pairs of single streams, A then B,
# over a 1 MB file in the page cache; both stopped by PID on exit.
#   bench/sse/first_event.sh A.so B.so [N]
#   RT=1 bench/sse/first_event.sh A.so B.so   # nginx and client SCHED_FIFO:
#                                             # no waiting for a core (root)
# Prints per build the min, quartiles and median of first_data_ms, the
# median of the per-pair ratio B/A, and the mean queue wait and run time
# of each pool's jobs (the module's own monotonic numbers, from
# /asyncx/status?format=prometheus); then a plain "return 200" location
# of B for the floor of this machine.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/sse
SO_A=$(realpath "$1")
SO_B=$(realpath "$2")
N=${3:-60}
PORT=${PORT:-8083}
NGINX=${NGINX:-/usr/sbin/nginx}
PREFIX=$ROOT/build/bench-sse-first
RUN=
[ -z "${RT:-}" ] || RUN="chrt -f 10"

PIDS=()
stop() {
    for p in "${PIDS[@]}"; do
        kill -QUIT "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$PREFIX/data"
}
trap stop EXIT

echo "== machine"
date
echo "nproc=$(nproc) kernel=$(uname -r)"
uptime
echo "commit $(git -C "$ROOT" rev-parse --short HEAD) A=$SO_A B=$SO_B" \
     "pairs=$N RT=${RT:-0}"

mkdir -p "$PREFIX/data"
awk -v lines=6500 -v seed=7 -f "$ROOT/docs/examples/gen-ndjson.awk" \
    > "$PREFIX/data/1m.ndjson"
cat "$PREFIX/data/1m.ndjson" > /dev/null

start() {   # name so port
    local d=$PREFIX/$1
    mkdir -p "$d"/{conf,logs,temp}
    ln -sfn ../data "$d/data"
    sed -e "s|@MODULE_SO@|$2|" -e "s|@PORT@|$3|" \
        -e 's|        location = /asyncx/status {|        location = /floor { return 200 "data: x\\n\\n"; }\n&|' \
        "$HERE/nginx-file.conf.in" > "$d/conf/nginx.conf"
    "$NGINX" -p "$d/" -c "$d/conf/nginx.conf" -g 'daemon off;' &
    PIDS+=($!)
}
start a "$SO_A" "$PORT"
start b "$SO_B" "$((PORT + 1))"

for p in "$PORT" "$((PORT + 1))"; do
    for _ in $(seq 50); do
        curl -sf "http://127.0.0.1:$p/asyncx/status" >/dev/null && break
        sleep 0.1
    done
done

if [ -n "$RUN" ]; then
    for p in "${PIDS[@]}"; do
        for t in /proc/"$(pgrep -P "$p" | head -1)"/task/*; do
            chrt -f -p 10 "${t##*/}" > /dev/null
        done
    done
fi

one() {     # port path: first_data_ms
    $RUN "$HERE/client.pl" one "$1" "$2" |
        sed 's/.*first_data_ms=\([0-9.]*\).*/\1/'
}
pools() {   # port: the pools' histogram sums and counts
    curl -s "http://127.0.0.1:$1/asyncx/status?format=prometheus" |
        grep -E '^asyncx_pool_(queue_wait|run)_seconds_(sum|count)'
}

Q="/search?file=1m.ndjson&keyword=u499"
for _ in $(seq 50); do one "$PORT" "$Q" > /dev/null; one "$((PORT + 1))" "$Q" > /dev/null; done
pools "$PORT" > "$PREFIX/a.0"
pools "$((PORT + 1))" > "$PREFIX/b.0"
for _ in $(seq "$N"); do
    echo "$(one "$PORT" "$Q") $(one "$((PORT + 1))" "$Q")"
done > "$PREFIX/pairs"
pools "$PORT" > "$PREFIX/a.1"
pools "$((PORT + 1))" > "$PREFIX/b.1"

echo
echo "== first_data_ms over $N pairs (1 MB file, keyword=u499)"
sort -n -k1,1 "$PREFIX/pairs" | awk '{ v[NR] = $1 } END {
    printf "A min=%s q1=%s median=%s q3=%s max=%s\n", v[1],
           v[int(NR / 4) + 1], v[int((NR + 1) / 2)], v[int(3 * NR / 4)], v[NR] }'
sort -n -k2,2 "$PREFIX/pairs" | awk '{ v[NR] = $2 } END {
    printf "B min=%s q1=%s median=%s q3=%s max=%s\n", v[1],
           v[int(NR / 4) + 1], v[int((NR + 1) / 2)], v[int(3 * NR / 4)], v[NR] }'
awk '{ print $2 / $1 }' "$PREFIX/pairs" | sort -n |
    awk '{ v[NR] = $1 } END { printf "B/A per pair: median=%.2f\n", v[int((NR + 1) / 2)] }'
awk '{ a += ($1 < 5); b += ($2 < 5) } END {
    printf "under 5 ms: A %d of %d, B %d of %d\n", a, NR, b, NR }' "$PREFIX/pairs"

for x in a b; do
    paste -d' ' "$PREFIX/$x.0" "$PREFIX/$x.1" | awk -v x="$x" '
        { split($1, k, "{"); d[k[1] substr($1, index($1, "pool="))] = $4 - $2 }
        END {
            split("io cpu", P, " ")
            for (i = 1; i <= 2; i++) {
                l = "pool=\"" P[i] "\"}"
                c = d["asyncx_pool_queue_wait_seconds_count" l]
                if (c > 0)
                    printf "%s %s: jobs=%d mean queue_ms=%.3f run_ms=%.3f\n",
                           toupper(x), P[i], c,
                           d["asyncx_pool_queue_wait_seconds_sum" l] / c * 1000,
                           d["asyncx_pool_run_seconds_sum" l] / c * 1000
            }
        }'
done

echo
echo "== floor: B's \"return 200\" location, 20 requests"
for _ in $(seq 20); do one "$((PORT + 1))" /floor; done | sort -n |
    awk '{ v[NR] = $1 } END { printf "first_data_ms min=%s median=%s max=%s\n",
                               v[1], v[int((NR + 1) / 2)], v[NR] }'
