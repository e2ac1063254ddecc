# One JSON policy for every endpoint that takes JSON (RFC 8259,
# src/ngx_http_asyncx_json.c): /auth/hash, /auth/verify, /regex/match,
# /parse/json and a staged pipeline (/orders/process) refuse the same
# bodies with the same 400, naming the byte and the reason.  Strings keep
# their whole length: where the module uses a string (password, hash,
# pattern, texts), a "\u0000" that cJSON would cut it at is refused, never
# truncated; where it only counts or passes the document on, it is JSON
# like any other.  A member given twice is refused where the handler
# reads it.  The mock echoes what it cannot parse as valid JSON.

use lib 't/lib';
use Test::Nginx::Socket;
use JSON::PP ();

# the endpoints and the prefix their errors carry
our @endpoints = (["/auth/hash", "password hash: "],
                  ["/auth/verify", "password verify: "],
                  ["/regex/match", "regex match: "],
                  ["/parse/json", "json parse: "],
                  ["/orders/process", ""]);

# bodies every endpoint refuses: [body, byte, reason]
our @bad = (
    ["\0{\"password\": \"x\"}", 0, undef],
    ["\x01{\"password\": \"x\"}", 0, undef],
    ["\x1f{\"password\": \"x\"}", 0, undef],
    ["\xEF\xBB\xBF{\"password\": \"x\"}", 0, undef],
    ["{\"password\": \"a\tb\"}", 15, "control character in a string"],
    ["{\"password\": \"a\nb\"}", 15, "control character in a string"],
    ["{\"password\": \"\\ud800\"}", 20, "unpaired UTF-16 surrogate in a string"],
    ["{\"password\": \"\xff\"}", 14, "invalid UTF-8"],
    ["{\"password\": \"\xC0\xAE\"}", 14, "invalid UTF-8"],
    ["{\"password\": \"x\"}\0", 17, "data after the document"],
    ["{\"password\": \"x\"} {}", 18, "data after the document"],
);

our (@requests, @codes, @bodies);
for my $e (@endpoints) {
    for my $b (@bad) {
        push @requests, "POST $e->[0]\n$b->[0]";
        push @codes, 400;
        push @bodies, "{\"error\": \"$e->[1]invalid JSON at byte $b->[1]"
                      . (defined $b->[2] ? ": $b->[2]" : "")
                      . "\", \"status\": 400}\n";
    }
}

our $locations = <<'_EOC_';
    location = /auth/hash { asyncx_pbkdf2_iterations 1000; asyncx_password_hash; }
    location = /auth/verify { asyncx_password_verify; }
    location = /regex/match { asyncx_regex_match; }
    location = /parse/json { asyncx_json_parse; }
    location = /orders/process {
        asyncx_pipeline;
        asyncx_stage s a=/svc/a;
    }
    location = /svc/a { internal; asyncx_mock_service name=a; }
    location = /mock { asyncx_mock_service name=m echo=body; }
    location = /orders/echo {
        asyncx_pipeline;
        asyncx_stage s e=/svc/echo;
    }
    location = /svc/echo { internal; asyncx_mock_service name=e echo=body; }
_EOC_

# the mock's answer, parsed strictly (UTF-8 and JSON): what it received
sub received {
    my $r = eval { JSON::PP->new->utf8->decode($_[0]) };
    return "not JSON: $@ $_[0]" unless $r;
    return JSON::PP->new->canonical->ascii->encode($r->{received});
}

# the deepest nesting of a JSON text, outside strings
sub nesting {
    my ($max, $d, $in, $esc) = (0, 0, 0, 0);
    for my $c (split //, $_[0]) {
        if ($in) { if ($esc) { $esc = 0 } elsif ($c eq '\\') { $esc = 1 }
                   elsif ($c eq '"') { $in = 0 } next }
        if ($c eq '"') { $in = 1 }
        elsif ($c eq '[' || $c eq '{') { $max = $d if ++$d > $max }
        elsif ($c eq ']' || $c eq '}') { $d-- }
    }
    return $max;
}

repeat_each(1);

# status, body and error log per request; 2 checks per must_die block
plan tests => repeat_each() * (3 * (@requests + 4 + 2 + 3 + 2 + 4 + 3 + 4) + 2 * 3 + 4);

no_shuffle();
no_long_string();
run_tests();

__DATA__

=== TEST 1: every JSON endpoint refuses the same bodies with the same 400 (leading NUL or control bytes, a BOM, raw control characters, U+0000, unpaired surrogates, invalid UTF-8, trailing data)
--- config eval: $main::locations
--- request eval: [@main::requests]
--- error_code eval: [@main::codes]
--- response_body eval: [@main::bodies]
--- no_error_log
[error]



=== TEST 2: NUL inside a JSON string never truncates it: a hash of "secret\u0000..." is not made, "secret\u0000x" never verifies as "secret", "a\u0000b" is not matched as "a"; not a syntax error ("invalid JSON"), since it is JSON
--- config eval: $main::locations
--- request eval
["POST /auth/hash\n{\"password\": \"secret\\u0000-and-a-long-suffix\"}",
 "POST /auth/verify\n{\"password\": \"secret\\u0000x\", \"hash\": \"pbkdf2_sha256\$1000\$abcdefghijklmnopqrstuv\$1nE4fvOmiD+ZePp39y6TYTXfkn5HEwJDyz8e6UkQE1w=\"}",
 "POST /regex/match\n{\"pattern\": \"a\\u0000b\", \"texts\": [\"axb\", \"a\"]}",
 "POST /regex/match\n{\"pattern\": \"a\", \"texts\": [\"b\", \"a\\u0000b\"]}"]
--- error_code eval
[400, 400, 400, 400]
--- response_body eval
["{\"error\": \"password hash: U+0000 (\\\\u0000) in a string at byte 20: refused, it would cut the string short\", \"status\": 400}\n",
 "{\"error\": \"password verify: U+0000 (\\\\u0000) in a string at byte 20: refused, it would cut the string short\", \"status\": 400}\n",
 "{\"error\": \"regex match: U+0000 (\\\\u0000) in a string at byte 14: refused, it would cut the string short\", \"status\": 400}\n",
 "{\"error\": \"regex match: U+0000 (\\\\u0000) in a string at byte 34: refused, it would cut the string short\", \"status\": 400}\n"]
--- no_error_log
[error]



=== TEST 2a: where the document is only counted or passed on, U+0000 is JSON like any other: /parse/json counts it, a pipeline's calls get it whole
--- config eval: $main::locations
--- request eval
["POST /parse/json\n{\"a\\u0000b\": \"c\\u0000d\", \"k\": [\"\\u0000\"]}",
 "POST /orders/echo\n{\"note\": \"x\\u0000y\"}"]
--- response_body_like eval
[qr/^\{"parsed_items":2,/,
 qr/"body":"\{\\"request\\":\{\\"note\\": \\"x\\\\u0000y\\"\},/]
--- no_error_log
[error]



=== TEST 3: ... while the same documents without the NUL work, and escapes keep their meaning (the hash above is "secret")
--- config eval: $main::locations
--- request eval
["POST /auth/verify\n{\"password\": \"secret\", \"hash\": \"pbkdf2_sha256\$1000\$abcdefghijklmnopqrstuv\$1nE4fvOmiD+ZePp39y6TYTXfkn5HEwJDyz8e6UkQE1w=\"}",
 "POST /regex/match\n{\"pattern\": \"a\\\\x00?b\", \"texts\": [\"ab\", \"a\\u0001b\", \"\\ud83d\\ude00b\"]}",
 "POST /parse/json\n \t\r\n[\"\\u00e9\", \"\\ud83d\\ude00\", \"\\/\"] \r\n"]
--- response_body_like eval
[qr/^\{"valid":true,/,
 qr/^\{"pattern":"a\\\\x00\?b","match_count":1,"total":3,"first_matches":\[\{"index":0,"text":"ab","match":"ab"\}\],/,
 qr/^\{"parsed_items":3,/]
--- no_error_log
[error]



=== TEST 4: a member the handler reads may not be given twice (which one counts would depend on the parser)
--- config eval: $main::locations
--- request eval
["POST /auth/hash\n{\"password\": \"a\", \"password\": \"b\"}",
 "POST /auth/verify\n{\"password\": \"a\", \"hash\": \"x\", \"hash\": \"y\"}",
 "POST /regex/match\n{\"pattern\": \"a\", \"pattern\": \"b\", \"count\": 1}",
 "POST /regex/match\n{\"pattern\": \"a\", \"count\": 1, \"count\": 2}"]
--- error_code eval
[400, 400, 400, 400]
--- response_body eval
["{\"error\": \"password hash: duplicate member \\\"password\\\"\", \"status\": 400}\n",
 "{\"error\": \"password verify: duplicate member \\\"hash\\\"\", \"status\": 400}\n",
 "{\"error\": \"regex match: duplicate member \\\"pattern\\\"\", \"status\": 400}\n",
 "{\"error\": \"regex match: duplicate member \\\"count\\\"\", \"status\": 400}\n"]
--- no_error_log
[error]



=== TEST 5: nesting: 1000 levels (cJSON's own limit) pass, 1001 are refused with the reason; the pipeline, which wraps a body in its own JSON, takes 992
--- config eval: $main::locations
--- request eval
["POST /parse/json\n" . ("[" x 1000) . ("]" x 1000),
 "POST /parse/json\n" . ("[" x 1001) . ("]" x 1001),
 "POST /orders/process\n" . ("[" x 993) . ("]" x 993)]
--- error_code eval
[200, 400, 400]
--- response_body_like eval
[qr/^\{"parsed_items":1,/,
 qr/^\{"error": "json parse: invalid JSON at byte 1000: nested deeper than 1000 levels", "status": 400\}\n\z/,
 qr/^\{"error": "invalid JSON at byte 992: nested deeper than the module can wrap it \(1000 levels in all\)", "status": 400\}\n\z/]
--- no_error_log
[error]



=== TEST 5b: a body the pipeline takes, echoed by its own mock: the call succeeds and the answer stays within 1000 levels (deeper, the mock echoes it as a string)
--- config eval: $main::locations
--- request eval
["POST /orders/echo\n" . ("[" x 992) . ("]" x 992),
 "POST /orders/echo\n" . ("[" x 980) . ("]" x 980)]
--- response_body_filters eval
sub {
    # the answer's nesting and the echo call's outcome
    my $max = main::nesting($_[0]);
    my ($outcome) = $_[0] =~ /"outcome":\s*"(\w+)"/;
    "depth_ok=" . ($max <= 1000 ? 1 : 0) . " outcome=" . ($outcome // '?') . "\n"
}
--- error_code eval
[200, 200]
--- response_body eval
["depth_ok=1 outcome=ok\n", "depth_ok=1 outcome=ok\n"]
--- no_error_log
[error]



=== TEST 5c: a call's fallback is held to the depth of a call's answer: 992 levels are taken and the answer stays within 1000
--- config eval
"location = /p {
    asyncx_pipeline;
    asyncx_stage s1 a=/broken;
    asyncx_stage s2 b=/echo;
    asyncx_call_optional a '" . ("[" x 992) . ("]" x 992) . "';
}
location = /broken { return 500; }
location = /echo { asyncx_mock_service name=b echo=body; subrequest_output_buffer_size 64k; }"
--- request
POST /p
--- response_body_filters eval
sub {
    my $max = main::nesting($_[0]);
    # the pipeline's outcome is the answer's last member
    my @outcomes = $_[0] =~ /"outcome":\s*"(\w+)"/g;
    "depth_ok=" . ($max <= 1000 ? 1 : 0) . " deep=" . ($max >= 992 ? 1 : 0)
    . " outcome=" . ($outcomes[-1] // '?') . "\n"
}
--- error_code: 200
--- response_body
depth_ok=1 deep=1 outcome=ok



=== TEST 5d: nginx -t: a fallback deeper than a call's answer may be is refused (the answer was 1003 levels deep)
--- config eval
"location = /p {
    asyncx_pipeline;
    asyncx_stage s1 a=/broken;
    asyncx_call_optional a '" . ("[" x 993) . ("]" x 993) . "';
}"
--- must_die
--- error_log
of call "a" in "asyncx_call_optional": nested deeper than the module can wrap it (1000 levels in all)



=== TEST 6: the mock parses bodies under the same policy; what it refuses it echoes as a string, whole and valid UTF-8 (NUL as \u0000, other bytes as \xNN)
--- config eval: $main::locations
--- request eval
["POST /mock\n{\"a\": \"b\\u00e9\"}",
 "POST /mock\n{\"a\": \"b\\u0000c\"}",
 "POST /mock?x=%FF\na\x00b\xff\xfec\nd",
 "POST /mock\n\xEF\xBB\xBF[1]"]
--- response_body_filters eval
\&main::received
--- response_body eval
["{\"args\":\"\",\"body\":{\"a\":\"b\\u00e9\"},\"bytes\":16,\"method\":\"POST\"}",
 "{\"args\":\"\",\"body\":\"{\\\"a\\\": \\\"b\\\\u0000c\\\"}\",\"bytes\":17,\"method\":\"POST\"}",
 "{\"args\":\"x=%FF\",\"body\":\"a\\u0000b\\\\xff\\\\xfec\\nd\",\"bytes\":8,\"method\":\"POST\"}",
 "{\"args\":\"\",\"body\":\"\\ufeff[1]\",\"bytes\":6,\"method\":\"POST\"}"]
--- no_error_log
[error]



=== TEST 7: fallbacks in the configuration follow the policy too
--- config
    location = /p {
        asyncx_pipeline;
        asyncx_stage s a=/a;
        asyncx_call_optional a '{"x": "\udc00"}';
    }
--- must_die
--- error_log
invalid fallback "{"x": "\udc00"}" of call "a" in "asyncx_call_optional": unpaired UTF-16 surrogate in a string



=== TEST 8: ... and so does the mock's json=
--- config
    location = /m {
        asyncx_mock_service 'json={"a": "\ud800"}';
    }
--- must_die
--- error_log
invalid value "json={"a": "\ud800"}" in "asyncx_mock_service", expected a JSON object



=== TEST 8b: the mock's json= refuses U+0000 in a string as the handlers do, saying so
--- config
    location = /m {
        asyncx_mock_service 'json={"a": "x\u0000y"}';
    }
--- must_die
--- error_log
invalid value "json={"a": "x\u0000y"}" in "asyncx_mock_service", U+0000 (\u0000) in a string at byte 8: refused, it would cut the string short
