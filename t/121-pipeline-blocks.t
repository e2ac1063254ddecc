# asyncx_pipeline_blocks: the blocks a worker makes at its start
# (keep=N), the spare blocks' bound (max=) and trim (trim=).
#
# A kept block lives in one mapping made at the worker's start, not in
# the heap: it must go back to the kept list on every path (success, a
# client that leaves, a worker that shuts down), never to free().  Its
# pool's large-allocation nodes live in it, so it also must stay
# untouched until ngx_destroy_pool() returns (MALLOC_PERTURB_ makes a
# read of freed memory visible, as in t/120-pipeline-attack.t).
#
# Deterministic: pipelines are held in flight by mocks that wait 60 s or
# by the test helper's hold (t/hold/) until the test lets them go; the
# status says when they are all in flight; the debug log says which
# block each took.  Its own nginx on TEST_NGINX_PORT + 6 and + 7.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Time::HiRes qw(time sleep);
use IO::Socket::INET;
use JSON::PP ();
use File::Temp ();
use Asyncx::OwnNginx;
use Asyncx::Hold;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');
Asyncx::OwnNginx::skip_all_unless(
    (grep { /test_hold/ } Asyncx::OwnNginx::modules()),
    'the test helper module (t/hold/) is not loaded');

local $ENV{MALLOC_PERTURB_} = 165;

sub order_raw {
    my ($path, $doc) = @_;
    return "POST $path HTTP/1.0\r\nHost: x\r\n"
           . "Content-Type: application/json\r\n"
           . 'Content-Length: ' . length($doc) . "\r\n\r\n" . $doc;
}

sub status_of {
    my ($ngx) = @_;
    return $ngx->json('/asyncx/status') // {};
}

# the blocks taken from the kept list, in order, and the reservations
sub taken { map { /kept block (\S+) taken/ ? $1 : () } $_[0]->error_log }
sub reserved {
    map { /asyncx pipeline: block (\S+) of (\d+) bytes reserved, (\d+) kept/
          ? [$1, $2, $3] : () } $_[0]->error_log
}

# the blocks from the heap: [address, bytes, bytes faulted in at once]
sub from_heap {
    map { /block (\S+) of (\d+) bytes from the heap, (\d+) faulted in/
          ? [$1, $2, $3] : () } $_[0]->error_log
}

sub no_bad_lines {
    my ($ngx, $what) = @_;
    my @bad = grep { /\[(?:alert|crit|emerg)\]|AddressSanitizer|exited on signal/ }
              $ngx->error_log;
    is(scalar @bad, 0, "$what: no alert, crit, emerg, signal or sanitizer "
                       . 'line') or diag(@bad);
}

# $n clients whose pipelines stay in flight (their mocks wait 60 s) until
# the test closes the sockets returned; ok() once the status counts them
sub in_flight {
    my ($ngx, $n, $what) = @_;
    my @clients;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ngx->port,
                                      Timeout => 5) or last;
        print $s order_raw('/slow', '{"order": 1}');
        push @clients, $s;
    }
    ok($ngx->wait_for("$n pipelines in flight",
                      sub { (status_of($ngx)->{pipelines}{active} // -1)
                            == $n }),
       "$what$n pipelines in flight");
    return @clients;
}

# --- kept blocks: taken, given back, taken again; more pipelines than
#     kept blocks take heap blocks; a large body does not fit one -------

my $ngx = Asyncx::OwnNginx->new(offset => 6, name => 'pipeline-blocks',
    workers => 1, log_level => 'debug', http => <<'HTTP');
    asyncx_pipeline_blocks keep=2;

    server {
        listen 127.0.0.1:$PORT;

        location = /slow {
            client_body_buffer_size 64k;
            client_max_body_size 64k;
            asyncx_pipeline;
            asyncx_stage one a=/svc/slow b=/svc/slow;
            asyncx_call_timeout 60s;
        }
        location = /fast {
            client_body_buffer_size 64k;
            client_max_body_size 64k;
            asyncx_pipeline;
            asyncx_stage one a=/svc/a;
            asyncx_stage two b=/svc/b;
        }
        location = /svc/slow {
            internal;
            asyncx_mock_service delay=60s;
        }
        location = /svc/a {
            internal;
            asyncx_mock_service 'json={"a": 1}';
        }
        location = /svc/b {
            internal;
            asyncx_mock_service 'json={"b": "두"}';
        }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

# the master listens before its worker has started: wait for the
# worker's line (an ASan build starts it late enough to be read first)
$ngx->wait_log(qr/asyncx_pipeline_blocks: \d+ blocks of \d+ bytes kept/);
my @made = grep { /asyncx_pipeline_blocks: 2 blocks of (\d+) bytes kept/ }
           $ngx->error_log;
is(scalar @made, 1, 'the worker made its 2 kept blocks at its start')
    or diag($ngx->error_log);
my ($kept_size) = ($made[0] // '') =~ /blocks of (\d+) bytes/;
ok($kept_size && $kept_size % 4096 == 0, "whole pages ($kept_size bytes)");

my $pid = status_of($ngx)->{pid};
ok($pid, 'the worker answers its status');

# three pipelines in flight at once: two kept blocks, one from the heap
my @clients = in_flight($ngx, 3, '');

my @first = taken($ngx);
is(scalar @first, 2, 'two of them took the kept blocks');
my @res = reserved($ngx);
is(scalar @res, 3, 'three blocks reserved');
is_deeply([map { $_->[2] } @res], [1, 0, 0],
          'the kept list went 2 -> 1 -> 0, the third came from the heap');
my @heap = from_heap($ngx);
is(scalar @heap, 1, 'one block from the heap');
is("$heap[0][0] $heap[0][2]", "$res[2][0] $res[2][1]",
   'the third one, all of it faulted in at once (one stage)');

# the clients leave: every block comes back
close $_ for @clients;
ok($ngx->wait_for('no pipeline in flight',
                  sub { (status_of($ngx)->{pipelines}{active} // -1) == 0 }),
   'the pipelines ended with their clients');

# two orders one after the other: each takes a kept block, and the
# answers are whole (the pipeline's allocations live in the block)
my $n_taken = scalar taken($ngx);
for my $i (1 .. 2) {
    my ($code, $body) = $ngx->parse($ngx->request(
        order_raw('/fast', '{"order": ' . $i . '}'), 10));
    is($code, 200, "order $i answered 200");
    my $json = eval { JSON::PP::decode_json($body) };
    is_deeply($json && [$json->{calls}{a}{result}{a},
                        $json->{calls}{b}{result}{b}],
              [1, "\x{b450}"], "order $i has both calls' answers")
        or diag($body);
}
my @again = (taken($ngx))[$n_taken .. $n_taken + 1];
is(scalar(grep { defined } @again), 2, 'each took a kept block');
my %first = map { $_ => 1 } @first;
is(scalar(grep { defined && $first{$_} } @again), 2,
   'one of the two blocks taken before: they came back')
    or diag("before: @first, now: @again");

# a body larger than a kept block fits: a block from the heap, the kept
# ones stay where they are
my $n_res = scalar reserved($ngx);
my $doc = '{"pad":"' . ('x' x 32768) . '"}';
my ($code, $body) = $ngx->parse($ngx->request(order_raw('/fast', $doc), 10));
is($code, 200, 'a 32 KB body answered 200');
my $json = eval { JSON::PP::decode_json($body) };
is($json && $json->{calls}{b}{result}{b}, "\x{b450}",
   'with the calls\' answers') or diag(substr($body, 0, 300));
@res = reserved($ngx);
is(scalar @res, $n_res + 1, 'one more block reserved');
ok($res[-1][1] > $kept_size, "larger than a kept block ($res[-1][1] bytes)");
is($res[-1][2], 2, 'both kept blocks still free');
@heap = from_heap($ngx);
is($heap[-1][0], $res[-1][0], 'it came from the heap');
ok($heap[-1][2] > 32768 && $heap[-1][2] < $heap[-1][1]
   && $heap[-1][2] % 4096 == 0,
   "two stages: the first stage's pages faulted in at once "
   . "($heap[-1][2] of $heap[-1][1] bytes), the second's as written");
is(scalar taken($ngx), $n_taken + 2, 'no kept block taken for it');

is(status_of($ngx)->{pid}, $pid, 'the same worker throughout');
no_bad_lines($ngx, 'kept blocks');

# a worker killed (kill -9) with both kept blocks in flight: the master
# starts another, which maps its own and serves from them
@clients = in_flight($ngx, 2, '');
is(scalar taken($ngx), $n_taken + 4, 'on the two kept blocks');
kill 'KILL', $pid;
my $new = Asyncx::OwnNginx::until_true('a new worker', 30, sub {
    my $p = status_of($ngx)->{pid};
    return $p && $p != $pid ? $p : undef;
});
ok($new, 'the master started a new worker');
close $_ for @clients;
is(scalar(grep { /asyncx_pipeline_blocks: 2 blocks of \d+ bytes kept/ }
          $ngx->error_log), 2, 'which made its own two kept blocks');
my $n_new = scalar taken($ngx);
($code, $body) = $ngx->parse($ngx->request(order_raw('/fast', '{}'), 10));
is($code, 200, 'and answers an order');
is(scalar taken($ngx), $n_new + 1, 'from a kept block');
$ngx->stop;

# --- a kept block in a worker that shuts down (reload) --------------------

$ngx = Asyncx::OwnNginx->new(offset => 7, name => 'pipeline-blocks-reload',
    workers => 1, log_level => 'debug',
    main => 'thread_pool hold threads=1 max_queue=8;', http => <<'HTTP');
    asyncx_pipeline_blocks keep=2;

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

my @old;
ok($ngx->wait_for('the worker', sub { (@old = $ngx->workers) == 1 }),
   'one worker');

my $client = $ngx->spawn_request(order_raw('/orders/process',
                                           '{"order": 42}'));
ok($hold->wait_taken, 'the call waits on the hold');
is(scalar taken($ngx), 1, 'the pipeline holds a kept block');

kill 'HUP', $ngx->pid;
ok($ngx->wait_log(qr/gracefully shutting down/),
   'the old worker is shutting down');

$hold->release('x');

($code, $body) = $ngx->parse($ngx->collect($client));
is($code, 200, 'the pipeline answered 200');
$json = eval { JSON::PP::decode_json($body) };
is_deeply($json && $json->{calls}{held}{result}, { held_bytes => 1 },
          'with the call\'s answer') or diag($body);

my $t0 = time;
sleep 0.05 while kill(0, $old[0]) && time - $t0 < 30;
ok(!kill(0, $old[0]), 'the old worker exited');
ok((grep { /worker process $old[0] exited with code 0/ } $ngx->error_log),
   'with code 0');
ok($ngx->wait_for('the new worker\'s kept blocks', sub {
       2 == grep { /asyncx_pipeline_blocks: 2 blocks of \d+ bytes kept/ }
                 $ngx->error_log }),
   'the new worker made its own kept blocks');
# the old worker let go of what it no longer needs when the pipeline
# ended: the pages of its free kept block, no spare
is(scalar(grep { /\[debug\] $old[0]#.*asyncx pipeline: shutting down, 0 spare blocks freed, the pages of 1 kept blocks returned, 1 in flight/ }
          $ngx->error_log), 1,
   'the old worker returned its free kept block\'s pages at once');
no_bad_lines($ngx, 'reload');
$ngx->stop;

# --- max=0 keeps no spare block; trim= frees the spares -------------------

for my $case (['max=0 trim=1s', 0], ['trim=1s', 3]) {
    my ($args, $spares) = @$case;

    $ngx = Asyncx::OwnNginx->new(offset => 6, name => 'pipeline-spares',
        workers => 1, log_level => 'debug', http => <<"HTTP");
    asyncx_pipeline_blocks $args;

    server {
        listen 127.0.0.1:\$PORT;

        location = /slow {
            asyncx_pipeline;
            asyncx_stage one a=/svc/slow;
            asyncx_call_timeout 60s;
        }
        location = /svc/slow {
            internal;
            asyncx_mock_service delay=60s;
        }
        location = /fast {
            asyncx_pipeline;
            asyncx_stage one a=/svc/a;
        }
        location = /svc/a {
            internal;
            asyncx_mock_service 'json={"a": 1}';
        }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

    is(scalar(grep { /blocks of \d+ bytes kept/ } $ngx->error_log), 0,
       "$args: no kept block made (keep=0)");

    @clients = in_flight($ngx, 3, "$args: ");
    close $_ for @clients;
    ok($ngx->wait_for('no pipeline in flight',
                  sub { (status_of($ngx)->{pipelines}{active} // -1) == 0 }),
       "$args: they ended with their clients");

    # the next order reserves a block: its debug line counts the spares
    ($code) = $ngx->parse($ngx->request(order_raw('/fast', '{}'), 10));
    is($code, 200, "$args: the next order answered 200");
    @res = map { /reserved, \d+ kept, (\d+) spare/ ? $1 : () }
           $ngx->error_log;
    is($res[-1], $spares ? $spares - 1 : 0,
       "$args: it found " . ($spares || 'no') . ' spare blocks');

    if ($spares) {
        # armed at the first spare; a round frees what stayed unused
        # since the round before (in one or two rounds, depending on
        # when the order above came)
        ok($ngx->wait_log(qr/asyncx pipeline: \d+ spare blocks freed, 0 left/,
                          30),
           "$args: the trim ran until no spare was left");
        my $freed = 0;
        $freed += $_ for map { /(\d+) spare blocks freed/ ? $1 : () }
                         $ngx->error_log;
        is($freed, 3, "$args: it freed the three spare blocks");
    } else {
        is(scalar(grep { /spare blocks freed/ } $ngx->error_log), 0,
           "$args: no trim (nothing kept)");
    }

    no_bad_lines($ngx, $args);
    $ngx->stop;
}

# --- a worker that exits frees its spare blocks --------------------------
# (nginx destroys the cycle pool that holds their list next: memcheck
# called them lost, t/lib/valgrind-check.pl)

$ngx = Asyncx::OwnNginx->new(offset => 6, name => 'pipeline-spares-exit',
    workers => 1, log_level => 'debug', http => <<'HTTP');
    asyncx_pipeline_blocks trim=1h;

    server {
        listen 127.0.0.1:$PORT;

        location = /slow {
            asyncx_pipeline;
            asyncx_stage one a=/svc/slow;
            asyncx_call_timeout 60s;
        }
        location = /svc/slow {
            internal;
            asyncx_mock_service delay=60s;
        }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

@clients = in_flight($ngx, 3, 'exit: ');
close $_ for @clients;
ok($ngx->wait_for('no pipeline in flight',
                  sub { (status_of($ngx)->{pipelines}{active} // -1) == 0 }),
   'exit: they ended with their clients');
$ngx->stop;
my @exits = grep { /asyncx pipeline: the worker exits, \d+ spare blocks freed/ }
            $ngx->error_log;
is(scalar @exits, 1, 'exit: the worker said so once') or diag($ngx->error_log);
like($exits[0] // '', qr/exits, 3 spare blocks freed/,
     'exit: it freed its three spare blocks');
no_bad_lines($ngx, 'exit');

# --- only the processes that serve requests map kept blocks -------------

$ngx = Asyncx::OwnNginx->new(offset => 6, name => 'pipeline-blocks-cache',
    workers => 1, log_level => 'notice', dirs => ['cache'],
    http => <<'HTTP');
    asyncx_pipeline_blocks keep=500;
    proxy_cache_path $DIR/cache keys_zone=blocks:1m;

    server {
        listen 127.0.0.1:$PORT;

        location = /p {
            asyncx_pipeline;
            asyncx_stage one a=/svc/a;
        }
        location = /svc/a {
            internal;
            asyncx_mock_service 'json={"a": 1}';
        }
    }
HTTP

my @procs;
ok($ngx->wait_for('worker, cache manager and cache loader',
                  sub { (@procs = $ngx->workers) == 3 }),
   'a worker, a cache manager and a cache loader');
($code) = $ngx->parse($ngx->request(order_raw('/p', '{}'), 10));
is($code, 200, 'the worker answers');
# a process's init comes before anything else it does: by the time it
# has existed for a second its line would be there
sleep 1;
is(scalar(grep { /asyncx_pipeline_blocks: 500 blocks of \d+ bytes kept/ }
          $ngx->error_log), 1, 'one process mapped the kept blocks');
my @rss = map {
    my $kb = 0;
    if (open my $fh, '<', "/proc/$_/status") {
        while (<$fh>) { $kb = $1 if /^VmRSS:\s+(\d+)/ }
    }
    $kb
} @procs;
my ($least) = sort { $a <=> $b } @rss;
is(scalar(grep { $_ > $least + 500 * 8 } @rss), 1,
   'one process holds them (RSS ' . join(', ', @rss) . ' kB)');
$ngx->stop;

# --- nginx -t names the directive's own line ------------------------------

sub nginx_t { Asyncx::OwnNginx::nginx_t(@_) }

my $lines = scalar(Asyncx::OwnNginx::modules()) + 5;
my ($rc, $out, $conf) = nginx_t(<<'HTTP');
    asyncx_pipeline_blocks keep=1000000;
    server {
        location = /p {
            asyncx_pipeline;
            asyncx_stage one a=/a b=/b;
        }
    }
HTTP
isnt($rc, 0, 'too much kept memory: nginx -t fails');
like($out, qr/\[emerg\] \d+#\d+: "asyncx_pipeline_blocks" keep=1000000 needs \d+ bytes in each worker \(blocks of \d+ bytes for the largest pipeline\), more than 1073741824 in \Q$conf\E:$lines\n/,
     'naming the directive\'s line') or diag($out);

($rc, $out, $conf) = nginx_t(<<'HTTP');
    asyncx_pipeline_blocks keep=5;
    server {
        location = /p { return 204; }
    }
HTTP
is($rc, 0, 'keep= without a pipeline: nginx -t passes');
like($out, qr/\[warn\] \d+#\d+: "asyncx_pipeline_blocks" keep=5 makes no block: no location has "asyncx_pipeline" in \Q$conf\E:$lines\n/,
     'with a warning on the directive\'s line') or diag($out);

done_testing();
