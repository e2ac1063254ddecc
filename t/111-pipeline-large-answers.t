# A call through proxy_pass whose answer is larger than proxy_buffers:
# nginx buffers it to a temporary file (default), or, with
# proxy_max_temp_file_size 0, can hold no more of it.  Larger than the
# capture buffer too, the call is too_large, at once, and the client
# request ends: the HTTP/1.0 connection is closed after the 502, a
# keep-alive one serves the next request, the worker's descriptors come
# back to where they were and a graceful exit logs no "open socket left
# in connection".  A static answer (Content-Length) and a chunked one.
#
# Its own nginx (master and one worker, for the worker's exit checks) on
# TEST_NGINX_PORT + 6, the backend server inside it on + 7.  Nothing is
# timed: a leaked request shows as a connection never closed (the read
# gives up after 30 s), as descriptors that never come back, and as
# [alert] lines at exit; a stalled call as the outcome "timeout".

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Time::HiRes qw(time sleep);
use IO::Socket::INET;
use Asyncx::OwnNginx;

require './t/pipeline.pl';

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $backend = ($ENV{TEST_NGINX_PORT} || 1984) + 7;

my $ngx = Asyncx::OwnNginx->new(offset => 6, name => 'large-answers',
                                workers => 1, dirs => ['html/b'],
                                http => <<"HTTP");
    keepalive_timeout 60s;
    log_format te 'backend sent \$request_uri with transfer-encoding '
                  '"\$sent_http_transfer_encoding"';

    server {
        listen 127.0.0.1:$backend;
        default_type application/json;

        # a POST to a static file: the file, with Content-Length
        location /b/ { root \$DIR/html; error_page 405 =200 \$uri; }

        # the same file without Content-Length: SSI sends it in chunks
        # (the access log line goes to error.log for the test to see)
        location /chunked/ {
            access_log \$DIR/logs/error.log te;
            alias \$DIR/html/b/;
            ssi on;
            ssi_types application/json;
            error_page 405 =200 \$uri;
        }
    }

    server {
        listen 127.0.0.1:\$PORT;
        default_type application/json;

        location = /asyncx/status { asyncx_status; }

        # a stalled call would answer "timeout" after 10 s
        location /temp/ {
            asyncx_pipeline;
            asyncx_call_timeout 10s;
            asyncx_stage s1 c=/be\$uri;
        }

        location /notemp/ {
            asyncx_pipeline;
            asyncx_call_timeout 10s;
            asyncx_stage s1 c=/be\$uri;
        }

        location /fits/ {
            asyncx_pipeline;
            asyncx_call_timeout 10s;
            asyncx_stage s1 c=/be\$uri;
        }

        # default proxy_buffers (8 x 4k): the answer goes to a temp file
        location /be/temp/ {
            internal;
            proxy_pass http://127.0.0.1:$backend/;
            proxy_http_version 1.1;
        }

        # no temp file: the answer cannot be held by proxy_buffers
        location /be/notemp/ {
            internal;
            proxy_pass http://127.0.0.1:$backend/;
            proxy_http_version 1.1;
            proxy_max_temp_file_size 0;
        }

        # a temp file, and a capture buffer the answer fits in
        location /be/fits/ {
            internal;
            proxy_pass http://127.0.0.1:$backend/;
            proxy_http_version 1.1;
            subrequest_output_buffer_size 256k;
        }
    }
HTTP

my $dir = $ngx->dir;
my $size = 100000;

{
    open my $fh, '>', "$dir/html/b/big.json" or die $!;
    print $fh '{"a": "', 'x' x $size, '"}', "\n";
}

# the worker: the only child of the master
sub worker {
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my ($pid, $ppid) = (<$fh> // '') =~ /^(\d+) \(.*\) \S+ (\d+)/ or next;
        return $pid if $ppid == $ngx->pid;
    }
    return undef;
}

sub fds {
    my ($pid) = @_;
    opendir my $d, "/proc/$pid/fd" or return -1;
    return scalar grep { !/^\./ } readdir $d;
}

# one answer off a socket: (status, headers, body), or () if the server
# did not give a whole answer within 30 s
sub read_answer {
    my ($s) = @_;
    my ($buf, $until) = ('', time + 30);

    while (time < $until) {
        if ($buf =~ /\A(HTTP\/1\.\d (\d+)[^\r]*\r\n(.*?)\r\n)\r\n/s) {
            my ($head, $code, $hdrs) = ($1, $2, $3);
            my ($len) = $hdrs =~ /^Content-Length: (\d+)/mi;
            my $start = length($head) + 2;

            return ($code, $hdrs, substr($buf, $start, $len))
                if defined $len && length($buf) >= $start + $len;
        }

        my $n = sysread($s, my $chunk, 65536);
        return () if defined $n && $n == 0;
        if ($n) { $buf .= $chunk } else { sleep 0.01 }
    }

    return ();
}

# after an answer: 1 once the server has closed the connection, 0 if it
# is still open after 30 s
sub closed {
    my ($s) = @_;
    my $until = time + 30;

    while (time < $until) {
        my $n = sysread($s, my $chunk, 65536);
        return 1 if defined $n && $n == 0;
        return 0 if $n;
        sleep 0.01;
    }

    return 0;
}

sub connect_ngx {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ngx->port,
                                  Timeout => 5) or die "connect: $!";
    $s->blocking(0);
    return $s;
}

sub post {
    my ($s, $path, $version, $more) = @_;
    print $s "POST $path HTTP/$version\r\nHost: x\r\n$more"
             . "Content-Length: 2\r\n\r\n{}";
}

my $too_large = '{"calls":{"c":{"attempts":1,"error":"answer larger than '
    . 'the capture buffer (subrequest_output_buffer_size)","ms":"N",'
    . '"outcome":"too_large","stage":"s1","status":200}},'
    . '"error":"required call \"c\" failed","outcome":"failed",'
    . '"stages":[{"calls":["c"],"ms":"N","name":"s1"}],'
    . '"timing":{"calls_sum_ms":"N","critical_path_ms":"N",'
    . '"mode":"parallel","total_ms":"N"}}' . "\n";

# a first pipeline makes the worker open what it keeps open
{
    my $s = connect_ngx();
    post($s, '/fits/b/big.json', '1.0', '');
    my ($code, undef, $body) = read_answer($s);

    is($code, 200, 'an answer that fits the capture buffer: 200');

    my $d = eval { pl_dec($body) } // {};
    is(length($d->{calls}{c}{result}{a} // ''), $size,
       'the call\'s answer is whole (read back from the temp file)');
}

my $worker = worker();
ok($worker, 'the worker is found');

my $base = fds($worker);
ok($base > 0, "the worker has $base descriptors open");

for my $kind ('temp', 'notemp') {
    for my $src ('b', 'chunked') {
        my $path = "/$kind/$src/big.json";

        # HTTP/1.0: the connection closes once the request has ended
        for my $i (1 .. 3) {
            my $s = connect_ngx();
            post($s, $path, '1.0', '');
            my ($code, undef, $body) = read_answer($s);

            is($code, 502, "$path #$i: 502");
            is(eval { pl_shape($body) } // $body, $too_large,
               "$path #$i: the call is too_large");
            ok(closed($s), "$path #$i: the connection is closed after the "
                           . 'answer (the request has ended)');
        }

        # keep-alive: the next request on the connection is served
        {
            my $s = connect_ngx();
            post($s, $path, '1.1', '');
            my ($code, $hdrs) = read_answer($s);

            is($code, 502, "$path keep-alive: 502");
            like($hdrs // '', qr/^Connection: keep-alive/mi,
                 "$path keep-alive: the connection is kept");

            post($s, '/fits/b/big.json', '1.1', "Connection: close\r\n");
            ($code) = read_answer($s);

            is($code, 200, "$path keep-alive: the next request is answered");
            ok(closed($s), "$path keep-alive: closed as asked");
        }

        # at most as many: one the worker had at the start (a connection
        # of the previous path) may have closed since
        ok($ngx->wait_for("$base descriptors in the worker",
                          sub { fds($worker) <= $base }, 10),
           "$path: the worker's descriptors are back to $base or fewer (now "
           . fds($worker) . ')');
    }
}

my @logs = $ngx->error_log;

is(scalar(grep { /an upstream response is buffered to a temporary file/ }
           @logs), 2 * 4 + 1 + 4,
   'the default location buffered each answer to a temp file');

is(scalar(grep { m{^backend sent /chunked/big\.json with }
                 && /transfer-encoding "chunked"$/ } @logs), 2 * 4,
   'the backend sent the chunked answers in chunks');

is(scalar(grep { /too big subrequest response/ } @logs), 4 * 4,
   'the capture refused each answer');

my $status = $ngx->json('/asyncx/status');
is($status->{pipelines}{active}, 0, 'no pipeline is active');

$ngx->stop;

my @bad = $ngx->bad_lines;
is(scalar @bad, 0, 'no [alert], [crit] or [emerg] line, at the worker\'s '
                   . 'exit either ("open socket left in connection")')
    or diag(@bad);

done_testing();
