# A stream whose next batch finds the thread pool queue full ends with an
# error event ("server busy"), not with a cut connection or a hang.
#
# Deterministic through flow control, with no CPU race: the stream never
# posts a batch while the client has unread output.  So:
#   1. a client opens a large search stream and stops reading, with a
#      small receive buffer.  Every record matches "record", so one
#      batch's events (about 130 kB) are far more than both socket
#      buffers hold: the stream cannot finish sending its first batch
#      and posts no second one, for good.  The test waits until the
#      status shows no job queued or running and the stream's job count
#      still;
#   2. two hashes of 2^31 - 1 PBKDF2 iterations (hours) fill the pool
#      (threads=1 max_queue=1: one runs, one waits), seen in the status;
#   3. the client reads again: nginx flushes, posts the next batch, the
#      queue is full, and the stream ends with the error event, while the
#      pool is still full (the status says so afterwards);
#   4. the hashes never end by themselves: the worker is killed, and the
#      one the master starts has nothing in flight.
# It runs its own nginx (master + one worker) on TEST_NGINX_PORT + 4
# (t/lib/Asyncx/OwnNginx.pm).

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(time sleep);
use JSON::PP ();
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

# hours of PBKDF2: the hashes hold the pool until the worker is killed
my $rounds = 2147483647;

my $ngx = Asyncx::OwnNginx->new(offset => 4, name => 'sse-busy', workers => 1,
    main => 'thread_pool tiny threads=1 max_queue=1;', http => <<"HTTP");
    asyncx_thread_pools io=tiny cpu=tiny;

    server {
        listen 127.0.0.1:\$PORT sndbuf=16k;

        location = /stream/search {
            asyncx_sse search;
            asyncx_sse_batch_size 1000;
        }
        location = /auth/hash {
            asyncx_pbkdf2_iterations $rounds;
            asyncx_pbkdf2_max_iterations $rounds;
            asyncx_password_hash;
        }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

my $port = $ngx->port;

# the hashes never end: no worker of this nginx may outlive the test
# (an orphaned one would hold the test's output open)
sub kill_workers {
    my ($master) = @_;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my ($pid, $ppid) = (<$fh> // '') =~ /^(\d+) \(.*\) \S+ (\d+)/ or next;
        kill 'KILL', $pid if $ppid == $master;
    }
}

END { kill_workers($ngx->pid) if $ngx && $ngx->pid }

sub status {
    my ($code, $body) = $ngx->get('/asyncx/status');
    return $code == 200 ? JSON::PP::decode_json($body) : undef;
}

# the status once $cond holds for it 3 times in a row (30 s at most)
sub wait_until {
    my ($cond) = @_;
    my ($st, $n, $t0) = (undef, 0, time);
    while (time - $t0 < 30) {
        $st = status();
        if ($st && $cond->($st)) {
            return $st if ++$n == 3;
        } else {
            $n = 0;
        }
        sleep 0.05;
    }
    return undef;
}

my $st = wait_until(sub { 1 });
ok($st, 'nginx is up');

# 1. a stream whose client stops reading after the first bytes
my $sse = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 2)
    or die "connect: $!";
setsockopt($sse, SOL_SOCKET, SO_RCVBUF, 4096);
print $sse "GET /stream/search?keyword=record&data_size=10000000 HTTP/1.1\r\n"
         . "Host: localhost\r\nConnection: close\r\n\r\n";
sysread($sse, my $first, 256);
like($first, qr{^HTTP/1\.1 200 .*text/event-stream}s, 'the stream starts');

my $jobs = -1;
$st = wait_until(sub {
    my ($s) = @_;
    my $still = $s->{streams}{jobs} == $jobs;
    $jobs = $s->{streams}{jobs};
    return $still && $s->{pools}{tiny}{queued} == 0
           && $s->{pools}{tiny}{running} == 0;
});
ok($st, "nginx filled the socket and waits ($jobs jobs)");

# 2. two endless hashes: one runs, one waits in the queue of one
my @hashers;
for my $i (1 .. 2) {
    push @hashers, IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                         Timeout => 2) or die "connect: $!";
    print { $hashers[-1] } "POST /auth/hash HTTP/1.0\r\nHost: localhost\r\n"
        . "Content-Length: 20\r\n\r\n{\"password\": \"slow\"}";
    my $want = "1/" . ($i - 1);
    $st = wait_until(sub {
        "$_[0]{pools}{tiny}{running}/$_[0]{pools}{tiny}{queued}" eq $want
    });
}
is($st ? "$st->{pools}{tiny}{running}/$st->{pools}{tiny}{queued}" : '',
   '1/1', 'the pool is full: one hash running, one queued');

# 3. the client reads again, to the end
my ($t0, $stream) = (time, $first);
$sse->blocking(0);
while (time - $t0 < 60) {
    my $n = sysread($sse, my $buf, 65536);
    last if defined $n && $n == 0;
    if (defined $n) { $stream .= $buf } else { sleep 0.005 }
}
close $sse;

my @events = $stream =~ /^data: (.*)$/mg;
my $last = JSON::PP::decode_json($events[-1] // '{}');
is($last->{type}, 'error', 'the last event is an error event');
is($last->{message}, 'server busy: thread pool queue is full',
   '... saying the server is busy');
# how many results fit in the socket buffers before the first progress
# event depends on the kernel's buffer sizes, not on the module
cmp_ok(scalar(grep { !/"type": ?"error"/ } @events), '>=', 1,
       'result or progress events came before it');
like($stream, qr/0\r\n\r\n\z/, 'the chunked stream is properly terminated');

$st = status();
is("$st->{streams}{active}/$st->{streams}{errors}", '0/1',
   'no stream left active, one counted as an error');
is("$st->{pools}{tiny}{running}/$st->{pools}{tiny}{queued}", '1/1',
   '... while the hashes still hold the pool');
is($st->{pools}{tiny}{rejected}, 1, 'the one rejected job is the batch');

# 4. the hashes would run for hours: the worker goes, nothing stays
my $pid = $st->{pid};
kill 'KILL', $pid;
close $_ for @hashers;
$st = wait_until(sub { $_[0]{pid} != $pid });
is($st ? "$st->{pools}{tiny}{running}/$st->{pools}{tiny}{queued}" : '',
   '0/0', 'the new worker has nothing in flight');

my @el = $ngx->error_log;
ok((grep { /\[error\] .*asyncx sse: cannot post the next batch, thread pool queue is full/ } @el),
   'the error log names the cause');
is(scalar(grep { /\[(alert|crit|emerg)\]/ && !/exited on signal 9/ } @el),
   0, 'no alert, crit or emerg lines but the kill');

kill_workers($ngx->pid);
$ngx->stop;

done_testing();
