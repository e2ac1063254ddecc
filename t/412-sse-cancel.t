# A stream whose client leaves while its next job waits in the thread
# pool's queue: the job is skipped when a thread takes it, as the offload
# handlers' are (t/205-offload-abort.t), counted under the pool's
# "cancelled", with the executor's info line; the stream's request is
# freed then (its cleanup's line, streams.active back to 0).
#
#   1. the data set's search: its first batch is queued behind a held
#      thread, the client leaves;
#   2. a file stream whose open job (io pool) is queued, the client
#      leaves;
#   3. a file stream in the middle: the client stops reading, the stream
#      waits on it (backpressure: no job is posted), the test takes the
#      pool's thread, the client reads again until the next scan job is
#      queued, and leaves.
#
# Deterministic: the pool's only thread is held by the test helper
# (t/hold/, Asyncx::Hold) while the job waits, and released by the test
# once nginx has terminated the request; each step waits for a counter
# or a log line, never for a time.  Its own nginx (one worker) on
# TEST_NGINX_PORT + 7.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(time sleep);
use Asyncx::Hold;
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $ngx = Asyncx::OwnNginx->new(offset => 7, name => 'sse-cancel',
    workers => 1, dirs => ['data'],
    main => 'thread_pool tiny threads=1;', http => <<'HTTP');
    asyncx_thread_pools io=tiny cpu=tiny;

    server {
        listen 127.0.0.1:$PORT sndbuf=16k;

        location = /hold { asyncx_test_hold tiny; }

        location = /stream/search { asyncx_sse search; }

        location = /file/search {
            asyncx_sse search;
            asyncx_sse_source file=big.ndjson root=$DIR/data;
        }

        location = /status { asyncx_status; }
    }
HTTP

# every line matches "needle": the stream has far more to send than the
# socket buffers hold
open my $fh, '>', $ngx->dir . '/data/big.ndjson' or die $!;
printf $fh qq({"n": %d, "text": "a needle in line %d of the haystack"}\n), $_, $_
    for 1 .. 200000;
close $fh;

sub status { $ngx->json('/status') // {} }
sub pool   { status()->{pools}{tiny} // {} }

sub log_count { my ($re) = @_; scalar grep { $_ =~ $re } $ngx->error_log }

sub open_stream {
    my ($uri) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ngx->port,
                                  Timeout => 5) or die "connect: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096);
    print $s "GET $uri HTTP/1.1\r\nHost: localhost\r\n\r\n";
    return $s;
}

my $closed_re = qr/client prematurely closed connection/;
my $skipped_re = qr/asyncx executor: task in pool "tiny" skipped after \d+ ms in the queue: its client left/;

# the client leaves, nginx terminates the request (still blocked by the
# queued job: its cleanup has not run), the test releases the thread
sub leave_and_release {
    my ($c, $hold, $what, $cleanup_re, $h) = @_;

    my $closed = log_count($closed_re);
    my $cleanups = $cleanup_re ? log_count($cleanup_re) : 0;
    my $skipped = log_count($skipped_re);

    close $c;

    ok($ngx->wait_for("nginx to see the client leave",
                      sub { log_count($closed_re) > $closed }),
       "$what: nginx saw the client leave");
    is(log_count($cleanup_re), $cleanups,
       "$what: the stream is not freed while its job is queued (blocked)")
        if $cleanup_re;

    if ($h) {
        $hold->release;
        local $/;
        like(<$h> // '', qr{^HTTP/1\.1 200 }, "$what: the test released the pool's thread");
    } else {
        is($hold->finish, 200, "$what: the test released the pool's thread");
    }

    ok($ngx->wait_for('the skip', sub { log_count($skipped_re) > $skipped }),
       "$what: the thread skipped the job of the departed client");
    ok($ngx->wait_for('the stream to be freed',
                      sub { log_count($cleanup_re) > $cleanups }),
       "$what: the stream was freed once the thread let go of the job")
        if $cleanup_re;
    ok($ngx->wait_for('an idle pool', sub {
           my $s = status();
           ($s->{streams}{active} // -1) == 0
           && ($s->{pools}{tiny}{queued} // -1) == 0
           && ($s->{pools}{tiny}{running} // -1) == 0 }),
       "$what: no stream active, the pool idle");
}


# 1. the data set's first batch, queued

my $hold = Asyncx::Hold->request($ngx, '/hold', 'h1');
ok($hold->wait_taken, 'dataset: the helper holds the pool\'s only thread');

my $c = open_stream('/stream/search?keyword=python&data_size=10000');

ok($ngx->wait_for('the first batch in the queue', sub { (pool()->{queued} // 0) == 1 }),
   'dataset: the stream\'s first batch waits in the queue');

leave_and_release($c, $hold, 'dataset',
                  qr/asyncx sse: client closed the stream after 0 events, 0 of 10000 records done/);

my $st = status();
is(join(' ', map { "$_=$st->{pools}{tiny}{$_}" } qw(posted completed failed cancelled)),
   'posted=1 completed=0 failed=0 cancelled=1',
   'dataset: the batch counted as cancelled, not run');
is(join(' ', map { "$_=$st->{streams}{$_}" } qw(total aborted jobs records events)),
   'total=1 aborted=1 jobs=1 records=0 events=0',
   'dataset: no record searched, no event sent, the stream aborted');


# 2. a file stream's open job, queued

$hold = Asyncx::Hold->request($ngx, '/hold', 'h2');
ok($hold->wait_taken, 'file open: the helper holds the pool\'s only thread');

$c = open_stream('/file/search?keyword=needle');

ok($ngx->wait_for('the open job in the queue', sub { (pool()->{queued} // 0) == 1 }),
   'file open: the stream\'s open job waits in the queue');

my $file_cleanup_re = qr/asyncx sse: client closed the stream of "big\.ndjson"/;

# the stream never started: its cleanup has nothing to say
leave_and_release($c, $hold, 'file open', undef);

$st = status();
is(join(' ', map { "$_=$st->{pools}{tiny}{$_}" } qw(posted completed failed cancelled)),
   'posted=2 completed=0 failed=0 cancelled=2',
   'file open: the open job counted as cancelled, not run');
is("$st->{streams}{total}/$st->{streams}{aborted}", '1/1',
   'file open: the stream never started');


# 3. a file stream in the middle: a scan job queued

$c = open_stream('/file/search?keyword=needle');
sysread($c, my $first, 256);
like($first, qr{^HTTP/1\.1 200 .*text/event-stream}s, 'file: the stream starts');

# the client reads no more: the stream fills the socket and waits
my $jobs = -1;
my $n = 0;
ok($ngx->wait_for('the stream to wait on its client', sub {
       my $s = status();
       my $still = ($s->{streams}{jobs} // -2) == $jobs
                   && $s->{pools}{tiny}{queued} == 0
                   && $s->{pools}{tiny}{running} == 0;
       $jobs = $s->{streams}{jobs} // -1;
       $n = $still ? $n + 1 : 0;
       return $n >= 3 }),
   "file: the stream waits on a client that does not read ($jobs jobs)");

my $before = pool();

# the hold's request from this process: a child forked now would keep
# the stream's socket open after the test closes it
$hold = Asyncx::Hold->new($ngx->dir, 'h3');
my $h = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ngx->port,
                              Timeout => 5) or die "connect: $!";
print $h "GET /hold?fifo=" . $hold->path . " HTTP/1.0\r\nHost: localhost\r\n\r\n";
ok($hold->wait_taken, 'file: the helper holds the pool\'s only thread');

# the client reads again: the output drains and the next job is queued
$c->blocking(0);
ok($ngx->wait_for('the next scan job in the queue', sub {
       1 while sysread($c, my $buf, 65536);
       return (pool()->{queued} // 0) == 1 }),
   'file: the client read again, the next job waits in the queue');

leave_and_release($c, $hold, 'file', $file_cleanup_re, $h);

$st = status();
is($st->{pools}{tiny}{completed}, $before->{completed},
   'file: no job of the stream completed after the client left');
is($st->{pools}{tiny}{cancelled}, $before->{cancelled} + 1,
   'file: the queued scan job counted as cancelled');
is($st->{pools}{tiny}{failed}, 0, 'file: none failed');
is($st->{streams}{jobs}, $jobs + 1, 'file: one job posted since the wait, the one skipped');
is("$st->{streams}{total}/$st->{streams}{aborted}", '2/2',
   'file: the stream counted as aborted');

$ngx->stop;

is(join('', grep { /\[(?:error|alert|crit|emerg)\]/ } $ngx->error_log), '',
   'no error, alert, crit or emerg line');

done_testing();
