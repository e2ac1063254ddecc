# asyncx_pipeline: a client that disconnects mid-pipeline releases the
# calls in flight (mock timers, upstream connections, call timers) and
# leaves a clean error log.
#
# Where the abort lands does not depend on the machine's speed: a call
# meant to be in flight has a 60 s delay (the client leaves after 0.5 s
# of silence), and one meant to be done answers at once (delay 0: its
# stage ends in the same event as the request is read, so nginx cannot
# see the client leave before the next stage starts).

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(2);

plan tests => repeat_each() * (5 * blocks() + 2);

no_long_string();

config_preamble(<<'_EOC_');
        location = /svc/user {
            internal;
            asyncx_mock_service name=사용자 delay=60s;
        }
        location = /svc/inventory {
            internal;
            asyncx_mock_service name=재고 delay=60s;
        }
        location = /svc/inventory-now {
            internal;
            asyncx_mock_service name=재고;
        }
        location = /svc/shipping {
            internal;
            asyncx_mock_service name=배송 delay=60s;
        }
_EOC_

run_tests();

__DATA__

=== TEST 1: abort during stage 1: both mock timers and both call timers go
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 사용자=/svc/user 재고=/svc/inventory;
        asyncx_stage 2단계 배송=/svc/shipping;
    }
--- request
POST /orders/process
--- timeout: 0.5
--- abort
--- ignore_response
--- wait: 0.1
--- error_log
client prematurely closed connection
asyncx pipeline: aborted in stage 1 of 2, 2 calls in flight released
asyncx mock: "사용자" ended before its delay, timer deleted
asyncx mock: "재고" ended before its delay, timer deleted
--- no_error_log
[error]
[alert]



=== TEST 2: abort during stage 2 after stage 1 answered
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 재고=/svc/inventory-now;
        asyncx_stage 2단계 사용자=/svc/user;
    }
--- request
POST /orders/process
--- timeout: 0.5
--- abort
--- ignore_response
--- wait: 0.1
--- error_log
client prematurely closed connection
asyncx pipeline: aborted in stage 2 of 2, 1 calls in flight released
asyncx mock: "사용자" ended before its delay, timer deleted
--- no_error_log
[error]
[alert]



=== TEST 3: abort while a call waits on a real upstream: the upstream connection closes too
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /slow {
            asyncx_mock_service name=slow delay=60s;
        }
    }
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage 1단계 재고=/svc/inventory-now slow=/up;
    }
    location = /up {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/slow;
    }
--- request
POST /orders/process
--- timeout: 0.5
--- abort
--- ignore_response
--- wait: 0.2
--- error_log
asyncx pipeline: aborted in stage 1 of 1, 1 calls in flight released
close http upstream connection
asyncx mock: "slow" ended before its delay, timer deleted
--- no_error_log
[error]
[alert]



=== TEST 4: abort while a retry of an idempotent call is in flight
--- http_config
    upstream flaky {
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        server 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        location = /x { return 503 '{"busy": true}'; }
    }
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_2;
        location = /x { asyncx_mock_service name=retried delay=2s; }
    }
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_call_idempotent x retries=3;
        asyncx_stage 1단계 x=/up/x;
    }
    location /up/ {
        internal;
        proxy_next_upstream off;
        proxy_pass http://flaky/;
    }
--- request
POST /orders/process
--- timeout: 0.3
--- abort
--- ignore_response
--- wait: 0.2
--- error_log
asyncx pipeline: call "x" attempt 1 of 4 failed (status, status 503), retrying
asyncx pipeline: aborted in stage 1 of 1, 1 calls in flight released
close http upstream connection
asyncx mock: "retried" ended before its delay, timer deleted
--- no_error_log
[error]
[alert]
