#!/usr/bin/env bash
# Limiter benchmark: admission accuracy with 2 workers (5 r/s and
# 2000 r/s), the concurrency cap under load, and the cost of a limiter
# whose limits are never reached.  Results: docs/benchmarks/limit.md.
#
#   bench/limit/run.sh            (after `make build`; needs wrk, taskset)
#   DURATION=30 PORT=25100 bench/limit/run.sh
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SO=$ROOT/build/nginx/objs/ngx_http_asyncx_module.so
PORT=${PORT:-25100}
DURATION=${DURATION:-30}
DIR=$ROOT/build/bench-limit
NGINX=${NGINX:-/usr/sbin/nginx}

rm -rf "$DIR" && mkdir -p "$DIR/logs" "$DIR/temp"

conf() {   # $1 workers
    cat > "$DIR/nginx.conf" <<CONF
daemon on;
worker_processes $1;
error_log $DIR/logs/error.log warn;
pid $DIR/logs/nginx.pid;
load_module $SO;
events { worker_connections 8192; }
http {
    client_body_temp_path $DIR/temp; proxy_temp_path $DIR/temp;
    fastcgi_temp_path $DIR/temp; uwsgi_temp_path $DIR/temp; scgi_temp_path $DIR/temp;
    log_format t '\$msec \$status \$request_time';
    access_log off;
    asyncx_limit_zone zone=z5:1m rate=5r/s burst=5 queue=0;
    asyncx_limit_zone zone=z2000:1m rate=2000r/s burst=100 queue=0;
    asyncx_limit_zone zone=zc:1m rate=100000r/s burst=100000 concurrency=4 queue=1000 timeout=30s;
    asyncx_limit_zone zone=free:1m rate=1000000r/s burst=1000000;
    server {
        listen 127.0.0.1:$PORT reuseport;
        location = /acc5 { access_log $DIR/logs/acc5.log t; asyncx_limit z5; asyncx_mock_service name=x echo=off; }
        location = /acc2000 { access_log $DIR/logs/acc2000.log t; asyncx_limit z2000; asyncx_mock_service name=x echo=off; }
        location = /conc { access_log $DIR/logs/conc.log t; asyncx_limit zc; asyncx_mock_service name=x delay=20ms echo=off; }
        location = /limited { asyncx_limit free; asyncx_mock_service name=x echo=off; }
        location = /plain { asyncx_mock_service name=x echo=off; }
    }
}
CONF
}

start() { env -u NGINX "$NGINX" -p "$DIR/" -c "$DIR/nginx.conf"; sleep 0.5; }
stop() { kill -QUIT "$(cat "$DIR/logs/nginx.pid")"; sleep 1; }

admitted() {   # $1 log, $2 rate r/s, $3 burst
    awk -v rate="$2" -v burst="$3" -v d="$DURATION" '
        $2 == 200 { ok++; if (!first || $1 < first) first = $1; if ($1 > last) last = $1 }
        $2 != 200 { limited++ }
        END {
            span = last - first; want = rate * span + burst;
            printf "admitted %d, limited %d, span %.2f s, expected %.0f (rate x span + burst), error %+.2f%%\n",
                   ok, limited, span, want, (ok - want) * 100 / want
        }' "$1"
}

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"

conf 2; start
echo "## accuracy, 2 workers, ${DURATION}s each"
wrk -t2 -c20 -d"${DURATION}s" "http://127.0.0.1:$PORT/acc5" > /dev/null
echo -n "5 r/s:    "; admitted "$DIR/logs/acc5.log" 5 5
wrk -t2 -c50 -d"${DURATION}s" "http://127.0.0.1:$PORT/acc2000" > /dev/null
echo -n "2000 r/s: "; admitted "$DIR/logs/acc2000.log" 2000 100

echo "## concurrency=4, 32 clients, 20 ms calls, 10 s"
wrk -t2 -c32 -d10s --timeout 30s "http://127.0.0.1:$PORT/conc" > /dev/null
awk '$2 == 200 { printf "%.4f 1\n%.4f -1\n", $1 - 0.020 + 0.001, $1 }' "$DIR/logs/conc.log" \
    | sort -n -k1,1 -k2,2n \
    | awk '{ cur += $2; if (cur > max) max = cur } END { printf "requests %d, max in flight %d (cap 4)\n", NR / 2, max }'
stop

echo "## cost: 1 worker on CPU 0, wrk on CPU 1, 10 s each"
conf 1; taskset -c 0 env -u NGINX "$NGINX" -p "$DIR/" -c "$DIR/nginx.conf"; sleep 0.5
for loc in plain limited plain limited; do
    rps=$(taskset -c 1 wrk -t1 -c50 -d10s "http://127.0.0.1:$PORT/$loc" | awk '/Requests\/sec/ { print $2 }')
    echo "$loc $rps"
done | awk '{ sum[$1] += $2; n[$1]++; print }
            END { p = sum["plain"] / n["plain"]; l = sum["limited"] / n["limited"];
                  printf "mean: plain %.0f r/s, limited %.0f r/s, ratio %.1f%%\n", p, l, l * 100 / p }'
stop
