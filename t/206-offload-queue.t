# A full thread pool queue answers 503 with Retry-After at once; it never
# blocks or drops the request.  nginx's own mirror + proxy make the
# concurrent load: two slow hashes occupy a pool of threads=1
# max_queue=1 (one running, one queued) before the client's own request,
# whose body arrives 0.2 s later, is posted.
#
# Under valgrind (`make test-valgrind`) PBKDF2 is about 70 times slower
# and nginx's own work about 20 times: fewer rounds, longer delays.

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(1);

plan tests => repeat_each() * 19;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: queue full: 503 + Retry-After, then the status counters show it
--- main_config
    thread_pool tiny threads=1 max_queue=1;
--- config eval
my $n = $ENV{TEST_NGINX_USE_VALGRIND} ? 150000 : 3000000;
"    asyncx_thread_pools io=tiny cpu=tiny;

    location = /auth/hash {
        asyncx_pbkdf2_iterations $n;
        asyncx_pbkdf2_max_iterations $n;
        asyncx_password_hash;
    }

    location = /burst {
        mirror /slow;
        mirror /slow;
        mirror_request_body off;
        asyncx_pbkdf2_iterations 1000;
        asyncx_password_hash;
    }

    location = /slow {
        internal;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/auth/hash;
        proxy_method POST;
        proxy_set_body '{\"password\": \"slow\"}';
    }

    location = /status {
        asyncx_status;
    }"
--- request eval
[["POST /burst\n", { value => "{\"password\": \"fast\"}",
                     delay_before => $ENV{TEST_NGINX_USE_VALGRIND} ? 1.5 : 0.2 }]]
--- more_headers
Content-Length: 20
--- timeout eval: $ENV{TEST_NGINX_USE_VALGRIND} ? 30 : 6
--- error_code eval
[503]
--- response_headers eval
["Retry-After: 1"]
--- response_body eval
["{\"error\": \"thread pool queue is full\", \"status\": 503}\n"]
--- error_log
thread pool "tiny" queue overflow: 1 tasks waiting
asyncx: thread pool queue is full (status 503)
--- no_error_log
[alert]
[crit]



=== TEST 2: ... the pool's counters: two slow hashes completed, one rejected
--- request
GET /status
--- response_body_like chomp
"pools":\{"tiny":\{"posted":2,"queued":0,"running":0,"completed":2,"failed":0,"rejected":1\}\}



=== TEST 3: with room in the queue the same burst is served (no false 503)
--- main_config
    thread_pool tiny threads=1 max_queue=4;
--- config eval
my $n = $ENV{TEST_NGINX_USE_VALGRIND} ? 10000 : 200000;
"    asyncx_thread_pools io=tiny cpu=tiny;

    location = /auth/hash {
        asyncx_pbkdf2_iterations $n;
        asyncx_password_hash;
    }

    location = /burst {
        mirror /slow;
        mirror /slow;
        mirror_request_body off;
        asyncx_pbkdf2_iterations 1000;
        asyncx_password_hash;
    }

    location = /slow {
        internal;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/auth/hash;
        proxy_method POST;
        proxy_set_body '{\"password\": \"slow\"}';
    }"
--- request eval
[["POST /burst\n", { value => "{\"password\": \"fast\"}",
                     delay_before => $ENV{TEST_NGINX_USE_VALGRIND} ? 1 : 0.1 }]]
--- more_headers
Content-Length: 20
--- timeout eval: $ENV{TEST_NGINX_USE_VALGRIND} ? 30 : 6
--- response_body_like eval
[qr/^\{"hash":"pbkdf2_sha256\$1000\$/]
--- no_error_log
[error]
queue overflow



=== TEST 4: tasks that answer a client error count as completed, not failed
--- main_config
    thread_pool small threads=1;
--- config
    asyncx_thread_pools io=small cpu=small;
    location = /files/read { asyncx_file_root html; asyncx_file_read; }
    location = /auth/hash { asyncx_password_hash; }
    location = /status { asyncx_status; }
--- request eval
["GET /files/read?path=missing.txt", "POST /auth/hash\n{\"pass\": 1}", "GET /status"]
--- error_code eval
[404, 400, 200]
--- response_body_like eval
['"status": 404', '"status": 400',
 qr/"pools":\{"small":\{"posted":2,"queued":0,"running":0,"completed":2,"failed":0,"rejected":0\}\}/]
