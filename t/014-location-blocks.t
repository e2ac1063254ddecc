# An "if" or "limit_except" block inside a location served by one of the
# module's content handlers: nginx runs the location's handler with the
# block's configuration, so the block must carry the location's (a
# common CORS snippet, `if ($http_origin) { add_header ... }`, crashed
# the worker for the pipeline, the mock, SSE and the limiter's status
# and test handlers, and garbled the offload handlers' answers), and a
# "limit_except" block must run the handler, as with proxy_pass (it
# answered 404).  Each block asks with and without the "if" applying.

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(1);

plan tests => repeat_each() * 108;

no_shuffle();
no_long_string();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(main_config => "    thread_pool cpu threads=2;\n")
        unless defined $block->main_config;
    $block->set_value(http_config => "    asyncx_thread_pools io=cpu cpu=cpu;\n"
        . ($block->http_config // ''));
});

run_tests();

__DATA__

=== TEST 1: pipeline: an "if" that applies answers as the location does
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s user=/svc/user;
        if ($http_origin) {
            add_header Access-Control-Allow-Origin $http_origin always;
        }
    }
    location = /svc/user {
        internal;
        asyncx_mock_service name=user 'json={"id": 1}';
    }
--- request eval
["POST /p", "POST /p"]
--- more_headers eval
["Origin: https://a.example", ""]
--- response_headers_like eval
["Access-Control-Allow-Origin: https://a.example", "Access-Control-Allow-Origin: \$"]
--- response_body_like eval
['"outcome":"ok"', '"outcome":"ok"']
--- error_code eval
[200, 200]
--- no_error_log eval
["exited on signal", "[alert]"]



=== TEST 2: mock service inside "if"
--- config
    location = /m {
        asyncx_mock_service name=m 'json={"id": 1}';
        if ($arg_x) { add_header X-If yes always; }
    }
--- request eval
["GET /m?x=1", "GET /m"]
--- response_headers_like eval
["X-If: yes", "X-If: \$"]
--- response_body_like eval
['^\{"service":"m",.*"id":1', '^\{"service":"m",.*"id":1']
--- error_code eval
[200, 200]
--- no_error_log eval
["exited on signal", "[alert]"]



=== TEST 3: JSON parsing inside "if"
--- config
    location = /j {
        asyncx_json_parse;
        if ($arg_x) { add_header X-If yes always; }
    }
--- request eval
["POST /j?x=1\n[1, 2, 3]", "POST /j\n[1, 2, 3]"]
--- response_headers_like eval
["X-If: yes", "X-If: \$"]
--- response_body_like eval
['"parsed_items":3,', '"parsed_items":3,']
--- error_code eval
[200, 200]
--- no_error_log eval
["exited on signal", "[error]"]



=== TEST 4: password hash inside "if"
--- config
    location = /h {
        asyncx_pbkdf2_iterations 1000;
        asyncx_password_hash;
        if ($arg_x) { add_header X-If yes always; }
    }
--- request eval
["POST /h?x=1\n{\"password\": \"pw\"}", "POST /h\n{\"password\": \"pw\"}"]
--- response_body_like eval
['^\{"hash":"pbkdf2_sha256\$1000\$', '^\{"hash":"pbkdf2_sha256\$1000\$']
--- error_code eval
[200, 200]
--- no_error_log eval
["exited on signal", "[error]"]



=== TEST 5: regex inside "if"
--- config
    location = /r {
        asyncx_regex_match;
        if ($arg_x) { add_header X-If yes always; }
    }
--- request eval
["POST /r?x=1\n{\"pattern\": \"a+\", \"texts\": [\"caab\", \"x\"]}",
 "POST /r\n{\"pattern\": \"a+\", \"texts\": [\"caab\", \"x\"]}"]
--- response_body_like eval
['"match_count":1,"total":2,', '"match_count":1,"total":2,']
--- error_code eval
[200, 200]
--- no_error_log eval
["exited on signal", "[error]"]



=== TEST 6: file read inside "if"
--- config
    location = /f {
        asyncx_file_root html;
        asyncx_file_read;
        if ($arg_x) { add_header X-If yes always; }
    }
--- user_files
>>> hello.txt
hi
--- request eval
["GET /f?x=1&path=hello.txt", "GET /f?path=hello.txt"]
--- response_body eval
["{\"content\":\"hi\\n\",\"size\":3,\"encoding\":\"utf-8\",\"async\":true}\n",
 "{\"content\":\"hi\\n\",\"size\":3,\"encoding\":\"utf-8\",\"async\":true}\n"]
--- error_code eval
[200, 200]
--- no_error_log eval
["exited on signal", "[error]"]



=== TEST 7: the limiter's zone status and test handlers inside "if"
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s concurrency=3 burst=5;
--- config
    location = /zs {
        asyncx_limit_zone_status api;
        if ($arg_x) { add_header X-If yes always; }
    }
    location = /lt {
        asyncx_limit_test api /ext/call?n=2;
        if ($arg_x) { add_header X-If yes always; }
    }
    location /ext/ {
        asyncx_limit api;
        asyncx_mock_service name=ext;
    }
--- request eval
["GET /zs?x=1", "GET /zs", "GET /lt?x=1"]
--- response_body_like eval
['^\{"concurrent":\{"current":0,"max":3\},"rate":\{"current_rps":\d+,"max_rps":5\},"waiting":0\}$',
 '^\{"concurrent":\{"current":0,"max":3\},"rate":\{"current_rps":\d+,"max_rps":5\},"waiting":0\}$',
 '"total_requests":\d+']
--- error_code eval
[200, 200, 200]
--- no_error_log eval
["exited on signal", "[alert]"]



=== TEST 8: the status page and the status JSON inside "if"
--- config
    location = /page {
        asyncx_status_page /stream;
        if ($arg_x) { add_header X-If yes always; }
    }
    location = /st {
        asyncx_status;
        if ($arg_x) { add_header X-If yes always; }
    }
--- request eval
["GET /page?x=1", "GET /page", "GET /st?x=1"]
--- response_body_like eval
['^<!doctype html>', '^<!doctype html>', '^\{"module":"ngx_http_asyncx_module",']
--- error_code eval
[200, 200, 200]
--- no_error_log eval
["exited on signal", "[alert]"]



=== TEST 9: SSE inside "if"
--- config
    location = /s {
        asyncx_sse search;
        if ($arg_x) { add_header X-If yes always; }
    }
--- request eval
["GET /s?x=1&keyword=python&data_size=100", "GET /s?keyword=python&data_size=100"]
--- response_body_like eval
['"type": "complete", "total_matches": 0', '"type": "complete", "total_matches": 0']
--- error_code eval
[200, 200]
--- no_error_log eval
["exited on signal", "[alert]"]



=== TEST 10: limit_except: a method it limits but allows runs the location's handler (not 404)
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s user=/svc/user;
        limit_except POST { allow 127.0.0.1; deny all; }
    }
    location = /s {
        asyncx_sse search;
        limit_except GET { allow 127.0.0.1; deny all; }
    }
    location = /svc/user {
        internal;
        asyncx_mock_service name=user 'json={"id": 1}';
    }
--- request eval
["POST /p", "GET /p", "GET /s?keyword=python&data_size=100", "POST /s?keyword=python&data_size=100"]
--- response_body_like eval
['"outcome":"ok"', '"outcome":"ok"', '"type": "complete"', '^\{"error": "method not allowed, use GET", "status": 405\}$']
--- error_code eval
[200, 200, 200, 405]
--- no_error_log eval
["exited on signal", "[alert]"]



=== TEST 11: limit_except that denies still denies
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s user=/svc/user;
        limit_except POST { deny all; }
    }
    location = /svc/user {
        internal;
        asyncx_mock_service name=user 'json={"id": 1}';
    }
--- request eval
["POST /p", "GET /p"]
--- error_code eval
[200, 403]
--- no_error_log eval
["exited on signal", "[alert]"]
