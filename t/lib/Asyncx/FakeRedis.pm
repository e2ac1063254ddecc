package Asyncx::FakeRedis;

# A fake Redis for the cluster limiter's hostile suites (t/396, t/397):
# a child process that listens on a port, reads whole RESP commands
# (*N, then N bulk strings) from any number of connections and writes
# what the suite's handler returns for each.  It goes with the test
# however the test ends (it watches its parent, and is killed at END).
#
#   my $fake = Asyncx::FakeRedis->start($port, sub {
#       my (@args) = @_;          # the command and its arguments
#       return "+OK\r\n";         # the raw reply
#   });
#
# The handler runs in the child: what the test needs to know goes
# through files (see the suites).

use strict;
use warnings;

use IO::Socket::INET;
use IO::Select;
use POSIX ();

my @children;

sub start {
    my ($class, $port, $handler) = @_;

    my $listen = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$port",
                                       Listen => 64, ReuseAddr => 1)
        or die "fake redis on $port: $!";

    my $parent = $$;
    my $child = fork // die "fork: $!";

    if ($child == 0) {
        serve($listen, $parent, $handler);
        POSIX::_exit(0);
    }

    close $listen;
    push @children, $child;

    return bless { pid => $child }, $class;
}

sub serve {
    my ($listen, $parent, $handler) = @_;

    my $sel = IO::Select->new($listen);
    my %buf;

    while (getppid() == $parent) {
        for my $fh ($sel->can_read(0.5)) {
            if ($fh == $listen) {
                my $c = $listen->accept or next;
                $sel->add($c);
                $buf{$c} = '';
                next;
            }

            my $n = sysread($fh, my $data, 65536);
            if (!$n) {
                $sel->remove($fh);
                delete $buf{$fh};
                close $fh;
                next;
            }
            $buf{$fh} .= $data;

            # whole commands: *N, then N bulk strings
            while ($buf{$fh} =~ /\A\*(\d+)\r\n/) {
                my ($count, $p) = ($1, length($&));
                my @args;
                for (1 .. $count) {
                    last unless substr($buf{$fh}, $p) =~ /\A\$(\d+)\r\n/;
                    my ($len, $h) = ($1, length($&));
                    last if length($buf{$fh}) < $p + $h + $len + 2;
                    push @args, substr($buf{$fh}, $p + $h, $len);
                    $p += $h + $len + 2;
                }
                last if @args < $count;
                substr($buf{$fh}, 0, $p) = '';

                syswrite($fh, $handler->(@args));
            }
        }
    }
}

END { kill 'TERM', @children if @children; }

1;
