#!/usr/bin/perl
# Reads memcheck logs (one per nginx process) and fails on any invalid
# access, use of uninitialised memory, bad free, or a definite leak whose
# stack passes through the module (or through code unloaded before
# memcheck printed it, as nginx unloads modules at exit).  nginx's own
# exit-time allocations
# (cycle pools, environment) are definite leaks by design and have no
# module frame, so they are reported as ignored, not failures.  Reads of
# uninitialised bytes whose first frame is unknown code ("???") are in
# PCRE2's JIT-compiled matchers, which read whole words past a subject's
# end by design (PCRE2 needs --enable-valgrind to mark them); they are
# counted apart.
use strict;
use warnings;

my ($bad, $ignored, $jit) = (0, 0, 0);

for my $file (@ARGV) {
    open my $in, '<', $file or die "$file: $!";
    local $/;
    my $log = <$in> // '';
    close $in;

    # every line starts with "==pid== "; a record ends at a line that has
    # nothing after that prefix
    $log =~ s/^==\d+== ?//mg;

    for my $rec (split /\n\s*\n/, $log) {
        next unless $rec =~ /\S/;
        if ($rec =~ /^(Conditional jump|Use of uninitialised)[^\n]*\n\s+at 0x[0-9A-F]+: \?\?\?\n/m) {
            $jit++;
        } elsif ($rec =~ /^(Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap)/m) {
            $bad++;
            print "$file:\n$rec\n\n";
        } elsif ($rec =~ /definitely lost/) {
            # a frame with neither a name nor an object ("by 0x..: ???")
            # is in an object unloaded before memcheck printed: a dynamic
            # module (the runner passes --keep-debuginfo=yes to name it)
            if ($rec =~ /ngx_http_asyncx|asyncx_module|: \?\?\?$/m) {
                $bad++;
                print "$file:\n$rec\n\n";
            } else {
                $ignored++;
            }
        }
    }
}

print "valgrind: $bad error(s) in module code, $ignored nginx-core leak record(s) ignored, "
    . "$jit uninitialised read(s) in JIT code ignored\n";
exit($bad ? 1 : 0);
