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
use IO::Socket::INET;
use JSON::PP ();
use List::Util qw(shuffle);
use Asyncx::OwnNginx;

plan skip_all => 'TEST_NGINX_LOAD_MODULES is not set'
    unless Asyncx::OwnNginx::module_so();

my $ngx = Asyncx::OwnNginx->new(offset => 5, name => 'limit-queue',
                                workers => 2, http => <<'HTTP');
    log_format lim '$msec $pid $status $asyncx_limit_status $asyncx_limit_wait $uri';

    # the demo's zone; a long timeout: places must be freed by their
    # requests leaving, not by timing out
    asyncx_limit_zone zone=external:1m rate=5r/s burst=5 concurrency=3
                      queue=100 timeout=60s;

    server {
        listen 127.0.0.1:$PORT reuseport backlog=512;

        add_header X-Limit "$asyncx_limit_status $asyncx_limit_wait" always;

        location /external/ {
            access_log $DIR/logs/external.log lim;
            asyncx_limit external;
            asyncx_mock_service name=external-api delay=500ms max_delay=60s
                                echo=off;
        }
        location = /rate-limit-test { asyncx_limit_test external /external/call; }
        location = /rate-limiter/status { asyncx_limit_zone_status external; }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

my $master = $ngx->pid;

sub workers {
    return grep { /^\d+$/ } split ' ', `ps -o pid= --ppid $master 2>/dev/null`;
}

sub wait_new_workers {
    my %old = map { $_ => 1 } @_;
    for (1 .. 400) {
        my @now = workers();
        return 1 if @now == 2 && !grep { $old{$_} } @now;
        sleep 0.05;
    }
    return 0;
}

# a request sent on a connection kept open; closing it is the departure
sub open_request {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ngx->port,
                                  Timeout => 5) or die "connect: $!";
    print $s "GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n";
    return $s;
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

    my @holders = map { open_request("/external/hold$_?delay=$hold") } 1 .. 3;
    is(wait_zone('3/0', 20), '3/0', "$name: 3 requests hold the 3 slots");

    my @waiters;
    for my $i (1 .. 100) {
        push @waiters, open_request("/external/w$i");
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
             my @before = workers();
             kill 'KILL', @before;
             ok(wait_new_workers(@before), 'kill -9: the master starts new workers');
         });

scenario(name => 'reload with the places taken',
         depart => sub {
             my $w = shift;
             my @before = workers();
             kill 'HUP', $master;
             ok(wait_new_workers(@before), 'reload: new workers are up');
             while (my $s = pop @$w) { close $s; sleep 0.005 }
         });

my @bad = grep { /\[(alert|crit|emerg)\]/
                 && !/worker process \d+ exited on signal 9/ } $ngx->error_log;
is(scalar @bad, 0, 'no alert, crit or emerg lines besides the kills')
    or diag @bad;

$ngx->stop;

done_testing();
