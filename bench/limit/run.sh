#!/usr/bin/env bash
# Limiter benchmark (docs/benchmarks/limit.md).  127.0.0.1 only, a private
# prefix under build/, port $PORT; nginx in the foreground, stopped by PID.
#   bench/limit/run.sh                     (after `make build`)
#   DUR=10 ROUNDS=2 PORT=25100 PARTS="1 2 3" bench/limit/run.sh
#   (ROUNDS1, ROUNDS2, ROUNDS3: rounds of one part)
# 1. accuracy: 2 workers (reuseport) share zones of 5 r/s and 2000 r/s,
#    without a queue (excess refused at once) and with one (excess waits
#    and is admitted as tokens come); wrk -t2 offers far more than the
#    rate for DUR s; admissions per second from the access log.
# 2. concurrency=4 in front of a 20 ms mock, 2 workers: the ceiling (the
#    same calls from exactly 4 clients, no limiter) alternated with the
#    limited location under 32 clients; the most requests in flight, the
#    slots' use, the hand-offs between workers.
# 3. cost: 1 worker on CPU 0, wrk -t1 -c50 -d10s on CPU 1, a location
#    whose limits are never reached against the same without asyncx_limit,
#    alternated.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/limit
PORT=${PORT:-25100}
DUR=${DUR:-10}
ROUNDS=${ROUNDS:-2}
# per part, if given: ROUNDS1, ROUNDS2, ROUNDS3
ROUNDS1=${ROUNDS1:-$ROUNDS}
ROUNDS2=${ROUNDS2:-$ROUNDS}
ROUNDS3=${ROUNDS3:-$ROUNDS}
PARTS=${PARTS:-1 2 3}
NGINX=${NGINX:-/usr/sbin/nginx}
# SO=... benches another build of the module (an older one: its zone
# status endpoint is still called asyncx_limit_status)
SO=${SO:-$ROOT/build/nginx/objs/ngx_http_asyncx_module.so}
PREFIX=$ROOT/build/bench-limit
B=http://127.0.0.1:$PORT

. "$HERE/../lib.sh"

start() {   # $1 workers, $2 cpu list for nginx, $3 part (its own prefix)
    P=$PREFIX/$3
    rm -rf "$P"
    mkdir -p "$P"/{conf,logs,temp}
    sed -e "s|@MODULE_SO@|$SO|" -e "s|@PORT@|$PORT|" -e "s|@WORKERS@|$1|" \
        "$HERE/nginx.conf.in" > "$P/conf/nginx.conf"
    grep -q asyncx_limit_zone_status "$SO" ||
        sed -i 's/asyncx_limit_zone_status/asyncx_limit_status/' "$P/conf/nginx.conf"
    taskset -c "$2" "$NGINX" -p "$P/" -c "$P/conf/nginx.conf" \
        -g 'daemon off;' &
    NGINX_PID=$!
    wait_up
    echo "nginx master $NGINX_PID, workers $(pgrep -P "$NGINX_PID" | xargs)"
}

# the access log of one run to itself: move it, let nginx reopen its logs
cut_log() {   # $1 log name, $2 new name
    mv "$P/logs/$1.log" "$P/logs/$2.log"
    kill -USR1 "$NGINX_PID"
    sleep 0.5
}

. "$HERE/accuracy.sh"

# in service: [end - ($request_time - $asyncx_limit_wait), end]
service() {   # $1 log
    awk '$2 == 200 { w = ($5 == "-") ? 0 : $5; s = $3 - w; sum += s; n++
                     if (!f || $1 < f) f = $1; if ($1 > l) l = $1 }
         END { printf "%d answered in %.3f s: %.1f r/s; mean time in service " \
                      "%.2f ms, so 4 slots allow %.1f r/s\n",
                      n, l - f, (n - 1) / (l - f), sum * 1000 / n,
                      4 / (sum / n) }' "$1"
}

levels() {   # $1 log: the share of time with N requests in service
    awk '$2 == 200 { w = ($5 == "-") ? 0 : $5
                     printf "%.3f 1\n%.3f 0\n", $1 - ($3 - w), $1 }' "$1" |
    sort -k1,1n -k2,2n |
    awk 'NR > 1 { at[cur] += $1 - prev; all += $1 - prev }
         { prev = $1; if ($2 == 1) cur++; else cur--; if (cur > max) max = cur }
         END { printf "max in service at once: %d; share of time at each " \
                      "level:", max
               for (i = 0; i <= max; i++)
                   if (at[i] > 0) printf " %d:%.2f%%", i, at[i] * 100 / all
               printf "\n" }'
}

echo "== machine"
date
echo "nproc=$(nproc) kernel=$(uname -r) commit=$(git -C "$ROOT" rev-parse --short HEAD) module=$SO"
grep -m1 'model name' /proc/cpuinfo || true
uptime

want() { [[ " $PARTS " == *" $1 "* ]]; }

if want 1 || want 2; then
start 2 0,1 accuracy
fi

if want 1; then
echo
echo "== 1. accuracy: 2 workers, wrk -t2 -d${DUR}s, $ROUNDS1 rounds"
for round in $(seq "$ROUNDS1"); do
    for z in "r5 5 5 20" "r2000 2000 100 20" "q5 5 5 20" "q2000 2000 100 200"; do
        set -- $z
        # queued at 2000 r/s: 200 clients keep the queue about 100 ms deep,
        # so a stall of the client does not starve the limiter
        echo "-- round $round: zone $1 rate=$2r/s burst=$3, wrk -c$4"
        wrk -t2 -c"$4" -d"${DUR}s" --timeout 60s "$B/$1" |
            grep -E 'Requests/sec|Non-2xx|errors' || true
        # the queued clients wrk left are gone: their places too
        sleep 1
        cut_log "$1" "$1.$round"
        accuracy "$P/logs/$1.$round.log" "$2" "$3"
    done
done
fi

if want 2; then
echo
echo "== 2. concurrency=4, mock delay=20ms, 2 workers, ${DUR}s runs, $ROUNDS2 rounds"
for round in $(seq "$ROUNDS2"); do
    echo "-- round $round: ceiling: /c4free, no limiter, wrk -t2 -c4"
    wrk -t2 -c4 -d"${DUR}s" "$B/c4free" | grep -E 'Requests/sec|Non-2xx|errors' || true
    cut_log c4free "c4free.$round"
    service "$P/logs/c4free.$round.log"

    echo "-- round $round: limited: /c4 (concurrency=4), wrk -t2 -c32"
    "$HERE/poll.pl" "$PORT" /c4/status "$DUR" 10 concurrent.current waiting \
        > "$P/poll-zone" &
    P1=$!
    wrk -t2 -c32 -d"${DUR}s" --timeout 30s "$B/c4" |
        grep -E 'Requests/sec|Non-2xx|errors' || true
    wait "$P1"
    sleep 1
    cut_log c4 "c4.$round"
    echo "zone status polled every 10 ms: $(cat "$P/poll-zone")"
    service "$P/logs/c4.$round.log"
    levels "$P/logs/c4.$round.log"
    awk '$2 != 200 { n[$2]++ } END { for (c in n) printf "status %s: %d\n", c, n[c] }' \
        "$P/logs/c4.$round.log"
    echo "hand-offs between workers so far (grant in one, wake-up of the other): $(
        curl -s "$B/asyncx/status" | jq -c '.limit_zones.c4.handoffs')"
done
echo "error_log error+ lines: $(grep -c . "$P/logs/error.log" || true)"
fi
stop

if want 3; then
echo
echo "== 3. cost: 1 worker on CPU 0, wrk -t1 -c50 -d10s on CPU 1, $ROUNDS3 rounds"
start 1 0 cost
# the worker's CPU time (utime + stime, clock ticks) per request as well:
# on a shared machine it moves less than the throughput does
ticks() { awk '{ print $14 + $15 }' "/proc/$WORKER/stat"; }
HZ=$(getconf CLK_TCK)
for _ in $(seq "$ROUNDS3"); do
    for loc in plain limited; do
        t0=$(ticks)
        out=$(taskset -c 1 wrk -t1 -c50 -d10s "$B/$loc")
        t1=$(ticks)
        echo "$out" | grep -q Non-2xx && echo "NON2XX $loc" >&2
        echo "$out" | awk -v loc="$loc" -v dt=$((t1 - t0)) -v hz="$HZ" '
            /requests in/ { n = $1 } /Requests\/sec/ { rps = $2 }
            END { printf "%s %.2f %.2f\n", loc, rps, dt * 1e6 / hz / n }'
    done
done | perl -ne '
    my ($loc, $rps, $us) = split;
    printf "%s %s r/s, %s us of worker CPU per request\n", $loc, $rps, $us;
    push @{ $r{$loc} }, $rps; push @{ $c{$loc} }, $us;
    END {
        sub mean { my $s = 0; $s += $_ for @_; $s / @_ }
        sub median { my @v = sort { $a <=> $b } @_;
                     @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2 }
        my ($pm, $lm) = (mean(@{ $r{plain} }), mean(@{ $r{limited} }));
        my ($pd, $ld) = (median(@{ $r{plain} }), median(@{ $r{limited} }));
        my ($pc, $lc) = (median(@{ $c{plain} }), median(@{ $c{limited} }));
        printf "mean: plain %.0f r/s, limited %.0f r/s, ratio %.1f%%\n",
               $pm, $lm, $lm * 100 / $pm;
        printf "median: plain %.0f r/s, limited %.0f r/s, ratio %.1f%%\n",
               $pd, $ld, $ld * 100 / $pd;
        printf "median worker CPU per request: plain %.2f us, limited %.2f us"
               . " (requests per CPU second: limited %.1f%% of plain)\n",
               $pc, $lc, $pc * 100 / $lc;
    }'
curl -s "$B/asyncx/status" | jq -c '.limit_zones.free | {concurrent, rate, passed, waiting}' || true
echo "error_log error+ lines: $(grep -c . "$P/logs/error.log" || true)"
stop
fi
