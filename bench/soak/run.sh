#!/usr/bin/env bash
# Fault soak over the demo configuration (2 workers): mixed traffic on
# every endpoint while faults are injected, then checks that nothing
# leaked or broke.  Results: docs/benchmarks/soak.md.
#
#   bench/soak/run.sh                 (after `make build`; 600 s)
#   DURATION=300 PORT=25500 bench/soak/run.sh
#
# Faults: failing / hanging / garbage-answering backends (the mocks'
# fail_mode=status|slow|text|big through ?fail=), clients aborting
# mid-pipeline and mid-stream, `nginx -s reload` every 30 s, bursts of
# slow hashes at the CPU pool.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PORT=${PORT:-25500}
DURATION=${DURATION:-600}
PREFIX=$ROOT/build/soak
NGINX=${NGINX:-/usr/sbin/nginx}
SO=$ROOT/build/nginx/objs/ngx_http_asyncx_module.so
URL=http://127.0.0.1:$PORT

rm -rf "$PREFIX" && mkdir -p "$PREFIX"/{conf,logs,html,temp,files,out}
sed -e "s|@PORT@|$PORT|g" -e "s|@MODULE_SO@|$SO|g" -e "s|@PREFIX@|$PREFIX|g" \
    -e "s|@ROOT@|$ROOT|g" "$ROOT/docs/examples/demo.conf" > "$PREFIX/conf/nginx.conf"
echo soak > "$PREFIX/files/test.txt"
[ "$(id -u)" = 0 ] && chown -R nobody "$PREFIX/files"

env -u NGINX "$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf" || exit 1
sleep 1
MASTER=$(cat "$PREFIX/logs/nginx.pid")
END=$(( $(date +%s) + DURATION ))

rss() { for w in $(pgrep -P "$MASTER"); do awk '/VmRSS/ { print $2 }' "/proc/$w/status"; done \
        | awk '{ s += $1 } END { print s + 0 }'; }

# every client logs "<kind> <http code>" per request
client() {   # kind, then curl arguments
    local kind=$1; shift
    while [ "$(date +%s)" -lt "$END" ]; do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$@")
        echo "$kind $code"
    done >> "$PREFIX/out/$kind.log"
}

FAILS=(status slow text big)
orders() {
    local i=0
    while [ "$(date +%s)" -lt "$END" ]; do
        i=$((i + 1))
        case $((i % 6)) in
        0) q="" ;;
        1) q="?fail=%EB%B0%B0%EC%86%A1&fail_mode=${FAILS[$((i / 6 % 4))]}" ;;
        2) q="?fail=%EA%B0%80%EA%B2%A9&fail_mode=${FAILS[$((i / 6 % 4))]}" ;;
        3) q="?mode=sequential" ;;
        4) q="?fail=%EC%82%AC%EC%9A%A9%EC%9E%90&fail_mode=slow" ;;
        5) q="" ;;
        esac
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST \
               -d '{"order": 1}' "$URL/orders/process$q")
        echo "orders $code"
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
client read --max-time 10 "$URL/files/read?path=soak-1.txt" &
client hash --max-time 10 -X POST -d '{"password": "soak"}' "$URL/auth/hash" &
client json --max-time 10 -X POST "$URL/parse/json" &
client regex --max-time 10 -X POST -d '{"pattern": "py(th)?on", "count": 100000}' "$URL/regex/match" &
client ratelimit --max-time 20 "$URL/rate-limit-test?requests=10" &
client sse --max-time 10 "$URL/stream/search?keyword=python&data_size=100000" &
client sse_abort --max-time 0.05 "$URL/stream/search?keyword=python&data_size=10000000" &
client order_abort --max-time 0.3 -X POST "$URL/orders/process" &
client status --max-time 5 "$URL/asyncx/status" &

sleep 20
RSS_START=$(rss)
RELOADS=0; BURSTS=0
while [ "$(date +%s)" -lt "$END" ]; do
    sleep 30
    [ "$(date +%s)" -ge "$END" ] && break
    kill -HUP "$MASTER" && RELOADS=$((RELOADS + 1))
    # a burst of hashes at the 2-thread CPU pool
    for j in $(seq 40); do
        curl -s -o /dev/null -w 'burst %{http_code}\n' --max-time 30 -X POST \
             -d '{"password": "burst"}' "$URL/auth/hash" >> "$PREFIX/out/burst.log" &
    done
    BURSTS=$((BURSTS + 1))
done
wait
sleep 3
RSS_END=$(rss)

echo "# soak $(date -u '+%Y-%m-%d %H:%M UTC'), ${DURATION}s, $(nproc) cores, $(uname -r)"
echo "## requests by kind and status"
cat "$PREFIX"/out/*.log | sort | uniq -c | sort -k2,2 -k1,1nr
echo "## faults injected"
echo "reloads $RELOADS, hash bursts $BURSTS x 40, failing-backend orders $(grep -c . "$PREFIX/out/orders.log") (4 in 6 with a fault), aborted streams $(grep -c . "$PREFIX/out/sse_abort.log"), aborted orders $(grep -c . "$PREFIX/out/order_abort.log")"
echo "## after the traffic"
curl -s "$URL/rate-limiter/status"; echo
curl -s "$URL/asyncx/status" | perl -MJSON::PP -0 -ne '
    my $j = decode_json($_);
    my $run = 0; $run += $_->{running} + $_->{queued} for values %{ $j->{pools} };
    printf "pipelines active %d, streams active %d, pool tasks running+queued %d\n",
           $j->{pipelines}{active}, $j->{streams}{active}, $run;'
echo "worker RSS (sum of 2 workers) after warm-up ${RSS_START} kB, at the end ${RSS_END} kB"
bad=0
for f in "$PREFIX"/files/soak-*.txt; do
    size=$(stat -c %s "$f"); kinds=$(tr -d '\n' < "$f" | fold -w1 | sort -u | wc -l)
    if [ "$size" != 65536 ] || [ "$kinds" != 1 ]; then bad=$((bad + 1)); echo "torn file: $f"; fi
done
echo "written files checked: $(ls "$PREFIX"/files/soak-*.txt | wc -l), torn: $bad"
echo "error.log: $(grep -c '\[alert\]' "$PREFIX/logs/error.log") alert, $(grep -c '\[emerg\]' "$PREFIX/logs/error.log") emerg, $(grep -c '\[crit\]' "$PREFIX/logs/error.log") crit lines"
grep '\[alert\]\|\[emerg\]\|\[crit\]' "$PREFIX/logs/error.log" | head -5

kill -QUIT "$MASTER"
