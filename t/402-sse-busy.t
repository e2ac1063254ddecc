# A stream whose next batch finds the thread pool queue full ends with an
# error event ("server busy"), not with a cut connection or a hang.
#
# Deterministic through flow control: the stream never posts a batch
# while the client has unread output.  So:
#   1. a client opens a large search stream and stops reading, with a
#      small receive buffer: nginx fills the socket and waits;
#   2. two slow hashes fill the pool (threads=1 max_queue=1: one runs,
#      one waits);
#   3. the client reads again: nginx flushes, posts the next batch, the
#      queue is full, and the stream ends with the error event.
# It runs its own nginx (one worker) on TEST_NGINX_PORT + 4
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

plan skip_all => 'TEST_NGINX_LOAD_MODULES is not set'
    unless Asyncx::OwnNginx::module_so();

# about 1.7 s of PBKDF2 per hash natively, far longer than the drain in step 3
my $rounds = 8000000;

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

sub request { $ngx->request(@_) }
sub get { request("GET $_[0] HTTP/1.0\r\nHost: localhost\r\n\r\n", $_[1]) }

for (1 .. 100) { last if get('/asyncx/status', 1) =~ m{^HTTP/1\.1 200}; sleep 0.05 }
like(get('/asyncx/status'), qr{^HTTP/1\.1 200}, 'nginx is up');

# 1. a stream whose client stops reading after the first bytes
my $sse = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 2)
    or die "connect: $!";
setsockopt($sse, SOL_SOCKET, SO_RCVBUF, 4096);
print $sse "GET /stream/search?keyword=python&data_size=10000000 HTTP/1.1\r\n"
         . "Host: localhost\r\nConnection: close\r\n\r\n";
sysread($sse, my $first, 256);
like($first, qr{^HTTP/1\.1 200 .*text/event-stream}s, 'the stream starts');
sleep 0.5;    # nginx fills the socket and stops producing

# 2. two slow hashes: one runs, one waits in the queue of one
my @hashers;
for my $i (1 .. 2) {
    my $pid = fork // die;
    if ($pid == 0) {
        my $res = request("POST /auth/hash HTTP/1.0\r\nHost: localhost\r\n"
                          . "Content-Length: 20\r\n\r\n{\"password\": \"slow\"}",
                          30);
        exit($res =~ m{^HTTP/1\.1 200} ? 0 : 1);
    }
    push @hashers, $pid;
    sleep 0.2;
}

my $st = get('/asyncx/status');
$st =~ s/^.*?\r\n\r\n//s;
my $pool = eval { JSON::PP::decode_json($st)->{pools}{tiny} } // {};
is(($pool->{running} // -1) . '/' . ($pool->{queued} // -1), '1/1',
   'the pool is full: one hash running, one queued');

# 3. the client reads again, to the end
my ($t0, $stream) = (time, $first);
$sse->blocking(0);
while (time - $t0 < 20) {
    my $n = sysread($sse, my $buf, 65536);
    last if defined $n && $n == 0;
    if (defined $n) { $stream .= $buf } else { sleep 0.005 }
}
my $took = time - $t0;
close $sse;

my @events = $stream =~ /^data: (.*)$/mg;
my $last = JSON::PP::decode_json($events[-1] // '{}');
is($last->{type}, 'error', 'the last event is an error event');
is($last->{message}, 'server busy: thread pool queue is full',
   '... saying the server is busy');
cmp_ok(scalar(grep { /"type": ?"progress"/ } @events), '>=', 1,
       'progress events came before it');
like($stream, qr/0\r\n\r\n\z/, 'the chunked stream is properly terminated');
cmp_ok($took, '<', 2.5, sprintf('at once, while the hashes still run (%.2f s)', $took));

my $failed = 0;
for (@hashers) { waitpid($_, 0); $failed++ if $? }
is($failed, 0, 'both hashes completed');

$st = get('/asyncx/status');
$st =~ s/^.*?\r\n\r\n//s;
my $j = JSON::PP::decode_json($st);
is("$j->{streams}{active}/$j->{streams}{errors}", '0/1',
   'no stream left active, one counted as an error');
is("$j->{pools}{tiny}{running}/$j->{pools}{tiny}{queued}", '0/0',
   'the pool is idle again');

my @el = $ngx->error_log;
ok((grep { /\[error\] .*asyncx sse: cannot post the next batch, thread pool queue is full/ } @el),
   'the error log names the cause');
is(scalar(grep { /\[(alert|crit|emerg)\]/ } @el), 0, 'no alert, crit or emerg lines');

$ngx->stop;

done_testing();
