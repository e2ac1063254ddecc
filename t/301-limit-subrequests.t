# A subrequest meets a zone in which the main request holds a place for
# the same key: it is not counted there again (limit_req limits a
# request once), so a pipeline behind a server-level asyncx_limit does
# not wait for its own slot nor take a token per call.  Everywhere else
# a subrequest counts on its own: zones the main request does not hold
# (sibling calls included), a key other than the main request's ($uri),
# a dry run's request that holds no place.  A limited subrequest gives
# its place back when it ends (its last buffer, or its header when it
# sends no body), also after a redirect to a location without the zone.
#
# Deterministic: the calls of a stage are all made in one pass of the
# event loop, before any mock's timer can fire, so a second call meets a
# slot still held; rates of 1r/m leave no token to chance.  The zones'
# own counters are asserted.

use lib 't/lib';
use Test::Nginx::Socket;
use JSON::PP ();

repeat_each(1);

# per block: two requests, each with its status, body and log checks
plan tests => repeat_each() * 71;

no_shuffle();
no_long_string();

# "outcome call=outcome/status ..." of a pipeline's standard answer, or
# "zone admitted/passed/delayed/rejected/timed_out" per zone of the status
sub summary {
    my $j = JSON::PP::decode_json(shift);

    if (exists $j->{limit_zones}) {
        my $z = $j->{limit_zones};
        return join '', map {
            "$_ $z->{$_}{admitted}/$z->{$_}{passed}/$z->{$_}{delayed}/"
            . "$z->{$_}{rejected}/$z->{$_}{timed_out} "
            . "current=$z->{$_}{concurrent}{current}\n"
        } sort keys %$z;
    }

    # a refused call: the limiter's own words, as the call got them
    my $c = $j->{calls};
    return "$j->{outcome} "
         . join(' ', map { "$_=$c->{$_}{outcome}/$c->{$_}{status}"
                           . ($c->{$_}{status} == 200 ? ''
                              : "/$c->{$_}{response}{error}") }
                     sort keys %$c) . "\n";
}

run_tests();

__DATA__

=== TEST 1: a server-level zone: the call does not wait for its parent's slot nor take a second token
--- http_config
    asyncx_limit_zone zone=one:1m rate=1r/m burst=1 concurrency=1 queue=5
                      timeout=3s;
--- config
    asyncx_limit one;

    location = /order {
        asyncx_pipeline;
        asyncx_pipeline_answer standard;
        asyncx_stage s1 a=/svc/a;
    }
    location = /svc/a {
        asyncx_mock_service name=a delay=10ms 'json={"x": 1}';
    }
    location = /status { asyncx_limit off; asyncx_status; }
--- request eval
["POST /order\n{}", "GET /status"]
--- error_code eval
[200, 200]
--- response_body_filters eval
\&main::summary
--- response_body eval
["ok a=ok/200\n",
 "one 1/1/0/0/0 current=0\n"]
--- no_error_log
[error]
[warn]



=== TEST 2: a zone the parent does not hold counts each call, siblings included
--- http_config
    asyncx_limit_zone zone=one:1m rate=1r/m burst=1 concurrency=1 queue=5
                      timeout=3s;
    asyncx_limit_zone zone=calls:1m rate=100r/s burst=100 concurrency=1
                      queue=5 timeout=10s;
--- config
    asyncx_limit one;

    location = /order {
        asyncx_pipeline;
        asyncx_pipeline_answer standard;
        asyncx_stage s1 a=/calls/a b=/calls/b;
    }
    location /calls/ {
        asyncx_limit calls;
        asyncx_mock_service name=c delay=50ms 'json={"y": 2}';
    }
    location = /status { asyncx_limit off; asyncx_status; }
--- request eval
["POST /order\n{}", "GET /status"]
--- error_code eval
[200, 200]
--- response_body_filters eval
\&main::summary
--- response_body eval
["ok a=ok/200 b=ok/200\n",
 "calls 2/1/1/0/0 current=0\none 1/1/0/0/0 current=0\n"]
--- no_error_log
[error]



=== TEST 3: a call through a location of both zones: counted in the one its parent does not hold
--- http_config
    asyncx_limit_zone zone=one:1m rate=1r/m burst=1 concurrency=1 queue=5
                      timeout=3s;
    asyncx_limit_zone zone=calls:1m rate=100r/s burst=100 concurrency=1
                      queue=5 timeout=10s;
--- config
    location = /order {
        asyncx_limit one;
        asyncx_pipeline;
        asyncx_pipeline_answer standard;
        asyncx_stage s1 a=/both/a;
        asyncx_stage s2 b=/both/b;
    }
    location /both/ {
        asyncx_limit one;
        asyncx_limit calls;
        asyncx_mock_service name=c delay=10ms 'json={"y": 2}';
    }
    location = /status { asyncx_status; }
--- request eval
["POST /order\n{}", "GET /status"]
--- error_code eval
[200, 200]
--- response_body_filters eval
\&main::summary
--- response_body eval
["ok a=ok/200 b=ok/200\n",
 "calls 2/2/0/0/0 current=0\none 1/1/0/0/0 current=0\n"]
--- no_error_log
[error]
[warn]



=== TEST 4: a request that does not hold the zone: its calls are limited as before (the second waits, the third is refused)
--- http_config
    asyncx_limit_zone zone=one:1m rate=1r/m burst=2 concurrency=1 queue=1
                      timeout=3s;
--- config
    location = /order {
        asyncx_pipeline;
        asyncx_pipeline_answer standard;
        asyncx_stage s1 a=/svc/a b=/svc/b c=/svc/c;
    }
    location /svc/ {
        asyncx_limit one;
        asyncx_mock_service name=s delay=10ms 'json={"x": 1}';
    }
    location = /status { asyncx_status; }
--- request eval
["POST /order\n{}", "GET /status"]
--- error_code eval
[502, 200]
--- response_body_filters eval
\&main::summary
--- response_body eval
["failed a=ok/200 b=ok/200 c=status/429/limited by zone \"one\": queue is full\n",
 "one 2/1/1/1/0 current=0\n"]
--- no_error_log
[alert]



=== TEST 5: a dry run's request that holds no place: its calls are counted where the zone is enforced
--- http_config
    asyncx_limit_zone zone=d:1m rate=1r/m burst=1 queue=0;
--- config
    location = /order {
        asyncx_limit d;
        asyncx_limit_dry_run on;
        asyncx_pipeline;
        asyncx_pipeline_answer standard;
        asyncx_stage s1 a=/svc/a;
    }
    location /svc/ {
        asyncx_limit d;
        asyncx_mock_service name=s delay=10ms 'json={"x": 1}';
    }
    location = /status { asyncx_status; }
--- request eval
["POST /order\n{}", "POST /order\n{}", "GET /status"]
--- error_code eval
[200, 502, 200]
--- response_body_filters eval
\&main::summary
--- response_body eval
["ok a=ok/200\n",
 "failed a=status/429/limited by zone \"d\": queue is full\n",
 "d 1/1/0/1/0 current=0\n"]
--- no_error_log
[alert]



=== TEST 6: a zone keyed by $uri: the call's key is not the order's, so it is counted
--- http_config
    asyncx_limit_zone zone=u:1m rate=1r/m burst=1 concurrency=1 queue=0
                      key=$uri;
--- config
    asyncx_limit u;

    location = /order {
        asyncx_pipeline;
        asyncx_pipeline_answer standard;
        asyncx_stage s1 a=/svc/a;
    }
    location = /svc/a {
        asyncx_mock_service name=a delay=10ms 'json={"x": 1}';
    }
    location = /status { asyncx_limit off; asyncx_status; }
--- request eval
["POST /order\n{}", "GET /status"]
--- error_code eval
[200, 200]
--- response_body_filters eval
\&main::summary
--- response_body eval
["ok a=ok/200\n",
 "u 2/2/0/0/0 current=0\n"]
--- no_error_log
[error]
[warn]



=== TEST 7: a zone keyed by the client's address: the call's key is the order's, so it passes
--- http_config
    asyncx_limit_zone zone=k:1m rate=1r/m burst=1 concurrency=1 queue=0
                      key=$binary_remote_addr;
--- config
    asyncx_limit k;

    location = /order {
        asyncx_pipeline;
        asyncx_pipeline_answer standard;
        asyncx_stage s1 a=/svc/a;
        asyncx_stage s2 b=/svc/b;
    }
    location /svc/ {
        asyncx_mock_service name=a delay=10ms 'json={"x": 1}';
    }
    location = /status { asyncx_limit off; asyncx_status; }
--- request eval
["POST /order\n{}", "GET /status"]
--- error_code eval
[200, 200]
--- response_body_filters eval
\&main::summary
--- response_body eval
["ok a=ok/200 b=ok/200\n",
 "k 1/1/0/0/0 current=0\n"]
--- no_error_log
[error]
[warn]



=== TEST 8: a call redirected to a location without the zone gives its place back when it ends, not when its order does
--- http_config
    asyncx_limit_zone zone=calls:1m rate=100r/s burst=100 concurrency=1
                      queue=0;
--- config
    location = /order {
        asyncx_pipeline;
        asyncx_pipeline_answer standard;
        asyncx_stage s1 a=/calls/a;
        asyncx_stage s2 b=/calls/b;
    }
    location /calls/ {
        asyncx_limit calls;
        try_files /no-such-file @mock;
    }
    location @mock {
        asyncx_mock_service name=m delay=10ms 'json={"x": 1}';
    }
    location = /status { asyncx_status; }
--- request eval
["POST /order\n{}", "GET /status"]
--- error_code eval
[200, 200]
--- response_body_filters eval
\&main::summary
--- response_body eval
["ok a=ok/200 b=ok/200\n",
 "calls 2/2/0/0/0 current=0\n"]
--- no_error_log
[error]
[warn]



=== TEST 9: an auth_request subrequest (header only, no body passes) gives its place back at its header, not when its request ends
--- http_config
    asyncx_limit_zone zone=z:1m rate=100r/s burst=100 concurrency=1
                      queue=0;
--- config
    location = /order {
        auth_request /auth;
        asyncx_pipeline;
        asyncx_pipeline_answer standard;
        asyncx_stage s1 a=/calls/a;
    }
    location = /auth {
        asyncx_limit z;
        asyncx_mock_service name=auth delay=10ms;
    }
    location /calls/ {
        asyncx_limit z;
        asyncx_mock_service name=c delay=10ms 'json={"x": 1}';
    }
    location = /status { asyncx_status; }
--- request eval
["POST /order\n{}", "GET /status"]
--- error_code eval
[200, 200]
--- response_body_filters eval
\&main::summary
--- response_body eval
["ok a=ok/200\n",
 "z 2/2/0/0/0 current=0\n"]
--- no_error_log
[error]
[warn]



=== TEST 10: a mock behind auth_request notices its client leaving: the request ends at once and its slot comes back (it held the slot for the whole delay)
--- http_config
    asyncx_limit_zone zone=z:1m rate=100r/s burst=100 concurrency=1
                      queue=0;
--- config
    location = /authed {
        auth_request /auth;
        asyncx_mock_service name=authed;
    }
    location = /auth {
        asyncx_limit z;
        asyncx_mock_service name=auth delay=60s max_delay=60s;
    }
--- request
GET /authed
--- timeout: 0.5
--- abort
--- ignore_response
--- error_log
client prematurely closed connection
asyncx mock: "auth" ended before its delay, timer deleted
