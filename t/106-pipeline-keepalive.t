# A call abandoned after its timeout never delays the client's next
# request on the same keep-alive connection: the answer says
# "Connection: close" and, once it is sent, the request ends and takes
# the abandoned call with it (the mock's timer, the upstream connection
# of a proxied call).  Driven by a keep-alive client of its own, which
# the one-request-at-a-time Test::Nginx client cannot be.  Its own nginx
# runs on TEST_NGINX_PORT + 6 (and a backend server on + 7).

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Time::HiRes qw(time sleep);
use IO::Socket::INET;
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $backend = ($ENV{TEST_NGINX_PORT} || 1984) + 7;

# The abandoned calls would hold 30 s; every wait below is 5 s at most.
my $ngx = Asyncx::OwnNginx->new(offset => 6, name => 'keepalive',
                                http => <<HTTP);
    keepalive_timeout 60s;

    server {
        listen 127.0.0.1:$backend;
        location = /slow {
            asyncx_mock_service name=upstream-slow delay=30s echo=off;
        }
    }

    server {
        listen 127.0.0.1:\$PORT;
        asyncx_pipeline_answer exercise;

        location = /abandon {
            asyncx_pipeline;
            asyncx_call_timeout 100ms;
            asyncx_stage s fast=/svc/fast slow=/svc/slow;
            asyncx_call_optional slow;
        }

        location = /abandon-upstream {
            asyncx_pipeline;
            asyncx_call_timeout 100ms;
            asyncx_stage s fast=/svc/fast slow=/up/slow;
            asyncx_call_optional slow;
        }

        # the late call's answer (timer: 300 ms) comes before the
        # pipeline's (timers: 100 ms, then 4 x 90 ms chained)
        location = /late {
            asyncx_pipeline;
            asyncx_call_timeout 100ms;
            asyncx_stage s1 late=/svc/late;
            asyncx_stage s2 w1=/svc/wait;
            asyncx_stage s3 w2=/svc/wait;
            asyncx_stage s4 w3=/svc/wait;
            asyncx_stage s5 w4=/svc/wait;
            asyncx_call_optional late;
        }

        location = /plain {
            asyncx_pipeline;
            asyncx_stage s fast=/svc/fast;
        }

        # an answer of 8 MB: more than a socket takes in one write
        location = /abandon-big {
            asyncx_pipeline;
            asyncx_call_timeout 100ms;
            asyncx_stage s big=/svc/big?fail=big&fail_mode=big&big=8000000
                           slow=/svc/slow;
            asyncx_call_optional slow;
        }
        location = /svc/big {
            internal;
            subrequest_output_buffer_size 16m;
            asyncx_mock_service name=big max_big=16m echo=off;
        }

        location = /svc/fast { internal; asyncx_mock_service echo=off; }
        location = /svc/slow {
            internal;
            asyncx_mock_service name=slow delay=30s echo=off;
        }
        location = /svc/late {
            internal;
            asyncx_mock_service name=late delay=300ms echo=off;
        }
        location = /svc/wait {
            internal;
            asyncx_mock_service name=wait delay=90ms echo=off;
        }
        location /up/ {
            internal;
            proxy_read_timeout 60s;
            proxy_pass http://127.0.0.1:$backend/;
        }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

my $port = $ngx->port;

# A keep-alive HTTP/1.1 client: one connection, reused unless the
# server says "Connection: close" (then a new one, as browsers and
# connection pools do).
{
    package KeepAliveClient;

    sub new { bless { sock => undef, connects => 0 }, shift }

    sub connect {
        my ($self) = @_;
        $self->{sock} = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                              Timeout => 5)
            or die "connect: $!";
        $self->{connects}++;
    }

    # (status, headers text, body, seconds); status 0 on timeout or EOF
    sub post {
        my ($self, $path, $timeout) = @_;
        $self->connect unless $self->{sock};
        my $s = $self->{sock};
        my $t0 = Time::HiRes::time();
        print $s "POST $path HTTP/1.1\r\nHost: localhost\r\n"
                 . "Content-Length: 0\r\n\r\n";
        my $buf = '';
        my ($head, $len);
        while (Time::HiRes::time() - $t0 < $timeout) {
            my $rin = '';
            vec($rin, fileno($s), 1) = 1;
            next unless select(my $rout = $rin, undef, undef, 0.05);
            my $n = sysread($s, $buf, 65536, length $buf);
            last if !$n;
            if (!defined $head && $buf =~ /\r\n\r\n/) {
                ($head) = $buf =~ /^(.*?\r\n)\r\n/s;
                ($len) = $head =~ /^Content-Length: (\d+)/mi;
                $buf =~ s/^.*?\r\n\r\n//s;
            }
            last if defined $len && length $buf >= $len;
        }
        my $t = Time::HiRes::time() - $t0;
        return (0, '', '', $t) unless defined $len && length $buf >= $len;
        my ($status) = $head =~ m{^HTTP/1\.1 (\d+)};
        if ($head =~ /^Connection: close/mi) {
            $self->{closing} = $s;
            $self->{sock} = undef;
        }
        return ($status, $head, substr($buf, 0, $len), $t);
    }

    # seconds until the server closed the connection it said it would
    # close, or undef after $timeout
    sub wait_closed {
        my ($self, $timeout) = @_;
        my $s = delete $self->{closing} or return undef;
        my $t0 = Time::HiRes::time();
        while (Time::HiRes::time() - $t0 < $timeout) {
            my $rin = '';
            vec($rin, fileno($s), 1) = 1;
            next unless select(my $rout = $rin, undef, undef, 0.05);
            my $n = sysread($s, my $buf, 4096);
            return Time::HiRes::time() - $t0 if defined $n && $n == 0;
        }
        return undef;
    }
}

# the mock requests in flight (the backend server's too), from the
# module's own counters; a request that just ended may take a moment
sub mock_active {
    my $n;
    for (1 .. 20) {
        my (undef, $body) = $ngx->get('/asyncx/status');
        ($n) = $body =~ /"mock":\{"active":(\d+)/;
        last if defined $n && $n == 0;
        sleep 0.05;
    }
    return $n;
}

sub log_has {
    my ($re, $wait) = @_;
    my $t0 = time;
    do {
        return 1 if grep { /$re/ } $ngx->error_log;
        sleep 0.05;
    } while (time - $t0 < ($wait // 3));
    return 0;
}

# 1. a mock call abandoned at its timeout
{
    my $c = KeepAliveClient->new;
    my ($st, $head, $body) = $c->post('/abandon', 5);
    is($st, 200, 'abandon: answered at once');
    like($body, qr/"slow":\{"error":"no answer within 100 ms","kind":"timeout"/,
         'abandon: the slow call timed out');
    like($head, qr/^Connection: close\r$/m,
         'abandon: the answer closes the keep-alive connection');
    ok(defined $c->wait_closed(5), 'abandon: the server closed it');
    ok(log_has(qr/asyncx pipeline: 1 abandoned calls? still running, ended with the request/),
       'abandon: logged');
    is(mock_active(), 0, 'abandon: the abandoned call ended with the request');

    my ($st2, undef, $body2, $t2) = $c->post('/plain', 5);
    is($st2, 200, 'abandon: the next request is answered');
    ok($t2 < 5, 'abandon: without waiting for the abandoned call');
    note(sprintf "abandon: the next request took %.1f ms", $t2 * 1000);
    is($c->{connects}, 2, 'abandon: on a new connection');
}

# 2. a proxied call abandoned at its timeout: its upstream connection closes
{
    my $c = KeepAliveClient->new;
    my ($st, $head) = $c->post('/abandon-upstream', 5);
    is($st, 200, 'upstream: answered');
    like($head, qr/^Connection: close\r$/m, 'upstream: Connection: close');
    ok(defined $c->wait_closed(5), 'upstream: the server closed it');
    # the backend's mock is in the same nginx: it saw its client go
    is(mock_active(), 0, 'upstream: the upstream connection was closed');
    my ($st2, undef, undef, $t2) = $c->post('/plain', 5);
    is($st2, 200, 'upstream: the next request is answered at once');
}

# 3. a call that timed out but ended before the answer: keep-alive stays
{
    my $c = KeepAliveClient->new;
    my ($st, $head, $body) = $c->post('/late', 5);
    is($st, 200, 'late: answered');
    like($body, qr/"late":\{"error":"no answer within 100 ms"/,
         'late: the call timed out');
    unlike($head, qr/^Connection: close/mi, 'late: keep-alive kept');
    my ($st2) = $c->post('/plain', 5);
    is($st2, 200, 'late: the next request on the same connection');
    is($c->{connects}, 1, 'late: one connection for both');
}

# 3b. the same with an answer that takes many writes (8 MB to a client
# whose receive buffer is 4 KB): once the client has it all, the request
# ends and the connection closes, the abandoned call with it (it used to
# wait for the call: 30 s, the connection in CLOSE-WAIT after the
# client left).  3c: a client that sends more once the answer has begun
# (a pipelined request, which the answer's "Connection: close" turns
# down) still gets all of it, then the close: the connection is closed
# as nginx's lingering_close does, not reset over the unread request.

use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVBUF
              pack_sockaddr_in inet_aton);

# (the answer's head, its body, EOF seen, reset seen)
sub big_answer {
    my ($send_more) = @_;

    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096) or die "SO_RCVBUF: $!";
    connect($s, pack_sockaddr_in($port, inet_aton('127.0.0.1')))
        or die "connect: $!";
    syswrite($s, "POST /abandon-big HTTP/1.1\r\nHost: localhost\r\n"
                 . "Content-Length: 0\r\n\r\n");

    my ($raw, $eof, $reset, $reads, $t0) = ('', 0, 0, 0, time);
    while (time - $t0 < 15) {
        my $rin = '';
        vec($rin, fileno($s), 1) = 1;
        next unless select(my $rout = $rin, undef, undef, 0.05);
        my $n = sysread($s, $raw, 1 << 20, length $raw);
        if (!defined $n) { $reset = 1; last }
        if ($n == 0) { $eof = 1; last }
        if ($send_more && !$reads++) {
            syswrite($s, "GET /plain HTTP/1.1\r\nHost: localhost\r\n\r\n");
        }
    }
    close $s;

    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    return ($head // '', $body // '', $eof, $reset);
}

for my $more (0, 1) {
    my $what = $more ? 'big answer, more sent' : 'big answer';
    my ($head, $body, $eof, $reset) = big_answer($more);
    my ($len) = $head =~ /^Content-Length: (\d+)/mi;
    ok($len && $len > 8000000 && length($body) == $len,
       "$what: all of it arrived") or diag($head, length($body));
    ok($eof && !$reset, "$what: then the server closed the connection");
    is(mock_active(), 0, "$what: the abandoned call ended with it");
}

# 4. nothing left behind
{
    sleep 0.2;
    my ($code, $body) = $ngx->get('/asyncx/status');
    like($body, qr/"pipelines":\{"active":0,/, 'status: no pipeline active');
    like($body, qr/"mock":\{"active":0,/, 'status: no mock request active');
    my @bad = grep { /\[(alert|crit|emerg)\]/ } $ngx->error_log;
    is(scalar @bad, 0, 'error log: no alert') or diag(@bad);
}

$ngx->stop;

done_testing();
