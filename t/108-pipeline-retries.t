# Retries of idempotent calls (asyncx_call_idempotent) and the deadline
# of the whole pipeline (asyncx_pipeline_timeout), with real upstream
# servers: an upstream of two backend ports, round robin, where the
# first answers 503 (or never) and the second 200, so a retried call
# meets one failure and then a success.

use lib 't/lib';
use Test::Nginx::Socket;

require './t/pipeline.pl';

# two backend ports: TEST_NGINX_PORT + 8 and + 9
$ENV{TEST_NGINX_FLAKY_PORT} = ($ENV{TEST_NGINX_PORT} || 1984) + 8;
$ENV{TEST_NGINX_GOOD_PORT} = ($ENV{TEST_NGINX_PORT} || 1984) + 9;

repeat_each(2);

plan tests => repeat_each() * (3 * blocks() - 5);

no_long_string();

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", <<'_EOC_' . ($block->http_config // ''));
    upstream flaky {
        server 127.0.0.1:$TEST_NGINX_FLAKY_PORT;
        server 127.0.0.1:$TEST_NGINX_GOOD_PORT;
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_FLAKY_PORT;
        listen 127.0.0.1:$TEST_NGINX_GOOD_PORT;
        default_type application/json;

        location = /flaky {
            if ($server_port = $TEST_NGINX_FLAKY_PORT) {
                return 503 '{"busy": true}';
            }
            return 200 '{"port": "good"}';
        }

        location = /stuck {
            if ($server_port = $TEST_NGINX_FLAKY_PORT) {
                rewrite ^ /never last;
            }
            return 200 '{"port": "good"}';
        }

        location = /never {
            internal;
            asyncx_mock_service name=never delay=30s echo=off;
        }

        location = /down { return 503 '{"busy": true}'; }
        location = /missing { return 404 '{"no": "such"}'; }
        location = /ok { return 200 '{"ok": true}'; }
        location = /slow {
            asyncx_mock_service name=slow delay=30s echo=off;
        }
    }
_EOC_
});

config_preamble(<<"_EOC_");
        location /up/ {
            internal;
            proxy_next_upstream off;
            proxy_read_timeout 60s;
            proxy_pass http://flaky/;
        }
        location /one/ {
            internal;
            proxy_read_timeout 60s;
            proxy_pass http://127.0.0.1:$ENV{TEST_NGINX_GOOD_PORT}/;
        }
        location = /asyncx/status { asyncx_status; }
_EOC_

run_tests();

__DATA__

=== TEST 1: an idempotent call answered 503 is tried again; both attempts are in the answer
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_idempotent a retries=2;
        asyncx_stage s a=/up/flaky;
    }
--- request
POST /p
--- response_body_filters eval
sub { pl_shape(pl_dec($_[0])->{calls}{a}) }
--- response_body
{"attempts":2,"ms":"N","outcome":"ok","result":{"port":"good"},"stage":"s","status":200,"tries":[{"ms":"N","outcome":"status","status":503},{"ms":"N","outcome":"ok","status":200}]}
--- error_log
asyncx pipeline: call "a" attempt 1 of 3 failed (status, status 503), retrying



=== TEST 2: a call not marked idempotent is not tried again
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s a=/one/down;
    }
--- request
POST /p
--- error_code: 502
--- response_body_filters eval
sub { pl_shape(pl_dec($_[0])->{calls}{a}) }
--- response_body
{"attempts":1,"error":"service answered 503","ms":"N","outcome":"status","response":{"busy":true},"stage":"s","status":503}
--- no_error_log
retrying



=== TEST 3: a 4xx is not retried
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_idempotent a retries=3;
        asyncx_stage s a=/one/missing;
    }
--- request
POST /p
--- error_code: 502
--- response_body_filters eval
sub { my $a = pl_dec($_[0])->{calls}{a}; "$a->{attempts} $a->{status} $a->{error}\n" }
--- response_body
1 404 service answered 404
--- no_error_log
retrying



=== TEST 4: an attempt that times out is abandoned and the call tried again
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_timeout 5s;
        asyncx_call_idempotent a retries=1 attempt_timeout=100ms;
        asyncx_stage s a=/up/stuck;
    }
--- request
POST /p
--- response_body_filters eval
sub {
    my $a = pl_dec($_[0])->{calls}{a};
    pl_shape($a) . pl_within("first attempt", $a->{tries}[0]{ms}, 95, 1000)
}
--- response_body
{"attempts":2,"ms":"N","outcome":"ok","result":{"port":"good"},"stage":"s","status":200,"tries":[{"ms":"N","outcome":"timeout","status":504},{"ms":"N","outcome":"ok","status":200}]}
first attempt ok
--- error_log
asyncx pipeline: call "a" attempt 1 of 2 failed (timeout, status 504), retrying
asyncx pipeline: 1 abandoned call still running, ended with the request



=== TEST 5: retries end when the attempts are used up
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_idempotent a retries=2;
        asyncx_stage s a=/one/down;
    }
--- request
POST /p
--- error_code: 502
--- response_body_filters eval
sub { pl_shape(pl_dec($_[0])->{calls}{a}) }
--- response_body
{"attempts":3,"error":"service answered 503 after 3 attempts","ms":"N","outcome":"status","response":{"busy":true},"stage":"s","status":503,"tries":[{"ms":"N","outcome":"status","status":503},{"ms":"N","outcome":"status","status":503},{"ms":"N","outcome":"status","status":503}]}
--- error_log
asyncx pipeline: call "a" failed: service answered 503 after 3 attempts (status)



=== TEST 6: retries stay inside the call's own deadline (asyncx_call_timeout)
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_timeout 250ms;
        asyncx_call_idempotent a retries=10 attempt_timeout=100ms;
        asyncx_stage s a=/one/slow;
        asyncx_call_optional a;
    }
--- request
POST /p
--- response_body_filters eval
sub {
    my $a = pl_dec($_[0])->{calls}{a};
    my $n = scalar @{ $a->{tries} };
    # 100 ms attempts in a 250 ms deadline: three on time, but how many
    # start depends on how fast the worker turns (two under valgrind);
    # what may not happen is an attempt after the deadline
    "$a->{outcome} " . ($a->{attempts} == $n ? "counted" : "miscounted") . "\n"
    . ($n >= 1 && $n <= 4 ? "1 to 4 attempts\n" : "$n attempts\n")
    . pl_within("the call, all attempts", $a->{ms}, 245, 1000)
}
--- response_body
timeout counted
1 to 4 attempts
the call, all attempts ok



=== TEST 7: asyncx_pipeline_timeout: the call in flight is abandoned, later ones skipped, 504
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_pipeline_timeout 1s;
        asyncx_call_timeout 10s;
        asyncx_stage one a=/one/ok;
        asyncx_stage two b=/one/slow c=/one/ok;
        asyncx_stage three d=/one/ok;
    }
--- request
POST /p
--- error_code: 504
--- response_headers
Connection: close
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    pl_shape($d) . pl_within("total", $d->{timing}{total_ms}, 999, 10000)
}
--- response_body
{"calls":{"a":{"attempts":1,"ms":"N","outcome":"ok","result":{"ok":true},"stage":"one","status":200},"b":{"attempts":1,"error":"abandoned at the pipeline timeout (1000 ms)","ms":"N","outcome":"abandoned","stage":"two","status":504},"c":{"attempts":1,"ms":"N","outcome":"ok","result":{"ok":true},"stage":"two","status":200},"d":{"outcome":"skipped","reason":"pipeline timeout of 1000 ms reached","stage":"three"}},"error":"pipeline timeout of 1000 ms reached","outcome":"timeout","stages":[{"calls":["a"],"ms":"N","name":"one"},{"calls":["b","c"],"ms":"N","name":"two"},{"calls":["d"],"ms":null,"name":"three"}],"timing":{"calls_sum_ms":"N","critical_path_ms":"N","mode":"parallel","total_ms":"N"}}
total ok
--- error_log
asyncx pipeline: timeout of 1000 ms in stage 2 of 3, 1 call abandoned



=== TEST 8: the pipeline timeout in the exercise's answer
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_pipeline_answer exercise;
        asyncx_pipeline_timeout 200ms;
        asyncx_stage one a=/one/ok b=/one/slow;
        asyncx_stage two c=/one/ok;
        asyncx_call_optional b;
    }
--- request
POST /p
--- error_code: 504
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    $J->encode([ @$d{qw(abandoned_calls skipped_calls error status)},
                 exists $d->{failed_calls} ? "failed_calls" : "none",
                 exists $d->{warnings} ? "warnings" : "none",
                 $d->{"단계별_결과"}{"1단계"} ? 1 : 0 ]) . "\n"
    . pl_shape($d->{"단계별_결과"}{"one"}{"b"})
    . pl_shape($d->{"단계별_결과"}{"two"})
}
--- response_body
[["b"],["c"],"pipeline timeout of 200 ms reached",504,"none","none",0]
{"elapsed_ms":"N","error":"abandoned at the pipeline timeout (200 ms)","fallback":null,"kind":"abandoned","optional":true,"status":504}
{"c":{"reason":"pipeline timeout of 200 ms reached","skipped":true},"소요시간":"S초","소요시간_ms":"N"}



=== TEST 9: the status endpoint counts retries and pipelines that timed out
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_idempotent a;
        asyncx_stage s a=/up/flaky;
    }
    location = /t {
        asyncx_pipeline;
        asyncx_pipeline_timeout 50ms;
        asyncx_stage s a=/one/slow;
    }
--- request eval
["POST /p", "POST /t", "GET /asyncx/status"]
--- error_code eval
[200, 504, 200]
--- response_body_like eval
[qr/"attempts":2/, qr/"outcome":"timeout"/,
 qr/"retries":[12],"timed_out":[12],/]



=== TEST 10: asyncx_call_idempotent: retries out of range
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_idempotent a retries=0;
        asyncx_stage s a=/one/ok;
    }
--- must_die
--- error_log
invalid "retries=0" of call "a" in "asyncx_call_idempotent", use 1..10



=== TEST 10b: asyncx_call_idempotent: a parameter given twice is refused
(the last one counted; found by the thirteenth session's hostile review)
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_idempotent a retries=1 retries=10;
        asyncx_stage s a=/one/ok;
    }
--- must_die
--- error_log
duplicate parameter "retries=10" of call "a" in "asyncx_call_idempotent"



=== TEST 11: asyncx_call_idempotent: an unknown call, a bad time, an unknown parameter
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_idempotent b;
        asyncx_stage s a=/one/ok;
    }
--- must_die
--- error_log
"asyncx_call_idempotent" names unknown call "b"



=== TEST 12: asyncx_call_idempotent: a bad attempt_timeout
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_idempotent a attempt_timeout=soon;
        asyncx_stage s a=/one/ok;
    }
--- must_die
--- error_log
invalid "attempt_timeout=soon" of call "a" in "asyncx_call_idempotent", expected 0 (off) or 1..2147483647 ms



=== TEST 13: asyncx_pipeline_timeout 0 is off; attempt_timeout=0 leaves the call's deadline alone
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_pipeline_timeout 0;
        asyncx_call_idempotent a retries=1 attempt_timeout=0;
        asyncx_stage s a=/up/flaky;
    }
--- request
POST /p
--- response_body_filters eval
sub { my $d = pl_dec($_[0]); "$d->{outcome} $d->{calls}{a}{attempts}\n" }
--- response_body
ok 2



=== TEST 14: log_format variables, an ok pipeline with a retried call
--- http_config
    log_format pipeline 'PIPELINE $request_uri outcome=$asyncx_pipeline_outcome time=$asyncx_pipeline_time failed=$asyncx_pipeline_failed_calls retried=$asyncx_pipeline_retried_calls';
--- config
    access_log logs/error.log pipeline;
    location = /ok {
        asyncx_pipeline;
        asyncx_call_idempotent a;
        asyncx_stage s a=/up/flaky b=/one/ok;
    }
    location = /failed {
        asyncx_pipeline;
        asyncx_stage s a=/one/down b=/one/missing c=/one/ok;
        asyncx_call_optional b;
    }
    location = /timeout {
        asyncx_pipeline;
        asyncx_pipeline_timeout 50ms;
        asyncx_stage s a=/one/slow;
    }
    location = /plain {
        return 200 '{}';
    }
--- request
POST /ok
--- error_code: 200
--- response_body_like: "outcome":"ok"
--- error_log eval
qr/PIPELINE \/ok outcome=ok time=0\.\d\d\d failed=0 retried=1/



=== TEST 15: log_format variables, a failed pipeline (a required and an optional call failed)
--- http_config
    log_format pipeline 'PIPELINE $request_uri outcome=$asyncx_pipeline_outcome time=$asyncx_pipeline_time failed=$asyncx_pipeline_failed_calls retried=$asyncx_pipeline_retried_calls';
--- config
    access_log logs/error.log pipeline;
    location = /ok {
        asyncx_pipeline;
        asyncx_call_idempotent a;
        asyncx_stage s a=/up/flaky b=/one/ok;
    }
    location = /failed {
        asyncx_pipeline;
        asyncx_stage s a=/one/down b=/one/missing c=/one/ok;
        asyncx_call_optional b;
    }
    location = /timeout {
        asyncx_pipeline;
        asyncx_pipeline_timeout 50ms;
        asyncx_stage s a=/one/slow;
    }
    location = /plain {
        return 200 '{}';
    }
--- request
POST /failed
--- error_code: 502
--- response_body_like: "outcome":"failed"
--- error_log eval
qr/PIPELINE \/failed outcome=failed time=0\.\d\d\d failed=2 retried=0/



=== TEST 16: log_format variables, a pipeline that reached its timeout
--- http_config
    log_format pipeline 'PIPELINE $request_uri outcome=$asyncx_pipeline_outcome time=$asyncx_pipeline_time failed=$asyncx_pipeline_failed_calls retried=$asyncx_pipeline_retried_calls';
--- config
    access_log logs/error.log pipeline;
    location = /ok {
        asyncx_pipeline;
        asyncx_call_idempotent a;
        asyncx_stage s a=/up/flaky b=/one/ok;
    }
    location = /failed {
        asyncx_pipeline;
        asyncx_stage s a=/one/down b=/one/missing c=/one/ok;
        asyncx_call_optional b;
    }
    location = /timeout {
        asyncx_pipeline;
        asyncx_pipeline_timeout 50ms;
        asyncx_stage s a=/one/slow;
    }
    location = /plain {
        return 200 '{}';
    }
--- request
POST /timeout
--- error_code: 504
--- response_body_like: "outcome":"timeout"
--- error_log eval
qr/PIPELINE \/timeout outcome=timeout time=(0\.0[5-9]\d|0\.[1-9]\d\d|[1-9]\d*\.\d\d\d) failed=1 retried=0/



=== TEST 17: log_format variables, not a pipeline: not found
--- http_config
    log_format pipeline 'PIPELINE $request_uri outcome=$asyncx_pipeline_outcome time=$asyncx_pipeline_time failed=$asyncx_pipeline_failed_calls retried=$asyncx_pipeline_retried_calls';
--- config
    access_log logs/error.log pipeline;
    location = /ok {
        asyncx_pipeline;
        asyncx_call_idempotent a;
        asyncx_stage s a=/up/flaky b=/one/ok;
    }
    location = /failed {
        asyncx_pipeline;
        asyncx_stage s a=/one/down b=/one/missing c=/one/ok;
        asyncx_call_optional b;
    }
    location = /timeout {
        asyncx_pipeline;
        asyncx_pipeline_timeout 50ms;
        asyncx_stage s a=/one/slow;
    }
    location = /plain {
        return 200 '{}';
    }
--- request
POST /plain
--- error_code: 200
--- response_body_like: \{\}
--- error_log eval
qr/PIPELINE \/plain outcome=- time=- failed=- retried=-/



=== TEST 18: a client that leaves: outcome "aborted"
--- http_config
    log_format pipeline 'PIPELINE $request_uri outcome=$asyncx_pipeline_outcome failed=$asyncx_pipeline_failed_calls';
--- config
    access_log logs/error.log pipeline;
    location = /p {
        asyncx_pipeline;
        asyncx_stage s a=/one/slow;
    }
--- request
POST /p
--- timeout: 0.2
--- abort
--- ignore_response
--- wait: 0.1
--- error_log
PIPELINE /p outcome=aborted failed=0



=== TEST 19: retries in the exercise's answer: the attempts of every retried call
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_pipeline_answer exercise;
        asyncx_call_idempotent a retries=1;
        asyncx_call_idempotent b retries=1;
        asyncx_stage s a=/up/flaky b=/one/down;
        asyncx_call_optional b;
    }
--- request
POST /p
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    pl_shape($d->{retries}) . pl_shape($d->{"단계별_결과"}{s}{b})
}
--- response_body
{"a":[{"ms":"N","outcome":"status","status":503},{"ms":"N","outcome":"ok","status":200}],"b":[{"ms":"N","outcome":"status","status":503},{"ms":"N","outcome":"status","status":503}]}
{"attempts":[{"ms":"N","outcome":"status","status":503},{"ms":"N","outcome":"status","status":503}],"elapsed_ms":"N","error":"service answered 503 after 2 attempts","fallback":null,"kind":"status","optional":true,"response":{"busy":true},"status":503}
