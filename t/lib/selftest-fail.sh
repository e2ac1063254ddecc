#!/bin/bash
# Negative self-test of the local Test::Nginx::Socket runner: every case
# below must FAIL loudly, i.e. print the expected `not ok` line(s) and exit
# non-zero. Run from the repository root:
#
#   t/lib/selftest-fail.sh            (TEST_NGINX_PORT defaults to 19841)
#
# The cases are written to a temporary directory (not under t/, so that
# `prove -r t` never picks them up).

set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TMP=$(mktemp -d)
trap "${KEEP_TMP:+:} rm -rf \"$TMP\"" EXIT
export TEST_NGINX_PORT=${TEST_NGINX_PORT:-19841}
export TEST_NGINX_SERVROOT=$TMP/servroot
bad=0

# case NAME EXPECTED_REGEX EXPECTED_NOT_OK_COUNT [ENV=VAL...] < test-file
case_() {
    local name=$1 want=$2 count=$3; shift 3
    cat > "$TMP/$name.t"
    local start=$SECONDS
    env "$@" perl -I "$ROOT/t/lib" "$TMP/$name.t" > "$TMP/$name.out" 2>&1
    local rc=$? took=$((SECONDS - start))
    local n
    n=$(grep -c '^not ok' "$TMP/$name.out")
    if [ $rc -ne 0 ] && grep -Eq "$want" "$TMP/$name.out" && [ "$n" = "$count" ] \
       && [ $took -lt 10 ]; then
        echo "PASS $name (exit $rc, $n not ok, ${took}s)"
    else
        echo "FAIL $name (exit $rc, $n not ok, want $count, ${took}s)"
        sed 's/^/    /' "$TMP/$name.out"
        bad=1
    fi
}

PREAMBLE="use lib 't/lib'; use Test::Nginx::Socket; plan tests => 2; run_tests();"
STALL='--- http_config
    server {
        listen $TEST_NGINX_RAND_PORT_1;
        location / { proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/never; }
    }
--- config
    location /s/ { ssi on; ssi_types *; postpone_output 0; root html; }
    location = /stall {
        proxy_pass_request_body off;
        proxy_set_header Content-Length 100;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
    }
--- user_files
>>> s/a.txt
first
<!--# include virtual="/stall" -->'

case_ timeout 'not ok 1 - ERROR: client socket timed out' 1 <<EOF
$PREAMBLE
__DATA__
=== TEST 1: a client timeout without --- abort
$STALL
--- request
GET /s/a.txt HTTP/1.0
--- timeout: 0.3
--- response_body
first
EOF

case_ no_last_chunk 'not ok 1 - .*no last chunk found' 3 <<EOF
$PREAMBLE
__DATA__
=== TEST 1: a chunked body cut by the timeout (abort hides the timeout only)
$STALL
--- request
GET /s/a.txt
--- timeout: 0.3
--- abort
--- response_body
first
EOF

case_ bad_chunk 'invalid chunked data' 3 <<EOF
$PREAMBLE
__DATA__
=== TEST 1: a body that claims to be chunked but is not
--- config
    location = /t { add_header Transfer-Encoding chunked; return 200 "zzz"; }
--- request
GET /t
--- response_body
zzz
EOF

case_ connect 'not ok 1 - .*ERROR: failed to connect' 3 TEST_NGINX_CLIENT_PORT=9 <<EOF
$PREAMBLE
__DATA__
=== TEST 1: nothing listens on the client port
--- config
--- request
GET /
--- response_body_like: It works
EOF

case_ start_failure 'not ok 1 - .*nginx failed to start' 1 <<EOF
$PREAMBLE
__DATA__
=== TEST 1: a config error without --- must_die
--- config
    no_such_directive on;
--- request
GET /
--- response_body_like: It works
EOF

case_ must_die_starts 'nginx should have died but started' 1 <<EOF
use lib 't/lib'; use Test::Nginx::Socket; plan tests => 1; run_tests();
__DATA__
=== TEST 1: must_die, but the config is fine
--- config
--- must_die
EOF

case_ mismatches 'not ok' 8 <<'EOF'
use lib 't/lib'; use Test::Nginx::Socket; plan tests => 10; run_tests();
__DATA__
=== TEST 1: every check fails once (8 of 10)
--- config
    location = /t { add_header X-Foo bar; return 200 "hello\n"; }
--- request
GET /t
--- error_code: 201
--- raw_response_headers_like: ^HTTP/1\.1 201
--- response_headers
X-Foo: baz
!X-Foo
X-Other: present
--- response_body
goodbye
--- error_log
no such line anywhere
--- no_error_log
http close request
EOF

case_ unlike_fails 'not ok 2 - .*response_body_unlike' 1 <<'EOF'
use lib 't/lib'; use Test::Nginx::Socket; plan tests => 2; run_tests();
__DATA__
=== TEST 1: response_body_unlike matches
--- config
    location = /t { return 200 "hello\n"; }
--- request
GET /t
--- response_body_unlike: ^hello$
EOF

case_ unexpected_crit 'not ok 2 - .*unexpected \[crit\] line in error\.log' 1 <<'EOF'
use lib 't/lib'; use Test::Nginx::Socket; plan tests => 2; run_tests();
__DATA__
=== TEST 1: a [crit] line the block does not declare fails it
--- config
    location = /t { proxy_pass http://unix:/nonexistent/asyncx-selftest.sock:/; }
--- request
GET /t
--- error_code: 502
EOF

case_ forbidden_crit_once 'not ok 2 - .*pattern "\[crit\]" should not match' 1 <<'EOF'
use lib 't/lib'; use Test::Nginx::Socket; plan tests => 2; run_tests();
__DATA__
=== TEST 1: a line no_error_log forbids is reported once, not twice
--- config
    location = /t { proxy_pass http://unix:/nonexistent/asyncx-selftest.sock:/; }
--- request
GET /t
--- error_code: 502
--- no_error_log
[crit]
EOF

case_ missing_log_line_waited 'not ok 2 - .*should match a line in error.log' 1 TEST_NGINX_TIMEOUT=1 <<'EOF'
use lib 't/lib'; use Test::Nginx::Socket; plan tests => 2; run_tests();
__DATA__
=== TEST 1: an error_log pattern that never comes fails after the timeout
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- error_log
no such line, ever
EOF

# the style checker (make style) finds each rule broken once, and passes
# a clean file
cat > "$TMP/bad.c" <<'EOF'
static int
f(int a)
{
    int  b;

    b = a;	/* a tab */
    // a C++ comment
    int  c = b;

    for (int i = 0; i < 3; i++) {
        b += i;
    }

    return b + c;  /* this line is made longer than eighty columns, on purpose */
}
EOF
cat > "$TMP/good.c" <<'EOF'
static u_char  s[] = "http://example.com/ // not a comment";

static int
g(int a)
{
    int       b;
    u_char   *p, *q;
    void    (*fn)(void);

    b = a;              /* // inside a comment */
    p = s;
    q = (u_char *) "{ int x = 1; }";

    if (b) {
        size_t  n;

        n = 1;
        b += (int) n;
    }

    (void) fn;
    (void) q;

    return b + (p != NULL);
}
EOF
out=$(perl "$ROOT/t/lib/style-check.pl" "$TMP/bad.c")
want="bad.c:6: a tab character
bad.c:14: longer than 80 columns (81)
bad.c:7: a // comment (use /* */)
bad.c:8: a declaration after a statement (declare at the top of the block)
bad.c:10: a declaration in a for header"
if [ "$(echo "$out" | sed "s|^$TMP/||")" = "$want" ] \
   && perl "$ROOT/t/lib/style-check.pl" "$TMP/good.c"; then
    echo "PASS style-check"
else
    echo "FAIL style-check: got"; echo "$out" | sed 's/^/    /'
    perl "$ROOT/t/lib/style-check.pl" "$TMP/good.c" | sed 's/^/    good.c: /'
    bad=1
fi

exit $bad
