# Offload behaviour that needs several clients at once, which the
# one-request-at-a-time Test::Nginx client cannot produce:
#   1. atomic writes: readers hammering a file while a writer replaces it
#      never see partial content, and no temp file is left behind;
#   2. a write keeps the old file's mode;
#   3. a write that fails half way (RLIMIT_FSIZE) leaves the old file;
#   4. a burst of hashes into threads=1 max_queue=1 while the thread is
#      held: 503 + Retry-After for each one over the queue, 200 for the
#      queued one, and a cheap location answers meanwhile (the event
#      loop is not blocked);
#   5. a reload or a graceful quit while a task is pending: the old
#      worker stays until the task is done and the client gets its
#      answer.
# Sections 4 and 5 hold the CPU pool's only thread with the test helper
# module (t/hold/, Asyncx::Hold) for as long as they need; section 1
# counts writes and reads instead of running for a fixed time.  Nothing
# depends on the machine's speed.
# It runs its own nginx (daemon off) on TEST_NGINX_PORT + 1.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use Asyncx::Hold;
use Asyncx::OwnNginx;
use File::Path qw(make_path remove_tree);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP ();
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

my @so = Asyncx::OwnNginx::modules();
Asyncx::OwnNginx::skip_all_unless(scalar @so,
                                  'TEST_NGINX_LOAD_MODULES is not set');
my $load = join '', map { "load_module $_;\n" } @so;

my $nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
my $port = $ENV{TEST_NGINX_OFFLOAD_PORT} || ($ENV{TEST_NGINX_PORT} || 1984) + 1;
my $dir = tempdir('asyncx-offload-conc-XXXXXX', TMPDIR => 1,
                  CLEANUP => !$ENV{TEST_NGINX_NO_CLEAN});
my $files = "$dir/files";

my $pid;

sub conf {
    my (%opt) = @_;

    my $master = $opt{master} ? 'on' : 'off';
    my $user = $> == 0 ? 'user root;' : '';

    return <<"EOF";
daemon off;
master_process $master;
worker_processes 1;
$user
error_log $dir/logs/error.log info;
pid $dir/logs/nginx.pid;
$load
thread_pool offload_io threads=4 max_queue=4096;
thread_pool offload_cpu threads=1 max_queue=1;

events {
    worker_connections 256;
}

http {
    access_log off;
    client_body_temp_path $dir/temp/body;
    proxy_temp_path $dir/temp/proxy;
    fastcgi_temp_path $dir/temp/fastcgi;
    uwsgi_temp_path $dir/temp/uwsgi;
    scgi_temp_path $dir/temp/scgi;

    asyncx_thread_pools io=offload_io cpu=offload_cpu;

    server {
        listen 127.0.0.1:$port;
        client_max_body_size 8m;
        client_body_buffer_size 4m;

        location = /files/read {
            asyncx_file_root files;
            asyncx_file_max_size 8m;
            asyncx_file_read;
        }

        location = /files/write {
            asyncx_file_root files;
            asyncx_file_max_size 8m;
            asyncx_file_write;
        }

        location = /auth/hash {
            asyncx_pbkdf2_iterations 1000;
            asyncx_password_hash;
        }

        location = /status {
            asyncx_status;
        }

        location = /hold {
            asyncx_test_hold offload_cpu;
        }
    }
}
EOF
}

sub start_nginx {
    my (%opt) = @_;

    remove_tree("$dir/logs", "$dir/conf");
    make_path("$dir/logs", "$dir/conf", "$dir/temp", $files);

    open my $fh, '>', "$dir/conf/nginx.conf" or die $!;
    print $fh conf(%opt);
    close $fh;

    $pid = fork // die "fork: $!";

    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';
        open STDERR, '>>', "$dir/logs/stderr.log";

        my @cmd = ($nginx, '-p', "$dir/", '-c', "$dir/conf/nginx.conf");

        if ($opt{fsize}) {
            # ignored signals survive exec: write() fails with EFBIG
            # instead of SIGXFSZ killing the worker
            $SIG{XFSZ} = 'IGNORE';
            unshift @cmd, 'prlimit', "--fsize=$opt{fsize}";
        }

        exec @cmd or die "exec: $!";
    }

    my $until = time + 60;
    while (time < $until) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $port, Proto => 'tcp');
        return 1 if $s;
        sleep 0.02;
    }

    BAIL_OUT("nginx did not start on port $port");
}

sub stop_nginx {
    return unless $pid;

    kill 'QUIT', $pid;

    my $until = time + 60;
    while (time < $until) {
        last if waitpid($pid, WNOHANG) == $pid;
        sleep 0.02;
    }

    if (kill 0, $pid) {
        kill 'KILL', $pid;
        waitpid $pid, 0;
    }

    undef $pid;
}

END { stop_nginx() }

# one HTTP/1.0 exchange: (status, {lowercase headers}, body)
sub http {
    my ($method, $uri, $body) = @_;

    $body //= '';

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 10)
        or return (0, {}, "connect: $!");

    binmode $s;
    print $s "$method $uri HTTP/1.0\r\nHost: localhost\r\n"
             . "Content-Length: " . length($body) . "\r\n\r\n$body";

    local $/;
    my $res = <$s> // '';
    close $s;

    my ($head, $rbody) = split /\r\n\r\n/, $res, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d+)};
    my %h = map { /^([^:]+):\s*(.*)$/ ? (lc $1 => $2) : () }
            split /\r\n/, $head // '';

    return ($status // 0, \%h, $rbody // '');
}

sub put_file {
    my ($name, $data) = @_;

    open my $fh, '>:raw', "$files/$name" or die "$name: $!";
    print $fh $data;
    close $fh;
}

sub slurp {
    my ($path) = @_;

    open my $fh, '<:raw', $path or return undef;
    local $/;
    my $d = <$fh>;
    close $fh;

    return $d;
}

sub temp_files {
    opendir my $dh, $files or die $!;
    my @t = grep { /\.asyncx-/ } readdir $dh;
    closedir $dh;

    return @t;
}

sub log_lines {
    my ($re) = @_;

    return grep { /$re/ } split /\n/, slurp("$dir/logs/error.log") // '';
}

# runs $code in a child; returns a handle to read what it prints (and,
# in list context, the child's pid too).  A server that closes while a
# body is sent is reported by the child, not a SIGPIPE that kills it
# silently.
sub spawn {
    my ($code) = @_;

    my $fh;
    my $child = open($fh, '-|') // die "fork: $!";

    if ($child == 0) {
        $SIG{PIPE} = 'IGNORE';
        $code->();
        POSIX::_exit(0);
    }

    return wantarray ? ($fh, $child) : $fh;
}


start_nginx();


# 1. atomic writes under concurrent readers

my $A = 'a' x 200003;
my $B = 'b' x 300001;

put_file('hot.txt', $A);

# 20 writes; each reader reads at least 10 times and on until the writer
# is done (counts, not a time: a slow machine only takes longer)
my $writer_done = "$dir/writer.done";
unlink $writer_done;

my ($writer, $writer_pid) = spawn(sub {
    my ($n, $fail, $example) = (0, 0, '');

    for (1 .. 10) {
        for my $c ($B, $A) {
            my ($st, $h, $body) = http('POST', '/files/write?path=hot.txt',
                                       $c);
            if ($st == 200) {
                $n++;
            } else {
                $fail++;
                $example ||= "$st " . substr($body, 0, 80);
            }
        }
    }

    open my $fh, '>', $writer_done;
    print "writes=$n failed=$fail $example\n";
});

my @readers = map {
    spawn(sub {
        my ($n, $bad, $example) = (0, 0, '');

        # on until the writer is done, or gone without saying so
        while ($n < 10 || (!-e $writer_done && kill 0, $writer_pid)) {
            my ($st, $h, $body) = http('GET', '/files/read?path=hot.txt');
            $n++;

            my $ok = $st == 200
                     && $body =~ /^\{"content":"([ab]+)","size":(\d+),/
                     && length($1) == $2
                     && (($2 == 200003 && $1 eq $A)
                         || ($2 == 300001 && $1 eq $B));

            if (!$ok) {
                $bad++;
                $example ||= "$st " . substr($body, 0, 80);
            }
        }

        print "reads=$n bad=$bad $example\n";
    })
} 1 .. 3;

# the writer reaped first: the readers then see it gone even if it died
my $w = readline $writer;
close $writer;
my @r = map { scalar readline $_ } @readers;
close $_ for @readers;

my ($writes, $wfail, $wex) = ($w // '') =~ /writes=(\d+) failed=(\d+) ?(.*)/;
diag("a write failed: $wex") if $wfail;
is($writes, 20, "writer replaced the file $writes times");
is($wfail, 0, 'no write failed');

my ($reads, $bad) = (0, 0);

for (@r) {
    my ($n, $b, $ex) = /reads=(\d+) bad=(\d+) ?(.*)/;
    $reads += $n;
    $bad += $b;
    diag("partial read: $ex") if $b;
}

ok($reads >= 30, "readers read the file $reads times meanwhile");
is($bad, 0, 'no reader saw partial or mixed content');

my $final = slurp("$files/hot.txt");
ok($final eq $A || $final eq $B, 'the file holds one complete version');
is(scalar(temp_files()), 0, 'no temp file is left behind');


# 2. the new file keeps the old file's mode

put_file('mode.txt', "old\n");
chmod 0640, "$files/mode.txt";

my ($st) = http('POST', '/files/write?path=mode.txt', "new\n");
is($st, 200, 'write over a 0640 file');
is((stat "$files/mode.txt")[2] & 07777, 0640, 'mode 0640 kept');
is(slurp("$files/mode.txt"), "new\n", 'content replaced');


# 4. queue full: the CPU pool's only thread held, one hash queued, five
#    more refused at once

my $hold = Asyncx::Hold->new($dir);
my $held = spawn(sub { print join ' ', http('GET', '/hold?fifo=' . $hold->path) });
ok($hold->wait_taken, 'the helper task holds the CPU pool\'s only thread');

sub cpu_pool {
    my (undef, undef, $b) = http('GET', '/status');
    return (eval { JSON::PP::decode_json($b) } // {})->{pools}{offload_cpu} // {};
}

sub wait_until {
    my ($what, $cond) = @_;
    my $until = time + 30;
    until ($cond->()) {
        if (time > $until) { diag("gave up waiting for $what"); return 0 }
        sleep 0.01;
    }
    return 1;
}

my $queued = spawn(sub {
    my ($st, undef, $body) = http('POST', '/auth/hash', '{"password": "queued"}');
    print "$st $body";
});
ok(wait_until('the queued hash', sub { (cpu_pool()->{queued} // 0) == 1 }),
   'one hash waits in the queue (max_queue=1: full)');

my @refused = map {
    spawn(sub {
        my ($st, $h) = http('POST', '/auth/hash', '{"password": "burst"}');
        print "$st " . ($h->{'retry-after'} // '-') . "\n";
    })
} 1 .. 5;

my @res = map { scalar readline $_ } @refused;
close $_ for @refused;
is(join('', @res), "503 1\n" x 5,
   'five more hashes: 503 with Retry-After: 1, while the thread is held');

my ($cheap) = http('GET', '/status');
is($cheap, 200, 'a cheap location answers while the pool is held (the loop is free)');
is(cpu_pool()->{rejected}, 5, 'the pool counted five rejections');

$hold->release;
like(scalar readline $held, qr/^200 /, 'the helper task ended when released');
close $held;
like(scalar readline $queued, qr/^200 \{"hash":"pbkdf2_sha256\$1000\$/,
     'the queued hash was served after the release');
close $queued;
is(scalar(log_lines(qr/queue overflow/)), 5, 'nginx logged each overflow');

stop_nginx();

my @bad = log_lines(qr/\[(alert|crit|emerg)\]/);
is(scalar(@bad), 0, 'no alert in the error log') or diag(join "\n", @bad);


# 3. a write that fails half way leaves the old file (RLIMIT_FSIZE 1 MB)

start_nginx(fsize => 1000000);

put_file('keep.txt', "the old content\n");

my ($s3, $h3, $b3) = http('POST', '/files/write?path=keep.txt', 'z' x 2000000);
is($s3, 507, 'a write over the file size limit fails: 507');
like($b3, qr/"error": "file write: write \\"keep\.txt\\": no space \(27: File too large\)"/,
     'the answer names the errno');
is(slurp("$files/keep.txt"), "the old content\n", 'the old file is intact');
is(scalar(temp_files()), 0, 'the partial temp file was removed');

my ($s4, undef, $b4) = http('GET', '/files/read?path=keep.txt');
like($b4, qr/^\{"content":"the old content\\n",/, 'readers still get the old file');

stop_nginx();

@bad = log_lines(qr/\[(alert|crit|emerg)\]/);
is(scalar(@bad), 0, 'no alert in the error log') or diag(join "\n", @bad);


# 5. reload and graceful quit while a hash runs (master process on)

start_nginx(master => 1);

for my $sig (qw(HUP QUIT)) {
    my $hold = Asyncx::Hold->new($dir, "hold-$sig");
    my $held = spawn(sub { print join ' ', http('GET', '/hold?fifo=' . $hold->path) });
    ok($hold->wait_taken, "SIG$sig: the helper holds the CPU pool's thread");

    my $client = spawn(sub {
        my ($st, undef, $body) = http('POST', '/auth/hash',
                                      '{"password": "in flight"}');
        print "$st $body\n";
    });

    ok(wait_until('the hash in the queue', sub { (cpu_pool()->{queued} // 0) == 1 }),
       "SIG$sig: a hash is pending");

    # the signal comes while the task is pending; it runs afterwards
    kill $sig, $pid;
    ok(wait_until('the old worker to shut down',
                  sub { log_lines(qr/gracefully shutting down/) >= ($sig eq 'HUP' ? 1 : 2) }),
       "SIG$sig: the old worker is shutting down");

    $hold->release;
    close $held;

    my $got = readline $client;
    close $client;

    like($got, qr/^200 \{"hash":"pbkdf2_sha256\$1000\$/,
         "SIG$sig while a task is pending: the client still gets its answer");
}

wait_until('nginx to exit', sub { waitpid($pid, WNOHANG) == $pid });

ok(!kill(0, $pid), 'nginx exited after the task (graceful quit)');
undef $pid;

@bad = log_lines(qr/\[(alert|crit|emerg)\]/);
is(scalar(@bad), 0, 'no "open socket left" or other alert')
    or diag(join "\n", @bad);
ok(scalar(log_lines(qr/gracefully shutting down/)) >= 2,
   'workers did shut down gracefully twice');

# like Test::Nginx's runner: TEST_NGINX_ERROR_LOG collects every error.log
# (`make test-asan` looks for sanitizer reports there)
if (my $dst = $ENV{TEST_NGINX_ERROR_LOG}) {
    if (open my $out, '>>', $dst) {
        print $out slurp("$dir/logs/$_") // '' for qw(error.log stderr.log);
    }
}

done_testing();
