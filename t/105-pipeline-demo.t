# The demo's own pipeline with the exercise's real timings: stage 1 calls
# user (0.5 s), inventory (0.3 s) and price (0.4 s) in parallel, stage 2
# shipping (0.6 s), stage 3 payment (0.8 s): 0.5 + 0.6 + 0.8 = 1.9 s, and
# 2.6 s one call at a time (?mode=sequential).
#
# The demo runs as `make run` runs it: docs/examples/run-demo.sh with
# docs/examples/demo.conf, under a private prefix, on TEST_NGINX_PORT + 7.
# At the end, the demo's NDJSON streams (/ndjson/*) answer exactly as
# the README shows.
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
# as build/demo of `make run`: the workers (nobody under a root master)
# read data/ below it; tempdir() makes it 0700
chmod 0755, $prefix or die "chmod $prefix: $!";

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

# the demo's NDJSON streams (README, "The same streams over NDJSON
# files"): run-demo.sh generates the same access log every time, so the
# events are exact but for the id's tag (the file's device and inode)
# and the time taken

sub sse {
    my ($uri, @headers) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port", Timeout => 5)
        or return (0, "connect: $!");
    print $s "GET $uri HTTP/1.0\r\nHost: localhost\r\n",
             map({ "$_\r\n" } @headers), "\r\n";
    local $/;
    my $raw = <$s> // '';
    my ($code) = $raw =~ m{^HTTP/1\.\d (\d+)};
    my ($body) = $raw =~ /\r\n\r\n(.*)\z/s;
    return ($code // 0, $body // '');
}

sub masked {
    my ($body) = @_;
    my %tags = map { $_ => 1 } $body =~ /^id: \S+-([0-9a-f]{8})$/mg;
    $body =~ s/^(id: \S+)-[0-9a-f]{8}$/$1-TAG/mg;
    $body =~ s/"total_time_ms": [0-9.]+/"total_time_ms": T/g;
    return ($body, scalar keys %tags);
}

my $search = '/ndjson/search?file=access.ndjson&keyword=TIMEOUT'
             . '&ignore_case=1&field=msg&limit=2';
($code, $body) = sse($search);
is($code, 200, 'GET /ndjson/search: 200') or diag $body;
my ($events, $tags) = masked($body);
# the README's answer (its tags masked)
my $readme_events = <<'EV';
id: 167-1-1-0-m-TAG
data: {"type": "match", "line": 1, "offset": 0, "record": {"id":0,"ts":1700000000.807,"level":"info","method":"GET","path":"/api/items/42","status":304,"latency_ms":249,"user":"u378","msg":"upstream timeout after 3 retries"}}

id: 1111-7-2-0-m-TAG
data: {"type": "match", "line": 7, "offset": 947, "record": {"id":6,"ts":1700000000.124,"level":"error","method":"GET","path":"/search","status":304,"latency_ms":219.3,"user":"u301","msg":"upstream timeout after 3 retries"}}

id: 1111-7-2-0-c-TAG
data: {"type": "complete", "total_processed": 7, "total_matches": 2, "skipped": 0, "size": 3205937, "limit_reached": true, "total_time_ms": T}

EV
is($events, $readme_events,
   '... the README\'s two matches and complete event');
is($tags, 1, '... one tag for the whole stream');

my ($first_id) = $body =~ /\Aid: (\S+)/;
($code, $body) = sse($search, "Last-Event-ID: $first_id");
($events) = masked($body);
is($events, join("\n\n", (split /\n\n/, $readme_events)[1, 2]) . "\n\n",
   '... resumed after the first match: the rest of it');

($code, $body) = sse('/ndjson/transform?batch_size=2');
is($code, 200, 'GET /ndjson/transform: 200');
($events) = masked($body);
is((split /\n\n/, $events)[0] . "\n", <<'EV', '... the README\'s first batch');
id: 321-2-0-0-b-TAG
data: {"type": "batch", "batch_num": 1, "items_processed": 2, "skipped": 0, "offset": 321, "size": 3205937, "count": 2, "checksum": "f969c60f", "records": [{"id": 0, "status": 304, "route": "/api/items/42"}, {"id": 1, "status": 204, "route": "/health"}]}
EV
like($events, qr/"type": "complete", "total_processed": 20000, /,
     '... every line of the file');

($code, $body) = sse('/ndjson/aggregate?group_by=method');
is($code, 200, 'GET /ndjson/aggregate: 200');
($events) = masked($body);
is((split /\n\n/, $events)[-1] . "\n", <<'EV', '... the README\'s table');
id: 3205937-20000-0-0-c-TAG
data: {"type": "complete", "total_processed": 20000, "skipped": 0, "size": 3205937, "result": {"records": 20000, "count": 20000, "sum": 34944744.50000007, "min": 0, "max": 4999, "avg": 1747.2372250000033}, "groups": 4, "by_group": [{"key": "GET", "stats": {"records": 10004, "count": 10004, "sum": 17611736.599999998, "min": 0, "max": 4999, "avg": 1760.4694722111153}}, {"key": "POST", "stats": {"records": 4987, "count": 4987, "sum": 8780777.100000009, "min": 0.4, "max": 4997, "avg": 1760.73332664929}}, {"key": "PUT", "stats": {"records": 2543, "count": 2543, "sum": 4324501.700000004, "min": 0.1, "max": 4995, "avg": 1700.5511993708235}}, {"key": "DELETE", "stats": {"records": 2466, "count": 2466, "sum": 4227729.100000001, "min": 0.4, "max": 4993, "avg": 1714.407583130576}}], "other": null, "total_time_ms": T}
EV

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
