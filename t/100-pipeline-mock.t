# asyncx_mock_service: the slow JSON "external API" of the demos and tests.

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(2);

plan tests => repeat_each() * (3 * blocks() + 12);

no_long_string();
run_tests();

__DATA__

=== TEST 1: defaults: named after the location, answers at once, summary echo
--- config
    location = /svc/user {
        asyncx_mock_service;
    }
--- request
GET /svc/user
--- response_body
{"service":"user","delay_ms":0,"received":{"method":"GET","bytes":0}}
--- no_error_log
[error]



=== TEST 2: name, configured JSON fields and status; a JSON body is summarized
--- config
    location = /api {
        asyncx_mock_service name=가격 status=201
                            'json={"할인율": 10, "tags": ["a", "b"]}';
    }
--- request
POST /api
{"order": 1, "items": [1, 2]}
--- error_code: 201
--- response_body
{"service":"가격","할인율":10,"tags":["a","b"],"delay_ms":0,"received":{"method":"POST","bytes":29,"keys":["order","items"]}}
--- no_error_log
[error]



=== TEST 3: echo=body returns the body and the arguments it received
--- config
    location = /echo {
        asyncx_mock_service echo=body;
    }
--- request
POST /echo?a=1&b=x
{"x": [true, null]}
--- response_body
{"service":"echo","delay_ms":0,"received":{"method":"POST","bytes":19,"args":"a=1&b=x","body":{"x":[true,null]}}}
--- no_error_log
[error]



=== TEST 4: a non-JSON body is echoed as a string, or flagged in the summary
--- config
    location = /echo {
        asyncx_mock_service echo=body;
    }
--- request
POST /echo
plain text
--- response_body
{"service":"echo","delay_ms":0,"received":{"method":"POST","bytes":10,"args":"","body":"plain text"}}
--- no_error_log
[error]



=== TEST 5: the configured delay is kept by a timer (at least 200 ms)
A timer never fires early; how late it fires depends on the machine, so
the upper bound only tells 200 ms from the default of 0 and from 2 s.
--- config
    location = /slow {
        asyncx_mock_service delay=200ms echo=off;
        add_header X-Time $request_time always;
    }
--- request
GET /slow
--- response_headers_like
X-Time: (?:0\.[2-9]\d\d|1\.\d\d\d)
--- response_body
{"service":"slow","delay_ms":200}
--- no_error_log
[error]



=== TEST 6: ?delay= overrides the configured delay
--- config
    location = /slow {
        asyncx_mock_service delay=2s echo=off;
        add_header X-Time $request_time always;
    }
--- request
GET /slow?delay=50ms
--- response_headers_like
X-Time: (?:0\.0[5-9]\d|0\.[1-9]\d\d|1\.\d\d\d)
--- response_body
{"service":"slow","delay_ms":50}
--- no_error_log
[error]



=== TEST 7: an invalid delay is a 400 in the shared error shape
--- config
    location = /slow {
        asyncx_mock_service;
    }
--- request
GET /slow?delay=soon
--- error_code: 400
--- response_body
{"error": "invalid delay \"soon\"", "status": 400}
--- error_log
asyncx: invalid delay "soon" (status 400)
--- no_error_log
http finalize request: -1



=== TEST 7b: a long invalid delay is quoted in part, and the quote is closed (message and log line)
--- config
    location = /slow {
        asyncx_mock_service;
    }
--- request eval
"GET /slow?delay=" . ("9" x 3000) . "s"
--- error_code: 400
--- response_body eval
"{\"error\": \"invalid delay \\\"" . ("9" x 64) . "\\\"\", \"status\": 400}\n"
--- error_log eval
qr/asyncx: invalid delay "9{64}" \(status 400\)/



=== TEST 8: a delay above max_delay is refused
--- config
    location = /slow {
        asyncx_mock_service max_delay=1s;
    }
--- request
GET /slow?delay=2s
--- error_code: 400
--- response_body
{"error": "delay \"2s\" exceeds the maximum of 1000 ms", "status": 400}
--- error_log
asyncx: delay "2s" exceeds the maximum of 1000 ms (status 400)
--- no_error_log
http finalize request: -1



=== TEST 9: fail=<its name> makes it fail with fail_status
--- config
    location = /svc/shipping {
        asyncx_mock_service name=배송 fail_status=503 echo=off;
    }
--- request
GET /svc/shipping?fail=%EB%B0%B0%EC%86%A1
--- error_code: 503
--- response_body
{"service":"배송","error":"simulated failure","status":503,"delay_ms":0}
--- no_error_log
[error]



=== TEST 10: the failure status can come from the request; "*" matches all
--- config
    location = /svc/shipping {
        asyncx_mock_service name=배송 echo=off;
    }
--- request
GET /svc/shipping?fail=x,*&fail_status=429
--- error_code: 429
--- response_body
{"service":"배송","error":"simulated failure","status":429,"delay_ms":0}
--- no_error_log
[error]



=== TEST 11: a fail list without its name leaves it working
--- config
    location = /svc/shipping {
        asyncx_mock_service name=배송 echo=off;
    }
--- request
GET /svc/shipping?fail=%EA%B0%80%EA%B2%A9,%EC%82%AC%EC%9A%A9%EC%9E%90
--- response_body
{"service":"배송","delay_ms":0}
--- no_error_log
[error]



=== TEST 12: fail_mode=text answers 200 with a body that is not JSON
--- config
    location = /svc/price {
        asyncx_mock_service name=가격;
    }
--- request
GET /svc/price?fail=가격&fail_mode=text
--- response_headers
Content-Type: text/plain
--- response_body chomp
simulated non-JSON answer from 가격
--- no_error_log
[error]



=== TEST 13: fail_mode=big answers a JSON body of the requested size
--- config
    location = /svc/price {
        asyncx_mock_service name=p;
    }
--- request
GET /svc/price?fail=p&fail_mode=big&big=5000
--- response_body_filters
length
--- response_body chomp
5001
--- no_error_log
[error]



=== TEST 14: fail_mode=slow adds fail_delay to the delay
--- config
    location = /svc/price {
        asyncx_mock_service name=p delay=50ms echo=off;
        add_header X-Time $request_time always;
    }
--- request
GET /svc/price?fail=p&fail_mode=slow&fail_delay=150ms
--- response_headers_like
X-Time: (?:0\.[2-9]\d\d|1\.\d\d\d)
--- response_body
{"service":"p","delay_ms":200}
--- no_error_log
[error]



=== TEST 15: an unknown fail_mode is a 400
--- config
    location = /svc/price {
        asyncx_mock_service name=p;
    }
--- request
GET /svc/price?fail=p&fail_mode=explode
--- error_code: 400
--- response_body
{"error": "invalid fail_mode \"explode\", use status, slow, text or big", "status": 400}
--- error_log
asyncx: invalid fail_mode "explode"
--- no_error_log
http finalize request: -1



=== TEST 16: a client that leaves during the delay frees the request and its timer
--- config
    location = /slow {
        asyncx_mock_service delay=60s;
    }
--- request
GET /slow
--- timeout: 0.2
--- abort
--- ignore_response
--- wait: 0.2
--- error_log
client prematurely closed connection
asyncx mock: "slow" ended before its delay, timer deleted
--- no_error_log
[error]



=== TEST 17: the status endpoint counts mock requests
--- config
    location = /svc/a {
        asyncx_mock_service;
    }
    location = /asyncx/status {
        asyncx_status;
    }
--- request eval
["GET /svc/a", "GET /asyncx/status"]
--- response_body_like eval
[qr/^\{"service":"a"/, qr/"mock":\{"active":0,"total":[1-9]\d*\}/]
--- no_error_log
[error]



=== TEST 18: invalid JSON in the configuration is refused by nginx -t
--- config
    location = /svc/a {
        asyncx_mock_service 'json={"a": 1';
    }
--- must_die
--- error_log
invalid value "json={"a": 1" in "asyncx_mock_service", expected a JSON object



=== TEST 19: invalid delay, status and parameters are refused by nginx -t
--- config
    location = /svc/a {
        asyncx_mock_service delay=fast;
    }
--- must_die
--- error_log
invalid value "delay=fast" in "asyncx_mock_service", expected 0..2147483647 ms



=== TEST 20: an out-of-range status is refused
--- config
    location = /svc/a {
        asyncx_mock_service fail_status=200;
    }
--- must_die
--- error_log
invalid value "fail_status=200" in "asyncx_mock_service", expected 400..599



=== TEST 20b: a status without a body is refused: the mock always answers JSON (status=205 sent a body)
--- config
    location = /svc/a {
        asyncx_mock_service status=205;
    }
--- must_die
--- error_log
invalid value "status=205" in "asyncx_mock_service", expected 200..599 (not 204, 205, 304) with a body, not nginx's own 444, 494..497, 499



=== TEST 20c: json= may not set the members the mock writes itself (the answer had two "service")
--- config
    location = /svc/a {
        asyncx_mock_service 'json={"service": "x", "a": 1}';
    }
--- must_die
--- error_log
invalid value "json={"service": "x", "a": 1}" in "asyncx_mock_service", the members "service", "delay_ms" and "received" are the mock's own



=== TEST 21: an unknown parameter is refused
--- config
    location = /svc/a {
        asyncx_mock_service speed=3;
    }
--- must_die
--- error_log
invalid parameter "speed=3" in "asyncx_mock_service"



=== TEST 22: max_big: big= above it is a 400, at it the answer has that size
(what one request may make the worker hold until the client reads it)
--- config
    location = /svc/price {
        asyncx_mock_service name=p max_big=4k;
    }
--- request eval
["GET /svc/price?fail=p&fail_mode=big&big=4097",
 "GET /svc/price?fail=p&fail_mode=big&big=4096",
 "GET /svc/price?fail=p&fail_mode=big"]
--- error_code eval
[400, 200, 200]
--- response_body_filters eval
sub { $_[0] =~ /^\{"error"/ ? $_[0] : length($_[0]) . "\n" }
--- response_body eval
[qq({"error": "invalid big, use a byte count from 1 to 4096 (max_big)", "status": 400}\n),
 "4097\n", "4097\n"]
--- no_error_log
[error]



=== TEST 23: without max_big= a request may ask for 1 MiB at most, not 16
--- config
    location = /svc/price {
        asyncx_mock_service name=p;
    }
--- request eval
["GET /svc/price?fail=p&fail_mode=big&big=1048577",
 "GET /svc/price?fail=p&fail_mode=big&big=1048576"]
--- error_code eval
[400, 200]
--- response_body_filters eval
sub { $_[0] =~ /^\{"error"/ ? $_[0] : length($_[0]) . "\n" }
--- response_body eval
[qq({"error": "invalid big, use a byte count from 1 to 1048576 (max_big)", "status": 400}\n),
 "1048577\n"]
--- no_error_log
[error]



=== TEST 24: nginx -t: max_big outside 1..16m is refused, naming the value
--- config
    location = /svc/a {
        asyncx_mock_service max_big=17m;
    }
--- must_die
--- error_log
invalid value "max_big=17m" in "asyncx_mock_service", expected 1..16777216 bytes (16m)



=== TEST 25: a client's body longer than client_body_buffer_size is not read, though here all of it stayed in memory (a part came with the header)
--- config
    client_body_buffer_size 1k;
    location = /svc/a {
        asyncx_mock_service name=a;
    }
--- raw_request eval
"POST /svc/a HTTP/1.0\r\nHost: x\r\nContent-Length: 1500\r\n\r\n"
. '{"stage": "s", "pad": "' . ('x' x 1475) . '"}'
--- response_body
{"service":"a","delay_ms":0,"received":{"method":"POST","bytes":1500}}
--- no_error_log
[error]



=== TEST 26: the same body sent after the header (nginx writes it to a temp file): the same answer
--- config
    client_body_buffer_size 1k;
    location = /svc/a {
        asyncx_mock_service name=a;
    }
--- raw_request eval
["POST /svc/a HTTP/1.0\r\nHost: x\r\nContent-Length: 1500\r\n\r\n",
 '{"stage": "s", "pad": "' . ('x' x 1475) . '"}']
--- raw_request_middle_delay: 0.2
--- response_body
{"service":"a","delay_ms":0,"received":{"method":"POST","bytes":1500}}
--- no_error_log
[error]



=== TEST 27: a body of client_body_buffer_size sent after the header is read
--- config
    client_body_buffer_size 1k;
    location = /svc/a {
        asyncx_mock_service name=a;
    }
--- raw_request eval
["POST /svc/a HTTP/1.0\r\nHost: x\r\nContent-Length: 1024\r\n\r\n",
 '{"stage": "s", "pad": "' . ('x' x 999) . '"}']
--- raw_request_middle_delay: 0.2
--- response_body
{"service":"a","delay_ms":0,"received":{"method":"POST","bytes":1024,"stage":"s","keys":["stage","pad"]}}
--- no_error_log
[error]



=== TEST 28: ... and with echo=body, sent with the header
--- config
    client_body_buffer_size 1k;
    location = /svc/b {
        asyncx_mock_service name=b echo=body;
    }
--- raw_request eval
"POST /svc/b HTTP/1.0\r\nHost: x\r\nContent-Length: 1024\r\n\r\n"
. '{"stage": "s", "pad": "' . ('x' x 999) . '"}'
--- response_body eval
qq({"service":"b","delay_ms":0,"received":{"method":"POST","bytes":1024,"args":"","body":{"stage":"s","pad":")
. ('x' x 999) . qq("}}}\n)
--- no_error_log
[error]



=== TEST 29: a chunked body is not read, even one that fits client_body_buffer_size (nginx keeps it in memory or not depending on its chunks and their arrival)
--- config
    location = /svc/a {
        asyncx_mock_service name=a;
    }
--- raw_request eval
"POST /svc/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
. "Transfer-Encoding: chunked\r\n\r\n"
. "e\r\n{\"a\":1,\"bb\":2}\r\n0\r\n\r\n"
--- response_body
{"service":"a","delay_ms":0,"received":{"method":"POST","bytes":14}}
--- no_error_log
[error]
