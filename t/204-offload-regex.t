# asyncx_regex_match: PCRE2 (JIT) bulk matching in the CPU pool over
# posted texts or data set records; bad patterns and catastrophic
# backtracking end in errors, never in a pinned thread.

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(2);

plan tests => repeat_each() * 84;

no_shuffle();
no_long_string();
run_tests();

__DATA__

=== TEST 1: texts: count, total and the first matches with their matched slice
--- config
    location = /regex/match {
        asyncx_regex_match;
    }
--- request
POST /regex/match
{"pattern": "\\d+", "texts": ["abc 123", "none", "x9", "7"], "limit": 2}
--- response_body_like chomp
^\{"pattern":"\\\\d\+","match_count":3,"total":4,"first_matches":\[\{"index":0,"text":"abc 123","match":"123"\},\{"index":2,"text":"x9","match":"9"\}\],"match_time":"\d+\.\d{3}\xEC\xB4\x88","match_ms":[\d.]+,"matches_per_s":\d+,"jit":true,"source":"texts","async":true\}$
--- no_error_log
[error]



=== TEST 2: data set records: "python" in the first 10,000 and 100,000 (DATASET.md)
--- config
    location = /regex/match {
        asyncx_regex_match;
    }
--- request eval
["POST /regex/match\n{\"pattern\": \"python\", \"count\": 10000, \"limit\": 1}",
 "POST /regex/match\n{\"pattern\": \"python\", \"count\": 100000, \"limit\": 0}"]
--- response_body_like eval
[qr/^\{"pattern":"python","match_count":72,"total":10000,"first_matches":\[\{"index":138,"text":"record 138: executor token await python async coroutine","match":"python"\}\],.*"source":"dataset","async":true\}$/,
 qr/^\{"pattern":"python","match_count":622,"total":100000,"first_matches":\[\],.*"source":"dataset","async":true\}$/]
--- no_error_log
[error]



=== TEST 3: records: word boundaries, alternation and captures
--- config
    location = /regex/match {
        asyncx_regex_match;
    }
--- request eval
["POST /regex/match\n{\"pattern\": \"\\\\bnginx\\\\b.*\\\\bfastapi\\\\b\", \"count\": 10000, \"limit\": 2}",
 "POST /regex/match\n{\"pattern\": \"python \\\\w+\", \"count\": 10000, \"limit\": 3}"]
--- response_body_like eval
[qr/^\{"pattern":"[^"]+","match_count":41,"total":10000,"first_matches":\[\{"index":172,"text":"record 172: event transform filter nginx fastapi starlette","match":"nginx fastapi"\},\{"index":266,"text":"record 266: nginx event parser worker buffer fastapi","match":"nginx event parser worker buffer fastapi"\}\],/,
 qr/^\{"pattern":"python \\\\w\+","match_count":57,"total":10000,"first_matches":\[\{"index":138,[^}]+"match":"python async"\},\{"index":168,[^}]+"match":"python future"\},\{"index":508,[^}]+"match":"python epoll"\}\],/]
--- no_error_log
[error]



=== TEST 4: UTF-8 patterns and texts; a text that is not UTF-8 makes the body not JSON (RFC 8259): 400
--- config
    location = /regex/match {
        asyncx_regex_match;
    }
--- request eval
["POST /regex/match\n{\"pattern\": \"\xEC\x95\x88.\", \"texts\": [\"\xEC\x95\x88\xEB\x85\x95\xED\x95\x98\xEC\x84\xB8\xEC\x9A\x94\", \"hello\", \"\\u00ff\xEC\x95\x88\"]}",
 "POST /regex/match\n{\"pattern\": \"\xEC\x95\x88.\", \"texts\": [\"\xEC\x95\x88\xEB\x85\x95\xED\x95\x98\xEC\x84\xB8\xEC\x9A\x94\", \"hello\", \"\xff\xEC\x95\x88\"]}"]
--- error_code eval
[200, 400]
--- response_body_like eval
[qr/^\{"pattern":"\xEC\x95\x88.","match_count":1,"total":3,"first_matches":\[\{"index":0,"text":"[^"]+","match":"\xEC\x95\x88\xEB\x85\x95"\}\],/,
 qr/^\{"error": "regex match: invalid JSON at byte 59: invalid UTF-8", "status": 400\}\n\z/]
--- no_error_log
[error]



=== TEST 5: a bad pattern is 400 with PCRE2's message and offset
--- config
    location = /regex/match {
        asyncx_regex_match;
    }
--- request eval
["POST /regex/match\n{\"pattern\": \"a(b\", \"texts\": [\"ab\"]}",
 "POST /regex/match\n{\"pattern\": \"[z-a]\", \"count\": 10}",
 "POST /regex/match\n{\"pattern\": \"x{2,1}\", \"count\": 10}"]
--- error_code eval
[400, 400, 400]
--- response_body eval
["{\"error\": \"regex match: invalid pattern at offset 3: missing closing parenthesis\", \"status\": 400}\n",
 "{\"error\": \"regex match: invalid pattern at offset 3: range out of order in character class\", \"status\": 400}\n",
 "{\"error\": \"regex match: invalid pattern at offset 5: numbers out of order in {} quantifier\", \"status\": 400}\n"]
--- no_error_log
[error]



=== TEST 6: catastrophic backtracking stops at the match limit: 422, quickly
--- config
    location = /regex/match {
        asyncx_regex_match;
    }
--- request eval
"POST /regex/match\n{\"pattern\": \"(a+)+\$\", \"texts\": [\"aaaa\", \"" . ("a" x 40) . "b\"]}"
--- error_code: 422
--- response_body_like chomp
^\{"error": "regex match: pattern hit the PCRE2 match limit \(asyncx_regex_match_limit\) on text 1 after \d+ ms: catastrophic backtracking\?", "status": 422\}$
--- timeout: 3
--- no_error_log
[error]



=== TEST 7: ... and the limit is configurable: a tiny limit trips on an easy text
--- config
    location = /regex/match {
        asyncx_regex_match_limit 10;
        asyncx_regex_match;
    }
--- request eval
"POST /regex/match\n{\"pattern\": \"(\\\\w)+\\\\d\", \"texts\": [\"" . ("ab" x 50) . "\"]}"
--- error_code: 422
--- response_body_like chomp
^\{"error": "regex match: pattern hit the PCRE2 match limit \(asyncx_regex_match_limit\) on text 0 after \d+ ms
--- no_error_log
[error]



=== TEST 8: the whole request is bounded by asyncx_regex_time_limit
--- config
    location = /regex/match {
        asyncx_regex_time_limit 1ms;
        asyncx_regex_match;
    }
--- request
POST /regex/match
{"pattern": "python", "count": 1000000}
--- error_code: 422
--- response_body_like chomp
^\{"error": "regex match: matching stopped after \d+ of 1000000 texts: over asyncx_regex_time_limit 1 ms", "status": 422\}$
--- no_error_log
[error]



=== TEST 8b: ... checked after every text: one that runs long (a match limit raised high) stops the request right after it
(the check came every 64 texts: 63 such texts held the thread for 2 s
under a 1 ms budget and were answered 200)
--- config
    location = /regex/match {
        asyncx_regex_match_limit 4294967295;
        asyncx_regex_time_limit 1ms;
        asyncx_regex_match;
    }
--- request eval
"POST /regex/match\n{\"pattern\": \"(a+)+\$\", \"texts\": ["
. join(", ", ("\"" . ("a" x 22) . "b\"") x 63) . "]}"
--- error_code: 422
--- response_body_like chomp
^\{"error": "regex match: matching stopped after ([1-9]|[1-5]\d|6[0-2]) of 63 texts: over asyncx_regex_time_limit 1 ms", "status": 422\}$
--- timeout: 30
--- no_error_log
[error]



=== TEST 8c: ... but a job whose every text is done is answered, even past the budget
--- config
    location = /regex/match {
        asyncx_regex_match_limit 4294967295;
        asyncx_regex_time_limit 1ms;
        asyncx_regex_match;
    }
--- request eval
"POST /regex/match\n{\"pattern\": \"(a+)+\$\", \"texts\": [\"" . ("a" x 22) . "b\"]}"
--- error_code: 200
--- response_body_like chomp
^\{"pattern":"\(a\+\)\+\$","match_count":0,"total":1,"first_matches":\[\],
--- timeout: 30
--- no_error_log
[error]



=== TEST 9: request shape errors are 400
--- config
    location = /regex/match {
        asyncx_regex_max_texts 1000;
        asyncx_regex_match;
    }
--- request eval
["POST /regex/match\n{\"texts\": [\"a\"]}",
 "POST /regex/match\n{\"pattern\": \"a\"}",
 "POST /regex/match\n{\"pattern\": \"a\", \"texts\": [\"a\"], \"count\": 3}",
 "POST /regex/match\n{\"pattern\": \"a\", \"texts\": [\"a\", 5]}",
 "POST /regex/match\n{\"pattern\": \"a\", \"count\": 1001}",
 "POST /regex/match\n{\"pattern\": \"a\", \"count\": 1.5}",
 "POST /regex/match\n{\"pattern\": \"a\", \"texts\": \"a\"}",
 "POST /regex/match\n{\"pattern\": \"a\", \"count\": 5, \"limit\": 101}",
 "POST /regex/match\n{\"pattern\": \"a\", \"texts\": [\"a\"]"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400, 400, 400]
--- response_body eval
["{\"error\": \"regex match: \\\"pattern\\\" (a string) is required\", \"status\": 400}\n",
 "{\"error\": \"regex match: give either \\\"texts\\\" (an array of strings) or \\\"count\\\" (data set records)\", \"status\": 400}\n",
 "{\"error\": \"regex match: give either \\\"texts\\\" (an array of strings) or \\\"count\\\" (data set records)\", \"status\": 400}\n",
 "{\"error\": \"regex match: texts[1] is not a string\", \"status\": 400}\n",
 "{\"error\": \"regex match: \\\"count\\\" must be an integer from 1 to 1000\", \"status\": 400}\n",
 "{\"error\": \"regex match: \\\"count\\\" must be an integer from 1 to 1000\", \"status\": 400}\n",
 "{\"error\": \"regex match: \\\"texts\\\" must be an array of strings\", \"status\": 400}\n",
 "{\"error\": \"regex match: \\\"limit\\\" must be an integer from 0 to 100\", \"status\": 400}\n",
 "{\"error\": \"regex match: invalid JSON at byte 31\", \"status\": 400}\n"]
--- no_error_log
[error]



=== TEST 9b: a declared body over asyncx_json_max_size is 413 before any of it is read: no "100 Continue" invites it, and what the client sends anyway is discarded (the next request on the connection is answered)
--- config
    location = /regex/match {
        asyncx_json_max_size 64;
        asyncx_regex_match;
    }
--- pipelined_requests eval
["POST /regex/match\n{\"pattern\": \"a\", \"texts\": [\"" . ("a" x 40) . "\"]}",
 "POST /regex/match\n{\"pattern\": \"a\", \"texts\": [\"ba\"]}"]
--- more_headers eval
["Expect: 100-continue", ""]
--- error_code eval
[413, 200]
--- raw_response_headers_unlike eval
["100 Continue", "100 Continue"]
--- response_body eval
["{\"error\": \"request body is larger than 64 bytes (asyncx_json_max_size)\", \"status\": 413}\n",
 qr/^\{"pattern":"a","match_count":1,"total":1,"first_matches":\[\{"index":0,"text":"ba","match":"a"\}\],.*"source":"texts","async":true\}$/]
--- grep_error_log eval
qr/asyncx: .*? \(status \d+\)/
--- grep_error_log_out eval
["asyncx: request body is larger than 64 bytes (asyncx_json_max_size) (status 413)\n", ""]
--- no_error_log
[error]



=== TEST 10: nginx -t: limits name the directive and the value
--- config
    location = /regex/match {
        asyncx_regex_match_limit 0;
        asyncx_regex_match;
    }
--- must_die
--- error_log
invalid value "0" in "asyncx_regex_match_limit", expected 1..4294967295
