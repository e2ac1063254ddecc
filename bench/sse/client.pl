#!/usr/bin/perl
# SSE client for bench/sse/run.sh (HTTP/1.0, so the body is the plain
# event stream, closed by nginx at the end).
#   client.pl one  PORT PATH     one stream: ms to the response header and
#                                to the first "data:" line, total seconds,
#                                match events, complete event's total_matches
#   client.pl many PORT PATH N   N streams opened at once, read together;
#                                how many ended with a "type": "complete" event
#                                (a "%d" in PATH is the stream's number, 1..N)
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use Time::HiRes qw(time);

my ($mode, $port, $path, $n) = @ARGV;
my $req = "GET $path HTTP/1.0\r\nHost: bench\r\n\r\n";

sub conn {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp') or die "connect: $!\n";
    return $s;
}

if ($mode eq 'one') {
    my $t0 = time;
    my $s = conn();
    print $s $req;
    my ($th, $td, $matches, $total, $status) = (undef, undef, 0, -1, '');
    while (my $line = <$s>) {
        $th //= time;
        $status = $1 if !$status && $line =~ m{^HTTP/1\.\d (\d+)};
        next unless $line =~ /^data: /;
        $td //= time;
        $matches++ if $line =~ /"type": "match"/;
        $total = $1 if $line =~ /"type": "complete",.* "total_matches": (\d+)/;
    }
    my $t1 = time;
    printf "status=%s header_ms=%.2f first_data_ms=%.2f total_s=%.4f"
           . " match_events=%d total_matches=%d\n",
           $status, ($th - $t0) * 1000, ($td - $t0) * 1000, $t1 - $t0,
           $matches, $total;
    exit 0;
}

die "usage: client.pl one|many PORT PATH [N]\n" unless $mode eq 'many';

my $t0 = time;
my $sel = IO::Select->new;
my (%buf, %done, $failed);
$failed = 0;
for my $i (1 .. $n) {
    my $s = eval { conn() };
    if (!$s) { $failed++; next; }
    (my $r = $req) =~ s/%d/$i/;
    print $s $r;
    $s->blocking(0);
    $sel->add($s);
    $buf{$s} = '';
}
my $topen = time;
my $complete = 0;
while ($sel->count) {
    for my $s ($sel->can_read(30)) {
        my $r = sysread($s, my $chunk, 65536);
        if (defined $r && $r > 0) {
            $buf{$s} .= $chunk;
            next;
        }
        next if !defined $r && $!{EAGAIN};
        $complete++ if $buf{$s} =~ /^data: \{"type": "complete"/m;
        delete $buf{$s};
        $sel->remove($s);
        close $s;
    }
}
printf "streams=%d connect_failed=%d complete=%d open_s=%.3f total_s=%.3f\n",
       $n, $failed, $complete, $topen - $t0, time - $t0;
