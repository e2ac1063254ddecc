package Asyncx::OwnNginx;

# For the plain Test::More suites that need what the one-request-at-a-time
# Test::Nginx client cannot do (several workers, concurrent clients, a
# browser): an nginx of their own, in the foreground, on
# TEST_NGINX_PORT + offset, with the module loaded and a private prefix.
#
#   my $ngx = Asyncx::OwnNginx->new(offset => 2, name => 'limit',
#                                   workers => 2, main => '...',
#                                   http => '...');     # inside http { }
#   my ($code, $body) = $ngx->get('/path');
#   $ngx->error_log;      # lines
#   $ngx->stop;

use strict;
use warnings;

use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

sub module_so { (split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} // ''))[0] }

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
    my $so = module_so();
    my $main = $opt{main} // '';
    my $http = $opt{http} // '';
    $http =~ s/\$PORT\b/$self->{port}/g;
    $http =~ s/\$DIR\b/$dir/g;

    open my $fh, '>', "$dir/nginx.conf" or die "$dir/nginx.conf: $!";
    print $fh <<"CONF";
daemon off;
master_process $master;
worker_processes $workers;
$user
error_log $dir/logs/error.log info;
pid $dir/logs/nginx.pid;
load_module $so;
$main
events { worker_connections 256; }
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

    for (1 .. 200) {
        last if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$self->{port}");
        sleep 0.05;
    }

    return $self;
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
    my $res = $self->request("GET $path HTTP/1.0\r\nHost: localhost\r\n\r\n",
                             $timeout);
    my ($code) = $res =~ m{^HTTP/1\.\d (\d+)};
    my ($body) = $res =~ /\r\n\r\n(.*)\z/s;
    return ($code || 0, $body // '');
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
