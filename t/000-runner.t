# Self-test of the Test::Nginx::Socket runner in t/lib, against stock nginx
# features only (no asyncx module needed). Also runs under upstream
# Test::Nginx; see docs/testing.md.

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(2);

plan tests => repeat_each() * (2 * blocks() + 22);

no_shuffle();

config_preamble(<<'_EOC_');
        location = /preamble {
            return 200 "from the preamble\n";
        }
_EOC_

# A default request for blocks that send none (and are not must_die).
add_block_preprocessor(sub {
    my $block = shift;
    if (!defined $block->request && !defined $block->raw_request
        && !defined $block->pipelined_requests && !defined $block->must_die)
    {
        $block->set_value("request", "GET /t");
    }
});

run_tests();

__DATA__

=== TEST 1: response_body and no_error_log
--- config
    location = /t {
        return 200 "hello\n";
    }
--- request
    GET /t
--- response_body
hello
--- no_error_log
[error]



=== TEST 2: response_body chop (no trailing newline)
--- config
    location = /t {
        return 200 "abc";
    }
--- request
GET /t
--- response_body chop
abc



=== TEST 3: response_body eval with CR LF
--- config
    location = /t {
        return 200 "x\r\ny";
    }
--- request
GET /t
--- response_body eval
"x\r\ny"



=== TEST 4: error_code, same-line response_body_like, raw headers, error_log
--- config
--- request
GET /no-such-file.txt
--- error_code: 404
--- response_body_like: <title>404 Not Found</title>
--- raw_response_headers_like: ^HTTP/1\.1 404 Not Found\r\n
--- error_log
No such file or directory



=== TEST 5: error_code_like, response_headers_like, response_body_unlike
--- config
    location = /t {
        return 302 /x;
    }
--- request
GET /t
--- error_code_like: ^30[12]$
--- response_headers_like
Location: http://localhost:\d+/x
--- response_body_unlike: hello



=== TEST 6: response_headers, joined repeats and !Name
--- config
    location = /t {
        add_header X-Foo bar;
        add_header X-Multi a;
        add_header X-Multi b;
        return 200 "ok\n";
    }
--- request
GET /t
--- response_headers
X-Foo: bar
X-Multi: a, b
!X-Bar
Content-Type: text/plain
Content-Length: 3
--- response_body
ok



=== TEST 7: more_headers and a trimmed request body with Content-Length
--- config
    location = /t {
        return 200 "ua=$http_user_agent foo=$http_x_foo cl=$http_content_length host=$host\n";
    }
--- more_headers
User-Agent: runner
# a comment line is dropped
X-Foo: a b c
--- request
POST /t
   hello world
--- response_body
ua=runner foo=a b c cl=11 host=localhost
--- no_error_log
[error]



=== TEST 8: more_headers overrides Host
--- config
    location = /t {
        return 200 "host=$host\n";
    }
--- more_headers
Host: example.com
--- request
GET /t
--- response_body
host=example.com



=== TEST 9: request array, per-request more_headers, codes and bodies
--- config
    location = /t {
        return 200 "foo=$http_x_foo\n";
    }
    location = /t404 {
        return 404 "foo=$http_x_foo\n";
    }
--- request eval
["GET /t?a=1", "GET /t404"]
--- more_headers eval
["X-Foo: one", "X-Foo: two"]
--- error_code eval
[200, 404]
--- response_body eval
["foo=one\n", qr/^foo=two$/]
--- no_error_log
[error]



=== TEST 10: pipelined_requests on one keep-alive connection
--- config
    location = /a {
        return 200 "a\n";
    }
    location = /b {
        return 200 "b\n";
    }
--- pipelined_requests eval
["GET /a", "GET /b"]
--- response_headers eval
["Connection: keep-alive", "Connection: close"]
--- response_body eval
["a\n", "b\n"]



=== TEST 11: raw_request packets with raw_request_middle_delay
--- config
    location = /t {
        return 200 "foo=$http_x_foo host=$host\n";
    }
--- raw_request eval
["GET /t HTTP/1.0\r\nHost: x\r\n", "X-Foo: late\r\n\r\n"]
--- raw_request_middle_delay: 0.1
--- response_body
foo=late host=x



=== TEST 12: request packets with delay_before, body rebuilt across them
--- config
    location = /t {
        proxy_set_header X-Body $request_body;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/echo;
    }
    location = /echo {
        return 200 "body=$http_x_body len=$http_content_length\n";
    }
--- request eval
[["POST /t\nhel", { value => "lo world", delay_before => 0.1 }]]
--- response_body eval
["body=hello world len=11\n"]



=== TEST 13: http_config, $TEST_NGINX_RAND_PORT_1 and user_files
--- http_config
    server {
        listen $TEST_NGINX_RAND_PORT_1;
        location / {
            root $TEST_NGINX_SERVER_ROOT/html;
        }
    }
--- config
    location = /t {
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/foo.txt;
    }
--- user_files
>>> foo.txt
hello from $TEST_NGINX_SERVER_PORT
--- request
GET /t
--- response_body
hello from $TEST_NGINX_SERVER_PORT



=== TEST 14: an empty config serves user_files from location /
--- config
--- user_files
>>> sub/bar.txt
bar
--- request
GET /sub/bar.txt
--- response_body
bar



=== TEST 15: a block without config reuses the running nginx
--- request
GET /sub/bar.txt
--- response_body
bar



=== TEST 16: main_config lands at the top level; config_preamble
--- main_config
timer_resolution 100ms;
--- config
--- request
GET /preamble
--- response_body
from the preamble



=== TEST 17: must_die with error_log from the startup log
--- main_config
worker_processes 2;
--- config
--- must_die
--- suppress_stderr
--- error_log eval
qr/\[emerg\] .*"worker_processes" directive is duplicate/



=== TEST 18: must_die with the expected exit code
--- config
    location = /t {
        bogus_directive_xyz on;
    }
--- must_die: 1
--- suppress_stderr
--- error_log eval
[qr/\[emerg\] .*unknown directive "bogus_directive_xyz"/]



=== TEST 19: a chunked response is decoded (ssi drops Content-Length)
--- config
    location /ssi/ {
        ssi on;
        ssi_types *;
        root $TEST_NGINX_SERVER_ROOT/html;
    }
    location = /part {
        return 200 "PART\n";
    }
--- user_files
>>> ssi/main.txt
begin
<!--# include virtual="/part" -->
end
--- request
GET /ssi/main.txt
--- raw_response_headers_like: Transfer-Encoding: chunked\r\n
--- response_body
begin
PART

end



=== TEST 20: timeout + abort: the partial HTTP/1.0 body is still checked
The include never finishes: /stall sends a request announcing a body that
never comes to a server that waits for it.
--- http_config
    server {
        listen $TEST_NGINX_RAND_PORT_1;
        location / {
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/never;
        }
    }
--- config
    location /stream/ {
        ssi on;
        ssi_types *;
        postpone_output 0;
        root $TEST_NGINX_SERVER_ROOT/html;
    }
    location = /stall {
        proxy_pass_request_body off;
        proxy_set_header Content-Length 100;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
    }
--- user_files
>>> stream/a.txt
first
<!--# include virtual="/stall" -->
second
--- request
GET /stream/a.txt HTTP/1.0
--- timeout: 300ms
--- abort
--- wait: 0.1
--- response_body
first
--- error_log
client prematurely closed
--- no_error_log
[alert]



=== TEST 21: ignore_response, log_level, grep_error_log, stap (skipped)
--- http_config
    server {
        listen $TEST_NGINX_RAND_PORT_1;
        location / {
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/never;
        }
    }
--- config
    location = /t {
        rewrite_log on;
        rewrite ^ /stall last;
    }
    location = /stall {
        proxy_pass_request_body off;
        proxy_set_header Content-Length 100;
        proxy_pass http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/;
    }
--- log_level: notice
--- request
GET /t
--- timeout: 0.2
--- abort
--- ignore_response
--- grep_error_log eval: qr/rewritten data: "[^"]*"/
--- grep_error_log_out
rewritten data: "/stall"
--- no_error_log
[debug]
--- stap
probe never::used {}



=== TEST 22: SKIP drops the block entirely
--- config
    location = /t {
        return 200 "hello\n";
    }
--- response_body
never
--- SKIP



=== TEST 23: the block preprocessor supplied the request
--- config
    location = /t {
        return 200 "default request\n";
    }
--- response_body
default request



=== TEST 24: $TEST_NGINX_* and $ServerPort in the expected body
--- config
    location = /t {
        return 200 "p=$server_port q=$server_port\n";
    }
--- request
GET /t
--- response_body
p=$TEST_NGINX_SERVER_PORT q=$ServerPort



=== TEST 25: a [crit] line the block declares in error_log is expected
(nginx logs a failed connect() to a missing unix socket at crit)
--- config
    location = /t {
        proxy_pass http://unix:/nonexistent/asyncx-runner.sock:/;
    }
--- request
GET /t
--- error_code: 502
--- error_log eval
qr/\[crit\] .*connect\(\) to unix:\/nonexistent\/asyncx-runner\.sock failed/



=== TEST 26: LAST keeps this block and drops the ones after it
--- config
    location = /t {
        return 200 "last\n";
    }
--- response_body
last
--- LAST



=== TEST 27: never run
--- config
    location = /t {
        return 500;
    }
--- response_body
never
