# asyncx_pipeline in front of a backend that misbehaves at the byte level
# (a Perl server the test controls, where nginx cannot play the part):
# an answer cut short (Content-Length or chunked), an answer that is no
# HTTP at all; and what a client sends that must not change the calls or
# the answer: conditional headers, headers that describe its own body,
# control characters in a call's evaluated URI.  Found by the thirteenth
# session's hostile review; each case failed before its fix.
#
# Deterministic: the backend answers each request at once and counts
# them; nothing waits on time.  nginx on TEST_NGINX_PORT + 6, the backend
# on TEST_NGINX_PORT + 9.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use JSON::PP ();
use IO::Socket::INET;
use Asyncx::Backend;
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $bport = ($ENV{TEST_NGINX_PORT} || 1984) + 9;

# --- the backend: one process, one connection at a time ------------------

my $backend = Asyncx::Backend->start($bport, sub {
    my ($c, $head, $body, $target, $path) = @_;

    my $json = 'application/json';
    if ($path eq '/cut') {
        print $c "HTTP/1.1 200 OK\r\nContent-Type: $json\r\n"
                 . "Content-Length: 7\r\nConnection: close\r\n\r\n123";
    } elsif ($path eq '/cut-chunked') {
        print $c "HTTP/1.1 200 OK\r\nContent-Type: $json\r\n"
                 . "Transfer-Encoding: chunked\r\nConnection: close\r\n"
                 . "\r\n3\r\n123\r\n";
    } elsif ($path eq '/not-http') {
        print $c "SSH-2.0-OpenSSH_9.2\r\n";
    } elsif ($path eq '/close') {
        # closes before a byte of its answer
    } elsif ($path eq '/upgrade') {
        print $c "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 . "Connection: upgrade\r\n\r\n" . '{"a":1}';
    } elsif ($path eq '/headers') {
        # the header names the call arrived with, as a JSON array
        my @names = map { /^([^:]+):/ ? lc $1 : () }
                    split /\r\n/, $head;
        my $out = JSON::PP->new->canonical->encode([sort @names]);
        print $c "HTTP/1.1 200 OK\r\nContent-Type: $json\r\n"
                 . 'Content-Length: ' . length($out)
                 . "\r\nConnection: close\r\n\r\n$out";
    } else {
        print $c "HTTP/1.1 200 OK\r\nContent-Type: $json\r\n"
                 . "Content-Length: 8\r\nConnection: close\r\n\r\n"
                 . '{"ok":1}';
    }
});

sub asked { $backend->asked(@_) }

my $ngx = Asyncx::OwnNginx->new(offset => 6, name => 'pipeline-faults',
    workers => 1, http => <<"HTTP");
    server {
        listen 127.0.0.1:\$PORT;

        location /up/ {
            internal;
            proxy_http_version 1.1;
            proxy_pass http://127.0.0.1:$bport/;
        }

        location = /cut {
            asyncx_pipeline;
            asyncx_stage s c=/up/cut ok=/up/ok;
            asyncx_call_idempotent c retries=1;
        }
        location = /cut-chunked {
            asyncx_pipeline;
            asyncx_stage s c=/up/cut-chunked;
        }
        location = /not-http {
            asyncx_pipeline;
            asyncx_stage s c=/up/not-http;
        }
        location = /close {
            asyncx_pipeline;
            asyncx_stage s c=/up/close;
        }
        location = /upgrade {
            asyncx_pipeline;
            asyncx_stage s c=/up/upgrade;
        }
        location = /headers {
            asyncx_pipeline;
            asyncx_stage s h=/up/headers;
        }
        location = /uri {
            asyncx_pipeline;
            asyncx_pipeline_server_timing on;
            asyncx_stage s u=/up/\$http_x_path ok=/up/ok;
        }
        location = /leave {
            asyncx_pipeline;
            asyncx_stage s slow=/slow;
        }
        location = /slow {
            internal;
            asyncx_mock_service name=slow delay=60s;
        }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

my $json = JSON::PP->new;

sub order {
    my ($path, $headers) = @_;
    my $doc = '{"order": 1}';
    my $raw = $ngx->request("POST $path HTTP/1.0\r\nHost: x\r\n"
                            . "Content-Type: application/json\r\n"
                            . ($headers // '')
                            . 'Content-Length: ' . length($doc) . "\r\n\r\n"
                            . $doc, 10);
    my ($code) = $raw =~ m{^HTTP/1\.\d (\d+)};
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my $answer = eval { $json->decode($body // '') };
    return ($code // 0, $answer, $head // '', $body // '');
}

# --- an answer cut short is an error, never a success ---------------------

my ($code, $a, $head, $body) = order('/cut');
is($code, 502, 'Content-Length 7, 3 bytes, closed: the required call failed');
is_deeply($a && [@{ $a->{calls}{c} }{qw(outcome status error attempts)}],
          ['error', 502, 'the answer was cut short after 2 attempts', 2],
          '... as an error (502, cut short), retried as idempotent')
    or diag($body);
is(asked('/cut'), 2, 'the backend was asked twice');
is($a && $a->{calls}{ok}{outcome}, 'ok', 'the other call is fine');

($code, $a, $head, $body) = order('/cut-chunked');
is($code, 502, 'a chunked answer without its last chunk: the call failed');
is_deeply($a && [@{ $a->{calls}{c} }{qw(outcome status error)}],
          ['error', 502, 'the answer was cut short'],
          '... cut short') or diag($body);

# --- an answer that is no HTTP: 502, never status 0 -----------------------

($code, $a, $head, $body) = order('/not-http');
is($code, 502, 'no HTTP answer: the call failed');
is_deeply($a && [@{ $a->{calls}{c} }{qw(outcome status error)}],
          ['error', 502, 'no valid HTTP answer'],
          '... with status 502, not 0') or diag($body);

# --- no answer at all: nginx's 502 is an error, not the backend's status ---

($code, $a, $head, $body) = order('/close');
is($code, 502, 'a backend that closes before its header: the call failed');
is_deeply($a && [@{ $a->{calls}{c} }{qw(outcome status error)}],
          ['error', 502, 'no answer from the backend'],
          '... as an error, not "service answered 502"') or diag($body);

# --- the client's Upgrade does not make a call switch protocols ------------

for my $h ('', "Upgrade: websocket\r\nConnection: upgrade\r\n") {
    ($code, $a, $head, $body) = order('/upgrade', $h);
    is_deeply($a && [@{ $a->{calls}{c} }{qw(outcome status)}],
              ['status', 101],
              '101 to a call, client Upgrade ' . ($h ? 'sent' : 'absent')
              . ': a status failure either way') or diag($body);
}
is(scalar(grep { /upgrade in subrequest/ } $ngx->error_log), 0,
   '... nginx never tried to switch protocols in a call');

# --- conditional headers do not replace the answer -------------------------

for my $h ('If-Match: "v1"', 'If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT',
           'If-None-Match: *', 'If-None-Match: "x"',
           'If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT')
{
    ($code, $a, $head, $body) = order('/headers', "$h\r\n");
    is($code, 200, "$h: 200 (the calls ran), not 412 or 304");
    ok($a && ref $a->{calls}{h}{result} eq 'ARRAY', '... with the JSON answer')
        or diag($body);
}

# --- what describes the client's body stays with it ------------------------

($code, $a, $head, $body) = order('/headers',
    "Content-Encoding: gzip\r\nContent-Range: bytes 0-9/10\r\n"
    . "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\r\n"
    . "Digest: sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\r\n"
    . "Content-Digest: sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:\r\n"
    . "Repr-Digest: sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:\r\n"
    . "Trailer: Expires\r\nX-Kept: 1\r\n");
is($code, 200, 'a client body with Content-Encoding etc.: 200');
my %got = map { $_ => 1 } @{ ($a && $a->{calls}{h}{result}) || [] };
is_deeply([grep { $got{$_} } qw(content-encoding content-range content-md5
                                   digest content-digest repr-digest trailer)],
          [], 'none of its body headers reached the call') or diag($body);
ok($got{'x-kept'} && $got{'content-length'} && $got{'content-type'},
   'other headers did, and the call\'s own body headers') or diag($body);

# --- a call's URI with control characters: escaped in the log --------------

my $before = () = $ngx->error_log;
($code, $a, $head, $body) = order('/uri', "X-Path: a\x1b[31mRED\x1b[0m\x07\x7f\tb\r\n");
is($code, 400, 'an unsafe evaluated URI: 400');
my @all = $ngx->error_log;
my @lines = @all[$before .. $#all];
my @uri = grep { /call "u" failed: invalid URI/ } @lines;
is(scalar @uri, 1, 'one log line for the call') or diag(@lines);
like($uri[0] // '', qr{invalid URI "/up/a\\x1b\[31mRED\\x1b\[0m\\x07\\x7f\\x09b" \(invalid_uri\)},
     '... with its control characters as \\xNN');
is(scalar(grep { /[\x00-\x08\x0b-\x1f\x7f]/ } @lines), 0,
   'no raw control character in the log');
is($a && $a->{calls}{u}{error},
   "invalid URI \"/up/a\\x1b[31mRED\\x1b[0m\\x07\\x7f\\x09b\"",
   'the answer says the same');

# --- a call never issued has no Server-Timing entry ------------------------

my ($st) = $head =~ /\r\nServer-Timing: ([^\r\n]*)/i;
like($st // '', qr/\Aok;dur=[\d.]+, total;dur=[\d.]+\z/,
     'Server-Timing: the call that ran and the total, not the one never '
     . 'issued') or diag($head);

# --- a call in flight when its client leaves ends in the series: abandoned -

{
    my $doc = '{"order": 1}';
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $ngx->port,
                                  Timeout => 5) or die "connect: $!";
    print $s "POST /leave HTTP/1.0\r\nHost: x\r\n"
             . "Content-Type: application/json\r\n"
             . 'Content-Length: ' . length($doc) . "\r\n\r\n$doc";
    ok($ngx->wait_for('the pipeline in flight', sub {
           ($ngx->json('/asyncx/status') // {})->{pipelines}{active} }),
       'the order is in flight');
    close $s;
    ok($ngx->wait_log(qr/aborted in stage 1 of 1, 1 calls in flight/),
       '... its client left');

    my (undef, $prom) = $ngx->get('/asyncx/status?format=prometheus');
    my %n = map { /^(asyncx_call_\w+)\{location="\/leave",call="slow"(?:,kind="(\w+)")?\} (\d+)$/
                  ? (($2 ? "$1/$2" : $1) => $3) : () }
            split /\n/, $prom;
    is_deeply([@n{qw(asyncx_call_requests_total
                     asyncx_call_failures_total/abandoned
                     asyncx_call_duration_seconds_count)}],
              [1, 1, 1],
              'started 1, failed 1 as abandoned, 1 duration observed')
        or diag(join "\n", grep { /call="slow"/ } split /\n/, $prom);
}

# --- and the counters ------------------------------------------------------

my $p = $ngx->json('/asyncx/status') // {};
is($p->{pipelines}{active}, 0, 'no pipeline left in flight');
is(scalar(grep { /\[(alert|crit|emerg)\]|signal/ } $ngx->error_log), 0,
   'no alert, crit, emerg or signal line');

$ngx->stop;

done_testing();
