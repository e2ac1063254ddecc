# A file larger than 4 GiB, end to end: lines before and after a run of
# 4 GiB of zero bytes (a hole of a sparse file: almost no disk, read as
# zeros), which is one line longer than asyncx_sse_max_line_size and is
# skipped without being kept whole.  The matches past 2^32 carry their
# exact line numbers and byte offsets (computed here from the lines the
# test wrote), the counts are exact, and Last-Event-ID of an event past
# 4 GiB resumes there: the rest of the uninterrupted stream, reading only
# the lines after it.  The file is deleted at the end.
#
# Its own nginx (one worker) on TEST_NGINX_PORT + 9.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use JSON::PP ();
use Asyncx::OwnNginx;

do './t/sse_file.pl' or die $@ || $!;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $ngx = sse_file_nginx(offset => 9, name => 'sse-file-large',
    locations => <<'LOC');
        location = /search {
            asyncx_sse search;
            asyncx_sse_batch_size 100000;
            asyncx_sse_invalid_line skip;
            send_timeout 600s;
        }
LOC

my $file = $ngx->dir . '/data/big.ndjson';

# sse_get() with room for 4 GiB read on a busy machine
sub get_big {
    my @headers = @_;
    return sse_get_within($ngx, 600, '/search?file=big.ndjson&keyword=python',
                          @headers);
}
my $hole_end = 4 * 1024 * 1024 * 1024 + 4096;

# the lines, their numbers and offsets, as the test writes them
my (@head, @tail, @expect);
my $off = 0;
for my $i (0 .. 99) {
    my $line = sprintf('{"id":%d,"msg":"head %s"}', $i,
                       $i % 10 ? 'plain' : 'python');
    push @expect, [$i + 1, $off, $line] unless $i % 10;
    push @head, $line;
    $off += length($line) + 1;
}
my $hole_start = $off;
$off = $hole_end + 1;
for my $j (0 .. 99) {
    my $line = sprintf('{"id":%d,"msg":"tail %s"}', 1000 + $j,
                       $j % 10 ? 'plain' : 'python');
    push @expect, [102 + $j, $off, $line] unless $j % 10;
    push @tail, $line;
    $off += length($line) + 1;
}
my $size = $off;

open my $fh, '>:raw', $file or die "$file: $!";
print $fh map { "$_\n" } @head;
truncate($fh, $hole_end) or die "truncate: $!";
seek($fh, 0, 2) or die "seek: $!";
print $fh "\n", map { "$_\n" } @tail;
close $fh or die "$file: $!";

END { unlink $file if defined $file }

my @st = stat $file;
is($st[7], $size, "the file is $size bytes, past 2^32");
Asyncx::OwnNginx::skip_all_unless($st[12] * 512 < 64 * 1024 * 1024,
                                  'the file system has no sparse files');

my ($code, $head, $body) = get_big();
is($code, 200, 'the 4 GiB stream: 200');

my @ev;
for my $block (grep { $_ ne ': keepalive' } split /\n\n/, $body) {
    my ($id) = $block =~ /^id: (.*)$/m;
    my ($data) = $block =~ /^data: (.*)$/m;
    push @ev, [$id // '-', JSON::PP::decode_json($data)];
}
my @matches = grep { $_->[1]{type} eq 'match' } @ev;

is(scalar @matches, 20, '20 matches, 10 before the zeros and 10 after');
is_deeply([map { [$_->[1]{line}, $_->[1]{offset},
                  JSON::PP->new->canonical->encode($_->[1]{record})] }
           @matches],
          [map { [$_->[0], $_->[1],
                  JSON::PP->new->canonical->encode(
                      JSON::PP::decode_json($_->[2]))] } @expect],
          'every match: its line number, byte offset (past 2^32 after the '
          . 'zeros) and record');

my $last = $ev[-1][1];
is($last->{type}, 'complete', 'the stream completes');
is_deeply([@$last{qw(total_processed total_matches skipped size)}],
          [201, 20, 1, $size],
          '201 lines, 20 matches, the zeros skipped as one line too long, '
          . 'the size');

# resume after the third match past 4 GiB (line 122)
my ($at) = grep { $matches[$_][1]{line} == 122 } 0 .. $#matches;
my $id = $matches[$at][0];
like($id, qr/^(\d+)-122-13-1-m-/, "the id of line 122: $id");
my ($id_off) = $id =~ /^(\d+)/;
cmp_ok($id_off, '>', 2 ** 32, 'its offset is past 2^32');

my @rest;
my $seen = 0;
for my $block (grep { $_ ne ': keepalive' } split /\n\n/, $body) {
    push @rest, $block if $seen;
    $seen = 1 if $block =~ /^id: \Q$id\E$/m;
}

my $before = $ngx->json('/asyncx/status')->{streams}{records};
($code, $head, my $resumed) = get_big("Last-Event-ID: $id");
is($code, 200, 'resumed past 4 GiB: 200');

my @got = grep { $_ ne ': keepalive' } split /\n\n/, $resumed;
s/"total_time_ms": [0-9.]+/"total_time_ms": T/ for @got, @rest;
is_deeply(\@got, \@rest, 'resumed past 4 GiB: exactly the rest of the '
                         . 'stream (' . scalar(@rest) . ' events)');
is($ngx->json('/asyncx/status')->{streams}{records} - $before, 79,
   'resumed at line 122 of 201: the stream read 79 lines, not the 4 GiB '
   . 'before them');

unlike(join('', $ngx->error_log), qr/\[(alert|crit|emerg)\]/,
       'no alert in the error log');

$ngx->stop;
unlink $file;
ok(!-e $file, 'the 4 GiB file is deleted');

done_testing();
