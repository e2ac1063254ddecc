# A zone full of idle keys makes room for every new key (attack finding
# A10): distinct keys one after another, never two at once, through
# zones of 32k and 64k that hold about a hundred keys.  Before, once the
# zone had filled up, evicting idle keys freed memory of the key's size
# class while the request's record needed another, and one new key in
# eight got 503 "zone is full" with an [alert] at rest.  Nothing here
# depends on time: one request at a time on one keep-alive connection,
# each answered before the next is sent.  Runs its own nginx on
# TEST_NGINX_PORT + 5.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $ngx = Asyncx::OwnNginx->new(offset => 5, name => 'limit-churn',
                                http => <<'HTTP');
    asyncx_limit_zone zone=mixed:32k rate=100000r/s burst=100000
                      concurrency=100 queue=10 timeout=2s key=$arg_k;
    asyncx_limit_zone zone=addr:64k rate=100000r/s burst=100000
                      concurrency=1 queue=0 key=$arg_k;

    server {
        listen 127.0.0.1:$PORT;
        default_type application/json;
        keepalive_requests 100000;

        location = /asyncx/status { asyncx_status; }
        location /mixed/ {
            asyncx_limit mixed;
            asyncx_mock_service name=m echo=off;
        }
        location /addr/ {
            asyncx_limit addr;
            asyncx_mock_service name=a echo=off;
        }
    }
HTTP

my $conn = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ngx->port,
                                 Timeout => 10)
    or die "connect: $!";

# one request on the keep-alive connection: its status, once answered
sub status_of {
    my ($path) = @_;

    print $conn "GET $path HTTP/1.1\r\nHost: x\r\n\r\n";

    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        sysread($conn, my $buf, 1) or return 0;
        $head .= $buf;
    }

    my ($code) = $head =~ m{^HTTP/1\.1 (\d+)};
    my ($len) = $head =~ /\r\nContent-Length: (\d+)\r\n/i;

    die "no Content-Length in $head" unless defined $len;

    while ($len > 0) {
        my $n = sysread($conn, my $buf, $len) or return 0;
        $len -= $n;
    }

    return $code;
}

sub churn {
    my ($zone, $n, $key) = @_;
    my (%codes, $first);

    for my $i (1 .. $n) {
        my $code = status_of("/$zone/x?k=" . $key->($i));
        $codes{$code}++;
        $first //= $i if $code != 200;
    }

    my $z = $ngx->json('/asyncx/status')->{limit_zones}{$zone};

    is(join(', ', map { "$_ x $codes{$_}" } sort keys %codes), "200 x $n",
       "$zone: $n new keys one at a time are all admitted"
       . (defined $first ? " (first refused: #$first)" : ''));
    is($z->{zone_full}, 0, "$zone: zone_full stays 0");
    is("$z->{concurrent}{current}/$z->{waiting}", '0/0',
       "$zone: nothing running or waiting at the end");
    cmp_ok($z->{keys}, '<', $n, "$zone: idle keys were evicted "
                                . "($z->{keys} kept)");
}

# keys of 1..300 bytes: nodes of every size and long keys stored hashed
churn('mixed', 2000, sub { "$_[0]-" . ('k' x ($_[0] * 37 % 300)) });

# 16 bytes each, the size of an IPv6 $binary_remote_addr
churn('addr', 3000, sub { sprintf('%016d', $_[0]) });

my @bad = ($ngx->bad_lines, grep { /\[error\]/ } $ngx->error_log);

is(scalar @bad, 0, 'no [error], [alert], [crit] or [emerg] line')
    or diag(@bad[0 .. 2]);

close $conn;
$ngx->stop;

done_testing();
