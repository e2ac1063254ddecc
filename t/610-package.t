# The Debian package on this very machine, as an operator uses it
# (README "Install on a server"): dpkg -i, the stock /usr/sbin/nginx -t
# with the README's site in /etc/nginx, a private-prefix nginx loading
# the installed .so answering curl, dpkg -r, dpkg --purge, and then
# /etc/nginx, /usr/lib/nginx, /usr/share/nginx and dpkg's records exactly
# as before.  The system nginx service is never started, stopped or
# reloaded: a policy-rc.d that denies every action is in place while dpkg
# runs (the package's postinst asks for a reload of a running nginx).
#
# Root only, and only under `make test-package` (part of `make test`),
# which builds the package first and names it in ASYNCX_TEST_DEB.
# Its private nginx listens on TEST_NGINX_PORT + 7.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use JSON::PP;
use File::Find;
use Digest::MD5 qw(md5_hex);
use Time::HiRes qw(sleep);
use Asyncx::OwnNginx;

my $deb = $ENV{ASYNCX_TEST_DEB};

plan skip_all => 'run by make test-package (ASYNCX_TEST_DEB names the .deb)'
    unless $deb;
Asyncx::OwnNginx::skip_all_unless($> == 0, 'needs root (dpkg -i)');

my $PKG = 'libnginx-mod-http-asyncx';
my $SO = '/usr/lib/nginx/modules/ngx_http_asyncx_module.so';
my $AVAILABLE = '/usr/share/nginx/modules-available/mod-http-asyncx.conf';
my $ENABLED = '/etc/nginx/modules-enabled/50-mod-http-asyncx.conf';
my $SITE = "/etc/nginx/sites-available/asyncx-test-$$";
my $SITE_LINK = "/etc/nginx/sites-enabled/asyncx-test-$$";
my $POLICY = '/usr/sbin/policy-rc.d';

sub slurp {
    my ($path) = @_;
    open my $fh, '<', $path or die "$path: $!";
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "$path: $!";
    print $fh $text;
    close $fh or die "$path: $!";
}

sub run {
    my $out = `@_ 2>&1`;
    return ($? >> 8, $out);
}

# dpkg waits for nobody: retry while another apt or dpkg holds the lock
sub dpkg {
    my ($rc, $out);
    for (1 .. 150) {
        ($rc, $out) = run('dpkg', @_);
        last unless $rc && $out =~ /lock/ && $out =~ /locked|another process/;
        sleep 2;
    }
    return ($rc, $out);
}

sub installed {
    my ($rc, $out) = run("dpkg-query -W -f='\${Status}' $PKG");
    return $rc == 0 && $out =~ /installed$/ && $out !~ /not-installed/;
}

# every path below the roots with its mode and content (or link target)
sub snapshot {
    my %s;
    my @roots = grep { -e || -l } qw(/etc/nginx /usr/lib/nginx
        /usr/share/nginx /usr/share/doc/libnginx-mod-http-asyncx);
    find({ no_chdir => 1, wanted => sub {
        my $p = $File::Find::name;
        if ($p eq '/usr/share/nginx/src') {    # nginx-dev's, large
            $File::Find::prune = 1;
            return;
        }
        my @st = lstat $p;
        $s{$p} = sprintf '%o %s', $st[2],
            -l _ ? 'link ' . readlink $p
          : -d _ ? 'dir'
          : 'md5 ' . md5_hex(slurp($p));
    } }, @roots);
    $s{$_} = 'dpkg record' for glob "/var/lib/dpkg/info/$PKG.*";
    return \%s;
}

sub differences {
    my ($before, $after) = @_;
    my %all = (%$before, %$after);
    return map { sprintf "%s: %s -> %s", $_, $before->{$_} // 'absent',
                                             $after->{$_} // 'absent' }
           grep { ($before->{$_} // '') ne ($after->{$_} // '') }
           sort keys %all;
}

my ($policy_added, $site_added, $ngx);
my $main_pid = $$;

# no service of the system moves while dpkg runs our maintainer scripts
sub policy_on {
    return if -e $POLICY;
    spew($POLICY, "#!/bin/sh\n# t/610-package.t: no service actions\n"
                  . "exit 101\n");
    chmod 0755, $POLICY;
    $policy_added = 1;
}

sub policy_off {
    unlink $POLICY if $policy_added;
    $policy_added = 0;
}

sub site_off {
    unlink $SITE_LINK, $SITE if $site_added;
    $site_added = 0;
}

sub cleanup {
    $ngx->stop if $ngx;
    undef $ngx;
    site_off();
    if (installed() || -e "/var/lib/dpkg/info/$PKG.list") {
        policy_on();
        dpkg('--purge', $PKG);
    }
    policy_off();
}

$SIG{INT} = $SIG{TERM} = sub { cleanup(); exit 1 };
# a skipped suite exits before $main_pid is set, and has nothing to undo
END { local $?; cleanup() if defined $main_pid && $$ == $main_pid }

my ($version) = slurp('src/ngx_http_asyncx_version.h')
    =~ /^#define NGX_HTTP_ASYNCX_VERSION\s+"([^"]+)"/m;

my ($site) = slurp('README.md')
    =~ /<!-- install-site[^>]*-->\n```nginx\n(.*?)```\n/s;
ok($site && $site =~ /asyncx_status;/ && $site =~ /deny all;/,
   "README's install section has the site");

# -- the package file ------------------------------------------------------

ok(-f $deb, "$deb was built") or BAIL_OUT('no package');

my ($abi) = slurp('/usr/share/nginx/src/debian/libnginx-mod.abisubstvars')
    =~ /^nginx:abi=(\S+)$/m;

my (undef, $fields) = run('dpkg-deb', '-f', $deb,
                          qw(Package Version Architecture Depends));
my %f = $fields =~ /^(\w+): (.*)$/mg;
is($f{Package}, $PKG, 'Package');
like($f{Version}, qr/^\Q$version\E-\d+$/, "Version is $version-N");
like($f{Depends}, qr/(^|, )\Q$abi\E(,|$)/,
     "Depends on nginx's exact ABI ($abi)");
like($f{Depends}, qr/libcjson1/, 'Depends on the libraries (shlibs)');
like($deb, qr{/\Q${PKG}_$f{Version}_$f{Architecture}\E\.deb$},
     'the file is named <package>_<version>_<arch>.deb');

my (undef, $contents) = run('dpkg-deb', '-c', $deb);
like($contents, qr{ \./usr/lib/nginx/modules/ngx_http_asyncx_module\.so$}m,
     'ships the module under /usr/lib/nginx/modules');
like($contents, qr{ \./usr/share/nginx/modules-available/mod-http-asyncx\.conf$}m,
     'ships modules-available/mod-http-asyncx.conf');

my ($lrc, $lout) = run('lintian', '--fail-on', 'error', $deb);
is($lrc, 0, 'lintian: no error') or diag($lout);
unlike($lout, qr/^E: /m, 'lintian prints no E: tag') or diag($lout);

# -- install ---------------------------------------------------------------

if (installed()) {
    diag("$PKG is installed already: purging it first");
    cleanup();
}

my $before = snapshot();
ok(!-e $SO && !-l $ENABLED, 'nothing of the package before installing');

policy_on();
my ($rc, $out) = dpkg('-i', $deb);
policy_off();
is($rc, 0, 'dpkg -i') or diag($out);
ok(installed(), 'dpkg says installed');

ok(-f $SO, "installed $SO");
is(readlink($ENABLED), $AVAILABLE,
   "enabled: $ENABLED -> $AVAILABLE (dh_nginx's postinst)");
is(slurp($AVAILABLE), "load_module modules/ngx_http_asyncx_module.so;\n",
   'modules-available/mod-http-asyncx.conf loads the module');

# -- the stock nginx -t with the README's site ------------------------------

spew($SITE, $site);
symlink $SITE, $SITE_LINK or die "$SITE_LINK: $!";
$site_added = 1;

($rc, $out) = run('/usr/sbin/nginx', '-t');
is($rc, 0, '/usr/sbin/nginx -t with the site') or diag($out);
like($out, qr/syntax is ok.*test is successful/s, 'nginx -t: successful');

(undef, $out) = run('/usr/sbin/nginx', '-T');
like($out, qr{# configuration file \Q$ENABLED\E:\nload_module modules/ngx_http_asyncx_module\.so;},
     'nginx -T: modules-enabled loads the module');
like($out, qr{# configuration file \Q$SITE_LINK\E:\n.*asyncx_password_hash;}s,
     'nginx -T: the site with asyncx directives');

site_off();

# -- a private-prefix nginx loading the installed .so, curl ---------------

my $private = $site;
$private =~ s/^(\s*)listen 80;$/$1listen 127.0.0.1:\$PORT;\n$1listen 127.0.0.2:\$PORT;/m
    or die 'the site has no "listen 80;"';

{
    local $ENV{TEST_NGINX_LOAD_MODULES} = $SO;
    local $ENV{TEST_NGINX_BINARY} = '/usr/sbin/nginx';
    $ngx = Asyncx::OwnNginx->new(offset => 7, name => 'package',
                                 http => $private);
}
my $port = $ngx->port;
my $curl = "curl -s --max-time 30 -H 'Host: asyncx.example.org'";

($rc, $out) = run("$curl -w '\\n%{http_code}' http://127.0.0.1:$port/asyncx/status");
my ($body, $code) = $out =~ /\A(.*)\n(\d+)\z/s;
is($code, 200, 'curl status from 127.0.0.1: 200') or diag($out);
note("status: $body");
my $status = eval { decode_json($body // '') } // {};
is($status->{version}, $version, "the installed module reports $version");
is($status->{module}, 'ngx_http_asyncx_module', 'and its name');

($rc, $out) = run("$curl -w '\\n%{http_code}' -d '{\"password\": \"s3cret\"}'"
                  . " http://127.0.0.1:$port/hash");
($body, $code) = $out =~ /\A(.*)\n(\d+)\z/s;
is($code, 200, 'curl /hash: 200') or diag($out);
note("hash: $body");
like($body // '', qr/^\{"hash":"pbkdf2_sha256\$600000\$/,
     'a PBKDF2 hash from the thread pool');

($rc, $out) = run("$curl --interface 127.0.0.2 -o /dev/null -w '%{http_code}'"
                  . " http://127.0.0.2:$port/asyncx/status");
is($out, '403', 'status from another address: 403 (deny all)');

$ngx->stop;
my @bad = grep { /\[(alert|crit|emerg)\]/ } $ngx->error_log;
is("@bad", '', 'no alert in the private nginx log');
undef $ngx;

# -- remove, then purge ----------------------------------------------------

policy_on();
($rc, $out) = dpkg('-r', $PKG);
policy_off();
is($rc, 0, 'dpkg -r') or diag($out);
ok(!-e $SO, 'removed: the .so is gone');
ok(!-l $ENABLED && -l "$ENABLED.removed",
   'removed: the link is kept as .removed (an admin choice survives)');

($rc, $out) = run('/usr/sbin/nginx', '-t');
is($rc, 0, 'nginx -t still passes without the module') or diag($out);

policy_on();
($rc, $out) = dpkg('--purge', $PKG);
policy_off();
is($rc, 0, 'dpkg --purge') or diag($out);

($rc, $out) = run('dpkg', '-L', $PKG);
isnt($rc, 0, 'dpkg -L knows no such package any more');
ok(!installed(), 'dpkg-query: not installed');
ok(!-e $ENABLED && !-l $ENABLED && !-l "$ENABLED.removed",
   'no modules-enabled link left');

my @diff = differences($before, snapshot());
is(scalar @diff, 0, '/etc/nginx, /usr/lib/nginx, /usr/share/nginx and dpkg '
                    . 'records exactly as before')
    or diag(join "\n", @diff);

done_testing;
