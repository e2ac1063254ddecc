# asyncx_file_write in a worker killed with kill -9 in the middle of a
# write: nothing of the write may stay in the directory, and the target
# is its old content (or still absent), never a torn file.  Before, the
# named temp file ".<name>.asyncx-<pid>-<id>-0.tmp" stayed for good.
#
# Deterministic: gdb, attached to the worker, stops it in the write
# task's fsync() of the temp file (the body written, nothing renamed
# yet); the test sees the temp file open in the worker (/proc/<pid>/fd),
# kills the worker with SIGKILL and looks.  No timing: the worker stays
# stopped for as long as the test wants.  Its own nginx (master + one
# worker) on TEST_NGINX_PORT + 6.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep);
use Asyncx::OwnNginx qw(until_true);

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');
Asyncx::OwnNginx::skip_all_unless(
    system('gdb --version >/dev/null 2>&1') == 0,
    'gdb is not installed (it stops the worker in the write)');
Asyncx::OwnNginx::skip_all_unless($> == 0,
    'needs root (gdb attaches to the worker)');

my $ngx = Asyncx::OwnNginx->new(offset => 6, name => 'write-kill',
    workers => 1, dirs => ['files'], http => <<'HTTP');
    server {
        listen 127.0.0.1:$PORT;
        client_max_body_size 16m;

        location = /files/write {
            asyncx_file_root $DIR/files;
            asyncx_file_max_size 16m;
            asyncx_file_write;
        }
    }
HTTP

my $files = $ngx->dir . '/files';
my $body = join '', map { sprintf "%07d line of the new content\n", $_ }
                    1 .. 131072;                        # 4 MiB

sub put {
    my ($name, $data, $mode) = @_;
    open my $fh, '>:raw', "$files/$name" or die "$name: $!";
    print $fh $data;
    close $fh;
    chmod $mode, "$files/$name" or die $!;
}

sub slurp {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return undef;
    local $/;
    return <$fh>;
}

sub leftovers {
    opendir my $dh, $files or die "$files: $!";
    return sort grep { /\.asyncx-.*\.tmp\z/ } readdir $dh;
}

sub post {
    my ($path, $data) = @_;
    return "POST /files/write?path=$path HTTP/1.0\r\nHost: localhost\r\n"
           . "Content-Length: " . length($data) . "\r\n\r\n$data";
}

# what the worker has open below $files: the write's temp file
sub open_in_files {
    my ($pid) = @_;
    my @open;
    for my $fd (glob "/proc/$pid/fd/*") {
        my $to = readlink $fd // next;
        push @open, $to if index($to, "$files/") == 0;
    }
    return @open;
}

# kills the worker with SIGKILL while gdb holds it in the write task's
# fsync(); returns the temp files it had open there
sub kill_in_fsync {
    my ($path) = @_;

    my ($worker) = $ngx->workers;
    my $flag = $ngx->dir . "/gdb-$path";
    unlink "$flag.attached", "$flag.stopped";

    # gdb runs its -ex commands, then reads more from our pipe, which
    # keeps it (and the stopped worker) there until we close it
    pipe my $rd, my $wr or die "pipe: $!";
    my $gdb = fork // die "fork: $!";
    if ($gdb == 0) {
        close $wr;
        open STDIN, '<&', $rd or die $!;
        open STDOUT, '>', "$flag.log" or die $!;
        open STDERR, '>&', \*STDOUT or die $!;
        exec 'gdb', '-q', '-nx', '-p', $worker,
             '-ex', 'set confirm off', '-ex', 'set pagination off',
             '-ex', 'break fsync',
             '-ex', "shell touch $flag.attached",
             '-ex', 'continue',
             '-ex', "shell touch $flag.stopped"
            or POSIX::_exit(127);
    }
    close $rd;

    my @open;
    my $client;

    if (until_true('gdb attached', 60, sub { -e "$flag.attached" })) {
        $client = $ngx->spawn_request(post($path, $body), 120);

        if (until_true('the write task in fsync()', 60,
                       sub { -e "$flag.stopped" }))
        {
            @open = open_in_files($worker);
        }
    }

    kill 'KILL', $worker;
    close $wr;

    until_true('gdb gone', 30, sub { waitpid($gdb, WNOHANG) == $gdb })
        or do { kill 'KILL', $gdb; waitpid($gdb, 0) };

    until_true('the killed worker reaped', 30, sub { !kill 0, $worker });
    $ngx->collect($client) if $client;

    diag(join '', "gdb:\n", slurp("$flag.log") // '') unless @open;

    return @open;
}

# 1. an existing file: its old content stays, nothing else does

put('k.bin', "old content\n", 0640);

my @open = kill_in_fsync('k.bin');
is(scalar @open, 1, 'the worker was stopped in the write, its temp file '
                    . 'open') or diag("open: @open");
is(join(' ', leftovers()), '', 'no temp file is left after kill -9');
is(slurp("$files/k.bin"), "old content\n", 'the target is the old file');
is((stat "$files/k.bin")[2] & 07777, 0640, 'with its old mode');

# 2. a new file: still absent, nothing else there

@open = kill_in_fsync('new.bin');
is(scalar @open, 1, 'a write of a new file was stopped in the write too');
is(join(' ', leftovers()), '', 'no temp file is left after kill -9');
ok(!-e "$files/new.bin", 'the new target is absent, not torn');

# 3. the master's new worker writes both, and leaves nothing either

ok(until_true('a new worker', 30, sub { my @w = $ngx->workers; @w }),
   'the master started a new worker');

for my $name (qw(k.bin new.bin)) {
    my ($code, $answer) = $ngx->parse($ngx->request(post($name, $body), 60));
    is($code, 200, "$name written by the new worker") or diag($answer);
    ok(slurp("$files/$name") eq $body, "$name has the new content");
}

is((stat "$files/k.bin")[2] & 07777, 0640, 'k.bin kept its mode');
is((stat "$files/new.bin")[2] & 07777, 0644, 'new.bin is 0644');
is(join(' ', leftovers()), '', 'no temp file after the writes');

is(join('', grep { !/exited on signal 9/ } $ngx->bad_lines), '',
   'no alert or crit besides the kills');

$ngx->stop;

done_testing();
