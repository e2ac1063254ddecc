package Asyncx::Hold;

# One thread of a thread pool, taken and given back by the test, through
# the test helper module t/hold/ (asyncx_test_hold <pool>): its task
# opens a FIFO for reading and reads until the test closes the write end.
#
#   my $hold = Asyncx::Hold->new($dir);          # makes $dir/hold.fifo
#   my $h = $ngx->spawn_request("GET /hold?fifo=" . $hold->path ...);
#   $hold->wait_taken or fail(...);   # the task is in the thread now
#   ...                               # the pool is busy for as long as
#   $hold->release;                   # the test wants, whatever the
#                                     # machine's speed
#
# Or in one step, for a suite with an nginx of its own (Asyncx::OwnNginx):
#
#   my $h = Asyncx::Hold->request($ngx, '/z/api/hold', 'h1');
#   $h->wait_taken or fail(...);
#   is($h->finish, 200);              # released; the answer's status
#
# wait_taken() knows: a non-blocking open() of a FIFO's write end fails
# with ENXIO until a reader has it open, and only the helper's thread
# opens it.

use strict;
use warnings;

use Errno ();
use Fcntl qw(O_WRONLY O_NONBLOCK);
use POSIX qw(mkfifo);
use Time::HiRes qw(time sleep);

sub new {
    my ($class, $dir, $name) = @_;

    my $path = "$dir/" . ($name // 'hold') . '.fifo';
    unlink $path;
    mkfifo($path, 0600) or die "mkfifo $path: $!";

    return bless { path => $path }, $class;
}

sub path { $_[0]{path} }

# a hold named $name in $ngx's directory, taken by a GET of $uri
# (a location of asyncx_test_hold) sent in the background; the client
# waits up to $timeout seconds (default 120) for its answer
sub request {
    my ($class, $ngx, $uri, $name, $timeout) = @_;

    my $self = $class->new($ngx->dir, $name);

    $self->{ngx} = $ngx;
    $self->{child} = $ngx->spawn_request(
        "GET $uri?fifo=$self->{path} HTTP/1.0\r\nHost: localhost\r\n\r\n",
        $timeout // 120);

    return $self;
}

# the raw answer to request()'s GET (waits for it; read once, kept)
sub answer {
    my ($self) = @_;

    $self->{answer} //= $self->{ngx}->collect(delete $self->{child})
        if $self->{child};

    return $self->{answer} // '';
}

# lets request()'s held task end: the status of its answer (0 if none)
sub finish {
    my ($self) = @_;

    $self->wait_taken(0);
    $self->release;

    return ($self->answer =~ m{^HTTP/1\.\d (\d+)})[0] // 0;
}

# true once the helper's task runs in a thread (or false after $timeout)
sub wait_taken {
    my ($self, $timeout) = @_;

    my $until = time + ($timeout // 30);

    while (1) {
        if (sysopen my $fh, $self->{path}, O_WRONLY | O_NONBLOCK) {
            $self->{fh} = $fh;
            return 1;
        }

        die "open $self->{path}: $!" unless $!{ENXIO};
        return 0 if time > $until;
        sleep 0.005;
    }
}

# the task reads $data (default "released") and ends
sub release {
    my ($self, $data) = @_;

    my $fh = delete $self->{fh} or return;
    syswrite $fh, $data // 'released';
    close $fh;
}

# For Test::Nginx blocks, where the test cannot act between two steps
# of a request: a child process waits until $count lines of $log (so
# far) match $re and releases the hold after each one (one per repeat
# of the block), giving up after $timeout seconds.  Call it from the
# block's --- init; the FIFO must live outside the servroot.
sub release_on_log {
    my ($self, $log, $re, $count, $timeout) = @_;

    my $pid = fork // die "fork: $!";
    return $pid if $pid;

    my $until = time + ($timeout // 120);

    for my $n (1 .. $count // 1) {
        my $seen = 0;

        while (time < $until && $seen < $n) {
            if (open my $in, '<', $log) {
                $seen = grep { $_ =~ $re } <$in>;
            }
            sleep 0.01;
        }

        last unless $seen >= $n && $self->wait_taken($until - time);
        $self->release;
    }

    POSIX::_exit(0);
}

sub DESTROY { $_[0]->release }

1;
