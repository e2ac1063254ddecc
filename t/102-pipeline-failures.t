# asyncx_pipeline failure handling: non-2xx, timeout, non-JSON, capture
# overflow, required vs optional calls, skipped stages, error status.

use lib 't/lib';
use Test::Nginx::Socket;

require './t/pipeline.pl';

repeat_each(2);

plan tests => repeat_each() * (4 * blocks() - 8);

no_long_string();

# the demo's answer and argument policy: the exercise's keys, mocks read
# fail= and delay=, ?mode= works
config_preamble(<<'_EOC_');
        asyncx_pipeline_answer exercise;
        asyncx_pipeline_pass_args on;
        asyncx_pipeline_mode_arg on;
        location = /svc/user {
            internal;
            asyncx_mock_service name=사용자 delay=50ms echo=off
                                'json={"user_id": 42}';
        }
        location = /svc/price {
            internal;
            asyncx_mock_service name=가격 delay=30ms echo=off
                                'json={"discount": 10}';
        }
        location = /svc/shipping {
            internal;
            asyncx_mock_service name=배송 delay=30ms echo=off
                                'json={"fee": 3000}';
        }
        location = /svc/payment {
            internal;
            asyncx_mock_service name=결제 delay=10ms echo=off;
        }
        location = /echo {
            internal;
            asyncx_mock_service name=echo echo=body;
        }
_EOC_

run_tests();

__DATA__

=== TEST 1: a required call answering 500: 502, failed and skipped calls listed
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user 가격=/svc/price;
        asyncx_stage 2단계 배송=/svc/shipping;
        asyncx_stage 3단계 결제=/svc/payment;
    }
--- request
POST /orders/process?fail=%EB%B0%B0%EC%86%A1
--- error_code: 502
--- response_body_filters eval
sub { pl_shape($_[0]) }
--- response_body
{"error":"required call \"배송\" failed","failed_calls":["배송"],"mode":"parallel","skipped_calls":["결제"],"status":502,"단계별_결과":{"1단계":{"가격":{"delay_ms":"N","discount":10,"service":"가격"},"사용자":{"delay_ms":"N","service":"사용자","user_id":42},"소요시간":"S초","소요시간_ms":"N"},"2단계":{"배송":{"elapsed_ms":"N","error":"service answered 500","kind":"status","response":{"delay_ms":"N","error":"simulated failure","service":"배송","status":500},"status":500},"소요시간":"S초","소요시간_ms":"N"},"3단계":{"결제":{"reason":"required call \"배송\" failed","skipped":true},"소요시간":"S초","소요시간_ms":"N"}},"순차_실행_예상시간":"S초","순차_실행_예상시간_ms":"N","최적화_실행_시간":"S초 (1단계 S초 + 2단계 S초)","최적화_실행_시간_ms":"N","호출별_소요시간_ms":{"가격":"N","배송":"N","사용자":"N"}}
--- error_log
asyncx pipeline: call "배송" failed: service answered 500 (status)
asyncx: required call "배송" failed, later stages skipped (status 502)



=== TEST 2: an optional call fails: its fallback goes on, a warning, 200
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user 가격=/svc/price;
        asyncx_stage 2단계 배송=/echo;
        asyncx_call_optional 가격 '{"discount": 0, "정가": true}';
    }
--- request
POST /orders/process?fail=가격&fail_status=503
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    my $b = $d->{"단계별_결과"}{"2단계"}{"배송"}{"received"}{"body"};
    pl_shape($d->{"단계별_결과"}{"1단계"}{"가격"})
    . $J->encode($d->{warnings}) . "\n"
    . $J->encode($d->{failed_calls}) . "\n"
    . "error: " . (exists $d->{error} ? "yes" : "no") . "\n"
    . "stage 2 got the fallback: " . $J->encode($b->{results}{"가격"}) . "\n"
    . "stage 2 was told: " . $J->encode($b->{failed}) . "\n"
}
--- response_body
{"elapsed_ms":"N","error":"service answered 503","fallback":{"discount":0,"정가":true},"kind":"status","optional":true,"response":{"delay_ms":"N","error":"simulated failure","service":"가격","status":503},"status":503}
["optional call \"가격\" failed (status), its fallback was used"]
["가격"]
error: no
stage 2 got the fallback: {"discount":0,"정가":true}
stage 2 was told: ["가격"]
--- error_log
asyncx pipeline: call "가격" failed: service answered 503 (status), fallback used



=== TEST 3: a call that does not answer in time: timeout, the rest is not held up
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_call_timeout 150ms;
        asyncx_stage 1단계 사용자=/svc/user 가격=/svc/price;
        asyncx_stage 2단계 배송=/svc/shipping;
    }
--- request
POST /orders/process?fail=사용자&fail_mode=slow&fail_delay=1s
--- error_code: 502
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    my $u = $d->{"단계별_결과"}{"1단계"}{"사용자"};
    pl_shape($u)
    . $J->encode($d->{"단계별_결과"}{"1단계"}{"가격"}) . "\n"
    . pl_within("timed out after", $u->{elapsed_ms}, 130, 999)
    . pl_within("stage 1", $d->{"단계별_결과"}{"1단계"}{"소요시간_ms"}, 130, 999)
}
--- response_body
{"elapsed_ms":"N","error":"no answer within 150 ms","kind":"timeout","status":504}
{"delay_ms":30,"discount":10,"service":"가격"}
timed out after ok
stage 1 ok
--- error_log
asyncx pipeline: call "사용자" failed: no answer within 150 ms (timeout)



=== TEST 4: a 2xx answer that is not JSON
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user 가격=/svc/price;
        asyncx_call_optional 가격;
    }
--- request
POST /orders/process?fail=가격&fail_mode=text
--- response_body_filters eval
sub { pl_shape(pl_dec($_[0])->{"단계별_결과"}{"1단계"}{"가격"}) }
--- response_body
{"elapsed_ms":"N","error":"answer is not valid JSON","fallback":null,"kind":"invalid_json","optional":true,"status":200}
--- error_log
asyncx pipeline: call "가격" failed: answer is not valid JSON (invalid_json), fallback used



=== TEST 5: an answer larger than the capture buffer; the client connection survives
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user 가격=/big;
        asyncx_call_optional 가격 0;
    }
    location = /big {
        internal;
        subrequest_output_buffer_size 1k;
        asyncx_mock_service name=가격;
    }
--- request
POST /orders/process?fail=가격&fail_mode=big&big=5000
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    pl_shape($d->{"단계별_결과"}{"1단계"}{"가격"})
    . $J->encode($d->{"단계별_결과"}{"1단계"}{"사용자"}) . "\n"
}
--- response_body
{"elapsed_ms":"N","error":"answer larger than the capture buffer (subrequest_output_buffer_size)","fallback":0,"kind":"too_large","optional":true,"status":200}
{"delay_ms":50,"service":"사용자","user_id":42}
--- error_log
too big subrequest response: 5001
asyncx pipeline: call "가격" failed: answer larger than the capture buffer



=== TEST 6: an oversized answer through proxy_pass
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /big {
            asyncx_mock_service name=big;
        }
    }
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user big=/up;
    }
    location = /up {
        internal;
        subrequest_output_buffer_size 2k;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/big;
    }
--- request
POST /orders/process?fail=big&fail_mode=big&big=50000
--- error_code: 502
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    pl_shape($d->{"단계별_결과"}{"1단계"}{"big"}) . $d->{error} . "\n"
}
--- response_body
{"elapsed_ms":"N","error":"answer larger than the capture buffer (subrequest_output_buffer_size)","kind":"too_large","status":200}
required call "big" failed
--- error_log
too big subrequest response
asyncx pipeline: call "big" failed: answer larger than the capture buffer



=== TEST 7: a call to a location that does not exist: nginx's own 404
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user 없음=/nowhere;
    }
--- request
POST /orders/process
--- error_code: 502
--- response_body_filters eval
sub { pl_shape(pl_dec($_[0])->{"단계별_결과"}{"1단계"}{"없음"}) }
--- response_body
{"elapsed_ms":"N","error":"service answered 404","kind":"status","status":404}
--- error_log
asyncx pipeline: call "없음" failed: service answered 404 (status)



=== TEST 8: asyncx_pipeline_error_status sets the failure status
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_pipeline_error_status 424;
        asyncx_stage 1단계 사용자=/svc/user;
    }
--- request
POST /orders/process?fail=*
--- error_code: 424
--- response_body_filters eval
sub { my $d = pl_dec($_[0]); "$d->{status} $d->{error}\n" }
--- response_body
424 required call "사용자" failed
--- error_log
(status 424)



=== TEST 9: several failures in one stage: all recorded, the first named
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user 가격=/svc/price 배송=/svc/shipping;
        asyncx_stage 2단계 결제=/svc/payment;
        asyncx_call_optional 배송;
    }
--- request
POST /orders/process?fail=사용자,가격,배송
--- error_code: 502
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    $J->encode([ @$d{qw(failed_calls skipped_calls warnings error)} ]) . "\n"
}
--- response_body
[["사용자","가격","배송"],["결제"],["optional call \"배송\" failed (status), its fallback was used"],"required call \"사용자\" failed"]
--- error_log
asyncx: required call "사용자" failed



=== TEST 10: sequential mode: the failing stage finishes, later stages skipped
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user 가격=/svc/price;
        asyncx_stage 2단계 배송=/svc/shipping;
    }
--- request
POST /orders/process?mode=sequential&fail=사용자
--- error_code: 502
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    $J->encode([ $d->{failed_calls}, $d->{skipped_calls},
                 $d->{"단계별_결과"}{"1단계"}{"가격"}{"service"},
                 $d->{"순차_실행_시간"} =~ s/\d+\.\d+/S/gr ]) . "\n"
}
--- response_body
[["사용자"],["배송"],"가격","S초 (사용자 S초 + 가격 S초)"]
--- error_log
asyncx: required call "사용자" failed



=== TEST 11: a timed-out call's late answer is ignored, nothing breaks
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_call_timeout 50ms;
        asyncx_stage 1단계 사용자=/svc/user;
        asyncx_stage 2단계 가격=/svc/price?delay=45ms;
        asyncx_stage 3단계 배송=/svc/shipping?delay=45ms;
        asyncx_stage 4단계 결제=/svc/payment?delay=45ms;
        asyncx_call_optional 사용자;
        asyncx_call_optional 가격;
        asyncx_call_optional 배송;
        asyncx_call_optional 결제;
    }
--- request
POST /orders/process?fail=사용자&fail_mode=slow&fail_delay=100ms
--- response_body_like: "사용자":\{"error":"no answer within 50 ms","kind":"timeout"
--- error_log
asyncx pipeline: late answer of "사용자" ignored
--- no_error_log
[alert]



=== TEST 12: a call answering 400 (the mock refusing delay=abc) is a status failure
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user;
    }
--- request
POST /orders/process?delay=abc
--- error_code: 502
--- response_body_filters eval
sub { pl_shape(pl_dec($_[0])->{"단계별_결과"}{"1단계"}{"사용자"}) }
--- response_body
{"elapsed_ms":"N","error":"service answered 400","kind":"status","response":{"error":"invalid delay \"abc\"","status":400},"status":400}
--- error_log
asyncx: invalid delay "abc" (status 400)



=== TEST 13: an upstream that is down: nginx's 502 for the call is an error (no answer), not a status, the order goes on
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user 추천=/down;
        asyncx_call_optional 추천 [];
    }
    location = /down {
        internal;
        proxy_connect_timeout 1s;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/none;
    }
--- request
POST /orders/process
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    pl_shape($d->{"단계별_결과"}{"1단계"}{"추천"})
    . $J->encode($d->{warnings}) . "\n"
}
--- response_body
{"elapsed_ms":"N","error":"no answer from the backend","fallback":[],"kind":"error","optional":true,"status":502}
["optional call \"추천\" failed (error), its fallback was used"]
--- error_log
connect() failed (111: Connection refused)
asyncx pipeline: call "추천" failed: no answer from the backend (error), fallback used
