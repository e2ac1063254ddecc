package Asyncx::Browser;

# Headless Chromium (Debian's package) for the suites that check what a
# real browser sees (t/490, t/491, t/492):
#   my $chromium = Asyncx::Browser::chromium();   # path, or undef
#   my @flags = Asyncx::Browser::flags(20000);    # virtual time, ms
#   my $dom = Asyncx::Browser::dump_dom($url, "$dir/profile", 20000);

use strict;
use warnings;

sub chromium {
    my ($path) = grep { -x } ($ENV{CHROMIUM} // (), '/usr/bin/chromium');
    return $path;
}

# the flags the machine's closed network needs (no background fetches)
sub flags {
    my ($budget) = @_;
    return (qw(--headless --no-sandbox --disable-gpu --disable-quic
               --no-first-run --disable-background-networking
               --disable-component-update --disable-sync),
            "--virtual-time-budget=$budget");
}

# the page's DOM once its virtual time has run out ('' if the browser
# failed), with a profile directory of the suite's own
sub dump_dom {
    my ($url, $profile, $budget) = @_;
    my $chromium = chromium() or return '';
    my @flags = flags($budget);
    return `timeout 120 $chromium @flags --user-data-dir=$profile --dump-dom '$url' 2>/dev/null` // '';
}

1;
