# asyncx_pipeline's reserved pool block, kept per worker for the next
# pipelines: what happens to it on the paths where it is NOT kept.
#
# A pipeline's request pool takes one reserved block and makes it the
# pool's current block, so what the request allocates afterwards lives
# there: among it, the nodes of the pool's list of large allocations
# (every subrequest's in-memory buffer, a proxy's buffers).  When the
# pool is destroyed, a cleanup takes the block out of the pool's list
# before ngx_destroy_pool() reads the large list and frees it: the block
# must stay untouched until ngx_destroy_pool() returns.  A worker that
# is shutting down (reload, nginx -s quit) and a worker whose spare
# blocks reached their bound free the block in that cleanup: then
# ngx_destroy_pool() walks large-list nodes inside freed memory (ASan:
# heap-use-after-free in ngx_destroy_pool; glibc with MALLOC_PERTURB_:
# the freed block is overwritten and the worker crashes freeing a
# garbage pointer).
#
# Deterministic: the pipeline's one call waits on the test helper's hold
# (t/hold/) until the test has reloaded nginx, so the pipeline ends in a
# worker that is shutting down, whatever the machine's speed.  Its own
# nginx (master + one worker) on TEST_NGINX_PORT + 6.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Time::HiRes qw(time sleep);
use IO::Socket::INET;
use JSON::PP ();
use Asyncx::OwnNginx;
use Asyncx::Hold;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');
Asyncx::OwnNginx::skip_all_unless(
    (grep { /test_hold/ } Asyncx::OwnNginx::modules()),
    'the test helper module (t/hold/) is not loaded');

# glibc overwrites what free() releases (inherited by the workers: the
# master reads it at its start): a read of freed memory sees garbage
# instead of what happened to be left there
local $ENV{MALLOC_PERTURB_} = 165;

my $ngx = Asyncx::OwnNginx->new(offset => 6, name => 'pipeline-attack',
    workers => 1, main => 'thread_pool hold threads=1 max_queue=8;',
    http => <<'HTTP');
    server {
        listen 127.0.0.1:$PORT;

        location = /orders/process {
            asyncx_pipeline;
            asyncx_stage one held=/up/held;
            asyncx_call_timeout 60s;
        }
        location = /up/held {
            internal;
            proxy_method GET;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_pass http://127.0.0.1:$PORT/held;
        }
        location = /held {
            asyncx_test_hold hold $DIR/hold.fifo;
        }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

my $hold = Asyncx::Hold->new($ngx->dir);

sub order {
    return "POST /orders/process HTTP/1.0\r\nHost: x\r\n"
           . "Content-Type: application/json\r\n"
           . "Content-Length: 13\r\n\r\n{\"order\": 42}";
}

# --- a pipeline that ends in a worker shutting down (reload) ------------

my @old;
ok($ngx->wait_for('the worker', sub { (@old = $ngx->workers) == 1 }),
   'one worker');

my $client = $ngx->spawn_request(order());
ok($hold->wait_taken, 'the call waits on the hold');

kill 'HUP', $ngx->pid;
ok($ngx->wait_log(qr/gracefully shutting down/),
   'the old worker is shutting down');

$hold->release('x');

my ($code, $body) = $ngx->parse($ngx->collect($client));
is($code, 200, 'the pipeline answered 200');
my $json = eval { JSON::PP::decode_json($body) };
is_deeply($json && $json->{calls}{held}{result}, { held_bytes => 1 },
          'with the call\'s answer') or diag($body);

my $t0 = time;
sleep 0.05 while kill(0, $old[0]) && time - $t0 < 30;
ok(!kill(0, $old[0]), 'the old worker exited');

my @el = $ngx->error_log;
ok((grep { /worker process $old[0] exited with code 0/ } @el),
   'the old worker exited with code 0')
    or diag(grep { /worker process $old[0] exited|AddressSanitizer/ } @el);
is(scalar(grep { /\[(?:alert|crit|emerg)\]|AddressSanitizer/ } @el), 0,
   'no alert, crit, emerg or sanitizer line')
    or diag(grep { /\[(?:alert|crit|emerg)\]|AddressSanitizer/ } @el);

$ngx->stop;

# --- spare blocks at their bound (64 MB a worker) -------------------------
#
# 300 pipelines with a 32 KB body each hold a 256 KB block (the most a
# pipeline reserves); their clients leave at once, and the blocks come
# back one after the other: the first 256 fill the spares to 64 MB, the
# others are not kept, and must not be freed before ngx_destroy_pool()
# has read them.  (300 x 256 KB = 75 MB: were a pipeline's reserve
# capped lower than 256 KB, raise $n so that they still pass 64 MB.)  Deterministic: the calls' mocks wait 60 s, and the
# status says when all 300 are in flight.

my $n = 300;

my $big = Asyncx::OwnNginx->new(offset => 7, name => 'pipeline-spares',
    workers => 1, connections => 2 * $n + 64, http => <<'HTTP');
    server {
        listen 127.0.0.1:$PORT;

        location = /orders/process {
            client_body_buffer_size 64k;
            client_max_body_size 64k;
            asyncx_pipeline;
            asyncx_stage one a=/svc/a b=/svc/b c=/svc/c d=/svc/d;
            asyncx_call_timeout 60s;
        }
        location /svc/ {
            internal;
            asyncx_mock_service delay=60s;
        }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

sub status_of {
    my ($ngx) = @_;
    return $ngx->json('/asyncx/status') // {};
}

my $pid = status_of($big)->{pid};
ok($pid, 'the worker answers its status');

my $doc = '{"pad":"' . ('x' x 32768) . '"}';
my @clients;

for (1 .. $n) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $big->port,
                                  Timeout => 5) or last;
    print $s "POST /orders/process HTTP/1.0\r\nHost: x\r\n"
             . "Content-Type: application/json\r\n"
             . 'Content-Length: ' . length($doc) . "\r\n\r\n" . $doc;
    push @clients, $s;
}

is(scalar @clients, $n, "$n clients connected");
ok($big->wait_for("$n pipelines in flight",
                  sub { (status_of($big)->{pipelines}{active} // -1) == $n }),
   "$n pipelines in flight");

close $_ for @clients;

ok($big->wait_for('no pipeline in flight',
                  sub { (status_of($big)->{pipelines}{active} // -1) == 0 }),
   'every pipeline ended with its client');
is(status_of($big)->{pid}, $pid, 'by the same worker');

@el = $big->error_log;
is(scalar(grep { /asyncx pipeline: aborted in stage 1 of 1, 4 calls in flight released/ } @el),
   $n, 'each pipeline logged its abort');
is(scalar(grep { /\[(?:alert|crit|emerg)\]|AddressSanitizer/ } @el), 0,
   'no alert, crit, emerg or sanitizer line')
    or diag(grep { /\[(?:alert|crit|emerg)\]|AddressSanitizer/ } @el);

$big->stop;

done_testing();
