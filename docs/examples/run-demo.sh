#!/usr/bin/env bash
# Starts the demo in the foreground under a private prefix (never
# /etc/nginx, never the system service).  Called by `make run`.
set -euo pipefail

: "${ROOT:?}" "${PORT:?}" "${NGINX_BIN:?}" "${MODULE_SO:?}" "${PREFIX:?}"

mkdir -p "$PREFIX"/{conf,logs,html,temp,files}
sed -e "s|@PORT@|$PORT|g" -e "s|@MODULE_SO@|$MODULE_SO|g" \
    -e "s|@PREFIX@|$PREFIX|g" -e "s|@ROOT@|$ROOT|g" \
    "$ROOT/docs/examples/demo.conf" > "$PREFIX/conf/nginx.conf"

# the file endpoints' sandbox, with the exercise's example file
[ -f "$PREFIX/files/test.txt" ] || \
    printf 'Hello from asyncx: this file was read in a thread pool.\n' \
        > "$PREFIX/files/test.txt"
# the NDJSON streams' file (/ndjson/*): deterministic, about 3.2 MB
mkdir -p "$PREFIX/data"
[ -f "$PREFIX/data/access.ndjson" ] || \
    awk -v lines=20000 -v seed=1 -f "$ROOT/docs/examples/gen-ndjson.awk" \
        > "$PREFIX/data/access.ndjson"
# workers of a root master run as "nobody": let them write (/files/write)
[ "$(id -u)" != 0 ] || chown -R nobody "$PREFIX/files"

"$NGINX_BIN" -t -q -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf"
echo "asyncx demo: http://127.0.0.1:$PORT/asyncx/status (Ctrl-C stops)"
exec env -u NGINX "$NGINX_BIN" -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf" -g 'daemon off;'
