# Hostile files and files that change under a stream, for the file source
# of asyncx_sse: invalid UTF-8, NUL bytes, control bytes, nesting, line
# lengths at the limit, a 100 MB single line (refused or skipped without
# being held: the worker's memory stays flat), an empty file, a FIFO (400
# at once, no thread left waiting), a directory (400), symlinks out of
# the root (403), a file appended, truncated, replaced, deleted or
# rewritten in place (bytes that are no UTF-8) while its stream waits on
# a client that stopped reading, and a client that leaves (the file is
# closed).
# Every event's data must be UTF-8 JSON (t/ndjson_ref.py checks it).
#
# Deterministic: a stream is made to wait by a client that stops reading
# (small socket buffers, a file whose events outgrow them); the test
# waits until the module's own counters say the stream is blocked, then
# changes the file.  Its own nginx (one worker) on TEST_NGINX_PORT + 3.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use IO::Socket::INET;
use POSIX qw(mkfifo);
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(time sleep);
use JSON::PP ();
use Asyncx::OwnNginx qw(until_true);

do './t/sse_file.pl' or die $@ || $!;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $ngx = sse_file_nginx(offset => 3, name => 'sse-file-hostile',
    dirs => ['data/sub'], pools => 'io', listen => 'sndbuf=16k',
    locations => <<'LOC');
        location = /search {
            asyncx_sse search;
            asyncx_sse_batch_size 1000;
        }

        location = /search/skip {
            asyncx_sse search;
            asyncx_sse_invalid_line skip;
        }

        location = /search/short {
            asyncx_sse search;
            asyncx_sse_max_line_size 100;
            asyncx_sse_invalid_line skip;
        }

        location = /aggregate {
            asyncx_sse aggregate;
            asyncx_sse_query group_by=$arg_group_by value=$arg_value;
            asyncx_sse_invalid_line skip;
        }
LOC

my $data = $ngx->dir . '/data';

sub status {
    my ($code, $body) = $ngx->get('/asyncx/status');
    return $code == 200 ? JSON::PP::decode_json($body) : undef;
}

# the status once no stream is active (polled for 30 s at most)
sub status_when_idle {
    my $st;
    until_true('no active stream', 30, sub {
        $st = status();
        $st && $st->{streams}{active} == 0 }, 0.1);
    return $st;
}

sub kb {
    my ($pid, $field) = @_;
    open my $fh, '<', "/proc/$pid/status" or return -1;
    while (<$fh>) { return $1 if /^$field:\s+(\d+) kB/ }
    return -1;
}

my $worker = status()->{pid};

# --- bytes that are no JSON ------------------------------------------------

my @lines = (
    qq({"m": "python ok"}),
    qq({"m": "python \xff\xfe bad"}),                    # invalid UTF-8
    qq({"m": "python \xc0\xaf overlong"}),
    qq({"m": "python \xed\xa0\x80 surrogate"}),
    qq({"m": "python \x00 nul"}),                        # NUL in a string
    qq({"m": "python"}\x00),                             # NUL after it
    qq(\x00{"m": "python"}),
    qq({"m": "python \x1f ctl"}),
    qq({"m": "python \\ud800 lone"}),
    qq({"m": "python \\ud83d\\ude00 pair"}),
    qq({"m": "python \xf0\x9f\x98\x80 four bytes"}),
    qq({"m": "python", "m": "last wins"}),
    qq({"python": ) . ('[' x 127) . (']' x 127) . '}',   # 128 levels
    qq({"python": ) . ('[' x 128) . (']' x 128) . '}',   # 129 levels
    qq({"m": "python ) . ('x' x 70),                     # no closing quote
    qq(  {"m" : "python"}  \t\r),
    qq({"m": 1e999, "python": 1}),
    qq({"m": -0.0, "python": 1}),
);

write_file("$data/bytes.ndjson", join("\n", @lines) . "\n");

my ($code, $head, $body) = sse_get($ngx, '/search/skip?file=bytes.ndjson'
                                         . '&keyword=python');
is($code, 200, 'hostile bytes: 200');
is(ref_check($body, "$data/bytes.ndjson",
             { op => 'search', batch_size => 1000, keyword => 'python',
               skip_invalid => 1 }),
   'ok complete=1 match=8 progress=1',
   'hostile bytes skipped: the 8 valid lines match, as Python says');
like($body, qr/"skipped": 10,/, 'ten lines skipped');

# the reason of each, in error mode
my @reasons;
for my $i (1 .. $#lines) {
    next if $i == 9 || $i == 10 || $i == 11 || $i == 12 || $i >= 15;
    write_file("$data/one.ndjson", $lines[$i] . "\n");
    ($code, $head, $body) = sse_get($ngx, '/search?file=one.ndjson'
                                          . '&keyword=python');
    my ($msg) = $body =~ /"message": "line 1 \(offset 0\) is not valid JSON: ([^"]+)"/;
    push @reasons, $msg // "none: $body";
}

is_deeply(\@reasons, [
    'invalid UTF-8 at byte 14',
    'invalid UTF-8 at byte 14',
    'invalid UTF-8 at byte 14',
    'control character in a string at byte 14',
    'data after the object at byte 15',
    'not a JSON object at byte 0',
    'control character in a string at byte 14',
    'unpaired surrogate escape at byte 14',
    'nested too deep at byte 138',
    'unterminated string at byte 84',
], 'each refusal says why and where');

# --- line lengths at the limit (asyncx_sse_max_line_size 100) ---------------

# lines of n bytes: 16 of JSON around the x's
my $fill = sub { my ($n) = @_; qq({"m": "python ) . ('x' x ($n - 16)) . '"}' };
write_file("$data/lengths.ndjson",
           join('', map { $fill->($_) . "\n" } 99, 100, 101, 100)
           . $fill->(99) . "\r\n" . $fill->(100) . "\r\n" . $fill->(101));

($code, $head, $body) = sse_get($ngx, '/search/short?file=lengths.ndjson'
                                      . '&keyword=python');
is(ref_check($body, "$data/lengths.ndjson",
             { op => 'search', batch_size => 1000, keyword => 'python',
               max_line => 100, skip_invalid => 1 }),
   'ok complete=1 match=4 progress=1',
   '100 bytes pass, 101 do not (a CR before the LF counts)');

# a file whose name holds a LF: its log line stays one line (\x0a)
write_file("$data/bad\nforged line", qq({"m": "python"}\npython, no json\n));
($code, $head, $body) = sse_get($ngx, '/search?file=bad%0Aforged%20line'
                                      . '&keyword=python');
like($body, qr/"message": "line 2 \(offset 16\) is not valid JSON: /,
     'a name with a LF: streamed, the bad line is an error event');
ok((grep { /asyncx sse: "bad\\x0aforged line" at line 2 \(offset 16\)/ }
    $ngx->error_log), '... logged with the LF as \x0a');
is(scalar(grep { /^forged line/ } $ngx->error_log), 0,
   '... and no log line of its own');

# integers of 19 digits that int64_t holds are summed exactly (no sum
# overflows here: past that, doubles, where Python stays exact)
write_file("$data/big-ints.ndjson",
           qq({"g": "x", "v": 1000000000000000000}\n{"g": "x", "v": -1}\n)
           . qq({"g": "x", "v": -1}\n{"g": "y", "v": 4611686018427387904}\n)
           . qq({"g": "y", "v": -9223372036854775808}\n));
($code, $head, $body) = sse_get($ngx, '/aggregate?file=big-ints.ndjson'
                                      . '&group_by=g&value=v');
is(ref_check($body, "$data/big-ints.ndjson",
             { op => 'aggregate', batch_size => 1000, group_by => 'g',
               value => 'v', skip_invalid => 1 }),
   'ok complete=1 stage=1', '19-digit integers: as Python sums them');
like($body, qr/"by_group": \[\{"key": "x", "stats": \{"records": 3, "count": 3, "sum": 999999999999999998, "min": -1, "max": 1000000000000000000, /,
     '... exact in 64 bits');

# --- a 100 MB line ------------------------------------------------------------

{
    open my $fh, '>', "$data/big.ndjson" or die $!;
    print $fh '{"big": "';
    print $fh 'x' x (1024 * 1024) for 1 .. 100;
    print $fh qq("}\n{"after": "python"}\n);
    close $fh;
}

($code, $head, $body) = sse_get($ngx, '/search?file=big.ndjson'
                                      . '&keyword=python');
$body =~ s/-[0-9a-f]{8}\n/-TAG\n/;
is($body, "id: 0-0-0-0-e-TAG\ndata: {\"type\": \"error\", \"message\": "
          . "\"line 1 (offset 0) is longer than asyncx_sse_max_line_size\", "
          . "\"line\": 1, \"offset\": 0}\n\n",
   'a 100 MB line: refused at once (error event)');

my $st = status();
my ($jobs, $hwm) = ($st->{streams}{jobs}, kb($worker, 'VmHWM'));

($code, $head, $body) = sse_get($ngx, '/search/skip?file=big.ndjson'
                                      . '&keyword=python');
is(ref_check($body, "$data/big.ndjson",
             { op => 'search', batch_size => 1000, keyword => 'python',
               skip_invalid => 1 }),
   'ok complete=1 match=1 progress=1',
   'a 100 MB line skipped, the next line found');
like($body, qr/"total_processed": 2, "total_matches": 1, "skipped": 1,/,
     '... one line skipped');

$st = status();
cmp_ok($st->{streams}{jobs} - $jobs, '>=', 8,
       'read in parts: ' . ($st->{streams}{jobs} - $jobs) . ' jobs (at most '
       . '16 MiB each)');
my $grew = kb($worker, 'VmHWM') - $hwm;
cmp_ok($grew, '<', 20 * 1024,
       "the worker's peak memory grew by $grew kB, not by the line's 100 MB");

unlink "$data/big.ndjson";

# --- offsets past 4 GiB (a sparse file: no disk used) -------------------------

{
    my $far = 5 * 1024 * 1024 * 1024;
    my $line = qq({"m": "python far"}\n);

    open my $fh, '>', "$data/sparse.ndjson" or die $!;
    print $fh qq({"m": "python first"}\n);
    # a line feed just before 5 GiB, the rest of the hole is NUL bytes
    seek($fh, $far - 1, 0) or die $!;
    print $fh "\n", $line, qq({"m": "other"}\n);
    close $fh;

    my $size = -s "$data/sparse.ndjson";
    my $end = $far + length $line;
    my $uri = '/search/skip?file=sparse.ndjson&keyword=python&limit=1';

    # limit=1: complete after the first line, the hole is never read
    ($code, $head, $body) = sse_get($ngx, $uri);
    my $first = length qq({"m": "python first"}\n);
    my ($tag) = $body =~ /^id: $first-1-1-0-m-([0-9a-f]{8})$/m;
    ok($tag, "a sparse file of $size bytes: the first match");
    like($body, qr/"size": $size, "limit_reached": true/,
         '... the size past 4 GiB in full');

    # an id at 5 GiB (the NUL line counted as line 2): one pread checks
    # the line start there, then the stream reads on from it
    ($code, $head, $body) = sse_get($ngx, $uri,
                                    "Last-Event-ID: $far-2-0-0-b-$tag");
    $body =~ s/"total_time_ms": [0-9.]+/"total_time_ms": T/;
    is($body, "id: $end-3-1-0-m-$tag\n"
              . qq(data: {"type": "match", "line": 3, "offset": $far, )
              . qq("record": {"m": "python far"}}\n\n)
              . "id: $end-3-1-0-c-$tag\n"
              . qq(data: {"type": "complete", "total_processed": 3, )
              . qq("total_matches": 1, "skipped": 0, "size": $size, )
              . qq("limit_reached": true, "total_time_ms": T}\n\n),
       'resumed at 5 GiB: offsets and sizes past 4 GiB, exact');

    ($code, $head, $body) = sse_get($ngx, $uri, "Last-Event-ID: "
                                    . ($far + 1) . "-2-0-0-b-$tag");
    is($code, 409, 'one byte further is not a line start: 409');

    unlink "$data/sparse.ndjson";
}

# --- empty files, FIFOs, symlinks -------------------------------------------

write_file("$data/empty.ndjson", '');
($code, $head, $body) = sse_get($ngx, '/aggregate?file=empty.ndjson'
                                      . '&group_by=a&value=b');
like($body, qr/\Aid: 0-0-0-0-c-[0-9a-f]{8}\ndata: \{"type": "complete", "total_processed": 0, "skipped": 0, "size": 0, "result": \{"records": 0, "count": 0, "sum": 0, "min": null, "max": null, "avg": null\}, "groups": 0, "by_group": \[\], "other": null, "total_time_ms": [0-9.]+\}\n\n\z/,
     'an empty file: complete at once, nothing counted');

mkfifo("$data/fifo", 0600) or die "mkfifo: $!";
my $t0 = time;
($code, $head, $body) = sse_get($ngx, '/search?file=fifo&keyword=x');
is($code, 400, 'a FIFO: 400');
is($body, qq({"error": "asyncx_sse: \\"fifo\\" is not a regular file", )
          . qq("status": 400}\n), '... not a regular file');
$st = status();
is($st->{pools}{io}{running} + $st->{pools}{io}{queued}, 0,
   'no thread left waiting on the FIFO');

($code, $head, $body) = sse_get($ngx, '/search?file=sub&keyword=x');
is($code, 400, 'a directory: 400');
is($body, qq({"error": "asyncx_sse: \\"sub\\" is not a regular file", )
          . qq("status": 400}\n), '... not a regular file');

symlink('/etc/hostname', "$data/escape") or die $!;
symlink('/etc', "$data/etc") or die $!;
symlink('lengths.ndjson', "$data/sub/inside") or die $!;
symlink('../lengths.ndjson', "$data/sub/up") or die $!;

# whether what a link outside leads to exists or not (a missing path
# through it was 404: a client could tell which paths exist outside)
for my $f ('escape', 'etc/hostname', 'etc/no-such-file-asyncx',
           'etc/no-such-dir-asyncx/x') {
    ($code, $head, $body) = sse_get($ngx, "/search?file=$f&keyword=x");
    is($code, 403, "symlink out of the root ($f): 403");
    is($body, qq({"error": "asyncx_sse: \\"$f\\" resolves outside the )
              . qq(root", "status": 403}\n), '... resolves outside');
}

($code, $head, $body) = sse_get($ngx, '/search/short?file=sub/up'
                                      . '&keyword=python');
like($body, qr/"total_matches": 4,/,
     'a symlink that stays in the root is followed, as /files/read does');

# --- files that change under a waiting stream ---------------------------------

# a search matching every line: its events outgrow the socket buffers
ref_gen('plain', 21, 20000, "$data/live.ndjson");
my $size = -s "$data/live.ndjson";

sub stalled_stream {
    my ($uri) = @_;
    my $s = IO::Socket::INET->new(Proto => 'tcp') or die $!;
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096);
    $s->connect(Socket::pack_sockaddr_in($ngx->port,
                                         Socket::inet_aton('127.0.0.1')))
        or die "connect: $!";
    print $s "GET $uri HTTP/1.0\r\nHost: localhost\r\n\r\n";

    # until the stream is blocked on its client: nothing queued or
    # running, the job count still
    my ($idle, $jobs, $t0) = (0, -1, time);
    while (time - $t0 < 60 && $idle < 3) {
        my $st = status() or next;
        my $now = $st->{streams}{jobs};
        $idle = ($st->{streams}{active} == 1 && $st->{pools}{io}{queued} == 0
                 && $st->{pools}{io}{running} == 0 && $now == $jobs)
                ? $idle + 1 : 0;
        $jobs = $now;
        sleep 0.1;
    }
    return $idle == 3 ? $s : undef;
}

sub read_all {
    my ($s) = @_;
    local $/;
    my $res = <$s> // '';
    my ($b) = $res =~ /\r\n\r\n(.*)\z/s;
    return $b // '';
}

my $s = stalled_stream('/search?file=live.ndjson&keyword=id');
ok($s, 'a stream waits on a client that stopped reading');
system('cp', "$data/live.ndjson", "$data/live.orig") == 0 or die;

open my $fh, '>>', "$data/live.ndjson" or die $!;
print $fh qq({"id": "appended"}\n) for 1 .. 100;
close $fh;

$body = read_all($s);
is(ref_check($body, "$data/live.orig",
             { op => 'search', batch_size => 1000, keyword => 'id' }),
   'ok complete=1 match=20000 progress=20',
   'appended while streamed: the stream ends at the size it saw at open');
like($body, qr/"total_processed": 20000, "total_matches": 20000, "skipped": 0, "size": $size,/,
     '... 20000 lines, the appended ones are not part of it');

system('cp', "$data/live.orig", "$data/live.ndjson") == 0 or die;

$s = stalled_stream('/search?file=live.ndjson&keyword=id');
ok($s, 'a stream waits again');
truncate("$data/live.ndjson", 1000000) or die $!;
$body = read_all($s);

my @ev = split /\n\n/, $body;
like($ev[-1], qr/\Aid: \d+-\d+-\d+-0-e-[0-9a-f]{8}\ndata: \{"type": "error", "message": "the file was truncated to 1000000 bytes, it had $size", "line": \d+, "offset": \d+\}\z/,
     'truncated while streamed: an error event ends the stream')
    or diag $ev[-1];
my @m = grep { /"type": "match"/ } @ev;
cmp_ok(scalar @m, '>', 100, scalar(@m) . ' matches before it');
my ($last_off) = $m[-1] =~ /"offset": (\d+)/;
cmp_ok($last_off, '<', 1000000, '... all from before the new end');
unlike($body, qr/"type": "complete"/, 'no complete event');

system('cp', "$data/live.orig", "$data/live.ndjson") == 0 or die;

$s = stalled_stream('/search?file=live.ndjson&keyword=id');
ok($s, 'a stream waits once more');
ref_gen('plain', 22, 10, "$data/live.new");
rename("$data/live.new", "$data/live.ndjson") or die $!;
$body = read_all($s);
is(ref_check($body, "$data/live.orig",
             { op => 'search', batch_size => 1000, keyword => 'id' }),
   'ok complete=1 match=20000 progress=20',
   'replaced while streamed: the stream goes on with the file it opened');

my ($mid) = grep { /-m-/ } ref_ids($body);
($code, $head, $body) = sse_get($ngx, '/search?file=live.ndjson&keyword=id',
                                "Last-Event-ID: $mid");
is($code, 409, 'resuming it in the new file: 409 (another file)');

# deleted: the stream goes on with the file it opened, as when replaced
system('cp', "$data/live.orig", "$data/live.ndjson") == 0 or die;

$s = stalled_stream('/search?file=live.ndjson&keyword=id');
ok($s, 'a stream waits before its file is deleted');
unlink "$data/live.ndjson" or die $!;
$body = read_all($s);
is(ref_check($body, "$data/live.orig",
             { op => 'search', batch_size => 1000, keyword => 'id' }),
   'ok complete=1 match=20000 progress=20',
   'deleted while streamed: the stream goes on with the file it opened');

# rewritten in place past where the stream has read (its buffers hold a
# few hundred KiB, the file is larger): lines of bytes that are no UTF-8
# from a line start on.  Each line is still validated when read: the stream ends
# with an error event at the first of them, every event before it is the
# original file's, nothing sent is not UTF-8 JSON.
system('cp', "$data/live.orig", "$data/live.ndjson") == 0 or die;

# the first line that starts 200000 bytes before the end or later
open $fh, '<:raw', "$data/live.orig" or die $!;
seek $fh, $size - 200000, 0 or die $!;
<$fh>;
my $bad = tell $fh;
close $fh;
$s = stalled_stream('/search?file=live.ndjson&keyword=id');
ok($s, 'a stream waits before its file is rewritten in place');
open $fh, '+<:raw', "$data/live.ndjson" or die $!;
seek $fh, $bad, 0 or die $!;
my $junk = qq({"id": "\xff\xfe"}\n) x 10000;
print $fh substr($junk, 0, 100000);
close $fh or die $!;
$body = read_all($s);

@ev = split /\n\n/, $body;
like($ev[-1], qr/\Aid: \d+-\d+-\d+-0-e-[0-9a-f]{8}\ndata: \{"type": "error", "message": "line \d+ \(offset (\d+)\) is not valid JSON: invalid UTF-8 at byte \d+", "line": \d+, "offset": \d+\}\z/,
     'rewritten in place: an error event at the first rewritten line')
    or diag $ev[-1];
my ($err_off) = $ev[-1] =~ /"offset": (\d+)\}\z/;
is($err_off, $bad, '... at the offset where the rewrite starts');
my @bad_json = grep {
    my $data = join "\n", /^data: (.*)$/mg;
    !eval { JSON::PP->new->utf8->decode($data); 1 }
        || !utf8::decode(my $copy = $data)
} @ev;
is(scalar @bad_json, 0, '... every event before it is UTF-8 JSON');
@m = grep { /"type": "match"/ } @ev;
is(scalar @m, scalar(grep { $_ < $err_off } map { /"offset": (\d+)/ }
                     grep { /"type": "match"/ } @ev),
   '... every match from before the rewrite');
($code, $head, $body) = sse_get($ngx, '/search?file=live.orig&keyword=id&limit=' . scalar @m);
my @orig = grep { /"type": "match"/ } split /\n\n/, $body;
s/-[0-9a-f]{8}\n/-TAG\n/ for @orig, @m;
is_deeply(\@m, \@orig, '... and they are the original file\'s first '
          . scalar(@m) . ' matches');

# --- a client that leaves: the file is closed ------------------------------

sub open_fds {
    my @fds;
    opendir my $d, "/proc/$worker/fd" or return ();
    for (readdir $d) {
        my $l = readlink "/proc/$worker/fd/$_" // next;
        push @fds, $l if $l =~ /live/;
    }
    return @fds;
}

system('cp', "$data/live.orig", "$data/live.ndjson") == 0 or die;
$st = status();
my $aborted = $st->{streams}{aborted};

$s = stalled_stream('/search?file=live.ndjson&keyword=id');
ok($s, 'a stream waits for the last time');
is(scalar(open_fds()), 1, 'the worker has the file open');
close $s;

$st = status_when_idle();
is($st->{streams}{aborted} - $aborted, 1, 'the client left: aborted');
is(scalar(open_fds()), 0, 'the file is closed');

# --- a file name with control bytes: log lines quote it escaped ------------

# a name holding a line feed and a "[crit]" would forge a log line
my $forged = "bad\n[crit] forged";
write_file("$data/$forged", qq({"a": 1}\nbad\n));
system('cp', "$data/live.orig", "$data/$forged.live") == 0 or die;

($code, $head, $body) = sse_get($ngx, '/search?file=bad%0A%5Bcrit%5D'
                                      . '%20forged&keyword=bad');
like($body, qr/"type": "error", "message": "line 2 \(offset 9\) is not valid JSON/,
     'a file whose name holds a line feed: its bad line ends the stream');

$s = stalled_stream('/search?file=bad%0A%5Bcrit%5D%20forged.live'
                    . '&keyword=id');
ok($s, 'a stream of it waits on its client');
close $s;

$st = status_when_idle();

my @log = $ngx->error_log;
my $escaped = 'bad\\\\x0a\[crit\] forged';
ok((grep { /asyncx sse: "$escaped" at line 2 \(offset 9\): is not valid JSON, the stream ends with an error event/ } @log),
   'the error event\'s log line quotes the name with \\x0a');
ok((grep { /asyncx sse: client closed the stream of "$escaped\.live" after/ } @log),
   'the client-closed line quotes it with \\x0a');
my @forged = grep { !/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[\w+\] \d+#\d+: / } @log;
is(scalar @forged, 0, 'every error.log line is one of nginx\'s, none forged')
    or diag @forged;

ok((grep { /client closed the stream of "live.ndjson" after \d+ events, \d+ lines \(offset \d+ of $size\), remaining work cancelled/ } @log),
   'the info line says where the stream was');
my @bad = grep { /^\S+ \S+ \[(alert|crit|emerg)\]/ } @log;
is(scalar @bad, 0, 'no alert in the error log') or diag @bad;

$ngx->stop;

done_testing();
