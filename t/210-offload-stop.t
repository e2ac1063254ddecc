# A client that leaves while its regex job RUNS: the matching loop looks
# at the job's cancel mark after every text (where it checks
# asyncx_regex_time_limit) and stops; the job is counted as cancelled,
# not failed nor completed, one info line says so, and no answer is
# built for the departed client.
#
# Deterministic without racing the machine: the request asks for ten
# million data set records against a pattern that backtracks for about
# half a millisecond a record (more than an hour of matching; the time
# limit is an hour), so the job is still running, whatever the
# machine's speed, when the test sees it in the thread (the pool's
# "running" gauge) and closes the connection; the test then waits for
# the stop, never for a time.  Its own nginx (master + one worker) on
# TEST_NGINX_PORT + 6.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $ngx = Asyncx::OwnNginx->new(offset => 6, name => 'offload-stop',
    workers => 1, main => 'thread_pool tiny threads=1;', http => <<'HTTP');
    asyncx_thread_pools io=tiny cpu=tiny;

    server {
        listen 127.0.0.1:$PORT;

        location = /regex/match {
            asyncx_regex_max_texts 10000000;
            asyncx_regex_time_limit 1h;
            asyncx_regex_match_limit 4294967295;
            asyncx_regex_match;
        }

        location = /status { asyncx_status; }
    }
HTTP

# a job that was not stopped would run for an hour, and the worker with
# it after its master is gone: no worker of this nginx may outlive the
# test
my @workers = $ngx->workers;

END {
    for my $pid (@workers) {
        open my $fh, '<', "/proc/$pid/cmdline" or next;
        kill 'KILL', $pid if (<$fh> // '') =~ /^nginx: worker/;
    }
}

sub pool { (($ngx->json('/status') // {})->{pools}{tiny}) // {} }

sub log_count { my ($re) = @_; scalar grep { $_ =~ $re } $ngx->error_log }

sub post {
    my ($body) = @_;
    return "POST /regex/match HTTP/1.0\r\nHost: localhost\r\n"
           . "Content-Length: " . length($body) . "\r\n\r\n$body";
}

# every record fails, after trying every split of its words among five
# groups
my $slow = '{"pattern": "[a-z0-9: ]*[a-z0-9: ]*[a-z0-9: ]*[a-z0-9: ]*'
           . '[a-z0-9: ]*[!?]", "count": 10000000}';

my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ngx->port,
                              Timeout => 5) or die "connect: $!";
print $c post($slow);

ok($ngx->wait_for('the regex job in the thread', sub {
       my $p = pool();
       ($p->{running} // 0) == 1 && ($p->{queued} // -1) == 0 }),
   'the regex job runs in the pool\'s only thread');

close $c;

my $stopped_re = qr/asyncx executor: task in pool "tiny" stopped after \d+ ms in a thread: its client left/;

ok($ngx->wait_log(qr/client prematurely closed connection/),
   'nginx saw the client leave');
ok($ngx->wait_log($stopped_re, 60),
   'the running job stopped at the next text, with an info line');
ok($ngx->wait_for('an idle pool', sub {
       my $p = pool();
       ($p->{running} // -1) == 0 && ($p->{queued} // -1) == 0 }),
   'the pool\'s thread is free again');

my $p = pool();
is(join(' ', map { "$_=$p->{$_}" } qw(posted completed failed cancelled)),
   'posted=1 completed=0 failed=0 cancelled=1',
   'counted as cancelled, neither completed nor failed');
is(log_count($stopped_re), 1, 'logged once');
is(log_count(qr/asyncx_regex_time_limit|match limit/), 0,
   'not stopped by a limit');

# the worker goes on: a short request is answered
my ($code, $body) = $ngx->parse($ngx->request(
    post('{"pattern": "python", "count": 10000}')));
like("$code $body", qr/^200 \{"pattern":"python","match_count":72,/,
     'a client that stays gets its answer');

$p = pool();
is(join(' ', map { "$_=$p->{$_}" } qw(completed failed cancelled)),
   'completed=1 failed=0 cancelled=1', '... counted as completed');

$ngx->stop;

is(join('', grep { /\[(?:error|alert|crit|emerg)\]/ } $ngx->error_log), '',
   'no error, alert, crit or emerg line');

done_testing();
