package Asyncx::LimitCluster;

# What the cluster limiter's suites (issue 17: t/394 on one nginx, t/395
# across a fleet) share: the http{} block of their zones, and the zones'
# keys and leases as Redis holds them.
#
#   Asyncx::LimitCluster::skip_all_unless_runnable();  # the plan
#   my $lc = Asyncx::LimitCluster->new(redis => $redis, prefix => 't394',
#                                      db => { orphan => 1 });
#   my $http = $lc->http_conf(         # for Asyncx::OwnNginx's "http"
#       zones      => \%zone,          # name => its asyncx_limit_zone params
#       more       => sub { ... },     # more cluster_* params, per name
#       log_format => q{lim '$status $uri'},  # the zones' access logs
#       listen     => 'reuseport');           # more listen parameters
#   $lc->bucket_key('keyed', 'alice');  # "t394:{keyed:alice}:b"
#   $lc->slot_key('slot');              # "t394:{slot:}:s"
#   $lc->zcard('slot');                 # how many leases (-1: no answer)
#   $lc->leases('slot');                # [member, expiry in ms] each
#   Asyncx::LimitCluster::cluster($ngx, 'slot');   # its status object
#
# The locations of each zone <z>: /z/<z>/hold (t/hold: held by the test,
# see Asyncx::Hold->request), /z/<z>/call (the mock, answering at once or
# after ?delay=), both limited by the zone and logged in logs/<z>.log,
# and /zs/<z> (its asyncx_limit_zone_status).

use strict;
use warnings;

use Asyncx::OwnNginx ();
use Asyncx::Redis ();

# `plan skip_all` (a failure under ASYNCX_REQUIRE_ALL=1) unless the
# suites can run: t/hold's helper module loaded and a redis-server
sub skip_all_unless_runnable {
    Asyncx::OwnNginx::skip_all_unless(
        scalar(grep { /test_hold/ } Asyncx::OwnNginx::modules()),
        'TEST_NGINX_LOAD_MODULES must name the module and t/hold\'s helper');
    Asyncx::OwnNginx::skip_all_unless(Asyncx::Redis::have_server(),
                                      'redis-server is not installed');
}

# redis: an Asyncx::Redis; prefix: the zones' cluster_prefix (default
# the module's, "asyncx"); db: zone => its database where it is not the
# default
sub new {
    my ($class, %opt) = @_;

    return bless { redis        => $opt{redis},
                   prefix       => $opt{prefix} // 'asyncx',
                   prefix_given => defined $opt{prefix},
                   db           => $opt{db} // {} }, $class;
}

# the http{} block: the zones, each with its cluster= (this Redis, the
# zone's database), cluster_prefix= (if new() was given one) and what
# $o{more}->($name) adds; the log format; one server on $PORT with
# asyncx_status, the zones' locations and the caller's $o{extra}
sub http_conf {
    my ($self, %o) = @_;

    my $zones = $o{zones};
    my ($log) = $o{log_format} =~ /^(\S+)/;
    my $listen = join ' ', '127.0.0.1:$PORT', $o{listen} // ();

    my $http = '';

    for my $z (sort keys %$zones) {
        my @cluster = ('cluster=' . $self->{redis}->url($self->{db}{$z}));
        push @cluster, "cluster_prefix=$self->{prefix}"
            if $self->{prefix_given};
        push @cluster, grep { $_ ne '' } $o{more}->($z) if $o{more};
        $http .= "    asyncx_limit_zone zone=$z:1m $zones->{$z}\n"
                 . "        @cluster;\n";
    }

    $http .= <<"HTTP";
    log_format $o{log_format};

    server {
        listen $listen;

        location = /asyncx/status { asyncx_status; }
HTTP

    # locations of the caller's own, in the same server
    $http .= $o{extra} if defined $o{extra};

    for my $z (sort keys %$zones) {
        $http .= <<"LOC";
        location /z/$z/ {
            access_log \$DIR/logs/$z.log $log;
            asyncx_limit $z;
            location /z/$z/hold { asyncx_test_hold hold; }
            location /z/$z/call {
                asyncx_mock_service name=$z delay=0ms max_delay=60s echo=off;
            }
        }
        location = /zs/$z { asyncx_limit_zone_status $z; }
LOC
    }

    return $http . "    }\n";
}

# the zone's "cluster" object in the asyncx_status of $ngx (one of its
# workers answers); undef if there is none
sub cluster {
    my ($ngx, $zone) = @_;

    my $st = $ngx->json('/asyncx/status');
    my $c = ref $st eq 'HASH' ? $st->{limit_zones}{$zone}{cluster} : undef;

    return ref $c eq 'HASH' ? $c : undef;
}

# the keys of a zone's key (the contract: <prefix>:{<zone>:<key>}:s for
# the leases, :b for the bucket; a keyless zone's key is empty)
sub slot_key {
    my ($self, $zone, $key) = @_;
    return "$self->{prefix}:{$zone:" . ($key // '') . '}:s';
}

sub bucket_key {
    my ($self, $zone, $key) = @_;
    return "$self->{prefix}:{$zone:" . ($key // '') . '}:b';
}

# redis-cli's output for a command in the zone's database
sub cli {
    my ($self, $zone, @args) = @_;
    my $db = $self->{db}{$zone};
    return $self->{redis}->cli(defined $db ? ('-n', $db) : (), @args);
}

# how many leases the zone's key has in Redis (-1 if Redis gave no number)
sub zcard {
    my ($self, $zone, $key) = @_;
    my $n = $self->cli($zone, 'ZCARD', $self->slot_key($zone, $key));
    return $n =~ /^\d+$/ ? $n : -1;
}

# [member, expiry in Redis's ms] of each of the zone's leases
sub leases {
    my ($self, $zone, $key) = @_;
    my @r = $self->cli($zone, 'ZRANGE', $self->slot_key($zone, $key),
                       '0', '-1', 'WITHSCORES');
    my @l;
    push @l, [shift @r, shift @r] while @r >= 2;
    return @l;
}

1;
