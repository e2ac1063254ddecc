# A real browser consumes /stream/search with EventSource: headless
# Chromium (Debian's package) loads a page that counts and parses every
# event and writes the result into the DOM, which --dump-dom prints.
# It runs its own nginx (daemon off) on TEST_NGINX_PORT + 3
# (t/lib/Asyncx/OwnNginx.pm).

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Asyncx::OwnNginx;
use Asyncx::Browser;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $chromium = Asyncx::Browser::chromium();
Asyncx::OwnNginx::skip_all_unless($chromium,
    'chromium is not installed (make deps installs it)');

my $ngx = Asyncx::OwnNginx->new(offset => 3, name => 'browser',
    dirs => ['profile'], main => 'thread_pool sse_cpu threads=2;',
    http => <<'HTTP');
    types { text/html html; }
    asyncx_thread_pools io=sse_cpu cpu=sse_cpu;
    server {
        listen 127.0.0.1:$PORT;
        root $DIR/html;
        location = /favicon.ico { return 204; }
        location = /stream/search { asyncx_sse search; }
    }
HTTP

my ($dir, $port) = ($ngx->dir, $ngx->port);

my $fh;
open $fh, '>', "$dir/html/sse.html" or die $!;
print $fh <<'HTML';
<!doctype html>
<html><head><meta charset="utf-8"><title>asyncx SSE</title></head>
<body><pre id="out">pending</pre>
<script>
var counts = {}, parsed = 0, bad = 0, ids = [];
var es = new EventSource('/stream/search?keyword=python&data_size=10000');
es.onmessage = function (e) {
  var d;
  try { d = JSON.parse(e.data); parsed++; } catch (x) { bad++; return; }
  counts[d.type] = (counts[d.type] || 0) + 1;
  ids.push(+e.lastEventId);
  if (d.type === 'complete' || d.type === 'error') {
    es.close();   /* or EventSource reconnects when the stream ends */
    var inc = ids.every(function (v, i) { return i === 0 || v > ids[i - 1]; });
    document.getElementById('out').textContent =
      'done parsed=' + parsed + ' bad=' + bad + ' match=' + (counts.match || 0) +
      ' progress=' + (counts.progress || 0) + ' complete=' +
      (counts.complete || 0) + ' total_matches=' + d.total_matches +
      ' ids_increasing=' + inc;
  }
};
es.onerror = function () {
  var out = document.getElementById('out');
  if (out.textContent === 'pending') {
    out.textContent = 'error readyState=' + es.readyState;
  }
};
</script></body></html>
HTML
close $fh;

my $dom = Asyncx::Browser::dump_dom("http://127.0.0.1:$port/sse.html",
                                    "$dir/profile", 20000);
my ($out) = $dom =~ m{<pre id="out">([^<]*)</pre>};

is($out, 'done parsed=83 bad=0 match=72 progress=10 complete=1 '
         . 'total_matches=72 ids_increasing=true',
   'Chromium received and parsed every event of the stream');

$ngx->stop;

my @bad = grep { /\[(error|alert|crit|emerg)\]/ } $ngx->error_log;
is(scalar @bad, 0, 'no error lines in the log') or diag @bad;

done_testing();
