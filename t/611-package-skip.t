# t/610-package.t outside `make test-package` skips, and says nothing
# else: a skipped suite that warns on stderr ("Use of uninitialized value
# $main_pid" from its END block) hides the warnings that matter.

use strict;
use warnings;

use Test::More tests => 3;
use IPC::Open3;
use Symbol qw(gensym);

local $ENV{ASYNCX_TEST_DEB};
delete $ENV{ASYNCX_TEST_DEB};

my $err = gensym;
my $pid = open3(my $in, my $out, $err, $^X, 't/610-package.t');
close $in;
my $stdout = do { local $/; <$out> };
my $stderr = do { local $/; <$err> };
waitpid $pid, 0;

is($? >> 8, 0, 't/610-package.t exits 0 when it skips');
like($stdout, qr/\A1\.\.0 # SKIP run by make test-package/,
     'it plans a skip');
is($stderr, '', 'it writes nothing on stderr');
