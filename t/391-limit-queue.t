# The waiting queue cannot be wedged (issue 12): the demo's zone
# (concurrency=3, queue=100, 5r/s), its 3 slots held, its 100 places
# filled, then the places are given up in every order, by a kill -9 of
# the workers, across a reload.  Afterwards the next request must be
# admitted within one token interval (by $asyncx_limit_wait, the
# module's own monotonic measure) and the zone must read 0 in flight, 0
# waiting.  Two workers share the zone (reuseport: both accept), so the
# places belong to both.  Nothing here sleeps for a fixed time to let
# nginx catch up: every wait polls the zone's own numbers, with generous
# bounds for a busy machine.  Runs its own nginx on TEST_NGINX_PORT + 5.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Time::HiRes qw(time sleep);
use JSON::PP ();
use List::Util qw(shuffle);
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $ngx = Asyncx::OwnNginx->new(offset => 5, name => 'limit-queue',
                                workers => 2, http => <<'HTTP');
    log_format lim '$msec $pid $status $asyncx_limit_status $asyncx_limit_wait $uri';

    # the demo's zone; a long timeout: places must be freed by their
    # requests leaving, not by timing out
    asyncx_limit_zone zone=external:1m rate=5r/s burst=5 concurrency=3
                      queue=100 timeout=60s;
    asyncx_limit_zone zone=one:64k rate=100r/s concurrency=1 queue=100
                      timeout=60s;

    server {
        listen 127.0.0.1:$PORT reuseport backlog=512;

        add_header X-Limit "$asyncx_limit_status $asyncx_limit_wait" always;

        location /external/ {
            access_log $DIR/logs/external.log lim;
            asyncx_limit external;
            asyncx_mock_service name=external-api delay=500ms max_delay=60s
                                echo=off;
        }
        # one slot: a hand-off between workers is easy to arrange
        location /one/ {
            access_log $DIR/logs/one.log lim;
            asyncx_limit one;
            asyncx_mock_service name=one delay=0ms max_delay=60s echo=off;
        }
        location = /rate-limit-test { asyncx_limit_test external /external/call; }
        location = /rate-limiter/status { asyncx_limit_zone_status external; }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

my $master = $ngx->pid;

# until the master runs 2 workers that are not in @_; old ones may still
# be finishing their requests (a reload lets a worker serve what it took)
sub wait_new_workers {
    my %old = map { $_ => 1 } @_;
    my $t0 = time;
    while (time - $t0 < 60) {
        return 1 if 2 == grep { !$old{$_} } $ngx->workers;
        sleep 0.05;
    }
    return 0;
}

# until none of @_ is a child of the master any more
sub wait_workers_gone {
    my %old = map { $_ => 1 } @_;
    my $t0 = time;
    while (time - $t0 < 60) {
        return 1 unless grep { $old{$_} } $ngx->workers;
        sleep 0.05;
    }
    return 0;
}

sub status {
    my ($code, $body) = $ngx->get('/rate-limiter/status', 5);
    return $code == 200 ? eval { JSON::PP::decode_json($body) } : undef;
}

sub cw {
    my $s = shift or return 'none';
    return "$s->{concurrent}{current}/$s->{waiting}";
}

# polls the zone until $want ("current/waiting") or $limit seconds
sub wait_zone {
    my ($want, $limit) = @_;
    my $seen;
    my $t0 = time;
    while (time - $t0 < $limit) {
        $seen = cw(status());
        return $seen if $seen eq $want;
        sleep 0.05;
    }
    return $seen;
}

# (status, X-Limit header) of one request
sub get_limit {
    my ($path) = @_;
    my $res = $ngx->request("GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n",
                            10);
    my ($code) = $res =~ m{^HTTP/1\.\d (\d+)};
    my ($x) = $res =~ /\r\nX-Limit: ([^\r]*)\r\n/;
    return ($code // 0, $x // '');
}

# the issue's scenario: 3 slots held, 100 places taken; $depart gives
# the places up; then the holders end (closed, or at the end of their
# delay); then the zone must be idle and admit the next request at once
sub scenario {
    my (%o) = @_;
    my $name = $o{name};
    my $hold = $o{hold} // '60s';

    my @holders = map { $ngx->open_request("/external/hold$_?delay=$hold") }
                  1 .. 3;
    is(wait_zone('3/0', 20), '3/0', "$name: 3 requests hold the 3 slots");

    my @waiters;
    for my $i (1 .. 100) {
        push @waiters, $ngx->open_request("/external/w$i");
    }
    is(wait_zone('3/100', 30), '3/100', "$name: 100 requests wait");

    my ($code) = get_limit('/external/over');
    is($code, 429, "$name: the 101st is refused: queue is full");

    $o{depart}->(\@waiters, \@holders);

    if ($o{holders_finish}) {
        # the holders end by themselves, at the end of their delay
    } else {
        close $_ for @holders;
    }
    close $_ for grep { defined } @waiters;

    is(wait_zone('0/0', 40), '0/0', "$name: the zone is back to 0/0");

    # within one token interval (0.2 s at 5r/s): waiters granted while
    # the others left may have spent the burst; the wait is the module's
    # own monotonic measure, with room for a busy machine
    my $x;
    ($code, $x) = get_limit('/external/next?delay=0ms');
    is($code, 200, "$name: the next request is admitted");
    like($x, qr/^(PASSED|DELAYED) 0\.\d{3}$/, "$name: admitted ($x)");
    my ($wait) = $x =~ / ([\d.]+)$/;
    cmp_ok($wait // 9, '<=', 0.45,
           "$name: within one token interval (0.2 s) and a margin");

    is(wait_zone('0/0', 10), '0/0', "$name: and the zone reads 0/0 after it");
}

for (1 .. 100) { last if status(); sleep 0.05 }
is(cw(status()), '0/0', 'nginx is up, the zone is idle');

scenario(name => 'all places left at once',
         depart => sub { my $w = shift; close $_ for @$w; @$w = () });

scenario(name => 'newest first, 20 ms apart (the oldest leaves last)',
         depart => sub {
             my $w = shift;
             while (my $s = pop @$w) { close $s; sleep 0.02 }
         });

scenario(name => 'oldest first',
         depart => sub {
             my $w = shift;
             while (my $s = shift @$w) { close $s; sleep 0.005 }
         });

srand(12);
scenario(name => 'random order',
         depart => sub {
             my $w = shift;
             close $_ for shuffle @$w;
             @$w = ();
         });

scenario(name => 'holders end by themselves after the places left',
         hold => '6s', holders_finish => 1,
         depart => sub {
             my $w = shift;
             while (my $s = pop @$w) { close $s; sleep 0.01 }
         });

scenario(name => 'kill -9 of every worker',
         depart => sub {
             my @before = $ngx->workers;
             kill 'KILL', @before;
             ok(wait_new_workers(@before), 'kill -9: the master starts new workers');
         });

scenario(name => 'reload with the places taken',
         depart => sub {
             my $w = shift;
             my @before = $ngx->workers;
             kill 'HUP', $master;
             ok(wait_new_workers(@before), 'reload: new workers are up');
             # the old workers keep serving their queue until it is given up
             while (my $s = pop @$w) { close $s; sleep 0.005 }
             ok(wait_workers_gone(@before), 'reload: the old workers exit');
         });

# a zone's full numbers (asyncx_status): per-worker places and slots
sub zone_full {
    my ($name) = @_;
    my ($code, $body) = $ngx->get('/asyncx/status', 5);
    return $code == 200
        ? eval { JSON::PP::decode_json($body)->{limit_zones}{$name // 'external'} }
        : undef;
}

# pid => [waiting, granted, held] of every worker known to the zone
sub by_worker {
    my $z = zone_full(@_) or return {};
    return { map { $_->{pid} => [$_->{waiting}, $_->{granted}, $_->{held}] }
             @{ $z->{workers} } };
}

# until $cond->(by_worker($zone)) or $limit seconds
sub wait_workers {
    my ($zone, $cond, $limit) = @_;
    my $t0 = time;
    while (time - $t0 < $limit) {
        my $w = by_worker($zone);
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

# --- a waiter in one worker, the slot freed in the other -------------
# zone "one" (one slot): a holder, then waiters opened one at a time
# until the head of the queue is a request of the other worker (closing
# those of the holder's worker); then the holder ends.  The head must be
# admitted at once (a wake-up across workers), not at its 60 s timeout.
{
    my $holder = $ngx->open_request('/one/hold?delay=60s');
    my $w = wait_workers('one', sub { 1 == grep { $_->[2] == 1 } values %{ $_[0] } },
                         20);
    my ($holding) = $w ? grep { $w->{$_}[2] == 1 } keys %$w : ();
    ok($holding, 'handoff: one worker holds the only slot');

    my $head;
    for my $try (1 .. 40) {
        my $s = $ngx->open_request("/one/w$try?delay=0ms");
        my $now = wait_workers('one', sub { 1 == grep { $_->[0] == 1 }
                                                 values %{ $_[0] } }, 10)
            or last;
        my ($pid) = grep { $now->{$_}[0] == 1 } keys %$now;
        if ($pid != $holding) { $head = $s; last }
        close $s;
        wait_workers('one', sub { !grep { $_->[0] } values %{ $_[0] } }, 10);
    }
    ok($head, 'handoff: the head of the queue waits in the other worker');

    my $before = zone_full('one')->{handoffs}{count};
    my $t0 = time;
    close $holder;
    my $code = $head ? read_answer($head, 20) : 0;
    my $took = time - $t0;
    is($code, 200, 'handoff: the waiter in the other worker is admitted');
    cmp_ok($took, '<', 5, sprintf('handoff: without waiting for its timeout '
                                  . '(%.2f s)', $took));
    my $z = zone_full('one');
    is($z->{handoffs}{count}, $before + 1,
       "handoff: counted (mean $z->{handoffs}{mean_us} us, max "
       . "$z->{handoffs}{max_us} us)");
    my $w2 = by_worker('one');
    is(join('', map { "@$_" } values %$w2), '0 0 0' x keys %$w2,
       'handoff: zone "one" holds nothing now');
}

# --- kill -9 of the worker with the most places; the other's waiters go on
# in FIFO order: 30 waiters opened one after the other (each seen waiting
# before the next), 3 slots held; one worker is killed, the holders end;
# every waiter of the live worker gets 200, in the order it arrived
# (5 r/s: the last of them are admitted a token apart).
{
    my @holders = map { $ngx->open_request("/external/kh$_?delay=60s") } 1 .. 3;
    is(wait_zone('3/0', 20), '3/0', 'kill one: 3 slots held');

    my @waiters;
    for my $i (1 .. 30) {
        push @waiters, $ngx->open_request("/external/k$i?delay=200ms");
        last unless wait_zone("3/$i", 10) eq "3/$i";
    }
    is(scalar @waiters, 30, 'kill one: 30 waiters in arrival order');

    my $w = by_worker();
    my ($victim) = sort { $w->{$b}[0] <=> $w->{$a}[0] } keys %$w;
    my ($survivor) = grep { $_ != $victim } keys %$w;
    my $live = $survivor ? $w->{$survivor}[0] : 0;
    ok($live > 0 && $w->{$victim}[0] > 0,
       "kill one: both workers have waiters ($w->{$victim}[0] in $victim, "
       . "$live in the other)");

    kill 'KILL', $victim;
    ok(wait_new_workers($victim), 'kill one: the master replaced the worker');
    close $_ for @holders;

    my %code;
    $code{$_} = read_answer($waiters[$_], 30) for 0 .. $#waiters;
    my @ok = grep { $code{$_} == 200 } sort { $a <=> $b } keys %code;
    my @gone = grep { $code{$_} != 200 } keys %code;
    is(scalar @ok, $live, "kill one: every waiter of the live worker got 200 ("
       . scalar(@ok) . " of $live)");
    ok(!grep({ $code{$_} != 0 } @gone),
       'kill one: the killed worker\'s clients lost their connection');

    # the calls take 200 ms, three at a time: a request admitted after
    # another ends no earlier than the other, within the jitter of a busy
    # machine; one admitted a round earlier (out of turn) ends 200 ms
    # earlier.  No later arrival may end 100 ms before an earlier one.
    open my $log, '<', $ngx->dir . '/logs/external.log' or die $!;
    my %end;
    for (<$log>) {
        my @f = split ' ';
        $end{$1 - 1} = $f[0] if $f[5] =~ m{^/external/k(\d+)$} && $f[2] == 200;
    }
    close $log;
    my @out;
    for my $i (@ok) {
        for my $j (grep { $_ > $i } @ok) {
            push @out, "$j before $i"
                if defined $end{$i} && defined $end{$j}
                   && $end{$j} + 0.1 < $end{$i};
        }
    }
    is("@out", '', "kill one: the live worker's waiters were served in "
       . "arrival order (@ok)");

    is(wait_zone('0/0', 20), '0/0', 'kill one: the zone is back to 0/0');
    my ($c, $x) = get_limit('/external/next?delay=0ms');
    is($c, 200, "kill one: the next request is admitted ($x)");
}

# --- a reload may change concurrency and queue: the new workers apply them
{
    my $conf = $ngx->dir . '/nginx.conf';
    open my $in, '<', $conf or die $!;
    my $text = do { local $/; <$in> };
    close $in;
    $text =~ s/concurrency=3\s+queue=100/concurrency=2 queue=50/ or die;
    open my $out, '>', $conf or die $!;
    print $out $text;
    close $out;

    my @before = $ngx->workers;
    kill 'HUP', $master;
    ok(wait_new_workers(@before), 'reload with concurrency=2 queue=50');
    # an old worker still accepts until it has read its quit signal, and
    # answers with the old configuration (seen on a loaded machine)
    ok(wait_workers_gone(@before), '... and the old workers are gone');
    my $z = zone_full();
    is("$z->{concurrent}{max}/$z->{queue}", '2/50',
       'the new limits are in force');
    is(wait_zone('0/0', 10), '0/0', 'and the zone is idle');
}

my @bad = grep { /\[(alert|crit|emerg)\]/
                 && !/worker process \d+ exited on signal 9/ } $ngx->error_log;
is(scalar @bad, 0, 'no alert, crit or emerg lines besides the kills')
    or diag @bad;

$ngx->stop;

done_testing();
