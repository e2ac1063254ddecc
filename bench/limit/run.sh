#!/usr/bin/env bash
# Limiter benchmark (docs/benchmarks/limit.md).  127.0.0.1 only, a private
# prefix under build/, port $PORT; nginx in the foreground, stopped by PID.
#   bench/limit/run.sh                     (after `make build`)
#   DUR=20 PORT=25100 PARTS="1 2 3" bench/limit/run.sh
# 1. accuracy: 2 workers (reuseport) share zones of 5 r/s and 2000 r/s
#    (queue=0: excess is 429 at once); wrk -t2 -c20 offers far more than
#    the rate for DUR s; admissions per second from the access log.
# 2. concurrency=4 with a 20 ms mock, wrk -c32 for 10 s: the most requests
#    in flight, from the access log and from polling the zone's status.
# 3. cost: 1 worker on CPU 0, wrk -t1 -c50 -d10s on CPU 1, a location
#    whose limits are never reached against the same without asyncx_limit,
#    alternated twice in the same run.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/limit
PORT=${PORT:-25100}
DUR=${DUR:-20}
PARTS=${PARTS:-1 2 3}
NGINX=${NGINX:-/usr/sbin/nginx}
SO=$ROOT/build/nginx/objs/ngx_http_asyncx_module.so
PREFIX=$ROOT/build/bench-limit
B=http://127.0.0.1:$PORT

. "$HERE/../lib.sh"

start() {   # $1 workers, $2 cpu list for nginx, $3 part (its own prefix)
    P=$PREFIX/$3
    rm -rf "$P"
    mkdir -p "$P"/{conf,logs,temp}
    sed -e "s|@MODULE_SO@|$SO|" -e "s|@PORT@|$PORT|" -e "s|@WORKERS@|$1|" \
        "$HERE/nginx.conf.in" > "$P/conf/nginx.conf"
    taskset -c "$2" "$NGINX" -p "$P/" -c "$P/conf/nginx.conf" \
        -g 'daemon off;' &
    NGINX_PID=$!
    wait_up
    echo "nginx master $NGINX_PID, workers $(pgrep -P "$NGINX_PID" | xargs)"
}

# admissions per second of an access log ($msec $status $request_time $pid)
accuracy() {   # $1 log, $2 rate, $3 burst
    awk -v rate="$2" -v burst="$3" '
        NR == 1 { t0 = $1 }
        { sec = int($1 - t0); if (sec < 0) sec = 0; if (sec > last) last = sec
          if ($1 > tmax) tmax = $1 }
        $2 == 200 { ok[sec]++; okn++; pid[$4]++
                    if (!f || $1 < f) f = $1; if ($1 > l) l = $1; next }
        $2 == 429 { lim[sec]++; limn++; next }
        { other++ }
        END {
            printf "per second (admitted/429):"
            for (s = 0; s <= last; s++) printf " %d/%d", ok[s], lim[s]
            printf "\n"
            # full seconds only: not the first (it also spends the burst)
            # nor the last (partial)
            min = -1
            for (s = 1; s < last; s++) {
                n++; sum += ok[s]
                if (min < 0 || ok[s] < min) min = ok[s]
                if (ok[s] > max) max = ok[s]
            }
            span = l - f
            printf "admitted %d, refused 429 %d, other %d, offered %.0f r/s\n",
                   okn, limn, other + 0, (okn + limn + other) / (tmax - t0)
            printf "steady seconds 1..%d: admitted/s mean %.2f min %d max %d," \
                   " mean error %+.3f%%\n", last - 1, sum / n, min, max,
                   (sum / n - rate) * 100 / rate
            printf "whole run: (admitted - burst) / span = (%d - %d) / %.3f s" \
                   " = %.3f r/s, error %+.3f%%\n", okn, burst, span,
                   (okn - burst) / span, ((okn - burst) / span - rate) * 100 / rate
            printf "admitted per worker pid:"
            for (p in pid) printf " %s=%d", p, pid[p]
            printf "\n"
        }' "$1"
}

echo "== machine"
date
echo "nproc=$(nproc) kernel=$(uname -r)"
grep -m1 'model name' /proc/cpuinfo || true
uptime

want() { [[ " $PARTS " == *" $1 "* ]]; }

if want 1 || want 2; then
start 2 0,1 accuracy
fi

if want 1; then
echo
echo "== 1. accuracy: 2 workers, queue=0, wrk -t2 -c20 -d${DUR}s"
for z in "r5 5 5" "r2000 2000 100"; do
    set -- $z
    echo "-- zone rate=$2r/s burst=$3 (/$1)"
    wrk -t2 -c20 -d"${DUR}s" "$B/$1" | grep -E 'Requests/sec|Non-2xx|errors' || true
    accuracy "$P/logs/$1.log" "$2" "$3"
done

fi

if want 2; then
echo
echo "== 2. concurrency=4, mock delay=20ms, wrk -t2 -c32 -d10s"
"$HERE/poll.pl" "$PORT" /c4/status 10 10 concurrent.current waiting \
    > "$P/poll-zone" &
P1=$!
"$HERE/poll.pl" "$PORT" /asyncx/status 10 10 mock.active > "$P/poll-mock" &
P2=$!
wrk -t2 -c32 -d10s --timeout 30s "$B/c4" | grep -E 'Requests/sec|Non-2xx|errors|Latency' || true
wait "$P1" "$P2"
echo "zone status polled every 10 ms: $(cat "$P/poll-zone")"
echo "asyncx_status (mock.active = requests inside the 20 ms mock): $(cat "$P/poll-mock")"
# in service: [end - 19 ms, end]: the mock's 20 ms timer runs on the
# monotonic clock, $msec is the wall clock cut to whole ms, so a 20 ms
# call can log as 19 ms (with [end - 20 ms] such calls show as a 1 ms
# overlap of two batches of 4).  In nginx: [end - $request_time, end]
# (queue wait included).  Ends sort before starts.
for kind in service nginx; do
    awk -v k="$kind" '$2 == 200 {
            s = (k == "service") ? $1 - 0.019 : $1 - $3
            printf "%.3f 1\n%.3f 0\n", s, $1 }
        $2 != 200 { bad[$2]++ }
        END { for (c in bad) printf "status %s: %d\n", c, bad[c] > "/dev/stderr" }' \
        "$P/logs/c4.log" | sort -k1,1n -k2,2n |
    awk -v k="$kind" '
        NR > 1 { at[cur] += $1 - prev; all += $1 - prev }
        { prev = $1; if ($2 == 1) cur++; else cur--; if (cur > max) max = cur }
        END { what = "in nginx incl. queue"
              if (k == "service") what = "in service (cap 4)"
              printf "access log: %d requests, max %s at once: %d;" \
                     " share of time at each level:", NR / 2, what, max
              for (i = 0; i <= max; i++)
                  if (at[i] > 0) printf " %d:%.2f%%", i, at[i] * 100 / all
              printf "\n" }'
done
echo "error_log error+ lines: $(grep -c . "$P/logs/error.log" || true)"
fi
stop

if want 3; then
echo
echo "== 3. cost: 1 worker on CPU 0, wrk -t1 -c50 -d10s on CPU 1"
start 1 0 cost
for loc in plain limited plain limited; do
    rps=$(taskset -c 1 wrk -t1 -c50 -d10s "$B/$loc" |
          awk '/Requests\/sec/ { print $2 } /Non-2xx/ { print "NON2XX " $0 > "/dev/stderr" }')
    echo "$loc $rps"
done | awk '{ print; sum[$1] += $2; n[$1]++ }
    END { p = sum["plain"] / n["plain"]; l = sum["limited"] / n["limited"]
          printf "mean: plain %.0f r/s, limited %.0f r/s, ratio %.1f%%\n",
                 p, l, l * 100 / p }'
curl -s "$B/asyncx/status" | tr -d ' \n' | grep -o '"free":{[^}]*}[^}]*}' || true
echo "error_log error+ lines: $(grep -c . "$P/logs/error.log" || true)"
stop
fi
