# The limiter's cluster mode against a hostile Redis (a fake one the test
# runs, TEST_NGINX_PORT + 9): what hiredis's pub/sub code would assert on
# (SIGABRT, the worker and everything it had in flight gone) is refused
# as it is read, the subscriber connection is dropped and made again;
# and Redis's error text reaches the log as text (\xNN), never raw bytes.
# Found by the thirteenth session's hostile review; fails before.
#
# Deterministic: the fake answers the first acquire after a good SCRIPT
# LOAD "wait" (so the worker opens its subscriber connection), every
# other one "granted";
# each subscriber connection gets one malformed message, a different one
# each time.  nginx on TEST_NGINX_PORT + 6, one worker.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha1_hex);
use File::Temp ();
use Asyncx::FakeRedis;
use Asyncx::OwnNginx qw(until_true);

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $rport = ($ENV{TEST_NGINX_PORT} || 1984) + 9;
my $state = File::Temp::tempdir('asyncx-fake-redis-XXXXXX', TMPDIR => 1,
                                CLEANUP => 1);

# what each subscriber connection gets after its confirmation
my @malformed = (
    "*3\r\n\$7\r\nmessage\r\n:1\r\n:2\r\n",           # integers
    "*1\r\n\$7\r\nmessage\r\n",                         # one element
    "*3\r\n:7\r\n\$1\r\nx\r\n\$1\r\ny\r\n",             # an integer first
    "*3\r\n\$7\r\nmessage\r\n*1\r\n:1\r\n\$1\r\ny\r\n",  # a nested array
);

my ($acquires, $subs, $loads) = (0, 0, 0);

Asyncx::FakeRedis->start($rport, sub {
    my (@args) = @_;
    my $cmd = uc $args[0];
    my $out;
    if ($cmd eq 'SCRIPT') {
        # the first load is refused with bytes no log line may carry as
        # they are
        $out = $loads++ == 0
               ? "-ERR boom \xff\x01\x1b[31m \"quoted\"\r\n"
               : '$40' . "\r\n" . sha1_hex($args[2]) . "\r\n";
    } elsif ($cmd eq 'SUBSCRIBE') {
        $out = "*3\r\n\$9\r\nsubscribe\r\n\$" . length($args[1])
               . "\r\n$args[1]\r\n:1\r\n"
               . ($malformed[$subs] // '');
        $subs++;
    } elsif ($cmd eq 'EVALSHA') {
        my $mode = -e "$state/granted2" ? 'granted2' : '';
        if (($args[5] // '') eq 'acquire' && $mode) {
            # not a reply the script can give
            $out = "*4\r\n:2\r\n:0\r\n:0\r\n:0\r\n";
        } elsif (($args[5] // '') eq 'acquire') {
            # the first acquire after a good load waits
            $out = ($loads >= 2 && $acquires++ == 0)
                   ? "*4\r\n:0\r\n:-5\r\n:0\r\n:0\r\n"
                   : "*4\r\n:1\r\n:0\r\n:1\r\n:5000\r\n";
        } else {
            $out = "*2\r\n:1\r\n:0\r\n";
        }
    } else {
        $out = "+OK\r\n";
    }
    if (open my $st, '>', "$state/subs") { print $st $subs; }
    return $out;
});

sub subs {
    open my $fh, '<', "$state/subs" or return 0;
    return <$fh> // 0;
}

sub nginx {
    return Asyncx::OwnNginx->new(offset => 6, name => 'limit-hostile',
        workers => 1, http => <<"HTTP");
    asyncx_limit_zone zone=cz:1m rate=1000r/s concurrency=1 queue=10
                      timeout=10s cluster=redis://127.0.0.1:$rport
                      cluster_timeout=10s;

    server {
        listen 127.0.0.1:\$PORT;

        location = /h {
            asyncx_limit cz;
            asyncx_mock_service name=h 'json={"in": 1}';
        }
        location = /asyncx/status { asyncx_status; }
    }
HTTP
}

# --- Redis's error text in the log: the first SCRIPT LOAD is refused -------

my $ngx = nginx();
my ($code, $body) = $ngx->get('/h');
ok($code == 200 || $code == 503, "a request is answered ($code)");
ok($ngx->wait_log(qr/SCRIPT LOAD answered/), 'the refused SCRIPT LOAD is logged');
my @log = $ngx->error_log;
my @load = grep { /SCRIPT LOAD answered/ } @log;
like($load[0] // '', qr/SCRIPT LOAD answered ERR boom \\xff\\x01\\x1b\[31m "quoted"/,
     '... its bytes as \\xNN');
is(scalar(grep { /[\x00-\x08\x0b-\x1f\x7f]/ } @log), 0,
   'no raw control character in the log');
$ngx->stop;

# --- malformed pub/sub messages: refused, the worker lives -----------------

$ngx = nginx();
my $pid = ($ngx->json('/asyncx/status') // {})->{pid};
ok($pid, 'the worker answers its status');

# the first acquire waits: the worker opens its subscriber connection,
# which gets a malformed message, is dropped and made again
($code, $body) = $ngx->get('/h');
is($code, 200, 'the request that waited is answered 200');

for my $i (1 .. 20) {
    last if subs() >= scalar @malformed;
    ($code) = $ngx->get('/h');
}

ok(until_true('every malformed message sent', 30,
              sub { subs() >= scalar @malformed }),
   'the subscriber connected again after each malformed message ('
   . subs() . ' connections)');

is(($ngx->json('/asyncx/status') // {})->{pid}, $pid,
   'the same worker throughout: none was aborted');

@log = $ngx->error_log;
is(scalar(grep { /exited on signal|Assertion/ } @log), 0,
   'no worker exited on a signal, no assertion') or diag(@log);

# --- "granted" 2: not the script's reply, so Redis is not trusted -------
# (it was taken as "denied, retry in 0 ms": the request asked again
# every millisecond until its timeout)

{ open my $fh, '>', "$state/granted2" or die $!; }
($code, $body) = $ngx->get('/h', 20);
is($code, 503, 'an acquire answered granted=2: the fallback (refuse)');
ok($ngx->wait_log(qr/unreachable \(a reply of an unexpected type\), falling back to refuse/),
   '... logged as an unexpected reply') or diag($ngx->error_log);

$ngx->stop;

done_testing();
