#!/usr/bin/env bash
# SSE over NDJSON files (docs/benchmarks/sse.md, "Files").  127.0.0.1
# only, port $PORT, a private prefix under build/; nginx (1 worker,
# thread pools io and cpu, 2 threads each) in the foreground, stopped by
# PID.  The test
# files are generated here (docs/examples/gen-ndjson.awk) and deleted on
# exit, whatever happens: at most about 1.2 GB on disk while it runs.
#   bench/sse/file.sh                     (after `make build`)
#   PORT=8081 REPEAT=3 KW=u499 bench/sse/file.sh
# 1. one search stream over files of 1 MB, 10 MB, 100 MB and 1 GB (in the
#    page cache): time to the first event, lines/s, MB/s; the worker's
#    VmRSS and VmHWM after each size; then 20 streams of the 1 MB file
#    for the spread of the time to the first event;
# 2. the 1 GB search as a stream (curl), as `grep -c` and as a plain C
#    loop (plain_ndjson.c), REPEAT times each, interleaved, with the CPU
#    time of each (the worker's from /proc, utime + stime of all threads);
# 3. 100 concurrent streams over 100 different 1 MB files.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/sse
PORT=${PORT:-8081}
REPEAT=${REPEAT:-3}
KW=${KW:-u499}
NGINX=${NGINX:-/usr/sbin/nginx}
SO=$ROOT/build/nginx/objs/ngx_http_asyncx_module.so
PREFIX=$ROOT/build/bench-sse-file
DATA=$PREFIX/data
B=http://127.0.0.1:$PORT
GEN=$ROOT/docs/examples/gen-ndjson.awk

remove_data() { rm -rf "$DATA"; }
STOP_HOOK=remove_data
. "$HERE/../lib.sh"

ticks() { awk '{ print $14 + $15 }' "/proc/$WORKER/stat"; }
hz=$(getconf CLK_TCK)

echo "== machine"
date
echo "nproc=$(nproc) kernel=$(uname -r)"
grep -m1 'model name' /proc/cpuinfo || true
uptime
echo "commit $(git -C "$ROOT" rev-parse --short HEAD)"

mkdir -p "$PREFIX"/{conf,logs,temp} "$DATA"
cc -O2 -Wall -Wextra -o "$PREFIX/plain_ndjson" "$HERE/plain_ndjson.c"

# about 160 bytes a line
declare -A LINES=([1m]=6500 [10m]=65000 [100m]=650000 [1g]=6500000)
for f in 1m 10m 100m 1g; do
    awk -v lines="${LINES[$f]}" -v seed=7 -f "$GEN" > "$DATA/$f.ndjson"
done
for i in $(seq 100); do
    awk -v lines=6500 -v seed="$((i + 100))" -f "$GEN" > "$DATA/c$i.ndjson"
done
cat "$DATA"/*.ndjson > /dev/null      # into the page cache
ls -l "$DATA"/1m.ndjson "$DATA"/10m.ndjson "$DATA"/100m.ndjson \
      "$DATA"/1g.ndjson | awk '{ print $5, $9 }'

sed -e "s|@MODULE_SO@|$SO|" -e "s|@PORT@|$PORT|" \
    "$HERE/nginx-file.conf.in" > "$PREFIX/conf/nginx.conf"
"$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf" -g 'daemon off;' &
NGINX_PID=$!
wait_up
echo "worker idle VmRSS_kb=$(kb VmRSS) VmHWM_kb=$(kb VmHWM)"

echo
echo "== 1. one stream per file size, keyword=$KW ($REPEAT runs each)"
for f in 1m 10m 100m 1g; do
    size=$(stat -c %s "$DATA/$f.ndjson")
    for _ in $(seq "$REPEAT"); do
        "$HERE/client.pl" one "$PORT" "/search?file=$f.ndjson&keyword=$KW" |
            awk -v n="${LINES[$f]}" -v b="$size" -v f="$f" '
                { print f, $0; split($4, t, "=")
                  printf "  lines_per_s=%.0f MB_per_s=%.1f\n",
                         n / t[2], b / t[2] / 1e6 }'
    done
    echo "  after $f: worker VmRSS_kb=$(kb VmRSS) VmHWM_kb=$(kb VmHWM)"
done

echo
echo "== 1b. time to the first event: 20 streams one after the other (1 MB file)"
for _ in $(seq 20); do
    "$HERE/client.pl" one "$PORT" "/search?file=1m.ndjson&keyword=$KW"
done | sed 's/.*first_data_ms=\([0-9.]*\).*/\1/' | sort -n |
    awk '{ v[NR] = $1 } END { printf "first_data_ms min=%s median=%s max=%s\n",
                               v[1], v[int((NR + 1) / 2)], v[NR] }'

echo
echo "== 2. the 1 GB file: stream vs grep -c vs plain C loop, keyword=$KW"
size=$(stat -c %s "$DATA/1g.ndjson")
TIMEFORMAT='%R %U %S'
for r in $(seq "$REPEAT"); do
    t0=$(ticks)
    out=$(curl -s -o "$PREFIX/body" -w '%{time_starttransfer} %{time_total}' \
               "$B/search?file=1g.ndjson&keyword=$KW")
    t1=$(ticks)
    set -- $out
    matches=$(grep -o '"total_matches": [0-9]*' "$PREFIX/body" | tail -1)
    awk -v r="$r" -v s="$2" -v b="$size" -v c="$(( t1 - t0 ))" -v hz="$hz" \
        -v m="$matches" 'BEGIN {
        printf "stream run=%d total_s=%.3f MB_per_s=%.1f worker_cpu_s=%.2f " \
               "MB_per_cpu_s=%.1f (%s)\n", r, s, b / s / 1e6, c / hz,
               b / (c / hz) / 1e6, m }'
    t=$( { time grep -c -- "$KW" "$DATA/1g.ndjson" > "$PREFIX/grep.out"; } 2>&1 )
    set -- $t
    awk -v r="$r" -v s="$1" -v u="$2" -v y="$3" -v b="$size" \
        -v m="$(cat "$PREFIX/grep.out")" 'BEGIN {
        printf "grep   run=%d total_s=%.3f MB_per_s=%.1f cpu_s=%.2f " \
               "MB_per_cpu_s=%.1f (matches %s)\n", r, s, b / s / 1e6,
               u + y, b / (u + y) / 1e6, m }'
    t=$( { time "$PREFIX/plain_ndjson" "$DATA/1g.ndjson" "$KW" \
               > "$PREFIX/plain.out"; } 2>&1 )
    set -- $t
    awk -v r="$r" -v u="$2" -v y="$3" -v b="$size" '{
        print $0; printf "  plain run=%d cpu_s=%.2f MB_per_cpu_s=%.1f\n",
                         r, u + y, b / (u + y) / 1e6 }' "$PREFIX/plain.out"
done
echo "worker after the 1 GB runs: VmRSS_kb=$(kb VmRSS) VmHWM_kb=$(kb VmHWM)"

echo
echo "== 3. 100 concurrent streams over 100 different 1 MB files"
"$HERE/client.pl" many "$PORT" "/search?file=c%d.ndjson&keyword=$KW" 100
echo "worker VmRSS_kb=$(kb VmRSS) VmHWM_kb=$(kb VmHWM)"
curl -s "$B/asyncx/status" | tr -d ' \n' | grep -o '"streams":{[^}]*}' || true
echo "error_log warn+ lines: $(grep -c . "$PREFIX/logs/error.log" || true)"
