# asyncx_status_stream and asyncx_status_page: the SSE feed of the JSON
# status and the dashboard page, one request at a time.  A browser
# drawing the page under traffic is t/491-dashboard.t; the stream's end
# on reload and on a client that leaves are there too.

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(1);

plan tests => repeat_each() * (3 * blocks() + 2);

no_long_string();
run_tests();

__DATA__

=== TEST 1: the stream sends the status as an event at once
--- config
    location = /s {
        asyncx_status_stream interval=10s;
    }
--- request
GET /s HTTP/1.0
--- timeout: 0.5
--- abort
--- response_headers
Content-Type: text/event-stream
Cache-Control: no-cache
X-Accel-Buffering: no
--- response_body_like eval
qr/\Aid: 1\ndata: \{"module":"ngx_http_asyncx_module","version":"[^"]+","nginx_version":"1\.22\.1","pid":\d+,"pools":\{\}[^\n]*,"time_ms":\d{13}\}\n\n\z/
--- no_error_log
[error]



=== TEST 2: HEAD gets the headers, no stream
--- config
    location = /s {
        asyncx_status_stream;
    }
--- request
HEAD /s
--- response_headers
Content-Type: text/event-stream
--- response_body
--- no_error_log
[error]



=== TEST 3: POST is refused with the shared error shape
--- config
    location = /s {
        asyncx_status_stream;
    }
--- request
POST /s
x
--- error_code: 405
--- response_body
{"error": "method not allowed, use GET", "status": 405}
--- error_log
method not allowed, use GET



=== TEST 4: interval outside 100ms..60s is refused by nginx -t
--- config
    location = /s {
        asyncx_status_stream interval=10ms;
    }
--- must_die
--- error_log
invalid value "interval=10ms" in "asyncx_status_stream", expected 100ms..60s



=== TEST 5: an unknown parameter names itself
--- config
    location = /s {
        asyncx_status_stream every=1s;
    }
--- must_die
--- error_log
invalid parameter "every=1s" in "asyncx_status_stream", expected interval=time



=== TEST 6: the page: self-contained HTML, the stream URI in its script
--- config
    location = /dash {
        asyncx_status_page /live/feed?x=1;
    }
--- request
GET /dash
--- response_headers
Content-Type: text/html; charset=utf-8
Cache-Control: no-store
X-Content-Type-Options: nosniff
Content-Security-Policy: default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'
--- response_body_like eval
qr{\A<!doctype html>\n(?!.*(?:src=|href=|url\(|\@import|https?:|//[a-z]))(?=.*var STREAM = '/live/feed\?x=1';)(?!.*\@ASYNCX_STREAM\@).*</html>\n\z}s
--- no_error_log
[error]



=== TEST 7: a stream URI that could break out of the script is refused
--- config
    location = /dash {
        asyncx_status_page "/x';alert(1)//";
    }
--- must_die
--- error_log
invalid value "/x';alert(1)//" in "asyncx_status_page", expected a path starting with a single "/" without quotes, spaces or markup



=== TEST 8: a relative stream URI is refused
--- config
    location = /dash {
        asyncx_status_page live;
    }
--- must_die
--- error_log
invalid value "live" in "asyncx_status_page", expected a path



=== TEST 8b: a stream URI with two leading slashes is another host's URL and is refused
--- config
    location = /dash {
        asyncx_status_page //evil.example/x;
    }
--- must_die
--- error_log
invalid value "//evil.example/x" in "asyncx_status_page", expected a path starting with a single "/"



=== TEST 9: one content handler per location
--- config
    location = /dash {
        asyncx_status;
        asyncx_status_page /s;
    }
--- must_die
--- error_log
"asyncx_status_page" directive is duplicate: the location already has a content handler
