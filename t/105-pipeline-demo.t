# The demo's own pipeline with the exercise's real timings: stage 1 calls
# user (0.5 s), inventory (0.3 s) and price (0.4 s) in parallel, stage 2
# shipping (0.6 s), stage 3 payment (0.8 s): 0.5 + 0.6 + 0.8 = 1.9 s, and
# 2.6 s one call at a time (?mode=sequential).
#
# The demo runs as `make run` runs it: docs/examples/run-demo.sh with
# docs/examples/demo.conf, under a private prefix, on TEST_NGINX_PORT + 7.
#
# Lower bounds are exact: a timer never fires early, and the client's
# clock starts before nginx sees the request.  Upper bounds in wall time
# are generous, for a loaded machine; that the calls of stage 1 overlap
# is shown by the module's own numbers.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Cwd qw(getcwd);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP ();
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);
use Asyncx::OwnNginx;

# bodies stay bytes: JSON keys and the literals below are UTF-8 bytes

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $port = ($ENV{TEST_NGINX_PORT} || 1984) + 7;
my $prefix = tempdir('asyncx-demo-XXXXXX', TMPDIR => 1,
                     CLEANUP => !$ENV{TEST_NGINX_NO_CLEAN});

my $pid = fork // die "fork: $!";

if ($pid == 0) {
    open STDOUT, '>', '/dev/null';
    $ENV{ROOT} = getcwd();
    $ENV{PORT} = $port;
    $ENV{NGINX_BIN} = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    $ENV{MODULE_SO} = Asyncx::OwnNginx::module_so();
    $ENV{PREFIX} = $prefix;
    exec 'docs/examples/run-demo.sh' or die "exec: $!";
}

END {
    if ($pid) {
        kill 'QUIT', $pid;
        my $until = time + 60;
        while (time < $until && waitpid($pid, WNOHANG) != $pid) { sleep 0.02 }
        kill 'KILL', $pid if kill 0, $pid;

        # like Test::Nginx's runner: TEST_NGINX_ERROR_LOG collects it
        if (my $dst = $ENV{TEST_NGINX_ERROR_LOG}) {
            if (open my $out, '>>', $dst and open my $in, '<',
                "$prefix/logs/error.log")
            {
                print {$out} <$in>;
            }
        }
    }
}

sub post {
    my ($uri) = @_;

    my $t0 = time;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5)
        or return (0, "connect: $!", 0);
    print $s "POST $uri HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n";
    local $/;
    my $raw = <$s> // '';
    my $took = time - $t0;
    close $s;

    my ($code) = $raw =~ m{^HTTP/1\.\d (\d+)};
    my ($body) = $raw =~ /\r\n\r\n(.*)\z/s;

    return ($code // 0, $body // '', $took);
}

# an answer, not a connect: `nginx -t` in run-demo.sh binds the port too
my $up = 0;
my $until = time + 60;
while (time < $until) {
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
    if ($s) {
        print $s "GET /asyncx/status HTTP/1.0\r\nHost: localhost\r\n\r\n";
        local $/;
        if ((<$s> // '') =~ m{^HTTP/1\.1 200 }) { $up = 1; last }
    }
    last if waitpid($pid, WNOHANG) == $pid;
    sleep 0.02;
}
ok($up, 'the demo answers') or BAIL_OUT('the demo did not start');


# parallel: 1.9 s

my ($code, $body, $took) = post('/orders/process');
is($code, 200, 'POST /orders/process: 200');

my $d = eval { JSON::PP->new->decode($body) } // {};
my $s = $d->{'단계별_결과'} // {};
my $c = $d->{'호출별_소요시간_ms'} // {};
my @stage = map { $s->{$_}{'소요시간_ms'} // 0 } qw(1단계 2단계 3단계);
my $total = $d->{'최적화_실행_시간_ms'} // 0;

cmp_ok($took, '>=', 1.9, sprintf('the client waited %.3f s: at least 1.9 s', $took));
cmp_ok($took, '<', 6, '... and not far more (a loaded machine stays under 6 s)');

cmp_ok($total, '>=', 1900, "the module measured $total ms: at least 1900");
cmp_ok($total, '<=', $took * 1000, '... within what the client measured');
cmp_ok($stage[0], '>=', 500, "stage 1: $stage[0] ms >= 500 (its slowest call)");
cmp_ok($stage[1], '>=', 600, "stage 2: $stage[1] ms >= 600");
cmp_ok($stage[2], '>=', 800, "stage 3: $stage[2] ms >= 800");

my @calls = map { $c->{$_} // 0 } qw(사용자 재고 가격);
my ($slowest) = sort { $b <=> $a } @calls;
my $sum = $calls[0] + $calls[1] + $calls[2];
cmp_ok($stage[0] - $slowest, '<', $sum - $slowest,
       'stage 1 lasts its slowest call, not the sum of its three: parallel');
cmp_ok($c->{'사용자'} // 0, '>=', 500, 'user call >= 500 ms');
cmp_ok($c->{'재고'} // 0, '>=', 300, 'inventory call >= 300 ms');
cmp_ok($c->{'가격'} // 0, '>=', 400, 'price call >= 400 ms');
cmp_ok($d->{'순차_실행_예상시간_ms'} // 0, '>=', 2600,
       'the sequential estimate is at least 2.6 s');

like($d->{'최적화_실행_시간'} // '',
     qr/^\d+\.\d초 \(1단계 \d+\.\d초 \+ 2단계 \d+\.\d초 \+ 3단계 \d+\.\d초\)$/,
     'the exercise\'s string: total (stage + stage + stage)');
my @secs = ($d->{'최적화_실행_시간'} // '') =~ /(\d+\.\d)/g;
ok(@secs == 4 && $secs[0] >= 1.9 && $secs[1] >= 0.5 && $secs[2] >= 0.6
   && $secs[3] >= 0.8, "... with at least 1.9 = 0.5 + 0.6 + 0.8 s (@secs)");


# sequential: 2.6 s

($code, $body, $took) = post('/orders/process?mode=sequential');
is($code, 200, 'POST /orders/process?mode=sequential: 200');
$d = eval { JSON::PP->new->decode($body) } // {};

cmp_ok($took, '>=', 2.6, sprintf('the client waited %.3f s: at least 2.6 s', $took));
cmp_ok($took, '<', 8, '... and not far more');
cmp_ok($d->{'순차_실행_시간_ms'} // 0, '>=', 2600,
       'the module measured at least 2600 ms');


# the public mock behind the limiter: what a client may ask of it is
# capped (max_delay=2s max_big=64k), so that nobody holds a slot of the
# zone for a minute or 16 MiB of a worker per request

sub get_json {
    my ($uri) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 10)
        or return (0, "connect: $!");
    print $s "GET $uri HTTP/1.0\r\nHost: localhost\r\n\r\n";
    local $/;
    my $raw = <$s> // '';
    close $s;

    my ($code) = $raw =~ m{^HTTP/1\.\d (\d+)};
    my ($body) = $raw =~ /\r\n\r\n(.*)\z/s;

    return ($code // 0, $body // '');
}

($code, $body) = get_json('/external/x?delay=3s');
is("$code $body", qq(400 {"error": "delay \\"3s\\" exceeds the maximum of 2000 ms", "status": 400}\n),
   '/external/: a delay over max_delay=2s is refused');

($code, $body) = get_json('/external/x?fail=external-api&fail_mode=big&big=65537');
is("$code $body", qq(400 {"error": "invalid big, use a byte count from 1 to 65536 (max_big)", "status": 400}\n),
   '/external/: big over max_big=64k is refused');

($code, $body) = get_json('/external/x?fail=external-api&fail_mode=big&big=65536');
is("$code " . length($body), '200 65537', '/external/: big=65536 is answered (and a newline)');

($code, $body) = get_json('/external/x?fail=external-api&fail_mode=slow');
$d = eval { JSON::PP->new->decode($body) } // {};
is("$code " . ($d->{delay_ms} // '?'), '200 2000',
   '/external/: fail_mode=slow is capped at max_delay (2000 ms, not 10.5 s)');

done_testing();
