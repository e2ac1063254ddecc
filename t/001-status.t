# asyncx_status and the shared error shape.

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(2);

plan tests => repeat_each() * (3 * blocks() + 1);

no_long_string();
run_tests();

__DATA__

=== TEST 1: status answers JSON describing the module
--- config
    location = /asyncx/status {
        asyncx_status;
    }
--- request
GET /asyncx/status
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"module":"ngx_http_asyncx_module","version":"\d+\.\d+\.\d+","nginx_version":"1\.22\.1","pid":\d+,"pools":\{\}.*\}$
--- no_error_log
[error]



=== TEST 2: status refuses POST with the shared JSON error shape
--- config
    location = /asyncx/status {
        asyncx_status;
    }
--- request
POST /asyncx/status
hello
--- error_code: 405
--- response_headers
Content-Type: application/json
--- response_body
{"error": "method not allowed, use GET", "status": 405}
--- error_log
asyncx: method not allowed, use GET (status 405)



=== TEST 3: HEAD gets headers only
--- config
    location = /asyncx/status {
        asyncx_status;
    }
--- request
HEAD /asyncx/status
--- response_headers
Content-Type: application/json
--- response_body
--- no_error_log
[error]



=== TEST 4: declared pools stay unused where no handler runs jobs
--- main_config
    thread_pool io_pool threads=1;
    thread_pool cpu_pool threads=1;
--- config
    asyncx_thread_pools io=io_pool cpu=cpu_pool;
    location = /asyncx/status {
        asyncx_status;
    }
--- request
GET /asyncx/status
--- response_body_like: "pools":\{\}
--- no_error_log
[error]



=== TEST 5: a second content handler in the same location is refused
--- config
    location = /asyncx/status {
        asyncx_status;
        asyncx_status;
    }
--- must_die
--- error_log
"asyncx_status" directive is duplicate



=== TEST 6: unknown asyncx_thread_pools parameter names the value
--- config
    asyncx_thread_pools gpu=foo;
--- must_die
--- error_log
invalid value "gpu=foo" in "asyncx_thread_pools", expected io=name or cpu=name
