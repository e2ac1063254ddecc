# A full thread pool queue answers 503 with Retry-After at once; it never
# blocks or drops the request, and with room in the queue nothing is
# refused.
#
# No computation occupies the pool: the test helper module (t/hold/,
# Asyncx::Hold) takes the pool's only thread with a task that waits on a
# FIFO, the test sees when the thread is taken, queues what it wants
# behind it (watching the module's own counters), and releases the
# thread when it is done looking.  Nothing here depends on how fast the
# machine is.  It runs its own nginx on TEST_NGINX_PORT + 5.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Asyncx::Hold;
use Asyncx::OwnNginx;
use IO::Socket::INET;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

sub start {
    my ($max_queue) = @_;

    return Asyncx::OwnNginx->new(offset => 5, name => 'queue',
        main => "thread_pool tiny threads=1 max_queue=$max_queue;",
        http => <<'HTTP');
    asyncx_thread_pools io=tiny cpu=tiny;

    server {
        listen 127.0.0.1:$PORT;

        location = /hold { asyncx_test_hold tiny; }

        location = /auth/hash {
            asyncx_pbkdf2_iterations 1000;
            asyncx_password_hash;
        }

        location = /files/read {
            asyncx_file_root html;
            asyncx_file_read;
        }

        # a root that does not exist: every read is the server's fault
        location = /gone/read {
            asyncx_file_root no-such-directory;
            asyncx_file_read;
        }

        location = /status { asyncx_status; }
    }
HTTP
}

sub hash_request {
    my ($password) = @_;

    my $body = qq({"password": "$password"});

    return "POST /auth/hash HTTP/1.0\r\nHost: localhost\r\n"
           . "Content-Length: " . length($body) . "\r\n\r\n$body";
}

sub pool { my ($ngx) = @_; ($ngx->json('/status') // {})->{pools}{tiny} }

sub counters {
    my ($ngx) = @_;

    my $p = pool($ngx) // {};

    return join ' ', map { "$_=" . ($p->{$_} // '?') }
                     qw(posted queued running completed failed rejected);
}

sub hold_pool {
    my ($ngx, $hold) = @_;

    my $child = $ngx->spawn_request("GET /hold?fifo=" . $hold->path
                                    . " HTTP/1.0\r\nHost: localhost\r\n\r\n");
    ok($hold->wait_taken, 'the helper task has the pool\'s only thread');

    return $child;
}


# 1. queue full: one task held in the thread, one module task queued,
#    the next one is refused at once

my $ngx = start(1);
my $hold = Asyncx::Hold->new($ngx->dir);

my $held = hold_pool($ngx, $hold);

my $queued = $ngx->spawn_request(hash_request('queued'));
ok($ngx->wait_for('the hash in the queue', sub { (pool($ngx) // {})->{queued} }),
   'a hash waits in the queue (max_queue=1: the queue is full)');

my $raw = $ngx->request(hash_request('refused'));
my ($code, $body) = $ngx->parse($raw);
is($code, 503, 'the next hash gets 503 while the thread is still held');
like($raw, qr/\r\nRetry-After: 1\r\n/, '... with Retry-After: 1');
is($body, qq({"error": "thread pool queue is full", "status": 503}\n),
   '... and the JSON error');

ok($ngx->wait_log(qr/\[error\] .*thread pool "tiny" queue overflow: 1 tasks waiting/),
   'nginx logged the overflow');
ok($ngx->wait_log(qr/\[warn\] .*asyncx: thread pool queue is full \(status 503\)/),
   'the module logged the 503');

is(counters($ngx), 'posted=1 queued=1 running=0 completed=0 failed=0 rejected=1',
   'the counters while held: one queued, one rejected');

$hold->release;

($code, $body) = $ngx->parse($ngx->collect($held));
is("$code $body", qq(200 {"held_bytes": 8}\n), 'the helper task ended when released');

($code, $body) = $ngx->parse($ngx->collect($queued));
is($code, 200, 'the queued hash was served after the release');
like($body, qr/^\{"hash":"pbkdf2_sha256\$1000\$/, '... with its hash');

ok($ngx->wait_for('the counters to settle',
                  sub { (pool($ngx) // {})->{completed} }), 'the hash completed');
is(counters($ngx), 'posted=1 queued=0 running=0 completed=1 failed=0 rejected=1',
   'the counters afterwards: one completed, one rejected');

$ngx->stop;
is(join('', $ngx->bad_lines), '', 'no alert, crit or emerg line');


# 2. the same burst with room in the queue: nothing is refused

$ngx = start(4);
$hold = Asyncx::Hold->new($ngx->dir);

$held = hold_pool($ngx, $hold);

my @hashers;
for my $i (1 .. 3) {
    push @hashers, $ngx->spawn_request(hash_request("burst $i"));
    ok($ngx->wait_for("hash $i in the queue",
                      sub { ((pool($ngx) // {})->{queued} // 0) == $i }),
       "hash $i waits in the queue");
}

is(counters($ngx), 'posted=3 queued=3 running=0 completed=0 failed=0 rejected=0',
   'max_queue=4: three hashes queued, none refused');

$hold->release;
$ngx->collect($held);

my @codes = map { ($ngx->parse($ngx->collect($_)))[0] } @hashers;
is("@codes", '200 200 200', 'all three were served after the release');
is(counters($ngx), 'posted=3 queued=0 running=0 completed=3 failed=0 rejected=0',
   'the counters afterwards');
is(scalar(grep { /queue overflow/ } $ngx->error_log), 0, 'no overflow logged');

$ngx->stop;
is(join('', $ngx->bad_lines), '', 'no alert, crit or emerg line');


# 3. tasks that answer a client error count as completed, not failed

$ngx = start(4);

($code, $body) = $ngx->get('/files/read?path=missing.txt');
is($code, 404, 'a missing file: 404');
like($body, qr/"status": 404\}/, '... in the JSON error shape');

my $bad = '{"pass": 1}';
($code, $body) = $ngx->parse($ngx->request(
    "POST /auth/hash HTTP/1.0\r\nHost: localhost\r\nContent-Length: "
    . length($bad) . "\r\n\r\n$bad"));
is($code, 400, 'a hash without a password: 400');

is(counters($ngx), 'posted=2 queued=0 running=0 completed=2 failed=0 rejected=0',
   'both tasks completed; none failed');

$ngx->stop;
is(join('', $ngx->bad_lines), '', 'no alert, crit or emerg line');


# 4. a task that fails on the server's side (5xx) counts as failed: the
#    counter an operator alerts on moves for the server's faults only,
#    never for what a client sent (README "Pool counters")

$ngx = start(4);

($code, $body) = $ngx->get('/gone/read?path=a.txt');
is($code, 500, 'a read below a root that does not exist: 500');
is($body, qq({"error": "file read: internal error, see the error log", "status": 500}\n),
   '... in the JSON error shape, naming no server path');

($code, $body) = $ngx->get('/files/read?path=missing.txt');
is($code, 404, 'a missing file: 404');

is(counters($ngx), 'posted=2 queued=0 running=0 completed=1 failed=1 rejected=0',
   'the 500 failed, the 404 completed');

$ngx->stop;
is(join('', $ngx->bad_lines), '', 'no alert, crit or emerg line');


# 5. clients that leave while their tasks wait in the queue: the tasks
#    are skipped when the thread is free, not run for nobody; a client
#    that stays is served.  Each client leaves after its task is queued,
#    and the thread is released only once nginx has seen every departure
#    (its "client prematurely closed connection" line): nothing races.

$ngx = start(4);
$hold = Asyncx::Hold->new($ngx->dir);

$held = hold_pool($ngx, $hold);

# the client that stays is spawned first: a child forked later would
# hold the leavers' sockets open
my $stayer = $ngx->spawn_request(hash_request('stayer'));
ok($ngx->wait_for('the stayer\'s hash in the queue',
                  sub { ((pool($ngx) // {})->{queued} // 0) == 1 }),
   'a hash whose client stays waits in the queue');

my @leavers;
for my $i (1 .. 3) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ngx->port,
                                  Timeout => 5);
    ok($s, "client $i connected") or next;
    print $s hash_request("leaver $i");
    ok($ngx->wait_for("hash $i in the queue",
                      sub { ((pool($ngx) // {})->{queued} // 0) == $i + 1 }),
       "hash $i waits in the queue behind it");
    push @leavers, $s;
}

close $_ for @leavers;

sub departures {
    grep { /client prematurely closed connection/ } $ngx->error_log;
}

ok($ngx->wait_for('nginx to see the three departures',
                  sub { departures() >= 3 }),
   'nginx noticed the three clients leave')
    or diag("the pool: ", counters($ngx), "\nerror.log:\n",
            join '', $ngx->error_log);
# nginx's own line, not the module's: more than one for a connection is
# no fault of the module's (the skipped tasks are counted exactly below)
diag("nginx logged ", scalar(departures()), " departures for 3 clients:\n",
     departures()) if departures() != 3;

$hold->release;
$ngx->collect($held);

($code, $body) = $ngx->parse($ngx->collect($stayer));
is($code, 200, 'the client that stayed was served');
like($body, qr/^\{"hash":"pbkdf2_sha256\$1000\$/, '... with its hash');

ok($ngx->wait_for('the pool to settle', sub {
       my $p = pool($ngx) // {};
       ($p->{queued} // 1) == 0 && ($p->{running} // 1) == 0
       && ($p->{completed} // 0) + ($p->{cancelled} // 0) == 4 }),
   'the pool is idle');
is(counters($ngx) . ' cancelled=' . ((pool($ngx) // {})->{cancelled} // '?'),
   'posted=4 queued=0 running=0 completed=1 failed=0 rejected=0 cancelled=3',
   'three tasks skipped, one completed');
is(scalar(grep { /\[info\] .*asyncx executor: task in pool "tiny" skipped after \d+ ms in the queue: its client left/ }
          $ngx->error_log), 3, 'an info line for each skipped task');

my $metrics = $ngx->request("GET /status?format=prometheus HTTP/1.0\r\n"
                            . "Host: localhost\r\n\r\n");
like($metrics, qr/^asyncx_pool_tasks_cancelled_total\{pool="tiny"\} 3$/m,
     'Prometheus counts them as asyncx_pool_tasks_cancelled_total');

$ngx->stop;
is(join('', $ngx->bad_lines), '', 'no alert, crit or emerg line');

done_testing();
