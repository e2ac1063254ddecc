# The kinds of run of the pipeline benchmarks (sourced by run.sh,
# steady.sh, first_wave.sh): run_kind NAME sets target (the path, without
# its leading slash) and edit (a sed expression applied to the template).
#   calib  /calib, one 1.9 s timer (the client's and nginx's own floor)
#   demo   /orders/process as in the demo (mocks echo=summary: they parse
#          what they get)
#   quiet  /orders/process, mocks echo=off (the "external" services cost
#          about nothing)
#   one    /bench/one, a pipeline of one quiet call of 1.9 s: what a
#          pipeline and a subrequest add to /calib
#   three  /bench/three, three stages of one quiet call each (0.5, 0.6,
#          0.8 s): what three timers in a row add
run_kind() {
    case $1 in
    calib) target=calib; edit='' ;;
    demo)  target=orders/process; edit='' ;;
    quiet) target=orders/process
           edit="s/^\(.*asyncx_mock_service .*\)'json=/\1echo=off 'json=/" ;;
    one)   target=bench/one; edit='' ;;
    three) target=bench/three; edit='' ;;
    *)     echo "unknown run $1" >&2; exit 1 ;;
    esac
}

# cachegrind_start TEMPLATE EDIT (instructions.sh, phases.sh): nginx as
# one process under valgrind's cachegrind in a fresh $PREFIX, from the
# template with its placeholders and the sed expression EDIT applied;
# the count is in $PREFIX/cachegrind.out once it is stopped (lib.sh).
cachegrind_start() {
    rm -rf "$PREFIX"
    mkdir -p "$PREFIX"/{conf,logs,temp}
    sed -e "s|@MODULE_SO@|$SO|" -e "s|@PORT@|$PORT|" -e "s|@WORKERS@|1|" \
        -e "s|@LISTEN@||" -e "s|@KEEP@|0|" -e "$2" "$1" \
        > "$PREFIX/conf/nginx.conf"
    valgrind --tool=cachegrind --cache-sim=no \
        --cachegrind-out-file="$PREFIX/cachegrind.out" \
        "$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf" \
        -g 'daemon off; master_process off;' 2> "$PREFIX/valgrind.log" &
    NGINX_PID=$!
    # slower to start under valgrind than wait_up waits
    for _ in $(seq 300); do
        curl -sf "$B/asyncx/status" >/dev/null && break
        sleep 0.1
    done
}
