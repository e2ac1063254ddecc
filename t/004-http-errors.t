# HTTP-level refusals of every handler: a 405 names the allowed methods
# in an Allow header (RFC 9110, section 15.5.6), and a body over
# client_max_body_size gets the module's JSON error shape through the
# error_page recipe of docs/directives.md (nginx refuses such a body
# before any content handler runs, so no handler can answer it itself).
# The same recipe turns nginx's own 400 (bad framing or headers, 494),
# 414 and 501 into that shape (TEST 8-14, the demo's configuration).

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(1);

plan tests => repeat_each() * 126;

no_shuffle();
no_long_string();

# The error_page recipe for what nginx refuses itself, read from the
# demo's configuration (docs/examples/demo.conf), so that these blocks
# test the text operators copy: TEST 8-14 get it with their handlers,
# TEST 2-4 where their config says "# the demo's error pages".
sub demo_error_pages {
    open my $fh, '<', 'docs/examples/demo.conf'
        or die "docs/examples/demo.conf: $!";
    my $conf = do { local $/; <$fh> };
    my ($pages) = $conf =~ /^(\s*error_page 400 .*?)^\s*# error pages end$/ms
        or die "docs/examples/demo.conf: no error pages";
    return $pages;
}

my $pages = demo_error_pages();
my $handlers = <<'_EOC_';
    location = /auth/hash { asyncx_password_hash; }
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage s a=/a;
    }
    location = /a { return 200 '{}'; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    my $config = $block->config;

    if (!defined $config) {
        # TEST 8-14: every refusal is the JSON shape, and nginx's own
        # line is not an [error] unless the block says otherwise
        $block->set_value("config", $pages . $handlers);
        $block->set_value("response_headers",
                          "Content-Type: application/json\n")
            unless defined $block->response_headers;
        $block->set_value("no_error_log", "[error]\n")
            unless defined $block->no_error_log;

    } elsif ($config =~ s/^\s*# the demo's error pages\n/$pages/m) {
        $block->set_value("config", $config);
    }
});

run_tests();

__DATA__

=== TEST 1: 405 carries Allow on every handler (status, pipeline, offload, limiter, streams)
--- http_config
    asyncx_limit_zone zone=api:1m rate=5r/s;
--- config
    location = /asyncx/status { asyncx_status; }
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage s a=/a;
    }
    location = /a { return 200 '{}'; }
    location = /files/read { asyncx_file_root html; asyncx_file_read; }
    location = /files/write { asyncx_file_root html; asyncx_file_write; }
    location = /auth/hash { asyncx_password_hash; }
    location = /auth/verify { asyncx_password_verify; }
    location = /parse/json { asyncx_json_parse; }
    location = /regex/match { asyncx_regex_match; }
    location = /rate-limiter/status { asyncx_limit_status api; }
    location = /rate-limit-test { asyncx_limit_test api /ext; }
    location = /ext { asyncx_limit api; return 200; }
    location = /stream/search { asyncx_sse search; }
--- request eval
["POST /asyncx/status\nx", "PUT /orders/process\n{}", "POST /files/read?path=a\nx",
 "GET /files/write?path=a", "GET /auth/hash", "DELETE /auth/verify",
 "GET /parse/json", "PATCH /regex/match\n{}", "POST /rate-limiter/status\nx",
 "POST /stream/search?keyword=a\nx", "POST /rate-limit-test\nx"]
--- error_code eval
[405, 405, 405, 405, 405, 405, 405, 405, 405, 405, 405]
--- response_headers eval
["Allow: GET, HEAD\nContent-Type: application/json",
 "Allow: GET, HEAD, POST\nContent-Type: application/json",
 "Allow: GET, HEAD\nContent-Type: application/json",
 "Allow: POST\nContent-Type: application/json",
 "Allow: POST\nContent-Type: application/json",
 "Allow: POST\nContent-Type: application/json",
 "Allow: POST\nContent-Type: application/json",
 "Allow: POST\nContent-Type: application/json",
 "Allow: GET, HEAD\nContent-Type: application/json",
 "Allow: GET, HEAD\nContent-Type: application/json",
 "Allow: GET, HEAD\nContent-Type: application/json"]
--- response_body_like eval
[qr/^\{"error": "[^"]*method not allowed[^"]*", "status": 405\}\n\z/,
 qr/^\{"error": "[^"]*method not allowed[^"]*", "status": 405\}\n\z/,
 qr/^\{"error": "[^"]*method not allowed[^"]*", "status": 405\}\n\z/,
 qr/^\{"error": "[^"]*method not allowed[^"]*", "status": 405\}\n\z/,
 qr/^\{"error": "[^"]*method not allowed[^"]*", "status": 405\}\n\z/,
 qr/^\{"error": "[^"]*method not allowed[^"]*", "status": 405\}\n\z/,
 qr/^\{"error": "[^"]*method not allowed[^"]*", "status": 405\}\n\z/,
 qr/^\{"error": "[^"]*method not allowed[^"]*", "status": 405\}\n\z/,
 qr/^\{"error": "[^"]*method not allowed[^"]*", "status": 405\}\n\z/,
 qr/^\{"error": "[^"]*method not allowed[^"]*", "status": 405\}\n\z/,
 qr/^\{"error": "[^"]*method not allowed[^"]*", "status": 405\}\n\z/]
--- no_error_log
[error]



=== TEST 2: a declared body over client_max_body_size gets the JSON error shape (the error_page recipe)
--- config
    # the demo's error pages
    location = /parse/json { client_max_body_size 16; asyncx_json_parse; }
    location = /files/write {
        client_max_body_size 16;
        asyncx_file_root html;
        asyncx_file_write;
    }
    location = /orders/process {
        client_max_body_size 16;
        asyncx_pipeline;
        asyncx_stage s a=/a;
    }
    location = /a { return 200 '{}'; }
--- request eval
["POST /parse/json\n[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]",
 "POST /files/write?path=big.txt\n0123456789abcdefXYZ",
 "POST /orders/process\n{\"a\": \"0123456789abcdef\"}"]
--- error_code eval
[413, 413, 413]
--- response_headers eval
["Content-Type: application/json", "Content-Type: application/json",
 "Content-Type: application/json"]
--- response_body_like eval
[qr/^\{"error": "request body is larger than client_max_body_size", "status": 413\}\n\z/,
 qr/^\{"error": "request body is larger than client_max_body_size", "status": 413\}\n\z/,
 qr/^\{"error": "request body is larger than client_max_body_size", "status": 413\}\n\z/]
--- error_log
client intended to send too large body



=== TEST 3: a chunked body over client_max_body_size gets the JSON error shape too
--- config
    # the demo's error pages
    location = /parse/json { client_max_body_size 16; asyncx_json_parse; }
    location = /files/write {
        client_max_body_size 16;
        asyncx_file_root html;
        asyncx_file_write;
    }
    location = /orders/process {
        client_max_body_size 16;
        asyncx_pipeline;
        asyncx_stage s a=/a;
    }
    location = /a { return 200 '{}'; }
--- raw_request eval
"POST /files/write?path=big.txt HTTP/1.1\r
Host: localhost\r
Connection: close\r
Transfer-Encoding: chunked\r
\r
10\r
0123456789abcdef\r
3\r
XYZ\r
0\r
\r
"
--- error_code: 413
--- response_headers
Content-Type: application/json
--- response_body_like eval
qr/^\{"error": "request body is larger than client_max_body_size", "status": 413\}\n\z/
--- error_log
client intended to send too large chunked body



=== TEST 4: a body within client_max_body_size is answered as before
--- config
    # the demo's error pages
    location = /parse/json { client_max_body_size 16; asyncx_json_parse; }
    location = /files/write {
        client_max_body_size 16;
        asyncx_file_root html;
        asyncx_file_write;
    }
    location = /orders/process {
        client_max_body_size 16;
        asyncx_pipeline;
        asyncx_stage s a=/a;
    }
    location = /a { return 200 '{}'; }
--- request eval
["POST /parse/json\n[1, 2]", "POST /files/write?path=small.txt\n0123456789abcdef"]
--- error_code eval
[200, 200]
--- response_body eval
["", "{\"written\":16,\"path\":\"small.txt\",\"async\":true}\n"]
--- response_body_filters eval
sub { $_[0] =~ /^\{"parsed_items":2,/ ? "" : $_[0] }
--- no_error_log
[error]



=== TEST 5: a chunked body reaches the pipeline and the JSON parser whole (its last, empty buffer is skipped, not copied from NULL)
--- config
    location = /orders/process {
        asyncx_pipeline;
        asyncx_pipeline_answer standard;
        asyncx_stage s a=/a;
    }
    location = /a { return 200 '{}'; }
    location = /parse/json { asyncx_json_parse; }
--- request eval
["POST /orders/process\n7\r\n{\"x\":1}\r\n0\r\n\r\n",
 "POST /parse/json\n7\r\n{\"x\":1}\r\n0\r\n\r\n"]
--- more_headers eval
["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"]
--- error_code eval
[200, 200]
--- response_body_like eval
[qr/^\{"stages":/,
 qr/^\{"parsed_items":1,.*"bytes":7,.*"type":"object","source":"body"/]
--- no_error_log
[error]
runtime error



=== TEST 6: a fault of the server (a root that is gone) is a 500 naming no server path; the log has the detail
--- config
    location = /files/read {
        asyncx_file_root /nonexistent-asyncx-root;
        asyncx_file_read;
    }
--- request
GET /files/read?path=a.txt
--- error_code: 500
--- response_body
{"error": "file read: internal error, see the error log", "status": 500}
--- error_log eval
qr/\[error\] .*asyncx: file read: file root "\/nonexistent-asyncx-root" is not available \(2: No such file or directory\) \(status 500\)/



=== TEST 7: the same for a stream's root
--- config
    location = /search {
        asyncx_sse_source file=a.ndjson root=/nonexistent-asyncx-sse-root;
        asyncx_sse search;
    }
--- request
GET /search?keyword=x
--- error_code: 500
--- response_body
{"error": "asyncx_sse: internal error, see the error log", "status": 500}
--- error_log eval
qr/\[error\] .*asyncx: asyncx_sse: root "\/nonexistent-asyncx-sse-root" is not available \(2: No such file or directory\) \(status 500\)/



=== TEST 8: a chunked body with a bad chunk size gets the JSON 400 (nginx's own refusal, through the recipe)
--- raw_request eval
"POST /auth/hash HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
--- error_code: 400
--- response_body
{"error": "malformed request: nginx refused its headers or body framing", "status": 400}
--- error_log
client sent invalid chunked body
--- no_error_log
[alert]



=== TEST 9: Content-Length together with Transfer-Encoding gets the JSON 400
--- raw_request eval
"POST /orders/process HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
--- error_code: 400
--- response_body
{"error": "malformed request: nginx refused its headers or body framing", "status": 400}
--- error_log
client sent "Content-Length" and "Transfer-Encoding" headers at the same time



=== TEST 10: a request line nginx cannot parse gets the JSON 400 (a URI redirect: a named location would need the request's URI)
--- raw_request eval
"GARBAGE\r\n\r\n"
--- error_code: 400
--- response_body
{"error": "malformed request: nginx refused its headers or body framing", "status": 400}
--- error_log
client sent invalid method



=== TEST 11: HTTP/1.1 without Host gets the JSON 400
--- raw_request eval
"GET /auth/hash HTTP/1.1\r\nConnection: close\r\n\r\n"
--- error_code: 400
--- response_body
{"error": "malformed request: nginx refused its headers or body framing", "status": 400}
--- error_log
client sent HTTP/1.1 request without "Host" header



=== TEST 12: a header over large_client_header_buffers (nginx's 494) gets the JSON 400
--- raw_request eval
"GET /auth/hash HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nX-Big: " . ("a" x 9000) . "\r\n\r\n"
--- error_code: 400
--- response_body
{"error": "malformed request: nginx refused its headers or body framing", "status": 400}
--- error_log
client sent too long header line



=== TEST 13: a request line over large_client_header_buffers gets the JSON 414
--- raw_request eval
"GET /" . ("a" x 9000) . " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
--- error_code: 414
--- response_body
{"error": "request line is longer than large_client_header_buffers", "status": 414}
--- error_log
client sent too long URI



=== TEST 14: an unknown Transfer-Encoding gets the JSON 501
--- raw_request eval
"POST /orders/process HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nTransfer-Encoding: gzip\r\n\r\n"
--- error_code: 501
--- response_body
{"error": "unsupported Transfer-Encoding", "status": 501}
--- error_log
client sent unknown "Transfer-Encoding": "gzip"
