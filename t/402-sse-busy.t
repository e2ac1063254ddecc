# A stream whose next batch finds the thread pool queue full ends with an
# error event ("server busy"), not with a cut connection or a hang.
#
# Deterministic through flow control: the stream never posts a batch
# while the client has unread output.  So:
#   1. a client opens a large search stream and stops reading, with a
#      small receive buffer.  Every record matches "record", so one
#      batch's events (about 130 kB) are far more than the two socket
#      buffers hold: the stream cannot finish sending its first batch
#      and posts no second one.  When the module's counters show no
#      task of the pool queued or running, the stream is in that state
#      for good (it posts in the same event that sends a batch's end);
#   2. the pool is filled (threads=1 max_queue=1): the test helper
#      (t/hold/, Asyncx::Hold) holds the only thread, one hash waits in
#      the queue;
#   3. the client reads again: nginx flushes, posts the next batch, the
#      queue is full, and the stream ends with the error event, while
#      the thread is still held;
#   4. the test releases the thread; the hash is served.
# Nothing waits for a time or races a computation.
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
use Asyncx::Hold;
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

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
            asyncx_pbkdf2_iterations 1000;
            asyncx_password_hash;
        }
        location = /hold { asyncx_test_hold tiny; }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

my $port = $ngx->port;

sub request { $ngx->request(@_) }
sub get { request("GET $_[0] HTTP/1.0\r\nHost: localhost\r\n\r\n", $_[1]) }

like(get('/asyncx/status'), qr{^HTTP/1\.1 200}, 'nginx is up');

sub pool { ($ngx->json('/asyncx/status') // {})->{pools}{tiny} // {} }

# 1. a stream whose client stops reading after the first bytes
my $sse = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 2)
    or die "connect: $!";
setsockopt($sse, SOL_SOCKET, SO_RCVBUF, 4096);
print $sse "GET /stream/search?keyword=record&data_size=10000000 HTTP/1.1\r\n"
         . "Host: localhost\r\nConnection: close\r\n\r\n";
sysread($sse, my $first, 256);
like($first, qr{^HTTP/1\.1 200 .*text/event-stream}s, 'the stream starts');
# no task in the pool: the stream waits for its client, for good
ok($ngx->wait_for('the stream to wait for its client',
                  sub { my $p = pool(); defined $p->{running}
                        && $p->{running} == 0 && $p->{queued} == 0 }),
   'the stream stops producing: the client does not read');

# 2. the helper holds the only thread, one hash waits in the queue
my $hold = Asyncx::Hold->new($ngx->dir);
my $held = $ngx->spawn_request("GET /hold?fifo=" . $hold->path
                               . " HTTP/1.0\r\nHost: localhost\r\n\r\n");
ok($hold->wait_taken, 'the helper task holds the pool\'s only thread');

my $hasher = $ngx->spawn_request("POST /auth/hash HTTP/1.0\r\nHost: localhost\r\n"
                                 . "Content-Length: 20\r\n\r\n{\"password\": \"slow\"}");
ok($ngx->wait_for('the hash in the queue', sub { (pool()->{queued} // 0) == 1 }),
   'the pool is full: the thread held, one hash queued');

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
cmp_ok(scalar(grep { /"type": ?"progress"/ } @events), '>=', 1,
       'progress events came before it');
like($stream, qr/0\r\n\r\n\z/, 'the chunked stream is properly terminated');

# the stream ended while the thread was still held: only now release it
$hold->release;
like($ngx->collect($held), qr{^HTTP/1\.1 200 }, 'the helper task ended when released');
like($ngx->collect($hasher), qr{^HTTP/1\.1 200 .*"hash":"pbkdf2_sha256\$1000\$}s,
     'the queued hash was served');

my $st = get('/asyncx/status');
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
