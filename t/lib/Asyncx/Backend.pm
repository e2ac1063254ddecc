package Asyncx::Backend;

# A raw HTTP backend for the pipeline's suites that need one nginx
# cannot play (t/112, t/113): a child process that accepts connections
# on a port, reads each request (its header, then a Content-Length body)
# and lets the suite's handler write whatever bytes it likes, then
# closes.  It goes with the test however the test ends (it watches its
# parent, and is killed at END).
#
#   Asyncx::Backend->start($port, sub {
#       my ($c, $head, $body, $target, $path) = @_;
#       print $c "HTTP/1.1 200 OK\r\n...";
#   }, fork_each => 1);      # a process per connection (default: one
#                            # connection at a time)
#
# Each request is counted by its path (non-word bytes as '_'):
# $backend->asked('/cut') is how many times /cut was asked for.

use strict;
use warnings;

use IO::Socket::INET;
use IO::Select;
use File::Temp ();
use POSIX ();

my @children;

sub start {
    my ($class, $port, $handler, %opt) = @_;

    my $dir = File::Temp::tempdir('asyncx-backend-XXXXXX', TMPDIR => 1,
                                  CLEANUP => 1);

    my $listen = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$port",
                                       Listen => 64, ReuseAddr => 1)
        or die "backend on $port: $!";

    my $parent = $$;
    my $child = fork // die "fork: $!";

    if ($child == 0) {
        local $SIG{CHLD} = 'IGNORE' if $opt{fork_each};
        my $sel = IO::Select->new($listen);

        while (getppid() == $parent) {
            next unless $sel->can_read(0.5);
            my $c = $listen->accept or next;

            if ($opt{fork_each}) {
                my $pid = fork;
                if (defined $pid && $pid == 0) {
                    serve($c, $dir, $handler);
                    POSIX::_exit(0);
                }
            } else {
                serve($c, $dir, $handler);
            }

            close $c;
        }

        POSIX::_exit(0);
    }

    close $listen;
    push @children, $child;

    return bless { pid => $child, dir => $dir }, $class;
}

sub serve {
    my ($c, $dir, $handler) = @_;

    my $req = '';
    while ($req !~ /\r\n\r\n/) {
        my $n = sysread($c, my $buf, 65536);
        return unless $n;
        $req .= $buf;
    }

    my ($len) = $req =~ /\r\ncontent-length: *(\d+)/i;
    my ($head, $body) = split /\r\n\r\n/, $req, 2;
    $body //= '';
    while (defined $len && length($body) < $len) {
        my $n = sysread($c, my $buf, 65536);
        last unless $n;
        $body .= $buf;
    }

    my ($target) = $head =~ m{^\S+ (\S+)};
    $target //= '/';
    (my $path = $target) =~ s/\?.*//s;

    (my $name = $path) =~ s{\W}{_}g;
    if (open my $fh, '>>', "$dir/asked$name") { print $fh "x"; close $fh }

    $handler->($c, $head, $body, $target, $path);
}

# how many times $path was asked for
sub asked {
    my ($self, $path) = @_;

    (my $name = $path) =~ s{\W}{_}g;

    return -s "$self->{dir}/asked$name" // 0;
}

# the paths asked for whose name starts with $prefix (as counted)
sub asked_like {
    my ($self, $prefix) = @_;

    (my $name = $prefix) =~ s{\W}{_}g;

    return glob("$self->{dir}/asked$name*");
}

END { kill 'TERM', @children if @children; }

1;
