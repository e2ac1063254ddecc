# The cluster limiter across a fleet (issue 17): three nginx servers
# (each a master and 2 workers, on TEST_NGINX_PORT + 1..3) share zones
# kept in one private redis-server (TEST_NGINX_PORT + 7, Asyncx::Redis):
#   a. admissions: a bucket of 6 at 1r/m gives exactly 6 admissions
#      across the three (not 18), and at 10r/s burst=5 no 1 s window of
#      the fleet's admissions holds more than rate + burst; requests of
#      one key arriving together in a worker are each asked in Redis
#      (none refused unasked while a paused Redis holds the first);
#   b. slots: 3 requests held (t/hold) on three servers take the cap of
#      3; a fourth is refused (queue=0) or waits (queue=) until a slot is
#      released on another server; clients that leave free their
#      leases at once; under load Redis's lease set never holds more
#      than the cap; the cluster metrics on each server;
#   c. kill -9 of the workers of a server holding slots: the slots come
#      back after cluster_lease (2 s), as Redis's own clock counts;
#   d. Redis stopped (and paused) mid-load: each cluster_fallback mode
#      (refuse, allow, local with rate/servers), the mode change and
#      the recovery logged once per worker; Redis back: limiting in
#      Redis again, nginx not restarted;
#   e. a hostile client opens and drops 300 waiting requests (then
#      churns 300 more): afterwards the full cap and burst are usable and
#      Redis holds no stale lease.
#
# Time: admissions are timed by the module ($msec - $request_time +
# $asyncx_limit_wait, nginx's clock, like t/390) and leases by Redis's
# TIME and the lease scores, never by the client's clock.  Slots are held
# by the test (t/hold), not by a delay that races the machine.  Where a
# wall-clock bound cannot be avoided (Redis coming back, a lease running
# out) it is generous and its reason is written next to it.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Time::HiRes qw(time sleep);
use JSON::PP ();
use List::Util qw(max min sum shuffle);
use POSIX qw(ceil);
use Asyncx::OwnNginx qw(until_true);
use Asyncx::Hold;
use Asyncx::Redis;
use Asyncx::LimitCluster;

Asyncx::LimitCluster::skip_all_unless_runnable();

# the test writes into FIFOs whose reader may have been killed
$SIG{PIPE} = 'IGNORE';

my $redis = Asyncx::Redis->new;
ok($redis->pid, 'a private redis-server answers PING on port '
   . $redis->port) or BAIL_OUT('no redis-server');

# cluster_timeout=3s everywhere but "ask": a loaded machine's scheduling
# must not look like a slow Redis, and a paused Redis is noticed after
# 3 s.  One value: the zones of one Redis server and database share a
# connection per worker, whose timeout is the smallest of theirs.
my %zone = (
    # a. exactly 6 admissions until a token is refilled (60 s)
    count    => 'rate=1r/m burst=6 queue=0 cluster_timeout=3s',
    # a. the 1 s windows
    window   => 'rate=10r/s burst=5 queue=0 cluster_timeout=3s',
    # a. requests arriving while another of the key is being asked,
    #    Redis paused meanwhile: database 1 gives the zone a connection
    #    of its own, whose 60 s timeout no loaded machine reaches
    ask      => 'rate=1000r/s burst=1000 queue=0 cluster_timeout=60s',
    # b. the cap; the fourth refused
    slots    => 'rate=1000r/s burst=1000 concurrency=3 queue=0 '
                . 'cluster_timeout=3s',
    # b. the cap; the third waits for a release on another server
    slotq    => 'rate=1000r/s burst=1000 concurrency=2 queue=10 timeout=60s '
                . 'cluster_timeout=3s',
    # b. under load
    slotl    => 'rate=1000r/s burst=1000 concurrency=3 queue=100 timeout=60s '
                . 'cluster_timeout=3s',
    # c. kill -9
    lease    => 'rate=1000r/s burst=1000 concurrency=2 queue=0 '
                . 'cluster_lease=2s cluster_timeout=3s',
    # d. the fallback modes
    fbrefuse => 'rate=1000r/s burst=1000 cluster_timeout=3s '
                . 'cluster_fallback=refuse',
    fballow  => 'rate=1000r/s burst=1000 cluster_timeout=3s '
                . 'cluster_fallback=allow',
    # local: 3r/m burst=3 over 3 servers is 1r/m burst=1 each
    fblocal  => 'rate=3r/m burst=3 queue=0 cluster_timeout=3s '
                . 'cluster_servers=3 cluster_fallback=local',
    # local: concurrency=3 over 3 servers is 1 each
    fblocalc => 'rate=1000r/s burst=1000 concurrency=3 queue=0 '
                . 'cluster_timeout=3s cluster_servers=3 cluster_fallback=local',
    # e. the hostile client (the demo's zone, queue=300)
    hostile  => 'rate=5r/s burst=5 concurrency=3 queue=300 timeout=60s '
                . 'cluster_lease=1s cluster_timeout=3s',
);

# the zones' keys, leases and locations (Asyncx::LimitCluster): "ask"
# has its own connection (database 1), the prefix is the default
my $lc = Asyncx::LimitCluster->new(redis => $redis, db => { ask => 1 });
my $http = $lc->http_conf(
    zones      => \%zone,
    log_format => q{adm '$msec $pid $status $request_time $asyncx_limit_wait '}
                  . q{ '$asyncx_limit_status $request_uri'},
    listen     => 'reuseport backlog=1024');

my @ngx = map {
    Asyncx::OwnNginx->new(offset => $_, name => "fleet$_", workers => 2,
                          main => 'thread_pool hold threads=32;',
                          http => $http)
} 1 .. 3;

ok(!grep({ !$_->pid } @ngx), 'three nginx servers are up')
    or BAIL_OUT('nginx did not start: is the cluster mode built in?');

my @master = map { $_->pid } @ngx;

# ---------------------------------------------------------------------

sub workers_of { $ngx[$_[0]]->workers }

# (status, headers, body) of a GET on server $i (0..2)
sub req {
    my ($i, @get) = @_;
    return $ngx[$i]->get_full(@get);
}

sub code { (req(@_))[0] }

# the zone's "cluster" object in the asyncx_status of server $i (one of
# its workers answers); {} if there is none
sub cluster { Asyncx::LimitCluster::cluster($ngx[$_[0]], $_[1]) // {} }

# the value of one series in server $i's Prometheus text, e.g.
# metric(0, 'asyncx_limit_cluster_mode', zone => 'x', mode => 'redis')
sub metric {
    my ($i, $name, @labels) = @_;
    my (undef, $text) = $ngx[$i]->get('/asyncx/status?format=prometheus');
    my %want = @labels;
    for my $line (split /\n/, $text) {
        next unless $line =~ /^\Q$name\E\{([^}]*)\} (\S+)$/;
        my ($l, $v) = ($1, $2);
        my %got = $l =~ /(\w+)="([^"]*)"/g;
        return $v unless grep { ($got{$_} // '') ne $want{$_} } keys %want;
    }
    return undef;
}

sub zone_status {
    my ($i, $z) = @_;
    return $ngx[$i]->json("/zs/$z");
}

# 'y' once Redis holds no lease of zone $z (polled for 10 s at most)
sub no_lease {
    my ($z) = @_;
    return until_true("no lease of $z", 10,
                      sub { $lc->zcard($z) == 0 ? 'y' : '' });
}

# a request held in t/hold's thread on server $i, once admitted
sub hold {
    my ($i, $z, $name) = @_;
    return Asyncx::Hold->request($ngx[$i], "/z/$z/hold", $name, 900);
}

# rows of a zone's access logs on the three servers: [msec, pid, status,
# request_time, wait, limit_status, request_uri, server]; admission time = start
# of the request + its wait in the limiter
sub rows {
    my ($z) = @_;
    my @rows;
    for my $i (0 .. 2) {
        open my $in, '<', $ngx[$i]->dir . "/logs/$z.log" or next;
        push @rows, map { [split(' '), $i] } <$in>;
    }
    $_->[8] = $_->[0] - $_->[3] + ($_->[4] =~ /^[\d.]+$/ ? $_->[4] : 0)
        for @rows;
    return @rows;
}

# error.log lines of server $i matching $re, from line $from on
sub log_lines {
    my ($i, $re, $from) = @_;
    my @l = $ngx[$i]->error_log;
    return grep { $_ =~ $re } @l[($from // 0) .. $#l];
}

# Each worker has its own connection to Redis, so its own mode: a change
# is logged once by each worker that sees it, never per request.  For
# lines matching $re from @$from on: "ok" when every server logged it
# and no worker more than once, else what was seen (lines per pid, per
# server)
sub once_per_worker {
    my ($re, $from) = @_;
    my @seen;
    for my $i (0 .. 2) {
        my %n;
        /\[\w+\] (\d+)#/ and $n{$1}++ for log_lines($i, $re, $from->[$i]);
        push @seen, join(',', map { "$_=$n{$_}" } sort keys %n) || 'none';
    }
    return (grep { $_ eq 'none' || /=[2-9]/ || /=\d\d/ } @seen)
           ? join(' | ', @seen) : 'ok';
}

# ---------------------------------------------------------------------
# every zone answers in Redis mode

for my $i (0 .. 2) {
    until_true("server ${i}'s status", 30, sub { cluster($i, 'count')->{mode} });
    my $c = cluster($i, 'count');
    is($c->{mode}, 'redis', "server $i: zone count is in mode redis");
    is($c->{redis}, '127.0.0.1:' . $redis->port . '/0',
       "server $i: status names the Redis server");
    is($c->{servers}, 1, "server $i: cluster_servers defaults to 1");
}
is(cluster(0, 'lease')->{lease_ms}, 2000, 'lease_ms is cluster_lease');
is(cluster(0, 'count')->{lease_ms}, 10000, 'cluster_lease defaults to 10s');

# ---------------------------------------------------------------------
# a. exactly the bucket across the fleet: 60 requests, 20 per server at
# once, against burst=6 at 1r/m

{
    my $t0 = $redis->time_ms;
    my @kids;
    for my $i (0 .. 2) {
        my $pid = fork // die;
        if ($pid == 0) {
            code($i, "/z/count/call?n=$_") for 1 .. 20;
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    waitpid($_, 0) for @kids;
    my $elapsed = $redis->time_ms - $t0;

    my @rows = rows('count');
    is(scalar @rows, 60, 'count: 60 requests logged by the three servers');
    my @ok = grep { $_->[2] == 200 } @rows;
    # one token per 60 s of Redis's clock: the run is far shorter
    # unless the machine stalls for a minute; then a refill is allowed
    my $want = 6 + int($elapsed / 60000);
    is(scalar @ok, $want, "count: exactly burst=6 admitted across the "
       . "fleet (Redis time of the run: $elapsed ms)");
    is(scalar(grep { $_->[5] ne 'PASSED' } @ok), 0,
       'count: the admitted are PASSED');
    is(join(',', sort { $a <=> $b } keys %{{ map { $_->[2] => 1 }
                                                 grep { $_->[2] != 200 } @rows }}),
       '429', 'count: the others are 429 (queue=0)');
    is(scalar(grep { $_->[2] == 429 && $_->[5] ne 'REJECTED' } @rows), 0,
       'count: the refused are REJECTED');

    my $admitted = sum map { cluster($_, 'count')->{local}{admitted} // -100 }
                       0 .. 2;
    # each server's workers count apart: summed over the answering
    # worker only, the status may show less than 6 but never more
    cmp_ok($admitted, '<=', 6, "count: the servers' admitted ($admitted) "
           . 'never exceed 6');
    my ($code, $head) = req(1, '/z/count/call');
    is($code, 429, 'count: the 61st, on server 2, is refused as well');
    like($head, qr/\r\nRetry-After: \d+/i, 'count: with Retry-After');
}

# a. 1 s windows at 10r/s burst=5: three clients, one per server, for
# 3 s (at least 40 requests each)
{
    my @kids;
    for my $i (0 .. 2) {
        my $pid = fork // die;
        if ($pid == 0) {
            my ($t0, $n) = (time, 0);
            while (time - $t0 < 3 || $n < 40) { code($i, '/z/window/call'); $n++ }
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    waitpid($_, 0) for @kids;

    my @rows = rows('window');
    my @adm = sort { $a <=> $b } map { $_->[8] } grep { $_->[2] == 200 } @rows;
    my %servers = map { $_->[7] => 1 } grep { $_->[2] == 200 } @rows;
    cmp_ok(scalar @rows, '>=', 120, 'window: at least 120 requests logged');
    # $msec and $request_time come from each worker's cached clock, late
    # by up to one event-loop turn on a loaded machine: the window is
    # 100 ms shorter than 1 s.  A fleet limiting per server would let
    # 3 x (5 + 9) through: the check cannot pass by chance.
    my $win = 0;
    for my $s (@adm) {
        my $n = grep { $_ >= $s && $_ < $s + 0.9 } @adm;
        $win = $n if $n > $win;
    }
    cmp_ok($win, '<=', 15, "window: admissions in any 1 s window of the "
           . "fleet ($win) <= rate + burst = 15");
    # the whole run: burst + rate x its length (+ 1 token of rounding)
    my $span = @adm ? $adm[-1] - $adm[0] : 0;
    cmp_ok(scalar @adm, '<=', 5 + ceil(10 * ($span + 0.1)) + 1,
           sprintf('window: %d admitted in %.2f s <= burst + rate x span',
                   scalar @adm, $span));
    # the clients ran for 3 s: the bucket was refilled at least once
    cmp_ok(scalar @adm, '>', 5, 'window: more than the burst was admitted '
           . '(the rate refills the shared bucket)');
    cmp_ok(scalar keys %servers, '>=', 2, 'window: admitted on several '
           . 'servers (' . join(',', sort keys %servers) . ')');
}

# a. a request of a key that arrives while another request of the key is
# being asked in Redis (not waiting: nobody waits, queue=0, the bucket
# has 1000 tokens) must be asked too, as the shm zone admits a request
# when nobody waits and a token is there.  Redis is paused so that the
# first one's EVALSHA stays in flight; 10 more requests on 10 connections
# (reuseport spreads them over both workers: some share the first one's
# worker).  Resumed after at most 1 s more, far below the zone's
# cluster_timeout=60s (its own connection: database 1): all 11 are
# admitted.  (If the machine is slow enough that the 10 arrive after the
# resume, they are admitted anyway: the check cannot fail by slowness.)
{
    is(code(0, '/z/ask/call'), 200, 'ask: the connections are up');
    my $sent = cluster(0, 'ask')->{commands} // 0;
    $redis->pause;
    my $first = $ngx[0]->spawn_request("GET /z/ask/call?first HTTP/1.0\r\n"
                                       . "Host: localhost\r\n\r\n", 30);
    until_true('the first acquire sent', 10, sub {
        (cluster(0, 'ask')->{commands} // 0) > $sent });
    my @more = map { $ngx[0]->spawn_request("GET /z/ask/call?more=$_ HTTP/1.0\r\n"
                                            . "Host: localhost\r\n\r\n", 30) }
               1 .. 10;
    # a refusal without asking Redis comes back while it is paused
    my $t0 = time;
    my @early;
    until (time - $t0 > 1 || @early) {
        @early = grep { /more=/ } map { $_->[6] } grep { $_->[2] != 200 }
                 rows('ask');
        sleep 0.05;
    }
    $redis->resume;
    my @codes = map { ($ngx[0]->collect($_) =~ m{^HTTP/1\.\d (\d+)})[0] // 0 }
                $first, @more;

    is("@codes", join(' ', (200) x 11), 'ask: the 11 requests are admitted '
       . '(none refused unasked while a Redis bucket of 1000 tokens was full)');
    is(scalar @early, 0, 'ask: no request was refused while Redis was paused')
        or diag("refused while Redis answered nothing: @early");
}

# ---------------------------------------------------------------------
# b. the cap across servers, held by the test

{
    my @h = map { hold($_, 'slots', "slots$_") } 0 .. 2;
    my $taken = grep { $_->wait_taken(30) } @h;
    is($taken, 3, 'slots: one request held on each server: 3 of cap 3');
    is($lc->zcard('slots'), 3, 'slots: Redis holds 3 leases');
    my @members = map { $_->[0] } $lc->leases('slots');
    my %wpids = map { $_ => 1 } map { workers_of($_) } 0 .. 2;
    is(scalar(grep { /:(\d+):[0-9a-f]{16}:\d+$/ && $wpids{$1} } @members), 3,
       'slots: each lease names a worker pid (' . join(' ', @members) . ')');

    for my $i (0 .. 2) {
        my ($code, $head, $body) = req($i, '/z/slots/call');
        is($code, 429, "slots: a fourth request on server $i is refused");
        ok(eval { JSON::PP::decode_json($body) }, "slots: ... with a JSON body");
    }
    my $c = cluster(0, 'slots');
    is($c->{global}{slots_in_use}, 3, 'slots: status: global slots_in_use 3');
    my $zs = zone_status(1, 'slots');
    # this server's request in flight (the fleet's 3 are slots_in_use),
    # of the fleet's cap
    is_deeply($zs->{concurrent}, { current => 1, max => 3 },
              'slots: asyncx_limit_zone_status: concurrent: this server\'s '
              . '1 of the fleet\'s 3');
    for my $i (0 .. 2) {
        is(metric($i, 'asyncx_limit_cluster_global_slots', zone => 'slots')
           . '/' . metric($i, 'asyncx_limit_cluster_local_held', zone => 'slots'),
           '3/1', "slots: server ${i}'s metrics: 3 global slots, 1 held here");
    }

    is($h[1]->finish, 200, 'slots: the held request on server 2 ends: 200');
    until_true('a lease released', 10, sub { $lc->zcard('slots') == 2 });
    is($lc->zcard('slots'), 2, 'slots: its lease is removed at once (release)');
    is(code(2, '/z/slots/call'), 200,
       'slots: server 3 gets the slot freed on server 2');
    is($_->finish, 200, 'slots: a held request ends') for @h[0, 2];
    is(no_lease('slots'), 'y',
       'slots: Redis holds no lease at the end');
}

# b. clients that leave while their requests hold the slots: the leases
# are released at once (ZREM), not after the 60 s of the call nor the
# lease time (10 s by default)
{
    my @s = map { $ngx[$_]->open_request('/z/slots/call?delay=60s') } 0 .. 2;
    is(until_true('3 leases', 20, sub { $lc->zcard('slots') == 3 ? 'y' : '' }),
       'y', 'slots: three 60 s calls hold the cap');
    is(code(1, '/z/slots/call'), 429, 'slots: a fourth is refused');
    my $t0 = $redis->time_ms;
    close $_ for @s;
    # polled; the bound only allows for a loaded machine
    is(no_lease('slots'), 'y',
       'slots: the clients left: Redis holds no lease');
    cmp_ok($redis->time_ms - $t0, '<', 10000,
           'slots: ... well before the lease time (10 s, Redis time)');
    is(join(' ', map { code($_, '/z/slots/call') } 0 .. 2), '200 200 200',
       'slots: the three servers admit again');
}

# b. a waiter on server 3 is woken by a release on server 1
{
    my @h = (hold(0, 'slotq', 'q0'), hold(1, 'slotq', 'q1'));
    is(scalar(grep { $_->wait_taken(30) } @h), 2, 'slotq: cap 2 held on '
       . 'servers 1 and 2');
    my $waiter = $ngx[2]->spawn_request("GET /z/slotq/call HTTP/1.0\r\n"
                                        . "Host: localhost\r\n\r\n", 60);
    my $zs = until_true('a waiter on server 3', 20, sub {
        my $s = zone_status(2, 'slotq');
        $s && $s->{waiting} == 1 ? $s : undef });
    ok($zs, 'slotq: the third request waits on server 3');
    my $before = cluster(2, 'slotq')->{wake_delay}{count} // 0;

    is($h[0]->finish, 200, 'slotq: a holder ends on server 1');
    my $raw = $ngx[2]->collect($waiter);
    like($raw, qr{^HTTP/1\.\d 200}, 'slotq: the waiter on server 3 is admitted');
    like($raw, qr/^\{/m, 'slotq: ... and answered');
    my ($row) = grep { $_->[7] == 2 && $_->[2] == 200 } rows('slotq');
    is($row && $row->[5], 'DELAYED', 'slotq: $asyncx_limit_status DELAYED');
    # its wait is the module's monotonic measure: it waited for the test,
    # not for its 60 s timeout
    cmp_ok($row ? $row->[4] : 99, '<', 30,
           'slotq: admitted on the release, not at its timeout');
    my $after = until_true('wake_delay counted', 10, sub {
        my $c = cluster(2, 'slotq');
        ($c->{wake_delay}{count} // 0) > $before ? $c : undef });
    ok($after, 'slotq: the wake-up is counted in wake_delay'
       . ($after ? " (mean $after->{wake_delay}{mean_us} us, max "
                   . "$after->{wake_delay}{max_us} us)" : ''));
    is($h[1]->finish, 200, 'slotq: the other holder ends');
    is(no_lease('slotq'), 'y',
       'slotq: Redis holds no lease at the end');
}

# b. under load: 30 requests of 300 ms, 10 per server, cap 3; the lease
# set sampled in Redis meanwhile never holds more than 3
{
    my @kids;
    for my $i (0 .. 2) {
        for my $k (1 .. 10) {
            my $pid = fork // die;
            if ($pid == 0) {
                POSIX::_exit(code($i, '/z/slotl/call?delay=300ms', 60) == 200
                             ? 0 : 1);
            }
            push @kids, $pid;
        }
    }
    my ($samples, $most, $failed) = (0, 0, 0);
    my %left = map { $_ => 1 } @kids;
    while (%left) {
        my $n = $lc->zcard('slotl');
        $samples++;
        $most = $n if $n > $most;
        for my $pid (keys %left) {
            next unless waitpid($pid, POSIX::WNOHANG()) == $pid;
            $failed++ if $?;
            delete $left{$pid};
        }
        sleep 0.01;
    }
    is($failed, 0, 'slotl: the 30 requests are answered 200');
    cmp_ok($most, '<=', 3, "slotl: Redis never held more than 3 leases "
           . "($most at most in $samples samples)");
    cmp_ok($most, '>=', 1, 'slotl: the samples saw the leases');

    # the same from the access logs: in flight from admission to end;
    # ends are moved 100 ms earlier (the workers' cached clocks on a
    # loaded machine), less than the 300 ms a fourth request would
    # overlap the others
    my @rows = grep { $_->[2] == 200 } rows('slotl');
    my ($cur, $max) = (0, 0);
    for my $e (sort { $a->[0] <=> $b->[0] || $a->[1] <=> $b->[1] }
               map { ([$_->[8], 1], [$_->[0] - 0.1, -1]) } @rows)
    {
        $cur += $e->[1];
        $max = $cur if $cur > $max;
    }
    cmp_ok($max, '<=', 3, "slotl: in flight across the fleet ($max) never "
           . 'above concurrency=3');
    is(no_lease('slotl'), 'y',
       'slotl: Redis holds no lease at the end');
}

# ---------------------------------------------------------------------
# c. kill -9 of the workers of server 1 while they hold both slots

{
    my @h = (hold(0, 'lease', 'l1'), hold(0, 'lease', 'l2'));
    is(scalar(grep { $_->wait_taken(30) } @h), 2, 'lease: server 1 holds '
       . 'both slots');
    is(code(1, '/z/lease/call'), 429, 'lease: server 2 is refused');

    my @victims = workers_of(0);
    my %victim = map { $_ => 1 } @victims;
    my @l = $lc->leases('lease');
    is(scalar(grep { $_->[0] =~ /:(\d+):[0-9a-f]{16}:\d+$/ && $victim{$1} } @l), 2,
       'lease: the 2 leases belong to server 1\'s workers');

    kill 'KILL', @victims;
    my $killed = $redis->time_ms;
    my @dead = $lc->leases('lease');
    my $first = min map { $_->[1] } @dead;
    my $last = max map { $_->[1] } @dead;
    # renewed at most lease/3 ago: each expires within the lease
    cmp_ok($last, '<=', $killed + 2000 + 50,
           'lease: the dead leases expire within cluster_lease of the kill '
           . '(Redis time: ' . ($last - $killed) . ' ms left)');

    # before the first expiry the slots are still taken (if the machine
    # let the test ask in time: 300 ms before it, by Redis's clock)
    my $t = $redis->time_ms;
    if ($t < $first - 300) {
        is(code(1, '/z/lease/call'), 429,
           'lease: before the leases expire server 2 is still refused');
    } else {
        pass('lease: (too late to ask before the expiry on this machine)');
    }

    # after: server 2 admits; bounded generously (lease 2 s + 10 s) only
    # because the loop polls on a loaded machine
    my $ok = until_true('server 2 admitted', 12, sub {
        code(1, '/z/lease/call') == 200 ? $redis->time_ms : undef });
    ok($ok, 'lease: server 2 admits once the dead leases expired');
    cmp_ok($ok // 0, '>=', $first,
           'lease: ... not before the first expiry by Redis\'s clock');
    # the second dead lease may live a little longer (renewed later);
    # once Redis's clock passes it, the next acquire drops it
    until_true('the last expiry', 30, sub { $redis->time_ms > $last });
    is(code(1, '/z/lease/call'), 200, 'lease: server 2 admits after the '
       . 'last expiry');
    is(scalar(grep { $_->[0] =~ /:(\d+):[0-9a-f]{16}:\d+$/ && $victim{$1} }
              $lc->leases('lease')), 0, 'lease: the dead leases are gone');
    $_->release for @h;    # their reader is dead: nothing to collect
    $_->answer for @h;

    ok(until_true('new workers', 30, sub {
        my @w = workers_of(0); @w == 2 && !grep { $victim{$_} } @w }),
       'lease: server 1\'s master started new workers');
    is(until_true('a slot on server 1', 10, sub {
        code(0, '/z/lease/call') == 200 ? 'y' : '' }), 'y',
       'lease: server 1 admits again');
    is(no_lease('lease'), 'y',
       'lease: Redis holds no lease at the end');
}

# ---------------------------------------------------------------------
# d. Redis stopped mid-load, then paused: the fallback modes

# the server as the log lines name it (the contract's example has no
# database; the implementation writes "/0": both are read)
my $redis_re = '127\.0\.0\.1:' . $redis->port . '(?:/\d+)?';

my @log_from = map { scalar(my @l = $ngx[$_]->error_log) } 0 .. 2;

# a child loading fbrefuse and fballow on the three servers, writing
# "zone code" lines until $stop exists
my $dir = $ngx[0]->dir;
my $stop = "$dir/load.stop";
my $load = fork // die;
if ($load == 0) {
    open my $out, '>', "$dir/load.codes" or die;
    $out->autoflush(1);
    until (-e $stop) {
        for my $i (0 .. 2) {
            for my $z (qw(fbrefuse fballow)) {
                print $out "$z ", code($i, "/z/$z/call", 30), "\n";
            }
        }
        sleep 0.01;
    }
    POSIX::_exit(0);
}

for my $i (0 .. 2) {
    is(code($i, '/z/fbrefuse/call'), 200, "fallback: server $i: 200 in Redis "
       . 'mode');
}
sleep 0.2;
$redis->stop;
ok(!$redis->ping(0.5), 'fallback: Redis is stopped');

sub all_codes {
    my ($z, $n) = @_;
    my %c;
    for my $i (0 .. 2) { $c{ code($i, "/z/$z/call") }++ for 1 .. $n }
    return join ' ', map { "${_}x$c{$_}" } sort keys %c;
}

sub wait_mode {
    my ($z, $mode) = @_;
    return until_true("mode $mode", 30, sub {
        my $n = grep { (cluster($_, $z)->{mode} // '') eq $mode } 0 .. 2;
        $n == 3 });
}

# refuse: 503, Retry-After: 1, the JSON error
{
    is(all_codes('fbrefuse', 10), '503x30', 'refuse: every request is 503');
    my ($code, $head, $body) = req(1, '/z/fbrefuse/call');
    like($head, qr/\r\nRetry-After: 1\r?(\n|$)/i, 'refuse: Retry-After: 1');
    my $j = eval { JSON::PP::decode_json($body) };
    ok($j, 'refuse: the body is JSON') or diag $body;
    ok(wait_mode('fbrefuse', 'refuse'), 'refuse: the status shows mode refuse');
    is(join(' ', map { metric(1, 'asyncx_limit_cluster_mode',
                              zone => 'fbrefuse', mode => $_) // 'none' }
                 qw(redis refuse allow local)),
       '0 1 0 0', 'refuse: asyncx_limit_cluster_mode is 1 for refuse only');
    cmp_ok(metric(1, 'asyncx_limit_cluster_redis_errors_total',
                  zone => 'fbrefuse') // -1, '>=', 0,
           'refuse: asyncx_limit_cluster_redis_errors_total is there');
    my $c = cluster(0, 'fbrefuse');
    cmp_ok($c->{local}{fallback_refused} // 0, '>', 0, 'refuse: counted in '
           . 'fallback_refused');
}

# allow: everything through, counted
{
    is(all_codes('fballow', 10), '200x30', 'allow: every request is 200');
    ok(wait_mode('fballow', 'allow'), 'allow: the status shows mode allow');
    cmp_ok(cluster(0, 'fballow')->{local}{fallback_admitted} // 0, '>', 0,
           'allow: counted in fallback_admitted');
}

# local: rate/servers and concurrency/servers in each server's shm
{
    my @c = map { my $i = $_; [map { code($i, '/z/fblocal/call') } 1 .. 3] }
            0 .. 2;
    is(join(' ', map { "@$_" } @c), '200 429 429 ' x 2 . '200 429 429',
       'local: each server admits its share, 1 of 3r/m burst=3 over 3 '
       . 'servers');
    ok(wait_mode('fblocal', 'local'), 'local: the status shows mode local');

    my $h = hold(0, 'fblocalc', 'lc');
    ok($h->wait_taken(30), 'local: server 1 holds its 1 slot of 3/3');
    is(code(0, '/z/fblocalc/call'), 429, 'local: server 1\'s second is '
       . 'refused');
    is(code(1, '/z/fblocalc/call'), 200, 'local: server 2 has its own slot');
    is($h->finish, 200, 'local: the holder ends');
}

# the change is logged once per worker and zone, not per request; every
# server had requests of these zones
for my $z (qw(fbrefuse fballow fblocal)) {
    my $mode = $z =~ s/^fb//r;
    my $re = qr/zone "$z": redis $redis_re unreachable \(.*\), falling back to $mode$/;
    is(once_per_worker($re, \@log_from), 'ok',
       "$z: the fallback is logged on each server, once per worker");
    ok(!grep({ !/\[error\]/ } map { log_lines($_, $re, $log_from[$_]) } 0 .. 2),
       "$z: ... at error");
}

# Redis back: limiting in Redis again, without a restart of nginx
my @workers_before = map { join ',', workers_of($_) } 0 .. 2;
ok($redis->start, 'recovery: Redis started again');
# reconnects back off up to 5 s: 30 s is room for a loaded machine.
# A zone's mode changes with its next decision, so each poll asks.
ok(wait_mode('fbrefuse', 'redis'), 'recovery: status mode redis again');
is(until_true('200 everywhere', 30, sub {
    all_codes('fbrefuse', 5) eq '200x15' ? 'y' : '' }), 'y',
   'recovery: every server admits through Redis');
# fblocal: Redis lost its keys, so its bucket is fresh (3 tokens); a
# server still falling back refuses (its local token is spent) without
# touching it: each server ends with one Redis token, the fourth request
# of the fleet is refused by Redis
for my $i (0 .. 2) {
    ok(until_true("server $i: fblocal in Redis", 30, sub {
        code($i, '/z/fblocal/call') == 200
        && cluster($i, 'fblocal')->{mode} eq 'redis' }),
       "recovery: server $i: fblocal admitted in redis mode again");
}
is(code(1, '/z/fblocal/call'), 429, 'recovery: fblocal\'s fresh Redis '
   . 'bucket of 3 is shared again: the fourth is refused');
for my $i (0 .. 2) {
    cmp_ok(cluster($i, 'fbrefuse')->{reconnects} // 0, '>', 0,
           "recovery: server $i counted its reconnection");
}
is(metric(2, 'asyncx_limit_cluster_mode', zone => 'fbrefuse', mode => 'redis'),
   1, 'recovery: asyncx_limit_cluster_mode is 1 for redis again');
cmp_ok(metric(2, 'asyncx_limit_cluster_commands_total', zone => 'fbrefuse')
       // 0, '>', 0, 'recovery: asyncx_limit_cluster_commands_total counts');
is_deeply([map { $_->pid } @ngx], \@master, 'recovery: same nginx masters');
is_deeply([map { join ',', workers_of($_) } 0 .. 2], \@workers_before,
          'recovery: same workers (none crashed)');
for my $z (qw(fbrefuse fblocal)) {
    my $re = qr/zone "$z": redis $redis_re reachable again, limiting in redis$/;
    is(once_per_worker($re, \@log_from), 'ok',
       "$z: the recovery is logged on each server, once per worker");
    ok(!grep({ !/\[notice\]/ } map { log_lines($_, $re, $log_from[$_]) } 0 .. 2),
       "$z: ... at notice");
}

# paused (slow) Redis: the commands time out after cluster_timeout=3s
@log_from = map { scalar(my @l = $ngx[$_]->error_log) } 0 .. 2;
$redis->pause;
{
    # each request waits at most cluster_timeout for its answer; 15 s
    # allows for a loaded machine, far from a hung request
    my @c = map { [req($_, '/z/fbrefuse/call', 15)] } 0 .. 2;
    is(join(' ', map { $_->[0] } @c), '503 503 503',
       'paused: each server answers 503 (refuse) instead of hanging');
    is(all_codes('fballow', 3), '200x9', 'paused: allow lets through');
    for my $i (0 .. 2) {
        cmp_ok(cluster($i, 'fbrefuse')->{redis_errors} // 0, '>', 0,
               "paused: server $i counted the timed-out commands in "
               . 'redis_errors');
    }
}
$redis->resume;
ok(wait_mode('fbrefuse', 'redis'), 'paused: back to redis after SIGCONT');
is(until_true('200 everywhere', 30, sub {
    all_codes('fbrefuse', 5) eq '200x15' ? 'y' : '' }), 'y',
   'paused: every server admits through Redis again');
{
    is(once_per_worker(qr/zone "fbrefuse": redis $redis_re unreachable \(/,
                       \@log_from), 'ok',
       'paused: the timeout is logged as a fallback, once per worker');
    is(once_per_worker(qr/zone "fbrefuse": redis $redis_re reachable again/,
                       \@log_from), 'ok',
       'paused: the recovery too');
}

open my $sf, '>', $stop or die;
close $sf;
waitpid($load, 0);
{
    open my $in, '<', "$dir/load.codes" or die;
    my %bad;
    for (<$in>) {
        my ($z, $c) = split;
        $bad{"$z $c"}++ if $z eq 'fbrefuse' ? $c !~ /^(200|503)$/ : $c != 200;
    }
    is(join(', ', map { "$_ x$bad{$_}" } sort keys %bad), '',
       'fallback: the load saw only 200/503 (refuse) and 200 (allow)');
}

# ---------------------------------------------------------------------
# e. the hostile client: cap 3 held, 300 waiters opened on the three
# servers and dropped in random order, 300 more opened and dropped at
# once, then the cap and the burst must be usable

sub waiting_sum {
    return sum map { my $s = zone_status($_, 'hostile'); $s ? $s->{waiting} : -1000 }
               0 .. 2;
}

{
    my @h = map { hold($_, 'hostile', "h$_") } 0 .. 2;
    is(scalar(grep { $_->wait_taken(30) } @h), 3, 'hostile: cap 3 held');

    srand(17);
    for my $round (1, 2) {
        my @w = map { $ngx[$_ % 3]
                          ->open_request("/z/hostile/call?r=$round&n=$_") }
                1 .. 300;
        # status waiting is per server (each server's own waiters)
        my $n = until_true('300 waiting', 60, sub {
            waiting_sum() == 300 ? 300 : undef });
        is($n, 300, "hostile round $round: 300 requests wait on the 3 servers");
        if ($round == 1) { close $_ for shuffle @w } else { close $_ for @w }
        is(until_true('none waiting', 60, sub {
            waiting_sum() == 0 ? 'y' : '' }), 'y',
           "hostile round $round: the dropped waiters are gone");
    }
    is($lc->zcard('hostile'), 3, 'hostile: Redis holds the 3 held leases only');
    is($_->finish, 200, 'hostile: a holder ends') for @h;
    is(no_lease('hostile'), 'y', 'hostile: Redis holds no lease');

    # full cap: 3 held again on the three servers, the fourth refused
    # (the queue: a waiter then, on the status)
    @h = map { hold($_, 'hostile', "g$_") } 0 .. 2;
    is(scalar(grep { $_->wait_taken(30) } @h), 3,
       'hostile: afterwards the full cap (3) is taken again');
    my $fourth = $ngx[1]->spawn_request("GET /z/hostile/call HTTP/1.0\r\n"
                                        . "Host: localhost\r\n\r\n", 60);
    is(until_true('one waiting', 20, sub { waiting_sum() == 1 ? 'y' : '' }),
       'y', 'hostile: the fourth waits');
    is($h[0]->finish, 200, 'hostile: a holder ends');
    like($ngx[1]->collect($fourth), qr{^HTTP/1\.\d 200},
         'hostile: the fourth is admitted');
    is($_->finish, 200, 'hostile: a holder ends') for @h[1, 2];

    # full burst: the bucket refills at 5r/s; after 1 s of Redis's clock
    # without admissions (burst / rate) it holds 5 tokens again
    my $t0 = $redis->time_ms;
    until_true('1 s of Redis time', 30, sub { $redis->time_ms - $t0 >= 1100 });
    my @c = map { code($_ % 3, '/z/hostile/call') } 1 .. 5;
    is("@c", '200 200 200 200 200', 'hostile: the full burst of 5 is admitted');
    my @p = sort { $a->[0] <=> $b->[0] }
            grep { $_->[2] == 200 && $_->[6] eq '/z/hostile/call' }
            rows('hostile');
    is(scalar(grep { $_->[5] ne 'PASSED' } @p[-5 .. -1]), 0,
       'hostile: ... each at once (PASSED)');

    # no stale lease after the lease time (1 s): everything ended
    my $end = $redis->time_ms;
    until_true('the lease time', 30, sub { $redis->time_ms - $end >= 1200 });
    is($lc->zcard('hostile'), 0,
       'hostile: Redis holds no lease after the lease time');
    my $held = sum map { cluster($_, 'hostile')->{local}{held} // 99 } 0 .. 2;
    is($held, 0, 'hostile: no server holds a slot');
}

# ---------------------------------------------------------------------

my @bad = grep { !/worker process \d+ exited on signal 9/ }
          map { $_->bad_lines } @ngx;
is(scalar @bad, 0, 'no alert, crit or emerg lines besides the kill')
    or diag @bad;

$_->stop for @ngx;
$redis->stop;

done_testing();
