# SSE refusals before a stream starts, configuration errors, client abort.

use lib 't/lib';
use Test::Nginx::Socket;
use Asyncx::Hold;
use File::Temp qw(tempdir);

do './t/sse.pl' or die $@ || $!;

repeat_each(2);

plan tests => repeat_each() * (3 * blocks() + 6);

# TEST 6's FIFO (t/hold/), outside the servroot nginx wipes
our $hold = Asyncx::Hold->new(tempdir('asyncx-hold-XXXXXX', TMPDIR => 1,
                                      CLEANUP => 1));

no_long_string();
run_tests();

__DATA__

=== TEST 1: a search without keyword is refused with the shared JSON error
--- main_config
    thread_pool cpu threads=1;
--- config
    asyncx_thread_pools io=cpu cpu=cpu;
    location = /stream/search { asyncx_sse search; }
--- request
GET /stream/search?data_size=10
--- error_code: 400
--- response_body
{"error": "keyword is required", "status": 400}
--- error_log
asyncx: keyword is required (status 400)



=== TEST 2: data_size must be a number within the configured maximum
--- main_config
    thread_pool cpu threads=1;
--- config
    asyncx_thread_pools io=cpu cpu=cpu;
    location = /stream/search {
        asyncx_sse search;
        asyncx_sse_max_data_size 1000;
    }
--- request eval
["GET /stream/search?keyword=a&data_size=abc",
 "GET /stream/search?keyword=a&data_size=1001",
 "GET /stream/search?keyword=a&data_size=0",
 "GET /stream/search?keyword=a&data_size=-5"]
--- error_code eval
[400, 400, 400, 400]
--- response_body eval
[("{\"error\": \"data_size must be an integer between 1 and 1000\", \"status\": 400}\n") x 4]
--- no_error_log
[error]



=== TEST 3: batch_size, fail_at and keyword length are checked
--- main_config
    thread_pool cpu threads=1;
--- config
    asyncx_thread_pools io=cpu cpu=cpu;
    location = /stream/search { asyncx_sse search; }
    location = /stream/transform { asyncx_sse transform; }
--- request eval
["GET /stream/transform?batch_size=0",
 "GET /stream/transform?batch_size=100001",
 "GET /stream/search?keyword=a&data_size=100&fail_at=100",
 "GET /stream/search?keyword=" . ("k" x 65)]
--- error_code eval
[400, 400, 400, 400]
--- response_body eval
["{\"error\": \"batch_size must be an integer between 1 and 100000\", \"status\": 400}\n",
 "{\"error\": \"batch_size must be an integer between 1 and 100000\", \"status\": 400}\n",
 "{\"error\": \"fail_at must be an integer between 1 and data_size - 1\", \"status\": 400}\n",
 "{\"error\": \"keyword is longer than 64 bytes\", \"status\": 400}\n"]
--- no_error_log
[error]



=== TEST 4: a Last-Event-ID that this module did not write is refused
--- main_config
    thread_pool cpu threads=1;
--- config
    asyncx_thread_pools io=cpu cpu=cpu;
    location = /stream/search { asyncx_sse search; }
--- request
GET /stream/search?keyword=python
--- more_headers
Last-Event-ID: abc
--- error_code: 400
--- response_body
{"error": "invalid Last-Event-ID \"abc\"", "status": 400}
--- no_error_log
[error]



=== TEST 5: streams are GET only
--- main_config
    thread_pool cpu threads=1;
--- config
    asyncx_thread_pools io=cpu cpu=cpu;
    location = /stream/search { asyncx_sse search; }
--- request
POST /stream/search?keyword=python
x
--- error_code: 405
--- response_body
{"error": "method not allowed, use GET", "status": 405}
--- no_error_log
[error]



=== TEST 6: client abort while a batch is pending: work stops, info line, clean log
What runs is fixed, whatever the machine's speed: the stream posts its
first batch, the mirror then posts the test helper's task (t/hold/) to
the pool's only thread, so the first batch (100 records, one progress
event) runs, the helper holds the thread, and the second batch waits
behind it.  A child of the test releases the thread only once nginx has
logged the client's departure: the second batch then runs for nobody,
and the stream ends having sent exactly one event and done 100 records.
--- init
$::hold->release_on_log("$ENV{TEST_NGINX_SERVER_ROOT}/logs/error.log",
                        qr/client prematurely closed connection/,
                        repeat_each());
--- main_config
    thread_pool cpu threads=1;
--- config eval
"    asyncx_thread_pools io=cpu cpu=cpu;
    location = /hold {
        internal;
        asyncx_test_hold cpu " . $::hold->path . ";
    }
    location = /stream/search {
        mirror /hold;
        asyncx_sse search;
        asyncx_sse_batch_size 100;
    }"
--- request
GET /stream/search?keyword=python&data_size=10000000
--- timeout: 0.2
--- abort
--- ignore_response
--- error_log eval
[qr/\[info\] .*client prematurely closed connection/,
 qr/\[info\] .*asyncx test hold: released/,
 qr/\[info\] .*asyncx sse: client closed the stream after 1 events, 100 of 10000000 records done, remaining work cancelled/]
--- no_error_log
[error]
[alert]



=== TEST 7: an unknown mode names the value
--- config
    location = /s { asyncx_sse find; }
--- must_die
--- error_log
invalid value "find" in "asyncx_sse", expected "search", "transform" or "aggregate"



=== TEST 8: a batch size of 0 is refused at start-up
--- config
    location = /s { asyncx_sse search; asyncx_sse_batch_size 0; }
--- must_die
--- error_log
invalid value "0" in "asyncx_sse_batch_size", expected 1..100000



=== TEST 9: a batch size above the largest one a request may ask for
--- config
    location = /s { asyncx_sse search; asyncx_sse_batch_size 100001; }
--- must_die
--- error_log
invalid value "100001" in "asyncx_sse_batch_size", expected 1..100000



=== TEST 10: a batch size that overflows any integer
--- config
    asyncx_sse_batch_size 18446744073709551617;
    location = /s { asyncx_sse search; }
--- must_die
--- error_log
invalid value "18446744073709551617" in "asyncx_sse_batch_size", expected 1..100000



=== TEST 11: a maximum data size of 0 is refused
--- config
    location = /s { asyncx_sse search; asyncx_sse_max_data_size 0; }
--- must_die
--- error_log
invalid value "0" in "asyncx_sse_max_data_size", expected 1..1000000000



=== TEST 12: a maximum data size that overflows
--- config
    location = /s {
        asyncx_sse search;
        asyncx_sse_max_data_size 99999999999999999999999;
    }
--- must_die
--- error_log
invalid value "99999999999999999999999" in "asyncx_sse_max_data_size", expected 1..1000000000



=== TEST 13: a heartbeat longer than a day is refused (epoll waits in int ms)
--- config
    location = /s { asyncx_sse search; asyncx_sse_heartbeat 25h; }
--- must_die
--- error_log
invalid value "25h" in "asyncx_sse_heartbeat", expected 0..86400000 ms



=== TEST 14: a heartbeat that overflows
--- config
    asyncx_sse_heartbeat 9999999999999999999999s;
    location = /s { asyncx_sse search; }
--- must_die
--- error_log
invalid value "9999999999999999999999s" in "asyncx_sse_heartbeat", expected 0..86400000 ms



=== TEST 15: a negative heartbeat
--- config
    location = /s { asyncx_sse search; asyncx_sse_heartbeat -1s; }
--- must_die
--- error_log
invalid value "-1s" in "asyncx_sse_heartbeat", expected 0..86400000 ms



=== TEST 16: heartbeat 0 is "off": slow batches, no keepalive comment
The same stream as t/400 TEST 10 (whose 1 ms heartbeat sends pings);
with 0 the stream completes and carries none.  Before, 0 armed a 0 ms
timer that spun the worker and the client got nothing.
--- main_config
    thread_pool cpu threads=1;
--- config
    asyncx_thread_pools io=cpu cpu=cpu;
    location = /stream/search {
        asyncx_sse search;
        asyncx_sse_heartbeat 0;
    }
--- request
GET /stream/search?keyword=zzz&data_size=2000000&batch_size=100000
--- response_body_filters eval
sub { $ENV{SSE_PINGS} = 1; my $s = main::sse_summary($_[0]); delete $ENV{SSE_PINGS}; $s }
--- response_body
framing=ok ids=increasing
complete=1 progress=20
pings=no
last=complete total_matches=0
--- timeout: 10
--- no_error_log
[error]
[alert]



=== TEST 17: a retry of 0 is refused: "retry: 0" would mean reconnect at once, not off
--- config
    location = /s { asyncx_sse search; asyncx_sse_retry 0; }
--- must_die
--- error_log
invalid value "0" in "asyncx_sse_retry", expected 1..86400000 ms



=== TEST 18: asyncx_sse_retry has no "off": leaving it out is off
--- config
    asyncx_sse_retry off;
    location = /s { asyncx_sse search; }
--- must_die
--- error_log
invalid value "off" in "asyncx_sse_retry", expected 1..86400000 ms



=== TEST 19: a retry longer than a day is refused
--- config
    location = /s { asyncx_sse search; asyncx_sse_retry 25h; }
--- must_die
--- error_log
invalid value "25h" in "asyncx_sse_retry", expected 1..86400000 ms



=== TEST 20: a retry that overflows
--- http_config
    asyncx_sse_retry 9999999999999999999999s;
--- config
    location = /s { asyncx_sse search; }
--- must_die
--- error_log
invalid value "9999999999999999999999s" in "asyncx_sse_retry", expected 1..86400000 ms



=== TEST 21: a negative retry
--- config
    location = /s { asyncx_sse search; asyncx_sse_retry -1s; }
--- must_die
--- error_log
invalid value "-1s" in "asyncx_sse_retry", expected 1..86400000 ms



=== TEST 22: asyncx_sse_retry twice on one level
--- config
    location = /s { asyncx_sse search; asyncx_sse_retry 1s; asyncx_sse_retry 2s; }
--- must_die
--- error_log
"asyncx_sse_retry" directive is duplicate
