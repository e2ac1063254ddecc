# asyncx_json_parse: POST /parse/json parses with cJSON in the CPU pool;
# an empty body generates the data set document (docs/dataset.md).

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(2);

plan tests => repeat_each() * 67;

no_shuffle();
no_long_string();
run_tests();

__DATA__

=== TEST 1: empty body: the 10,000-item document is generated and parsed
--- config
    location = /parse/json {
        asyncx_json_parse;
    }
--- request
POST /parse/json
--- response_body_like chomp
^\{"parsed_items":10000,"parse_time":"\d+\.\d\d\xEC\xB4\x88","parse_ms":[\d.]+,"bytes":1163303,"mb_per_s":[\d.e+]+,"type":"array","source":"generated","generate_ms":[\d.]+,"async":true\}$
--- no_error_log
[error]



=== TEST 2: ?items= sizes the generated document (DATASET.md lengths)
--- config
    location = /parse/json {
        asyncx_json_parse;
    }
--- request eval
["POST /parse/json?items=1", "POST /parse/json?items=100"]
--- response_body_like eval
[qr/^\{"parsed_items":1,"parse_time":"[^"]+","parse_ms":[\d.]+,"bytes":110,/,
 qr/^\{"parsed_items":100,"parse_time":"[^"]+","parse_ms":[\d.]+,"bytes":11232,/]
--- no_error_log
[error]



=== TEST 3: a posted array, object and scalar
--- config
    location = /parse/json {
        asyncx_json_parse;
    }
--- request eval
["POST /parse/json\n[1, 2, {\"a\": [3, 4]}, \"x\"]",
 "POST /parse/json\n{\"a\": 1, \"b\": [1, 2], \"c\": null}",
 "POST /parse/json\n42"]
--- response_body_like eval
[qr/^\{"parsed_items":4,"parse_time":"0\.\d\d\xEC\xB4\x88","parse_ms":[\d.]+,"bytes":26,"mb_per_s":[\d.e+-]+,"type":"array","source":"body","async":true\}$/,
 qr/^\{"parsed_items":3,.*"bytes":32,.*"type":"object","source":"body","async":true\}$/,
 qr/^\{"parsed_items":1,.*"bytes":2,.*"type":"scalar","source":"body","async":true\}$/]
--- no_error_log
[error]



=== TEST 4: invalid JSON is 400 naming the offset of the first byte refused ("nul": byte 3, where the "l" is missing)
--- config
    location = /parse/json {
        asyncx_json_parse;
    }
--- request eval
["POST /parse/json\n{\"a\": [1, 2,, 3]}",
 "POST /parse/json\n{\"a\": 1} trailing",
 "POST /parse/json\n{\"a\": \"unterminated",
 "POST /parse/json\nnul"]
--- error_code eval
[400, 400, 400, 400]
--- response_body eval
["{\"error\": \"json parse: invalid JSON at byte 12\", \"status\": 400}\n",
 "{\"error\": \"json parse: invalid JSON at byte 9: data after the document\", \"status\": 400}\n",
 "{\"error\": \"json parse: invalid JSON at byte 19\", \"status\": 400}\n",
 "{\"error\": \"json parse: invalid JSON at byte 3\", \"status\": 400}\n"]
--- no_error_log
[error]



=== TEST 5: ?items= out of range is 400; GET is 405
--- config
    location = /parse/json {
        asyncx_json_max_items 500;
        asyncx_json_parse;
    }
--- request eval
["POST /parse/json?items=0", "POST /parse/json?items=501", "POST /parse/json?items=x", "GET /parse/json"]
--- error_code eval
[400, 400, 400, 405]
--- response_body eval
["{\"error\": \"json parse: \\\"items\\\" must be an integer from 1 to 500\", \"status\": 400}\n",
 "{\"error\": \"json parse: \\\"items\\\" must be an integer from 1 to 500\", \"status\": 400}\n",
 "{\"error\": \"json parse: \\\"items\\\" must be an integer from 1 to 500\", \"status\": 400}\n",
 "{\"error\": \"json parse: method not allowed, use POST\", \"status\": 405}\n"]
--- no_error_log
[error]



=== TEST 5b: without ?items= the generated document obeys asyncx_json_max_items too
--- config
    location = /parse/json {
        asyncx_json_max_items 500;
        asyncx_json_parse;
    }
--- request
POST /parse/json
--- response_body_like chomp
^\{"parsed_items":500,"parse_time":"[^"]+","parse_ms":[\d.]+,"bytes":57112,.*"source":"generated","generate_ms":[\d.]+,"async":true\}$
--- no_error_log
[error]



=== TEST 6: a large posted document, buffered to a temp file, is read in the thread
--- config
    client_body_buffer_size 8k;
    location = /parse/json {
        asyncx_json_parse;
    }
--- request eval
"POST /parse/json\n[" . CORE::join(", ", map { "{\"id\": $_, \"v\": \"" . ("x" x 20) . "\"}" } 0 .. 19999) . "]"
--- response_body_like chomp
^\{"parsed_items":20000,"parse_time":"[^"]+","parse_ms":[\d.]+,"bytes":\d{6},.*"source":"body","async":true\}$
--- error_log
a client request body is buffered to a temporary file
--- no_error_log
[error]



=== TEST 7: bodies over client_max_body_size are refused by nginx (413)
--- config
    location = /parse/json {
        client_max_body_size 100;
        asyncx_json_parse;
    }
--- request eval
"POST /parse/json\n[" . ("1, " x 100) . "1]"
--- error_code: 413
--- response_body_like: 413 Request Entity Too Large
--- no_error_log
asyncx offload: json parse posted



=== TEST 8: a declared body over asyncx_json_max_size is 413 before any of it is read: no "100 Continue" invites it, and what the client sends anyway is discarded (the next request on the connection is answered)
--- config
    location = /parse/json {
        asyncx_json_max_size 16;
        asyncx_json_parse;
    }
--- pipelined_requests eval
["POST /parse/json\n[1,2,3,4,5,6,7,8,9]", "POST /parse/json\n[1,2,3]"]
--- more_headers eval
["Expect: 100-continue", ""]
--- error_code eval
[413, 200]
--- raw_response_headers_unlike eval
["100 Continue", "100 Continue"]
--- response_body eval
["{\"error\": \"request body is larger than 16 bytes (asyncx_json_max_size)\", \"status\": 413}\n",
 qr/^\{"parsed_items":3,.*"bytes":7,.*"type":"array","source":"body","async":true\}$/]
--- grep_error_log eval
qr/asyncx: .*? \(status \d+\)/
--- grep_error_log_out eval
["asyncx: request body is larger than 16 bytes (asyncx_json_max_size) (status 413)\n", ""]
--- no_error_log
[error]



=== TEST 9: ... and a client that waits for "100 Continue" (as curl does) gets the 413 at once, without sending the body
--- config
    lingering_timeout 100ms;
    location = /parse/json {
        asyncx_json_max_size 16;
        asyncx_json_parse;
    }
--- raw_request eval
"POST /parse/json HTTP/1.1\r\nHost: localhost\r\nExpect: 100-continue\r\nContent-Length: 2097153\r\n\r\n"
--- error_code: 413
--- raw_response_headers_unlike: 100 Continue
--- response_body
{"error": "request body is larger than 16 bytes (asyncx_json_max_size)", "status": 413}
--- grep_error_log eval
qr/asyncx: .*? \(status \d+\)/
--- grep_error_log_out
asyncx: request body is larger than 16 bytes (asyncx_json_max_size) (status 413)
--- no_error_log
[error]
