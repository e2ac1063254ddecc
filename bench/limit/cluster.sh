#!/usr/bin/env bash
# Cluster limiter benchmark (issue 17; docs/benchmarks/limit.md, "Cluster
# mode").  127.0.0.1 only: three nginx servers on PORT, PORT+1, PORT+2
# sharing zones kept in a private redis-server on PORT+9 (no
# persistence), each with a private prefix under build/, all in the
# foreground and stopped by PID.
#   bench/limit/cluster.sh                 (after `make build`)
#   PORT=2150 DUR=20 LAT=5 ROUNDS=3 WORKERS=1 PARTS="1 2" bench/limit/cluster.sh
# 1. accuracy: zone g2000 (2000 r/s, burst=100, queue=0: excess refused
#    at once) in Redis; one wrk per server at the same time, offering far
#    more than the rate in all, for DUR s; admissions per second of the
#    fleet from the three access logs merged (accuracy(), as run.sh);
#    Redis commands per request from INFO commandstats before and after.
# 2. latency: one client without concurrency (wrk -t1 -c1: nothing queues
#    in front of nginx, the time is the request's own) against server 1,
#    locations whose limits are never reached: no limiter, a token in
#    shared memory, a token in Redis, a token and a slot in shared memory,
#    a token and a slot in Redis; alternated ROUNDS times, LAT s each;
#    p50/p99 by wrk (microseconds), the added latency of Redis against
#    shared memory, Redis commands per request.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/limit
PORT=${PORT:-2150}
DUR=${DUR:-20}
LAT=${LAT:-5}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-1}
# wrk connections per server in part 1
CONNS=${CONNS:-16}
PARTS=${PARTS:-1 2}
NGINX=${NGINX:-/usr/sbin/nginx}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
SO=${SO:-$ROOT/build/nginx/objs/ngx_http_asyncx_module.so}
PREFIX=$ROOT/build/bench-limit-cluster
RPORT=$((PORT + 9))
B=http://127.0.0.1:$PORT

. "$HERE/../lib.sh"
. "$HERE/accuracy.sh"

SERVER_PIDS=()
REDIS_PID=

# lib.sh's stop() ends NGINX_PID (server 1); this ends the others and Redis
stop_fleet() {
    local pid
    for pid in "${SERVER_PIDS[@]:1}"; do
        kill -QUIT "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    SERVER_PIDS=()
    if [ -n "$REDIS_PID" ]; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
        REDIS_PID=
    fi
}
STOP_HOOK=stop_fleet

rcli() { redis-cli -h 127.0.0.1 -p "$RPORT" "$@"; }

# the calls of every command but INFO, and their sum:
# "evalsha=N publish=N ... total=N"
commandstats() {
    rcli INFO commandstats | tr -d '\r' | awk -F'[:=,]' '
        /^cmdstat_/ { c = substr($1, 9); if (c == "info") next
                      printf "%s=%d ", c, $3; t += $3 }
        END { printf "total=%d\n", t }'
}

# the difference of two commandstats lines, per request: $1 before, $2
# after, $3 requests
per_request() {
    awk -v before="$1" -v after="$2" -v n="$3" 'BEGIN {
        split(before, b, " "); for (i in b) { split(b[i], kv, "="); was[kv[1]] = kv[2] }
        split(after, a, " ")
        for (i = 1; i in a; i++) {
            split(a[i], kv, "="); d = kv[2] - was[kv[1]]
            if (d > 0) printf "%s %d (%.3f/request) ", kv[1], d, d / n
        }
        printf "\n" }'
}

start_redis() {
    mkdir -p "$PREFIX/redis"
    "$REDIS_SERVER" --port "$RPORT" --bind 127.0.0.1 --save '' \
        --appendonly no --daemonize no --dir "$PREFIX/redis" \
        --logfile "$PREFIX/redis/redis.log" &
    REDIS_PID=$!
    for _ in $(seq 100); do
        [ "$(rcli PING 2>/dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    echo "redis-server did not answer PING on $RPORT" >&2
    exit 1
}

start_server() {   # $1 index 0..2
    local port=$((PORT + $1)) p=$PREFIX/s$1
    rm -rf "$p"
    mkdir -p "$p"/{conf,logs,temp}
    sed -e "s|@MODULE_SO@|$SO|" -e "s|@PORT@|$port|" \
        -e "s|@WORKERS@|$WORKERS|" -e "s|@REDIS@|redis://127.0.0.1:$RPORT|" \
        "$HERE/cluster.conf.in" > "$p/conf/nginx.conf"
    "$NGINX" -p "$p/" -c "$p/conf/nginx.conf" -g 'daemon off;' &
    SERVER_PIDS+=($!)
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$port/asyncx/status" >/dev/null && return 0
        sleep 0.1
    done
    echo "nginx did not start on $port:" >&2
    cat "$p/logs/error.log" >&2
    exit 1
}

echo "== machine"
date
echo "nproc=$(nproc) kernel=$(uname -r) commit=$(git -C "$ROOT" rev-parse --short HEAD) module=$SO"
grep -m1 'model name' /proc/cpuinfo || true
uptime
echo "redis: $("$REDIS_SERVER" --version)"

rm -rf "$PREFIX"
start_redis
for i in 0 1 2; do start_server "$i"; done
NGINX_PID=${SERVER_PIDS[0]}
echo "redis $REDIS_PID on $RPORT; nginx masters ${SERVER_PIDS[*]} on $PORT..$((PORT + 2)), $WORKERS worker(s) each"

want() { [[ " $PARTS " == *" $1 "* ]]; }

if want 1; then
echo
echo "== 1. accuracy: zone g2000 (2000 r/s burst=100 queue=0) in Redis, 3 servers, wrk -t1 -c$CONNS -d${DUR}s on each at once"
before=$(commandstats)
pids=()
for i in 0 1 2; do
    wrk -t1 -c"$CONNS" -d"${DUR}s" "http://127.0.0.1:$((PORT + i))/g2000" \
        > "$PREFIX/wrk.g2000.$i" &
    pids+=($!)
done
wait "${pids[@]}"
after=$(commandstats)
for i in 0 1 2; do
    echo "server $((i + 1)): $(grep -E 'Requests/sec' "$PREFIX/wrk.g2000.$i" | xargs)"
done
sleep 1
cat "$PREFIX"/s{0,1,2}/logs/g2000.log > "$PREFIX/g2000.fleet.log"
accuracy "$PREFIX/g2000.fleet.log" 2000 100
n=$(wc -l < "$PREFIX/g2000.fleet.log")
ok=$(awk '$2 == 200' "$PREFIX/g2000.fleet.log" | wc -l)
echo "Redis commands for $n requests ($ok admitted): $(per_request "$before" "$after" "$n")"
for i in 0 1 2; do
    echo "server $((i + 1)) zone g2000: $(curl -s "http://127.0.0.1:$((PORT + i))/asyncx/status" |
        jq -c '.limit_zones.g2000.cluster | {mode, global, local: .local | {admitted, refused, fallback_admitted, fallback_refused}, redis_errors, commands, reconnects}')"
done
fi

if want 2; then
echo
echo "== 2. latency: wrk -t1 -c1 -d${LAT}s on server 1, $ROUNDS rounds alternated (microseconds)"
for round in $(seq "$ROUNDS"); do
    for loc in plain sfree cfree sslot cslot; do
        before=$(commandstats)
        out=$(wrk -t1 -c1 -d"${LAT}s" -s "$HERE/latency.lua" "$B/$loc")
        after=$(commandstats)
        lat=$(echo "$out" | grep '^LAT')
        n=$(echo "$lat" | sed 's/.*n=\([0-9]*\).*/\1/')
        echo "round $round $loc $lat redis: $(per_request "$before" "$after" "$n")"
    done
done | tee "$PREFIX/latency" | sed 's/^/  /'
# medians over the rounds of each location's p50 and p99, and the
# difference Redis - shared memory
perl -ne '
    next unless /^round \d+ (\w+) LAT n=\d+ errors=(\d+) p50=(\d+) p90=\d+ p99=(\d+)/;
    push @{ $p50{$1} }, $3; push @{ $p99{$1} }, $4; $err{$1} += $2;
    END {
        sub median { my @v = sort { $a <=> $b } @_;
                     @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2 }
        for my $l (qw(plain sfree cfree sslot cslot)) {
            next unless $p50{$l};
            printf "%-6s median p50 %7.1f us, median p99 %7.1f us, errors %d\n",
                   $l, median(@{ $p50{$l} }), median(@{ $p99{$l} }), $err{$l};
        }
        for my $pair ([qw(cfree sfree)], [qw(cslot sslot)]) {
            my ($c, $s) = @$pair;
            next unless $p50{$c} && $p50{$s};
            printf "added by Redis (%s - %s): p50 %+.1f us, p99 %+.1f us\n",
                   $c, $s, median(@{ $p50{$c} }) - median(@{ $p50{$s} }),
                   median(@{ $p99{$c} }) - median(@{ $p99{$s} });
        }
    }' "$PREFIX/latency"
fi

echo
for i in 0 1 2; do
    echo "server $((i + 1)) error_log lines at error or above: $(grep -c . "$PREFIX/s$i/logs/error.log" || true)"
done
echo "redis: $(rcli INFO stats | tr -d '\r' | grep -E '^(total_connections_received|total_commands_processed)' | xargs)"
stop
