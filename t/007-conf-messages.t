# nginx -t messages of the directives that take a list of parameters:
# each names its directive and quotes the offending parameter exactly as
# written ("io=b", not "b"), and nginx appends the file and the line of
# that directive.  The whole line of the output is asserted.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

# the http block's first line is modules() + 5 (see nginx_t)
my $first = scalar(Asyncx::OwnNginx::modules()) + 5;

my $long = 'p' x 32;

# [what, http block, the line (1-based in the block) or undef for the
#  block's last line (a check at merge time), the message]
my @cases = (
    ['thread pools: a role given twice',
     "asyncx_thread_pools io=a io=b;\n", 1,
     'duplicate parameter "io=b" in "asyncx_thread_pools"'],
    ['thread pools: the same role and pool twice',
     "asyncx_thread_pools cpu=a cpu=a;\n", 1,
     'duplicate parameter "cpu=a" in "asyncx_thread_pools"'],
    ['thread pools: a ninth pool is named (a check at merge time)',
     "server {\n" . CORE::join('', map {
         "location = /j$_ { asyncx_thread_pools io=p$_ cpu=p$_; "
         . "asyncx_json_parse; }\n" } 1 .. 9) . "}\n", undef,
     'thread pool "p9" in "asyncx_thread_pools" is one too many: '
     . 'locations that run jobs may use at most 8 thread pools in all'],
    ['limit test: a URI with a dot segment',
     "asyncx_limit_zone zone=z:1m rate=1r/s;\nserver {\n"
     . "    location = /t { asyncx_limit_test z /a/../admin; }\n}\n", 3,
     'invalid URI "/a/../admin" in "asyncx_limit_test", expected a path '
     . 'starting with "/", without spaces, control characters, "#", "\\", '
     . '"." or ".." segments'],
    ['limit test: a URI that is no path',
     "asyncx_limit_zone zone=z:1m rate=1r/s;\nserver {\n"
     . "    location = /t { asyncx_limit_test z s/t; }\n}\n", 3,
     'invalid URI "s/t" in "asyncx_limit_test", expected a path '
     . 'starting with "/", without spaces, control characters, "#", "\\", '
     . '"." or ".." segments'],
    ['thread pools: an empty name',
     "asyncx_thread_pools io=;\n", 1,
     'invalid thread pool name "io=" in "asyncx_thread_pools", '
     . 'expected 1..31 bytes'],
    ['thread pools: a name too long',
     "asyncx_thread_pools io=a cpu=$long;\n", 1,
     "invalid thread pool name \"cpu=$long\" in \"asyncx_thread_pools\", "
     . 'expected 1..31 bytes'],
    ['thread pools: a name that is not UTF-8 text (it is a key of the status JSON)',
     "asyncx_thread_pools io=p\xff\x01 cpu=c;\n", 1,
     'invalid thread pool name "p\\xff\\x01" in "asyncx_thread_pools", '
     . 'expected UTF-8 text without control characters'],
    ['limit zone: a name that is not UTF-8 text (it is a key of the status JSON)',
     "asyncx_limit_zone zone=sp\xfe\x7f:64k rate=1r/s;\n", 1,
     'invalid zone name "sp\\xfe\\x7f" in "asyncx_limit_zone", '
     . 'expected UTF-8 text without control characters'],
    ['thread pools: an unknown role',
     "asyncx_thread_pools gpu=a;\n", 1,
     'invalid value "gpu=a" in "asyncx_thread_pools", expected io=name '
     . 'or cpu=name'],
    ['sse source: an unknown parameter',
     "asyncx_sse_source file=a x=1;\n", 1,
     'invalid value "x=1" in "asyncx_sse_source", expected "file=" and '
     . '"root=", or "dataset"'],
    ['sse source: an unknown source name',
     "server {\n    asyncx_sse_source nosuch;\n}\n", 2,
     'invalid value "nosuch" in "asyncx_sse_source", expected "file=" and '
     . '"root=", or "dataset"'],
    ['sse source: file= twice',
     "asyncx_sse_source file=a file=b;\n", 1,
     'duplicate parameter "file=b" in "asyncx_sse_source"'],
    ['sse source: root= twice',
     "asyncx_sse_source root=html root=/srv;\n", 1,
     'duplicate parameter "root=/srv" in "asyncx_sse_source"'],
    ['sse source: an empty file',
     "asyncx_sse_source file= root=html;\n", 1,
     'invalid value "file=" in "asyncx_sse_source": the file is empty'],
    ['sse source: a file out of the root',
     "asyncx_sse_source file=../a.ndjson root=html;\n", 1,
     'invalid value "file=../a.ndjson" in "asyncx_sse_source": a path '
     . 'relative to "root=" without ".." is expected'],
    ['sse source: an empty root',
     "asyncx_sse_source file=a root=;\n", 1,
     'invalid value "root=" in "asyncx_sse_source"'],
    ['sse source: no root',
     "asyncx_sse_source file=a;\n", 1,
     '"asyncx_sse_source" needs "file=" and "root=", or "dataset"'],
    ['sse query: an unknown parameter',
     "asyncx_sse_query field=a sort=a;\n", 1,
     'invalid value "sort=a" in "asyncx_sse_query", expected field=, '
     . 'fields=, group_by= or value='],
    ['sse query: a parameter twice',
     "asyncx_sse_query field=a value=v field=b;\n", 1,
     'duplicate parameter "field=b" in "asyncx_sse_query"'],
    ['sse query: a name with a quote',
     "asyncx_sse_query group_by=a\"b;\n", 1,
     'invalid value "group_by=a"b" in "asyncx_sse_query": a field name is '
     . '1 to 128 bytes of UTF-8 without control characters, quotes, '
     . 'backslashes, \',\' or \':\''],
    ['sse query: an empty name',
     "asyncx_sse_query value=;\n", 1,
     'invalid value "value=" in "asyncx_sse_query": a field name is '
     . '1 to 128 bytes of UTF-8 without control characters, quotes, '
     . 'backslashes, \',\' or \':\''],
    ['sse query: a field list with an empty name',
     "asyncx_sse_query fields=a,,b;\n", 1,
     'invalid value "fields=a,,b" in "asyncx_sse_query": a field name '
     . 'must be 1 to 128 bytes of UTF-8 without control characters, '
     . 'quotes, backslashes, \',\' or \':\''],
    ['sse: an unknown mode',
     "server {\n    location = /s {\n        asyncx_sse find;\n"
     . "    }\n}\n", 3,
     'invalid value "find" in "asyncx_sse", expected "search", '
     . '"transform" or "aggregate"'],
    ['file root: empty',
     "asyncx_file_root \"\";\n", 1,
     'invalid value "" in "asyncx_file_root"'],
    ['limit zone: too small',
     "asyncx_limit_zone zone=api:4k rate=5r/s;\n", 1,
     'zone "api" is too small: "zone=api:4k" in "asyncx_limit_zone" '
     . 'directive, at least 32k'],
    ['limit zone: twice',
     "asyncx_limit_zone zone=api:1m rate=5r/s;\n"
     . "asyncx_limit_zone zone=api:1m rate=5r/s;\n", 2,
     'duplicate zone "api" in "asyncx_limit_zone" directive'],
    ['stage: an invalid stage name',
     "server {\n    location = /p {\n        asyncx_pipeline;\n"
     . "        asyncx_stage a%b x=/x;\n    }\n}\n", 4,
     'invalid stage name "a%b" in "asyncx_stage"'],
    ['stage: a call name twice',
     "server {\n    location = /p {\n        asyncx_pipeline;\n"
     . "        asyncx_stage s a=/a a=/b;\n    }\n}\n", 4,
     'duplicate call name "a" in "asyncx_stage"'],
    ['stage: an invalid call name',
     "server {\n    location = /p {\n        asyncx_pipeline;\n"
     . "        asyncx_stage s a%=/a;\n    }\n}\n", 4,
     'invalid call name "a%" of "a%=/a" in "asyncx_stage"'],
    ['stage: a call without a name',
     "server {\n    location = /p {\n        asyncx_pipeline;\n"
     . "        asyncx_stage s /a;\n    }\n}\n", 4,
     'invalid call "/a" in "asyncx_stage", use name=/uri'],
    ['stage: no calls',
     "server {\n    location = /p {\n        asyncx_pipeline;\n"
     . "        asyncx_stage s;\n    }\n}\n", 4,
     'stage "s" in "asyncx_stage" has no calls, use name=/uri ...'],
    ['call_optional: a fallback that is not JSON',
     "server {\n    location = /p {\n        asyncx_pipeline;\n"
     . "        asyncx_stage s a=/a;\n"
     . "        asyncx_call_optional a '{x';\n    }\n}\n", 5,
     'invalid fallback "{x" of call "a" in "asyncx_call_optional": not '
     . 'JSON'],
    ['call_optional: a call made optional twice',
     "server {\n    location = /p {\n        asyncx_pipeline;\n"
     . "        asyncx_stage s a=/a;\n"
     . "        asyncx_call_optional a;\n"
     . "        asyncx_call_optional a;\n    }\n}\n", undef,
     'call "a" in "asyncx_call_optional" is already optional'],
    ['mock service: an invalid name',
     "server {\n    location = /m {\n"
     . "        asyncx_mock_service name=a,b;\n    }\n}\n", 3,
     'invalid value "name=a,b" in "asyncx_mock_service", expected a '
     . 'service name'],
    ['mock service: a status out of range',
     "server {\n    location = /m {\n"
     . "        asyncx_mock_service status=199;\n    }\n}\n", 3,
     'invalid value "status=199" in "asyncx_mock_service", expected '
     . '200..599 (not 204, 205, 304) with a body, not nginx\'s own 444, '
     . '494..497, 499'],
    ['mock service: a delay past max_delay',
     "server {\n    location = /m {\n"
     . "        asyncx_mock_service delay=2s max_delay=1s;\n    }\n}\n", 3,
     'invalid value "delay=2s" in "asyncx_mock_service", expected at most '
     . 'max_delay (1000 ms)'],
    ['mock service: a parameter given twice',
     "server {\n    location = /m {\n"
     . "        asyncx_mock_service delay=100ms delay=700ms;\n    }\n}\n", 3,
     'duplicate parameter "delay=700ms" in "asyncx_mock_service"'],
    ['mock service: echo= given twice',
     "server {\n    location = /m {\n"
     . "        asyncx_mock_service echo=off max_big=1k echo=body;\n    }\n}\n",
     3, 'duplicate parameter "echo=body" in "asyncx_mock_service"'],
    ['mock service: json= not an object',
     "server {\n    location = /m {\n"
     . "        asyncx_mock_service json=[1];\n    }\n}\n", 3,
     'invalid value "json=[1]" in "asyncx_mock_service", expected a JSON '
     . 'object'],
    ['status stream: an interval out of range',
     "server {\n    location = /s {\n"
     . "        asyncx_status_stream interval=61s;\n    }\n}\n", 3,
     'invalid value "interval=61s" in "asyncx_status_stream", expected '
     . '100ms..60s'],
    ['status page: a stream URI that is not a path',
     "server {\n    location = /d {\n"
     . "        asyncx_status_page live;\n    }\n}\n", 3,
     'invalid value "live" in "asyncx_status_page", expected a path '
     . 'starting with a single "/" without quotes, spaces or markup'],
);

for my $c (@cases) {
    my ($what, $http, $n, $msg) = @$c;
    my ($rc, $out, $conf) = Asyncx::OwnNginx::nginx_t($http);

    # nginx_t writes "http {\n$http\n}": the "}" after a blank line
    my @lines = split /\n/, $http;
    my $line = defined $n ? $first + $n - 1 : $first + @lines + 1;

    isnt($rc, 0, "$what: nginx -t fails");
    like($out, qr/^\S+ \S+ \[emerg\] \d+#\d+: \Q$msg\E in \Q$conf\E:$line$/m,
         "$what: the message") or diag($out);
}

done_testing();
