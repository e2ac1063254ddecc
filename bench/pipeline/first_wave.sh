#!/usr/bin/env bash
# A fresh worker's first wave (docs/benchmarks/pipeline.md): a fresh nginx
# per run (one worker pinned to CPU 0), then exactly C requests at once,
# one per connection, all connections opened first (first_wave.py,
# pinned to CPU 1): the latency of each, the worker's CPU and its page
# faults over the wave.  Two builds alternated, calib measured in the
# same round (with build B).  RUNS: calib, demo, quiet (runs.sh).
#   SO_A=base.so CONF_A=base.conf.in [SO_B=.. CONF_B=..] ROUNDS=3 \
#   RUNS="calib demo" PORT=2360 bench/pipeline/first_wave.sh 1000
# B defaults to this tree's build and template.  One line per run:
#   WAVE round=1 build=B run=demo n=1000 ok=1000 p50_ms=.. p99_ms=.. ...
set -euo pipefail

RUNS=${RUNS:-calib demo}
C=${1:-1000}

. "$(dirname "$0")/ab.sh"
PREFIX=$ROOT/build/bench-pipeline-wave

# one run: the wave, measured by first_wave.py
wave_run() {
    echo "WAVE round=$1 build=$3 run=$2" \
         "$(taskset -c 1 python3 "$HERE/first_wave.py" \
                --port "$PORT" --path "/$target" \
                --worker "$WORKER" -n "$C" | sed 's/^WAVE //')" \
         "load=$(cut -d' ' -f1 /proc/loadavg)" \
         "errors=$(grep -cE '\[(error|alert|crit)\]' \
                  "$PREFIX/logs/error.log" || true)"
}

CALIB_BUILDS=B ab_rounds wave_run
