# SSE streams: event order and exact counts, framing, headers, resume.

use lib 't/lib';
use Test::Nginx::Socket;

do './t/sse.pl' or die $@ || $!;

repeat_each(2);

plan tests => repeat_each() * (3 * blocks() + 5);

no_long_string();

# Every block streams with the pool "cpu" (two threads unless its
# --- main_config says otherwise) as io and cpu; a block without
# --- config streams /stream/search.
add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value(main_config => "    thread_pool cpu threads=2;\n")
        unless defined $block->main_config;
    $block->set_value(config => "    asyncx_thread_pools io=cpu cpu=cpu;\n"
        . ($block->config
           // "    location = /stream/search { asyncx_sse search; }\n"));
});

run_tests();

__DATA__

=== TEST 1: search finds the data set's 72 pythons in 10,000 records
--- request
GET /stream/search?keyword=python&data_size=10000
--- response_body_filters eval
\&main::sse_summary
--- response_body
framing=ok ids=increasing
complete=1 match=72 progress=10
last=complete total_matches=72
--- no_error_log
[error]



=== TEST 2: stream headers: event-stream, no-cache, no proxy buffering, chunked
--- request
GET /stream/search?keyword=python&data_size=100
--- response_headers
Content-Type: text/event-stream
Cache-Control: no-cache
X-Accel-Buffering: no
Transfer-Encoding: chunked
!Content-Length
--- response_body_like chomp
^id: 200\ndata: \{"type": "progress", "processed": 100, "total": 100, "matches": 0\}\n\nid: 201\ndata: \{"type": "complete", "total_matches": 0, "total_time": "[0-9.]+\xEC\xB4\x88", "total_time_ms": [0-9.]+\}\n\n$
--- no_error_log
[error]



=== TEST 3: progress after every batch carries the running match count
(expected values computed independently from docs/dataset.md in Python)
--- request
GET /stream/search?keyword=python&data_size=10000
--- response_body_filters eval
sub {
    my @p = grep { $_->{type} eq 'progress' } main::sse_events($_[0]);
    CORE::join(",", map { "$_->{processed}:$_->{matches}" } @p) . "\n"
}
--- response_body
1000:6,2000:15,3000:25,4000:31,5000:40,6000:46,7000:53,8000:58,9000:65,10000:72
--- no_error_log
[error]



=== TEST 4: transform streams one batch event per batch_size records
--- config
    location = /stream/transform { asyncx_sse transform; }
--- request
GET /stream/transform?batch_size=100
--- response_body_filters eval
sub {
    my @e = main::sse_events($_[0]);
    main::sse_summary($_[0])
    . CORE::join(",", map { "$_->{batch_num}:$_->{items_processed}" }
                grep { $_->{type} eq 'batch' } @e) . "\n"
    . "$e[0]{sample}\n"
}
--- response_body
framing=ok ids=increasing
batch=10 complete=1
last=complete total_processed=1000
1:100,2:200,3:300,4:400,5:500,6:600,7:700,8:800,9:900,10:1000
RECORD 0: MATRIX COROUTINE WORKER THREAD JSON WORKER
--- no_error_log
[error]



=== TEST 5: aggregate: staged partial results, then the final figures
--- config
    location = /stream/aggregate { asyncx_sse aggregate; }
--- request
GET /stream/aggregate
--- response_body_filters eval
sub {
    my @e = main::sse_events($_[0]);
    my $c = $e[-1];
    my ($n, $s) = (0, 0);
    for my $cat (values %{ $c->{by_category} }) {
        $n += $cat->{count};
        $s += $cat->{sum};
    }
    main::sse_summary($_[0])
    . "stage1=$e[0]{partial}{count} "
    . "result=$c->{result}{count}/$c->{result}{sum}/$c->{result}{min}/"
    . "$c->{result}{max} categories=$n/$s python=$c->{by_category}{python}{count}\n"
}
--- response_body
framing=ok ids=increasing
complete=1 stage=10
last=complete total_processed=10000
stage1=1000 result=10000/499950/0/100 categories=10000/499950 python=14
--- no_error_log
[error]



=== TEST 6: an injected failure ends the stream with an error event
--- request
GET /stream/search?keyword=python&data_size=10000&fail_at=5000
--- response_body_filters eval
\&main::sse_summary
--- response_body
framing=ok ids=increasing
error=1 match=40 progress=5
last=error message=injected failure at record 5000
--- error_log
asyncx sse: injected failure at record 5000



=== TEST 7: Last-Event-ID resumes right after the event the client saw
--- request
GET /stream/search?keyword=python&data_size=10000
--- more_headers
Last-Event-ID: 10000
--- response_body_filters eval
sub {
    my @e = main::sse_events($_[0]);
    main::sse_summary($_[0]) . "first=$e[0]{_id} $e[0]{item}{id}\n"
}
--- response_body
framing=ok ids=increasing
complete=1 match=32 progress=5
last=complete total_matches=72
first=10021 5010
--- no_error_log
[error]



=== TEST 8: resuming after a match event skips that match
--- request
GET /stream/search?keyword=python&data_size=10000
--- more_headers
Last-Event-ID: 10021
--- response_body_filters eval
sub {
    my @e = main::sse_events($_[0]);
    "first=$e[0]{_id} $e[0]{item}{id} progress="
    . (grep { $_->{type} eq 'progress' } @e)[0]{matches} . "\n"
}
--- response_body
first=10101 5050 progress=46
--- no_error_log
[error]



=== TEST 9: a Last-Event-ID past "complete" gets 204, so EventSource stops
--- request
GET /stream/search?keyword=python&data_size=10000
--- more_headers
Last-Event-ID: 20001
--- error_code: 204
--- response_body
--- error_log
asyncx sse: Last-Event-ID past the end of the stream



=== TEST 10: heartbeat comments fill the gaps between slow batches
--- main_config
    thread_pool cpu threads=1;
--- config
    location = /stream/search {
        asyncx_sse search;
        asyncx_sse_heartbeat 1ms;
    }
--- request
GET /stream/search?keyword=zzz&data_size=2000000&batch_size=100000
--- response_body_filters eval
sub { $ENV{SSE_PINGS} = 1; my $s = main::sse_summary($_[0]); delete $ENV{SSE_PINGS}; $s }
--- response_body
framing=ok ids=increasing
complete=1 progress=20
pings=yes
last=complete total_matches=0
--- timeout: 10
--- no_error_log
[error]



=== TEST 11: asyncx_sse_retry (from http{}): "retry:" once, before the first event
A block of its own with no data line: EventSource takes the reconnection
time and dispatches nothing.
--- http_config
    asyncx_sse_retry 3s;
--- request
GET /stream/search?keyword=python&data_size=100
--- response_body_like chomp
^retry: 3000\n\nid: 200\ndata: \{"type": "progress", "processed": 100, "total": 100, "matches": 0\}\n\nid: 201\ndata: \{"type": "complete", "total_matches": 0, "total_time": "[0-9.]+\xEC\xB4\x88", "total_time_ms": [0-9.]+\}\n\n$
--- no_error_log
[error]



=== TEST 12: a location's asyncx_sse_retry overrides the server's, and a resumed stream sends it again
--- config
    asyncx_sse_retry 10s;
    location = /stream/transform {
        asyncx_sse transform;
        asyncx_sse_retry 1500ms;
    }
--- request
GET /stream/transform?data_size=300&batch_size=100
--- more_headers
Last-Event-ID: 400
--- response_body_like chomp
^retry: 1500\n\nid: 600\ndata: \{"type": "batch", "batch_num": 3, "items_processed": 300, [^\n]*\}\n\nid: 601\ndata: \{"type": "complete", "total_processed": 300, [^\n]*\}\n\n$
--- no_error_log
[error]
