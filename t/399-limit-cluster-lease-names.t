# The names of a cluster zone's leases (the members of its slots' sorted
# set in Redis): hostname:pid:<random>:sequence, the random part (16 hex
# digits) made at each worker's start.  hostname:pid alone is the same
# for two nginx in two containers of one hostname that run their workers
# with the same pid in their PID namespaces: both wrote one member, so
# one server's release freed the other's slot and the cap counted one
# lease for two.  Found by the fourteenth session's hostile review.
#   1. two nginx (one worker each) holding a slot each: two members, of
#      that form, whose random parts differ (fails before: no random
#      part);
#   2. as root, with unshare(1): the same two nginx each in a PID
#      namespace of its own, so both workers have pid 2: still two
#      members (fails before: one member for both).
# Slots are held by the test (a mock answer delayed 60 s, the connection
# kept open) and read from Redis itself.  A private redis-server on
# TEST_NGINX_PORT + 7, nginx on TEST_NGINX_PORT + 4 and + 5.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Time::HiRes qw(time sleep);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX ();
use Sys::Hostname ();
use Asyncx::OwnNginx qw(until_true);
use Asyncx::Redis;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');
Asyncx::OwnNginx::skip_all_unless(Asyncx::Redis::have_server(),
                                  'redis-server is not installed');

$SIG{PIPE} = 'IGNORE';

my $redis = Asyncx::Redis->new;
ok($redis->pid, 'a private redis-server answers on port ' . $redis->port)
    or BAIL_OUT('no redis-server');

my $host = lc Sys::Hostname::hostname();
my $slots = 't399:{cz:}:s';

sub http {
    my ($port) = @_;
    return <<"HTTP";
    asyncx_limit_zone zone=cz:1m rate=1000r/s burst=1000 concurrency=5
                      queue=0 timeout=10s cluster=${\ $redis->url }
                      cluster_prefix=t399 cluster_timeout=10s;

    server {
        listen 127.0.0.1:$port;

        location = /h {
            asyncx_limit cz;
            asyncx_mock_service name=h delay=0ms max_delay=60s echo=off;
        }
    }
HTTP
}

sub members { return grep { length } $redis->cli('ZRANGE', $slots, 0, -1) }

sub hold {
    my ($port) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5) or die "connect: $!";
    print $s "GET /h?delay=60s HTTP/1.0\r\nHost: localhost\r\n\r\n";
    return $s;
}

my $base = $ENV{TEST_NGINX_PORT} || 1984;

# --- 1. two nginx, one namespace ------------------------------------

{
    my (@ngx, @held);
    for my $offset (4, 5) {
        my $n = Asyncx::OwnNginx->new(offset => $offset, name => 'lease',
                                      workers => 1,
                                      http => http($base + $offset));
        push @ngx, $n;
        push @held, hold($base + $offset);
        my $want = scalar @held;
        until_true("$want leases", 20, sub { members() >= $want });
    }

    my @m = sort(members());
    is(scalar @m, 2, 'two slots held by two nginx: two leases')
        or diag explain \@m;
    my @parts = map { [ /\A(.+):(\d+):([0-9a-f]{16}):(\d+)\z/ ] } @m;
    for my $i (0 .. $#m) {
        ok(@{ $parts[$i] } == 4 && lc $parts[$i][0] eq $host,
           "lease \"$m[$i]\" is hostname:pid:<16 hex digits>:sequence");
    }
    ok(defined $parts[0][2] && defined $parts[1][2]
       && $parts[0][2] ne $parts[1][2],
       'the two workers\' random parts differ');

    # each worker says its prefix once, at its start (info)
    for my $n (@ngx) {
        my ($line) = grep { /this process's leases are named/ } $n->error_log;
        like($line // '', qr/leases are named "\Q$host\E:\d+:[0-9a-f]{16}:<n>"/i,
             'the worker logs its lease names at its start');
    }

    close $_ for @held;
    ok(until_true('leases released', 20, sub { members() == 0 }),
       'both leases released');
    $_->stop for @ngx;
}

# --- 2. two nginx, each in a PID namespace of its own ------------------

SKIP: {
    skip 'needs root and unshare(1) for PID namespaces', 4
        unless $> == 0 && -x '/usr/bin/unshare'
               && system('/usr/bin/unshare --pid --fork true 2>/dev/null')
                  == 0;

    my (@kids, @held, @dirs);
    my @so = Asyncx::OwnNginx::modules();
    my $bin = $ENV{TEST_NGINX_BINARY} || 'nginx';

    for my $offset (4, 5) {
        my $port = $base + $offset;
        my $dir = tempdir('asyncx-lease-ns-XXXXXX', TMPDIR => 1,
                          CLEANUP => !$ENV{TEST_NGINX_NO_CLEAN});
        mkdir "$dir/$_" for qw(logs temp);
        push @dirs, $dir;
        open my $fh, '>', "$dir/nginx.conf" or die;
        print $fh join('', map { "load_module $_;\n" } @so), <<"CONF";
daemon off;
master_process on;
worker_processes 1;
user root;
error_log $dir/logs/error.log info;
pid $dir/logs/nginx.pid;
events { worker_connections 64; }
http {
    client_body_temp_path $dir/temp;
    access_log off;
${\ http($port) }
}
CONF
        close $fh;

        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            # the master is pid 1 of its namespace, its worker pid 2;
            # unshare's end (SIGTERM) kills it, and the namespace with it
            { exec '/usr/bin/unshare', '--pid', '--fork', '--kill-child',
                   $bin, '-p', "$dir/", '-c', "$dir/nginx.conf" };
            POSIX::_exit(127);
        }
        push @kids, $pid;

        ok(until_true("nginx in a namespace on $port", 30, sub {
               IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port") }),
           "nginx in a PID namespace of its own answers on $port");
        push @held, hold($port);
        my $want = scalar @held;
        until_true("$want leases", 20, sub { members() >= $want });
    }

    my @m = sort(members());
    is(scalar @m, 2, 'two workers of pid 2 in two namespaces: still two '
                     . 'leases') or diag explain \@m;
    is(scalar(grep { /\A[^:]+:2:/ } @m), scalar @m,
       '... both of pid 2 (the case that collided)') or diag explain \@m;

    close $_ for @held;

    # unshare blocks SIGTERM: its child, the master, is told to quit, and
    # unshare exits with it
    for my $kid (@kids) {
        open my $fh, '<', "/proc/$kid/task/$kid/children" or next;
        my @masters = split ' ', (<$fh> // '');
        kill 'QUIT', @masters if @masters;
    }
    for my $kid (@kids) {
        my $gone = until_true("unshare $kid exits", 30,
                              sub { waitpid($kid, POSIX::WNOHANG()) == $kid });
        kill 'KILL', $kid unless $gone;
    }
}

done_testing();
