#!/usr/bin/env bash
# User-space instructions per order, counted by valgrind's cachegrind
# (Debian package "valgrind"): the same count on every run and on a busy
# machine, unlike CPU time on a shared guest, so two builds compare
# exactly.  Kernel time (sockets, epoll, page faults) is not counted, and
# an instruction is not a cycle (cachegrind counts each byte of a
# "rep stos" memset as one): this finds and weighs the module's costs,
# steady.sh and run.sh measure the time.  docs/benchmarks/pipeline.md.
#
# nginx runs as one process (master_process off) under cachegrind; N1
# then N2 orders are sent by C keep-alive clients (instructions.py), and
# per order = (I(N2) - I(N1)) / (N2 - N1), which cancels start-up and
# shut-down.  127.0.0.1 only, port $PORT, a private prefix under build/.
#   [SO=other.so] [CONF=other.conf.in] [RUNS="demo quiet calib"] \
#   [PORT=20500] [C=100] bench/pipeline/instructions.sh [N1 N2]
# One line per run:  INSTRUCTIONS run=demo per_order=85164 so=...
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/pipeline
PORT=${PORT:-20500}
NGINX=${NGINX:-/usr/sbin/nginx}
SO=${SO:-$ROOT/build/nginx/objs/ngx_http_asyncx_module.so}
CONF=${CONF:-$HERE/nginx.conf.in}
RUNS=${RUNS:-demo quiet calib}
C=${C:-100}
N1=${1:-100}
N2=${2:-700}
PREFIX=$ROOT/build/bench-pipeline-instructions
B=http://127.0.0.1:$PORT

command -v valgrind >/dev/null \
    || { echo "valgrind is needed: apt-get install valgrind" >&2; exit 1; }

. "$HERE/../lib.sh"
. "$HERE/runs.sh"

# instructions N: cachegrind's total for N requests of the current run
instructions() {
    cachegrind_start "$CONF" "$edit"
    python3 "$HERE/instructions.py" "$PORT" "$1" "$C" "/$target"
    stop
    awk '$1 == "summary:" { print $2 }' "$PREFIX/cachegrind.out"
}

for run in $RUNS; do
    run_kind "$run"
    i1=$(instructions "$N1")
    i2=$(instructions "$N2")
    echo "INSTRUCTIONS run=$run per_order=$(( (i2 - i1) / (N2 - N1) ))" \
         "n=$N1,$N2 so=$SO"
done
