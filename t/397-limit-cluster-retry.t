# The limiter's cluster mode against a Redis that always answers
# "denied, retry in 0 ms" (a fake one the test runs, TEST_NGINX_PORT + 9):
# the waiter asks again no sooner than 10 ms, the interval doubled after
# each denial up to the 100 ms safety retry, so over its 1 s timeout it
# asks at most 1 + 4 + 1000 / 100 = 15 times (it asked every millisecond
# before: hundreds of times).  The count is the fake's, the wait the
# zone's timeout; a slow machine asks less, never more.  Found by the
# fourteenth session's hostile review; fails before.
# nginx on TEST_NGINX_PORT + 6, one worker.

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

my $acquires = 0;

Asyncx::FakeRedis->start($rport, sub {
    my (@args) = @_;
    my $cmd = uc $args[0];
    if ($cmd eq 'SCRIPT') {
        return '$40' . "\r\n" . sha1_hex($args[2]) . "\r\n";
    }
    if ($cmd eq 'SUBSCRIBE') {
        return "*3\r\n\$9\r\nsubscribe\r\n\$" . length($args[1])
               . "\r\n$args[1]\r\n:1\r\n";
    }
    if ($cmd eq 'EVALSHA' && ($args[5] // '') eq 'acquire') {
        # denied, retry in 0 ms, no slot taken, no token
        $acquires++;
        if (open my $st, '>', "$state/acquires.tmp") {
            print $st $acquires;
            close $st;
            rename "$state/acquires.tmp", "$state/acquires";
        }
        return "*4\r\n:0\r\n:0\r\n:0\r\n:0\r\n";
    }
    return $cmd eq 'EVALSHA' ? "*2\r\n:1\r\n:0\r\n" : "+OK\r\n";
});

sub acquires {
    open my $fh, '<', "$state/acquires" or return 0;
    return <$fh> // 0;
}

my $ngx = Asyncx::OwnNginx->new(offset => 6, name => 'limit-retry',
    workers => 1, http => <<"HTTP");
    asyncx_limit_zone zone=cz:1m rate=1000r/s concurrency=1 queue=10
                      timeout=1s cluster=redis://127.0.0.1:$rport
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

my $z = ($ngx->json('/asyncx/status') // {})->{limit_zones}{cz} // {};
is($z->{cluster}{mode}, 'redis', 'the zone is in Redis')
    or diag(explain($z->{cluster}));

my $before = acquires();
my ($code) = $ngx->get('/h', 20);
is($code, 503, 'the request denied throughout is refused at its timeout');
ok($ngx->wait_log(qr/waited longer than the timeout/),
   '... logged as waited longer than the timeout');

my $asked = acquires() - $before;
cmp_ok($asked, '>=', 2, "the waiter asked again ($asked acquires)");
cmp_ok($asked, '<=', 15,
       'never sooner than 10 ms, doubled to 100 ms: at most 15 acquires '
       . 'in its 1 s');

$ngx->stop;

done_testing();
