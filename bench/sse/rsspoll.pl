#!/usr/bin/perl
# rsspoll.pl PID: reads /proc/PID/status every 10 ms until SIGTERM (or the
# process is gone), then prints the samples and the largest VmRSS (kB).
use strict;
use warnings;
use Time::HiRes qw(sleep);

my ($pid) = @ARGV;
my ($max, $n, $stop) = (0, 0, 0);
$SIG{TERM} = sub { $stop = 1 };
$| = 1;
print "ready\n";
while (!$stop) {
    open(my $f, '<', "/proc/$pid/status") or last;
    while (<$f>) {
        if (/^VmRSS:\s+(\d+)/) { $max = $1 if $1 > $max; last; }
    }
    close $f;
    $n++;
    sleep(0.01);
}
print "rss_samples=$n rss_max_kb=$max\n";
