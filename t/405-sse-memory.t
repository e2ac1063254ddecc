# What a client that never reads can make a worker hold: 20 streams whose
# every record matches, in batches of 100,000 (the largest), and whose
# clients read nothing at all.  Before, each stream formatted a whole
# batch into one buffer (about 13 MB used, 38 MB reserved) that stayed
# while the client did not read: the worker grew from 6 MB to 136 MB.
# Now a search job stops after 128 matches and the next one is posted
# only when the socket took everything: a stream holds at most about
# 64 KiB (docs/directives.md, asyncx_sse).
#
# Deterministic: the test waits until the worker has nothing left to do
# (every stream waiting on its socket, no job queued or running, the
# streams' job count still), then reads the worker's VmRSS from
# /proc/<pid>/status; no timing is measured.  Its own nginx (one worker)
# on TEST_NGINX_PORT + 5 (t/lib/Asyncx/OwnNginx.pm).

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

my $clients = 20;

# 20 streams of at most 64 KiB plus their connections, with room for
# the allocator's own rounding (and ASan's redzones): 8 MiB, against the
# 130 MB the same clients took before
my $limit_kb = 8 * 1024;

my $ngx = Asyncx::OwnNginx->new(offset => 5, name => 'sse-memory',
    workers => 1, main => 'thread_pool cpu threads=2;', http => <<'HTTP');
    asyncx_thread_pools io=cpu cpu=cpu;

    server {
        listen 127.0.0.1:$PORT;

        location = /stream/search { asyncx_sse search; }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

sub status {
    my ($code, $body) = $ngx->get('/asyncx/status');
    return $code == 200 ? JSON::PP::decode_json($body) : undef;
}

sub rss_kb {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return -1;
    while (<$fh>) { return $1 if /^VmRSS:\s+(\d+) kB/ }
    return -1;
}

# a suite that cannot start fails alone: a BAIL_OUT here stopped every
# suite after it
my $st = status();
unless (ok($st, 'nginx is up: its status answers')) {
    diag('error.log: ', join '', $ngx->error_log);
    done_testing();
    exit 1;
}
my $pid = $st->{pid};

# a short stream first: threads started, code paged in
my ($code, $body) = $ngx->get('/stream/search?keyword=python&data_size=20000');
like($body, qr/"type": "complete", "total_matches": 129,/, 'a warm-up stream completes');

my $before = rss_kb($pid);
cmp_ok($before, '>', 0, "the worker's VmRSS before: $before kB");

my @socks;
for (1 .. $clients) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ngx->port,
                                  Timeout => 5) or die "connect: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096);
    print $s "GET /stream/search?keyword=record&data_size=10000000"
             . "&batch_size=100000 HTTP/1.1\r\nHost: localhost\r\n\r\n";
    push @socks, $s;
}

# until the worker is idle: every stream blocked on its socket
my ($idle, $jobs, $t0) = (0, -1, time);
while (time - $t0 < 60) {
    $st = status() or next;
    my $pool = $st->{pools}{cpu};
    my $now = $st->{streams}{jobs};
    if ($st->{streams}{active} == $clients
        && $pool->{queued} == 0 && $pool->{running} == 0 && $now == $jobs)
    {
        last if ++$idle == 3;
    } else {
        $idle = 0;
    }
    $jobs = $now;
    sleep 0.1;
}
is($idle, 3, "$clients streams started, each waiting on its client");
cmp_ok($jobs, '>=', $clients, "they ran $jobs jobs before blocking");

my $after = rss_kb($pid);
my $grew = $after - $before;
diag("worker VmRSS: $before kB before, $after kB with $clients clients "
     . "that do not read (+$grew kB)");
cmp_ok($grew, '<', $limit_kb,
       "the worker grew by less than $limit_kb kB for $clients streams");

# the clients leave: every stream ends, nothing left active
close $_ for @socks;
$t0 = time;
while (time - $t0 < 30) {
    $st = status();
    last if $st && $st->{streams}{active} == 0;
    sleep 0.1;
}
is("$st->{streams}{active}/$st->{streams}{aborted}", "0/$clients",
   'every stream ended as aborted');

my @el = $ngx->error_log;
is(scalar(grep { /\[(error|alert|crit|emerg)\]/ } @el), 0,
   'no error, alert, crit or emerg lines');

$ngx->stop;

done_testing();
