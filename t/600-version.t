# One version everywhere: src/ngx_http_asyncx_version.h is the source;
# debian/changelog (the package's version), the first entry of CHANGES
# and what asyncx_status reports must name the same one.  The .deb's
# own name and control field are checked by t/610-package.t.
# Runs its own nginx on TEST_NGINX_PORT + 6 (t/lib/Asyncx/OwnNginx.pm).

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use JSON::PP;
use Asyncx::OwnNginx;

sub slurp {
    my ($path) = @_;
    open my $fh, '<', $path or die "$path: $!";
    local $/;
    return <$fh>;
}

my ($version) = slurp('src/ngx_http_asyncx_version.h')
    =~ /^#define NGX_HTTP_ASYNCX_VERSION\s+"([^"]+)"/m;

like($version // '', qr/^\d+\.\d+\.\d+$/,
     'the header defines NGX_HTTP_ASYNCX_VERSION as x.y.z');

# the first line: "libnginx-mod-http-asyncx (0.1.0-1) bookworm; ..."
my ($pkg, $upstream, $revision) = slurp('debian/changelog')
    =~ /\A(\S+) \(([^)-]+)-(\d+)\) /;
is($pkg, 'libnginx-mod-http-asyncx', 'debian/changelog names the package');
is($upstream, $version,
   'debian/changelog upstream version is the header version');

my ($changes_version) = slurp('CHANGES')
    =~ /\A\s*Changes with asyncx (\S+)\s+\d{1,2} \w{3} \d{4}\n/;
is($changes_version, $version, 'the first CHANGES entry is the version');

is(`make -s --no-print-directory print-version`, "$version\n",
   'the Makefile reads the same version');
like(`make -s --no-print-directory print-deb`,
     qr{/libnginx-mod-http-asyncx_\Q$version\E-\Q$revision\E_\w+\.deb\n\z},
     'make deb names the package file after that version');

SKIP: {
    skip 'TEST_NGINX_LOAD_MODULES is not set', 1
        unless Asyncx::OwnNginx::module_so();

    my $ngx = Asyncx::OwnNginx->new(offset => 6, name => 'version',
        http => <<'HTTP');
    server {
        listen 127.0.0.1:$PORT;
        location = /asyncx/status { asyncx_status; }
    }
HTTP

    my ($code, $body) = $ngx->get('/asyncx/status');
    my $status = eval { decode_json($body) } // {};
    is($status->{version}, $version, 'asyncx_status reports the version')
        or diag("$code $body");
    $ngx->stop;
}

done_testing;
