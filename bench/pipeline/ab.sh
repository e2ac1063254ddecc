# Two builds, A and B, each from a fresh nginx with one worker pinned to
# CPU 0, in rounds (sourced by steady.sh and first_wave.sh, which set
# PREFIX, their own directory under build/).  B defaults to this tree's
# build and template; A must be given:
#   SO_A=base.so [CONF_A=base.conf.in] [SO_B=.. CONF_B=..] [ROUNDS=3]
#   [PORT=20500] [KEEP=0: asyncx_pipeline_blocks keep=, both builds'
#   templates where they have it]
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/bench/pipeline
PORT=${PORT:-20500}
ROUNDS=${ROUNDS:-3}
KEEP=${KEEP:-0}
NGINX=${NGINX:-/usr/sbin/nginx}
SO_B=${SO_B:-$ROOT/build/nginx/objs/ngx_http_asyncx_module.so}
CONF_B=${CONF_B:-$HERE/nginx.conf.in}
SO_A=${SO_A:?the other build: SO_A=path.so}
CONF_A=${CONF_A:-$CONF_B}
B=http://127.0.0.1:$PORT
SO=$SO_B

. "$HERE/../lib.sh"
. "$HERE/runs.sh"

# start_build A|B EDIT: that build's nginx, its template edited by the
# sed expression EDIT (run_kind's), in the foreground of this script
start_build() {
    local so=$SO_B conf=$CONF_B
    if [ "$1" = A ]; then so=$SO_A conf=$CONF_A; fi
    rm -rf "$PREFIX"
    mkdir -p "$PREFIX"/{conf,logs,temp}
    sed -e "s|@MODULE_SO@|$so|" -e "s|@PORT@|$PORT|" -e "s|@WORKERS@|1|" \
        -e "s|@LISTEN@||" -e "s|@KEEP@|$KEEP|" -e "$2" "$conf" \
        > "$PREFIX/conf/nginx.conf"
    taskset -c 0 "$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf" \
        -g 'daemon off;' &
    NGINX_PID=$!
    wait_up
}

# ab_rounds FN: ROUNDS rounds of each run of RUNS (run_kind's target and
# edit set) on build A then B (only B for calib when CALIB_BUILDS=B):
# FN round run build is called with that build's nginx started, which
# is stopped after it
ab_rounds() {
    local round run build builds
    echo "== $(date -u) nproc=$(nproc) $(uptime)"
    for round in $(seq "$ROUNDS"); do
        for run in $RUNS; do
            run_kind "$run"
            builds="A B"
            [ "$run" != calib ] || builds=${CALIB_BUILDS:-A B}
            for build in $builds; do
                start_build $build "$edit"
                "$1" "$round" "$run" "$build"
                stop
            done
        done
    done
}
