# asyncx_pipeline: stages of concurrent calls, timing, result passing,
# the exercise's response shape, sequential mode, proxy_pass calls.

use lib 't/lib';
use Test::Nginx::Socket;

require './t/pipeline.pl';

repeat_each(2);

plan tests => repeat_each() * (3 * blocks() + 4);

no_long_string();

# five mock services with short delays: stage 1 takes max(200, 100, 150)
# the demo's answer and argument policy: the exercise's keys, mocks read
# fail= and delay=, ?mode= works
config_preamble(<<'_EOC_');
        asyncx_pipeline_answer exercise;
        asyncx_pipeline_pass_args on;
        asyncx_pipeline_mode_arg on;
        location = /svc/user {
            internal;
            asyncx_mock_service name=사용자 delay=200ms
                                'json={"user_id": 42, "grade": "VIP"}';
        }
        location = /svc/inventory {
            internal;
            asyncx_mock_service name=재고 delay=100ms 'json={"in_stock": true}';
        }
        location = /svc/price {
            internal;
            asyncx_mock_service name=가격 delay=150ms 'json={"price": 10000}';
        }
        location = /svc/shipping {
            internal;
            asyncx_mock_service name=배송 delay=100ms 'json={"fee": 3000}';
        }
        location = /svc/payment {
            internal;
            asyncx_mock_service name=결제 delay=50ms 'json={"approved": true}';
        }
_EOC_

run_tests();

__DATA__

=== TEST 1: three stages: the exercise's shape, stage time = slowest call
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user 재고=/svc/inventory 가격=/svc/price;
        asyncx_stage 2단계 배송=/svc/shipping;
        asyncx_stage 3단계 결제=/svc/payment;
    }
--- request
POST /orders/process
{"order_id": 1001}
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    my $s = $d->{"단계별_결과"};
    my @st = map { $s->{$_}{"소요시간_ms"} } qw(1단계 2단계 3단계);
    my $c = $d->{"호출별_소요시간_ms"};
    my $calls = $c->{"사용자"} + $c->{"재고"} + $c->{"가격"};
    my ($slowest) = sort { $b <=> $a } @$c{qw(사용자 재고 가격)};
    # Lower bounds are exact (a timer never fires early); nothing has an
    # upper bound in wall time, which a busy machine stretches.  That
    # stage 1 runs its calls in parallel shows against the module's own
    # numbers: it lasts its slowest call, less than the two others more.
    pl_shape($d)
    . pl_within("stage 1 (calls 200, 100, 150 ms)", $st[0], 195, 1e9)
    . pl_within("stage 1 lasts its slowest call, not their sum",
                $st[0] - $slowest, 0, $calls - $slowest - 1)
    . pl_within("stage 2", $st[1], 95, 1e9)
    . pl_within("stage 3", $st[2], 45, 1e9)
    . pl_within("total", $d->{"최적화_실행_시간_ms"}, 345, 1e9)
    . pl_within("total minus stages", $d->{"최적화_실행_시간_ms"}
                                   - $st[0] - $st[1] - $st[2], 0, 200)
    # five calls rounded to 0.01 ms each: the sum of the rounded values
    # is off by at most 5 x 0.005 ms (plus binary floating point)
    . pl_within("sequential estimate = the calls' sum",
                $d->{"순차_실행_예상시간_ms"} - $calls - $c->{"배송"}
                - $c->{"결제"}, -0.026, 0.026)
    . pl_within("user call", $c->{"사용자"}, 195, 1e9)
    . pl_within("inventory call", $c->{"재고"}, 95, 1e9)
}
--- response_body
{"mode":"parallel","단계별_결과":{"1단계":{"가격":{"delay_ms":"N","price":10000,"received":{"bytes":89,"call":"가격","method":"POST","results":[],"stage":"1단계"},"service":"가격"},"사용자":{"delay_ms":"N","grade":"VIP","received":{"bytes":92,"call":"사용자","method":"POST","results":[],"stage":"1단계"},"service":"사용자","user_id":42},"소요시간":"S초","소요시간_ms":"N","재고":{"delay_ms":"N","in_stock":true,"received":{"bytes":89,"call":"재고","method":"POST","results":[],"stage":"1단계"},"service":"재고"}},"2단계":{"배송":{"delay_ms":"N","fee":3000,"received":{"bytes":550,"call":"배송","method":"POST","results":["사용자","재고","가격"],"stage":"2단계"},"service":"배송"},"소요시간":"S초","소요시간_ms":"N"},"3단계":{"결제":{"approved":true,"delay_ms":"N","received":{"bytes":723,"call":"결제","method":"POST","results":["사용자","재고","가격","배송"],"stage":"3단계"},"service":"결제"},"소요시간":"S초","소요시간_ms":"N"}},"순차_실행_예상시간":"S초","순차_실행_예상시간_ms":"N","최적화_실행_시간":"S초 (1단계 S초 + 2단계 S초 + 3단계 S초)","최적화_실행_시간_ms":"N","호출별_소요시간_ms":{"가격":"N","결제":"N","배송":"N","사용자":"N","재고":"N"}}
stage 1 (calls 200, 100, 150 ms) ok
stage 1 lasts its slowest call, not their sum ok
stage 2 ok
stage 3 ok
total ok
total minus stages ok
sequential estimate = the calls' sum ok
user call ok
inventory call ok
--- no_error_log
[error]



=== TEST 2: key order follows the exercise: estimates, measured time, stages
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user 재고=/svc/inventory;
        asyncx_stage 2단계 배송=/svc/shipping;
    }
--- request
POST /orders/process
--- response_body_like: ^\{"순차_실행_예상시간":"0\.\d초","순차_실행_예상시간_ms":[\d.]+,"최적화_실행_시간":"0\.\d초 \(1단계 0\.\d초 \+ 2단계 0\.\d초\)","최적화_실행_시간_ms":[\d.]+,"단계별_결과":\{"1단계":\{"사용자":\{"service":"사용자",.*\},"재고":\{"service":"재고",.*\},"소요시간":"0\.\d초","소요시간_ms":[\d.]+\},"2단계":\{"배송":\{"service":"배송",.*\},"소요시간":"0\.\d초","소요시간_ms":[\d.]+\}\},"호출별_소요시간_ms":\{"사용자":[\d.]+,"재고":[\d.]+,"배송":[\d.]+\},"mode":"parallel"\}$
--- no_error_log
[error]



=== TEST 3: a later call receives the client body and every earlier result
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user 재고=/svc/inventory;
        asyncx_stage 2단계 배송=/echo;
    }
    location = /echo {
        internal;
        asyncx_mock_service name=배송 echo=body;
    }
--- request
POST /orders/process
{"order_id": 7, "items": ["책", "펜"]}
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    my $rcv = $d->{"단계별_결과"}{"2단계"}{"배송"}{"received"};
    my $body = $rcv->{body};
    pl_shape($body)
    . "method " . $rcv->{method} . "\n"
    . "a complete JSON document of "
    . ($rcv->{bytes} > 300 && ref $body eq 'HASH' ? "many" : "few") . " bytes\n"
    . "stage 1 answers passed unchanged "
    . ($J->encode($body->{results}{"사용자"})
       eq $J->encode($d->{"단계별_결과"}{"1단계"}{"사용자"}) ? 1 : 0) . "\n"
}
--- response_body
{"call":"배송","failed":[],"request":{"items":["책","펜"],"order_id":7},"results":{"사용자":{"delay_ms":"N","grade":"VIP","received":{"bytes":114,"call":"사용자","method":"POST","results":[],"stage":"1단계"},"service":"사용자","user_id":42},"재고":{"delay_ms":"N","in_stock":true,"received":{"bytes":111,"call":"재고","method":"POST","results":[],"stage":"1단계"},"service":"재고"}},"stage":"2단계"}
method POST
a complete JSON document of many bytes
stage 1 answers passed unchanged 1
--- no_error_log
[error]



=== TEST 4: without a body the document's request is null; GET works
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage only 배송=/echo;
    }
    location = /echo {
        internal;
        asyncx_mock_service name=배송 echo=body;
    }
--- request
GET /orders/process
--- response_body_filters eval
sub { pl_shape(pl_dec($_[0])->{"단계별_결과"}{"only"}{"배송"}{"received"}) }
--- response_body
{"args":"","body":{"call":"배송","failed":[],"request":null,"results":{},"stage":"only"},"bytes":72,"method":"POST"}
--- no_error_log
[error]



=== TEST 5: a body that is not JSON is refused with 400
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user;
    }
--- request
POST /orders/process
{"order_id": 
--- error_code: 400
--- response_body
{"error": "invalid JSON at byte 12", "status": 400}
--- error_log
asyncx: invalid JSON at byte 12 (status 400)
--- no_error_log
asyncx pipeline: start



=== TEST 6: ?mode=sequential really runs the calls one after another
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user 재고=/svc/inventory 가격=/svc/price;
        asyncx_stage 2단계 배송=/svc/shipping;
    }
--- request
POST /orders/process?mode=sequential
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    my $s = $d->{"단계별_결과"};
    my $c = $d->{"호출별_소요시간_ms"};
    CORE::join("", map { "$_\n" } grep { !/단계별_결과/ } sort keys %$d)
    . $d->{"순차_실행_시간"} =~ s/\d+\.\d+/S/gr . "\n"
    . $d->{"최적화_실행_예상시간"} =~ s/\d+\.\d+/S/gr . "\n"
    . pl_within("measured total (200+100+150+100)", $d->{"순차_실행_시간_ms"},
             545, 1e9)
    . pl_within("stage 1 is the sum of its calls", $s->{"1단계"}{"소요시간_ms"}
             - $c->{"사용자"} - $c->{"재고"} - $c->{"가격"}, 0, 200)
    . pl_within("parallel estimate (200+100)", $d->{"최적화_실행_예상시간_ms"},
             295, 1e9)
}
--- response_body
mode
순차_실행_시간
순차_실행_시간_ms
최적화_실행_예상시간
최적화_실행_예상시간_ms
호출별_소요시간_ms
S초 (사용자 S초 + 재고 S초 + 가격 S초 + 배송 S초)
S초 (1단계 S초 + 2단계 S초)
measured total (200+100+150+100) ok
stage 1 is the sum of its calls ok
parallel estimate (200+100) ok
--- no_error_log
[error]



=== TEST 7: an unknown mode is a 400
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user;
    }
--- request
POST /orders/process?mode=fast
--- error_code: 400
--- response_body
{"error": "invalid mode \"fast\", use parallel or sequential", "status": 400}
--- error_log
asyncx: invalid mode "fast"



=== TEST 8: calls through proxy_pass to a real upstream server get a proper POST
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /backend/shipping {
            asyncx_mock_service name=배송 delay=50ms echo=body;
        }
        location = /backend/static {
            default_type application/json;
            return 200 '{"static": true}';
        }
    }
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user 정적=/up/static;
        asyncx_stage 2단계 배송=/up/shipping?via=proxy;
    }
    location /up/ {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/backend/;
    }
--- request
POST /orders/process?x=1
{"order_id": 5}
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    my $rcv = $d->{"단계별_결과"}{"2단계"}{"배송"}{"received"};
    "static: " . $J->encode($d->{"단계별_결과"}{"1단계"}{"정적"}) . "\n"
    . "method: $rcv->{method}\n"
    . "args: $rcv->{args}\n"
    . "results: " . CORE::join(",", sort keys %{$rcv->{body}{results}}) . "\n"
    . "request: " . $J->encode($rcv->{body}{request}) . "\n"
    . "the whole document arrived: "
    . (ref $rcv->{body} eq 'HASH' && $rcv->{bytes} > 200 ? 1 : 0) . "\n"
}
--- response_body
static: {"static":true}
method: POST
args: via=proxy&x=1
results: 사용자,정적
request: {"order_id":5}
the whole document arrived: 1
--- no_error_log
[error]



=== TEST 9: asyncx_pipeline_pass_args off keeps the client's arguments out
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_pipeline_pass_args off;
        asyncx_stage 1단계 a=/echo?fixed=1;
    }
    location = /echo {
        internal;
        asyncx_mock_service echo=body;
    }
--- request
POST /orders/process?fail=*
--- response_body_filters eval
sub { pl_dec($_[0])->{"단계별_결과"}{"1단계"}{"a"}{"received"}{"args"} . "\n" }
--- response_body
fixed=1
--- no_error_log
[error]



=== TEST 10: the status endpoint counts pipelines and calls
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user 재고=/svc/inventory;
    }
    location = /asyncx/status {
        asyncx_status;
    }
--- request eval
["POST /orders/process?delay=10ms", "GET /asyncx/status"]
--- response_body_like eval
[qr/"mode":"parallel"/,
 qr/"pipelines":\{"active":0,"total":[12],"failed":0,"aborted":0,"calls":[24],"call_errors":0,"retries":0,"timed_out":0,"mock":\{"active":0,"total":[24]\}\}/]
--- no_error_log
[error]



=== TEST 11: methods other than GET, HEAD and POST are refused
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user;
    }
--- request
PUT /orders/process
{}
--- error_code: 405
--- response_body
{"error": "method not allowed, use POST or GET", "status": 405}
--- no_error_log
[error]



=== TEST 12: a body that nginx had to buffer to a file is refused with 413
--- config
    location = /orders/process {
        client_body_buffer_size 1k;
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user;
    }
--- request eval
"POST /orders/process\n" . '{"pad": "' . ("x" x 3000) . '"}'
--- error_code: 413
--- response_body
{"error": "request body of 3011 bytes does not fit client_body_buffer_size", "status": 413}
--- no_error_log
asyncx pipeline: start



=== TEST 12c: the cap is client_body_buffer_size however nginx read the body: 1,200 bytes, which nginx keeps in memory (under 1.25 times the buffer, or read along with the header), are refused too
--- config
    location = /orders/process {
        client_body_buffer_size 1k;
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user;
    }
--- request eval
"POST /orders/process\n" . '{"pad": "' . ("x" x 1189) . '"}'
--- error_code: 413
--- response_body
{"error": "request body of 1200 bytes does not fit client_body_buffer_size", "status": 413}
--- no_error_log
asyncx pipeline: start



=== TEST 12c2: ... refused before the body is read: a client that waits for "100 Continue" gets the 413 at once
--- config
    lingering_timeout 100ms;
    location = /orders/process {
        client_body_buffer_size 1k;
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user;
    }
--- raw_request eval
"POST /orders/process HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n"
--- error_code: 413
--- raw_response_headers_unlike: 100 Continue
--- response_body
{"error": "request body of 5000 bytes does not fit client_body_buffer_size", "status": 413}



=== TEST 12c3: ... and so does one refused by its method (405)
--- config
    lingering_timeout 100ms;
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user;
    }
--- raw_request eval
"PUT /orders/process HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
--- error_code: 405
--- raw_response_headers_unlike: 100 Continue
--- response_body
{"error": "method not allowed, use POST or GET", "status": 405}



=== TEST 12d: ... and exactly client_body_buffer_size is accepted
--- config
    location = /orders/process {
        client_body_buffer_size 1k;
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user;
    }
--- request eval
"POST /orders/process\n" . '{"pad": "' . ("x" x 1013) . '"}'
--- error_code: 200
--- no_error_log
[error]



=== TEST 12a: client_body_in_file_only is the server's error, not the body's
--- config
    location = /orders/process {
        client_body_in_file_only on;
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user;
    }
--- request
POST /orders/process
{"a": 1}
--- error_code: 500
--- response_body
{"error": "client_body_in_file_only is on: the pipeline needs the request body in memory", "status": 500}
--- error_log
asyncx: client_body_in_file_only is on: the pipeline needs the request body in memory (status 500)
--- no_error_log
asyncx pipeline: start



=== TEST 12b: a chunked body of 600 bytes, framed as one-byte chunks, overflows the buffer with its framing: the 413 says so
--- config
    location = /orders/process {
        client_body_buffer_size 1k;
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user;
    }
--- raw_request eval
my $doc = '{"pad": "' . ("x" x 589) . '"}';
"POST /orders/process HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
. "Transfer-Encoding: chunked\r\n\r\n"
. join('', map { "1\r\n$_\r\n" } split //, $doc) . "0\r\n\r\n"
--- error_code: 413
--- response_body
{"error": "request body of 600 bytes (chunked, framing included) does not fit client_body_buffer_size", "status": 413}
--- no_error_log
asyncx pipeline: start
