package Asyncx::OwnNginx;

# For the plain Test::More suites that need what the one-request-at-a-time
# Test::Nginx client cannot do (several workers, concurrent clients, a
# browser): an nginx of their own, in the foreground, on
# TEST_NGINX_PORT + offset, with the module loaded and a private prefix.
#
#   my $ngx = Asyncx::OwnNginx->new(offset => 2, name => 'limit',
#                                   workers => 2, main => '...',
#                                   log_level => 'debug',
#                                   connections => 256,
#                                   http => '...');     # inside http { }
#   my ($code, $body) = $ngx->get('/path');
#   my ($code, $head, $body) = $ngx->get_full('/path');
#   my $sock = $ngx->open_request('/path'); # closing it is the departure
#   my @pids = $ngx->workers;               # the master's children
#   my $child = $ngx->spawn_request($raw);  # in the background
#   my $raw = $ngx->collect($child);        # ... its raw answer
#   $ngx->json('/asyncx/status');           # a decoded JSON answer
#   $ngx->wait_for('what', sub { ... });    # poll a condition
#   my $v = until_true('what', 30, sub { ... });  # ... and keep its value
#   $ngx->error_log;      # lines
#   $ngx->stop;
#   my ($rc, $out, $conf) = Asyncx::OwnNginx::nginx_t($http, $main);
#                         # nginx -t of a configuration of its own
#
# Every module of TEST_NGINX_LOAD_MODULES is loaded (the module and the
# test helper t/hold/).  skip_all_unless() is the suites' `plan skip_all`:
# under ASYNCX_REQUIRE_ALL=1 (set by `make test`) a suite that cannot run
# fails instead.

use strict;
use warnings;

use Exporter qw(import);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP ();
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(time sleep);

our @EXPORT_OK = qw(until_true);

sub modules { split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} // '') }
sub module_so { my @m = modules(); return $m[0] }

# nginx -t of the modules, $main and "http { $http }" in a configuration
# file of its own: (exit code, output, the file's path).  The http block
# starts on line modules() + 5 (+ the lines of $main).
sub nginx_t {
    my ($http, $main) = @_;
    my $dir = tempdir('asyncx-nginx-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $load = join '', map { "load_module $_;\n" } modules();
    open my $fh, '>', "$dir/nginx.conf" or die "$dir/nginx.conf: $!";
    print $fh "${load}" . ($main // '')
              . "error_log $dir/error.log;\npid $dir/nginx.pid;\n"
              . "events { }\nhttp {\n$http\n}\n";
    close $fh;
    my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
    my $out = `$nginx -t -p $dir/ -c $dir/nginx.conf 2>&1`;
    return ($? >> 8, $out, "$dir/nginx.conf");
}

# `plan skip_all => $why unless $ok`, except under ASYNCX_REQUIRE_ALL=1
sub skip_all_unless {
    my ($ok, $why) = @_;

    return if $ok;

    if ($ENV{ASYNCX_REQUIRE_ALL}) {
        Test::More::plan(tests => 1);
        Test::More::fail("this suite cannot run: $why "
                         . "(ASYNCX_REQUIRE_ALL=1: a skip is a failure)");
        exit 1;
    }

    Test::More::plan(skip_all => $why);
}

sub new {
    my ($class, %opt) = @_;

    my $self = bless {
        owner  => $$,       # forked clients must not stop it on exit
        port   => ($ENV{TEST_NGINX_PORT} || 1984) + ($opt{offset} // 1),
        nginx  => $ENV{TEST_NGINX_BINARY} || 'nginx',
        dir    => tempdir("asyncx-$opt{name}-XXXXXX", TMPDIR => 1,
                          CLEANUP => !$ENV{TEST_NGINX_NO_CLEAN}),
    }, $class;

    my $dir = $self->{dir};
    mkdir "$dir/$_" for qw(logs temp html), @{ $opt{dirs} // [] };

    my $master = ($opt{workers} // 0) ? 'on' : 'off';
    my $workers = $opt{workers} || 1;
    my $user = $> == 0 ? 'user root;' : '';
    my $level = $opt{log_level} // 'info';
    my $load = join '', map { "load_module $_;\n" } modules();
    my $main = $opt{main} // '';
    my $connections = $opt{connections} // 256;
    my $http = $opt{http} // '';
    $http =~ s/\$PORT\b/$self->{port}/g;
    $http =~ s/\$DIR\b/$dir/g;

    open my $fh, '>', "$dir/nginx.conf" or die "$dir/nginx.conf: $!";
    print $fh <<"CONF";
daemon off;
master_process $master;
worker_processes $workers;
$user
error_log $dir/logs/error.log $level;
pid $dir/logs/nginx.pid;
$load$main
events { worker_connections $connections; }
http {
    client_body_temp_path $dir/temp;
    proxy_temp_path $dir/temp;
    fastcgi_temp_path $dir/temp;
    uwsgi_temp_path $dir/temp;
    scgi_temp_path $dir/temp;
    access_log off;
$http
}
CONF
    close $fh;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        exec $self->{nginx}, '-p', "$dir/", '-c', "$dir/nginx.conf";
        die "exec $self->{nginx}: $!";
    }
    $self->{pid} = $pid;

    # however slow the machine: until it listens or exits.  The port
    # answering is not enough: a listener left on it (an nginx of an
    # earlier suite still exiting, another program) answers while ours
    # retries bind() and gives up.  nginx writes its pid file only once
    # its sockets are bound, so the port is ours when the file names
    # our process.
    my $until = time + 60;
    while (time < $until) {
        last if $self->pid_file_is($pid)
                && IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}");
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $self->{pid};
            Test::More::diag("nginx exited at start:\n",
                             join '', $self->error_log);
            last;
        }
        sleep 0.02;
    }

    Test::More::diag("nginx is not up on port $self->{port} after 60 s:\n",
                     join '', $self->error_log)
        if $self->{pid} && !$self->pid_file_is($pid);

    return $self;
}

# whether logs/nginx.pid names $pid
sub pid_file_is {
    my ($self, $pid) = @_;
    open my $fh, '<', "$self->{dir}/logs/nginx.pid" or return 0;
    my $line = <$fh> // '';
    return $line =~ /^\s*(\d+)/ && $1 == $pid;
}

sub port { $_[0]{port} }
sub dir  { $_[0]{dir} }
sub pid  { $_[0]{pid} }

# the raw answer to a raw request, read until the server closes or timeout
sub request {
    my ($self, $raw, $timeout) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}",
                                  Timeout => 2) or return '';
    print $s $raw;
    my ($t0, $res) = (time, '');
    $s->blocking(0);
    while (time - $t0 < ($timeout || 10)) {
        my $n = sysread($s, my $buf, 65536);
        last if defined $n && $n == 0;
        if (defined $n) { $res .= $buf } else { sleep 0.01 }
    }
    return $res;
}

# (status code or 0, body) of an HTTP/1.0 GET
sub get {
    my ($self, $path, $timeout) = @_;
    return $self->parse($self->request("GET $path HTTP/1.0\r\n"
                                       . "Host: localhost\r\n\r\n",
                                       $timeout));
}

# a request in a child process: give the handle to collect()
sub spawn_request {
    my ($self, $raw, $timeout) = @_;

    my $child = open(my $fh, '-|') // die "fork: $!";

    if ($child == 0) {
        print $self->request($raw, $timeout // 60);
        POSIX::_exit(0);
    }

    return $fh;
}

# the raw answer of a spawned request (waits for it)
sub collect {
    my ($self, $fh) = @_;

    local $/;
    my $raw = <$fh> // '';
    close $fh;

    return $raw;
}

# (status code or 0, body) of a raw answer
sub parse {
    my ($self, $raw) = @_;

    my ($code) = $raw =~ m{^HTTP/1\.\d (\d+)};
    my ($body) = $raw =~ /\r\n\r\n(.*)\z/s;

    return ($code || 0, $body // '');
}

# (status code or 0, header block, body) of an HTTP/1.0 GET
sub get_full {
    my ($self, $path, $timeout) = @_;

    my $raw = $self->request("GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n",
                             $timeout // 15);
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my ($code) = ($head // '') =~ m{^HTTP/1\.\d (\d+)};

    return ($code // 0, $head // '', $body // '');
}

# a GET sent on a connection the test keeps and reads or closes itself
# (closing it is the client's departure)
sub open_request {
    my ($self, $path) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}",
                                  Timeout => 5) or die "connect: $!";
    print $s "GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n";

    return $s;
}

# the pids of the master's worker processes, in order (none without a
# master or once it is gone)
sub workers {
    my ($self) = @_;

    my $m = $self->{pid} or return ();

    return sort { $a <=> $b }
           grep { /^\d+$/ } split ' ', `ps -o pid= --ppid $m 2>/dev/null`;
}

# the decoded JSON answer of a GET (undef if it is not JSON)
sub json {
    my ($self, $path) = @_;

    my (undef, $body) = $self->get($path);

    return eval { JSON::PP::decode_json($body) };
}

# polls $cond every $step seconds (default 0.05) until it returns a true
# value, which is returned, or $limit seconds pass (returns undef, with a
# diagnostic naming $what); a plain function, no nginx needed
sub until_true {
    my ($what, $limit, $cond, $step) = @_;

    my $t0 = time;

    while (time - $t0 < $limit) {
        my $v = $cond->();
        return $v if $v;
        sleep $step // 0.05;
    }

    # a last look: a process starved past the limit during its sleep has
    # not looked since
    my $v = $cond->();
    return $v if $v;

    Test::More::diag("gave up waiting for $what after $limit s");
    return undef;
}

# polls $cond until it is true (returns 1) or $timeout seconds pass
# (returns 0, with a diagnostic naming $what)
sub wait_for {
    my ($self, $what, $cond, $timeout) = @_;

    return until_true($what, $timeout // 30, $cond, 0.01) ? 1 : 0;
}

# waits for an error.log line matching $re
sub wait_log {
    my ($self, $re, $timeout) = @_;

    return $self->wait_for("an error.log line like $re",
                           sub { grep { $_ =~ $re } $self->error_log },
                           $timeout);
}

# the lines at [alert], [crit] or [emerg]: the suites expect none
sub bad_lines {
    my ($self) = @_;

    return grep { /\[(?:alert|crit|emerg)\]/ } $self->error_log;
}

sub error_log {
    my ($self) = @_;
    open my $in, '<', "$self->{dir}/logs/error.log" or return ();
    return <$in>;
}

sub stop {
    my ($self) = @_;
    return if $$ != $self->{owner};
    my $pid = delete $self->{pid} or return;
    kill 'QUIT', $pid;
    for (1 .. 200) { last if waitpid($pid, WNOHANG) == $pid; sleep 0.05 }
    if (kill 0, $pid) {
        kill 'KILL', $pid;
        waitpid($pid, 0);
    }
    $self->save_error_log;
}

# like Test::Nginx's runner: TEST_NGINX_ERROR_LOG collects every error.log
# (`make test-asan` looks for sanitizer reports there)
sub save_error_log {
    my ($self) = @_;
    my $dst = $ENV{TEST_NGINX_ERROR_LOG} or return;
    open my $out, '>>', $dst or return;
    print $out $self->error_log;
}

sub DESTROY { $_[0]->stop }

1;
