# The file source's configuration: nginx -t refuses what cannot work,
# naming the directive and the value; settings are inherited the nginx
# way (source at http, query at server, limits in the location).

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(1);

plan tests => repeat_each() * (2 * blocks() + 2);

no_long_string();
run_tests();

__DATA__

=== TEST 1: a transform over a file needs fields
--- config
    location = /s {
        asyncx_sse_source file=a.ndjson root=html;
        asyncx_sse transform;
    }
--- must_die
--- error_log
"asyncx_sse transform" over a file needs "fields=" in "asyncx_sse_query"



=== TEST 2: an aggregate over a file needs group_by and value
--- config
    asyncx_sse_source file=$arg_file root=html;
    location = /s {
        asyncx_sse aggregate;
        asyncx_sse_query group_by=level;
    }
--- must_die
--- error_log
"asyncx_sse aggregate" over a file needs "group_by=" and "value=" in "asyncx_sse_query"



=== TEST 3: a file without a root
--- config
    location = /s {
        asyncx_sse_source file=a.ndjson;
        asyncx_sse search;
    }
--- must_die
--- error_log
"asyncx_sse_source" needs "file=" and "root=", or "dataset"



=== TEST 4: an unknown parameter of the source
--- config
    location = /s {
        asyncx_sse_source file=a.ndjson dir=html;
        asyncx_sse search;
    }
--- must_die
--- error_log
invalid value "dir=html" in "asyncx_sse_source", expected "file=" and "root=", or "dataset"



=== TEST 5: a fixed file out of the root
--- config
    location = /s {
        asyncx_sse_source file=../a.ndjson root=html;
        asyncx_sse search;
    }
--- must_die
--- error_log
invalid value "file=../a.ndjson" in "asyncx_sse_source": a path relative to "root=" without ".." is expected



=== TEST 5b: a fixed file name that is not UTF-8 is refused by nginx -t (every request was answered 400, as if the client had sent it)
--- config eval
"    location = /s {
        asyncx_sse_source file=a\xff.ndjson root=html;
        asyncx_sse search;
    }"
--- must_die
--- error_log
invalid file name "a\xff.ndjson" in "asyncx_sse_source", expected UTF-8 text without control characters



=== TEST 6: the source given twice
--- config
    location = /s {
        asyncx_sse_source dataset;
        asyncx_sse_source file=a root=html;
        asyncx_sse search;
    }
--- must_die
--- error_log
"asyncx_sse_source" directive is duplicate



=== TEST 7: a field name with a quote
--- config
    location = /s {
        asyncx_sse_source file=a root=html;
        asyncx_sse_query field=a"b;
        asyncx_sse search;
    }
--- must_die
--- error_log
invalid value "field=a"b" in "asyncx_sse_query": a field name is 1 to 128 bytes of UTF-8 without control characters, quotes, backslashes, ',' or ':'



=== TEST 8: a field list with an empty name
--- config
    location = /s {
        asyncx_sse_source file=a root=html;
        asyncx_sse_query fields=a,,b;
        asyncx_sse transform;
    }
--- must_die
--- error_log
invalid value "fields=a,,b" in "asyncx_sse_query": a field name must be 1 to 128 bytes of UTF-8 without control characters, quotes, backslashes, ',' or ':'



=== TEST 9: an unknown query parameter
--- config
    location = /s {
        asyncx_sse_query sort=a;
    }
--- must_die
--- error_log
invalid value "sort=a" in "asyncx_sse_query", expected field=, fields=, group_by= or value=



=== TEST 10: a query parameter given twice
--- config
    location = /s {
        asyncx_sse_query field=a field=b;
    }
--- must_die
--- error_log
duplicate parameter "field=b" in "asyncx_sse_query"



=== TEST 11: a line size below the smallest
--- config
    asyncx_sse_max_line_size 63;
--- must_die
--- error_log
invalid value "63" in "asyncx_sse_max_line_size", expected 64..268435456 bytes



=== TEST 12: a line size above the largest
--- config
    asyncx_sse_max_line_size 1g;
--- must_die
--- error_log
invalid value "1g" in "asyncx_sse_max_line_size", expected 64..268435456 bytes



=== TEST 13: an unknown invalid-line policy
--- config
    asyncx_sse_invalid_line ignore;
--- must_die
--- error_log
invalid value "ignore" in "asyncx_sse_invalid_line", expected "error" or "skip"



=== TEST 14: inherited: source at http level, query at server, limit in the location
--- http_config
    asyncx_sse_source file=$arg_f root=html;
    asyncx_sse_query field=$arg_field;
--- config
    location = /s {
        asyncx_sse search;
        asyncx_sse_max_line_size 64;
    }
--- user_files
>>> a.ndjson
{"k": "python"}
{"k": "x", "v": "python"}
{"k": "python", "long": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}
--- request
GET /s?f=a.ndjson&keyword=python&field=k
--- response_body_like chomp
\Aid: 16-1-1-0-m-[0-9a-f]{8}
data: \{"type": "match", "line": 1, "offset": 0, "record": \{"k": "python"\}\}

id: 42-2-1-0-e-[0-9a-f]{8}
data: \{"type": "error", "message": "line 3 \(offset 42\) is longer than asyncx_sse_max_line_size", "line": 3, "offset": 42\}

\z
--- no_error_log
[alert]



=== TEST 15: a location may go back to the data set
--- http_config
    asyncx_sse_source file=a root=html;
--- config
    location = /s {
        asyncx_sse_source dataset;
        asyncx_sse search;
    }
--- request
GET /s?keyword=python&data_size=200
--- response_body_like chomp
"type": "complete", "total_matches": 2,
--- no_error_log
[alert]
