# The limiter: status and test endpoint shapes, queue full (429), wait
# timeout (503), per-key isolation, release after client aborts, the
# limit_req-style directives (refusal codes, error_page, log level, dry
# run), several zones on one location, per-zone counters, and nginx -t
# refusals.  Multi-worker behaviour is in t/390-limit-workers.t, the
# queue under departures, kills and reloads in t/391-limit-queue.t.

use lib 't/lib';
use Test::Nginx::Socket;
use JSON::PP ();

repeat_each(1);    # bucket state carries over between repeats

plan tests => repeat_each() * (3 * blocks() + 434);

no_shuffle();
no_long_string();

# one line per fact a block checks, from the /rate-limit-test answer
sub limit_test_summary {
    my $j = JSON::PP::decode_json(shift);
    my @r = @{ $j->{results} };

    # the most calls running at once, from their start and end offsets
    my @ev;
    for my $c (grep { defined $_->{start_ms} } @r) {
        push @ev, [$c->{start_ms}, 1], [$c->{end_ms}, -1];
    }
    my ($cur, $max) = (0, 0);
    for my $e (sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] } @ev) {
        $cur += $e->[1];
        $max = $cur if $cur > $max;
    }

    # the most admissions in any 1 s window
    my @starts = sort { $a <=> $b } map { $_->{start_ms} }
                 grep { defined $_->{start_ms} } @r;
    my $win = 0;
    for my $i (0 .. $#starts) {
        my $n = grep { $_ >= $starts[$i] && $_ < $starts[$i] + 1000 } @starts;
        $win = $n if $n > $win;
    }

    my $t = $j->{total_time_ms};
    return "total=$j->{total_requests} max_concurrent=$j->{max_concurrent} "
         . "max_per_second=$j->{max_per_second}\n"
         . "statuses=" . join(",", map { $_->{status} } @r) . "\n"
         . "seen_concurrency=$max\n"
         . "window_ok=" . ($win <= $ENV{LIMIT_WINDOW_MAX} ? 1 : "no($win)")
         . "\n"
         . "time_ok=" . ($t > $ENV{LIMIT_MIN_MS} && $t < $ENV{LIMIT_MAX_MS}
                         ? 1 : "no($t)") . "\n"
         . "keys=" . CORE::join(",", map { my $k = $_; utf8::encode($k); $k }
                                      sort keys %$j) . "\n";
}

# refusals are logged at asyncx_limit_log_level, error by default (as
# with limit_req_log_level): blocks that expect some allow those, and
# no other [error] line
our $other_error = qr/\[error\](?! \d+#\d+: \*\d+ asyncx: limited by zone "[^"]+": (?:queue is full|waited longer than the timeout|zone is full) \(status \d+\))/;

run_tests();

__DATA__

=== TEST 1: the status endpoint has the exercise's shape
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s concurrency=3 burst=5;
--- config
    location = /rate-limiter/status { asyncx_limit_zone_status api; }
--- request
GET /rate-limiter/status
--- response_headers
Content-Type: application/json
--- response_body
{"concurrent":{"current":0,"max":3},"rate":{"current_rps":0,"max_rps":5},"waiting":0}
--- no_error_log
[error]



=== TEST 2: ten concurrent calls: at most 3 at once, 5/s plus the burst
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s concurrency=3 burst=5;
--- config
    location = /rate-limit-test { asyncx_limit_test api /external/call; }
    location /external/ {
        asyncx_limit api;
        asyncx_mock_service name=external delay=500ms;
    }
--- request
GET /rate-limit-test?requests=10
--- response_body_filters eval
sub { local $ENV{LIMIT_MIN_MS} = 1900; local $ENV{LIMIT_MAX_MS} = 3500;
      local $ENV{LIMIT_WINDOW_MAX} = 10;
      main::limit_test_summary($_[0]) }
--- response_body
total=10 max_concurrent=3 max_per_second=5
statuses=200,200,200,200,200,200,200,200,200,200
seen_concurrency=3
window_ok=1
time_ok=1
keys=max_concurrent,max_per_second,results,total_requests,total_time,total_time_ms,설명
--- timeout: 10
--- no_error_log
[error]



=== TEST 3: the rate binds when concurrency does not: 12 quick calls at 5r/s
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s concurrency=100 burst=2;
--- config
    location = /rate-limit-test { asyncx_limit_test api /external/call; }
    location /external/ {
        asyncx_limit api;
        asyncx_mock_service name=external;
    }
--- request
GET /rate-limit-test?requests=12
--- response_body_filters eval
sub { local $ENV{LIMIT_MIN_MS} = 1800; local $ENV{LIMIT_MAX_MS} = 3500;
      local $ENV{LIMIT_WINDOW_MAX} = 7;
      my $s = main::limit_test_summary($_[0]);
      $s =~ s/^keys=.*\n//m; $s =~ s/^seen_concurrency=.*\n//m; $s }
--- response_body
total=12 max_concurrent=100 max_per_second=5
statuses=200,200,200,200,200,200,200,200,200,200,200,200
window_ok=1
time_ok=1
--- timeout: 10
--- no_error_log
[error]



=== TEST 3b: arguments written after the test URI reach every call, after its id
--- http_config
    asyncx_limit_zone zone=api:1m rate=100r/s concurrency=10;
--- config
    location = /rate-limit-test { asyncx_limit_test api /s/t?delay=300ms; }
    location /s/ {
        asyncx_limit api;
        asyncx_mock_service name=s max_delay=30s;
    }
--- request
GET /rate-limit-test?requests=2
--- response_body_filters eval
sub { my $j = JSON::PP::decode_json($_[0]);
      join '', map { "id=$_->{id} status=$_->{status} slow="
                     . ($_->{end_ms} - $_->{start_ms} >= 300 ? 1 : 0) . "\n" }
               @{ $j->{results} } }
--- response_body
id=1 status=200 slow=1
id=2 status=200 slow=1
--- no_error_log
[error]



=== TEST 4: requests outside 1..100 are refused
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s concurrency=3;
--- config
    location = /rate-limit-test { asyncx_limit_test api /external/call; }
--- request eval
["GET /rate-limit-test?requests=0", "GET /rate-limit-test?requests=101",
 "GET /rate-limit-test?requests=ten"]
--- error_code eval
[400, 400, 400]
--- response_body eval
[("{\"error\": \"requests must be an integer between 1 and 100\", \"status\": 400}\n") x 3]
--- no_error_log
[error]



=== TEST 5: a full queue answers 429 at once, with Retry-After
(1r/m: the next token is about 59 s away)
--- http_config
    asyncx_limit_zone zone=one:64k rate=1r/m burst=1 queue=0;
--- config
    location = /t {
        asyncx_limit one;
        asyncx_mock_service name=in echo=off;
    }
--- request eval
["GET /t", "GET /t"]
--- error_code eval
[200, 429]
--- response_headers eval
["Retry-After:", "Retry-After: 59"]
--- response_body_like eval
['"service":"in"', qr/^\{"error": "limited by zone \\"one\\": queue is full", "status": 429\}\n\z/]
--- no_error_log eval
[$::other_error]



=== TEST 6: a wait longer than timeout answers 503, with Retry-After
--- http_config
    asyncx_limit_zone zone=one:64k rate=1r/m burst=1 queue=5 timeout=300ms;
--- config
    location = /t {
        asyncx_limit one;
        asyncx_mock_service name=in echo=off;
    }
--- request eval
["GET /t", "GET /t"]
--- error_code eval
[200, 503]
--- response_headers eval
["Retry-After:", "Retry-After: 59"]
--- response_body_like eval
['"service":"in"', qr/^\{"error": "limited by zone \\"one\\": waited longer than the timeout", "status": 503\}\n\z/]
--- no_error_log eval
[$::other_error]



=== TEST 7: with key=, every key has its own bucket
--- http_config
    asyncx_limit_zone zone=per:1m rate=1r/m burst=1 queue=0 key=$arg_k;
--- config
    location = /t {
        asyncx_limit per;
        asyncx_mock_service name=in echo=off;
    }
--- request eval
["GET /t?k=a", "GET /t?k=a", "GET /t?k=b", "GET /t?k=b"]
--- error_code eval
[200, 429, 200, 429]
--- response_body_like eval
['"service":"in"', "queue is full", '"service":"in"', "queue is full"]
--- no_error_log eval
[$::other_error]



=== TEST 8: a queued call and a full queue inside one test run
--- http_config
    asyncx_limit_zone zone=tiny:64k rate=10r/s concurrency=1 burst=1 queue=1 timeout=5s;
--- config
    location = /rate-limit-test { asyncx_limit_test tiny /slow; }
    location = /slow {
        asyncx_limit tiny;
        asyncx_mock_service name=slow delay=300ms;
    }
--- request
GET /rate-limit-test?requests=3
--- response_body_filters eval
sub { my $j = JSON::PP::decode_json($_[0]);
      CORE::join(",", map { $_->{status} } @{ $j->{results} }) . "\n" }
--- response_body
200,200,429
--- no_error_log eval
[$::other_error]



=== TEST 9: a client that leaves frees its slot and its place in the queue
--- http_config
    asyncx_limit_zone zone=api:1m rate=100r/s concurrency=1 queue=10;
--- config
    location = /rate-limit-test { asyncx_limit_test api /slow; }
    location = /slow {
        asyncx_limit api;
        asyncx_mock_service name=slow delay=2s;
    }
    location = /rate-limiter/status { asyncx_limit_zone_status api; }
--- request eval
["GET /rate-limit-test?requests=5",
 [{ value => "GET /rate-limiter/status HTTP/1.0\r\nHost: localhost\r\n\r\n",
    delay_before => 0.5 }]]
--- timeout: 0.3
--- abort
--- error_code eval
["", 200]
--- response_body_like eval
["^\$", qr/^\{"concurrent":\{"current":0,"max":1\},"rate":\{"current_rps":[01],"max_rps":100\},"waiting":0\}\n\z/]
--- no_error_log
[error]



=== TEST 10: an upstream error releases the slot too
--- http_config
    asyncx_limit_zone zone=api:1m rate=100r/s concurrency=1 queue=0;
--- config
    location = /bad {
        asyncx_limit api;
        proxy_pass http://127.0.0.1:1/;
    }
    location = /rate-limiter/status { asyncx_limit_zone_status api; }
--- request eval
["GET /bad", "GET /bad", "GET /rate-limiter/status"]
--- error_code eval
[502, 502, 200]
--- response_body_like eval
["502 Bad Gateway", "502 Bad Gateway", '^\{"concurrent":\{"current":0,"max":1\},.*"waiting":0\}\n\z']
--- no_error_log
[alert]



=== TEST 11: asyncx_status lists every zone
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s concurrency=3 burst=5;
    asyncx_limit_zone zone=per:1m rate=30r/m key=$binary_remote_addr;
--- config
    location = /asyncx/status { asyncx_status; }
--- request
GET /asyncx/status
--- response_body_filters eval
sub { my $z = JSON::PP::decode_json($_[0])->{limit_zones};
      CORE::join("\n", map { "$_: max=$z->{$_}{concurrent}{max} rps=$z->{$_}{rate}{max_rps} burst=$z->{$_}{burst} queue=$z->{$_}{queue}" } sort keys %$z) . "\n" }
--- response_body
api: max=3 rps=5 burst=5 queue=100
per: max=0 rps=0.5 burst=1 queue=100
--- no_error_log
[error]



=== TEST 12: nginx -t: rate=0 is refused, naming the value
--- http_config
    asyncx_limit_zone zone=api:1m rate=0r/s;
--- config
--- must_die
--- error_log
invalid rate "rate=0r/s" in "asyncx_limit_zone" directive, expected 1..1000000 r/s or r/m



=== TEST 13: nginx -t: an unknown zone is refused
--- config
    location = /t { asyncx_limit nope; return 200; }
--- must_die
--- error_log
unknown asyncx_limit_zone "nope"



=== TEST 13b: nginx -t: the module's own statistics zone is not a limit zone (every limited request crashed)
--- config
    location = /t { asyncx_limit asyncx_stats; return 200; }
--- must_die
--- error_log
unknown asyncx_limit_zone "asyncx_stats"



=== TEST 13c: nginx -t: nor is its metrics zone, for the zone status
--- config
    location = /t { asyncx_limit_zone_status asyncx_metrics; }
--- must_die
--- error_log
unknown asyncx_limit_zone "asyncx_metrics"



=== TEST 14: nginx -t: a zone smaller than 8 pages is refused
--- http_config
    asyncx_limit_zone zone=api:4k rate=5r/s;
--- config
--- must_die
--- error_log
zone "api" is too small: "zone=api:4k" in "asyncx_limit_zone" directive, at least 32k



=== TEST 15: nginx -t: unknown parameters name themselves
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s speed=9;
--- config
--- must_die
--- error_log
invalid parameter "speed=9"



=== TEST 16: $asyncx_limit_status and $asyncx_limit_wait tell what the limiter did
(sequential requests: PASSED, then REJECTED (queue=0); DELAYED up to 1 s
at 1r/s (less when the machine is slow to send the next request: the
second request must come within the second, a margin ten times what an
ASan run under stress-ng needed); TIMEOUT after 300 ms; nothing where no limit applies.  A PASSED
wait is the time to take the zone lock; under ASan on a busy machine the
first one took 90 ms, so the bound is 0.5 s)
--- http_config
    asyncx_limit_zone zone=one:64k rate=1r/m burst=1 queue=0;
    asyncx_limit_zone zone=slowly:64k rate=1r/s burst=1 queue=5 timeout=5s;
    asyncx_limit_zone zone=brief:64k rate=1r/m burst=1 queue=5 timeout=300ms;
--- config
    add_header X-Limit "$asyncx_limit_status $asyncx_limit_wait" always;
    location = /one { asyncx_limit one; asyncx_mock_service name=one echo=off; }
    location = /slowly { asyncx_limit slowly; asyncx_mock_service name=s echo=off; }
    location = /brief { asyncx_limit brief; asyncx_mock_service name=b echo=off; }
    location = /free { asyncx_mock_service name=free echo=off; }
--- request eval
["GET /one", "GET /one", "GET /slowly", "GET /slowly", "GET /brief",
 "GET /brief", "GET /free"]
--- error_code eval
[200, 429, 200, 200, 200, 503, 200]
--- raw_response_headers_like eval
[qr/\r\nX-Limit: PASSED 0\.[0-4]\d\d\r\n/, qr/\r\nX-Limit: REJECTED 0\.[0-4]\d\d\r\n/,
 qr/\r\nX-Limit: PASSED 0\.[0-4]\d\d\r\n/, qr/\r\nX-Limit: DELAYED (?!0\.000)[01]\.\d\d\d\r\n/,
 qr/\r\nX-Limit: PASSED 0\.[0-4]\d\d\r\n/, qr/\r\nX-Limit: TIMEOUT 0\.[345]\d\d\r\n/,
 qr/\r\nX-Limit:  \r\n|^(?!.*X-Limit)/s]
--- no_error_log eval
[$::other_error]



=== TEST 17: a zone too small for every key evicts the least recently used idle key
(keys of 248 bytes make a node about 400 bytes: a 32k zone holds a few
dozen; 80 keys at 1r/m each enter once, then the first one, evicted,
enters again with a full bucket, while the last one, kept, is refused)
--- http_config
    asyncx_limit_zone zone=keys:32k rate=1r/m burst=1 queue=0 key=$arg_k;
--- config
    location = /t { asyncx_limit keys; asyncx_mock_service name=t echo=off; }
--- request eval
[(map { "GET /t?k=" . ("k" x 245) . sprintf("%03d", $_) } 1 .. 80),
 "GET /t?k=" . ("k" x 245) . "080", "GET /t?k=" . ("k" x 245) . "001"]
--- error_code eval
[(200) x 80, 429, 200]
--- no_error_log eval
["[alert]", $::other_error]



=== TEST 18: when every node is in use, a new key is refused with 503 and one alert
(100 calls at once, each with its own 248-byte key, each holding its
slot for 1 s: the 32k zone cannot hold them all and evicts none of them;
each refusal is logged at asyncx_limit_log_level, the alert that the
zone is full once a minute per worker, not once per refusal)
--- http_config
    asyncx_limit_zone zone=keys:32k rate=100r/s concurrency=1 queue=0
                      key=${arg_id}kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk;
--- config
    location = /rate-limit-test { asyncx_limit_test keys /hold; }
    location = /hold {
        asyncx_limit keys;
        asyncx_mock_service name=hold delay=1s echo=off;
    }
--- request
GET /rate-limit-test?requests=100
--- response_body_filters eval
sub { my %n; $n{$_->{status}}++ for @{ JSON::PP::decode_json($_[0])->{results} };
      "200:" . ($n{200} ? "some" : "none") . " 503:" . ($n{503} ? "some" : "none")
      . " other:" . (100 - ($n{200} // 0) - ($n{503} // 0)) . "\n" }
--- response_body
200:some 503:some other:0
--- timeout: 10
--- error_log eval
qr/\[error\] .*asyncx: limited by zone "keys": zone is full \(status 503\)/
--- grep_error_log eval
qr/\[alert\] .*? is full, .*?(?=, client: )/
--- grep_error_log_out eval
qr/\A\[alert\] \d+#\d+: \*\d+ asyncx limit: zone "keys" is full, cannot add key "\d+k+"\n\z/



=== TEST 18b: a dry run passes a request whose key the full zone cannot hold
(as limit_req_dry_run: the same 100 calls as TEST 18 in a dry run all
answer 200; each is logged "zone is full, dry run" and the alert still
says once a minute that the zone is full; it was 503 before)
--- http_config
    asyncx_limit_zone zone=keys:32k rate=100r/s concurrency=1 queue=0
                      key=${arg_id}kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk;
--- config
    location = /rate-limit-test { asyncx_limit_test keys /hold; }
    location = /hold {
        asyncx_limit keys;
        asyncx_limit_dry_run on;
        asyncx_mock_service name=hold delay=1s echo=off;
    }
--- request
GET /rate-limit-test?requests=100
--- response_body_filters eval
sub { my %n; $n{$_->{status}}++ for @{ JSON::PP::decode_json($_[0])->{results} };
      "200:" . ($n{200} // 0) . " other:" . (100 - ($n{200} // 0)) . "\n" }
--- response_body
200:100 other:0
--- timeout: 10
--- error_log eval
qr/\[error\] .*asyncx: limited by zone "keys": zone is full, dry run,/
--- grep_error_log eval
qr/\[alert\] .*? is full, .*?(?=, client: )/
--- grep_error_log_out eval
qr/\A\[alert\] \d+#\d+: \*\d+ asyncx limit: zone "keys" is full, cannot add key "\d+k+"\n\z/



=== TEST 19: a request is limited once: an internal redirect keeps its slot
(concurrency=1: counting the redirected request again would make it wait
for its own slot until the timeout)
--- http_config
    asyncx_limit_zone zone=one:64k rate=100r/s concurrency=1 queue=5 timeout=1s;
--- config
    add_header X-Limit "$asyncx_limit_status" always;
    location = /a {
        asyncx_limit one;
        try_files /nonexistent @b;
    }
    location @b {
        asyncx_limit one;
        asyncx_mock_service name=b echo=off;
    }
    location = /status { asyncx_limit_zone_status one; }
--- request eval
["GET /a", "GET /status"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-Limit: PASSED", "X-Limit:"]
--- response_body_like eval
['"service":"b"', '"concurrent":\{"current":0,"max":1\}.*"waiting":0']
--- no_error_log
[warn]
[error]



=== TEST 20: error_page serves the refusal, the access log keeps its status
(the phase handler returns 429 to nginx, as limit_req does: the page is
the operator's; Retry-After stays; log_format sees $status and
$asyncx_limit_status of the refused request)
--- http_config
    asyncx_limit_zone zone=one:64k rate=1r/m burst=1 queue=0;
    log_format limited '$uri $status $asyncx_limit_status';
--- config
    access_log logs/limited.log limited;
    location = /t {
        asyncx_limit one;
        error_page 429 /busy;
        asyncx_mock_service name=in echo=off;
    }
    location = /busy {
        internal;
        default_type application/json;
        return 429 '{"busy": true}\n';
    }
    location = /log { access_log off; alias logs/limited.log; }
--- request eval
["GET /t", "GET /t", "GET /log"]
--- error_code eval
[200, 429, 200]
--- response_headers eval
["Retry-After:", "Retry-After: 59", "Retry-After:"]
--- response_body_like eval
['"service":"in"', qr/^\{"busy": true\}\n\z/,
 qr{^/t 200 PASSED\n/busy 429 REJECTED\n\z}]
--- no_error_log eval
[$::other_error]



=== TEST 21: asyncx_limit_status sets both refusal codes
--- http_config
    asyncx_limit_zone zone=one:64k rate=1r/m burst=1 queue=0;
    asyncx_limit_zone zone=brief:64k rate=1r/m burst=1 queue=5 timeout=200ms;
--- config
    asyncx_limit_status 503 504;
    location = /one { asyncx_limit one; asyncx_mock_service name=one echo=off; }
    location = /brief { asyncx_limit brief; asyncx_mock_service name=b echo=off; }
    location = /only {
        asyncx_limit_status 444;
        asyncx_limit one;
        asyncx_mock_service name=only echo=off;
    }
--- request eval
["GET /one", "GET /one", "GET /brief", "GET /brief"]
--- error_code eval
[200, 503, 200, 504]
--- response_body_like eval
['"service":"one"',
 qr/^\{"error": "limited by zone \\"one\\": queue is full", "status": 503\}\n\z/,
 '"service":"b"',
 qr/^\{"error": "limited by zone \\"brief\\": waited longer than the timeout", "status": 504\}\n\z/]
--- no_error_log eval
[$::other_error]



=== TEST 22: asyncx_limit_log_level: refusals at that level, waits one below
(the second /slowly waits for certain, its token a minute away, and gives
up after 50 ms)
--- http_config
    asyncx_limit_zone zone=one:64k rate=1r/m burst=1 queue=0;
    asyncx_limit_zone zone=slowly:64k rate=1r/m burst=1 queue=5 timeout=50ms;
--- config
    asyncx_limit_log_level warn;
    location = /one { asyncx_limit one; asyncx_mock_service name=one echo=off; }
    location = /slowly { asyncx_limit slowly; asyncx_mock_service name=s echo=off; }
--- request eval
["GET /one", "GET /one", "GET /slowly", "GET /slowly"]
--- error_code eval
[200, 429, 200, 503]
--- grep_error_log eval
qr/\[(?:error|warn|notice|info)\] \d+#\d+: \*\d+ asyncx[^,]*/
--- grep_error_log_out eval
["", qr/^\[warn\] \d+#\d+: \*\d+ asyncx: limited by zone "one": queue is full \(status 429\)\n\z/,
 "", qr/^\[notice\] \d+#\d+: \*\d+ asyncx limit: zone "slowly": request waits\n\[warn\] \d+#\d+: \*\d+ asyncx: limited by zone "slowly": waited longer than the timeout \(status 503\)\n\z/]



=== TEST 23: dry run: counted and logged, never delayed nor refused
--- http_config
    asyncx_limit_zone zone=one:64k rate=1r/m burst=1 queue=0;
    asyncx_limit_zone zone=q:64k rate=1r/m burst=1 queue=5;
--- config
    asyncx_limit_dry_run on;
    add_header X-Limit "$asyncx_limit_status" always;
    location = /one { asyncx_limit one; asyncx_mock_service name=one echo=off; }
    location = /q { asyncx_limit q; asyncx_mock_service name=q echo=off; }
    location = /asyncx/status { asyncx_status; }
--- request eval
["GET /one", "GET /one", "GET /one", "GET /q", "GET /q", "GET /asyncx/status"]
--- error_code eval
[200, 200, 200, 200, 200, 200]
--- response_headers eval
["X-Limit: PASSED", "X-Limit: REJECTED_DRY_RUN", "X-Limit: REJECTED_DRY_RUN",
 "X-Limit: PASSED", "X-Limit: DELAYED_DRY_RUN", "X-Limit:"]
--- response_body_filters eval
sub { return "" unless $_[0] =~ /^\{"module"/;
      my $z = JSON::PP::decode_json($_[0])->{limit_zones};
      CORE::join("\n", map { my $s = $z->{$_}; "$_: passed=$s->{passed} delayed=$s->{delayed} rejected=$s->{rejected} dry_run=$s->{dry_run}{delayed}/$s->{dry_run}{rejected} now=$s->{concurrent}{current}/$s->{waiting}" } sort keys %$z) . "\n" }
--- response_body eval
[("") x 5, "one: passed=1 delayed=0 rejected=0 dry_run=0/2 now=0/0\nq: passed=1 delayed=0 rejected=0 dry_run=1/0 now=0/0\n"]
--- grep_error_log eval
qr/\[(?:error|warn|notice|info)\] \d+#\d+: \*\d+ asyncx[^(]*dry run/
--- grep_error_log_out eval
["", qr/^\[error\] \d+#\d+: \*\d+ asyncx: limited by zone "one": queue is full, dry run\n\z/,
 qr/^\[error\] \d+#\d+: \*\d+ asyncx: limited by zone "one": queue is full, dry run\n\z/,
 "", qr/^\[warn\] \d+#\d+: \*\d+ asyncx: limited by zone "q": would wait, dry run\n\z/, ""]



=== TEST 23b: dry run with a queue: the queue it would have fills, then
what a full queue would refuse is REJECTED_DRY_RUN, counted and logged
(every request passed the queue before: never a rejection; found by the
fourteenth session's hostile review).  1r/m: no token comes during the
test, however slow the machine.
--- http_config
    asyncx_limit_zone zone=q:64k rate=1r/m burst=1 queue=2;
--- config
    asyncx_limit_dry_run on;
    add_header X-Limit "$asyncx_limit_status" always;
    location = /q { asyncx_limit q; asyncx_mock_service name=q echo=off; }
    location = /asyncx/status { asyncx_status; }
--- request eval
["GET /q", "GET /q", "GET /q", "GET /q", "GET /q", "GET /asyncx/status"]
--- error_code eval
[200, 200, 200, 200, 200, 200]
--- response_headers eval
["X-Limit: PASSED", "X-Limit: DELAYED_DRY_RUN", "X-Limit: DELAYED_DRY_RUN",
 "X-Limit: REJECTED_DRY_RUN", "X-Limit: REJECTED_DRY_RUN", "X-Limit:"]
--- response_body_filters eval
sub { return "" unless $_[0] =~ /^\{"module"/;
      my $s = JSON::PP::decode_json($_[0])->{limit_zones}{q};
      "passed=$s->{passed} delayed=$s->{delayed} rejected=$s->{rejected} dry_run=$s->{dry_run}{delayed}/$s->{dry_run}{rejected}/$s->{dry_run}{waiting} now=$s->{concurrent}{current}/$s->{waiting}\n" }
--- response_body eval
[("") x 5, "passed=1 delayed=0 rejected=0 dry_run=2/2/2 now=0/0\n"]
--- grep_error_log eval
qr/\[(?:error|warn|notice|info)\] \d+#\d+: \*\d+ asyncx[^(]*dry run/
--- grep_error_log_out eval
["",
 qr/^\[warn\] \d+#\d+: \*\d+ asyncx: limited by zone "q": would wait, dry run\n\z/,
 qr/^\[warn\] \d+#\d+: \*\d+ asyncx: limited by zone "q": would wait, dry run\n\z/,
 qr/^\[error\] \d+#\d+: \*\d+ asyncx: limited by zone "q": queue is full, dry run\n\z/,
 qr/^\[error\] \d+#\d+: \*\d+ asyncx: limited by zone "q": queue is full, dry run\n\z/,
 ""]



=== TEST 23c: dry run with a queue: the would-be waiters leave as the
rate's tokens come, a pause included (they stayed while arrivals came
slower than the rate: every later request was DELAYED_DRY_RUN; found
by the fourteenth session's hostile review).  Only the request after
the 1 s pause is asserted: at 10r/s its 3 would-be waiters had 10
tokens, however slow the machine.
--- http_config
    asyncx_limit_zone zone=q:64k rate=10r/s burst=1 queue=3;
--- config
    asyncx_limit_dry_run on;
    add_header X-Limit "$asyncx_limit_status" always;
    location = /q { asyncx_limit q; asyncx_mock_service name=q echo=off; }
    location = /pause { asyncx_mock_service name=p delay=1s echo=off; }
    location = /asyncx/status { asyncx_status; }
--- request eval
["GET /q", "GET /q", "GET /q", "GET /q", "GET /pause", "GET /q",
 "GET /asyncx/status"]
--- error_code eval
[200, 200, 200, 200, 200, 200, 200]
--- response_headers_like eval
["X-Limit: .*", "X-Limit: .*", "X-Limit: .*", "X-Limit: .*", "X-Limit: ",
 "X-Limit: PASSED", "X-Limit: "]
--- response_body_filters eval
sub { return "" unless $_[0] =~ /^\{"module"/;
      my $s = JSON::PP::decode_json($_[0])->{limit_zones}{q};
      "waiting=$s->{dry_run}{waiting}\n" }
--- response_body eval
[("") x 6, "waiting=0\n"]



=== TEST 24: two zones on one location: each one enforced, the refusal names it
(per key 1r/m, then all keys together 2r/m: declared in that order, a
request takes them in that order)
--- http_config
    asyncx_limit_zone zone=perkey:64k rate=1r/m burst=1 queue=0 key=$arg_k;
    asyncx_limit_zone zone=global:64k rate=2r/m burst=2 queue=0;
--- config
    location = /t {
        asyncx_limit global;
        asyncx_limit perkey;
        asyncx_mock_service name=in echo=off;
    }
    location = /s/perkey { asyncx_limit_zone_status perkey; }
    location = /s/global { asyncx_limit_zone_status global; }
--- request eval
["GET /t?k=a", "GET /t?k=a", "GET /t?k=b", "GET /t?k=c", "GET /s/perkey", "GET /s/global"]
--- error_code eval
[200, 429, 200, 429, 200, 200]
--- response_body_like eval
['"service":"in"', qr/zone ..perkey..: queue is full/,
 '"service":"in"', qr/zone ..global..: queue is full/,
 '"concurrent":\{"current":0,.*"waiting":0\}', '"concurrent":\{"current":0,.*"waiting":0\}']
--- no_error_log eval
[$::other_error]



=== TEST 25: two capped zones on one location: slots of both given back on every path
(the test endpoint's calls: admitted by both, queued in the second while
holding a slot of the first, queued in the first, refused by the first)
--- http_config
    asyncx_limit_zone zone=a:64k rate=100r/s concurrency=2 queue=2 timeout=5s;
    asyncx_limit_zone zone=b:64k rate=100r/s concurrency=1 queue=1 timeout=5s;
--- config
    location = /rate-limit-test { asyncx_limit_test a /slow; }
    location = /slow {
        asyncx_limit a;
        asyncx_limit b;
        asyncx_mock_service name=slow delay=200ms echo=off;
    }
    location = /s/a { asyncx_limit_zone_status a; }
    location = /s/b { asyncx_limit_zone_status b; }
--- request eval
["GET /rate-limit-test?requests=5", "GET /s/a", "GET /s/b"]
--- response_body_filters eval
sub { my $j = JSON::PP::decode_json($_[0]);
      $j->{results} ? CORE::join(",", sort map { $_->{status} } @{ $j->{results} }) . "\n"
                    : "$j->{concurrent}{current}/$j->{waiting}\n" }
--- response_body eval
["200,200,200,200,429\n", "0/0\n", "0/0\n"]
--- no_error_log eval
[$::other_error]



=== TEST 26: a request admitted by one zone and refused by the next gives the first slot back
--- http_config
    asyncx_limit_zone zone=a:64k rate=100r/s concurrency=2 queue=0;
    asyncx_limit_zone zone=b:64k rate=100r/s concurrency=1 queue=0;
--- config
    location = /rate-limit-test { asyncx_limit_test a /slow; }
    location = /slow {
        asyncx_limit b;
        asyncx_limit a;
        asyncx_mock_service name=slow delay=300ms echo=off;
    }
    location = /s/a { asyncx_limit_zone_status a; }
--- request eval
["GET /rate-limit-test?requests=3", "GET /s/a"]
--- response_body_filters eval
sub { my $j = JSON::PP::decode_json($_[0]);
      $j->{results} ? CORE::join(",", map { $_->{status} } @{ $j->{results} }) . "\n"
                    : "$j->{concurrent}{current}/$j->{waiting}\n" }
--- response_body eval
["200,429,429\n", "0/0\n"]
--- grep_error_log eval
qr/limited by zone "[ab]": queue is full/
--- grep_error_log_out eval
["limited by zone \"b\": queue is full\nlimited by zone \"b\": queue is full\n", ""]



=== TEST 27: nginx -t: burst=0 is refused, naming the directive and the value
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s burst=0;
--- config
--- must_die
--- error_log
invalid value "burst=0" in "asyncx_limit_zone" directive, expected 1..1000000



=== TEST 28: nginx -t: values past their bound are refused
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s concurrency=100001;
--- config
--- must_die
--- error_log
invalid value "concurrency=100001" in "asyncx_limit_zone" directive, expected 0..100000



=== TEST 29: nginx -t: a queue below 0 is refused
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s queue=-1;
--- config
--- must_die
--- error_log
invalid value "queue=-1" in "asyncx_limit_zone" directive, expected 0..100000



=== TEST 30: nginx -t: timeout=0 is refused (queue=0 means "never wait")
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s timeout=0;
--- config
--- must_die
--- error_log
invalid timeout "timeout=0" in "asyncx_limit_zone" directive, expected 1ms..24h



=== TEST 31: nginx -t: a rate that overflows is refused
--- http_config
    asyncx_limit_zone zone=api:1m rate=99999999999999999999999r/s;
--- config
--- must_die
--- error_log
invalid rate "rate=99999999999999999999999r/s" in "asyncx_limit_zone" directive, expected 1..1000000 r/s or r/m



=== TEST 32: nginx -t: a refusal status outside 400..599 is refused
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s;
--- config
    location = /t { asyncx_limit api; asyncx_limit_status 429 200; return 200; }
--- must_die
--- error_log
invalid value "200" in "asyncx_limit_status" directive, expected a status code 400..599



=== TEST 32b: nginx -t: a negative status is a bad code, not the old zone-status form
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s;
--- config
    location = /t { asyncx_limit api; asyncx_limit_status -1; return 200; }
--- must_die
--- error_log
invalid value "-1" in "asyncx_limit_status" directive, expected a status code 400..599



=== TEST 32c: asyncx_limit_status 444 closes the connection unanswered, as limit_req_status 444
--- http_config
    asyncx_limit_zone zone=api:1m rate=1r/m burst=1 queue=0;
--- config
    location = /t { asyncx_limit api; asyncx_limit_status 444; asyncx_mock_service name=t; }
--- request eval
["GET /t", "GET /t"]
--- error_code eval
[200, ""]
--- response_body_like eval
['^\{"service":"t"', '^$']
--- grep_error_log eval: qr/limited by zone "api": queue is full \(status 444, connection closed\)/
--- grep_error_log_out eval
["", "limited by zone \"api\": queue is full (status 444, connection closed)\n"]
--- no_error_log
[alert]



=== TEST 32c2: asyncx_limit_test reports calls refused with 444 as 444 (it closed the client's connection and lost the report)
--- http_config
    asyncx_limit_zone zone=api:1m rate=1000r/s burst=1000 concurrency=1 queue=0;
--- config
    location = /lt { asyncx_limit_test api /ext/call?delay=300ms; }
    location /ext/ {
        asyncx_limit api;
        asyncx_limit_status 444;
        asyncx_mock_service name=ext max_delay=1s;
    }
--- request
GET /lt?requests=3
--- response_body_filters eval
sub { my @st = $_[0] =~ /"status":(\d+)/g; join(",", sort @st) . "\n" }
--- response_body
200,444,444
--- grep_error_log eval: qr/limited by zone "api": queue is full \(status 444[^)]*\)/
--- grep_error_log_out
limited by zone "api": queue is full (status 444)
limited by zone "api": queue is full (status 444)



=== TEST 32c3: nginx -t: the module's own zone names are not limit zone names
--- http_config
    asyncx_limit_zone zone=asyncx_stats:256k rate=1r/s;
--- config
--- must_die
--- error_log
invalid zone name "asyncx_stats" in "asyncx_limit_zone" directive: the module's own zone has that name



=== TEST 32d: nginx -t: nginx's own codes other than 444 are refused
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s;
--- config
    location = /t { asyncx_limit api; asyncx_limit_status 429 499; return 200; }
--- must_die
--- error_log
invalid value "499" in "asyncx_limit_status" directive, expected a status code 400..599 but not nginx's own 494..497, 499



=== TEST 33: nginx -t: an unknown log level is refused
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s;
--- config
    asyncx_limit_log_level loud;
--- must_die
--- error_log
invalid value "loud" in "asyncx_limit_log_level" directive, expected info, notice, warn or error



=== TEST 34: nginx -t: the same zone twice on a location is refused
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s;
--- config
    location = /t { asyncx_limit api; asyncx_limit api; return 200; }
--- must_die
--- error_log
zone "api" is duplicate in "asyncx_limit" directive



=== TEST 35: the zone status endpoint's old name still answers, with a warning at start
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s concurrency=3 burst=5;
--- config
    location = /rate-limiter/status { asyncx_limit_status api; }
--- request
GET /rate-limiter/status
--- response_body
{"concurrent":{"current":0,"max":3},"rate":{"current_rps":0,"max_rps":5},"waiting":0}
--- error_log
"asyncx_limit_status api" is deprecated for the zone's status, use "asyncx_limit_zone_status api"



=== TEST 36: asyncx_status counts passed, delayed, rejected and timed-out requests per zone
--- http_config
    asyncx_limit_zone zone=z:64k rate=5r/s burst=1 queue=1 timeout=100ms;
--- config
    location = /rate-limit-test { asyncx_limit_test z /t; }
    location = /t { asyncx_limit z; asyncx_mock_service name=t echo=off; }
    location = /asyncx/status { asyncx_status; }
--- request eval
["GET /rate-limit-test?requests=3", "GET /asyncx/status"]
--- response_body_filters eval
sub { my $j = JSON::PP::decode_json($_[0]);
      return CORE::join(",", map { $_->{status} } @{ $j->{results} }) . "\n" if $j->{results};
      my $s = $j->{limit_zones}{z};
      "passed=$s->{passed} delayed=$s->{delayed} rejected=$s->{rejected} timed_out=$s->{timed_out} left=$s->{left} admitted=$s->{admitted} now=$s->{concurrent}{current}/$s->{waiting}\n" }
--- response_body eval
["200,503,429\n", "passed=1 delayed=0 rejected=1 timed_out=1 left=0 admitted=1 now=0/0\n"]
--- no_error_log eval
[$::other_error]



=== TEST 37: the metrics endpoint has each zone's wait histogram: 0 for a request let in at once
(rate=1r/s burst=1: the second request waits up to 1 s, less the time the
client took to send it)
--- http_config
    asyncx_limit_zone zone=w:64k rate=1r/s burst=1 queue=5;
--- config
    location = /t { asyncx_limit w; asyncx_mock_service name=t echo=off; }
    location = /asyncx/status { asyncx_status; }
--- request eval
["GET /t", "GET /t", "GET /asyncx/status?format=prometheus"]
--- response_body_filters eval
sub { return "" unless $_[0] =~ /asyncx_limit_wait_seconds/;
      my %m = $_[0] =~ /^(asyncx_limit_wait_seconds_(?:count|sum|bucket)\{zone="w"[^}]*\}) (\S+)$/mg;
      my $le = $m{'asyncx_limit_wait_seconds_bucket{zone="w",le="0.001"}'} // 'none';
      "count=$m{'asyncx_limit_wait_seconds_count{zone=\"w\"}'} at_once=$le "
      . "sum_ok=" . ($m{'asyncx_limit_wait_seconds_sum{zone="w"}'} > 0.001 ? 1 : 0) . "\n" }
--- response_body eval
["", "", "count=2 at_once=1 sum_ok=1\n"]
--- no_error_log
[error]



=== TEST 38: HEAD runs the calls and answers once they have all ended
(calls that end out of order must not leave one active when the parent
answers: nginx built from its own sources logs "http finalize
non-active request" and the request ends as 499)
--- http_config
    asyncx_limit_zone zone=h:1m rate=1000r/s burst=1000 concurrency=4;
--- config
    location = /rate-limit-test { asyncx_limit_test h /t; }
    location = /t { asyncx_limit h; asyncx_mock_service name=t echo=off; }
--- request
HEAD /rate-limit-test?requests=7
--- response_headers_like
Content-Type: application/json
Content-Length: \d+
--- response_body
--- no_error_log
[error]
[alert]



=== TEST 39: by default refusals are logged at error and waits at warn, as with limit_req
(the second /slowly waits for certain: its token is a minute away, however
slowly a loaded machine sends it, and it gives up after 50 ms)
--- http_config
    asyncx_limit_zone zone=one:64k rate=1r/m burst=1 queue=0;
    asyncx_limit_zone zone=slowly:64k rate=1r/m burst=1 queue=5 timeout=50ms;
--- config
    location = /one { asyncx_limit one; asyncx_mock_service name=one echo=off; }
    location = /slowly { asyncx_limit slowly; asyncx_mock_service name=s echo=off; }
--- request eval
["GET /one", "GET /one", "GET /slowly", "GET /slowly"]
--- error_code eval
[200, 429, 200, 503]
--- grep_error_log eval
qr/\[(?:error|warn|notice|info)\] \d+#\d+: \*\d+ asyncx[^,]*/
--- grep_error_log_out eval
["", qr/^\[error\] \d+#\d+: \*\d+ asyncx: limited by zone "one": queue is full \(status 429\)\n\z/,
 "", qr/^\[warn\] \d+#\d+: \*\d+ asyncx limit: zone "slowly": request waits\n\[error\] \d+#\d+: \*\d+ asyncx: limited by zone "slowly": waited longer than the timeout \(status 503\)\n\z/]



=== TEST 40: a key longer than 255 bytes is limited too (under its digest), and logs nothing
(a client choosing its key must not escape the zone with a long one;
two long keys that differ only past their first 224 bytes are two keys)
--- http_config
    asyncx_limit_zone zone=long:64k rate=1r/m burst=1 queue=0 key=$http_x_key;
--- config
    location = /t { asyncx_limit long; asyncx_mock_service name=t echo=off; }
--- request eval
[("GET /t") x 5]
--- more_headers eval
["X-Key: " . ("a" x 300), "X-Key: " . ("a" x 300), "X-Key: " . ("a" x 299) . "b",
 "X-Key: " . ("a" x 299) . "b", "X-Key: " . ("a" x 255)]
--- error_code eval
[200, 429, 200, 429, 200]
--- no_error_log eval
["[alert]", "more than", $::other_error]
