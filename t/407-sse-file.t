# SSE over NDJSON files (asyncx_sse_source file=): search, transform and
# aggregate over files the test generates, each stream compared event by
# event (ids, counts, records, checksums, tables) with what
# t/ndjson_ref.py computes from the same file with Python's json module;
# a small file against its exact bytes; the answers before a stream
# starts (400, 403, 404, 405).
#
# Its own nginx (one worker) on TEST_NGINX_PORT + 1 (t/lib/Asyncx/OwnNginx.pm):
# the files live in its prefix.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use JSON::PP ();
use Asyncx::OwnNginx;

do './t/sse_file.pl' or die $@ || $!;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $ngx = sse_file_nginx(offset => 1, name => 'sse-file', dirs => ['data/sub'],
    locations => <<'LOC');
        location = /search {
            asyncx_sse search;
            asyncx_sse_query field=$arg_field;
            asyncx_sse_batch_size 50;
        }

        location = /search/skip {
            asyncx_sse search;
            asyncx_sse_query field=$arg_field;
            asyncx_sse_batch_size 50;
            asyncx_sse_invalid_line skip;
        }

        location = /search/short {
            asyncx_sse search;
            asyncx_sse_max_line_size 100;
            asyncx_sse_invalid_line skip;
        }

        location = /search/short/error {
            asyncx_sse search;
            asyncx_sse_max_line_size 100;
        }

        location = /transform {
            asyncx_sse transform;
            asyncx_sse_query fields=$arg_fields;
            asyncx_sse_invalid_line skip;
        }

        location = /transform/fixed {
            asyncx_sse_source file=sub/fixed.ndjson root=$DIR/data/;
            asyncx_sse transform;
            asyncx_sse_query fields=msg:message,id;
        }

        location = /transform/retry {
            asyncx_sse transform;
            asyncx_sse_query fields=$arg_fields;
            asyncx_sse_invalid_line skip;
            asyncx_sse_retry 2500ms;
        }

        location = /aggregate {
            asyncx_sse aggregate;
            asyncx_sse_query group_by=$arg_group_by value=$arg_value;
            asyncx_sse_invalid_line skip;
        }

        location = /aggregate/error {
            asyncx_sse aggregate;
            asyncx_sse_query group_by=level value=latency;
        }

        location = /dataset {
            asyncx_sse_source dataset;
            asyncx_sse search;
        }
LOC

my $data = $ngx->dir . '/data';

ref_gen('plain', 1, 3000, "$data/plain.ndjson");
ref_gen('mixed', 2, 3000, "$data/mixed.ndjson");
ref_gen('cr', 3, 1000, "$data/cr.ndjson");
ref_gen('nofinal', 4, 777, "$data/nofinal.ndjson");
ref_gen('plain', 5, 40, "$data/sub/fixed.ndjson");
ref_gen('numbers', 6, 3000, "$data/numbers.ndjson");
ref_gen('blank', 7, 2000, "$data/blank.ndjson");
ref_gen('crvalue', 8, 1000, "$data/crvalue.ndjson");
write_file("$data/empty.ndjson", '');

my @streams = (
    # uri, file, the query for the reference
    ['/search?file=plain.ndjson&keyword=python', 'plain',
     { op => 'search', batch_size => 50, keyword => 'python' }],
    ['/search?file=plain.ndjson&keyword=PYTHON&ignore_case=1', 'plain',
     { op => 'search', batch_size => 50, keyword => 'PYTHON', icase => 1 }],
    ['/search?file=plain.ndjson&keyword=nginx&field=msg', 'plain',
     { op => 'search', batch_size => 50, keyword => 'nginx',
       field => 'msg' }],
    ['/search?file=plain.ndjson&keyword=err&field=level&batch_size=7',
     'plain', { op => 'search', batch_size => 7, keyword => 'err',
                field => 'level' }],
    ['/search?file=plain.ndjson&keyword=caf%C3%A9', 'plain',
     { op => 'search', batch_size => 50, keyword => "caf\x{e9}" }],
    ['/search?file=plain.ndjson&keyword=%C3%9CN&ignore_case=1', 'plain',
     { op => 'search', batch_size => 50, keyword => "\x{dc}N",
       icase => 1 }],
    ['/search?file=plain.ndjson&keyword=1&field=latency', 'plain',
     { op => 'search', batch_size => 50, keyword => '1',
       field => 'latency' }],
    ['/search?file=plain.ndjson&keyword=async&limit=10', 'plain',
     { op => 'search', batch_size => 50, keyword => 'async', limit => 10 }],
    ['/search?file=plain.ndjson&keyword=async&limit=100000', 'plain',
     { op => 'search', batch_size => 50, keyword => 'async',
       limit => 100000 }],
    ['/search?file=nofinal.ndjson&keyword=e&batch_size=100', 'nofinal',
     { op => 'search', batch_size => 100, keyword => 'e' }],
    ['/search?file=mixed.ndjson&keyword=python', 'mixed',
     { op => 'search', batch_size => 50, keyword => 'python' }],
    ['/search/skip?file=mixed.ndjson&keyword=python', 'mixed',
     { op => 'search', batch_size => 50, keyword => 'python',
       skip_invalid => 1 }],
    ['/search/skip?file=mixed.ndjson&keyword=python&field=msg', 'mixed',
     { op => 'search', batch_size => 50, keyword => 'python',
       field => 'msg', skip_invalid => 1 }],
    ['/search/short?file=plain.ndjson&keyword=nginx&batch_size=20', 'plain',
     { op => 'search', batch_size => 20, keyword => 'nginx', max_line => 100,
       skip_invalid => 1 }],
    ['/search/short/error?file=plain.ndjson&keyword=nginx', 'plain',
     { op => 'search', batch_size => 1000, keyword => 'nginx',
       max_line => 100 }],
    ['/search?file=cr.ndjson&keyword=python', 'cr',
     { op => 'search', batch_size => 50, keyword => 'python' }],
    ['/search?file=empty.ndjson&keyword=python', 'empty',
     { op => 'search', batch_size => 50, keyword => 'python' }],
    ['/transform?file=mixed.ndjson&fields=msg:message,latency,level:lvl',
     'mixed', { op => 'transform', batch_size => 100,
                fields => 'msg:message,latency,level:lvl',
                skip_invalid => 1 }],
    ['/transform?file=plain.ndjson&fields=msg,tags,nested,id,missing'
     . '&batch_size=1000', 'plain',
     { op => 'transform', batch_size => 1000,
       fields => 'msg,tags,nested,id,missing', skip_invalid => 1 }],
    ['/transform?file=cr.ndjson&fields=id,msg&batch_size=33', 'cr',
     { op => 'transform', batch_size => 33, fields => 'id,msg',
       skip_invalid => 1 }],
    ['/transform?file=nofinal.ndjson&fields=id', 'nofinal',
     { op => 'transform', batch_size => 100, fields => 'id',
       skip_invalid => 1 }],
    ['/transform?file=empty.ndjson&fields=id', 'empty',
     { op => 'transform', batch_size => 100, fields => 'id',
       skip_invalid => 1 }],
    ['/transform/fixed', 'sub/fixed',
     { op => 'transform', batch_size => 100, fields => 'msg:message,id' }],
    ['/aggregate?file=plain.ndjson&group_by=level&value=latency', 'plain',
     { op => 'aggregate', batch_size => 1000, group_by => 'level',
       value => 'latency', skip_invalid => 1 }],
    ['/aggregate?file=mixed.ndjson&group_by=path&value=latency'
     . '&batch_size=333', 'mixed',
     { op => 'aggregate', batch_size => 333, group_by => 'path',
       value => 'latency', skip_invalid => 1 }],
    ['/aggregate?file=plain.ndjson&group_by=id&value=latency', 'plain',
     { op => 'aggregate', batch_size => 1000, group_by => 'id',
       value => 'latency', skip_invalid => 1 }],
    ['/aggregate?file=plain.ndjson&group_by=tags&value=id', 'plain',
     { op => 'aggregate', batch_size => 1000, group_by => 'tags',
       value => 'id', skip_invalid => 1 }],
    ['/aggregate?file=cr.ndjson&group_by=level&value=latency', 'cr',
     { op => 'aggregate', batch_size => 1000, group_by => 'level',
       value => 'latency', skip_invalid => 1 }],
    ['/aggregate/error?file=mixed.ndjson', 'mixed',
     { op => 'aggregate', batch_size => 1000, group_by => 'level',
       value => 'latency' }],

    # numbers of every kind: 19 digits, past 64 bits, 400+ bytes, 1e309,
    # sums that overflow (Python's ints and floats are the reference)
    ['/aggregate?file=numbers.ndjson&group_by=g&value=v&batch_size=500',
     'numbers', { op => 'aggregate', batch_size => 500, group_by => 'g',
                  value => 'v', skip_invalid => 1 }],
    ['/aggregate?file=numbers.ndjson&group_by=v&value=i', 'numbers',
     { op => 'aggregate', batch_size => 1000, group_by => 'v',
       value => 'i', skip_invalid => 1 }],

    # blank lines: no records, no errors even with invalid_line error
    ['/aggregate/error?file=blank.ndjson', 'blank',
     { op => 'aggregate', batch_size => 1000, group_by => 'level',
       value => 'latency' }],
    ['/search?file=blank.ndjson&keyword=%20', 'blank',
     { op => 'search', batch_size => 50, keyword => ' ' }],
    ['/search?file=blank.ndjson&keyword=python&batch_size=33', 'blank',
     { op => 'search', batch_size => 33, keyword => 'python' }],
    ['/transform?file=blank.ndjson&fields=id,msg', 'blank',
     { op => 'transform', batch_size => 100, fields => 'id,msg',
       skip_invalid => 1 }],

    # CRs inside projected values: checksums of what the client receives
    ['/transform?file=crvalue.ndjson&fields=id,nested:n,tags&batch_size=50',
     'crvalue', { op => 'transform', batch_size => 50,
                  fields => 'id,nested:n,tags', skip_invalid => 1 }],
);

for my $s (@streams) {
    my ($uri, $file, $q) = @$s;
    my ($code, $head, $body) = sse_get($ngx, $uri);

    is($code, 200, "$uri: 200");
    my $res = ref_check($body, "$data/$file.ndjson", $q);
    like($res, qr/^ok /, "$uri: every event as Python computes it")
        or diag $res;
    note "$uri: $res";
}

# the reference is no tautology: it finds what is there

my ($code, $head, $body) = sse_get($ngx, '/search?file=plain.ndjson'
                                         . '&keyword=python');
my @matches = $body =~ /"type": "match"/g;
cmp_ok(scalar @matches, '>', 100, 'python matches some hundred lines');
like($head, qr{^Content-Type: text/event-stream\r?$}m, 'event-stream');
like($head, qr{^Cache-Control: no-cache\r?$}m, 'no-cache');
like($head, qr{^X-Accel-Buffering: no\r?$}m, 'no proxy buffering');

($code, $head, $body) = sse_get($ngx, '/search?file=cr.ndjson&keyword=cr'
                                      . '&limit=1');
my $first = do {
    open my $fh, '<:raw', "$data/cr.ndjson" or die $!;
    length(scalar <$fh>);
};

like($body, qr/^id: $first-1-1-0-m-[0-9a-f]{8}\ndata: \{"type": "match", "line": 1, "offset": 0, "record": \{"msg":\ndata: "python cr",\ndata: "id":\ndata: 0,"level":"info","latency":1\}\}\n\n/,
     'a record with CRs is one event of several data lines (the line '
     . 'end\'s CR is not part of it)')
    or diag $body;

# exact bytes of a small stream

write_file("$data/small.ndjson",
           qq({"k": "a", "v": 1}\n{"k":"b","v":2.5}\nnot json\n)
           . qq({"k": "a", "v": -4}));

($code, $head, $body) = sse_get($ngx, '/aggregate?file=small.ndjson'
                                      . '&group_by=k&value=v&batch_size=2');
$body =~ s/"total_time_ms": [0-9]+\.[0-9]{3}\}/"total_time_ms": T}/;
$body =~ s/-[0-9a-f]{8}\n/-TAG\n/g;
is($body, <<'BODY', 'aggregate: exact events');
id: 37-2-0-0-b-TAG
data: {"type": "stage", "stage": 1, "processed": 2, "skipped": 0, "offset": 37, "size": 65, "groups": 2, "partial": {"records": 2, "count": 2, "sum": 3.5, "min": 1, "max": 2.5, "avg": 1.75}}

id: 65-4-0-1-b-TAG
data: {"type": "stage", "stage": 2, "processed": 4, "skipped": 1, "offset": 65, "size": 65, "groups": 2, "partial": {"records": 3, "count": 3, "sum": -0.5, "min": -4, "max": 2.5, "avg": -0.16666666666666666}}

id: 65-4-0-1-c-TAG
data: {"type": "complete", "total_processed": 4, "skipped": 1, "size": 65, "result": {"records": 3, "count": 3, "sum": -0.5, "min": -4, "max": 2.5, "avg": -0.16666666666666666}, "groups": 2, "by_group": [{"key": "a", "stats": {"records": 2, "count": 2, "sum": -3, "min": -4, "max": 1, "avg": -1.5}}, {"key": "b", "stats": {"records": 1, "count": 1, "sum": 2.5, "min": 2.5, "max": 2.5, "avg": 2.5}}], "other": null, "total_time_ms": T}

BODY

# checksums: FNV-1a 32 of each record as sent plus a line feed (Python)
($code, $head, $body) = sse_get($ngx, '/transform?file=small.ndjson'
                                      . '&fields=v:value,k&batch_size=2');
$body =~ s/"total_time_ms": [0-9]+\.[0-9]{3}\}/"total_time_ms": T}/;
$body =~ s/-[0-9a-f]{8}\n/-TAG\n/g;
my $transform_small = <<'BODY';
id: 37-2-0-0-b-TAG
data: {"type": "batch", "batch_num": 1, "items_processed": 2, "skipped": 0, "offset": 37, "size": 65, "count": 2, "checksum": "c3117d46", "records": [{"value": 1, "k": "a"}, {"value": 2.5, "k": "b"}]}

id: 65-4-0-1-b-TAG
data: {"type": "batch", "batch_num": 2, "items_processed": 4, "skipped": 1, "offset": 65, "size": 65, "count": 1, "checksum": "9234237f", "records": [{"value": -4, "k": "a"}]}

id: 65-4-0-1-c-TAG
data: {"type": "complete", "total_processed": 4, "skipped": 1, "size": 65, "total_time_ms": T}

BODY
is($body, $transform_small, 'transform: exact events');

# asyncx_sse_retry: "retry:" in a block of its own before the first event,
# on a new stream and on a resumed one
($code, $head, $body) = sse_get($ngx, '/transform/retry?file=small.ndjson'
                                      . '&fields=v:value,k&batch_size=2');
my ($first_id) = $body =~ /^id: (\S+)$/m;
$body =~ s/"total_time_ms": [0-9]+\.[0-9]{3}\}/"total_time_ms": T}/;
$body =~ s/-[0-9a-f]{8}\n/-TAG\n/g;
is($body, "retry: 2500\n\n" . $transform_small,
   'asyncx_sse_retry: retry first, then the same events');

($code, $head, $body) = sse_get($ngx, '/transform/retry?file=small.ndjson'
                                      . '&fields=v:value,k&batch_size=2',
                                "Last-Event-ID: $first_id");
like($body, qr/\Aretry: 2500\n\nid: 65-4-0-1-b-[0-9a-f]{8}\ndata: \{"type": "batch", "batch_num": 2,/,
     'asyncx_sse_retry: a resumed stream sends retry again, then the events '
     . 'after Last-Event-ID') or diag $body;

# a search parses only the lines holding the keyword: "n" is in line 3
($code, $head, $body) = sse_get($ngx, '/search?file=small.ndjson'
                                      . '&keyword=n&batch_size=2');
$body =~ s/-[0-9a-f]{8}\n/-TAG\n/g;
my $what = 'search: a line that is not JSON ends the stream (error event, '
           . 'asyncx_sse_invalid_line error)';
is($body, <<'BODY', $what);
id: 37-2-0-0-b-TAG
data: {"type": "progress", "processed": 2, "matches": 0, "skipped": 0, "offset": 37, "size": 65}

id: 37-2-0-0-e-TAG
data: {"type": "error", "message": "line 3 (offset 37) is not valid JSON: not a JSON object at byte 0", "line": 3, "offset": 37}

BODY

# what is refused before a stream starts: a JSON answer, nothing streamed

my @refusals = (
    ['/search?file=plain.ndjson', 400, 'keyword is required'],
    ['/search?file=plain.ndjson&keyword=x&ignore_case=2', 400,
     'ignore_case must be 0 or 1'],
    ['/search?file=plain.ndjson&keyword=x&limit=0', 400,
     'limit must be an integer between 1 and 1000000000000'],
    ['/search?file=plain.ndjson&keyword=x&batch_size=100001', 400,
     'batch_size must be an integer between 1 and 100000'],
    ['/search?file=plain.ndjson&keyword=x&data_size=10', 400,
     'data_size and fail_at are for the data set, not a file'],
    ['/search?file=plain.ndjson&keyword=' . ('k' x 257), 400,
     'keyword is longer than 256 bytes'],
    ['/search?file=plain.ndjson&keyword=a%0Ab', 400,
     'keyword holds a line feed, which no line of a file does'],
    ['/search?keyword=x', 400,
     'no file: \"file=\" of asyncx_sse_source is empty for this request'],
    ['/search?file=nothere.ndjson&keyword=x', 404,
     'asyncx_sse: \"nothere.ndjson\" not found'],
    ['/search?file=plain.ndjson/x&keyword=x', 404,
     'asyncx_sse: \"plain.ndjson/x\" not found'],
    ['/search?file=../nginx.conf&keyword=x', 403,
     'path \"../nginx.conf\" is not allowed: absolute paths, \"..\", NUL '
     . 'bytes and backslashes are refused'],
    ['/search?file=%2e%2e/nginx.conf&keyword=x', 403,
     'path \"../nginx.conf\" is not allowed: absolute paths, \"..\", NUL '
     . 'bytes and backslashes are refused'],
    ['/search?file=/etc/passwd&keyword=x', 403,
     'path \"/etc/passwd\" is not allowed: absolute paths, \"..\", NUL '
     . 'bytes and backslashes are refused'],
    ['/search?file=plain.ndjson%00.txt&keyword=x', 403,
     'path \"plain.ndjson\\\\x00.txt\" is not allowed: absolute paths, '
     . '\"..\", NUL bytes and backslashes are refused'],
    ['/search?file=sub&keyword=x', 400,
     'asyncx_sse: \"sub\" is not a regular file'],
    ['/search?file=plain.ndjson&keyword=x&field=a%22b', 400,
     'invalid field name: 1 to 128 bytes of UTF-8 without control '
     . 'characters, quotes, backslashes, \',\' or \':\''],
    ['/transform?file=plain.ndjson', 400,
     'no fields to transform: \"fields=\" is empty'],
    ['/transform?file=plain.ndjson&fields=a,,b', 400,
     'invalid fields: a field name must be 1 to 128 bytes of UTF-8 '
     . 'without control characters, quotes, backslashes, \',\' or \':\''],
    ['/transform?file=plain.ndjson&fields=a,b:a', 400,
     'invalid fields: a field or output name is given twice'],
    ['/transform?file=plain.ndjson&fields=' . join(',', 1 .. 33), 400,
     'invalid fields: more than 32 fields'],
    ['/aggregate?file=plain.ndjson&group_by=level', 400,
     'the aggregate needs \"group_by=\" and \"value=\"'],
    ['/aggregate?file=plain.ndjson&group_by=level&value=%01', 400,
     'invalid field name: 1 to 128 bytes of UTF-8 without control '
     . 'characters, quotes, backslashes, \',\' or \':\''],
);

for my $r (@refusals) {
    my ($uri, $status, $msg) = @$r;
    ($code, $head, $body) = sse_get($ngx, $uri);
    is($code, $status, "$uri: $status");
    is($body, qq({"error": "$msg", "status": $status}\n), "$uri: message");
}

my $res = $ngx->request("POST /search?file=plain.ndjson&keyword=x HTTP/1.0"
                        . "\r\nHost: l\r\nContent-Length: 0\r\n\r\n");
like($res, qr{^HTTP/1\.1 405 }, 'POST: 405');

$res = $ngx->request("HEAD /search?file=plain.ndjson&keyword=x HTTP/1.0"
                     . "\r\nHost: l\r\n\r\n");
like($res, qr{^HTTP/1\.1 200 .*^Content-Type: text/event-stream\r$}sm,
     'HEAD: the stream\'s header');
unlike($res, qr/\r\n\r\n./s, 'HEAD: no body');

$res = $ngx->request("HEAD /search?file=nothere&keyword=x HTTP/1.0"
                     . "\r\nHost: l\r\n\r\n");
like($res, qr{^HTTP/1\.1 404 }, 'HEAD of a missing file: 404');

# the data set still streams where a location chooses it

($code, $head, $body) = sse_get($ngx, '/dataset?keyword=python'
                                      . '&data_size=1000');
like($body, qr/"type": "complete", "total_matches": 6,/,
     'asyncx_sse_source dataset: the synthetic data set');

# counted in the status like every stream, and nothing left open

my $status = JSON::PP::decode_json(($ngx->get('/asyncx/status'))[1]);
my $n = @streams + 5 + 1 + 2;
is($status->{streams}{total}, $n, "status: $n streams");
is($status->{streams}{active}, 0, 'status: none active');
is($status->{streams}{aborted}, 0, 'status: none aborted');
cmp_ok($status->{streams}{errors}, '>=', 4, 'status: the error events');

# reading in the io pool (opens, reads the cache did not have), scanning
# in the cpu pool: every stream but the HEAD and the refused ones had a
# scan job there
my $file_streams = @streams + 4;
cmp_ok($status->{pools}{cpu}{completed}, '>=', $file_streams + 1,
       "the cpu pool scanned the $file_streams file streams (and the "
       . 'data set\'s)');
cmp_ok($status->{pools}{io}{completed}, '>=', $file_streams,
       'the io pool opened them');
is($status->{pools}{io}{completed} + $status->{pools}{cpu}{completed},
   $status->{streams}{jobs}, 'every job of a stream is one of these');

my @bad = grep { /\[(alert|crit|emerg)\]/ } $ngx->error_log;
is(scalar @bad, 0, 'no alert in the error log') or diag @bad;

my @lines = grep { /asyncx sse: "mixed.ndjson" at line \d+ \(offset \d+\): is not valid JSON, the stream ends with an error event/ } $ngx->error_log;
cmp_ok(scalar @lines, '>=', 1, 'the error event is logged with the file, '
                               . 'line and offset');

# the aggregate's numbers, exactly (the values Python computes)

sub result_of {
    my ($file, $content) = @_;
    write_file("$data/$file", $content);
    my (undef, undef, $b) = sse_get($ngx, "/aggregate/error?file=$file");
    my ($r) = $b =~ /"result": (\{[^}]*\})/;
    return $r // "none: $b";
}

is(result_of('a1.ndjson', qq({"level": "x", "latency": 1000000000000000000}\n)
                          . qq({"level": "x", "latency": -1}\n) x 2),
   '{"records": 3, "count": 3, "sum": 999999999999999998, "min": -1, '
   . '"max": 1000000000000000000, "avg": 3.333333333333333e+17}',
   '19-digit integers are summed exactly in 64 bits');

is(result_of('a1max.ndjson', qq({"latency": 9223372036854775807}\n)),
   '{"records": 1, "count": 1, "sum": 9223372036854775807, '
   . '"min": 9223372036854775807, "max": 9223372036854775807, '
   . '"avg": 9.223372036854776e+18}', '2^63 - 1 is itself');

is(result_of('a2.ndjson', qq({"latency": 1e309}\n{"latency": 5}\n)
                          . qq({"latency": 1) . ('0' x 500) . qq(}\n)
                          . qq({"latency": 0.) . ('0' x 450) . qq(1}\n)),
   '{"records": 4, "count": 2, "out_of_range": 2, "sum": 5, "min": 0, '
   . '"max": 5, "avg": 2.5}',
   'numbers beyond doubles are counted in out_of_range; a long one within '
   . 'them is a value');

is(result_of('a2sum.ndjson', qq({"latency": 1e308}\n) x 2),
   '{"records": 2, "count": 2, "sum": null, "min": 1e+308, '
   . '"max": 1e+308, "avg": null}',
   'a sum beyond doubles is null, its count, min and max are numbers');

# a blank line (a file ending in "\n\n") is no error

write_file("$data/a4.ndjson", qq({"level": "a", "latency": 1}\n\n \t\r\n));
($code, $head, $body) = sse_get($ngx, '/aggregate/error?file=a4.ndjson');
$body =~ s/"total_time_ms": [0-9]+\.[0-9]{3}\}/"total_time_ms": T}/;
$body =~ s/-[0-9a-f]{8}\n/-TAG\n/g;
is($body, <<'BODY', 'blank lines: counted as lines, no record, no error');
id: 34-3-0-0-b-TAG
data: {"type": "stage", "stage": 1, "processed": 3, "skipped": 0, "offset": 34, "size": 34, "groups": 1, "partial": {"records": 1, "count": 1, "sum": 1, "min": 1, "max": 1, "avg": 1}}

id: 34-3-0-0-c-TAG
data: {"type": "complete", "total_processed": 3, "skipped": 0, "size": 34, "result": {"records": 1, "count": 1, "sum": 1, "min": 1, "max": 1, "avg": 1}, "groups": 1, "by_group": [{"key": "a", "stats": {"records": 1, "count": 1, "sum": 1, "min": 1, "max": 1, "avg": 1}}], "other": null, "total_time_ms": T}

BODY

# a CR in a projected value reaches the client as a LF: so is it hashed
# (FNV-1a of '{"g": {"a":\n1}}' and a LF: a85730f4)

write_file("$data/a3.ndjson", qq({"g":{"a":\r1}}\n));
($code, $head, $body) = sse_get($ngx, '/transform?file=a3.ndjson&fields=g');
like($body, qr/^data: \{"type": "batch", .*"checksum": "a85730f4", "records": \[\{"g": \{"a":\ndata: 1\}\}\]\}\n/m,
     'a CR in a value: the checksum of the record as received')
    or diag $body;

# a file within the first read (one window) is opened, read and scanned
# by the open job alone: its events leave with the header, no hand-off
# to the cpu pool before the first event (and none at all here)
{
    my $before = JSON::PP::decode_json(($ngx->get('/asyncx/status'))[1]);
    ($code, $head, $body) = sse_get($ngx, '/search/skip?file=small.ndjson'
                                          . '&keyword=a&field=k');
    my $after = JSON::PP::decode_json(($ngx->get('/asyncx/status'))[1]);
    like($body, qr/"type": "complete", "total_processed": 4, "total_matches": 2,/,
         'one-window file: complete') or diag $body;
    is($after->{streams}{jobs} - $before->{streams}{jobs}, 1,
       'one-window file: one job, the open job');
    is($after->{pools}{cpu}{posted} - $before->{pools}{cpu}{posted}, 0,
       'one-window file: nothing posted to the cpu pool');
}

$ngx->stop;

done_testing();
