# asyncx_pipeline_answer: the standard answer (English keys, times in
# milliseconds) and the exercise's, chosen per location.

use lib 't/lib';
use Test::Nginx::Socket;

require './t/pipeline.pl';

use List::Util ();

$ENV{TEST_NGINX_BACKEND_PORT} = ($ENV{TEST_NGINX_PORT} || 1984) + 5;

repeat_each(2);

plan tests => repeat_each() * (3 * blocks() + 5);

no_long_string();

config_preamble(<<"_EOC_");
        location = /svc/user {
            internal;
            asyncx_mock_service name=user delay=50ms echo=off
                                'json={"user_id": 42}';
        }
        location = /svc/price {
            internal;
            asyncx_mock_service name=price delay=20ms echo=off
                                'json={"discount": 10}';
        }
        location = /svc/shipping {
            internal;
            asyncx_mock_service name=shipping delay=30ms echo=off
                                'json={"fee": 3000}';
        }
        location = /svc/slow {
            internal;
            asyncx_mock_service name=slow delay=5s echo=off;
        }
        location = /svc/text {
            internal;
            default_type text/plain;
            return 200 'not json';
        }
        location = /svc/empty {
            internal;
            return 204;
        }
        location = /svc/broken {
            internal;
            default_type application/json;
            return 500 '{"reason": "db down"}';
        }
        location /backend/ {
            internal;
            proxy_pass http://127.0.0.1:$ENV{TEST_NGINX_BACKEND_PORT}/;
        }
_EOC_

run_tests();

__DATA__

=== TEST 1: the standard answer is the default: stages, calls, timing, outcome
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage one user=/svc/user price=/svc/price;
        asyncx_stage two shipping=/svc/shipping;
    }
--- request
POST /p
{"order_id": 1}
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    my $t = $d->{timing};
    pl_shape($d)
    . ($_[0] =~ /^\{"stages":\[\{"name":"one","ms":[\d.]+,"calls":\["user","price"\]\},\{"name":"two",.*\],"calls":\{"user":\{"stage":"one","outcome":"ok","status":200,"ms":[\d.]+,"attempts":1,"result":\{/
       ? "key order ok\n" : "key order wrong\n")
    . pl_within("stage one (calls 50, 20 ms)", $d->{stages}[0]{ms}, 48, 10000)
    . pl_within("total minus stages", $t->{total_ms} - $d->{stages}[0]{ms}
                - $d->{stages}[1]{ms}, -0.02, 10000)
    . pl_within("sum of calls minus their times", $t->{calls_sum_ms}
                - $d->{calls}{user}{ms} - $d->{calls}{price}{ms}
                - $d->{calls}{shipping}{ms}, -0.02, 0.02)
    . pl_within("critical path minus slowest calls", $t->{critical_path_ms}
                - $d->{calls}{user}{ms} - $d->{calls}{shipping}{ms}, -0.02, 0.02)
}
--- response_body
{"calls":{"price":{"attempts":1,"ms":"N","outcome":"ok","result":{"delay_ms":"N","discount":10,"service":"price"},"stage":"one","status":200},"shipping":{"attempts":1,"ms":"N","outcome":"ok","result":{"delay_ms":"N","fee":3000,"service":"shipping"},"stage":"two","status":200},"user":{"attempts":1,"ms":"N","outcome":"ok","result":{"delay_ms":"N","service":"user","user_id":42},"stage":"one","status":200}},"outcome":"ok","stages":[{"calls":["user","price"],"ms":"N","name":"one"},{"calls":["shipping"],"ms":"N","name":"two"}],"timing":{"calls_sum_ms":"N","critical_path_ms":"N","mode":"parallel","total_ms":"N"}}
key order ok
stage one (calls 50, 20 ms) ok
total minus stages ok
sum of calls minus their times ok
critical path minus slowest calls ok
--- no_error_log
[error]



=== TEST 2: failures in the standard answer: required, optional, skipped, not JSON, 204
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage one user=/svc/user text=/svc/text empty=/svc/empty broken=/svc/broken;
        asyncx_stage two shipping=/svc/shipping;
        asyncx_call_optional text '{"default": true}';
    }
--- request
POST /p
--- error_code: 502
--- response_body_filters eval
sub { pl_shape($_[0]) }
--- response_body
{"calls":{"broken":{"attempts":1,"error":"service answered 500","ms":"N","outcome":"status","response":{"reason":"db down"},"stage":"one","status":500},"empty":{"attempts":1,"ms":"N","outcome":"ok","result":null,"stage":"one","status":204},"shipping":{"outcome":"skipped","reason":"required call \"broken\" failed","stage":"two"},"text":{"attempts":1,"error":"answer is not valid JSON","ms":"N","optional":true,"outcome":"invalid_json","result":{"default":true},"stage":"one","status":200},"user":{"attempts":1,"ms":"N","outcome":"ok","result":{"delay_ms":"N","service":"user","user_id":42},"stage":"one","status":200}},"error":"required call \"broken\" failed","outcome":"failed","stages":[{"calls":["user","text","empty","broken"],"ms":"N","name":"one"},{"calls":["shipping"],"ms":null,"name":"two"}],"timing":{"calls_sum_ms":"N","critical_path_ms":"N","mode":"parallel","total_ms":"N"}}
--- error_log
asyncx: required call "broken" failed, later stages skipped (status 502)



=== TEST 3: a timeout in the standard answer
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_timeout 100ms;
        asyncx_stage one user=/svc/user slow=/svc/slow;
        asyncx_call_optional slow;
    }
--- request
POST /p
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    pl_shape($d->{calls}{slow}) . pl_within("slow after", $d->{calls}{slow}{ms}, 95, 5000)
}
--- response_body
{"attempts":1,"error":"no answer within 100 ms","ms":"N","optional":true,"outcome":"timeout","result":null,"stage":"one","status":504}
slow after ok



=== TEST 4: sub-millisecond backends keep their precision (no "0.0초")
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_BACKEND_PORT;
        default_type application/json;
        location = /fast { return 200 '{"fast": true}'; }
    }
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage one a=/backend/fast b=/backend/fast;
    }
--- request
POST /p
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    ($_[0] =~ /"total_ms":\d+\.\d\d[,}]/ ? "two decimals\n" : "$_[0]\n")
    . pl_within("call a", $d->{calls}{a}{ms}, 0.01, 1000)
    . pl_within("total", $d->{timing}{total_ms}, 0.01, 1000)
}
--- response_body
two decimals
call a ok
total ok
--- no_error_log
[error]



=== TEST 5: the answer format per location, inherited from the server level
--- config
    asyncx_pipeline_answer exercise;
    location = /exercise {
        asyncx_pipeline;
        asyncx_stage one user=/svc/user;
    }
    location = /standard {
        asyncx_pipeline;
        asyncx_pipeline_answer standard;
        asyncx_stage one user=/svc/user;
    }
--- request eval
["POST /exercise", "POST /standard"]
--- response_body_filters eval
sub { CORE::join(",", sort keys %{ pl_dec($_[0]) }) . "\n" }
--- response_body eval
["mode,단계별_결과,순차_실행_예상시간,순차_실행_예상시간_ms,최적화_실행_시간,최적화_실행_시간_ms,호출별_소요시간_ms\n",
 "calls,outcome,stages,timing\n"]
--- no_error_log
[error]



=== TEST 6: the standard answer in sequential mode
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_pipeline_mode_arg on;
        asyncx_stage one user=/svc/user price=/svc/price;
    }
--- request
POST /p?mode=sequential
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    my $t = $d->{timing};
    "$t->{mode}\n"
    . pl_within("stage one is at least the sum (50 + 20)", $d->{stages}[0]{ms}
                - $d->{calls}{user}{ms} - $d->{calls}{price}{ms}, -0.02, 10000)
    . pl_within("critical path is the slowest", $t->{critical_path_ms}
                - List::Util::max($d->{calls}{user}{ms},
                                  $d->{calls}{price}{ms}), -0.02, 0.02)
}
--- response_body
sequential
stage one is at least the sum (50 + 20) ok
critical path is the slowest ok
--- no_error_log
[error]



=== TEST 7: Server-Timing: one entry per call that ran, then the total (dur in ms)
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_pipeline_server_timing on;
        asyncx_call_timeout 100ms;
        asyncx_stage one user=/svc/user 가격=/svc/price slow=/svc/slow;
        asyncx_stage two total=/svc/shipping;
        asyncx_call_optional slow;
    }
--- request
POST /p
--- response_headers_like
Server-Timing: user;dur=\d+\.\d\d, call-2;desc="%EA%B0%80%EA%B2%A9";dur=\d+\.\d\d, slow;desc="timeout";dur=\d+\.\d\d, call-4;desc="total";dur=\d+\.\d\d, total;dur=\d+\.\d\d
--- response_body_filters eval
sub { pl_dec($_[0])->{outcome} . "\n" }
--- response_body
ok



=== TEST 8: no Server-Timing header by default; skipped calls have no entry
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage one user=/svc/user;
    }
    location = /q {
        asyncx_pipeline;
        asyncx_pipeline_server_timing on;
        asyncx_stage one broken=/svc/broken;
        asyncx_stage two user=/svc/user;
    }
--- request eval
["POST /p", "POST /q"]
--- error_code eval
[200, 502]
--- raw_response_headers_like eval
["^(?!.*Server-Timing)", "Server-Timing: broken;desc=\"status 500\";dur=\\d+\\.\\d\\d, total;dur=\\d+\\.\\d\\d\r\n"]
--- response_body_filters eval
sub { pl_dec($_[0])->{outcome} . "\n" }
--- response_body eval
["ok\n", "failed\n"]
