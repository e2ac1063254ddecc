# asyncx_pipeline in front of real HTTP backends: a second server block
# plays the backends (gzip on, chunked answers, 204, 304, a 5xx with an
# HTML page) and calls reach it with proxy_pass, as an operator would.
# What reaches a call: asyncx_call_pass_request_headers,
# asyncx_call_set_header, asyncx_call_hide_header; Accept-Encoding,
# ranges and conditions are not passed by default.

use lib 't/lib';
use Test::Nginx::Socket;

require './t/pipeline.pl';

# the backend server: TEST_NGINX_PORT + 5 (+1..+4 belong to other suites)
$ENV{TEST_NGINX_BACKEND_PORT} = ($ENV{TEST_NGINX_PORT} || 1984) + 5;

repeat_each(2);

plan tests => repeat_each() * (3 * blocks() + 24);

no_long_string();

add_block_preprocessor(sub {
    my $block = shift;

    # every block has the backend server
    $block->set_value("http_config", <<'_EOC_' . ($block->http_config // ''));
    log_format te 'backend sent $request_uri with transfer-encoding "$sent_http_transfer_encoding"';
    server {
        listen 127.0.0.1:$TEST_NGINX_BACKEND_PORT;
        default_type application/json;

        gzip on;
        gzip_types application/json;
        gzip_min_length 1;

        # the headers a call arrived with
        location = /headers {
            return 200 '{"accept_encoding":"$http_accept_encoding","cookie":"$http_cookie","authorization":"$http_authorization","tenant":"$http_x_tenant","range":"$http_range","if_none_match":"$http_if_none_match","method":"$request_method","args":"$args"}';
        }

        location = /user {
            return 200 '{"user_id":42,"name":"kim","padding":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}';
        }

        # no Content-Length: SSI removes it, HTTP/1.1 gets chunks
        # (the access log line goes to error.log for the test to see)
        location = /chunked {
            access_log logs/error.log te;
            ssi on;
            ssi_types application/json;
            return 200 '{"chunked":true,"items":[1,2,3]}';
        }

        location = /nocontent {
            return 204;
        }

        location = /notmodified {
            return 304;
        }

        location = /broken {
            default_type text/html;
            return 503 '<html><head><title>503 Service Unavailable</title></head><body>down for maintenance</body></html>';
        }
    }
_EOC_
});

# (the preamble is not expanded by the runner: perl fills the port in)
config_preamble(<<"_EOC_");
        asyncx_pipeline_answer exercise;
        location /backend/ {
            internal;
            proxy_http_version 1.1;
            proxy_pass http://127.0.0.1:$ENV{TEST_NGINX_BACKEND_PORT}/;
        }
_EOC_

run_tests();

__DATA__

=== TEST 1: a browser's Accept-Encoding: gzip does not make the backend compress
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s user=/backend/user;
    }
--- request
POST /p
{"id": 1}
--- more_headers
Accept-Encoding: gzip, deflate, br
--- response_body_filters eval
sub { $J->encode(pl_call(pl_dec($_[0]), "user")) . "\n" }
--- response_body
{"name":"kim","padding":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","user_id":42}
--- no_error_log
[warn]



=== TEST 2: by default a call gets the client's headers minus encoding, ranges and conditions
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s h=/backend/headers;
    }
--- request
POST /p
--- more_headers
Accept-Encoding: gzip
Cookie: session=abc
Authorization: Bearer t0k3n
X-Tenant: acme
Range: bytes=0-10
If-None-Match: "v1"
--- response_body_filters eval
sub { $J->encode(pl_call(pl_dec($_[0]), "h")) . "\n" }
--- response_body
{"accept_encoding":"","args":"","authorization":"Bearer t0k3n","cookie":"session=abc","if_none_match":"","method":"POST","range":"","tenant":"acme"}
--- no_error_log
[warn]



=== TEST 3: asyncx_call_hide_header keeps Cookie and Authorization from the calls
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_hide_header Cookie;
        asyncx_call_hide_header authorization;
        asyncx_stage s h=/backend/headers;
    }
--- request
POST /p
--- more_headers
Cookie: session=abc
Authorization: Bearer t0k3n
X-Tenant: acme
--- response_body_filters eval
sub { $J->encode(pl_call(pl_dec($_[0]), "h")) . "\n" }
--- response_body
{"accept_encoding":"","args":"","authorization":"","cookie":"","if_none_match":"","method":"POST","range":"","tenant":"acme"}
--- no_error_log
[warn]



=== TEST 4: pass_request_headers off: only what asyncx_call_set_header says (variables allowed)
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_pass_request_headers off;
        asyncx_call_set_header X-Tenant "t-$http_x_tenant_id";
        asyncx_call_set_header Authorization $http_x_api_key;
        asyncx_stage s h=/backend/headers;
    }
--- request
POST /p
--- more_headers
Cookie: session=abc
Authorization: Bearer t0k3n
X-Tenant-Id: 7
--- response_body_filters eval
sub { $J->encode(pl_call(pl_dec($_[0]), "h")) . "\n" }
--- response_body
{"accept_encoding":"","args":"","authorization":"","cookie":"","if_none_match":"","method":"POST","range":"","tenant":"t-7"}
--- no_error_log
[warn]



=== TEST 5: set_header inherited from the server level, replaced per location, empty removes
--- config
    asyncx_call_set_header X-Tenant server-level;
    location = /p {
        asyncx_pipeline;
        asyncx_stage s h=/backend/headers;
    }
    location = /q {
        asyncx_pipeline;
        asyncx_call_set_header Cookie "";
        asyncx_stage s h=/backend/headers;
    }
--- request eval
["POST /p", "POST /q"]
--- more_headers
Cookie: session=abc
X-Tenant: from-client
--- response_body_filters eval
sub { my $c = pl_call(pl_dec($_[0]), "h"); "$c->{tenant} [$c->{cookie}]\n" }
--- response_body eval
["server-level [session=abc]\n", "from-client []\n"]
--- no_error_log
[warn]



=== TEST 6: Accept-Encoding passed on purpose, answers decoded by "gunzip on"
--- skip_eval: 3: `$ENV{TEST_NGINX_BINARY} -V 2>&1` !~ /http_gunzip_module/
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_set_header Accept-Encoding $http_accept_encoding;
        asyncx_stage s user=/gz/user;
    }
    location /gz/ {
        internal;
        gunzip on;
        proxy_http_version 1.1;
        proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT/;
    }
--- request
POST /p
--- more_headers
Accept-Encoding: gzip
--- response_body_filters eval
sub { $J->encode(pl_call(pl_dec($_[0]), "user")) . "\n" }
--- response_body
{"name":"kim","padding":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","user_id":42}
--- no_error_log
[warn]



=== TEST 7: a compressed answer without gunzip: invalid_json, and the log says why
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_set_header Accept-Encoding gzip;
        asyncx_stage s user=/backend/user;
    }
--- request
POST /p
--- error_code: 502
--- response_body_filters eval
sub { pl_shape(pl_call(pl_dec($_[0]), "user")) }
--- response_body
{"elapsed_ms":"N","error":"answer is not valid JSON (Content-Encoding: gzip, \"gunzip on\" in the call's location decodes it)","kind":"invalid_json","status":200}
--- error_log
asyncx pipeline: call "user" failed: answer is not valid JSON (Content-Encoding: gzip



=== TEST 8: a chunked answer (no Content-Length) is captured whole
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s c=/backend/chunked;
    }
--- request
POST /p
--- response_body_filters eval
sub { $J->encode(pl_call(pl_dec($_[0]), "c")) . "\n" }
--- response_body
{"chunked":true,"items":[1,2,3]}
--- error_log
backend sent /chunked with transfer-encoding "chunked"



=== TEST 9: 204 No Content is a success without a value (null)
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s a=/backend/nocontent;
        asyncx_stage t h=/backend/headers;
    }
--- request
POST /p
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    $J->encode([pl_call($d, "a"), $d->{failed_calls} // []]) . "\n"
}
--- response_body
[null,[]]
--- no_error_log
[warn]



=== TEST 10: 304 Not Modified is a failed call (status 304)
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s a=/backend/notmodified;
    }
--- request
POST /p
--- error_code: 502
--- response_body_filters eval
sub { pl_shape(pl_call(pl_dec($_[0]), "a")) }
--- response_body
{"elapsed_ms":"N","error":"service answered 304","kind":"status","status":304}
--- error_log
asyncx pipeline: call "a" failed: service answered 304 (status)



=== TEST 11: a 503 with an HTML page: a status failure, the HTML is not spliced into the answer
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s a=/backend/broken b=/backend/user;
        asyncx_call_optional a '{"cached": true}';
    }
--- request
POST /p
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    pl_shape(pl_call($d, "a")) . ($_[0] =~ /<html>/ ? "html!" : "no html") . "\n"
}
--- response_body
{"elapsed_ms":"N","error":"service answered 503","fallback":{"cached":true},"kind":"status","optional":true,"status":503}
no html
--- error_log
asyncx pipeline: call "a" failed: service answered 503 (status), fallback used



=== TEST 12: the call's own location sees its headers in $http_* and $cookie_*
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_call_hide_header Cookie;
        asyncx_call_set_header User-Agent pipeline;
        asyncx_stage s a=/vars;
    }
    location = /vars {
        internal;
        default_type application/json;
        return 200 '{"cookie":"$http_cookie","session":"$cookie_session","ua":"$http_user_agent","accept":"$http_accept","ae":"$http_accept_encoding"}';
    }
--- request
POST /p
--- more_headers
Cookie: session=abc
User-Agent: browser/1.0
Accept: application/json
Accept-Encoding: gzip
--- response_body_filters eval
sub { $J->encode(pl_call(pl_dec($_[0]), "a")) . "\n" }
--- response_body
{"accept":"application/json","ae":"","cookie":"","session":"","ua":"pipeline"}
--- no_error_log
[warn]



=== TEST 13: by default the client's query string stays out of the calls, ?mode= is not read
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s h=/backend/headers?fixed=1;
    }
--- request
POST /p?admin=1&mode=sequential
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    pl_call($d, "h")->{args} . " " . $d->{mode} . "\n"
}
--- response_body
fixed=1 parallel
--- no_error_log
[warn]



=== TEST 14: asyncx_pipeline_pass_args on and asyncx_pipeline_mode_arg on
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_pipeline_pass_args on;
        asyncx_pipeline_mode_arg on;
        asyncx_stage s h=/backend/headers?fixed=1;
    }
--- request
POST /p?admin=1&mode=sequential
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    pl_call($d, "h")->{args} . " " . $d->{mode} . "\n"
}
--- response_body
fixed=1&admin=1&mode=sequential sequential
--- no_error_log
[warn]



=== TEST 15: an unknown mode is a 400 only where the mode argument is read
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s h=/backend/headers;
    }
    location = /q {
        asyncx_pipeline;
        asyncx_pipeline_mode_arg on;
        asyncx_stage s h=/backend/headers;
    }
--- request eval
["POST /p?mode=fast", "POST /q?mode=fast"]
--- error_code eval
[200, 400]
--- response_body_filters eval
sub { my $d = pl_dec($_[0]); ($d->{mode} // $d->{error}) . "\n" }
--- response_body eval
["parallel\n", "invalid mode \"fast\", use parallel or sequential\n"]



=== TEST 16: variables in call URIs: the path and the arguments
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s h=/backend/headers?id=$arg_user_id&fixed=1 u=/$arg_kind/user;
    }
--- request
POST /p?user_id=42&kind=backend
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    pl_call($d, "h")->{args} . " " . pl_call($d, "u")->{user_id} . "\n"
}
--- response_body
id=42&fixed=1 42
--- no_error_log
[warn]



=== TEST 16b: a fixed call path is percent-decoded as one with variables is: "/b%61ckend/user" reaches location /backend/
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s u=/b%61ckend/user;
    }
--- request
POST /p
--- response_body_filters eval
sub { pl_call(pl_dec($_[0]), "u")->{user_id} . "\n" }
--- response_body
42
--- no_error_log
[warn]



=== TEST 17: an evaluated URI that leaves its path, or smuggles arguments, fails the call (400)
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s u=/backend/$arg_who;
    }
--- request eval
["POST /p?who=..%2Fsecret", "POST /p?who=user?admin=1", "POST /p?who=", "POST /p?who=user"]
--- error_code eval
[400, 400, 502, 200]
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    my $u = pl_call($d, "u");
    ref $u eq 'HASH' && exists $u->{kind} ? "$u->{kind} $u->{status} $u->{error}\n"
                                          : "ok $u->{user_id}\n"
}
--- response_body eval
["invalid_uri 400 invalid URI \"/backend/..%2Fsecret\"\n",
 "invalid_uri 400 invalid URI \"/backend/user?admin=1\"\n",
 "status 405 service answered 405\n",
 "ok 42\n"]



=== TEST 18: a call's location answers with its error_page: a static file's "error_page 405 =200 $uri" (nginx's static module refuses POST), and a 404's page elsewhere
--- config
    location /static/ {
        error_page 405 =200 $uri;
    }
    location /gone/ {
        error_page 404 = /fallback;
    }
    location = /fallback {
        internal;
        return 200 '{"fallback":true}';
    }
    location = /p {
        asyncx_pipeline;
        asyncx_stage s f=/static/a.json g=/gone/x.json;
        asyncx_stage t h=/static/a.json;
    }
--- user_files
>>> static/a.json
{"file":"a"}
--- request
POST /p
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    $J->encode([pl_call($d, "f"), pl_call($d, "g"), pl_call($d, "h"),
                $d->{failed_calls} // []]) . "\n"
}
--- response_body
[{"file":"a"},{"fallback":true},{"file":"a"},[]]
--- no_error_log
[warn]



=== TEST 19: an error_page that fails too, or sends a redirect, is the call's failure (once: no loop, no hang)
--- config
    location /gone/ {
        error_page 404 /still-gone.json;
    }
    location /moved/ {
        error_page 404 http://example.org/elsewhere;
    }
    location = /p {
        asyncx_pipeline;
        asyncx_stage s g=/gone/x.json m=/moved/x.json;
        asyncx_call_optional g;
        asyncx_call_optional m;
    }
--- request
POST /p
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    CORE::join(" ", map { my $c = pl_call($d, $_); "$_:$c->{kind}:$c->{status}" } qw(g m)) . "\n"
}
--- response_body
g:status:404 m:status:302
--- error_log
call "g" failed: service answered 404 (status), fallback used
call "m" failed: service answered 302 (status), fallback used



=== TEST 20: failover in a call's location: proxy_intercept_errors and error_page to a named location
--- config
    location /failover/ {
        internal;
        proxy_intercept_errors on;
        error_page 404 = @fallback;
        proxy_pass http://127.0.0.1:$TEST_NGINX_BACKEND_PORT/;
    }
    location @fallback {
        return 200 '{"fallback":"named"}';
    }
    location = /p {
        asyncx_pipeline;
        asyncx_stage s a=/failover/no-such-thing u=/failover/user;
    }
--- request
POST /p
--- response_body_filters eval
sub {
    my $d = pl_dec($_[0]);
    $J->encode([pl_call($d, "a"), pl_call($d, "u")->{user_id}]) . "\n"
}
--- response_body
[{"fallback":"named"},42]
--- no_error_log
[warn]



=== TEST 21: a header's or a cookie's value fills one argument value: a "&" in it fails the call (400) instead of adding arguments; $args passes the client's arguments on purpose
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s h=/backend/headers?id=$http_x_user_id&c=$cookie_uid;
    }
    location = /q {
        asyncx_pipeline;
        asyncx_stage s h=/backend/headers?$args;
    }
--- request eval
["POST /p", "POST /p", "POST /p", "POST /q?a=1&b=2"]
--- more_headers eval
["X-User-Id: 42\r\nCookie: uid=7", "X-User-Id: 42&admin=1\r\nCookie: uid=7",
 "X-User-Id: 42\r\nCookie: uid=7%26role=admin; x=1", ""]
--- error_code eval
[200, 400, 200, 200]
--- response_body_filters eval
sub {
    my $h = pl_call(pl_dec($_[0]), "h");
    exists $h->{kind} ? "$h->{kind} $h->{status} $h->{error}\n" : "args $h->{args}\n"
}
--- response_body eval
["args id=42&c=7\n",
 "invalid_uri 400 invalid URI \"/backend/headers?id=42&admin=1&c=7\"\n",
 "args id=42&c=7%26role=admin\n",
 "args a=1&b=2\n"]



=== TEST 22: ... and so do $request_uri, $uri (a "%26" decoded) and $host in the arguments
--- config
    location = /r {
        asyncx_pipeline;
        asyncx_stage s h=/backend/headers?r=$request_uri;
    }
    location /u/ {
        asyncx_pipeline;
        asyncx_stage s h=/backend/headers?u=$uri;
    }
    location = /h {
        asyncx_pipeline;
        asyncx_stage s h=/backend/headers?h=$host;
    }
--- request eval
["POST /r", "POST /r?x&admin=1", "POST /u/a", "POST /u/a%26admin=1", "POST /h", "POST /h"]
--- more_headers eval
["", "", "", "", "Host: shop", "Host: shop&admin=1"]
--- error_code eval
[200, 400, 200, 400, 200, 400]
--- response_body_filters eval
sub {
    my $h = pl_call(pl_dec($_[0]), "h");
    exists $h->{kind} ? "$h->{kind} $h->{status}\n" : "args $h->{args}\n"
}
--- response_body eval
["args r=/r\n", "invalid_uri 400\n", "args u=/u/a\n", "invalid_uri 400\n",
 "args h=shop\n", "invalid_uri 400\n"]
