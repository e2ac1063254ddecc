# Every capability over HTTP/2, cleartext (prior knowledge) and over TLS
# (ALPN h2), against the same requests over HTTP/1.x: the answers must
# match, and what HTTP/2 adds must leave nothing behind.  Under HTTP/2
# r->connection is a per-stream fake connection, bodies come through the
# v2 state machine (in DATA frames of any size, with or without a
# content-length), a client leaves with RST_STREAM or by closing a
# connection that carries many streams, and flow control can stall any
# write.  After each departure the module's own numbers (streams,
# pipelines, mock requests, pool queues, the limiter's slots and places)
# must come back to 0, the connection's other streams must still be
# served, and error.log must hold no [alert].
#
# The client is t/h2client.py (Debian's python3-h2).  Every wait polls
# the status numbers or the thread-pool hold (t/hold/): no step sleeps
# for a time, so a busy machine only makes it slower.
#
# Its own nginx (one worker): h2c on TEST_NGINX_PORT + 5, h2 over TLS
# on + 6 (a certificate made with openssl), HTTP/1.x on + 7, and a
# backend server for proxy_pass on + 8.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP ();
use Asyncx::Hold;
use Asyncx::OwnNginx;

my $PY = '/usr/bin/python3';

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');
Asyncx::OwnNginx::skip_all_unless(
    system("$PY -c 'import h2' 2>/dev/null") == 0
    && system('openssl version >/dev/null 2>&1') == 0,
    'python3-h2 or openssl is not installed');

my $base = $ENV{TEST_NGINX_PORT} || 1984;
my ($TLS, $H1, $BACKEND) = ($base + 6, $base + 7, $base + 8);

# the server's certificate, made before nginx starts
my $certs = tempdir('asyncx-http2-cert-XXXXXX', TMPDIR => 1, CLEANUP => 1);
system("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
       . "-keyout $certs/key.pem -out $certs/cert.pem 2>/dev/null") == 0
    or die 'openssl req failed';

my $ngx = Asyncx::OwnNginx->new(offset => 5, name => 'http2',
    log_level => 'debug', dirs => ['files', 'data'],
    main => "thread_pool io threads=2;\nthread_pool cpu threads=1;",
    http => <<"HTTP");
    asyncx_thread_pools io=io cpu=cpu;

    asyncx_limit_zone zone=z:1m rate=1000r/s concurrency=3 queue=100
                      timeout=60s;

    server {
        listen 127.0.0.1:\$PORT http2;
        listen 127.0.0.1:$TLS ssl http2;
        listen 127.0.0.1:$H1;

        ssl_certificate $certs/cert.pem;
        ssl_certificate_key $certs/key.pem;

        location = /status { asyncx_status; }
        location = /hold { asyncx_test_hold cpu; }

        location = /files/read {
            asyncx_file_root \$DIR/files;
            asyncx_file_read;
        }
        location = /files/write {
            asyncx_file_root \$DIR/files;
            asyncx_file_write;
        }
        location = /auth/hash {
            asyncx_pbkdf2_iterations 1000;
            asyncx_password_hash;
        }
        location = /auth/verify { asyncx_password_verify; }
        location = /parse/json {
            client_max_body_size 32m;
            asyncx_json_parse;
        }
        location = /regex/match { asyncx_regex_match; }

        location /limited/ {
            asyncx_limit z;
            asyncx_mock_service name=limited delay=0 max_delay=60s echo=off;
        }
        location = /rate-limit-test { asyncx_limit_test z /limited/call; }
        location = /zone { asyncx_limit_zone_status z; }

        location /backend/ {
            internal;
            proxy_http_version 1.1;
            proxy_pass http://127.0.0.1:$BACKEND/;
        }
        location = /p {
            asyncx_pipeline;
            asyncx_pipeline_pass_args on;
            asyncx_call_timeout 60s;
            asyncx_stage s1 user=/backend/user h=/backend/headers;
            asyncx_stage s2 slow=/backend/slow;
        }

        location = /search {
            asyncx_sse_source file=log.ndjson root=\$DIR/data;
            asyncx_sse search;
            asyncx_sse_batch_size 50;
        }
        location = /stream/search { asyncx_sse search; }
        location = /heartbeat {
            asyncx_sse search;
            asyncx_sse_heartbeat 100ms;
        }
        location = /stalled {
            send_timeout 1s;
            asyncx_sse_source file=log.ndjson root=\$DIR/data;
            asyncx_sse search;
            asyncx_sse_batch_size 50;
        }
    }

    server {
        listen 127.0.0.1:$BACKEND;

        location = /user { return 200 '{"user_id":42,"name":"kim"}'; }
        location = /headers {
            return 200 '{"cookie":"\$http_cookie","tenant":"\$http_x_tenant","length":"\$http_content_length","type":"\$http_content_type"}';
        }
        location = /slow {
            asyncx_mock_service name=slow delay=0 max_delay=60s;
        }
    }
HTTP

my $dir = $ngx->dir;
my $J = JSON::PP->new->canonical->allow_nonref;

sub put_file {
    my ($path, $data) = @_;
    open my $fh, '>', $path or die "$path: $!";
    binmode $fh;
    print $fh $data;
    close $fh;
}

# an HTTP/2 session of t/h2client.py: its spec in, its result out
sub h2 {
    my (%spec) = @_;
    $spec{port} //= $ngx->port;
    $spec{requests} = [ map { { %$_ } } @{ $spec{requests} } ];
    put_file("$dir/spec.json", $J->encode(\%spec));
    my $out = `$PY t/h2client.py < $dir/spec.json 2> $dir/h2client.err`;
    my $res = eval { $J->decode($out) };
    return $res // { ok => 0, responses => [], error => $out . do {
        local (@ARGV, $/) = "$dir/h2client.err"; <> // '' } };
}

# (status, body) of an HTTP/1.0 request on the HTTP/1.x port
sub h1 {
    my ($method, $path, $body) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$H1", Timeout => 10)
        or return (0, '');
    print $s "$method $path HTTP/1.0\r\nHost: localhost\r\n"
             . (defined $body ? "Content-Length: " . length($body) . "\r\n"
                              : '')
             . "\r\n" . ($body // '');
    local $/;
    my $raw = <$s> // '';
    my ($code) = $raw =~ m{^HTTP/1\.\d (\d+)};
    my ($rest) = $raw =~ /\r\n\r\n(.*)\z/s;
    return ($code // 0, $rest // '');
}

# the status over HTTP/1.x ($ngx->json speaks HTTP/1.0 to the h2c port)
sub status {
    my (undef, $body) = h1(GET => '/status');
    return eval { JSON::PP::decode_json($body) } // {};
}

# what is in flight: every number that must come back to 0
sub in_flight {
    my $s = status();
    my $z = $s->{limit_zones}{z} // {};
    return join ' ', map { "$_->[0]=" . ($_->[1] // 'undef') }
        ['streams', $s->{streams}{active}],
        ['pipelines', $s->{pipelines}{active}],
        ['mock', $s->{pipelines}{mock}{active}],
        ['io.queued', $s->{pools}{io}{queued}],
        ['io.running', $s->{pools}{io}{running}],
        ['cpu.queued', $s->{pools}{cpu}{queued}],
        ['cpu.running', $s->{pools}{cpu}{running}],
        ['zone.current', $z->{concurrent}{current}],
        ['zone.waiting', $z->{waiting}];
}

my $REST = join ' ', map { "$_=0" } qw(streams pipelines mock io.queued
    io.running cpu.queued cpu.running zone.current zone.waiting);

sub at_rest {
    my ($what) = @_;
    $ngx->wait_for("$what: everything at rest", sub { in_flight() eq $REST },
                   60);
    is(in_flight(), $REST, "$what: every stream, call, task, slot and "
                           . 'place is back to 0');
}

# a JSON answer without the numbers that measure time
sub timeless {
    my ($text) = @_;
    my $v = eval { $J->decode($text) } // return "not JSON: $text";
    my $strip;
    $strip = sub {
        my ($x) = @_;
        if (ref $x eq 'HASH') {
            # current_rps: admissions of the last second, which slides
            # between the h2 and the HTTP/1.0 request
            delete $x->{$_} for grep { /time|_ms$|_per_s$|^(?:ms|waited|start|end|current_rps|\x{c124}\x{ba85})$/ } keys %$x;
            $strip->($_) for values %$x;
        } elsif (ref $x eq 'ARRAY') {
            $strip->($_) for @$x;
        }
    };
    $strip->($v);
    return $J->encode($v);
}

# the events of an SSE answer, without the stream's own timing
sub events_timeless {
    my ($text) = @_;
    return join "\n", map { s/^data: (\{.*\})$/'data: ' . timeless($1)/ger }
        split /\n/, $text;
}

# the [alert]/[crit]/[emerg] lines so far
sub no_bad_lines {
    my ($what) = @_;
    my @bad = $ngx->bad_lines;
    is(scalar @bad, 0, "$what: no [alert] in error.log") or diag(@bad);
}


put_file("$dir/files/test.txt", "Hello over h2\n");
put_file("$dir/data/log.ndjson", join '', map {
    qq({"id":$_,"level":"@{[ $_ % 7 ? 'info' : 'error' ]}","msg":"request $_ @{[ $_ % 5 ? 'ok' : 'timeout' ]}"}\n)
} 1 .. 400);

# a JSON document of about 1.9 MB, one of about 5 MB
my $json_2m = '{"items":[' . join(',', map { qq({"id":$_,"name":"n$_"}) } 1 .. 70000) . ']}';
my $json_5m = '{"items":[' . join(',', map { qq({"id":$_,"name":"n$_"}) } 1 .. 210000) . ']}';
cmp_ok(length $json_2m, '<', 2 * 1024 * 1024, 'the 2 MB document fits asyncx_json_max_size');
cmp_ok(length $json_5m, '>', 4 * 1024 * 1024, 'the 5 MB document does not');


# 1. The same answers over HTTP/1.0, h2c and h2 over TLS

my @same = (
    [GET => '/files/read?path=test.txt'],
    [GET => '/files/read?path=../x'],
    [POST => '/files/read?path=test.txt'],
    [POST => '/files/write?path=same.txt', "a\0b\x{ff}c"],
    [POST => '/auth/hash', '{"password":"x\u0000y"}'],
    [POST => '/auth/hash', 'not json'],
    [POST => '/auth/verify', '{"password":"a","hash":"bad"}'],
    [POST => '/parse/json', '{"a":[1,2,{"b":null}]}'],
    [POST => '/parse/json', '{"a":'],
    [POST => '/parse/json', $json_2m],
    [POST => '/parse/json', $json_5m],
    [POST => '/regex/match', '{"pattern":"t(i)me","texts":["timeout","x","time\u00e9"]}'],
    [POST => '/regex/match', '{"pattern":"(","texts":["a"]}'],
    [GET => '/rate-limit-test?requests=4'],
    [GET => '/rate-limit-test?requests=0'],
    [POST => '/p?x=1', '{"order":7}'],
    [POST => '/p', '[1,'],
    [PUT => '/p', '{}'],
    [GET => '/search?keyword=timeout'],
    [GET => '/search?keyword=a&batch_size=0'],
    [GET => '/stream/search?keyword=python&data_size=300'],
    [GET => '/zone'],
);

for my $tls (0, 1) {
    my $proto = $tls ? 'h2 over TLS' : 'h2c';
    my $res = h2(tls => $tls, port => $tls ? $TLS : $ngx->port,
                 requests => [ map { { method => $_->[0], path => $_->[1],
                     defined $_->[2] ? (body_hex => unpack('H*', $_->[2]))
                                     : () } } @same ]);
    ok($res->{ok}, "$proto: every stream answered")
        or diag($res->{error} // $J->encode([map { [$_->{status}, $_->{bytes}, $_->{ended}, $_->{reset}] } @{ $res->{responses} }]));

    for my $i (0 .. $#same) {
        my ($m, $path, $body) = @{ $same[$i] };
        my ($code, $text) = h1($m, $path, $body);
        my $r = $res->{responses}[$i] // {};
        my $cmp = $path =~ /search/ ? \&events_timeless : \&timeless;
        utf8::decode($text);
        is("$r->{status} " . $cmp->($r->{body} // ''),
           "$code " . $cmp->($text), "$proto: $m $path as over HTTP/1.0");
        ok($r->{utf8}, "$proto: $m $path: valid UTF-8");
    }
}

# the 413 is the module's (asyncx_json_max_size), the 2 MB one is parsed
my ($code, $text) = h1(POST => '/parse/json', $json_5m);
like("$code $text", qr/^413 \{"error": "request body is larger than 2097152 bytes \(asyncx_json_max_size\)"/,
     'the 5 MB document: the module\'s JSON 413');
($code, $text) = h1(POST => '/parse/json', $json_2m);
like("$code $text", qr/^200 \{"parsed_items":1,.*"bytes":${\ length $json_2m},/,
     'the 2 MB document: parsed, every byte');
no_bad_lines('same answers');
at_rest('same answers');


# 2. Bodies through the v2 state machine: without a content-length, in
#    DATA frames of 7 bytes, with NUL bytes; the file holds every byte

my $bin = join '', map { chr($_ % 256) } 0 .. 70000;
my $res = h2(requests => [
    { method => 'POST', path => '/files/write?path=frames.bin',
      body_hex => unpack('H*', $bin), no_length => 1, frame => 4099 },
    { method => 'POST', path => '/files/write?path=small.bin',
      body_hex => unpack('H*', "x\0y\0"), frame => 1 },
    { method => 'POST', path => '/parse/json', body => $json_2m,
      no_length => 1, frame => 7000 },
    { method => 'POST', path => '/parse/json', body => $json_5m,
      no_length => 1 },
    { method => 'POST', path => '/auth/hash',
      body => '{"password":"' . ('p' x 70000) . '"}', no_length => 1 },
]);
ok($res->{ok}, 'bodies without a length: every stream answered')
    or diag($J->encode([map { [$_->{status}, $_->{bytes}, $_->{reset}] } @{ $res->{responses} }]), $res->{error} // '');
my @r = @{ $res->{responses} };
is("$r[0]{status} $r[0]{body}",
   qq(200 {"written":70001,"path":"frames.bin","async":true}\n),
   'no content-length, DATA frames of 4099 bytes: all written');
is(do { local (@ARGV, $/) = "$dir/files/frames.bin"; <> }, $bin,
   '... the file holds every byte, NULs included');
is("$r[1]{status} $r[1]{body}",
   qq(200 {"written":4,"path":"small.bin","async":true}\n),
   'one-byte DATA frames: written');
like("$r[2]{status} $r[2]{body}",
     qr/^200 \{"parsed_items":1,.*"bytes":${\ length $json_2m},/,
     'a 2 MB JSON body in 7000-byte frames, no length: parsed whole');
is("$r[3]{status} $r[3]{body}",
   qq(413 {"error": "request body is larger than 2097152 bytes (asyncx_json_max_size)", "status": 413}\n),
   'a 5 MB JSON body, no length: the module\'s 413 once it is read');
is("$r[4]{status} $r[4]{body}",
   qq(413 {"error": "request body is larger than 65536 bytes", "status": 413}\n),
   'a 70 KB password, no length: 413');
no_bad_lines('bodies');
at_rest('bodies');


# 3. RST_STREAM and a closed connection in the middle of a body: nothing
#    was posted, the connection's other streams are served

my @bodies = (
    [ '/files/write?path=cut.txt', 'z' x 200000 ],
    [ '/parse/json', $json_2m ],
    [ '/auth/hash', '{"password":"' . ('q' x 60000) ],
    [ '/regex/match', '{"pattern":"a","texts":["' . ('a' x 200000) ],
    [ '/p', '{"pad":"' . ('x' x 7000) ],
);

for my $then ('rst', 'close') {
    my $before = status()->{pools}{cpu}{posted} // -1;
    $res = h2(requests => [ map { { method => 'POST', path => $_->[0],
                                    body => $_->[1],
                                    partial => 3000 } } @bodies ],
              until => { status => "http://127.0.0.1:$H1/status",
                         expr => 's["pools"]["io"]["queued"] == 0' },
              then => $then, probe => '/files/read?path=test.txt');
    ok($res->{ok}, "$then mid-body: the streams were sent");
    is($res->{alive}, 1, "$then mid-body: the connection still serves")
        if $then eq 'rst';
    is(join(' ', map { $_->{status} // 'none' } @{ $res->{responses} }),
       'none none none none none', "$then mid-body: no answer started");
    at_rest("$then mid-body");
    is(status()->{pools}{cpu}{posted}, $before,
       "$then mid-body: no task was posted for a body never finished");
}
no_bad_lines('mid-body');


# 4. RST_STREAM and a closed connection while a task waits in the pool:
#    the request lives until the task is done (blocked), then is freed;
#    the hold keeps the pool's one thread, so the task cannot end first

for my $then ('rst', 'close') {
    my $hold = Asyncx::Hold->new($dir);
    my $child = do {
        local $ngx->{port} = $H1;       # spawn_request speaks HTTP/1.0
        $ngx->spawn_request("GET /hold?fifo=" . $hold->path
                            . " HTTP/1.0\r\nHost: localhost\r\n\r\n");
    };
    ok($hold->wait_taken, "$then mid-task: the hold has the cpu thread");

    my $terminated = grep { /http terminate cleanup count:1 blk:1/ }
                     $ngx->error_log;

    # two hashes and a parse queue behind the hold; the connection
    # carries a stream that keeps going meanwhile (a status request)
    $res = h2(requests => [
        { method => 'POST', path => '/auth/hash', body => '{"password":"a"}' },
        { method => 'POST', path => '/auth/hash', body => '{"password":"b"}' },
        { method => 'POST', path => '/parse/json', body => $json_2m },
    ], until => { status => "http://127.0.0.1:$H1/status",
                  expr => 's["pools"]["cpu"]["queued"] == 3' },
       then => $then, probe => '/status');
    ok($res->{ok}, "$then mid-task: 3 tasks queued behind the hold");
    is($res->{alive}, 1, "$then mid-task: the connection still serves")
        if $then eq 'rst';

    ok($ngx->wait_for("$then: 3 requests terminated", sub {
           (grep { /http terminate cleanup count:1 blk:1/ } $ngx->error_log)
               >= $terminated + 3 }),
       "$then mid-task: nginx terminated the 3 blocked requests");
    is(status()->{pools}{cpu}{queued}, 3,
       "$then mid-task: their tasks still wait (not freed under a task)");

    $hold->release;
    $ngx->collect($child);
    at_rest("$then mid-task");
}
no_bad_lines('mid-task');


# 5. The limiter: 103 streams of one connection, 3 in the slots and 100
#    in the queue; the waiting ones reset, then the connection closed
#    with 100 waiting.  Slots and places come back, the next request is
#    admitted at once.

my $full = 's["limit_zones"]["z"]["concurrent"]["current"] == 3 '
         . 'and s["limit_zones"]["z"]["waiting"] == 100';
my $limited = { path => '/limited/call?delay=60s', repeat => 103 };

for my $then ('rst_open', 'close') {
    $res = h2(requests => [ $limited ],
              until => { status => "http://127.0.0.1:$H1/status",
                         expr => $full },
              then => $then, probe => '/status',
              $then eq 'rst_open'
                  ? (after => { status => "http://127.0.0.1:$H1/status",
                                expr => 's["limit_zones"]["z"]["waiting"] == 0' })
                  : ());
    ok($res->{ok}, "limiter, $then: 3 in the slots, 100 waiting, then none");
    is($res->{alive}, 1, "limiter, $then: the connection still serves")
        if $then eq 'rst_open';
    at_rest("limiter, $then");
    my $z = status()->{limit_zones}{z};
    is(join(' ', map { "$_->{waiting}/$_->{granted}/$_->{held}" }
                 @{ $z->{workers} }),
       '0/0/0', "limiter, $then: the worker holds and waits for nothing");

    my ($c, $b) = h1(GET => '/limited/call');
    is($c, 200, "limiter, $then: the next request is admitted at once");
}

# a hundred-request limit test reset in the middle: its subrequests wait
# in the zone's queue and go with it
$res = h2(requests => [ { path => '/rate-limit-test?requests=100' },
                        $limited ],
          until => { status => "http://127.0.0.1:$H1/status",
                     expr => 's["limit_zones"]["z"]["waiting"] > 0' },
          then => 'rst', probe => '/status');
ok($res->{ok} && $res->{alive}, 'rate-limit-test reset while its calls wait');
at_rest('rate-limit-test reset');
no_bad_lines('limiter');


# 6. SSE: streams that stop reading (window 100, no WINDOW_UPDATE), then
#    reset or closed; a stream left stalled ends at send_timeout by
#    itself; Last-Event-ID resumes over h2 as over HTTP/1.0

my @sse = ('/search?keyword=timeout', '/stream/search?keyword=python&data_size=100000');
my $streams2 = 's["streams"]["active"] == 2';

for my $then ('rst', 'close') {
    $res = h2(window => 100, ack => JSON::PP::false,
              requests => [ map { { path => $_ } } @sse ],
              until => { status => "http://127.0.0.1:$H1/status",
                         expr => $streams2, data => 1 },
              then => $then, probe => '/status');
    ok($res->{ok}, "SSE, $then: two streams stalled by flow control");
    is(join(' ', map { "$_->{status} $_->{bytes}" } @{ $res->{responses} }),
       '200 100 200 100', "SSE, $then: each got its window's 100 bytes");
    is($res->{alive}, 1, "SSE, $then: the connection still serves")
        if $then eq 'rst';
    at_rest("SSE, $then");
}

my $timed_out = grep { /timed out/ } $ngx->error_log;
$res = h2(window => 100, ack => JSON::PP::false,
          requests => [ { path => '/stalled?keyword=timeout' } ],
          until => { status => "http://127.0.0.1:$H1/status",
                     expr => 's["streams"]["aborted"] > 0 and s["streams"]["active"] == 0' },
          then => 'wait');
ok($res->{ok}, 'SSE left stalled: it ends by itself (send_timeout 1s)');
ok((grep { /timed out/ } $ngx->error_log) > $timed_out,
   'SSE left stalled: the time-out is logged');
at_rest('SSE stalled');

# heartbeats while the stream's job waits behind the hold, then the
# stream ends normally once the thread is free
{
    my $hold = Asyncx::Hold->new($dir);
    my $child = do {
        local $ngx->{port} = $H1;
        $ngx->spawn_request("GET /hold?fifo=" . $hold->path
                            . " HTTP/1.0\r\nHost: localhost\r\n\r\n");
    };
    ok($hold->wait_taken, 'heartbeat: the hold has the cpu thread');

    # a second session releases the hold once two heartbeats came
    $res = h2(requests => [ { path => '/heartbeat?keyword=python&data_size=100' } ],
              until => { body_re => '(?s):.*keepalive.*\n\n:.*keepalive' },
              then => 'rst', probe => '/status');
    ok($res->{ok}, 'heartbeat over h2: two keepalive comments while the job waits');
    like($res->{responses}[0]{body}, qr/\A(?::[^\n]*\n\n)+\z/,
         'heartbeat over h2: comments only, nothing else before the job');
    $hold->release;
    $ngx->collect($child);
    at_rest('heartbeat');

    # and with the thread free, the whole stream over h2
    $res = h2(requests => [ { path => '/heartbeat?keyword=python&data_size=100' } ]);
    like($res->{responses}[0]{body}, qr/"type": "complete"/,
         'heartbeat location: the stream completes over h2');
}

my (undef, $all) = h1(GET => '/search?keyword=timeout');
my @ids = $all =~ /^id: (\S+)$/mg;
my $resume = $ids[2];
my ($h1code, $h1tail) = do {
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$H1") or die;
    print $s "GET /search?keyword=timeout HTTP/1.0\r\nHost: x\r\n"
             . "Last-Event-ID: $resume\r\n\r\n";
    local $/;
    my $raw = <$s>;
    ($raw =~ m{^HTTP/1\.\d (\d+)}, $raw =~ /\r\n\r\n(.*)\z/s);
};
$res = h2(requests => [ { path => '/search?keyword=timeout',
                          headers => [ [ 'last-event-id', $resume ] ] } ]);
my $r0 = $res->{responses}[0];
ok(@ids > 4 && $h1code == 200, 'Last-Event-ID: a stream of several events to resume');
is(events_timeless($r0->{body}), events_timeless($h1tail),
   'Last-Event-ID over h2: the same events as over HTTP/1.0');
unlike($r0->{body}, qr/^id: \Q$ids[1]\E$/m, '... none before the id');
no_bad_lines('SSE');


# 7. The pipeline with proxy_pass calls, reset and closed in the middle
#    of a call: the backend's mock holds the call until the client goes

for my $then ('rst', 'close') {
    my $mock = status()->{pipelines}{mock}{total} // 0;
    $res = h2(requests => [ { method => 'POST', path => '/p?delay=60s',
                              body => '{"order":1}', repeat => 5 } ],
              until => { status => "http://127.0.0.1:$H1/status",
                         expr => "s['pipelines']['active'] == 5 and "
                                 . "s['pipelines']['mock']['active'] == 5" },
              then => $then, probe => '/status');
    ok($res->{ok}, "pipeline, $then: 5 pipelines in their second stage");
    is($res->{alive}, 1, "pipeline, $then: the connection still serves")
        if $then eq 'rst';
    at_rest("pipeline, $then");
    my $p = status()->{pipelines};
    is($p->{mock}{total}, $mock + 5, "pipeline, $then: the 5 slow calls "
       . 'reached the backend and ended with their clients');
}
no_bad_lines('pipeline');

# The pipeline's reserved pool block had an unaligned end for an odd
# body length: an aligned allocation passed ngx_palloc_small()'s size
# check past the end and overran the block (heap corruption, the worker
# aborted at the stream's close).  Over h2 a request with no header but
# its content-length hit it at once; bodies of every length mod 16.
$res = h2(requests => [ map { { method => 'POST', path => '/p',
                                body => '{"k":"' . ('x' x $_) . '"}' } }
                        0 .. 15 ]);
is(join(' ', map { $_->{status} // 'none' } @{ $res->{responses} }),
   join(' ', ('200') x 16),
   'pipeline bodies of 8 to 23 bytes over h2, no other header: all 200');
is(scalar(grep { /unused: \d{12,}/ } $ngx->error_log), 0,
   'no pool block was overrun (a negative "unused" at its free)');
is(status()->{pipelines}{active}, 0, 'the worker is alive and at rest');

# before the temporary prefix goes: make test-asan reads the error.log
$ngx->stop;

done_testing();
