# A client's value quoted in an error's log line ("...") cannot end its
# quote: its '"' and '\' are \x22 and \x5c, as its control characters
# and bytes that are not UTF-8 are \xNN, so the fields after it (the
# status, nginx's client, request, host) are the server's.  The JSON
# answer stays valid and says the same; an ordinary value's answer is
# unchanged, byte for byte.  Its own nginx on TEST_NGINX_PORT + 8.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use JSON::PP ();
use Asyncx::OwnNginx;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $ngx = Asyncx::OwnNginx->new(offset => 8, name => 'quoted', http => <<'HTTP');
    server {
        listen 127.0.0.1:$PORT;
        server_name localhost;

        location = /files/read {
            asyncx_file_root html;
            asyncx_file_read;
        }

        location = /status {
            asyncx_status;
        }

        location = /stream {
            asyncx_sse_source file=$arg_file root=html;
            asyncx_sse search;
        }

        location = /p {
            asyncx_pipeline;
            asyncx_pipeline_mode_arg on;
            asyncx_stage s a=/a;
        }

        location = /a {
            return 200 '{}';
        }

        location = /p2 {
            asyncx_pipeline;
            asyncx_stage s a=/a/$arg_x;
        }

        location /a/ {
            return 200 '{}';
        }
    }
HTTP

{
    open my $fh, '>', $ngx->dir . '/html/a.ndjson' or die $!;
    print $fh qq({"a": 1}\n);
    close $fh;
}

my $json = JSON::PP->new->utf8;

# [what, raw request, status, the message (the JSON's "error", the log
#  line's text before " (status N)"), log level]
my @cases = (
    ['/files/read: a path with ", \\, NUL and a byte not UTF-8',
     "GET /files/read?path=a%22b%5Cc%00d%FF HTTP/1.0\r\nHost: localhost\r\n\r\n",
     403,
     'path "a\x22b\x5cc\x00d\xff" is not allowed: absolute paths, "..", '
     . 'NUL bytes and backslashes are refused'],
    ['/files/read: a path with ", a control and a byte not UTF-8',
     "GET /files/read?path=x%22%22y%01%FF HTTP/1.0\r\nHost: localhost\r\n\r\n",
     400,
     'path "x\x22\x22y\x01\xff" is not valid UTF-8'],
    ['/files/read: a missing file with " in its name (in the thread)',
     "GET /files/read?path=x%22%20y.txt HTTP/1.0\r\nHost: localhost\r\n\r\n",
     404,
     'file read: "x\x22 y.txt" not found'],
    ['/status: a format with " and \\',
     "GET /status?format=a\"b\\c%00%FF HTTP/1.0\r\nHost: localhost\r\n\r\n",
     400,
     'invalid format "a\x22b\x5cc\x00\xff", use json or prometheus'],
    ['/stream: a Last-Event-ID with ", \\ and a byte not UTF-8',
     "GET /stream?file=a.ndjson&keyword=a HTTP/1.0\r\nHost: localhost\r\n"
     . "Last-Event-ID: 1\"b\\c\xff\r\n\r\n",
     400,
     'invalid Last-Event-ID "1\x22b\x5cc\xff"'],
    ['/stream: a file with ", \\, NUL and a byte not UTF-8',
     "GET /stream?file=a%22b%5Cc%00d%FF&keyword=a HTTP/1.0\r\n"
     . "Host: localhost\r\n\r\n",
     403,
     'path "a\x22b\x5cc\x00d\xff" is not allowed: absolute paths, "..", '
     . 'NUL bytes and backslashes are refused'],
    ['/stream: a missing file with " in its name (in the io pool)',
     "GET /stream?file=x%22y.ndjson&keyword=a HTTP/1.0\r\n"
     . "Host: localhost\r\n\r\n",
     404,
     'asyncx_sse: "x\x22y.ndjson" not found'],
    ['pipeline: a mode with " and \\',
     "GET /p?mode=a\"b\\c HTTP/1.0\r\nHost: localhost\r\n\r\n",
     400,
     'invalid mode "a\x22b\x5cc", use parallel or sequential'],
);

for my $c (@cases) {
    my ($what, $raw, $status, $msg) = @$c;

    my @before = $ngx->error_log;
    my ($code, $body) = $ngx->parse($ngx->request($raw));
    my ($request) = $raw =~ /^([^\r]*)\r\n/;

    is($code, $status, "$what: status");

    my $doc = eval { $json->decode($body) };
    ok($doc, "$what: the answer is JSON") or diag($@, $body);
    is_deeply($doc, { error => $msg, status => $status },
              "$what: the answer's message") or diag($body);

    my @new;
    $ngx->wait_for("$what: the log line", sub {
        my @all = $ngx->error_log;
        @new = @all[scalar(@before) .. $#all];
        return grep { /\(status $status\)/ } @new;
    });

    my @lines = grep { /\(status $status\)/ } @new;
    is(scalar(@lines), 1, "$what: one log line") or diag(@new);
    like($lines[0] // '',
         qr/^\S+ \S+ \[info\] \d+#\d+: \*\d+ asyncx: \Q$msg\E \(status $status\), client: 127\.0\.0\.1, server: localhost, request: "\Q$request\E", host: "localhost"\n\z/,
         "$what: the exact log line") or diag(@lines);
}

# a call's URI made of the client's argument: the failed call's error in
# the pipeline's answer and its warn line
{
    my $what = 'pipeline: a call URI with " and \\';
    my @before = $ngx->error_log;
    my ($code, $body) = $ngx->parse($ngx->request(
        "GET /p2?x=a/../..\"\\ HTTP/1.0\r\nHost: localhost\r\n\r\n"));
    my $msg = 'invalid URI "/a/a/../..\x22\x5c"';

    is($code, 400, "$what: status");
    my $doc = eval { $json->decode($body) };
    ok($doc, "$what: the answer is JSON") or diag($@, $body);
    is($doc && $doc->{calls}{a}{error}, $msg, "$what: the call's error")
        or diag($body);

    $ngx->wait_log(qr/call "a" failed/);
    my @all = $ngx->error_log;
    my @lines = grep { /call "a" failed: / } @all[scalar(@before) .. $#all];
    is(scalar(@lines), 1, "$what: one log line") or diag(@lines);
    like($lines[0] // '',
         qr/^\S+ \S+ \[warn\] \d+#\d+: \*\d+ asyncx pipeline: call "a" failed: \Q$msg\E \(invalid_uri\), client: 127\.0\.0\.1, server: localhost, request: "GET \/p2\?x=a\/\.\.\/\.\."\\ HTTP\/1\.0", host: "localhost"\n\z/,
         "$what: the exact log line") or diag(@lines);
}

# an ordinary value: the answer's bytes are those of before
my ($code, $body) = $ngx->get('/files/read?path=/etc/passwd');
is($code, 403, 'an ordinary value: 403');
is($body, '{"error": "path \"/etc/passwd\" is not allowed: absolute paths, '
          . '\"..\", NUL bytes and backslashes are refused", "status": 403}'
          . "\n",
   'an ordinary value: the answer byte for byte');

$ngx->stop;

done_testing();
