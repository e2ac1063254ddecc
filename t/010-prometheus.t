# asyncx_status in the Prometheus text format: how it is asked for, the
# shape of the families, label escaping, and server_tokens.  A real
# scrape under traffic, checked by promtool, is t/011-prometheus-scrape.t.

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(1);

plan tests => repeat_each() * (3 * blocks() + 49);

no_long_string();
run_tests();

__DATA__

=== TEST 1: ?format=prometheus answers the text format, version 0.0.4
--- config
    location = /asyncx/status {
        asyncx_status;
    }
--- request
GET /asyncx/status?format=prometheus
--- response_headers
Content-Type: text/plain; version=0.0.4; charset=utf-8
Vary: Accept
--- response_body_like eval
qr/\A# HELP asyncx_info [^\n]+\n# TYPE asyncx_info gauge\nasyncx_info\{version="\d+\.\d+\.\d+",nginx_version="1\.22\.1"\} 1\n(?:# (?:HELP|TYPE) [a-z_]+ [^\n]+\n|[a-z_]+(?:\{[^\n]*\})? \d+(?:\.\d+)?\n)+\z/
--- no_error_log
[error]



=== TEST 2: Prometheus's own Accept header selects it without format=
--- config
    location = /asyncx/status {
        asyncx_status;
    }
--- request
GET /asyncx/status
--- more_headers
Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1
--- response_headers
Content-Type: text/plain; version=0.0.4; charset=utf-8
--- response_body_like: ^# HELP asyncx_info
--- no_error_log
[error]



=== TEST 3: a browser's Accept gets JSON
--- config
    location = /asyncx/status {
        asyncx_status;
    }
--- request
GET /asyncx/status
--- more_headers
Accept: text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.8
--- response_headers
Content-Type: application/json
Vary: Accept
--- response_body_like: ^\{"module":"ngx_http_asyncx_module",
--- no_error_log
[error]



=== TEST 3b: the Accept range is parsed, not searched: q=0 refuses, parameters match whole, a quoted version counts, a "," in a quoted value stays in its range
--- config
    location = /asyncx/status {
        asyncx_status;
    }
--- request eval
[("GET /asyncx/status") x 11]
--- more_headers eval
["Accept: text/plain; version=0.0.4; q=0",
 "Accept: text/plain;version=0.0.4;q=0.000, application/json",
 "Accept: text/plain;version=0.0.40",
 "Accept: text/plain;xversion=0.0.4",
 "Accept: text/plainx;version=0.0.4",
 "Accept: text/html;x=\"a,text/plain;version=0.0.4\"",
 "Accept: text/html;x=\"a\\\",text/plain;version=0.0.4\"",
 "Accept: text/plain;foo=\"a,b\";version=0.0.4",
 "Accept: text/plain; version=\"0.0.4\"",
 "Accept: TEXT/PLAIN;Version=0.0.4;q=0.1",
 "Accept: application/json;q=0.9, text/plain; charset=utf-8; version=0.0.4; q=0.5"]
--- response_headers_like eval
["Content-Type: application/json",
 "Content-Type: application/json",
 "Content-Type: application/json",
 "Content-Type: application/json",
 "Content-Type: application/json",
 "Content-Type: application/json",
 "Content-Type: application/json",
 "Content-Type: text/plain; version=0.0.4; charset=utf-8",
 "Content-Type: text/plain; version=0.0.4; charset=utf-8",
 "Content-Type: text/plain; version=0.0.4; charset=utf-8",
 "Content-Type: text/plain; version=0.0.4; charset=utf-8"]
--- no_error_log
[error]



=== TEST 4: format=json wins over the Accept header
--- config
    location = /asyncx/status {
        asyncx_status;
    }
--- request
GET /asyncx/status?format=json
--- more_headers
Accept: text/plain; version=0.0.4
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"module":"ngx_http_asyncx_module",
--- no_error_log
[error]



=== TEST 5: an unknown format is a 400 naming it, in the shared error shape (its '"' as \x22: the log line's quote cannot be ended)
--- config
    location = /asyncx/status {
        asyncx_status;
    }
--- request
GET /asyncx/status?format=%22xml%22
--- error_code: 400
--- response_body
{"error": "invalid format \"\\x22xml\\x22\", use json or prometheus", "status": 400}
--- error_log
invalid format "\x22xml\x22", use json or prometheus (status 400)



=== TEST 6: server_tokens off: no nginx_version in the JSON
--- config
    server_tokens off;
    location = /asyncx/status {
        asyncx_status;
    }
--- request
GET /asyncx/status
--- response_body_like: ^\{"module":"ngx_http_asyncx_module","version":"\d+\.\d+\.\d+","pid":\d+,"pools"
--- no_error_log
[error]



=== TEST 7: server_tokens off: no nginx_version label either
--- config
    server_tokens off;
    location = /asyncx/status {
        asyncx_status;
    }
--- request
GET /asyncx/status?format=prometheus
--- response_body_like: \nasyncx_info\{version="\d+\.\d+\.\d+"\} 1\n
--- no_error_log
[error]



=== TEST 8: HEAD gets the headers only
--- config
    location = /asyncx/status {
        asyncx_status;
    }
--- request
HEAD /asyncx/status?format=prometheus
--- response_headers
Content-Type: text/plain; version=0.0.4; charset=utf-8
--- response_body
--- no_error_log
[error]



=== TEST 9: a pipeline location's series: label values escaped, counted
--- config
    location ~ "^/p\"(ipe)?\\d$" {
        asyncx_pipeline;
        asyncx_stage s a=/svc/a b=/svc/b;
    }
    location = /svc/a {
        asyncx_mock_service;
    }
    location = /svc/b {
        asyncx_mock_service status=500;
    }
    location = /asyncx/status {
        asyncx_status;
    }
--- request eval
["POST /p\"ipe1\n{}", "GET /asyncx/status?format=prometheus"]
--- error_code eval
[502, 200]
--- response_body_like eval
[qr/./,
qr/\nasyncx_pipeline_requests_total\{location="\^\/p\\"\(ipe\)\?\\\\d\$"\} 1\n(?s:.*)\nasyncx_pipeline_failed_total\{location="\^\/p\\"\(ipe\)\?\\\\d\$"\} 1\n(?s:.*)\nasyncx_call_requests_total\{location="\^\/p\\"\(ipe\)\?\\\\d\$",call="a"\} 1\n(?s:.*)\nasyncx_call_failures_total\{location="\^\/p\\"\(ipe\)\?\\\\d\$",call="b",kind="status"\} 1\n/]
--- no_error_log
[alert]



=== TEST 10: a limit zone's wait histogram counts every admission
--- http_config
    asyncx_limit_zone zone=pz:1m rate=100r/s concurrency=2;
--- config
    location = /limited {
        asyncx_limit pz;
        asyncx_mock_service;
    }
    location = /asyncx/status {
        asyncx_status;
    }
--- request eval
["GET /limited", "GET /limited", "GET /limited",
 "GET /asyncx/status?format=prometheus"]
--- error_code eval
[200, 200, 200, 200]
--- response_body_like eval
[qr/./, qr/./, qr/./,
qr/\nasyncx_limit_admitted_total\{zone="pz"\} 3\n(?s:.*)\nasyncx_limit_wait_seconds_bucket\{zone="pz",le="\+Inf"\} 3\n(?s:.*)\nasyncx_limit_wait_seconds_count\{zone="pz"\} 3\n/]
--- no_error_log
[alert]
