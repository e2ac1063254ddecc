#!/usr/bin/perl
# Polls http://127.0.0.1:PORT/PATH every INTERVAL ms for SECONDS and prints
# the largest value of each named number seen in the JSON answers:
#   poll.pl PORT PATH SECONDS INTERVAL_MS key1 [key2 ...]
# A key is matched as "key": N (the first occurrence) or "a.b" as
# "a": {... "b": N (the first "b" after "a").
use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

my ($port, $path, $secs, $ms, @keys) = @ARGV;
my %max = map { $_ => -1 } @keys;
my ($n, $fail) = (0, 0);
my $end = time + $secs;

while (time < $end) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1);
    if (!$s) { $fail++; sleep($ms / 1000); next; }
    print $s "GET $path HTTP/1.0\r\nHost: bench\r\n\r\n";
    local $/;
    my $r = <$s> // '';
    close $s;
    $n++;
    for my $k (@keys) {
        my ($a, $b) = split /\./, $k, 2;
        my $re = defined $b ? qr/"\Q$a\E"\s*:\s*\{.*?"\Q$b\E"\s*:\s*(\d+)/s
                            : qr/"\Q$a\E"\s*:\s*(\d+)/;
        $max{$k} = $1 if $r =~ $re && $1 > $max{$k};
    }
    sleep($ms / 1000);
}

print join(' ', "samples=$n", "failed=$fail", map { "max_$_=$max{$_}" } @keys), "\n";
