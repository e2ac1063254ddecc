# A real browser reads the pipeline's Server-Timing header: headless
# Chromium (Debian's package) fetches a pipeline whose calls have Korean
# names and writes what PerformanceServerTiming shows into the DOM.
# Browsers read a header's bytes as Latin-1, so a name is percent-encoded
# in desc and decodeURIComponent() must give it back whole (raw UTF-8
# showed as mojibake).  Own nginx on TEST_NGINX_PORT + 3.

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

my $ngx = Asyncx::OwnNginx->new(offset => 3, name => 'timing',
    dirs => ['profile'], http => <<'HTTP');
    types { text/html html; }
    server {
        listen 127.0.0.1:$PORT;
        root $DIR/html;
        location = /favicon.ico { return 204; }
        location = /p {
            asyncx_pipeline;
            asyncx_pipeline_server_timing on;
            asyncx_stage one user=/svc/user 가격=/svc/price
                             재고=/svc/broken;
            asyncx_call_optional 재고;
        }
        location = /svc/user {
            asyncx_mock_service name=user 'json={"id": 1}';
        }
        location = /svc/price {
            asyncx_mock_service name=price 'json={"p": 2}';
        }
        location = /svc/broken {
            return 500;
        }
    }
HTTP

my ($dir, $port) = ($ngx->dir, $ngx->port);

my $fh;
open $fh, '>', "$dir/html/timing.html" or die $!;
print $fh <<'HTML';
<!doctype html>
<html><head><meta charset="utf-8"><title>asyncx Server-Timing</title></head>
<body><pre id="out">pending</pre>
<script>
fetch('/p', { method: 'POST' }).then(function (r) {
  return r.text().then(function () { return r.status; });
}).then(function (status) {
  setTimeout(function () {
    var e = performance.getEntriesByType('resource').filter(function (x) {
      return /\/p$/.test(x.name);
    })[0];
    var parts = e.serverTiming.map(function (t) {
      return t.name + '|' + decodeURIComponent(t.description) + '|'
             + (t.duration >= 0 ? 'dur' : 'none');
    });
    document.getElementById('out').textContent =
      'status=' + status + ' ' + parts.join(' ; ');
  }, 100);
}).catch(function (x) {
  document.getElementById('out').textContent = 'error ' + x;
});
</script></body></html>
HTML
close $fh;

my $dom = Asyncx::Browser::dump_dom("http://127.0.0.1:$port/timing.html",
                                    "$dir/profile", 10000);
my ($out) = $dom =~ m{<pre id="out">([^<]*)</pre>};

is($out, 'status=200 user||dur ; call-2|가격|dur ; '
         . 'call-3|재고 (status 500)|dur ; total||dur',
   'Chromium shows each call, the Korean names decoded whole');

# the header itself is ASCII: what any client reads byte for byte
my $raw = `curl -s -D - -o /dev/null -X POST http://127.0.0.1:$port/p`;
my ($st) = $raw =~ /\r\nServer-Timing: ([^\r\n]*)/i;
like($st, qr/^user;dur=\d+\.\d\d, call-2;desc="%EA%B0%80%EA%B2%A9";dur=\d+\.\d\d, call-3;desc="%EC%9E%AC%EA%B3%A0 \(status 500\)";dur=\d+\.\d\d, total;dur=\d+\.\d\d$/,
     'the names are percent-encoded');

$ngx->stop;

my @bad = grep { /\[(error|alert|crit|emerg)\]/ } $ngx->error_log;
is(scalar @bad, 0, 'no error lines in the log') or diag @bad;

done_testing();
