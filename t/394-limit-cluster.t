# The limiter's cluster mode on one nginx (issue 17): zones kept in a
# private redis-server (TEST_NGINX_PORT + 7, Asyncx::Redis), nginx on
# TEST_NGINX_PORT + 4 with one worker (so that the worker killed is the
# one holding the slot, and error.log lines are counted per server).
#   - nginx -t refuses every bad cluster value, naming it;
#   - admission and refusal are decided in Redis (its keys are read);
#   - the status's "cluster" object;
#   - Redis stopped: each cluster_fallback, the mode change logged once,
#     Redis started again: limiting in Redis, logged once, same nginx;
#   - a request held longer than the lease keeps its slot (renewals);
#   - a client leaving while it waits or while it holds gives back its
#     place and its lease; kill -9 of the worker holding a slot: the
#     slot comes back after cluster_lease, by Redis's clock;
#   - a worker in fallback killed (kill -9) or gone in a reload: the
#     zone's mode (status, Prometheus) is redis again once Redis answers
#     the worker that replaces it, which logs it.
# Slots are held by the test (t/hold); times are Redis's own (TIME,
# lease scores) or the module's numbers, never the client's clock.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Time::HiRes qw(time sleep);
use File::Temp qw(tempdir);
use JSON::PP ();
use Asyncx::OwnNginx qw(until_true);
use Asyncx::Hold;
use Asyncx::Redis;
use Asyncx::LimitCluster;

Asyncx::LimitCluster::skip_all_unless_runnable();

$SIG{PIPE} = 'IGNORE';

my $nginx_bin = $ENV{TEST_NGINX_BINARY} || 'nginx';

# --- nginx -t: every bad value named --------------------------------

my @so = Asyncx::OwnNginx::modules();

sub conf_test {
    my ($params) = @_;
    my $dir = tempdir('asyncx-394-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    mkdir "$dir/logs";
    open my $out, '>', "$dir/nginx.conf" or die;
    print $out join('', map { "load_module $_;\n" } @so), <<"CONF";
error_log $dir/logs/error.log;
pid $dir/logs/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    asyncx_limit_zone zone=z:64k rate=5r/s $params;
}
CONF
    close $out;
    my $res = `$nginx_bin -t -p $dir -c $dir/nginx.conf 2>&1`;
    return ($? >> 8, $res);
}

my $redis_port = ($ENV{TEST_NGINX_PORT} || 1984) + 7;

for my $case (
    ['cluster=http://127.0.0.1:1', qr/invalid value "cluster=http:\/\/127\.0\.0\.1:1".*expected redis:\/\/host:port\[\/db\]/],
    ['cluster=redis://', qr/invalid value "cluster=redis:\/\/"/],
    ['cluster=redis://127.0.0.1:1/16', qr/invalid value "cluster=redis:\/\/127\.0\.0\.1:1\/16".*database 0\.\.15/],
    ['cluster=redis://127.0.0.1:1/x', qr/invalid value "cluster=redis:\/\/127\.0\.0\.1:1\/x"/],
    ['cluster=redis://127.0.0.1:99999', qr/invalid value "cluster=redis:\/\/127\.0\.0\.1:99999"/],
    ['cluster=redis://127.0.0.1:1 cluster_timeout=0', qr/invalid value "cluster_timeout=0".*1ms\.\.60s/],
    ['cluster=redis://127.0.0.1:1 cluster_timeout=61s', qr/invalid value "cluster_timeout=61s"/],
    ['cluster=redis://127.0.0.1:1 cluster_lease=0', qr/invalid value "cluster_lease=0" in "asyncx_limit_zone" directive, expected 100ms\.\.1h/],
    ['cluster=redis://127.0.0.1:1 cluster_lease=99ms', qr/invalid value "cluster_lease=99ms"/],
    ['cluster=redis://127.0.0.1:1 cluster_lease=2h', qr/invalid value "cluster_lease=2h"/],
    ['cluster=redis://127.0.0.1:1 cluster_servers=0', qr/invalid value "cluster_servers=0".*1\.\.1000/],
    ['cluster=redis://127.0.0.1:1 cluster_servers=1001', qr/invalid value "cluster_servers=1001"/],
    ['cluster=redis://127.0.0.1:1 cluster_fallback=maybe', qr/invalid value "cluster_fallback=maybe".*refuse, allow or local/],
    ['cluster=redis://127.0.0.1:1 cluster_prefix=', qr/invalid value "cluster_prefix="/],
    ['cluster=redis://127.0.0.1:1 "cluster_prefix=a{b}"', qr/invalid value "cluster_prefix=a\{b\}"/],
    ['cluster=redis://127.0.0.1:1 cluster_colour=red', qr/invalid parameter "cluster_colour=red"/],
    ['cluster=redis://127.0.0.1:1 cluster=redis://127.0.0.1:2', qr/duplicate parameter "cluster=redis:\/\/127\.0\.0\.1:2"/],
    ['cluster_lease=1s', qr/"cluster_\*" parameters need "cluster=" in "asyncx_limit_zone" directive/],
    ['cluster_password=x', qr/"cluster_\*" parameters need "cluster="/],
) {
    my ($params, $re) = @$case;
    my ($rc, $out) = conf_test($params);
    isnt($rc, 0, "nginx -t fails: $params");
    like($out, $re, "... naming the value: $params");
}

{
    my ($rc, $out) = conf_test("cluster=redis://127.0.0.1:$redis_port/3 "
        . 'cluster_password=s3cret cluster_timeout=1ms cluster_lease=1h '
        . 'cluster_servers=1000 cluster_fallback=local cluster_prefix=p:q');
    is($rc, 0, 'nginx -t accepts every parameter at its bounds') or diag $out;
    unlike($out, qr/s3cret/, '... and never prints the password');
}

# --- one nginx, one Redis ------------------------------------------

my $redis = Asyncx::Redis->new;
ok($redis->pid, 'a private redis-server answers on port ' . $redis->port)
    or BAIL_OUT('no redis-server');

my %zone = (
    # two admitted at once, then refused until a token (1 a minute)
    tok     => 'rate=1r/m burst=2 queue=0',
    # one slot; waiting allowed; a short lease, renewed every second
    # (a 600 ms lease expired once under ASan on a machine kept busy by
    # stress-ng: the worker got no CPU for 400 ms; 2 s of slack here)
    slot    => 'rate=1000r/s burst=1000 concurrency=1 queue=5 timeout=60s '
               . 'cluster_lease=3s',
    # a key: the keys in Redis are per key, binary keys in hex
    keyed   => 'rate=1r/m burst=1 queue=0 key=$arg_k',
    bin     => 'rate=1r/m burst=1 queue=0 key=$binary_remote_addr',
    # the fallbacks
    fbref   => 'rate=1000r/s burst=1000 cluster_timeout=5s',
    fballow => 'rate=1000r/s burst=1000 cluster_timeout=5s '
               . 'cluster_fallback=allow',
    fblocal => 'rate=2r/m burst=4 queue=0 cluster_timeout=5s '
               . 'cluster_servers=2 cluster_fallback=local',
    # an answer that comes after its request left (Redis paused)
    # (a lease of 1h: gone means released, not expired)
    orphan  => 'rate=1000r/s burst=1000 concurrency=1 queue=5 '
               . 'cluster_timeout=60s cluster_lease=1h',
    # Redis answering errors (a key of the wrong type)
    bad     => 'rate=1000r/s burst=1000 cluster_timeout=5s',
    # a reload: the old worker's lease is released, never left to expire
    reload  => 'rate=1000r/s burst=1000 concurrency=1 queue=0 '
               . 'cluster_lease=1h',
    # the slot of a worker killed: back after the lease
    kill    => 'rate=1000r/s burst=1000 concurrency=1 queue=0 '
               . 'cluster_lease=1500ms',
    # the status (the hostile review's zone): the fleet's limits, this
    # server's counters; queue=0, so that a fourth is refused (rejected)
    stat    => 'rate=5r/s burst=5 concurrency=3 queue=0 cluster_servers=3',
    # the waiters of a worker killed: not counted against queue= after
    killq   => 'rate=1000r/s burst=1000 concurrency=1 queue=2 '
               . 'cluster_lease=1500ms cluster_timeout=60s',
    # a pipeline's calls into the zone of their order (/sub/*): one slot
    # and no queue; one token; a key
    subslot => 'rate=1000r/s burst=1000 concurrency=1 queue=0',
    subtok  => 'rate=1r/m burst=1 queue=0',
    subkey  => 'rate=1r/m burst=1 queue=0 key=$arg_k',
);

# an order limited by a zone, its call going to a location of the same
# zone (the same key, or with subkey the key the call's URI names)
my $sub_locations = join '', map { <<"LOC" } qw(subslot subtok subkey);
        location = /sub/$_ {
            asyncx_limit $_;
            asyncx_pipeline;
            asyncx_pipeline_answer standard;
            asyncx_stage s1 a=/z/$_/call?k=\$arg_c;
        }
LOC

# "orphan" has its own connection (db 1): zones of one connection share
# the smallest cluster_timeout
my $lc = Asyncx::LimitCluster->new(redis => $redis, prefix => 't394',
                                   db => { orphan => 1 });
my $http = $lc->http_conf(
    zones      => \%zone,
    # cluster_timeout: 5 s unless a zone says otherwise, so that a loaded
    # machine's scheduling never looks like a slow Redis
    more       => sub { $zone{$_[0]} =~ /cluster_timeout/
                        ? '' : 'cluster_timeout=5s' },
    log_format => q{lim '$status $asyncx_limit_status $asyncx_limit_wait }
                  . q{$uri'},
    extra      => $sub_locations);

my $ngx = Asyncx::OwnNginx->new(offset => 4, name => 'limit-cluster',
                                workers => 1,
                                main => 'thread_pool hold threads=8;',
                                http => $http);
ok($ngx->pid, 'nginx is up') or BAIL_OUT('nginx did not start');
my $master = $ngx->pid;

sub code { ($ngx->get_full(@_))[0] }
sub cluster { Asyncx::LimitCluster::cluster($ngx, @_) }

# a request of zone $z held in t/hold's thread once admitted
sub hold {
    my ($z, $name) = @_;
    return Asyncx::Hold->request($ngx, "/z/$z/hold", $name);
}

sub log_count {
    my ($re) = @_;
    return scalar grep { $_ =~ $re } $ngx->error_log;
}

# --- admission and refusal, decided in Redis -------------------------

{
    my ($c1, $h1) = $ngx->get_full('/z/tok/call');
    my $c2 = code('/z/tok/call');
    my ($c3, $h3, $b3) = $ngx->get_full('/z/tok/call');
    is("$c1 $c2 $c3", '200 200 429', 'tok: burst=2 admitted, the third '
       . 'refused (queue=0)');
    like($h3, qr/\r\nRetry-After: \d+/i, 'tok: the refusal has Retry-After');
    my $j = eval { JSON::PP::decode_json($b3) };
    ok($j, 'tok: the refusal is JSON') or diag $b3;

    # the bucket is Redis's: fewer than 1 token left (t in millionths)
    my %b = $redis->cli('HGETALL', $lc->bucket_key('tok'));
    ok(defined $b{t} && $b{t} < 1000000, "tok: Redis's bucket holds the "
       . "taken tokens (t=" . ($b{t} // 'none') . ')');
    my $ttl = $redis->cli('PTTL', $lc->bucket_key('tok'));
    cmp_ok($ttl, '>', 0, 'tok: the bucket key expires by itself');

    # refill it in Redis: the next request is admitted, so the decision
    # is Redis's, not nginx's memory
    $redis->cli('HSET', $lc->bucket_key('tok'), 't', '2000000');
    is(code('/z/tok/call'), 200, 'tok: tokens put into Redis admit');
    is(code('/z/tok/call'), 200, 'tok: ... both');
    is(code('/z/tok/call'), 429, 'tok: ... then refused again');
    $redis->cli('DEL', $lc->bucket_key('tok'));
    is(code('/z/tok/call'), 200, 'tok: the bucket deleted in Redis starts '
       . 'full');

    my $c = cluster('tok');
    ok($c, 'status: the zone has a "cluster" object');
    is($c->{mode}, 'redis', 'status: mode redis');
    is($c->{redis}, "127.0.0.1:" . $redis->port . "/0", 'status: the Redis '
       . 'server');
    is($c->{servers}, 1, 'status: servers 1 (default)');
    is($c->{lease_ms}, 10000, 'status: lease_ms 10000 (default)');
    is($c->{local}{admitted}, 5, 'status: 5 admitted through Redis');
    is($c->{local}{refused}, 2, 'status: 2 refused');
    is($c->{redis_errors}, 0, 'status: no Redis error');
    cmp_ok($c->{commands}, '>=', 6, 'status: the commands counted');
    is($c->{global}{slots_in_use}, 0, 'status: global slots 0');
    ok(defined $c->{global}{tokens} && $c->{global}{tokens} < 2,
       'status: global tokens as Redis said (' . ($c->{global}{tokens} // 'none') . ')');
    ok(defined $c->{global}{updated_ms_ago}, 'status: updated_ms_ago');
    is_deeply([sort keys %{ $c->{wake_delay} }], [qw(count max_us mean_us)],
              'status: wake_delay');

    # keys: printable as they are, binary in hex, long ones hashed
    is(code('/z/keyed/call?k=alice'), 200, 'keyed: alice admitted');
    is(code('/z/keyed/call?k=alice'), 429, 'keyed: alice refused');
    is(code('/z/keyed/call?k=bob'), 200, 'keyed: bob has his own bucket');
    is($redis->cli('EXISTS', $lc->bucket_key('keyed', 'alice')), 1,
       'keyed: Redis has alice\'s bucket');
    is(code('/z/bin/call'), 200, 'bin: a binary key ($binary_remote_addr) '
       . 'admitted');
    is($redis->cli('EXISTS', $lc->bucket_key('bin', '%7f000001')), 1,
       'bin: ... kept in hex, after a "%"');
    my $long = 'x' x 100;
    is(code("/z/keyed/call?k=$long"), 200, 'keyed: a long key admitted');
    is(code("/z/keyed/call?k=$long"), 429, 'keyed: ... then refused');
    my @h = grep { /^t394:\{keyed:#[0-9a-f]{64}\}:b$/ }
            $redis->cli('KEYS', 't394:{keyed:*');
    is(scalar @h, 1, 'keyed: ... kept as its SHA-256');
}

# --- a slot: held, renewed, waited for, released ---------------------

{
    my $h = hold('slot', 's1');
    ok($h->wait_taken(30), 'slot: a request holds the slot');
    my @l = $lc->leases('slot');
    is(scalar @l, 1, 'slot: Redis holds its lease');
    my $w = ($ngx->workers)[0];
    like($l[0][0] // '', qr/:$w:[0-9a-f]{16}:\d+$/, 'slot: the lease names the worker');

    # held for 2 leases (3 s each, by Redis's clock): renewals keep it
    my $t0 = $redis->time_ms;
    until_true('2 leases of Redis time', 60,
               sub { $redis->time_ms - $t0 > 6000 });
    @l = $lc->leases('slot');
    is(scalar @l, 1, 'slot: held past 2 leases, the lease is still there');
    cmp_ok($l[0][1] // 0, '>', $redis->time_ms, 'slot: ... and not expired '
           . '(renewed)');
    is(cluster('slot')->{local}{held}, 1, 'status: local held 1');

    # Redis loses the lease (a restart without persistence): the next
    # renewal takes it again, a slot being free ...
    is(log_count(qr/lease was gone/), 0, 'lost lease: nothing logged yet');
    $redis->cli('DEL', $lc->slot_key('slot'));
    ok(until_true('the lease taken again', 30, sub { $lc->zcard('slot') == 1 }),
       'lost lease: the renewal takes the slot again');
    like((($lc->leases('slot'))[0] // [''])->[0], qr/:$w:[0-9a-f]{16}:\d+$/,
         '... under the holder\'s own name');
    ok(until_true('its log line', 30, sub {
        log_count(qr/\[warn\] .*zone "slot": a lease was gone from redis 127\.0\.0\.1:\d+ before its renewal, taken again/) == 1 }),
       '... and says so once, at warn');
    # ... and when another holder took the only slot meanwhile, the
    # request runs over the cap and says so; it is taken again once free
    # in one step: a renewal between a DEL and a ZADD would take the
    # free slot again (it did, under three suites and stress-ng at once)
    $redis->cli('EVAL', "redis.call('DEL', KEYS[1]) "
                . "return redis.call('ZADD', KEYS[1], ARGV[1], 'intruder')",
                1, $lc->slot_key('slot'), $redis->time_ms + 600000);
    ok(until_true('the over-cap line', 30, sub {
        log_count(qr/\[warn\] .*zone "slot": a lease was gone .* every slot is taken: the request runs over the cap/) >= 1 }),
       'lost lease, cap full: the request runs over the cap, logged');
    is($lc->zcard('slot'), 1, '... Redis holds the other holder only');
    $redis->cli('ZREM', $lc->slot_key('slot'), 'intruder');
    ok(until_true('taken again', 30, sub {
        my @x = $lc->leases('slot'); @x == 1 && $x[0][0] =~ /:$w:[0-9a-f]{16}:\d+$/ }),
       '... the slot freed, the renewal takes it again');

    # a second request waits; its client leaves: its place is freed
    my $w1 = $ngx->open_request('/z/slot/call');
    ok(until_true('a waiter', 30, sub {
        (cluster('slot')->{local}{waiting} // 0) == 1 }),
       'slot: a second request waits (local waiting 1)');
    is($ngx->json('/zs/slot')->{waiting}, 1, 'zone status: waiting 1');
    is($ngx->json('/zs/slot')->{concurrent}{current}, 1,
       'zone status: concurrent.current is this server\'s holder (1)');
    close $w1;
    ok(until_true('the waiter gone', 30, sub {
        (cluster('slot')->{local}{waiting} // 1) == 0 }),
       'slot: the client left while waiting: waiting 0');
    is($lc->zcard('slot'), 1, 'slot: ... Redis still holds the one lease');

    # a waiter admitted by the release (a wake-up, not its timeout)
    my $w2 = $ngx->spawn_request("GET /z/slot/call HTTP/1.0\r\nHost: x\r\n\r\n", 30);
    ok(until_true('a waiter', 30, sub {
        (cluster('slot')->{local}{waiting} // 0) == 1 }), 'slot: another '
       . 'waits');
    is($h->finish, 200, 'slot: the holder ends');
    my ($code) = $ngx->parse($ngx->collect($w2));
    is($code, 200, 'slot: the waiter is admitted after the release');
    is($lc->zcard('slot'), 0, 'slot: no lease left in Redis');

    # the client of a running request leaves: the lease goes at once
    my $s2 = $ngx->open_request('/z/slot/call?delay=60s');
    ok(until_true('held', 30, sub { $lc->zcard('slot') == 1 }),
       'slot: held again (a 60 s call)');
    close $s2;
    ok(until_true('the lease gone', 30, sub { $lc->zcard('slot') == 0 }),
       'slot: the holder\'s client left: the lease is released');
    ok(until_true('held 0', 30, sub { cluster('slot')->{local}{held} == 0 }),
       'slot: local held 0');
    is(code('/z/slot/call'), 200, 'slot: the slot is usable again');
    is(scalar(grep { /^\d+ DELAYED/ } do {
        open my $in, '<', $ngx->dir . '/logs/slot.log'; <$in> }), 1,
       'slot: the waiter logged DELAYED');
}

# --- a subrequest passes the zone its main request was admitted to ---
#
# Redis admitted the order for the key its call evaluates: the call asks
# Redis nothing, as in a zone without cluster= (it would wait for, or be
# refused by, the slot or the token its own order holds); another key is
# counted on its own.

{
    my $order = sub {
        my ($path) = @_;
        my ($c, $body) = $ngx->parse($ngx->request(
            "POST $path HTTP/1.0\r\nHost: localhost\r\n"
            . "Content-Length: 2\r\n\r\n{}", 15));
        my $j = eval { JSON::PP::decode_json($body) } // {};
        my $a = $j->{calls}{a} // {};
        return join ' ', $c, $a->{outcome} // 'none', $a->{status} // 'none';
    };
    my $admitted = sub { cluster($_[0])->{local}{admitted} // 'none' };

    is($order->('/sub/subslot'), '200 ok 200', 'subslot: the call passes '
       . 'the slot its order holds (concurrency=1 queue=0)');
    is($admitted->('subslot'), 1, 'subslot: Redis admitted the order only');
    is(cluster('subslot')->{local}{refused}, 0, 'subslot: nothing refused');

    is($order->('/sub/subtok'), '200 ok 200', 'subtok: the call takes no '
       . 'second token (burst=1)');
    is($admitted->('subtok'), 1, 'subtok: Redis admitted the order only');
    is(code('/z/subtok/call'), 429, 'subtok: the order took the only token');

    is($order->('/sub/subkey?k=a&c=a'), '200 ok 200', 'subkey: the call '
       . 'of the same key passes');
    is($admitted->('subkey'), 1, 'subkey: ... counted once');
    is($order->('/sub/subkey?k=b&c=x'), '200 ok 200', 'subkey: a call of '
       . 'another key is admitted on its own');
    is($admitted->('subkey'), 3, 'subkey: ... and counted');
    is($order->('/sub/subkey?k=d&c=x'), '502 status 429', 'subkey: x\'s '
       . 'token is gone: that call is refused');
}

# --- the status in Redis mode: the fleet's limits, this server's counts -
# The hostile review's reproduction: rate=5r/s burst=5 concurrency=3
# cluster_servers=3, three requests running at once.  The limits shown
# are the ones configured (the fleet's, enforced in Redis), not this
# server's share for cluster_fallback=local (1.666r/s, burst 2, 1 slot);
# the counters (admitted, current_rps, concurrent.current, the metrics)
# are this server's decisions, as in a zone without cluster=.

sub prom_value {
    my ($name, $zone) = @_;
    my (undef, $m) = $ngx->get('/asyncx/status?format=prometheus');
    return ($m // '') =~ /^\Q$name\E\{zone="\Q$zone\E"\} (\S+)$/m ? $1 : 'none';
}

{
    my $t0 = time;
    my @h = map { hold('stat', "st$_") } 1 .. 3;
    is(scalar(grep { $_->wait_taken(30) } @h), 3,
       'stat: three requests run at once (concurrency=3 of the fleet)');
    my $zs = $ngx->json('/zs/stat');
    my $z = $ngx->json('/asyncx/status')->{limit_zones}{stat} // {};
    my $took = time - $t0;

    is($z->{cluster}{mode}, 'redis', 'stat: mode redis');
    is_deeply($zs->{concurrent}, { current => 3, max => 3 },
              'stat: zone status: concurrent 3 of the configured 3');
    is($zs->{rate}{max_rps}, 5, 'stat: zone status: max_rps 5 (configured)');
    is($zs->{waiting}, 0, 'stat: zone status: waiting 0');
    # admissions of the last second: exact while the three are that recent
    # (a machine too slow for it still checks they are not over-counted)
    if ($took < 0.8) {
        is($zs->{rate}{current_rps}, 3, 'stat: zone status: current_rps 3');
        is($z->{rate}{current_rps}, 3, 'stat: status: current_rps 3');
    } else {
        cmp_ok($zs->{rate}{current_rps}, '<=', 3, "stat: current_rps <= 3 "
               . "(took ${took}s)");
        cmp_ok($z->{rate}{current_rps}, '<=', 3, 'stat: ... in the status');
    }
    is_deeply($z->{concurrent}, { current => 3, max => 3 },
              'stat: status: concurrent 3 of 3');
    is($z->{rate}{max_rps}, 5, 'stat: status: max_rps 5');
    is($z->{burst}, 5, 'stat: status: burst 5 (configured)');
    is($z->{queue}, 0, 'stat: status: queue 0');
    is(join(' ', map { "$_=" . ($z->{$_} // 'none') }
                 qw(admitted passed delayed rejected timed_out left)),
       'admitted=3 passed=3 delayed=0 rejected=0 timed_out=0 left=0',
       'stat: status: the three counted as admitted, passed');
    is($z->{cluster}{local}{admitted}, 3, 'stat: cluster.local.admitted 3');
    is($z->{cluster}{local}{held}, 3, 'stat: cluster.local.held 3');
    is($z->{cluster}{servers}, 3, 'stat: cluster.servers 3');
    is_deeply($z->{cluster}{share},
              { concurrency => 1, max_rps => 1.666, burst => 2 },
              'stat: cluster.share: what cluster_fallback=local would enforce');
    is(join(' ', map { prom_value("asyncx_limit_$_", 'stat') }
                 qw(admitted_total passed_total rejected_total in_flight)),
       '3 3 0 3', 'stat: metrics: admitted 3, passed 3, rejected 0, '
       . 'in flight 3');

    # a fourth: every slot of the fleet taken, queue=0: refused, counted
    is(code('/z/stat/call'), 429, 'stat: a fourth is refused (queue=0)');
    $z = $ngx->json('/asyncx/status')->{limit_zones}{stat} // {};
    is(join(' ', map { "$_=" . ($z->{$_} // 'none') }
                 qw(admitted rejected)), 'admitted=3 rejected=1',
       'stat: status: rejected 1');
    is($z->{cluster}{local}{refused}, 1, 'stat: cluster.local.refused 1');
    is(prom_value('asyncx_limit_rejected_total', 'stat'), 1,
       'stat: metrics: rejected 1');

    is($_->finish, 200, 'stat: a held request ends') for @h;
    ok(until_true('none in flight', 30, sub {
        ($ngx->json('/zs/stat')->{concurrent}{current} // -1) == 0 }),
       'stat: the three ended: concurrent.current 0');
    is(prom_value('asyncx_limit_in_flight', 'stat'), 0,
       'stat: metrics: in flight 0');
    is($ngx->json('/zs/stat')->{concurrent}{max}, 3, 'stat: max still 3');
}

# --- the answer to a request that left, errors, a flushed script -----

{
    my $before = cluster('orphan')->{commands};
    $redis->pause;
    my $s = $ngx->open_request('/z/orphan/call?delay=60s');
    ok(until_true('the acquire sent', 30, sub {
        cluster('orphan')->{commands} > $before }),
       'orphan: the acquire is in flight (Redis paused)');
    close $s;
    ok(until_true('the request gone', 30, sub {
        (cluster('orphan')->{local}{waiting} // 1) == 0
        && grep { /zone "orphan": request left the queue/ } $ngx->error_log }),
       'orphan: the client left while its acquire was in flight');
    $redis->resume;
    ok(until_true('the late grant released', 30, sub {
        cluster('orphan')->{commands} >= $before + 2
        && $lc->zcard('orphan') == 0 }),
       'orphan: the late grant is released at once (no lease in Redis)');
    is(cluster('orphan')->{local}{held}, 0, 'orphan: nothing held here');
    is(cluster('orphan')->{mode}, 'redis', 'orphan: still in Redis mode');
    is(code('/z/orphan/call'), 200, 'orphan: the slot is free');

    # a reply Redis gives as an error (WRONGTYPE): a failure, not a crash
    $redis->cli('SET', $lc->bucket_key('bad'), 'not a hash');
    my ($c, undef, $body) = $ngx->get_full('/z/bad/call');
    is($c, 503, 'bad: an error from Redis is a failure: fallback refuse');
    is(log_count(qr/\[error\] .*zone "bad": redis 127\.0\.0\.1:\d+ unreachable \(.*WRONGTYPE.*\), falling back to refuse/),
       1, 'bad: logged once, with Redis\'s error');
    is(code('/z/bad/call'), 503, 'bad: again 503');
    cmp_ok(cluster('bad')->{redis_errors}, '>=', 2, 'bad: redis_errors');
    $redis->cli('DEL', $lc->bucket_key('bad'));
    is(code('/z/bad/call'), 200, 'bad: the key fixed, admitted');
    is(log_count(qr/\[notice\] .*zone "bad": redis 127\.0\.0\.1:\d+ reachable again/),
       1, 'bad: the recovery logged once');
    is(log_count(qr/zone "bad": redis 127\.0\.0\.1:\d+ unreachable/), 1,
       'bad: one fallback line for two failures');

    # SCRIPT FLUSH: NOSCRIPT, loaded again, asked again
    $redis->cli('SCRIPT', 'FLUSH');
    is(code('/z/bad/call'), 200, 'noscript: admitted after SCRIPT FLUSH');
    is(cluster('bad')->{mode}, 'redis', 'noscript: no fallback');
}

# --- kill -9 of the worker holding a slot ----------------------------

{
    my $h = hold('kill', 'k1');
    ok($h->wait_taken(30), 'kill: a request holds the slot');
    my @l = $lc->leases('kill');
    is(scalar @l, 1, 'kill: one lease in Redis');
    my $expiry = $l[0][1] // 0;
    my $old = ($ngx->workers)[0];
    kill 'KILL', $old;
    $h->release;
    ok(until_true('a new worker', 30, sub { my $w = ($ngx->workers)[0];
        $w && $w != $old }), 'kill: the master starts a new worker');
    # the dead worker's lease is not renewed: back once it expires
    my $ok = until_true('the slot back', 30, sub {
        code('/z/kill/call') == 200 ? $redis->time_ms : undef });
    ok($ok, 'kill: the slot comes back');
    cmp_ok($ok // 0, '>=', $expiry, 'kill: ... once its lease expired, by '
           . 'Redis\'s clock');
    cmp_ok(($ok // 0) - $expiry, '<', 10000, 'kill: ... within the lease time');
    $h->answer;
}

# --- kill -9 of a worker with waiters: they do not fill the queue after -

{
    my $h = hold('killq', 'q1');
    ok($h->wait_taken(30), 'killq: a request holds the slot');
    my @w = map { $ngx->spawn_request("GET /z/killq/call HTTP/1.0\r\n"
                                      . "Host: localhost\r\n\r\n", 60) }
            1 .. 2;
    ok(until_true('two waiters', 30, sub {
        cluster('killq')->{local}{waiting} == 2 }),
       'killq: two requests wait (queue=2)');
    my $old = ($ngx->workers)[0];
    kill 'KILL', $old;
    $h->release;
    $ngx->collect($_) for @w;
    ok(until_true('a new worker', 30, sub { my $w = ($ngx->workers)[0];
        $w && $w != $old }), 'killq: the master starts a new worker');
    ok(until_true('the slot back', 30, sub {
        code('/z/killq/call') == 200 }),
       'killq: the slot comes back once the lease expired');
    my $z = $ngx->json('/asyncx/status')->{limit_zones}{killq} // {};
    is($z->{waiting}, 0, 'killq: the dead worker\'s waiters are not '
       . 'counted in the status');

    # a holder, then a request that must wait: not refused as "queue full"
    my $h2 = hold('killq', 'q2');
    ok($h2->wait_taken(30), 'killq: a new holder');
    my $c = $ngx->spawn_request("GET /z/killq/call HTTP/1.0\r\n"
                                . "Host: localhost\r\n\r\n", 60);
    ok(until_true('it waits', 30, sub {
        cluster('killq')->{local}{waiting} == 1 }),
       'killq: the next request waits, the queue is not full');
    $h2->release;
    my ($code) = $ngx->parse($ngx->collect($c));
    is($code, 200, 'killq: ... and gets the slot');
    $h2->answer;
}

# --- Redis stopped: the fallbacks; started again: recovery -----------

{
    is(code('/z/fbref/call'), 200, 'fallback: fbref 200 with Redis');
    is(code('/z/fballow/call'), 200, 'fallback: fballow 200 with Redis');
    is(code('/z/fblocal/call'), 200, 'fallback: fblocal 200 with Redis');
    # in Redis mode the limits configured: 2r/m burst=4 for the fleet
    my $zl = $ngx->json('/asyncx/status')->{limit_zones}{fblocal} // {};
    is(join(' ', map { $_ // 'none' } $zl->{rate}{max_rps}, $zl->{burst},
                 $zl->{admitted}),
       '0.033 4 1', 'fblocal: in Redis, status: max_rps 0.033, burst 4 '
       . '(the fleet\'s), admitted 1');

    $redis->stop;

    my ($c, $head, $body) = $ngx->get_full('/z/fbref/call');
    is($c, 503, 'refuse: 503 without Redis');
    like($head, qr/\r\nRetry-After: 1\r?(\n|$)/i, 'refuse: Retry-After: 1');
    my $j = eval { JSON::PP::decode_json($body) };
    like($j && $j->{error} // '', qr/redis/i, 'refuse: the JSON error says '
         . 'redis') or diag $body;
    is(code('/z/fbref/call'), 503, 'refuse: again 503');
    is(cluster('fbref')->{mode}, 'refuse', 'refuse: status mode refuse');
    cmp_ok(cluster('fbref')->{local}{fallback_refused}, '>=', 2,
           'refuse: counted');

    is(join(' ', map { code('/z/fballow/call') } 1 .. 3), '200 200 200',
       'allow: everything through');
    is(cluster('fballow')->{mode}, 'allow', 'allow: status mode allow');
    is(cluster('fballow')->{local}{fallback_admitted}, 3, 'allow: counted');
    my $za = $ngx->json('/asyncx/status')->{limit_zones}{fballow} // {};
    is(join(' ', map { $_ // 'none' } $za->{admitted}, $za->{passed},
                 $za->{rate}{max_rps}),
       '4 4 1000', 'allow: status: 1 + 3 admitted, passed; the configured '
       . 'max_rps 1000');

    # 2r/m burst=4 over 2 servers: 1r/m burst=2 here, in shared memory
    is(join(' ', map { code('/z/fblocal/call') } 1 .. 3), '200 200 429',
       'local: this server\'s share (burst 2), then 429');
    is(cluster('fblocal')->{mode}, 'local', 'local: status mode local');
    # in the local fallback the limits enforced: this server's share
    # (2r/m / 2 = 16 milli-r/s, raised to the least, 17; burst 4 / 2)
    $zl = $ngx->json('/asyncx/status')->{limit_zones}{fblocal} // {};
    is(join(' ', map { $_ // 'none' } $zl->{rate}{max_rps}, $zl->{burst},
                 $zl->{concurrent}{max}, $zl->{admitted}, $zl->{rejected}),
       '0.017 2 0 3 1', 'local: status: the share (max_rps 0.017, burst 2), '
       . 'admitted 1 + 2, rejected 1');
    is(cluster('fblocal')->{local}{fallback_admitted}, 0,
       'local: the shared-memory limiter counts its decisions, the 429 is '
       . 'not in fallback_admitted');
    my $zsl = $ngx->json('/zs/fblocal') // {};
    is("$zsl->{rate}{max_rps} $zsl->{concurrent}{max}", '0.017 0',
       'local: zone status: the share');

    for my $z (qw(fbref fballow fblocal)) {
        my $m = { fbref => 'refuse', fballow => 'allow',
                  fblocal => 'local' }->{$z};
        is(log_count(qr/\[error\] .*zone "$z": redis 127\.0\.0\.1:\d+ unreachable \(.+\), falling back to $m/),
           1, "$z: the mode change is logged once, at error");
    }

    ok($redis->start, 'recovery: Redis started again');
    ok(until_true('fbref in Redis', 30, sub { code('/z/fbref/call') == 200 }),
       'recovery: fbref admits through Redis again');
    ok(until_true('fblocal in Redis', 30, sub {
        code('/z/fblocal/call') == 200
        && cluster('fblocal')->{mode} eq 'redis' }),
       'recovery: fblocal limits in Redis again');
    ok(until_true('fballow', 30, sub { code('/z/fballow/call') == 200
        && cluster('fballow')->{mode} eq 'redis' }),
       'recovery: fballow in Redis');
    for my $z (qw(fbref fballow fblocal)) {
        is(log_count(qr/\[notice\] .*zone "$z": redis 127\.0\.0\.1:\d+ reachable again, limiting in redis/),
           1, "$z: the recovery is logged once, at notice");
        is(log_count(qr/zone "$z": redis 127\.0\.0\.1:\d+ unreachable/), 1,
           "$z: still one fallback line");
    }
    is($ngx->pid, $master, 'recovery: the same nginx');
    cmp_ok(cluster('fbref')->{reconnects}, '>=', 1, 'status: reconnects '
           . 'counted');
}

# --- reload: old workers release, new ones connect ---------------------

{
    my $h = hold('reload', 'r1');
    ok($h->wait_taken(30), 'reload: a request holds the slot (lease 1h)');
    is($lc->zcard('reload'), 1, 'reload: one lease');
    my $old = ($ngx->workers)[0];
    kill 'HUP', $master;
    ok(until_true('a new worker', 30, sub {
        scalar(grep { $_ != $old } $ngx->workers) }),
       'reload: a new worker runs');
    is(code('/z/reload/call'), 429, 'reload: the slot is still held');
    $h->release;
    $h->answer;
    ok(until_true('the lease released', 30, sub { $lc->zcard('reload') == 0 }),
       'reload: the old worker\'s lease is released (not expired: 1h)');
    ok(until_true('the old worker gone', 30, sub {
        !grep { $_ == $old } $ngx->workers }),
       'reload: the old worker exits');
    is(code('/z/reload/call'), 200, 'reload: the new worker admits through '
       . 'Redis');
    is($lc->zcard('reload'), 0, 'reload: and releases');
}

# --- a worker in fallback killed or gone in a reload: the mode ------
# The zone's mode is its live workers': a worker that fell back and then
# died (kill -9) or exited (a reload) no longer holds it in its fallback.
# Redis is paused (SIGSTOP) so that the worker gone cannot reach it again
# before it goes; the worker that replaces it starts in the fallback
# announced and logs its way back to Redis once Redis answers.

sub fbref_lines {
    my ($what) = @_;
    return log_count($what eq 'down'
        ? qr/\[error\] .*zone "fbref": redis 127\.0\.0\.1:\d+ unreachable/
        : qr/\[notice\] .*zone "fbref": redis 127\.0\.0\.1:\d+ reachable again, limiting in redis/);
}

sub prom_mode {
    my (undef, $m) = $ngx->get('/asyncx/status?format=prometheus');
    return ($m // '') =~ /^asyncx_limit_cluster_mode\{zone="fbref",mode="(\w+)"\} 1$/m
           ? $1 : '';
}

for my $variant (qw(kill reload)) {
    is(code('/z/fbref/call'), 200, "$variant-mode: fbref admits in Redis");
    is(cluster('fbref')->{mode}, 'redis', "$variant-mode: mode redis");
    my ($down, $up) = (fbref_lines('down'), fbref_lines('up'));

    $redis->pause;
    is(code('/z/fbref/call'), 503, "$variant-mode: 503, Redis paused");
    is(fbref_lines('down'), $down + 1, "$variant-mode: the fallback logged");
    is(cluster('fbref')->{mode}, 'refuse', "$variant-mode: mode refuse");

    my $old = ($ngx->workers)[0];
    kill($variant eq 'kill' ? 'KILL' : 'HUP',
         $variant eq 'kill' ? $old : $master);
    ok(until_true('a new worker', 30, sub {
        scalar(grep { $_ != $old } $ngx->workers) }),
       "$variant-mode: a new worker runs");
    ok(until_true('the old worker gone', 30, sub {
        !grep { $_ == $old } $ngx->workers }),
       "$variant-mode: the worker in fallback is gone");
    is(cluster('fbref')->{mode}, 'refuse', "$variant-mode: mode refuse while "
       . 'the new worker has no answer of Redis');

    $redis->resume;
    ok(until_true('mode redis', 30, sub {
        cluster('fbref')->{mode} eq 'redis' }),
       "$variant-mode: the status mode is redis again");
    is(prom_mode(), 'redis', "$variant-mode: so is the Prometheus mode");
    ok(until_true('the recovery logged', 30, sub {
        fbref_lines('up') > $up }),
       "$variant-mode: the recovery is logged");
    is(fbref_lines('up'), $up + 1, "$variant-mode: ... once");
    is(code('/z/fbref/call'), 200, "$variant-mode: admitted through Redis");
    is(cluster('fbref')->{mode}, 'redis', "$variant-mode: still redis");
}

# --- the metrics -----------------------------------------------------

{
    my (undef, $m) = $ngx->get('/asyncx/status?format=prometheus');
    like($m, qr/^asyncx_limit_cluster_mode\{zone="fbref",mode="redis"\} 1$/m,
         'metrics: the mode');
    like($m, qr/^asyncx_limit_cluster_commands_total\{zone="fbref"\} \d+$/m,
         'metrics: the commands');
    like($m, qr/^asyncx_limit_cluster_redis_errors_total\{zone="fbref"\} \d+$/m,
         'metrics: the errors');
    like($m, qr/^asyncx_limit_cluster_global_slots\{zone="slot"\} 0$/m,
         'metrics: the global slots');
    like($m, qr/^asyncx_limit_cluster_local_held\{zone="slot"\} 0$/m,
         'metrics: the local held');
}

my @bad = grep { /\[(alert|crit|emerg)\]/ && !/exited on signal 9/ }
          $ngx->error_log;
is(scalar @bad, 0, 'no alert, crit or emerg lines') or diag @bad;
my @pw = grep { /s3cret/ } $ngx->error_log;
is(scalar @pw, 0, 'no password in the log');

$ngx->stop;
$redis->stop;

done_testing();
