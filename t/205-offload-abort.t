# A client that goes away while its task is pending: the request stays
# allocated (r->main->blocked) until the thread has taken the task, which
# it then skips (the client left while it was queued: nothing is built
# for nobody); the request is freed then, and the error log stays clean.
#
# The task cannot end before the test says so: the test helper module
# (t/hold/, Asyncx::Hold) holds the pool's only thread, the client's task
# waits in the queue behind it, the client leaves, the test checks that
# nothing was freed yet, and only then releases the thread.  Each step
# waits for what it needs (a counter, a log line), never for a time.
# It runs its own nginx on TEST_NGINX_PORT + 6, logging at debug level.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use Asyncx::Hold;
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $ngx = Asyncx::OwnNginx->new(offset => 6, name => 'abort',
    log_level => 'debug', main => 'thread_pool tiny threads=1;',
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
            asyncx_file_max_size 32m;
            asyncx_file_read;
        }

        location = /status { asyncx_status; }
    }
HTTP

sub queued { (($ngx->json('/status') // {})->{pools}{tiny} // {})->{queued} // 0 }

sub log_has { my ($re) = @_; scalar grep { $_ =~ $re } $ngx->error_log }

# Holds the pool, sends $raw on a connection of its own, waits until its
# task is queued, closes the connection and waits until nginx has
# terminated the request.  Returns the hold, still taken.
sub abort_while_pending {
    my ($raw, $what) = @_;

    my $hold = Asyncx::Hold->new($ngx->dir);
    $hold->{child} = $ngx->spawn_request("GET /hold?fifo=" . $hold->path
                                        . " HTTP/1.0\r\nHost: localhost\r\n\r\n");
    ok($hold->wait_taken, "$what: the helper holds the pool's only thread");

    my $terminated = log_has(qr/http terminate cleanup count:1 blk:1/);

    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ngx->port)
        or die "connect: $!";
    print $c $raw;

    ok($ngx->wait_for("the $what task in the queue", sub { queued() == 1 }),
       "$what: the client's task waits in the queue");

    close $c;

    ok($ngx->wait_for('the request to be terminated', sub {
           log_has(qr/http terminate cleanup count:1 blk:1/) > $terminated }),
       "$what: nginx saw the client leave and terminated the request");

    return $hold;
}

sub release {
    my ($hold) = @_;

    $hold->release;
    $ngx->collect(delete $hold->{child});
}


# 1. a hash whose client leaves while it waits

my $body = '{"password": "mypassword"}';
my $hold = abort_while_pending("POST /auth/hash HTTP/1.0\r\nHost: localhost\r\n"
                               . "Content-Length: " . length($body)
                               . "\r\n\r\n$body", 'hash');

ok(log_has(qr/asyncx offload: password hash posted/), 'hash: the task was posted');
ok(log_has(qr/client prematurely closed connection/),
   'hash: the client\'s departure was logged');
is(log_has(qr/asyncx offload: cleanup/), 0,
   'hash: the request is not freed while its task is pending (blocked)');

release($hold);

ok($ngx->wait_log(qr/asyncx executor: task in pool "tiny" skipped after \d+ ms in the queue: its client left/),
   'hash: the thread skipped the task of the departed client');
ok($ngx->wait_log(qr/asyncx offload: cleanup, idle, 0 result bytes freed/),
   'hash: the request was freed once the thread had let go of the task');
is(log_has(qr/asyncx offload: cleanup, task running/), 0,
   'hash: never freed under a running task');
is(log_has(qr/asyncx offload: password hash done/), 0,
   'hash: no answer was built for the departed client');


# 2. the worker still serves (no leaked block)

my ($code, $answer) = $ngx->parse($ngx->request(
    "POST /auth/hash HTTP/1.0\r\nHost: localhost\r\nContent-Length: 15\r\n\r\n"
    . '{"password": 1}'));
is($code, 400, 'the worker still answers after the aborted task');
$body = '{"password": "x"}';
($code, $answer) = $ngx->parse($ngx->request(
    "POST /auth/hash HTTP/1.0\r\nHost: localhost\r\nContent-Length: "
    . length($body) . "\r\n\r\n$body"));
like("$code $answer", qr/^200 \{"hash":"pbkdf2_sha256\$1000\$/,
     '... and hashes again');


# 3. a large file read whose client leaves: the result is freed on the
#    abort path

open my $fh, '>', $ngx->dir . '/html/big.txt' or die $!;
print $fh 'y' x 16000000;
close $fh;

$hold = abort_while_pending("GET /files/read?path=big.txt HTTP/1.0\r\n"
                            . "Host: localhost\r\n\r\n", 'file read');

ok(log_has(qr/asyncx offload: file read posted/), 'file read: the task was posted');

release($hold);

ok($ngx->wait_for('the second skip', sub {
       log_has(qr/asyncx executor: task in pool "tiny" skipped/) == 2 }),
   'file read: the thread skipped it too');
my ($skipped) = map { /\*(\d+) asyncx executor: task in pool "tiny" skipped/ ? $1 : () }
                  reverse $ngx->error_log;
ok($ngx->wait_for('its cleanup', sub {
       log_has(qr/\*$skipped asyncx offload: cleanup, idle, 0 result bytes freed/) }),
   'file read: no 16 MB answer was read for nobody; the request was freed');
is(log_has(qr/asyncx offload: file read done/), 0,
   'file read: no answer was built for the departed client');

my $status = $ngx->json('/status')->{pools}{tiny};
is(join(' ', map { "$_=$status->{$_}" }
                 qw(queued running completed failed cancelled)),
   'queued=0 running=0 completed=2 failed=0 cancelled=2',
   'the pool is idle: the two tasks of departed clients cancelled, the two others completed');

$ngx->stop;

is(join('', grep { /\[(?:error|alert|crit|emerg)\]/ } $ngx->error_log), '',
   'no error, alert, crit or emerg line');

done_testing();
