# Every number, size and time directive of the module (the SSE and
# limiter directives are covered by their own suites): 0 where it has no
# meaning, negative values and values that overflow are refused by
# nginx -t with the directive, the value and the accepted range
# (ngx_http_asyncx_conf_set_bounded, one setter for all of them).

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(1);

plan tests => repeat_each() * 78;

no_shuffle();
no_long_string();
run_tests();

__DATA__

=== TEST 1: asyncx_call_timeout 0: 0 is refused
--- config
    location = /t {
        asyncx_call_timeout 0;
        asyncx_pipeline; asyncx_stage s a=/a;
    }
--- must_die
--- error_log
invalid value "0" in "asyncx_call_timeout", expected 1..2147483647 ms



=== TEST 2: asyncx_call_timeout 2147484s: too large is refused
--- config
    location = /t {
        asyncx_call_timeout 2147484s;
        asyncx_pipeline; asyncx_stage s a=/a;
    }
--- must_die
--- error_log
invalid value "2147484s" in "asyncx_call_timeout", expected 1..2147483647 ms



=== TEST 2b: asyncx_call_timeout 2147483646: a bare number is seconds, and the message says so
--- config
    location = /t {
        asyncx_call_timeout 2147483646;
        asyncx_pipeline; asyncx_stage s a=/a;
    }
--- must_die
--- error_log
invalid value "2147483646" in "asyncx_call_timeout", expected 1..2147483647 ms (a number without a unit is seconds)



=== TEST 2c: asyncx_call_timeout 2147483ms: the same digits with a unit are taken, and no hint is given for a unit
--- config
    location = /t {
        asyncx_call_timeout 2147483ms;
        asyncx_pipeline; asyncx_stage s a=/a;
    }
    location = /a {
        return 200 '{"ok": true}';
    }
--- request
GET /t
--- error_code: 200
--- no_error_log
a number without a unit is seconds



=== TEST 2d: asyncx_pipeline_error_status 444: nginx's own codes are refused (they would go out as a status line)
--- config
    location = /t {
        asyncx_pipeline_error_status 444;
        asyncx_pipeline; asyncx_stage s a=/a;
    }
--- must_die
--- error_log
invalid value "444" in "asyncx_pipeline_error_status", expected 400..599 but not nginx's own 444, 494..497, 499



=== TEST 2e: asyncx_pipeline_error_status 497 is refused too
--- config
    location = /t {
        asyncx_pipeline_error_status 497;
        asyncx_pipeline; asyncx_stage s a=/a;
    }
--- must_die
--- error_log
invalid value "497" in "asyncx_pipeline_error_status", expected 400..599 but not nginx's own 444, 494..497, 499



=== TEST 3: asyncx_call_timeout 99999999999999999999d: too large is refused
--- config
    location = /t {
        asyncx_call_timeout 99999999999999999999d;
        asyncx_pipeline; asyncx_stage s a=/a;
    }
--- must_die
--- error_log
invalid value "99999999999999999999d" in "asyncx_call_timeout", expected 1..2147483647 ms



=== TEST 4: asyncx_pipeline_error_status 0: 0 is refused
--- config
    location = /t {
        asyncx_pipeline_error_status 0;
        asyncx_pipeline; asyncx_stage s a=/a;
    }
--- must_die
--- error_log
invalid value "0" in "asyncx_pipeline_error_status", expected 400..599



=== TEST 5: asyncx_pipeline_error_status 18446744073709552016: too large is refused
--- config
    location = /t {
        asyncx_pipeline_error_status 18446744073709552016;
        asyncx_pipeline; asyncx_stage s a=/a;
    }
--- must_die
--- error_log
invalid value "18446744073709552016" in "asyncx_pipeline_error_status", expected 400..599



=== TEST 6: asyncx_file_max_size 0: 0 is refused
--- config
    location = /t {
        asyncx_file_max_size 0;
        asyncx_file_root html; asyncx_file_read;
    }
--- must_die
--- error_log
invalid value "0" in "asyncx_file_max_size", expected 1..1073741824 bytes



=== TEST 7: asyncx_file_max_size 9223372036854775808: too large is refused
--- config
    location = /t {
        asyncx_file_max_size 9223372036854775808;
        asyncx_file_root html; asyncx_file_read;
    }
--- must_die
--- error_log
invalid value "9223372036854775808" in "asyncx_file_max_size", expected 1..1073741824 bytes



=== TEST 8: asyncx_file_max_size 2g: too large is refused
--- config
    location = /t {
        asyncx_file_max_size 2g;
        asyncx_file_root html; asyncx_file_read;
    }
--- must_die
--- error_log
invalid value "2g" in "asyncx_file_max_size", expected 1..1073741824 bytes



=== TEST 9: asyncx_pbkdf2_iterations 0: 0 is refused
--- config
    location = /t {
        asyncx_pbkdf2_iterations 0;
        asyncx_password_hash;
    }
--- must_die
--- error_log
invalid value "0" in "asyncx_pbkdf2_iterations", expected 1..2147483647



=== TEST 10: asyncx_pbkdf2_iterations 4294967297: too large is refused
--- config
    location = /t {
        asyncx_pbkdf2_iterations 4294967297;
        asyncx_password_hash;
    }
--- must_die
--- error_log
invalid value "4294967297" in "asyncx_pbkdf2_iterations", expected 1..2147483647



=== TEST 11: asyncx_pbkdf2_max_iterations 0: 0 is refused
--- config
    location = /t {
        asyncx_pbkdf2_max_iterations 0;
        asyncx_password_verify;
    }
--- must_die
--- error_log
invalid value "0" in "asyncx_pbkdf2_max_iterations", expected 1..2147483647



=== TEST 12: asyncx_pbkdf2_max_iterations 18446744073709551617: too large is refused
--- config
    location = /t {
        asyncx_pbkdf2_max_iterations 18446744073709551617;
        asyncx_password_verify;
    }
--- must_die
--- error_log
invalid value "18446744073709551617" in "asyncx_pbkdf2_max_iterations", expected 1..2147483647



=== TEST 13: asyncx_password_max_length 0: 0 is refused
--- config
    location = /t {
        asyncx_password_max_length 0;
        asyncx_password_hash;
    }
--- must_die
--- error_log
invalid value "0" in "asyncx_password_max_length", expected 1..4096 bytes



=== TEST 14: asyncx_password_max_length 16777216g: too large is refused
--- config
    location = /t {
        asyncx_password_max_length 16777216g;
        asyncx_password_hash;
    }
--- must_die
--- error_log
invalid value "16777216g" in "asyncx_password_max_length", expected 1..4096 bytes



=== TEST 15: asyncx_json_max_items 0: 0 is refused
--- config
    location = /t {
        asyncx_json_max_items 0;
        asyncx_json_parse;
    }
--- must_die
--- error_log
invalid value "0" in "asyncx_json_max_items", expected 1..1000000



=== TEST 16: asyncx_json_max_items 1000001: too large is refused
--- config
    location = /t {
        asyncx_json_max_items 1000001;
        asyncx_json_parse;
    }
--- must_die
--- error_log
invalid value "1000001" in "asyncx_json_max_items", expected 1..1000000



=== TEST 17: asyncx_regex_match_limit 0: 0 is refused
--- config
    location = /t {
        asyncx_regex_match_limit 0;
        asyncx_regex_match;
    }
--- must_die
--- error_log
invalid value "0" in "asyncx_regex_match_limit", expected 1..4294967295



=== TEST 18: asyncx_regex_match_limit 4294967296: too large is refused
--- config
    location = /t {
        asyncx_regex_match_limit 4294967296;
        asyncx_regex_match;
    }
--- must_die
--- error_log
invalid value "4294967296" in "asyncx_regex_match_limit", expected 1..4294967295



=== TEST 19: asyncx_regex_depth_limit 0: 0 is refused
--- config
    location = /t {
        asyncx_regex_depth_limit 0;
        asyncx_regex_match;
    }
--- must_die
--- error_log
invalid value "0" in "asyncx_regex_depth_limit", expected 1..4294967295



=== TEST 20: asyncx_regex_depth_limit 99999999999999999999: too large is refused
--- config
    location = /t {
        asyncx_regex_depth_limit 99999999999999999999;
        asyncx_regex_match;
    }
--- must_die
--- error_log
invalid value "99999999999999999999" in "asyncx_regex_depth_limit", expected 1..4294967295



=== TEST 21: asyncx_regex_max_texts 0: 0 is refused
--- config
    location = /t {
        asyncx_regex_max_texts 0;
        asyncx_regex_match;
    }
--- must_die
--- error_log
invalid value "0" in "asyncx_regex_max_texts", expected 1..10000000



=== TEST 22: asyncx_regex_max_texts 10000001: too large is refused
--- config
    location = /t {
        asyncx_regex_max_texts 10000001;
        asyncx_regex_match;
    }
--- must_die
--- error_log
invalid value "10000001" in "asyncx_regex_max_texts", expected 1..10000000



=== TEST 23: asyncx_regex_time_limit 0: 0 is refused
--- config
    location = /t {
        asyncx_regex_time_limit 0;
        asyncx_regex_match;
    }
--- must_die
--- error_log
invalid value "0" in "asyncx_regex_time_limit", expected 1..3600000 ms



=== TEST 24: asyncx_regex_time_limit 2h: too large is refused
--- config
    location = /t {
        asyncx_regex_time_limit 2h;
        asyncx_regex_match;
    }
--- must_die
--- error_log
invalid value "2h" in "asyncx_regex_time_limit", expected 1..3600000 ms



=== TEST 25: asyncx_regex_time_limit -1s: negative is refused
--- config
    location = /t {
        asyncx_regex_time_limit -1s;
        asyncx_regex_match;
    }
--- must_die
--- error_log
invalid value "-1s" in "asyncx_regex_time_limit", expected 1..3600000 ms



=== TEST 26: asyncx_mock_service delay= and max_delay= beyond the timer range are refused
--- config
    location = /t {
        asyncx_mock_service delay=2147484s;
    }
--- must_die
--- error_log
invalid value "delay=2147484s" in "asyncx_mock_service", expected 0..2147483647 ms



=== TEST 27: asyncx_mock_service max_delay= that overflows is refused
--- config
    location = /t {
        asyncx_mock_service max_delay=99999999999999999999h;
    }
--- must_die
--- error_log
invalid value "max_delay=99999999999999999999h" in "asyncx_mock_service", expected 0..2147483647 ms



=== TEST 28: asyncx_mock_service delay=0 answers at once; max_delay=0 lets no request ask for a delay
--- config
    location = /t {
        asyncx_mock_service name=t delay=0 max_delay=0 echo=off;
    }
--- request eval
["GET /t", "GET /t?delay=0", "GET /t?delay=1ms"]
--- error_code eval
[200, 200, 400]
--- response_body eval
["{\"service\":\"t\",\"delay_ms\":0}\n",
 "{\"service\":\"t\",\"delay_ms\":0}\n",
 "{\"error\": \"delay \\\"1ms\\\" exceeds the maximum of 0 ms\", \"status\": 400}\n"]
--- no_error_log
[error]



=== TEST 29: the largest accepted values start
--- config
    location = /p {
        asyncx_call_timeout 2147483647ms;
        asyncx_pipeline_error_status 599;
        asyncx_pipeline;
        asyncx_stage s a=/a;
    }
    location = /a {
        return 200 '{"a": 1}';
    }
    location = /h {
        asyncx_pbkdf2_iterations 2147483647;
        asyncx_pbkdf2_max_iterations 2147483647;
        asyncx_password_max_length 4096;
        asyncx_password_verify;
    }
    location = /r {
        asyncx_regex_match_limit 4294967295;
        asyncx_regex_depth_limit 4294967295;
        asyncx_regex_max_texts 10000000;
        asyncx_regex_time_limit 1h;
        asyncx_regex_match;
    }
    location = /j {
        asyncx_json_max_items 1000000;
        asyncx_file_max_size 1g;
        asyncx_json_parse;
    }
--- request
POST /p
--- response_body_like chomp
^\{"stages":\[\{"name":"s"
--- no_error_log
[error]



=== TEST 30: asyncx_json_max_size 0: 0 is refused
--- config
    location = /t {
        asyncx_json_max_size 0;
        asyncx_json_parse;
    }
--- must_die
--- error_log
invalid value "0" in "asyncx_json_max_size", expected 1..1073741824 bytes



=== TEST 31: asyncx_json_max_size 2g: larger than 1g is refused
--- config
    location = /t {
        asyncx_json_max_size 2g;
        asyncx_json_parse;
    }
--- must_die
--- error_log
invalid value "2g" in "asyncx_json_max_size", expected 1..1073741824 bytes
