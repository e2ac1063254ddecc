# An invalid line inside a batch of a file stream (asyncx_sse_invalid_line
# error): what the lines before it gave goes out before the error event
# (a transform's open batch, an aggregate's stage), with the id a resume
# expects, as a search sends its matches before it.  The error's id
# counts those lines done and resumes to 204, so without that event they
# were lost.  The bad line at every place of a batch (first, middle,
# last line; first and second batch; too long a line), each stream
# against events computed here from the file's bytes and against
# t/ndjson_ref.py; a resume after the last event before the error gives
# exactly the error; asyncx_sse_invalid_line skip goes on as before.  A
# partial batch too large for the output left by the events before it
# (no room: the job stops, the next one redoes the line).
#
# Its own nginx (one worker) on TEST_NGINX_PORT + 1.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use JSON::PP ();
use Asyncx::OwnNginx;

do './t/sse_file.pl' or die $@ || $!;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $ngx = sse_file_nginx(offset => 1, name => 'sse-file-partial',
    locations => <<'LOC');
        location = /x/transform {
            asyncx_sse transform;
            asyncx_sse_query fields=$arg_fields;
        }

        location = /x/aggregate {
            asyncx_sse aggregate;
            asyncx_sse_query group_by=$arg_group_by value=$arg_value;
        }

        location = /x/search {
            asyncx_sse search;
        }

        location = /short/transform {
            asyncx_sse transform;
            asyncx_sse_query fields=$arg_fields;
            asyncx_sse_max_line_size 64;
        }

        location = /short/aggregate {
            asyncx_sse aggregate;
            asyncx_sse_query group_by=$arg_group_by value=$arg_value;
            asyncx_sse_max_line_size 64;
        }

        location = /skip/transform {
            asyncx_sse transform;
            asyncx_sse_query fields=$arg_fields;
            asyncx_sse_invalid_line skip;
        }

        location = /skip/aggregate {
            asyncx_sse aggregate;
            asyncx_sse_query group_by=$arg_group_by value=$arg_value;
            asyncx_sse_invalid_line skip;
        }
LOC

my $data = $ngx->dir . '/data';
my $json = JSON::PP->new->canonical;

# the events of a body: [id, data decoded]
sub events {
    my ($body) = @_;
    my @ev;
    for my $block (split /\n\n/, $body) {
        next if $block eq ': keepalive';
        my ($id) = $block =~ /^id: (.*)$/m;
        my $text = join "\n", $block =~ /^data: (.*)$/mg;
        my $d = eval { $json->decode($text) } // { unparsed => $text };
        delete $d->{total_time_ms};
        push @ev, [$id // '-', $d];
    }
    return @ev;
}

sub fnv {
    my ($h, $s) = @_;
    $h = (($h ^ ord $_) * 16777619) % 4294967296 for split //, $s;
    return $h;
}

# N lines {"k":"a"|"b","v":i}, line BAD replaced by $bad_text
sub lines {
    my ($n, $bad, $bad_text) = @_;
    return map { $_ == $bad ? $bad_text
                            : sprintf('{"k":"%s","v":%d}',
                                      $_ % 2 ? 'a' : 'b', $_) } 1 .. $n;
}

# the events of the stream up to the bad line, computed from the lines:
# each full batch before it, the lines of its own batch before it, the
# error (the ids without their tag)
sub expect {
    my ($op, $b, $bad, $why, @lines) = @_;
    my $size = 0;
    $size += length($_) + 1 for @lines;
    my @off = (0);                   # $off[$i]: after $i lines
    push @off, $off[-1] + length($_) + 1 for @lines;

    my @ev;
    my $stats = sub {
        my ($n) = @_;
        my $sum = $n * ($n + 1) / 2;
        return { records => $n, count => $n, sum => $sum, min => 1,
                 max => $n, avg => $sum / $n };
    };
    my $event = sub {
        my ($from, $to) = @_;        # lines $from + 1 .. $to
        my $id = "$off[$to]-$to-0-0-b";
        if ($op eq 'transform') {
            my @recs = map { { val => $_, k => $_ % 2 ? 'a' : 'b' } }
                       $from + 1 .. $to;
            my $h = 2166136261;
            $h = fnv($h, sprintf(qq({"val": %d, "k": "%s"}\n), $_->{val},
                                 $_->{k})) for @recs;
            push @ev, [$id, { type => 'batch',
                              batch_num => int($from / $b) + 1,
                              items_processed => $to, skipped => 0,
                              offset => $off[$to], size => $size,
                              count => $to - $from,
                              checksum => sprintf('%08x', $h),
                              records => \@recs }];
        } else {
            push @ev, [$id, { type => 'stage',
                              stage => int(($to + $b - 1) / $b),
                              processed => $to, skipped => 0,
                              offset => $off[$to], size => $size,
                              groups => $to > 1 ? 2 : 1,
                              partial => $stats->($to) }];
        }
    };

    my $done = 0;
    while ($done + $b < $bad) {
        $event->($done, $done + $b);
        $done += $b;
    }
    $event->($done, $bad - 1) if $done < $bad - 1;

    my $o = $off[$bad - 1];
    push @ev, ["$o-" . ($bad - 1) . '-0-0-e',
               { type => 'error', line => $bad, offset => $o,
                 message => "line $bad (offset $o) $why" }];
    return @ev;
}

sub untagged {
    my ($id) = @_;
    (my $u = $id) =~ s/-[0-9a-f]{8}\z//;
    return $u;
}

my %uri = (
    transform => 'transform?fields=v:val,k',
    aggregate => 'aggregate?group_by=k&value=v',
);

my %ref = (
    transform => { op => 'transform', fields => 'v:val,k' },
    aggregate => { op => 'aggregate', group_by => 'k', value => 'v' },
);

my $n = 0;

# [lines, the bad line, batch_size, where: x (invalid JSON) or short
# (too long a line)], the bad line at each place of a batch
for my $case ([10, 3, 4, 'x'],     # middle of the first batch
              [10, 1, 4, 'x'],     # first line of the file
              [10, 2, 4, 'x'],     # second line of the file
              [10, 4, 4, 'x'],     # last line of a batch
              [10, 5, 4, 'x'],     # first line of the second batch
              [10, 7, 4, 'x'],     # middle of the second batch
              [10, 8, 4, 'x'],     # last line of the second batch
              [10, 10, 4, 'x'],    # last line of the file
              [10, 6, 3, 'x'],     # last line of the second batch of 3
              [10, 6, 100, 'x'],   # one batch for the whole file
              [10, 3, 4, 'short'], [10, 7, 4, 'short'])
{
    my ($lines, $bad, $b, $where) = @$case;
    my $bad_text = $where eq 'x' ? '{"k":' : '{"k":"' . ('x' x 100) . '"}';
    my $why = $where eq 'x'
              ? 'is not valid JSON: unexpected end at byte 5'
              : 'is longer than asyncx_sse_max_line_size';
    my @lines = lines($lines, $bad, $bad_text);
    my $file = 'p' . $n++ . '.ndjson';
    write_file("$data/$file", join '', map { "$_\n" } @lines);

    for my $op ('transform', 'aggregate') {
        my $uri = "/$where/$uri{$op}&file=$file&batch_size=$b";
        my $what = "$op, line $bad of $lines bad ($where), batch_size $b";

        my ($code, $head, $body) = sse_get($ngx, $uri);
        is($code, 200, "$what: 200");

        my @got = events($body);
        my @want = expect($op, $b, $bad, $why, @lines);
        is_deeply([map { [untagged($_->[0]), $_->[1]] } @got], \@want,
                  "$what: the events before the bad line, then the error")
            or diag $body;

        my %q = (%{ $ref{$op} }, batch_size => $b);
        $q{max_line} = 64 if $where eq 'short';
        my $res = ref_check($body, "$data/$file", \%q);
        like($res, qr/^ok /, "$what: as Python computes it") or diag $res;

        # resumed after the last event before the error: exactly the error
        if (@got > 1) {
            my ($c, $h, $rest) = sse_get($ngx, $uri,
                                         "Last-Event-ID: $got[-2][0]");
            is($c, 200, "$what: resumed after $got[-2][0]: 200");
            is_deeply([events($rest)], [$got[-1]],
                      "$what: ... the error event, with the same id")
                or diag $rest;
        }

        # after the error: EventSource is told to stop
        my ($c) = sse_get($ngx, $uri, "Last-Event-ID: $got[-1][0]");
        is($c, 204, "$what: resumed after the error: 204");
    }
}

# the case of the report: 2 records before the bad line, batch_size 4

write_file("$data/tx.ndjson", qq({"g":1}\n{"g":2}\n{"g":\n{"g":4}\n));

my ($code, $head, $body) = sse_get($ngx, '/x/transform?file=tx.ndjson'
                                         . '&fields=g&batch_size=4');
$body =~ s/-[0-9a-f]{8}\n/-TAG\n/g;
is($body, <<'BODY', 'transform: the records of lines 1 and 2, then the error');
id: 16-2-0-0-b-TAG
data: {"type": "batch", "batch_num": 1, "items_processed": 2, "skipped": 0, "offset": 16, "size": 30, "count": 2, "checksum": "d81d3294", "records": [{"g": 1}, {"g": 2}]}

id: 16-2-0-0-e-TAG
data: {"type": "error", "message": "line 3 (offset 16) is not valid JSON: unexpected end at byte 5", "line": 3, "offset": 16}

BODY

# a search sent the matches of lines 1 and 2 already: no progress event

($code, $head, $body) = sse_get($ngx, '/x/search?file=tx.ndjson'
                                      . '&keyword=g&batch_size=4');
is_deeply([map { $_->[1]{type} } events($body)], [qw(match match error)],
          'search: its matches, then the error (unchanged)') or diag $body;

# asyncx_sse_invalid_line skip: the bad line is counted, nothing ends

my @lines = lines(10, 3, '{"k":');
write_file("$data/skip.ndjson", join '', map { "$_\n" } @lines);

for my $op ('transform', 'aggregate') {
    my $uri = "/skip/$uri{$op}&file=skip.ndjson&batch_size=4";
    ($code, $head, $body) = sse_get($ngx, $uri);
    my @got = events($body);
    my $res = ref_check($body, "$data/skip.ndjson",
                        { %{ $ref{$op} }, batch_size => 4,
                          skip_invalid => 1 });
    like($res, qr/^ok /, "skip, $op: as Python computes it") or diag $res;
    is_deeply([map { $_->[1]{type} } @got],
              [($op eq 'transform' ? 'batch' : 'stage') x 3, 'complete'],
              "skip, $op: three batches, complete") or diag $body;
    is(untagged($got[0][0]), '54-4-0-1-b', "skip, $op: the first batch's id "
       . 'counts the skipped line');
    is($got[0][1]{skipped}, 1, "skip, $op: ... and so does the event");
    is($got[-1][1]{total_processed}, 10, "skip, $op: 10 lines processed");
}

# a partial batch that does not fit in the output after the events before
# it: the job stops there (NGX_BUSY), the next one redoes the bad line:
# the batch once, then the error.  Records of 1000 bytes: events of 48 KiB
# at most, a job's output of 56 KiB.

my $pad = 'y' x 980;
@lines = map { sprintf('{"k":"%s","v":%d,"p":"%s"}', $_ % 2 ? 'a' : 'b', $_,
                       $pad) } 1 .. 200;
$lines[89] = '{"k":';
write_file("$data/big.ndjson", join '', map { "$_\n" } @lines);

my $uri = '/x/transform?file=big.ndjson&fields=k,v,p&batch_size=1000';
($code, $head, $body) = sse_get($ngx, $uri);
my @got = events($body);
my $res = ref_check($body, "$data/big.ndjson",
                    { op => 'transform', fields => 'k,v,p',
                      batch_size => 1000 });
like($res, qr/^ok /, 'a partial batch after a full event: as Python '
     . 'computes it') or diag $res;
is_deeply([map { [$_->[1]{type}, $_->[1]{count} // 0] } @got],
          [['batch', 48], ['batch', 41], ['error', 0]],
          '... 48 and 41 records (89 lines), then the error');

my ($c, $h, $rest) = sse_get($ngx, $uri, "Last-Event-ID: $got[0][0]");
is_deeply([events($rest)], [@got[1, 2]],
          '... resumed after the first event: the second, the error');

my @bad = grep { /\[(alert|crit|emerg)\]/ } $ngx->error_log;
is(scalar @bad, 0, 'no alert in the error log') or diag @bad;

$ngx->stop;

done_testing();
