# The shared-memory limiter when a wake-up between workers is lost: a
# worker's wake-up socket (an abstract unix datagram socket, which any
# local process can send to) is filled while that worker is stopped
# (SIGSTOP), so the other worker's wake-up for its waiter cannot be sent
# (EAGAIN).  The waiter must still be admitted by its own re-check (every
# second), not sit until its 60 s timeout.  Found by the fourteenth
# session's hostile review; fails before (no answer within 20 s).
# Nothing here races the machine's speed: the slot is held and freed by
# the test, the grant is seen in the zone's status before the stopped
# worker goes on, and the socket is known full (EAGAIN) before that.
# It runs its own nginx (master + 2 workers) on TEST_NGINX_PORT + 3.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Time::HiRes qw(time sleep);
use JSON::PP ();
use Socket qw(AF_UNIX SOCK_DGRAM pack_sockaddr_un MSG_DONTWAIT);
use POSIX qw(EAGAIN);
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

$SIG{PIPE} = 'IGNORE';

my $ngx = Asyncx::OwnNginx->new(offset => 3, name => 'limit-lost',
                                workers => 2, http => <<'HTTP');
    asyncx_limit_zone zone=one:64k rate=100r/s concurrency=1 queue=100
                      timeout=60s;

    server {
        listen 127.0.0.1:$PORT reuseport;

        location /one/ {
            asyncx_limit one;
            asyncx_mock_service name=one delay=0ms max_delay=60s echo=off;
        }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

my $stopped;
END { kill 'CONT', $stopped if $stopped; }

# zone "one"'s numbers; a request that lands on a stopped worker (its
# reuseport socket) is given up after 2 s and made again: undef only
# if no answer came within $limit seconds
sub by_worker {
    my $t0 = time;
    while (time - $t0 < 30) {
        my ($code, $body) = $ngx->get('/asyncx/status', 2);
        next unless $code == 200;
        my $z = eval { JSON::PP::decode_json($body)->{limit_zones}{one} }
            or next;
        return { map { $_->{pid} => [$_->{waiting}, $_->{granted},
                                     $_->{held}] } @{ $z->{workers} } };
    }
    return {};
}

sub wait_workers {
    my ($cond, $limit) = @_;
    my $t0 = time;
    while (time - $t0 < $limit) {
        my $w = by_worker();
        return $w if $cond->($w);
        sleep 0.05;
    }
    return undef;
}

sub read_answer {
    my ($s, $limit) = @_;
    my ($t0, $res) = (time, '');
    $s->blocking(0);
    while (time - $t0 < $limit) {
        my $n = sysread($s, my $buf, 65536);
        last if defined $n && $n == 0;
        if (defined $n) { $res .= $buf } else { sleep 0.01 }
    }
    my ($code) = $res =~ m{^HTTP/1\.\d (\d+)};
    return $code // 0;
}

# a holder in one worker, the head of the queue in the other (as
# t/391-limit-queue.t's hand-off)
my $holder = $ngx->open_request('/one/hold?delay=60s');
my $w = wait_workers(sub { 1 == grep { $_->[2] == 1 } values %{ $_[0] } }, 20);
my ($holding) = $w ? grep { $w->{$_}[2] == 1 } keys %$w : ();
ok($holding, 'one worker holds the only slot');

my ($head, $head_pid);
for my $try (1 .. 40) {
    my $s = $ngx->open_request("/one/w$try?delay=0ms");
    my $now = wait_workers(sub { 1 == grep { $_->[0] == 1 } values %{ $_[0] } },
                           10)
        or last;
    my ($pid) = grep { $now->{$_}[0] == 1 } keys %$now;
    if ($pid != $holding) { ($head, $head_pid) = ($s, $pid); last }
    close $s;
    wait_workers(sub { !grep { $_->[0] } values %{ $_[0] } }, 10);
}
ok($head, 'the head of the queue waits in the other worker')
    or BAIL_OUT('no waiter in the other worker');

# the waiter's worker stopped, its wake-up socket filled to EAGAIN
kill 'STOP', $head_pid;
$stopped = $head_pid;

socket(my $junk, AF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
my $addr = pack_sockaddr_un("\0asyncx-limit/$head_pid");
my ($sent, $full) = (0, 0);
while ($sent < 100000) {
    if (defined send($junk, 'x' x 8, MSG_DONTWAIT, $addr)) { $sent++; next }
    $full = ($! == EAGAIN);
    diag("send: $!") unless $full;
    last;
}
ok($full, "the stopped worker's wake-up socket is full ($sent datagrams)");

# the slot freed in the other worker: the grant is made there, its
# wake-up cannot be sent
close $holder;
$w = wait_workers(sub { ($_[0]{$head_pid} // [])->[1] == 1 }, 20);
ok($w, 'the stopped worker\'s waiter is granted the slot (in the zone)');

kill 'CONT', $head_pid;
$stopped = undef;

my $code = read_answer($head, 20);
is($code, 200, 'the waiter whose wake-up was lost is admitted by its '
               . 're-check, not at its 60 s timeout');

my $w2 = wait_workers(sub { !grep { $_->[0] || $_->[1] || $_->[2] }
                                 values %{ $_[0] } }, 20);
ok($w2, 'zone "one" holds nothing afterwards');

$ngx->stop;

done_testing();
