# Conditional request headers (If-None-Match, If-Match,
# If-Unmodified-Since, If-Modified-Since) on every content handler of the
# module.  Its answers are made per request and carry no validator, so
# nginx's not_modified filter would always turn them into a 304 or a 412:
# a stream then still wrote its events after the 304's header (the next
# answer on the connection started inside them), and a file write, a hash
# or a parse was done, then reported as not done.  Each handler must
# answer normally, and the connection must carry the next answer intact:
# each conditional request is sent with a status request behind it in
# the same write, and both answers are framed and parsed.
#
# Found by the nineteenth session's hostile review; every case failed
# before the fix (304 or 412).  Its own nginx on TEST_NGINX_PORT + 2.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use JSON::PP ();
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $ngx = Asyncx::OwnNginx->new(offset => 2, name => 'conditional',
    http => <<'HTTP');
    asyncx_limit_zone zone=z:1m rate=100r/s;
    server {
        listen 127.0.0.1:$PORT;

        location = /stream/search { asyncx_sse search; }
        location = /ndjson/transform {
            asyncx_sse_source file=a.ndjson root=$DIR;
            asyncx_sse transform;
            asyncx_sse_query fields=id;
        }
        location = /files/write {
            asyncx_file_root $DIR;
            asyncx_file_write;
        }
        location = /auth/hash {
            asyncx_pbkdf2_iterations 1000;
            asyncx_password_hash;
        }
        location = /parse/json { asyncx_json_parse; }
        location = /regex/match { asyncx_regex_match; }
        location = /mock { asyncx_mock_service 'json={"ok": true}'; }
        location = /zone { asyncx_limit_zone_status z; }
        location = /page { asyncx_status_page /asyncx/stream; }
        location = /asyncx/status { asyncx_status; }
    }
HTTP

my $dir = $ngx->dir;

open my $fh, '>', "$dir/a.ndjson" or die $!;
print $fh map { "{\"id\": $_}\n" } 1 .. 30;
close $fh;

my @targets = (
    ['GET',  '/stream/search?keyword=python&data_size=300', '', 'stream'],
    ['GET',  '/ndjson/transform', '', 'stream'],
    ['POST', '/files/write?path=w.txt', 'written', 'json'],
    ['POST', '/auth/hash', '{"password": "s3cret"}', 'json'],
    ['POST', '/parse/json', '[1, 2, 3]', 'json'],
    ['POST', '/regex/match', '{"pattern": "a+", "texts": ["caat"]}', 'json'],
    ['POST', '/mock', '{}', 'json'],
    ['GET',  '/zone', '', 'json'],
    ['GET',  '/page', '', 'html'],
    ['GET',  '/asyncx/status', '', 'json'],
);

my @conditions = (
    'If-None-Match: *',
    'If-None-Match: "x"',
    'If-Match: "abc"',
    'If-Unmodified-Since: Thu, 01 Jan 1970 00:00:00 GMT',
    'If-Modified-Since: Thu, 01 Jan 2099 00:00:00 GMT',
);

# one answer off the front of $raw: (status, headers, body, rest)
sub take_answer {
    my ($raw) = @_;

    my ($head, $rest) = split /\r\n\r\n/, $raw, 2;
    return (0, '', '', '') unless defined $rest;

    my ($code) = $head =~ m{^HTTP/1\.1 (\d+)};
    my $body = '';

    if ($head =~ /^Transfer-Encoding: chunked/mi) {
        while ($rest =~ s/^([0-9a-fA-F]+)\r\n//) {
            my $n = hex $1;
            last if $n == 0 && $rest =~ s/^\r\n//;
            $body .= substr($rest, 0, $n, '');
            $rest =~ s/^\r\n// or return ($code, $head, $body, "BAD CHUNK$rest");
        }
    } elsif ($head =~ /^Content-Length: (\d+)/mi) {
        $body = substr($rest, 0, $1, '');
    }

    return ($code // 0, $head, $body, $rest);
}

my $n = 0;

for my $t (@targets) {
    my ($method, $path, $body, $kind) = @$t;

    for my $cond (@conditions) {
        my $what = "$method $path, $cond";

        # the file write's content differs each time: the write is seen
        my $sent = $kind eq 'json' && $path =~ /write/ ? "$body " . $n++ : $body;

        my $raw = $ngx->request(
            "$method $path HTTP/1.1\r\nHost: localhost\r\n$cond\r\n"
            . 'Content-Length: ' . length($sent) . "\r\n\r\n$sent"
            . "GET /asyncx/status HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\n\r\n", 30);

        my ($code, $head, $answer, $rest) = take_answer($raw);
        is($code, 200, "$what: 200, not 304 or 412") or diag($head);

        if ($kind eq 'json') {
            my $d = eval { JSON::PP->new->decode($answer) };
            ok(ref $d eq 'HASH' && !exists $d->{error},
               "$what: the handler's JSON answer") or diag($answer);
        } elsif ($kind eq 'stream') {
            like($answer, qr/"type": ?"complete"/,
                 "$what: the whole stream, up to its complete event");
        } else {
            like($answer, qr/<html/i, "$what: the page");
        }

        if ($path =~ /write/) {
            open my $in, '<', "$dir/w.txt" or die $!;
            local $/;
            is(scalar <$in>, $sent, "$what: the file holds what was sent");
        }

        my ($code2, $head2, $answer2, $rest2) = take_answer($rest);
        my $status = eval { JSON::PP->new->decode($answer2) };
        ok($code2 == 200 && ref $status eq 'HASH' && $status->{module}
           && $rest2 eq '',
           "$what: the next answer on the connection is intact")
            or diag(substr($rest, 0, 300));
    }
}

is(scalar(grep { /\[(alert|crit|emerg)\]|exited on signal/ } $ngx->error_log),
   0, 'no alert, crit or crash in the error log');

$ngx->stop;

done_testing();
