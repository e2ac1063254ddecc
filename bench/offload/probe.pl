#!/usr/bin/perl
# Paced latency probe: GET <url> at <rate>/s for <seconds> on one
# keep-alive connection; prints count, errors and p50/p90/p99/max in ms.
# usage: probe.pl http://127.0.0.1:21100/ping 50 8

use strict;
use warnings;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

my ($url, $rate, $secs) = @ARGV;
my ($host, $port, $path) = $url =~ m{^http://([^:/]+):(\d+)(/.*)$}
    or die "usage: $0 http://host:port/path rate seconds\n";

my $sock;
my @lat;
my $errors = 0;

sub connect_once {
    $sock = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5);
}

sub one {
    connect_once() unless $sock;
    return 0 unless $sock;

    print $sock "GET $path HTTP/1.1\r\nHost: $host\r\n\r\n";

    my $head = '';
    while ($head !~ /\r\n\r\n/) {
        my $n = sysread($sock, my $buf, 4096);
        return 0 unless $n;
        $head .= $buf;
    }

    my ($h, $body) = split /\r\n\r\n/, $head, 2;
    my ($len) = $h =~ /Content-Length:\s*(\d+)/i;
    $len //= 0;

    while (length($body) < $len) {
        my $n = sysread($sock, my $buf, 4096);
        return 0 unless $n;
        $body .= $buf;
    }

    return $h =~ m{^HTTP/1\.1 200};
}

my $start = time;
my $next = $start;

while (time - $start < $secs) {
    my $t = time;

    if (one()) {
        push @lat, (time - $t) * 1000;
    } else {
        $errors++;
        undef $sock;
    }

    $next += 1 / $rate;
    my $d = $next - time;
    sleep $d if $d > 0;
}

@lat = sort { $a <=> $b } @lat;
my $pct = sub { @lat ? $lat[int(($#lat) * $_[0] / 100 + 0.5)] : -1 };

printf "probe requests=%d errors=%d p50=%.2f p90=%.2f p99=%.2f max=%.2f ms\n",
       scalar(@lat), $errors, $pct->(50), $pct->(90), $pct->(99),
       @lat ? $lat[-1] : -1;
