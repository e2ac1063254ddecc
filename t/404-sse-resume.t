# Resuming with Last-Event-ID continues with exactly the events that
# follow that id in an uninterrupted run, for every kind of stream and
# every kind of event (match, progress, batch, stage, complete, error).
#
# For each stream below: one uninterrupted run, then one resumed run per
# id it carried (all of them, or every k-th plus the ends when there are
# many), each compared byte for byte with the rest of the uninterrupted
# run (only "total_time"/"total_time_ms" of "complete" differ between
# runs: they are masked).  Ids the module never wrote resume after the
# last event whose id is not above them.  The last id ("complete") and
# anything past it get 204.
#
# Its own nginx (one worker) on TEST_NGINX_PORT + 5 (t/lib/Asyncx/OwnNginx.pm):
# some 1,500 short requests, a plain loop is simpler than data blocks.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $ngx = Asyncx::OwnNginx->new(offset => 5, name => 'sse-resume',
    workers => 1, main => 'thread_pool cpu threads=2;', http => <<'HTTP');
    asyncx_thread_pools io=cpu cpu=cpu;

    server {
        listen 127.0.0.1:$PORT;

        location = /stream/search { asyncx_sse search; }
        location = /stream/transform { asyncx_sse transform; }
        location = /stream/aggregate { asyncx_sse aggregate; }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

sub fetch {
    my ($uri, $last_id) = @_;
    my $res = $ngx->request("GET $uri HTTP/1.0\r\nHost: localhost\r\n"
                            . (defined $last_id ? "Last-Event-ID: $last_id\r\n"
                                                : '')
                            . "\r\n", 30);
    my ($code) = $res =~ m{^HTTP/1\.\d (\d+)};
    my ($body) = $res =~ /\r\n\r\n(.*)\z/s;
    return ($code // 0, $body // '');
}

# the events of a body: [id or undef, text], timings masked
sub events {
    my ($body) = @_;
    my @ev;
    for my $block (split /\n\n/, $body) {
        next if $block eq ': keepalive';
        (my $text = $block)
            =~ s/"total_time": "[^"]*", "total_time_ms": [0-9.]+/"total_time": T/;
        my ($id) = $block =~ /^id: (\d+)$/m;
        push @ev, [$id, $text];
    }
    return @ev;
}

sub text { join '', map { "$_->[1]\n\n" } @_ }

# what a client resuming after $x must get: everything after the last
# event whose id is <= $x (events without id follow their predecessor)
sub expected_after {
    my ($x, @ev) = @_;
    my $cut = 0;
    for my $i (0 .. $#ev) {
        $cut = $i + 1 if defined $ev[$i][0] && $ev[$i][0] <= $x;
    }
    return @ev[$cut .. $#ev];
}

my @streams = (
    # name, uri, at most this many resumes (0: every id)
    ['search, 72 matches in 10 batches',
     '/stream/search?keyword=python&data_size=10000', 0],
    ['search, every record matches, batches of 300 (more than fit one job)',
     '/stream/search?keyword=record&data_size=1050&batch_size=300', 160],
    ['search, uneven last batch',
     '/stream/search?keyword=thread&data_size=2345&batch_size=500', 120],
    ['search with an injected failure',
     '/stream/search?keyword=python&data_size=10000&fail_at=5000', 0],
    ['search with a failure on a batch boundary',
     '/stream/search?keyword=python&data_size=3000&fail_at=2000', 0],
    ['transform', '/stream/transform', 0],
    ['transform, uneven last batch',
     '/stream/transform?data_size=1050&batch_size=100', 0],
    ['transform with a failure inside a batch',
     '/stream/transform?data_size=1000&batch_size=100&fail_at=550', 0],
    ['aggregate', '/stream/aggregate', 0],
    ['aggregate, uneven batches and a failure',
     '/stream/aggregate?data_size=2500&batch_size=300&fail_at=1700', 0],
);

for my $s (@streams) {
    my ($name, $uri, $max) = @$s;

    my ($code, $body) = fetch($uri);
    my @all = events($body);
    my @ids = map { $_->[0] } grep { defined $_->[0] } @all;

    is($code, 200, "$name: uninterrupted run");
    cmp_ok(scalar @ids, '>=', 3, "$name: has events with ids");

    # every id, or every k-th one and the first and last ten
    my @pick = @ids;
    if ($max && @ids > $max) {
        my $k = int(@ids / ($max - 20)) + 1;
        my %p;
        $p{$ids[$_]} = 1 for 0 .. 9, $#ids - 9 .. $#ids;
        for (my $i = 0; $i < @ids; $i += $k) { $p{$ids[$i]} = 1 }
        @pick = sort { $a <=> $b } keys %p;
    }

    # and ids the module never wrote: 0, odd ids of non-matching
    # records, even ids inside a batch
    my %seen = map { $_ => 1 } @ids;
    my @foreign = grep { !$seen{$_} } (0, 1, 2, 3, 5, 101, 998, 1001,
                                        $ids[-1] - 3, $ids[-1] - 2);

    my ($bad, $n) = (0, 0);
    my $last = $all[-1][1] =~ /"type": "complete"/ ? $ids[-1] : undef;

    for my $x (@pick, @foreign) {
        next if $x < 0;

        my ($c, $b) = fetch($uri, $x);
        my $got = $c == 204 ? '(204)' : text(events($b));
        my $want = defined $last && $x >= $last
                   ? '(204)' : text(expected_after($x, @all));
        $n++;

        if ($got ne $want) {
            $bad++;
            if ($bad <= 3) {
                diag("$name: Last-Event-ID $x: status $c\n"
                     . "  got:  " . substr($got, 0, 400) . "\n"
                     . "  want: " . substr($want, 0, 400));
            }
        }
    }

    is($bad, 0, "$name: $n resumed runs match the uninterrupted one");
}

# the id right after "complete" and a larger one are 204 too, however
# large (from 2^63 up they were 400 "invalid", as if not numbers)
my ($c) = fetch('/stream/transform', 2 * 1000 + 2);
is($c, 204, 'past "complete": 204');
for my $id ('4611686018427387904', '9223372036854775806',
            '99999999999999999999') {
    ($c) = fetch('/stream/transform', $id);
    is($c, 204, "past \"complete\" ($id): 204");
}

my ($sc, $st) = $ngx->get('/asyncx/status');
like($st, qr/"streams":\{"active":0,/, 'no stream left active');

my @el = $ngx->error_log;
is(scalar(grep { /\[(error|alert|crit|emerg)\]/ } @el), 0,
   'no error, alert, crit or emerg lines');

$ngx->stop;

done_testing();
