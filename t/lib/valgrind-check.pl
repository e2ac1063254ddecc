#!/usr/bin/perl
# Reads memcheck logs (one per nginx process) and fails on any invalid
# access, use of uninitialised memory, bad free, or a definite leak whose
# stack passes through the module.  nginx's own exit-time allocations
# (cycle pools, environment) are definite leaks by design and have no
# module frame, so they are reported as ignored, not failures.
use strict;
use warnings;

my ($bad, $ignored) = (0, 0);
local $/ = '';    # one valgrind record per paragraph

for my $file (@ARGV) {
    open my $in, '<', $file or die "$file: $!";
    while (my $rec = <$in>) {
        $rec =~ s/^==\d+== ?//mg;
        next unless $rec =~ /\S/;
        if ($rec =~ /^(Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap)/m) {
            $bad++;
            print "$file:\n$rec\n";
        } elsif ($rec =~ /definitely lost/) {
            if ($rec =~ /ngx_http_asyncx|asyncx_module/) {
                $bad++;
                print "$file:\n$rec\n";
            } else {
                $ignored++;
            }
        }
    }
}

print "valgrind: $bad error(s) in module code, $ignored nginx-core leak record(s) ignored\n";
exit($bad ? 1 : 0);
