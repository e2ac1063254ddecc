# A worker killed with work in flight (kill -9) never ends that work:
# what /asyncx/status counts as in flight (pipelines.active, mock.active,
# streams.active, each pool's queued and running) must drop what the
# dead worker had, also after a reload.  Before, those numbers stayed
# above 0 for good.
#
# Deterministic: the work in flight waits on things that do not end by
# themselves while the test looks (60 s mock delays, a PBKDF2 hash of
# 2^31 - 1 iterations, a job queued behind it); the test sees them all in
# the status, kills the worker, and reads the status from the worker the
# master starts in its place (which starts after the master reaped the
# dead one).  Its own nginx (master + one worker) on TEST_NGINX_PORT + 5.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use JSON::PP ();
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $ngx = Asyncx::OwnNginx->new(offset => 5, name => 'status-kill',
    workers => 1, main => 'thread_pool tiny threads=1 max_queue=8;',
    http => <<'HTTP');
    asyncx_thread_pools io=tiny cpu=tiny;

    server {
        listen 127.0.0.1:$PORT;

        location = /orders/process {
            asyncx_pipeline;
            asyncx_stage one a=/svc/a b=/svc/b;
            asyncx_call_timeout 60s;
        }
        location /svc/ {
            internal;
            asyncx_mock_service delay=60s;
        }
        location = /slow {
            asyncx_mock_service delay=60s;
        }
        location = /auth/hash {
            asyncx_pbkdf2_iterations 2147483647;
            asyncx_pbkdf2_max_iterations 2147483647;
            asyncx_password_hash;
        }
        location = /stream/search { asyncx_sse search; }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

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

sub in_flight {
    my ($st) = @_;
    my $p = $st->{pools}{tiny};
    return "pipelines=$st->{pipelines}{active} "
         . "mock=$st->{pipelines}{mock}{active} "
         . "streams=$st->{streams}{active} "
         . "queued=$p->{queued} running=$p->{running}";
}

sub totals {
    my ($st) = @_;
    return "pipelines=$st->{pipelines}{total} "
         . "mock=$st->{pipelines}{mock}{total} "
         . "streams=$st->{streams}{total} posted=$st->{pools}{tiny}{posted}";
}

sub send_raw {
    my ($raw) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ngx->port,
                                  Timeout => 5) or die "connect: $!";
    print $s $raw;
    return $s;
}

# until the status says $want, or 30 s
sub wait_for {
    my ($want, $pid_not) = @_;
    my ($st, $got, $t0) = (undef, '', time);
    while (time - $t0 < 30) {
        $st = status();
        if ($st && (!defined $pid_not || $st->{pid} != $pid_not)) {
            $got = in_flight($st);
            last if $got eq $want;
        }
        sleep 0.05;
    }
    return ($st, $got);
}

# the first answer of a worker other than $pid
sub new_worker {
    my ($pid) = @_;
    my $t0 = time;
    while (time - $t0 < 30) {
        my $st = status();
        return $st if $st && $st->{pid} != $pid;
        sleep 0.05;
    }
    return undef;
}

# everything at once: a pipeline with two calls, a mock of its own, a
# hash that runs, a hash queued behind it, and a stream whose first
# batch is queued behind both
sub start_work {
    my @c;
    push @c, send_raw("POST /orders/process HTTP/1.0\r\nHost: x\r\n"
                      . "Content-Type: application/json\r\n"
                      . "Content-Length: 2\r\n\r\n{}");
    push @c, send_raw("GET /slow HTTP/1.0\r\nHost: x\r\n\r\n");
    for (1 .. 2) {
        push @c, send_raw("POST /auth/hash HTTP/1.0\r\nHost: x\r\n"
                          . "Content-Length: 20\r\n\r\n"
                          . '{"password": "slow"}');
        wait_for("pipelines=1 mock=3 streams=0 queued=0 running=1")
            if $_ == 1;
    }
    push @c, send_raw("GET /stream/search?keyword=python HTTP/1.0\r\n"
                      . "Host: x\r\n\r\n");
    return @c;
}

my $busy = "pipelines=1 mock=3 streams=1 queued=2 running=1";
my $idle = "pipelines=0 mock=0 streams=0 queued=0 running=0";

for my $round (1, 2) {
    my @clients = start_work();

    my ($st, $got) = wait_for($busy);
    is($got, $busy, "round $round: all of it in flight");
    my $pid = $st->{pid};
    my $totals = totals($st);

    ok(kill('KILL', $pid), "round $round: worker $pid killed");
    close $_ for @clients;

    my $new = new_worker($pid);
    ok($new, "round $round: the master started a new worker");
    is(in_flight($new // {}), $idle,
       "round $round: its first status has nothing in flight");
    is(totals($new // {}), $totals, "round $round: totals kept");

    # a reload: the next generation agrees
    kill 'HUP', $ngx->pid;
    my $reloaded = new_worker($new->{pid});
    ok($reloaded, "round $round: reloaded");
    is(in_flight($reloaded // {}), $idle,
       "round $round: nothing in flight after the reload");

    # the old generation accepts until it sees the master's signal: the
    # next round starts once it is gone, or it might take some of it
    my $t0 = time;
    sleep 0.05 while kill(0, $new->{pid}) && time - $t0 < 30;
    ok(!kill(0, $new->{pid}), "round $round: the old worker exited")
        or kill 'KILL', $new->{pid};
}

my @el = $ngx->error_log;
is(scalar(grep { /\[notice\] .*asyncx: process \d+ is gone, dropped what it had in flight: 1 pipelines, 3 mock answers, 1 streams, 2 jobs queued, 1 running/ } @el),
   2, 'a notice names each dead worker and what it had');
is(scalar(grep { /\[alert\] .*worker process \d+ exited on signal 9/ } @el),
   2, "the master's alert for each kill");
is(scalar(grep { /\[(error|crit|emerg)\]/
                 || (/\[alert\]/ && !/exited on signal 9/) } @el),
   0, 'no other error, alert, crit or emerg lines');

kill_workers($ngx->pid);
$ngx->stop;

done_testing();
