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
