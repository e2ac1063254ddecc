package Test::Nginx::Util;

# Server side of the local Test::Nginx::Socket subset: settings set by the
# preamble functions, servroot layout, nginx.conf generation, starting and
# stopping nginx, $TEST_NGINX_* substitution and error.log windows.
# See Test/Nginx/Socket.pm for the list of deliberate differences.

use strict;
use warnings;

use Config;
use Cwd qw(cwd);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use Test::More ();

use base 'Exporter';

our @EXPORT = qw(
    env_to_nginx repeat_each config_preamble worker_connections workers
    master_on master_process_enabled no_long_string log_level no_shuffle
    no_root_location server_name server_root html_dir server_port
    server_port_for_client timeout check_accum_error_log
    add_block_preprocessor bail_out
);
our @EXPORT_OK = qw(start_nginx stop_nginx write_user_files expand_env
                    nginx_version error_log_lines tail_file);

our $RepeatEach          = 1;
our $NoShuffle           = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $NoLongString        = 0;
our $LogLevel            = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $Workers             = 1;
our $WorkerConnections   = 64;
our $NoRootLocation      = 0;
our $ServerName          = 'localhost';
our $ConfigPreamble      = '';
our @EnvToNginx;
our $CheckAccumErrLog    = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG} || 0;
our @BlockPreprocessors;
our $Timeout             = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $Verbose             = $ENV{TEST_NGINX_VERBOSE} || 0;
our $TestNginxSleep      = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $WorkerUser          = $ENV{TEST_NGINX_WORKER_USER};

our $ServerPort = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient =
    $ENV{TEST_NGINX_CLIENT_PORT} || $ENV{TEST_NGINX_PORT} || $ServerPort;
our $ServRoot = $ENV{TEST_NGINX_SERVROOT} || cwd() . '/t/servroot';
$ServRoot =~ s{/+$}{};
our $HtmlDir    = "$ServRoot/html";
our $ConfDir    = "$ServRoot/conf";
our $LogDir     = "$ServRoot/logs";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $PidFile    = "$LogDir/nginx.pid";

$ENV{TEST_NGINX_SERVER_PORT} = $ServerPort;
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $NginxBinary = $ENV{TEST_NGINX_BINARY} || 'nginx';
if ($NginxBinary eq 'nginx'
    && !grep { -x "$_/nginx" } split /:/, ($ENV{PATH} || ''))
{
    $NginxBinary = '/usr/sbin/nginx';
}

our $NginxPid;          # pid of the running (daemonized) nginx, if any
our $ErrLogPos = 0;     # error.log offset of the current window
our %RandPorts;         # $TEST_NGINX_RAND_PORT_n values of the current block
our $ErrLogSaved = 1;   # error.log already appended to TEST_NGINX_ERROR_LOG

# Difference 2: become a child subreaper (prctl PR_SET_CHILD_SUBREAPER) so
# the daemonized nginx is re-parented to us and can be reaped at once.
our $SubReaper = 0;
if ($^O eq 'linux' && $Config{archname} =~ /^x86_64/) {
    $SubReaper = eval { syscall(157, 36, 1, 0, 0, 0) == 0 } || 0;
}

# --- preamble functions -------------------------------------------------

sub repeat_each { $RepeatEach = shift if @_; return $RepeatEach }
sub workers { $Workers = shift if @_; return $Workers }
sub worker_connections { $WorkerConnections = shift if @_; $WorkerConnections }
sub log_level { $LogLevel = shift if @_; return $LogLevel }
sub no_shuffle { $NoShuffle = 1 }
sub no_long_string { $NoLongString = 1 }
sub no_root_location { $NoRootLocation = 1 }
sub server_name { $ServerName = shift if @_; return $ServerName }
sub config_preamble { $ConfigPreamble = shift if @_; $ConfigPreamble }
sub env_to_nginx { push @EnvToNginx, @_ }
sub check_accum_error_log { $CheckAccumErrLog = 1 }
sub add_block_preprocessor { push @BlockPreprocessors, shift }
sub master_on { $MasterProcessEnabled = 'on' }
sub server_root { $ServRoot }
sub html_dir { $HtmlDir }
sub server_port { $ServerPort = shift if @_; return $ServerPort }
sub server_port_for_client {
    $ServerPortForClient = shift if @_;
    return $ServerPortForClient;
}

sub master_process_enabled {
    $MasterProcessEnabled = $_[0] ? 'on' : 'off' if @_;
    return $MasterProcessEnabled eq 'on' ? 1 : 0;
}

sub timeout {
    $Timeout = shift if @_;
    return $Timeout;
}

sub bail_out {
    my $msg = join '', @_;
    stop_nginx() unless $ENV{TEST_NGINX_NO_CLEAN};
    Test::More::BAIL_OUT($msg);
}

# --- $TEST_NGINX_* substitution -----------------------------------------

sub rand_port {
    for (1 .. 100) {
        my $port = 20000 + int rand 40000;
        next if $port == $ServerPort || grep { defined && $_ == $port } values %RandPorts;
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $port, Proto => 'tcp',
                                      Listen => 1, ReuseAddr => 1);
        next unless $s;
        close $s;
        return $port;
    }
    bail_out("cannot find a free random port");
}

sub expand_env {
    my ($text, $name) = @_;
    return $text if !defined $text || ref $text;
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        if ($var =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            $RandPorts{$var} ||= rand_port();
        } elsif (defined $ENV{$var}) {
            $ENV{$var};
        } else {
            bail_out("$name - No environment $var defined.\n");
        }
    }ge;
    return $text;
}

# --- servroot and nginx.conf --------------------------------------------

sub clean_servroot {
    return unless -d $ServRoot;
    for my $d ('conf', 'html', 'logs', 'cache', glob("$ServRoot/*_temp")) {
        my $path = $d =~ m{^/} ? $d : "$ServRoot/$d";
        remove_tree($path) if -e $path;
    }
    rmdir $ServRoot
        or bail_out("Can't remove $ServRoot (not empty?): $!");
}

sub write_file {
    my ($path, $body, $name) = @_;
    if ($path =~ m{^(.*)/} && !-d $1) {
        make_path($1) or bail_out("$name - cannot create directory $1");
    }
    open my $out, '>', $path
        or bail_out("$name - cannot open $path for writing: $!");
    binmode $out;
    print $out $body;
    close $out;
}

sub write_user_files {
    my ($block, $name) = @_;
    my $files = $block->user_files;
    return unless defined $files;
    if (!ref $files) {
        my @list;
        for my $line (split /^/m, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, '', $2];
            } elsif (@list) {
                $list[-1][1] .= $line;
            }
        }
        $files = \@list;
    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - user_files must be a string or an ARRAY");
    }
    for my $f (@$files) {
        my ($fname, $body, $date) = @$f;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        write_file($path, expand_env($body // '', $name), $name);
        if ($date) {
            local $ENV{TZ} = 'GMT';
            system('touch', '-t', $date, $path) == 0
                or bail_out("$name - touch -t '$date' $path failed");
        }
    }
}

sub section {
    my ($block, $sec, $name) = @_;
    my $v = $block->$sec;
    return '' unless defined $v;
    bail_out("$name - --- $sec must be a string") if ref $v;
    return expand_env($v, $name);
}

sub write_config_file {
    my ($block, $name) = @_;

    my $main_config = $block->main_config // '';
    my @modules = split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} || '');
    $main_config = join('', map { "load_module $_;\n" } @modules)
                   . $main_config if @modules;
    $main_config = expand_env($main_config, $name);

    my $http_config = section($block, 'http_config', $name);
    my $config = section($block, 'config', $name);
    my $post_main_config = section($block, 'post_main_config', $name);
    my $log_level = $block->log_level // $LogLevel;
    my $server_name = $block->server_name // $ServerName;
    $server_name =~ s/'/\\'/g;

    my $temp = '';
    for my $t (qw(client_body proxy fastcgi scgi uwsgi)) {
        next if $http_config =~ /\b${t}_temp_path\b/
                && ($t eq 'client_body' || $t eq 'proxy');
        $temp .= "    ${t}_temp_path $ServRoot/${t}_temp;\n";
    }

    my $env = join '', map { my $v = /\s/ ? "'$_'" : $_; "env $v;\n" }
        qw(MOCKEAGAIN_VERBOSE MOCKEAGAIN MOCKEAGAIN_WRITE_TIMEOUT_PATTERN
           LD_PRELOAD LD_LIBRARY_PATH DYLD_INSERT_LIBRARIES
           DYLD_FORCE_FLAT_NAMESPACE), @EnvToNginx;

    my $root_location = $NoRootLocation ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    my $user = defined $WorkerUser ? "user $WorkerUser;\n"
             : $> == 0            ? "user root;\n" : '';

    my $conf = <<"_EOC_";
worker_processes  $Workers;
daemon on;
master_process $MasterProcessEnabled;
error_log $ErrLogFile $log_level;
pid       $PidFile;
$env
$main_config

http {
    access_log $AccLogFile;
$temp
    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config
    server {
        listen          127.0.0.1:$ServerPort;
        server_name     '$server_name';
        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
}

$post_main_config

events {
    accept_mutex off;
    worker_connections  $WorkerConnections;
}
env ASAN_OPTIONS;
env MOCKNOEAGAIN_VERBOSE;
env MOCKNOEAGAIN;
$user
_EOC_

    # Difference 1: bind port-only listen directives to the loopback.
    $conf =~ s/(\blisten\s+)(\d+)(?=[\s;])/${1}127.0.0.1:$2/g;

    write_file("$ConfDir/nginx.conf", $conf, $name);
}

sub prepare_servroot {
    my ($block, $name) = @_;
    clean_servroot();
    make_path($ServRoot, $ConfDir, $HtmlDir, $LogDir);
    write_file("$HtmlDir/index.html",
               "<html><head><title>It works!</title></head>"
               . "<body>It works!</body></html>", $name);
    write_user_files($block, $name);
    write_config_file($block, $name);
}

# --- nginx process ------------------------------------------------------

sub nginx_version {
    my $out = `$NginxBinary -v 2>&1`;
    return $out =~ m{nginx/(\d+)\.(\d+)\.(\d+)} ? sprintf("%d.%03d%03d", $1, $2, $3)
                                              : undef;
}

# Returns (exit status, stderr text). Exit status 0 means nginx is up.
sub start_nginx {
    my ($block, $name) = @_;
    stop_nginx();
    append_error_log();
    %RandPorts = ();
    prepare_servroot($block, $name);
    $ErrLogPos = 0;
    $ErrLogSaved = 0;

    my @cmd = ($NginxBinary, '-e', $ErrLogFile, '-p', "$ServRoot/",
               '-c', "$ConfDir/nginx.conf");

    # upstream's TEST_NGINX_USE_VALGRIND: memcheck under every nginx; the
    # reports go to TEST_NGINX_VALGRIND_LOG_DIR (one file per process).
    # --keep-debuginfo: nginx unloads the module with the cycle pool before
    # memcheck prints its leaks, whose module frames were then "???" and
    # passed t/lib/valgrind-check.pl as nginx's own
    if ($ENV{TEST_NGINX_USE_VALGRIND}) {
        my $dir = $ENV{TEST_NGINX_VALGRIND_LOG_DIR} || "$ServRoot/..";
        my @supp = -f 't/valgrind.supp' ? ('--suppressions=t/valgrind.supp')
                                        : ();
        unshift @cmd, 'valgrind', '-q', '--tool=memcheck',
                      '--leak-check=full', '--errors-for-leak-kinds=definite',
                      '--fair-sched=yes', '--keep-debuginfo=yes',
                      '--show-leak-kinds=definite', '--num-callers=30',
                      "--log-file=$dir/valgrind.%p", @supp;
    }
    warn "starting nginx: @cmd\n" if $Verbose;
    my $errfile = "$LogDir/nginx-stderr.log";
    my $pid = fork // bail_out("$name - fork() failed: $!");
    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', $errfile;
        exec @cmd or POSIX::_exit(127);
    }
    waitpid($pid, 0);
    my $status = $?;
    my $stderr = '';
    if (open my $in, '<', $errfile) { local $/; $stderr = <$in> // '' }
    unlink $errfile;
    print STDERR $stderr if length $stderr && !defined $block->suppress_stderr;
    return ($status, $stderr) if $status != 0;

    sleep $TestNginxSleep;
    my $tries = $ENV{TEST_NGINX_USE_VALGRIND} ? 2000 : 200;
    for (1 .. $tries) {     # the daemon writes the pid file after forking
        if (open my $in, '<', $PidFile) {
            my $p = <$in>;
            if (defined $p && $p =~ /^(\d+)/) { $NginxPid = $1; last }
        }
        sleep 0.005;
    }
    bail_out("$name - nginx started but wrote no pid file $PidFile")
        unless $NginxPid;
    return (0, $stderr);
}

sub reap_children { 1 while waitpid(-1, WNOHANG) > 0 }

sub process_gone {
    my $pid = shift;
    my $r = waitpid($pid, WNOHANG);
    return 1 if $r == $pid;
    return !kill(0, $pid);
}

sub stop_nginx {
    my $pid = $NginxPid;
    undef $NginxPid;
    return unless $pid;
    warn "stopping nginx $pid\n" if $Verbose;
    kill 'QUIT', $pid;
    my $deadline = time + ($Timeout =~ /^\d*\.?\d+$/ ? $Timeout : 3);
    until (process_gone($pid)) {
        if (time > $deadline) {
            warn "WARNING: nginx $pid did not exit on SIGQUIT; sending SIGKILL\n";
            kill 'KILL', $pid;
            $deadline = time + 5;
            until (process_gone($pid)) { last if time > $deadline; sleep 0.005 }
            last;
        }
        sleep 0.005;
    }
    reap_children();
}

sub append_error_log {
    my $dst = $ENV{TEST_NGINX_ERROR_LOG};
    return if $ErrLogSaved++ || !$dst;
    open my $in, '<', $ErrLogFile or return;
    open my $out, '>>', $dst or return;
    print $out $_ while <$in>;
}

# --- error.log windows --------------------------------------------------

sub error_log_lines {
    sleep $TestNginxSleep * 3;   # catch lines from the log phase
    open my $in, '<', $ErrLogFile or return [];
    seek $in, $ErrLogPos, 0 if !$CheckAccumErrLog && $ErrLogPos > 0;
    my @lines = <$in>;
    $ErrLogPos = tell $in unless $CheckAccumErrLog;
    close $in;
    return \@lines;
}

sub tail_file {
    my ($file, $n) = @_;
    open my $in, '<', $file or return '';
    my @lines = <$in>;
    return join '', @lines[ ($#lines - $n + 1 < 0 ? 0 : $#lines - $n + 1) .. $#lines ];
}

END {
    local $?;
    if ($NginxPid && $ENV{TEST_NGINX_NO_CLEAN}) {
        warn "TEST_NGINX_NO_CLEAN: leaving nginx $NginxPid running ($PidFile)\n";
    } elsif ($NginxPid) {
        stop_nginx();
    }
    append_error_log();
}

1;
