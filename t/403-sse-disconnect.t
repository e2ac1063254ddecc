# A client that leaves a stream stops its work: no job is posted for it
# afterwards.  Asserted on what stops, the stream jobs the module posted
# and the records they went through (streams.jobs and streams.records in
# /asyncx/status, also the pool's posted count), not on the info line the
# request's cleanup prints.
#
# 1. Deterministic: a client that never reads blocks its stream (no job
#    is posted while output is pending).  Once the worker is idle the
#    test notes the job count, closes the client, waits until the stream
#    is gone, and the count has not moved: not one job after the client
#    left, out of the ~78,000 the whole stream needs.
# 2. A client that leaves right after asking for a resumed stream, which
#    first rebuilds its totals in 50 silent jobs of 100,000 records: the
#    stream ends after one or two of them (nginx notices the closed
#    connection while the first one runs), and sends no event.
#
# Its own nginx (one worker) on TEST_NGINX_PORT + 5.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(time sleep);
use JSON::PP ();
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $ngx = Asyncx::OwnNginx->new(offset => 5, name => 'sse-disconnect',
    workers => 1, main => 'thread_pool cpu threads=1;', http => <<'HTTP');
    asyncx_thread_pools io=cpu cpu=cpu;

    server {
        listen 127.0.0.1:$PORT;

        location = /stream/search { asyncx_sse search; }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

sub status {
    my ($code, $body) = $ngx->get('/asyncx/status');
    return $code == 200 ? JSON::PP::decode_json($body) : undef;
}

sub open_stream {
    my ($uri, $last_id) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ngx->port,
                                  Timeout => 5) or die "connect: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096);
    print $s "GET $uri HTTP/1.1\r\nHost: localhost\r\n"
             . (defined $last_id ? "Last-Event-ID: $last_id\r\n" : '')
             . "\r\n";
    return $s;
}

# until no stream is active and no job queued or running, 3 times in a
# row with the same job count; the status then
sub wait_idle {
    my ($streams) = @_;
    my ($st, $n, $jobs, $t0) = (undef, 0, -1, time);
    while (time - $t0 < 60) {
        $st = status() or next;
        my $p = $st->{pools}{cpu};
        if ($st->{streams}{active} == $streams
            && $p->{queued} == 0 && $p->{running} == 0
            && $st->{streams}{jobs} == $jobs)
        {
            return $st if ++$n == 3;
        } else {
            $n = 0;
        }
        $jobs = $st->{streams}{jobs};
        sleep 0.1;
    }
    return undef;
}

# 1. a blocked stream whose client leaves
my $c = open_stream('/stream/search?keyword=record&data_size=10000000');

my $blocked = wait_idle(1);
ok($blocked, 'the stream blocks on its client that does not read');
my $jobs = $blocked->{streams}{jobs};
my $records = $blocked->{streams}{records};
my $posted = $blocked->{pools}{cpu}{posted};
cmp_ok($jobs, '>', 0, "it ran $jobs jobs first");

close $c;

my $gone = wait_idle(0);
ok($gone, 'the stream ends when its client leaves');
is($gone->{streams}{jobs}, $jobs, 'no stream job was posted after that');
is($gone->{streams}{records}, $records, '... no record searched');
is($gone->{pools}{cpu}{posted}, $posted, '... nor any job of the pool');
is("$gone->{streams}{aborted}/$gone->{streams}{completed}", '1/0',
   'counted as aborted');
cmp_ok($jobs, '<', 78125 / 10,
       'most of the 78,125 jobs of the whole stream never ran');

# 2. a client that leaves during the rebuild of a resumed stream: it
# closes right after sending the request, so nginx sees the end of the
# connection at the latest when the first part is done
$c = open_stream('/stream/search?keyword=python&data_size=10000000'
                 . '&batch_size=100', 10000000);
close $c;

my $t0 = time;
while (time - $t0 < 30) {
    my $st = status();
    last if $st && $st->{streams}{total} == 2;
    sleep 0.01;
}

$gone = wait_idle(0);
ok($gone, 'the resumed stream ends when its client leaves');
my $ran = $gone->{streams}{jobs} - $jobs;
cmp_ok($ran, '>=', 1, "it ran $ran jobs");
cmp_ok($ran, '<', 50, '... fewer than its 50 parts of rebuilding');
my $went = $gone->{streams}{records} - $records;
cmp_ok($went, '<=', 2 * 100000,
       "... which went through $went of the 5,000,000 records to rebuild");
is($gone->{streams}{events}, $blocked->{streams}{events},
   '... and sent no event');
is($gone->{streams}{aborted}, 2, 'counted as aborted');

sleep 0.5;
my $later = status();
is("$later->{streams}{jobs}/$later->{streams}{records}",
   "$gone->{streams}{jobs}/$gone->{streams}{records}",
   'still no new job nor record half a second later');

my @el = $ngx->error_log;
is(scalar(grep { /asyncx sse: client closed the stream after \d+ events, \d+ of 10000000 records done, remaining work cancelled/ } @el),
   2, 'an info line for each');
is(scalar(grep { /\[(error|alert|crit|emerg)\]/ } @el), 0,
   'no error, alert, crit or emerg lines');

$ngx->stop;

done_testing();
