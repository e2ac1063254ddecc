# Real scrapes of asyncx_status?format=prometheus from nginx with two
# workers, as Prometheus takes them:
#   1. known traffic moves exactly the numbers it should (pipelines and
#      their calls by failure kind, a thread pool, a limit zone, a
#      stream kind), and the latency histograms see the mock's delays;
#   2. under load (a client looping on a pipeline, a pipeline, a stream
#      and a limited request held in flight, one more waiting), every
#      scrape passes Debian's `promtool check metrics`, the gauges show
#      what is in flight, and every histogram is well formed.
# Timing is never raced: the test waits for the states it checks by
# polling the status (with a deadline), and the latency bounds it checks
# are lower bounds the mock's timers guarantee.
# It runs its own nginx (master + 2 workers) on TEST_NGINX_PORT + 5.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use JSON::PP ();
use IO::Socket::INET;
use File::Temp qw(tempfile);
use Time::HiRes qw(time sleep);
use Encode ();
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my ($promtool) = grep { -x } ($ENV{PROMTOOL} // (), '/usr/bin/promtool');
Asyncx::OwnNginx::skip_all_unless($promtool,
    'promtool is missing (make deps installs Debian\'s prometheus)');

my $ngx = Asyncx::OwnNginx->new(offset => 5, name => 'prom', workers => 2,
    main => "thread_pool prom_hash threads=1;\nthread_pool prom_sse threads=2;",
    http => <<'HTTP');
    asyncx_limit_zone zone=held:64k rate=1000r/s concurrency=1 queue=10
                      timeout=60s;

    server {
        listen 127.0.0.1:$PORT reuseport;

        location = /status { asyncx_status; }

        location = /order {
            asyncx_pipeline;
            asyncx_stage one fast=/svc/fast slow=/svc/slow;
            asyncx_stage two last=/svc/fast;
        }
        location = /bad {
            asyncx_pipeline;
            asyncx_stage one ok=/svc/fast broken=/svc/broken;
        }
        location = /late {
            asyncx_pipeline;
            asyncx_call_timeout 100ms;
            asyncx_stage one late=/svc/late;
        }
        location = /hang {
            asyncx_pipeline;
            asyncx_call_timeout 60s;
            asyncx_stage one hang=/svc/hang;
        }
        location = /load {
            asyncx_pipeline;
            asyncx_stage one a=/svc/fast b=/svc/fast;
        }
        location = /svc/fast   { asyncx_mock_service delay=5ms echo=off; }
        location = /svc/slow   { asyncx_mock_service delay=120ms echo=off; }
        location = /svc/broken { asyncx_mock_service status=503 echo=off; }
        location = /svc/late   { asyncx_mock_service delay=400ms echo=off; }
        location = /svc/hang   { asyncx_mock_service delay=60s echo=off; }

        location = /hash {
            asyncx_thread_pools io=prom_hash cpu=prom_hash;
            asyncx_pbkdf2_iterations 1000;
            asyncx_password_hash;
        }

        location = /stream/search {
            asyncx_thread_pools io=prom_sse cpu=prom_sse;
            asyncx_sse search;
        }

        location = /held {
            asyncx_limit held;
            asyncx_mock_service delay=60s echo=off;
        }
    }
HTTP

my $port = $ngx->port;

sub http {
    my ($method, $path, $body) = @_;
    $body //= '';
    my $res = $ngx->request("$method $path HTTP/1.0\r\nHost: localhost\r\n"
                            . "Content-Length: " . length($body)
                            . "\r\n\r\n$body", 30);
    my ($code) = $res =~ m{^HTTP/1\.\d (\d+)};
    my ($head, $content) = split /\r\n\r\n/, $res, 2;
    return ($code // 0, $content // '', $head // '');
}

# a request sent and left open: the caller closes it
sub hold {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port")
        or die "connect: $!";
    print $s "GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n";
    return $s;
}

my $json = JSON::PP->new;

sub status { my (undef, $b) = http(GET => '/status'); $json->decode($b) }

sub wait_for {
    my ($what, $cond) = @_;
    my $deadline = time + 30;
    while (time < $deadline) {
        return 1 if $cond->(status());
        sleep 0.05;
    }
    fail("timed out waiting for $what");
    return 0;
}

# name{labels} => value, and the raw text
sub scrape {
    my ($code, $body, $head) = http(GET => '/status?format=prometheus');
    is($code, 200, 'scrape: 200');
    like($head, qr{\r\nContent-Type: text/plain; version=0\.0\.4; charset=utf-8\r\n}i,
         'scrape: the text format 0.0.4');
    my %m;
    for (split /\n/, $body) {
        next if /^#/;
        /^([a-z_]+(?:\{.*\})?) (\S+)$/ or do { fail("bad line: $_"); next };
        $m{$1} = $2;
    }
    return (\%m, $body);
}

sub promtool_ok {
    my ($text, $name) = @_;
    my ($fh, $file) = tempfile(UNLINK => 1);
    print $fh $text;
    close $fh;
    my $out = `$promtool check metrics < $file 2>&1`;
    is($? >> 8, 0, "promtool check metrics: $name") or diag($out);
    is($out, '', "promtool: no lint message ($name)");
}

# buckets cumulative, +Inf equal to _count, for every histogram
sub histograms_ok {
    my ($m, $name) = @_;
    my (%last, $bad);
    for my $k (sort { by_le($a) <=> by_le($b) } grep { /_bucket\{/ } keys %$m) {
        my ($series) = $k =~ /^(.*?)_bucket\{(.*),le="[^"]+"\}$/
            ? ("$1\{$2}") : ($k);
        $bad .= "$k decreases\n" if ($last{$series} // 0) > $m->{$k};
        $last{$series} = $m->{$k};
    }
    for my $series (keys %last) {
        my ($base, $labels) = $series =~ /^(.*?)\{(.*)\}$/;
        my $count = $m->{"${base}_count{$labels}"};
        $bad .= "$series: +Inf $last{$series} != count " . ($count // 'none') . "\n"
            unless defined $count && $count == $last{$series};
    }
    is($bad // '', '', "histograms cumulative, +Inf == _count ($name)");
}

sub cmdline {
    open my $fh, '<', "/proc/$_[0]/cmdline" or return '';
    local $/;
    return <$fh> // '';
}

sub slurp_stat {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/stat" or return '0 x 0 0';
    my $line = <$fh> // '0 x 0 0';
    $line =~ s/^\d+ \(.*\) /0 x /s;    # the name may hold spaces
    return $line;
}

sub by_le {
    my ($le) = $_[0] =~ /le="([^"]+)"\}$/;
    return $le eq '+Inf' ? 1e99 : $le;
}

# -- 0: the scrape before any traffic ---------------------------------------

my ($m0, $text0) = scrape();
promtool_ok($text0, 'idle');
ok(Encode::is_utf8(Encode::decode('UTF-8', $text0, Encode::FB_CROAK)),
   'the scrape is valid UTF-8');
is($m0->{'asyncx_pipeline_requests_total{location="/order"}'}, 0,
   'a configured pipeline has its series at 0 before any request');
is($m0->{'asyncx_call_failures_total{location="/bad",call="broken",kind="status"}'},
   0, 'and each call, by failure kind');
is($m0->{'asyncx_pool_tasks_completed_total{pool="prom_hash"}'}, 0,
   'and each thread pool');
is($m0->{'asyncx_streams_started_total{kind="search"}'}, 0,
   'and each stream kind');

# -- 1: known traffic, exact numbers ------------------------------------------

for (1 .. 5) {
    my ($code) = http(POST => '/order', '{}');
    is($code, 200, "order $_: 200");
}
for (1 .. 2) {
    my ($code) = http(POST => '/bad', '{}');
    is($code, 502, "bad $_: 502 (a required call failed)");
}
{
    my ($code) = http(POST => '/late', '{}');
    is($code, 502, 'late: 502 (the call timed out)');
}
for (1 .. 3) {
    my ($code, $body) = http(POST => '/hash', '{"password": "pw"}');
    is($code, 200, "hash $_: 200");
}
my (undef, $events) = http(GET => '/stream/search?keyword=python&data_size=2000');
my $nevents = () = $events =~ /^id: /mg;
ok($nevents > 2, "the stream sent $nevents events");

# the last answers may leave before their request is counted as done
wait_for('every pipeline to be over', sub { $_[0]{pipelines}{active} == 0 });

my ($m1, $text1) = scrape();
promtool_ok($text1, 'after traffic');
histograms_ok($m1, 'after traffic');

my %want = (
    'asyncx_pipeline_requests_total{location="/order"}' => 5,
    'asyncx_pipeline_failed_total{location="/order"}' => 0,
    'asyncx_pipeline_duration_seconds_count{location="/order"}' => 5,
    'asyncx_pipeline_duration_seconds_bucket{location="/order",le="0.1"}' => 0,
    'asyncx_call_requests_total{location="/order",call="fast"}' => 5,
    'asyncx_call_requests_total{location="/order",call="slow"}' => 5,
    'asyncx_call_requests_total{location="/order",call="last"}' => 5,
    'asyncx_call_duration_seconds_count{location="/order",call="slow"}' => 5,
    'asyncx_call_duration_seconds_bucket{location="/order",call="slow",le="0.1"}' => 0,
    'asyncx_call_duration_seconds_bucket{location="/order",call="fast",le="0.001"}' => 0,
    'asyncx_pipeline_requests_total{location="/bad"}' => 2,
    'asyncx_pipeline_failed_total{location="/bad"}' => 2,
    'asyncx_call_failures_total{location="/bad",call="broken",kind="status"}' => 2,
    'asyncx_call_failures_total{location="/bad",call="broken",kind="timeout"}' => 0,
    'asyncx_call_failures_total{location="/bad",call="ok",kind="status"}' => 0,
    'asyncx_call_failures_total{location="/late",call="late",kind="timeout"}' => 1,
    'asyncx_pipeline_failed_total{location="/late"}' => 1,
    'asyncx_call_duration_seconds_bucket{location="/late",call="late",le="0.05"}' => 0,
    'asyncx_pool_tasks_posted_total{pool="prom_hash"}' => 3,
    'asyncx_pool_tasks_completed_total{pool="prom_hash"}' => 3,
    'asyncx_pool_tasks_failed_total{pool="prom_hash"}' => 0,
    'asyncx_pool_tasks_queued{pool="prom_hash"}' => 0,
    'asyncx_pool_tasks_running{pool="prom_hash"}' => 0,
    'asyncx_pool_queue_wait_seconds_count{pool="prom_hash"}' => 3,
    'asyncx_pool_run_seconds_count{pool="prom_hash"}' => 3,
    'asyncx_streams_started_total{kind="search"}' => 1,
    'asyncx_streams_completed_total{kind="search"}' => 1,
    'asyncx_streams_open{kind="search"}' => 0,
    'asyncx_stream_events_total{kind="search"}' => $nevents,
    'asyncx_streams_started_total{kind="transform"}' => 0,
);
for my $k (sort keys %want) {
    is($m1->{$k}, $want{$k}, "after traffic: $k");
}
cmp_ok($m1->{'asyncx_pipeline_duration_seconds_sum{location="/order"}'},
       '>=', 5 * 0.125, 'duration sum: at least the 5 x (120 + 5) ms the mock waited');

# -- 2: under load --------------------------------------------------------------

my $loader = fork // die "fork: $!";
if ($loader == 0) {
    # a client looping on a pipeline until the test ends it
    while (1) { http(POST => '/load', '{}') }
}

my $hang = hold('/hang');
my $stream = hold('/stream/search?keyword=python&data_size=10000000&batch_size=1000');
my $held = hold('/held');
wait_for('the limited request to be in', sub {
    $_[0]{limit_zones}{held}{concurrent}{current} == 1 });
my $waiter = hold('/held');

wait_for('a pipeline, a stream, a slot and a waiter in flight', sub {
    my $s = shift;
    $s->{pipelines}{active} >= 1 && $s->{streams}{active} >= 1
        && $s->{limit_zones}{held}{waiting} == 1
});

my ($before) = scrape();
for my $i (1 .. 5) {
    my ($m, $text) = scrape();
    promtool_ok($text, "under load, scrape $i");
    histograms_ok($m, "under load, scrape $i");
    is($m->{'asyncx_limit_in_flight{zone="held"}'}, 1,
       "scrape $i: the limited request in flight");
    is($m->{'asyncx_limit_waiting{zone="held"}'}, 1,
       "scrape $i: the next one waiting");
    is($m->{'asyncx_streams_open{kind="search"}'}, 1,
       "scrape $i: the stream open");
    cmp_ok($m->{'asyncx_pipelines_active'}, '>=', 1,
           "scrape $i: the held pipeline active");
    sleep 0.2;
}

# the loader's requests move the numbers between scrapes
wait_for('the loader to finish more pipelines', sub {
    my ($m) = scrape();
    $m->{'asyncx_pipeline_duration_seconds_count{location="/load"}'}
        > $before->{'asyncx_pipeline_duration_seconds_count{location="/load"}'} + 3
});

kill 'KILL', $loader;
waitpid $loader, 0;
close $_ for $hang, $stream, $held, $waiter;

wait_for('the held requests to be gone', sub {
    my $s = shift;
    $s->{pipelines}{active} == 0 && $s->{streams}{active} == 0
        && $s->{limit_zones}{held}{concurrent}{current} == 0
        && $s->{limit_zones}{held}{waiting} == 0
});

my ($m2, $text2) = scrape();
promtool_ok($text2, 'after the load');
histograms_ok($m2, 'after the load');
is($m2->{'asyncx_pipeline_aborted_total{location="/hang"}'}, 1,
   'the held pipeline counted aborted');
is($m2->{'asyncx_streams_aborted_total{kind="search"}'}, 1,
   'the held stream counted aborted');
is($m2->{'asyncx_streams_open{kind="search"}'}, 0, 'no stream open');
is($m2->{'asyncx_limit_in_flight{zone="held"}'}, 0, 'no limited request in');
cmp_ok($m2->{'asyncx_limit_admitted_total{zone="held"}'}, '>=', 1,
       'the zone admitted the held request');

# -- 3: a reload keeps the numbers; a killed worker's stream is not open -----

kill 'HUP', $ngx->pid;
wait_for('the new workers after the reload', sub {
    grep { /reconfiguring/ } $ngx->error_log });
my ($m3) = scrape();
is($m3->{'asyncx_pipeline_requests_total{location="/order"}'}, 5,
   'after a reload: the pipeline count is kept');
is($m3->{'asyncx_pool_run_seconds_count{pool="prom_hash"}'}, 3,
   'after a reload: the histogram is kept');

$stream = hold('/stream/search?keyword=python&data_size=10000000&batch_size=1000');
wait_for('a stream open', sub { $_[0]{streams}{active} >= 1 });
my ($m4) = scrape();
is($m4->{'asyncx_streams_open{kind="search"}'}, 1, 'one stream open');

# the master's new workers, by their parent: this test's own processes
# (the old ones are told to shut down, then say so in their title)
sub new_workers {
    return grep { (split ' ', slurp_stat($_))[3] == $ngx->pid
                  && cmdline($_) !~ /shutting down/ }
           map { m{/proc/(\d+)/stat} ? $1 : () } glob '/proc/[0-9]*/stat';
}
my @workers;
wait_for('the old workers to leave or say they are shutting down', sub {
    @workers = new_workers();
    @workers == 2 });
is(scalar @workers, 2, 'two workers') or diag(map { "$_: " . cmdline($_) . "\n" } @workers);
kill 'KILL', @workers;
close $stream;

# a killed worker's numbers are dropped by the next look once the master
# has reaped it (until then kill(pid, 0) still finds it): poll for that
wait_for('the killed workers\' streams dropped',
         sub { $_[0] && $_[0]{streams}{active} == 0 });
my ($m5) = scrape();
is($m5->{'asyncx_streams_open{kind="search"}'}, 0,
   'the killed worker\'s stream is no longer counted as open');
is($m5->{'asyncx_streams_started_total{kind="search"}'},
   $m4->{'asyncx_streams_started_total{kind="search"}'},
   'the counters are kept');

$ngx->stop;
my @bad = grep { /\[(alert|crit|emerg)\]/ && !/exited on signal 9$/ }
          $ngx->error_log;
is("@bad", '', 'no alert in the error log but the two workers killed');

done_testing;
