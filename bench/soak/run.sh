#!/usr/bin/env bash
# Fault soak over the demo configuration (2 workers): mixed traffic on
# every endpoint while faults are injected, then checks that nothing
# leaked or broke.  Results: docs/benchmarks/soak.md.
#
#   bench/soak/run.sh                 (after `make build`; 600 s)
#   DURATION=300 PORT=25500 bench/soak/run.sh
#   WAIT=30: the thread-pool clients wait 30 s (default 10)
#
# Faults: failing / hanging / garbage-answering backends (the mocks'
# fail_mode=status|slow|text|big through ?fail=), clients aborting
# mid-pipeline and mid-stream, `nginx -s reload` every 30 s, bursts of
# slow hashes at the CPU pool and at a soak-only pool of threads=1
# max_queue=4 (/soak/hash), which the burst drives full (503s).
#
# NGINX= and SO= select other binaries, e.g. the ASan build of
# `make test-asan`:
#   NGINX=build/asan/nginx-1.22.1/objs/nginx \
#   SO=build/asan/nginx-1.22.1/objs/ngx_http_asyncx_module.so bench/soak/run.sh
#
# Every request is logged as "<kind> <HTTP status>" (000: no answer
# before curl's --max-time).  The run FAILS (prints "soak: FAILED", exits
# 1) when any request went unanswered outside the two deliberately
# aborting clients, when a kind got a status outside its expected set,
# or when a check after the traffic fails (see docs/benchmarks/soak.md).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PORT=${PORT:-25500}
DURATION=${DURATION:-600}
# how long a client of the thread pools waits (the hash bursts queue
# 40 hashes at the CPU pool: seconds on a slow machine)
WAIT=${WAIT:-10}
PREFIX=$ROOT/build/soak
NGINX=$(realpath "${NGINX:-/usr/sbin/nginx}")
SO=$(realpath "${SO:-$ROOT/build/nginx/objs/ngx_http_asyncx_module.so}")
RSS_MARGIN=${RSS_MARGIN:-15}     # percent, see docs/benchmarks/soak.md
# for an ASan build (ignored by the stock binary): what `make test-asan`
# uses; nginx sends the workers' stderr, so every report, to error.log
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:detect_odr_violation=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:suppressions=$ROOT/t/ubsan.supp}
URL=http://127.0.0.1:$PORT

rm -rf "$PREFIX" && mkdir -p "$PREFIX"/{conf,logs,html,temp,files,out}
# a private copy: every reload re-opens the module, and a rebuild during
# the soak must not change the code under test
cp "$SO" "$PREFIX/ngx_http_asyncx_module.so" && SO=$PREFIX/ngx_http_asyncx_module.so
sed -e "s|@PORT@|$PORT|g" -e "s|@MODULE_SO@|$SO|g" -e "s|@PREFIX@|$PREFIX|g" \
    -e "s|@ROOT@|$ROOT|g" "$ROOT/docs/examples/demo.conf" > "$PREFIX/conf/nginx.conf"
# the soak-only pool whose queue the bursts fill: one thread, 4 queued
perl -0pi -e 's|^(thread_pool asyncx_cpu [^\n]*\n)|$1thread_pool soak_tiny threads=1 max_queue=4;\n|m;
    s|(location = /auth/hash \{)|location = /soak/hash {\n            asyncx_thread_pools io=soak_tiny cpu=soak_tiny;\n            asyncx_pbkdf2_iterations 100000;\n            asyncx_password_hash;\n        }\n\n        $1|' \
    "$PREFIX/conf/nginx.conf"
grep -q soak_tiny "$PREFIX/conf/nginx.conf" || { echo "soak: config edit failed"; exit 1; }
echo soak > "$PREFIX/files/test.txt"
[ "$(id -u)" = 0 ] && chown -R nobody "$PREFIX/files"

env -u NGINX "$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf" || exit 1
sleep 1
MASTER=$(cat "$PREFIX/logs/nginx.pid")
END=$(( $(date +%s) + DURATION ))

# RSS (kB) of the current generation's workers, summed: old workers that
# are still draining after a reload ("is shutting down") are left out
rss_workers() {
    local s=0 w
    for w in $(pgrep -P "$MASTER"); do
        ps -o args= -p "$w" | grep -q 'worker process *$' || continue
        s=$((s + $(awk '/VmRSS/ { print $2 }' "/proc/$w/status")))
    done
    echo "$s"
}
rss_master() { awk '/VmRSS/ { print $2 }' "/proc/$MASTER/status"; }

# every client logs "<kind> <http code>" per request
client() {   # kind, then curl arguments
    local kind=$1; shift
    while [ "$(date +%s)" -lt "$END" ]; do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$@")
        echo "$kind $code"
    done >> "$PREFIX/out/$kind.log"
}

# orders: 3 in 6 carry a backend fault, logged as the kind
# (orders-fault-<call>-<mode>); the others are plain or sequential
FAILS=(status slow text big)
orders() {
    local i=0 kind
    while [ "$(date +%s)" -lt "$END" ]; do
        i=$((i + 1)); mode=${FAILS[$((i / 6 % 4))]}
        case $((i % 6)) in
        0|5) q=""; kind=orders ;;
        1) q="?fail=%EB%B0%B0%EC%86%A1&fail_mode=$mode"
           kind=orders-fault-shipping-$mode ;;
        2) q="?fail=%EA%B0%80%EA%B2%A9&fail_mode=$mode"
           kind=orders-fault-price-$mode ;;
        3) q="?mode=sequential"; kind=orders-sequential ;;
        4) q="?fail=%EC%82%AC%EC%9A%A9%EC%9E%90&fail_mode=slow"
           kind=orders-fault-user-slow ;;
        esac
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
               -d '{"order": 1}' "$URL/orders/process$q")
        echo "$kind $code"
    done >> "$PREFIX/out/orders.log"
}

writes() {   # each file is written whole or not at all: 64 KiB of one digit
    local i=0 payload=$PREFIX/out/payload.$1
    while [ "$(date +%s)" -lt "$END" ]; do
        i=$((i + 1)); d=$((i % 10))
        head -c 65536 /dev/zero | tr '\0' "$d" > "$payload"
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 \
               --data-binary @"$payload" \
               "$URL/files/write?path=soak-$((i % 8)).txt")
        echo "write $code"
    done >> "$PREFIX/out/write.log"
}

for i in 1 2 3 4; do orders & done
for i in 1 2; do writes "$i" & done
client read --max-time "$WAIT" "$URL/files/read?path=soak-1.txt" &
client hash --max-time "$WAIT" -X POST -d '{"password": "soak"}' "$URL/auth/hash" &
client json --max-time "$WAIT" -X POST "$URL/parse/json" &
client regex --max-time "$WAIT" -X POST -d '{"pattern": "py(th)?on", "count": 100000}' "$URL/regex/match" &
client ratelimit --max-time 20 "$URL/rate-limit-test?requests=10" &
client sse --max-time "$WAIT" "$URL/stream/search?keyword=python&data_size=100000" &
client sse_abort --max-time 0.05 "$URL/stream/search?keyword=python&data_size=10000000" &
client order_abort --max-time 0.3 -X POST "$URL/orders/process" &
client status --max-time 5 "$URL/asyncx/status" &

RELOADS=0; BURSTS=0; GEN=0
# burst KIND URL: 40 hash requests at once from one process, one line
# "KIND <status>" each
burst() {
    local args=() j
    for j in $(seq 40); do args+=(-o /dev/null "$2"); done
    curl -s --no-progress-meter --parallel --parallel-immediate \
         --parallel-max 40 \
         -w "$1 %{http_code}\n" --max-time 30 -X POST \
         -d '{"password": "burst"}' "${args[@]}"
}

MASTER_RSS_START=$(rss_master)
while [ "$(date +%s)" -lt "$END" ]; do
    sleep 30
    [ "$(date +%s)" -ge "$END" ] && break
    # every generation of workers is measured at the same age (30 s of
    # traffic, just before it is replaced), so generations compare
    GEN=$((GEN + 1)); echo "$GEN $(rss_workers) $(rss_master)" >> "$PREFIX/out/rss.series"
    kill -HUP "$MASTER" && RELOADS=$((RELOADS + 1))
    # a burst of hashes at the 2-thread CPU pool, and one that overflows
    # the soak pool (1 running + 4 queued, the rest must be 503 at once).
    # Each burst is one curl opening its 40 connections at once: 40 curl
    # processes started one by one on a loaded machine arrived slower
    # than the pool finished hashes, and the queue never filled.
    burst 'burst' "$URL/auth/hash" >> "$PREFIX/out/burst.log" &
    burst 'queue_full' "$URL/soak/hash" >> "$PREFIX/out/queue_full.log" &
    BURSTS=$((BURSTS + 1))
done
wait
sleep 3

echo "# soak $(date -u '+%Y-%m-%d %H:%M UTC'), ${DURATION}s, $(nproc) cores, $(uname -r)"
echo "## requests by kind and status"
cat "$PREFIX"/out/*.log | sort | uniq -c | sort -k2,2 -k1,1nr
echo "## faults injected"
echo "reloads $RELOADS, hash bursts $BURSTS x 40 at the CPU pool and $BURSTS x 40 at the 1+4 soak pool, orders with a backend fault $(grep -c '^orders-fault-' "$PREFIX/out/orders.log") of $(grep -c . "$PREFIX/out/orders.log") (3 in 6), streams cut by their client after 50 ms $(grep -c . "$PREFIX/out/sse_abort.log"), orders cut by their client after 0.3 s $(grep -c . "$PREFIX/out/order_abort.log")"
FAILED=""
# what each kind may answer; anything else, and any 000 (no answer in
# time) outside the aborting clients, fails the soak
echo "## unanswered or unexpected"
UNEXPECTED=$(cat "$PREFIX"/out/*.log | awk '
    { k = $1; c = $2; ok = (c == "200") }
    k ~ /^orders-fault-(shipping|user)-/   { ok = (c == "502") }
    k == "orders-fault-price-status" || k == "orders-fault-price-slow" \
        || k == "orders-fault-price-text" || k == "orders-fault-price-big" \
                                          { ok = (c == "200") }
    k == "queue_full"                     { ok = (c == "200" || c == "503") }
    k == "read"                           { ok = (c == "200" || c == "404") }
    k == "sse_abort"                      { ok = (c == "200" || c == "000") }
    k == "order_abort"                    { ok = (c == "000") }
    !ok { n[k " " c]++ }
    END { for (x in n) print n[x], x }' | sort -k2)
if [ -n "$UNEXPECTED" ]; then
    echo "$UNEXPECTED"
    echo "$UNEXPECTED" | grep -q ' 000$' && FAILED="$FAILED unanswered"
    echo "$UNEXPECTED" | grep -qv ' 000$' && FAILED="$FAILED unexpected-status"
else
    echo "none"
fi
echo "## after the traffic"
LIMITER=$(curl -s "$URL/rate-limiter/status"); echo "$LIMITER"
echo "$LIMITER" | grep -q '"concurrent":{"current":0,.*"waiting":0}' || FAILED="$FAILED limiter"
ACTIVE=$(curl -s "$URL/asyncx/status" | perl -MJSON::PP -0 -ne '
    my $j = decode_json($_);
    my $run = 0; $run += $_->{running} + $_->{queued} for values %{ $j->{pools} };
    printf "pipelines active %d, streams active %d, pool tasks running+queued %d, soak pool rejected %d\n",
           $j->{pipelines}{active}, $j->{streams}{active}, $run,
           $j->{pools}{soak_tiny}{rejected} // 0;')
echo "$ACTIVE"
echo "$ACTIVE" | grep -q '^pipelines active 0, streams active 0, pool tasks running+queued 0,' \
    || FAILED="$FAILED active"
grep -q 'queue_full 503' "$PREFIX/out/queue_full.log" || FAILED="$FAILED queue-not-full"
echo "## worker RSS per generation (kB, both workers, at 30 s of age)"
awk '{ printf "%s:%s ", $1, $2 } END { print "" }' "$PREFIX/out/rss.series"
echo "## master RSS (kB) before each reload"
awk '{ printf "%s:%s ", $1, $3 } END { print "" }' "$PREFIX/out/rss.series"
# Each generation is a new worker: what one leaks per request shows in
# every generation alike (a ceiling would catch it, not a trend), and
# what is carried over reloads lives in the master, which every new
# worker inherits, or in the shared zones.  So the trend checked is the
# master's: its RSS before the last reload against the one before the
# second (the first reload maps and touches the shared zones and keeps
# the new cycle, docs/benchmarks/soak.md).  A worker's RSS at 30 s of
# age moves between about 29 and 57 MB from one generation to the next
# with the state of its heap (it gives the heap back after an idle
# second), in steps of about 9.5 MB, so the workers' check is the band:
# the median of the last half of the generations may not exceed the
# largest of the first half by more than the margin.
half_median() {   # $1: head or tail; the rss.series' worker column
    local n=$(( $(wc -l < "$PREFIX/out/rss.series") / 2 ))
    [ "$n" -gt 0 ] || n=1
    "$1" -n "$n" "$PREFIX/out/rss.series" | awk '{ print $2 }' | sort -n \
        | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] \
                                    : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
half_max() {      # the largest worker RSS of the first half
    local n=$(( $(wc -l < "$PREFIX/out/rss.series") / 2 ))
    [ "$n" -gt 0 ] || n=1
    head -n "$n" "$PREFIX/out/rss.series" | awk '$2 > m { m = $2 } END { print m }'
}
RSS_FIRST=$(half_max)
RSS_LAST=$(half_median tail)
RSS_VERDICT=$(awk -v m="$RSS_MARGIN" -v f="$RSS_FIRST" -v l="$RSS_LAST" \
    '{ min = (NR == 1 || $2 < min) ? $2 : min; max = $2 > max ? $2 : max }
    END { printf "workers: median of the last half %d, largest of the first half %d, min %d, max %d: within %s%%: %s\n",
          l, f, min, max, m, (l <= f * (1 + m / 100)) ? "yes" : "NO" }' "$PREFIX/out/rss.series")
echo "$RSS_VERDICT"; echo "$RSS_VERDICT" | grep -q 'yes$' || FAILED="$FAILED rss"
# ASan's quarantine holds what the master frees (about 0.5 MB a reload)
ASAN_BIN=0; grep -qa __asan_init "$NGINX" && ASAN_BIN=1
MASTER_VERDICT=$(awk -v m="$RSS_MARGIN" -v asan="$ASAN_BIN" '
    NR == 2 { second = $3 } { last = $3 }
    END { if (asan) { print "master: an ASan binary (its quarantine grows), not checked: yes"; exit }
          if (NR < 3) { print "master: fewer than 3 reloads, not checked: yes"; exit }
          printf "master: %d kB before the last reload, %d before the second: within %s%%: %s\n",
                 last, second, m, (last <= second * (1 + m / 100)) ? "yes" : "NO" }' \
    "$PREFIX/out/rss.series")
echo "$MASTER_VERDICT"; echo "$MASTER_VERDICT" | grep -q 'yes$' || FAILED="$FAILED master-rss"
echo "master RSS at the start ${MASTER_RSS_START} kB, at the end $(rss_master) kB"
bad=0
for f in "$PREFIX"/files/soak-*.txt; do
    size=$(stat -c %s "$f"); kinds=$(tr -d '\n' < "$f" | fold -w1 | sort -u | wc -l)
    if [ "$size" != 65536 ] || [ "$kinds" != 1 ]; then bad=$((bad + 1)); echo "torn file: $f"; fi
done
echo "written files checked: $(ls "$PREFIX"/files/soak-*.txt | wc -l), torn: $bad"
[ "$bad" = 0 ] || FAILED="$FAILED torn-files"
LOG=$PREFIX/logs/error.log
BAD_LINES='\[alert\]\|\[emerg\]\|\[crit\]\|AddressSanitizer\|LeakSanitizer\|runtime error:'
echo "error.log: $(grep -c '\[alert\]' "$LOG") alert, $(grep -c '\[emerg\]' "$LOG") emerg, $(grep -c '\[crit\]' "$LOG") crit, $(grep -c 'AddressSanitizer\|LeakSanitizer\|runtime error:' "$LOG") sanitizer lines"
grep "$BAD_LINES" "$LOG" | head -5
grep -q "$BAD_LINES" "$LOG" && FAILED="$FAILED error-log"
echo "binary: $NGINX"

kill -QUIT "$MASTER"
if [ -n "$FAILED" ]; then echo "soak: FAILED:$FAILED"; exit 1; fi
echo "soak: PASS"
