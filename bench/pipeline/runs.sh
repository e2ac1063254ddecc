# The kinds of run of the pipeline benchmarks (sourced by run.sh,
# steady.sh, first_wave.sh): run_kind NAME sets target (the path, without
# its leading slash) and edit (a sed expression applied to the template).
#   calib  /calib, one 1.9 s timer (the client's and nginx's own floor)
#   demo   /orders/process as in the demo (mocks echo=summary: they parse
#          what they get)
#   quiet  /orders/process, mocks echo=off (the "external" services cost
#          about nothing)
run_kind() {
    case $1 in
    calib) target=calib; edit='' ;;
    demo)  target=orders/process; edit='' ;;
    quiet) target=orders/process
           edit="s/^\(.*asyncx_mock_service .*\)'json=/\1echo=off 'json=/" ;;
    *)     echo "unknown run $1" >&2; exit 1 ;;
    esac
}
