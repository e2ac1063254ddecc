# asyncx_pipeline in front of a real backend, against what a client or a
# backend can do to the calls (the fourteenth session's hostile review):
# a variable's value that decodes to '?', '#', '/', '%' (encoded twice),
# a space, CR LF, a dot segment or bytes that are not UTF-8 (it would
# add arguments, segments or header lines to the call, reach a path
# outside the call's through a proxy that sends $uri as it is, or split
# the log); a header value with CR LF; a
# non-2xx answer too large to capture (not "cut short", not retried
# unless 5xx); a broken answer after a 200 status line (502, not 200);
# 205 without a body; an abandoned call's late, oversized answer while
# the pipeline's own answer is being written (the client gets all of it).
#
# Deterministic: the backend answers at once, except /hold, which waits
# for a file the test creates once the client has the answer's first
# bytes; nothing waits on CPU time.  nginx on TEST_NGINX_PORT + 6, the
# backend on TEST_NGINX_PORT + 9.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use IO::Select;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use JSON::PP ();
use File::Temp ();
use Time::HiRes ();
use Asyncx::Backend;
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $bport = ($ENV{TEST_NGINX_PORT} || 1984) + 9;
my $dir = File::Temp::tempdir('asyncx-hostile-calls-XXXXXX', TMPDIR => 1,
                              CLEANUP => 1);

# --- the backend: a process per connection --------------------------------

sub answer {
    my ($c, $status, $type, $body) = @_;
    print $c "HTTP/1.1 $status\r\nContent-Type: $type\r\n"
             . 'Content-Length: ' . length($body)
             . "\r\nConnection: close\r\n\r\n$body";
}

my $backend = Asyncx::Backend->start($bport, sub {
    my ($c, $head, $body, $target, $path) = @_;

    my $json = 'application/json';
    my $page = '<html>' . ('x' x 6000) . '</html>';

    if ($path =~ m{^/echo/}) {
        # the request target and header lines as they came, bytes as
        # Latin-1 characters
        my @lines = split /\r\n/, $head;
        answer($c, '200 OK', $json, JSON::PP->new->ascii->canonical
               ->encode({ target => $target, lines => \@lines }));
    } elsif ($path =~ m{^/nothere/}) {
        answer($c, '404 Not Found', $json, '{"error":"no such thing"}');
    } elsif ($path eq '/big404') {
        answer($c, '404 Not Found', 'text/html', $page);
    } elsif ($path eq '/big500') {
        answer($c, '500 Internal Server Error', 'text/html', $page);
    } elsif ($path eq '/bad-chunked') {
        print $c "HTTP/1.1 200 OK\r\nContent-Type: $json\r\n"
                 . "Transfer-Encoding: chunked\r\nConnection: close\r\n"
                 . "\r\nzz\r\n{\"ok\":1}\r\n0\r\n\r\n";
    } elsif ($path eq '/reset') {
        print $c "HTTP/1.1 205 Reset Content\r\nContent-Length: 0\r\n"
                 . "Connection: close\r\n\r\n";
    } elsif ($path eq '/part') {
        # 3,500 bytes of JSON: twelve of them make an answer far larger
        # than what the client's socket and nginx's take at once
        answer($c, '200 OK', $json, '"' . ('p' x 3498) . '"');
    } elsif ($path eq '/hold') {
        # answers when the test says so, too large for the capture buffer
        my $t0 = time;
        Time::HiRes::sleep(0.01) until -e "$dir/release" || time - $t0 > 30;
        answer($c, '200 OK', $json, '"' . ('h' x 5998) . '"');
    } else {
        answer($c, '200 OK', $json, '{"ok":1}');
    }
}, fork_each => 1);

sub asked { $backend->asked(@_) }

my $ngx = Asyncx::OwnNginx->new(offset => 6, name => 'pipeline-hostile',
    workers => 1, http => <<"HTTP");
    server {
        # small, so that a 40 KB answer to a client that does not read is
        # still being written when the late call answers
        listen 127.0.0.1:\$PORT sndbuf=4k;

        location /up/ {
            internal;
            proxy_http_version 1.1;
            proxy_pass http://127.0.0.1:$bport/;
        }

        # the common idiom that sends the call's \$uri as it is
        location /raw/ {
            internal;
            proxy_pass http://127.0.0.1:$bport\$uri\$is_args\$args;
        }

        location = /var {
            asyncx_pipeline;
            asyncx_stage s e=/up/echo/\$arg_id?q=1;
        }
        # a call that fails: nginx logs its warning with the subrequest
        location = /var-404 {
            asyncx_pipeline;
            asyncx_stage s e=/up/nothere/\$arg_id;
        }
        # a capture may hold segments: the location's pattern shapes it
        location ~ ^/cap/(.*)\$ {
            asyncx_pipeline;
            asyncx_stage s e=/up/echo/\$1;
        }
        # the user name of Basic authentication is the client's too
        location = /var-user {
            asyncx_pipeline;
            asyncx_stage s e=/up/echo/\$remote_user;
        }
        location = /var-raw {
            asyncx_pipeline;
            asyncx_stage s e=/raw/echo/\$arg_id;
        }
        location ~ "(?s)^/order/(?<oid>.*)\$" {
            asyncx_pipeline;
            asyncx_call_set_header X-Order \$oid;
            asyncx_stage s e=/up/echo/h;
        }
        location = /big404 {
            asyncx_pipeline;
            asyncx_stage s a=/up/big404;
            asyncx_call_idempotent a retries=3;
        }
        location = /big500 {
            asyncx_pipeline;
            asyncx_stage s a=/up/big500;
            asyncx_call_idempotent a retries=1;
        }
        location = /bad-chunked {
            asyncx_pipeline;
            asyncx_stage s a=/up/bad-chunked;
        }
        location = /reset {
            asyncx_pipeline;
            asyncx_stage s a=/up/reset;
        }
        # x is held until the test releases it; the twelve parts, each
        # a forked backend process, must answer within the timeout even
        # on a loaded machine (200 ms failed a part there: 502)
        location = /late {
            asyncx_pipeline;
            asyncx_call_timeout 5s;
            asyncx_stage s p0=/up/part p1=/up/part p2=/up/part p3=/up/part
                           p4=/up/part p5=/up/part p6=/up/part p7=/up/part
                           p8=/up/part p9=/up/part p10=/up/part
                           p11=/up/part x=/up/hold;
            asyncx_call_optional x;
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

# --- a variable's value stays one path segment ------------------------------

my ($code, $a, $head, $body) = order('/var?id=42');
is($code, 200, 'an ordinary id: 200');
is($a && $a->{calls}{e}{result}{target}, '/echo/42?q=1',
   '... the backend got /echo/42?q=1') or diag($body);

($code, $a, $head, $body) = order('/var?id=%C3%A9t%C3%A9');
is($code, 200, 'a UTF-8 id, percent-encoded: 200');
is($a && $a->{calls}{e}{result}{target}, '/echo/%C3%A9t%C3%A9?q=1',
   '... the backend got it percent-encoded, once') or diag($body);

($code, $a, $head, $body) = order('/cap/a/b');
is($code, 200, 'a capture with a "/": 200');
is($a && $a->{calls}{e}{result}{target}, '/echo/a/b',
   '... the backend got /echo/a/b') or diag($body);

# "42/delete:pw" in base64: a user name with a "/"
($code, $a, $head, $body) = order('/var-user', "Authorization: Basic NDIvZGVsZXRlOnB3\r\n");
is($code, 400, 'a Basic user name with a "/": 400');
is($a && $a->{calls}{e}{outcome}, 'invalid_uri',
   '... the call is invalid_uri, never issued') or diag($body);

my $echoes = asked('/echo/42') + asked('/echo/%C3%A9t%C3%A9')
             + asked('/echo/a/b');
my $before = () = $ngx->error_log;

($code, $a, $head, $body) = order('/var-404?id=%C3%A9');
is($code, 502, 'a call that fails: 502');
my @all = $ngx->error_log;
ok(grep({ /call "e" failed/ && m{subrequest: "/up/nothere/\x{c3}\x{a9}"} }
        @all[$before .. $#all]),
   '... its warning carries the decoded URI of the call')
    or diag(@all[$before .. $#all]);

for my $case (['42%3Fadmin=1%23', 'a "?" and a "#"'],
              ['42%2Forders%2F99', 'an encoded "/"'],
              ['42/orders/99', 'a "/": more segments than the call names'],
              ['/admin', 'a leading "/"'],
              ['a%5Cb', 'a "\\"'],
              ['42%20HTTP/1.1%0d%0aX-Injected:%20yes', 'CR LF'],
              ['%00', 'a NUL'],
              ['a%20b', 'a space'],
              ['%ff%fe', 'bytes that are not UTF-8'],
              ['%7f', 'DEL'],
              ['%252e%252e/%252e%252e/admin', 'dot segments encoded twice'],
              ['%%2e%%2e/admin', 'a "%" before an escape'],
              ['100%', 'a "%" alone'],
              ['a%2.b', 'an escape that is none'],
              ['.', 'a "." segment'])
{
    my ($id, $what) = @$case;

    for my $loc ('/var', '/var-raw', '/var-404') {
        ($code, $a, $head, $body) = order("$loc?id=$id");
        is($code, 400, "$loc, $what: 400, the client's input");
        is($a && $a->{calls}{e}{outcome}, 'invalid_uri',
           '... the call is invalid_uri, never issued') or diag($body);
    }
}

@all = $ngx->error_log;
my @lines = @all[$before .. $#all];
is(scalar(grep { !/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[/ } @lines), 0,
   'every log line since starts with its time: none was split')
    or diag(@lines);
is(scalar(grep { /[\x00-\x08\x0b-\x1f\x7f]/ } @lines), 0,
   'no raw control character in the log');
is(scalar(grep { !utf8::decode(my $copy = $_) } @lines), 0,
   'every log line is UTF-8');
my @echo = $backend->asked_like('/echo/');
is(asked('/echo/42') + asked('/echo/%C3%A9t%C3%A9') + asked('/echo/a/b'),
   $echoes, 'the backend was asked for nothing more') or diag(@echo);
is(scalar(@echo), 3, '... no other /echo/ path reached it') or diag(@echo);

# --- a header value with CR LF is refused, no call is issued ----------------

my $asked = asked('/echo/h');
my $counts = $ngx->json('/asyncx/status')->{pipelines};
($code, $a, $head, $body) = order('/order/12%0d%0aX-Injected:%20yes');
is($code, 400, 'asyncx_call_set_header evaluated to CR LF: 400');
is($a && $a->{error},
   'the value of header "X-Order" for the calls has a CR, LF or NUL',
   '... saying which header') or diag($body);
is(asked('/echo/h'), $asked, '... and no call was issued');
my $after = $ngx->json('/asyncx/status')->{pipelines};
is_deeply([map { $after->{$_} - $counts->{$_} } qw(total aborted active)],
          [0, 0, 0], '... nor counted as a pipeline, nor as a client that '
          . 'left (it got its 400)');

($code, $a, $head, $body) = order('/order/12');
is($code, 200, 'an ordinary value: 200');
ok($a && grep({ $_ eq 'X-Order: 12' } @{ $a->{calls}{e}{result}{lines} }),
   '... the call got X-Order: 12') or diag($body);

# --- non-2xx answers too large to capture ------------------------------------

($code, $a, $head, $body) = order('/big404');
is($code, 502, 'a complete 404 of 6 KB: the required call failed');
is_deeply($a && [@{ $a->{calls}{a} }{qw(outcome status)}], ['status', 404],
          '... by its status, not "cut short"') or diag($body);
is(asked('/big404'), 1, '... and a 404 is not retried');

($code, $a, $head, $body) = order('/big500');
is_deeply($a && [@{ $a->{calls}{a} }{qw(outcome status attempts)}],
          ['status', 500, 2], 'a complete 500 of 6 KB: by its status, '
          . 'retried once as idempotent') or diag($body);
is(asked('/big500'), 2, '... the backend was asked twice');

# --- a broken answer after "200 OK" is the backend's fault ------------------

($code, $a, $head, $body) = order('/bad-chunked');
is($code, 502, 'invalid chunked framing after 200: the call failed');
is_deeply($a && [@{ $a->{calls}{a} }{qw(outcome status error)}],
          ['error', 502, 'the answer was broken'],
          '... as an error with 502, not 200') or diag($body);

# --- 205 has no content, as 204 ---------------------------------------------

($code, $a, $head, $body) = order('/reset');
is($code, 200, '205 without a body: 200');
is_deeply($a && [@{ $a->{calls}{a} }{qw(outcome status)}], ['ok', 205],
          '... ok') or diag($body);
ok($a && exists $a->{calls}{a}{result} && !defined $a->{calls}{a}{result},
   '... its result is null') or diag($body);

# --- an abandoned call's late, oversized answer while the answer is sent ----

my $c = IO::Socket::INET->new(Proto => 'tcp');
$c->sockopt(SO_RCVBUF, 2048);
$c->connect(Socket::pack_sockaddr_in($ngx->port,
                                     Socket::inet_aton('127.0.0.1')))
    or die "connect: $!";
my $doc = '{"order": 1}';
print $c "POST /late HTTP/1.0\r\nHost: x\r\nContent-Type: application/json\r\n"
         . 'Content-Length: ' . length($doc) . "\r\n\r\n$doc";

# the answer has begun: its first bytes are here, the rest waits for us
my $sel = IO::Select->new($c);
ok($sel->can_read(20), 'the pipeline answered (the held call abandoned)');

$before = () = $ngx->error_log;
open my $rel, '>', "$dir/release" or die "$dir/release: $!";
close $rel;

# the late answer reached nginx and was refused as too big
my $seen = 0;
for (1 .. 2000) {
    my @l = $ngx->error_log;
    if (grep { /too big subrequest response/ } @l[$before .. $#l]) {
        $seen = 1;
        last;
    }
    Time::HiRes::sleep(0.01);
}
ok($seen, 'the late answer came while the answer was still being sent');

my $raw = '';
$c->blocking(1);
while (1) {
    last unless $sel->can_read(10);
    my $n = sysread($c, my $buf, 65536);
    last unless $n;
    $raw .= $buf;
}
close $c;

($head, $body) = split /\r\n\r\n/, $raw, 2;
my ($len) = ($head // '') =~ /\r\nContent-Length: (\d+)/i;
like($head // '', qr{^HTTP/1\.1 200}, 'the answer: 200');
ok($len && $len > 40000, '... of about 40 KB') or diag($head);
is(length($body // ''), $len // -1, '... all of it reached the client');
my $late = eval { $json->decode($body // '') };
is($late && $late->{calls}{x}{outcome}, 'timeout',
   '... the held call timed out in it') or diag(substr($body // '', 0, 300));

# --- and everything is at rest ----------------------------------------------

my $p = $ngx->json('/asyncx/status') // {};
is($p->{pipelines}{active}, 0, 'no pipeline left in flight');
is(scalar(grep { /\[(alert|crit|emerg)\]|signal/ } $ngx->error_log), 0,
   'no alert, crit, emerg or signal line');

$ngx->stop;

done_testing();
