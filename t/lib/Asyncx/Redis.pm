package Asyncx::Redis;

# A private redis-server for the cluster limiter's suites (issue 17): on
# 127.0.0.1 at TEST_NGINX_PORT + 7 (or the port given), no persistence,
# in the foreground as a child of the test, stopped by its PID.
#
#   my $redis = Asyncx::Redis->new;               # started, PING answers
#   my $redis = Asyncx::Redis->new(port => 2107, password => 's3cret',
#                                  dir => $ngx->dir . '/redis');
#   $redis->url;                 # "redis://127.0.0.1:2107" for cluster=
#   $redis->cli('ZCARD', 'asyncx:{api:}:s');      # redis-cli's output
#   $redis->time_ms;             # its own clock (TIME), in ms
#   $redis->pause;               # SIGSTOP: connected, but answers nothing
#   $redis->resume;              # SIGCONT
#   $redis->stop;                # SIGTERM, then SIGKILL after 10 s
#   $redis->start;               # again, same port, same directory
#   $redis->log;                 # lines of its log file
#
# Never leaves a redis-server running: stop() on DESTROY, every instance
# this process started is stopped at END (and on SIGINT/SIGTERM/SIGHUP,
# which end the test through exit()), and on Linux the server gets
# SIGKILL if the test process dies without running END (kill -9, a
# prove timeout): PR_SET_PDEATHSIG, set in the child before exec.
#
# The directory: "dir" if given (a suite with an nginx of its own passes
# a directory of that nginx's prefix, e.g. $ngx->dir . '/redis'), else a
# temporary directory like Asyncx::OwnNginx's (kept under
# TEST_NGINX_NO_CLEAN).  Not TEST_NGINX_SERVROOT itself: Test::Nginx
# wipes it before every block and refuses to remove a directory it did
# not make there (bail out), so a Test::Nginx suite would lose the log
# or stop.

use strict;
use warnings;

use Config;
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More ();
use Time::HiRes qw(time sleep);

our $SERVER = $ENV{ASYNCX_REDIS_SERVER} || 'redis-server';
our $CLI    = $ENV{ASYNCX_REDIS_CLI} || 'redis-cli';

# pid => instance, for END: the servers this process started
my %running;

# prctl(PR_SET_PDEATHSIG, SIGKILL): the syscall's number by architecture
my %prctl = (x86_64 => 157, aarch64 => 167, i386 => 172, i686 => 172);

sub have_server {
    return scalar grep { -x "$_/$SERVER" } split /:/, $ENV{PATH} // ''
        if $SERVER !~ m{/};
    return -x $SERVER;
}

sub new {
    my ($class, %opt) = @_;

    my $self = bless {
        owner    => $$,
        port     => $opt{port}
                    // ($ENV{TEST_NGINX_PORT} || 1984) + ($opt{offset} // 7),
        password => $opt{password} // '',
        args     => $opt{args} // [],
        dir      => $opt{dir}
                    // tempdir('asyncx-redis-XXXXXX', TMPDIR => 1,
                               CLEANUP => !$ENV{TEST_NGINX_NO_CLEAN}),
    }, $class;

    make_path($self->{dir}) unless -d $self->{dir};

    $self->start unless $opt{no_start};

    return $self;
}

sub port { $_[0]{port} }
sub pid  { $_[0]{pid} }
sub dir  { $_[0]{dir} }
sub host_port { "127.0.0.1:$_[0]{port}" }

# the cluster= value for this server (database $db, default none)
sub url {
    my ($self, $db) = @_;
    return "redis://127.0.0.1:$self->{port}" . (defined $db ? "/$db" : '');
}

sub logfile { "$_[0]{dir}/redis.log" }

sub log {
    my ($self) = @_;
    open my $in, '<', $self->logfile or return ();
    return <$in>;
}

# starts the server and waits (30 s at most: a loaded machine) until it
# answers PING; returns true if it does
sub start {
    my ($self) = @_;

    return 1 if $self->{pid};

    my @cmd = ($SERVER, '--port', $self->{port}, '--bind', '127.0.0.1',
               '--save', '', '--appendonly', 'no', '--daemonize', 'no',
               '--dir', $self->{dir}, '--logfile', $self->logfile,
               '--pidfile', "$self->{dir}/redis.pid",
               ($self->{password} ne ''
                    ? ('--requirepass', $self->{password}) : ()),
               @{ $self->{args} });

    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        my $nr = $prctl{ (split /-/, $Config{archname})[0] };
        syscall($nr, 1, 9, 0, 0, 0) if $nr;     # PR_SET_PDEATHSIG, SIGKILL
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $self->logfile;
        open STDERR, '>&', \*STDOUT;
        { exec @cmd }
        POSIX::_exit(127);
    }

    $self->{pid} = $pid;
    $self->{paused} = 0;
    $running{$pid} = $self;

    my $until = time + 30;
    while (time < $until) {
        return 1 if $self->ping;
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $running{$pid};
            delete $self->{pid};
            Test::More::diag("redis-server exited at start (status $?):\n",
                             join '', $self->log);
            return 0;
        }
        sleep 0.02;
    }

    Test::More::diag("redis-server on port $self->{port} does not answer "
                     . "PING after 30 s:\n", join '', $self->log);
    return 0;
}

# true if the server answers PING within $timeout seconds (default 2)
sub ping {
    my ($self, $timeout) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => $self->host_port,
                                  Timeout => $timeout // 2) or return 0;
    my $cmd = $self->{password} ne ''
              ? _resp('AUTH', $self->{password}) : '';
    print $s $cmd . _resp('PING');

    my ($res, $until) = ('', time + ($timeout // 2));
    $s->blocking(0);
    while (time < $until) {
        my $n = sysread($s, my $buf, 512);
        last if defined $n && $n == 0;
        if (defined $n) { $res .= $buf } else { sleep 0.005 }
        return 1 if $res =~ /\+PONG\r\n/;
        return 0 if $res =~ /^-/m && $res !~ /^-LOADING/m;
    }
    return 0;
}

sub _resp {
    my @a = @_;
    return join '', "*" . @a . "\r\n", map { '$' . length($_) . "\r\n$_\r\n" } @a;
}

# redis-cli's output for a command (chomped; lines in list context),
# given up after 10 s (a paused server answers nothing: coreutils' timeout
# ends the client, and the answer is '')
sub cli {
    my ($self, @args) = @_;

    local $ENV{REDISCLI_AUTH} = $self->{password} if $self->{password} ne '';

    open my $fh, '-|', 'timeout', '10', $CLI, '-h', '127.0.0.1',
                 '-p', $self->{port}, @args
        or die "$CLI: $!";
    my @out = <$fh>;
    close $fh;
    chomp @out;

    return wantarray ? @out : join "\n", @out;
}

# the server's own clock (TIME) in ms: what lease scores are measured
# in; undef if it does not answer
sub time_ms {
    my ($self) = @_;
    my ($s, $us) = $self->cli('TIME');
    return defined $us ? $s * 1000 + int($us / 1000) : undef;
}

# SIGSTOP: the connections stay open, nothing is answered (a slow or
# hung Redis, as the module's cluster_timeout sees it)
sub pause {
    my ($self) = @_;
    return 0 unless $self->{pid};
    $self->{paused} = 1;
    return kill 'STOP', $self->{pid};
}

sub resume {
    my ($self) = @_;
    return 0 unless $self->{pid};
    $self->{paused} = 0;
    return kill 'CONT', $self->{pid};
}

sub is_paused { $_[0]{paused} }

# the pid of the running server, no longer counted as running; undef
# if there is none or another process (a forked client) asks
sub _take_pid {
    my ($self) = @_;

    return undef if $$ != $self->{owner};
    my $pid = delete $self->{pid} or return undef;
    delete $running{$pid};

    return $pid;
}

# SIGTERM (after SIGCONT: a stopped process would not act on it), SIGKILL
# if it has not exited after 10 s; waits for it
sub stop {
    my ($self) = @_;

    my $pid = $self->_take_pid or return;

    kill 'CONT', $pid;
    kill 'TERM', $pid;
    for (1 .. 500) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
}

# SIGKILL at once: Redis vanishing without a goodbye
sub kill9 {
    my ($self) = @_;

    my $pid = $self->_take_pid or return;

    kill 'KILL', $pid;
    waitpid($pid, 0);
}

sub DESTROY {
    my ($self) = @_;
    local ($?, $!, $@);
    $self->stop;
}

sub stop_all {
    local ($?, $!, $@);
    for my $r (values %running) {
        $r->stop if $r && $r->{owner} == $$;
    }
}

END { stop_all() }

# a test interrupted by a signal ends through exit(), so END runs; a
# handler the suite installs itself is kept
for my $sig (qw(INT TERM HUP)) {
    $SIG{$sig} = sub { stop_all(); exit 128 } unless $SIG{$sig};
}

1;
