# Shared by the bench/*/run.sh scripts (sourced): the module check, one
# nginx in the foreground stopped by its PID on exit, waiting for it.
# Before sourcing: SO (module path), B (base URL).  A script may set
# STOP_HOOK to a function run first by stop (e.g. to end its pollers).

[ -f "$SO" ] || { echo "build the module first: make build" >&2; exit 1; }
ulimit -n 20000

NGINX_PID=
STOP_HOOK=${STOP_HOOK:-}

stop() {
    [ -z "$STOP_HOOK" ] || "$STOP_HOOK"
    [ -n "$NGINX_PID" ] || return 0
    kill -QUIT "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
    NGINX_PID=
}
trap stop EXIT

# after starting nginx in the background (NGINX_PID=$!): wait until it
# answers, then WORKER is its first worker's PID
wait_up() {
    for _ in $(seq 50); do
        curl -sf "$B/asyncx/status" >/dev/null && break
        sleep 0.1
    done
    WORKER=$(pgrep -P "$NGINX_PID" | head -1)
}

# a field of the worker's /proc status, in kB (VmRSS, VmHWM)
kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$WORKER/status"; }
