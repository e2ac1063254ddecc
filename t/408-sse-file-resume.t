# Resuming a file stream with Last-Event-ID: at every id (or every k-th
# and the ends) of several streams, the resumed stream is exactly the
# rest of the uninterrupted one (byte for byte but "total_time_ms"), and
# Python agrees (t/ndjson_ref.py).  Search and transform start at the
# id's offset (the status counts the lines read: only those after it);
# the aggregate rebuilds its table silently.  Hostile ids: malformed
# (400), of another file or query, off a line start or past the end
# (409), of a last event (204), with counts the lines do not have (the
# aggregate's error event).
#
# Its own nginx (one worker) on TEST_NGINX_PORT + 2.

use strict;
use warnings;

use lib 't/lib';
use Test::More;
use JSON::PP ();
use Asyncx::OwnNginx;

do './t/sse_file.pl' or die $@ || $!;

Asyncx::OwnNginx::skip_all_unless(Asyncx::OwnNginx::module_so(),
                                  'TEST_NGINX_LOAD_MODULES is not set');

my $ngx = sse_file_nginx(offset => 2, name => 'sse-file-resume',
    pools => 'io',
    locations => <<'LOC');
        location = /search {
            asyncx_sse search;
            asyncx_sse_query field=$arg_field;
            asyncx_sse_batch_size 50;
            asyncx_sse_invalid_line skip;
        }

        location = /transform {
            asyncx_sse transform;
            asyncx_sse_query fields=$arg_fields;
            asyncx_sse_invalid_line skip;
        }

        location = /aggregate {
            asyncx_sse aggregate;
            asyncx_sse_query group_by=$arg_group_by value=$arg_value;
            asyncx_sse_invalid_line skip;
        }
LOC

my $data = $ngx->dir . '/data';

ref_gen('plain', 11, 3000, "$data/plain.ndjson");
ref_gen('mixed', 12, 2000, "$data/mixed.ndjson");
ref_gen('cr', 13, 600, "$data/cr.ndjson");
ref_gen('nofinal', 14, 500, "$data/nofinal.ndjson");

sub masked {
    my ($text) = @_;
    $text =~ s/"total_time_ms": [0-9.]+/"total_time_ms": T/g;
    return $text;
}

# the events of a body: [id, text]
sub events {
    my ($body) = @_;
    return map { [/^id: (.*)$/m ? $1 : '-', masked($_) . "\n\n"] }
           grep { $_ ne ': keepalive' } split /\n\n/, $body;
}

sub status {
    return JSON::PP::decode_json(($ngx->get('/asyncx/status'))[1]);
}

my @streams = (
    # uri, file, query for the reference, at most this many resumes
    ['/search?file=plain.ndjson&keyword=python', 'plain',
     { op => 'search', batch_size => 50, keyword => 'python',
       skip_invalid => 1 }, 120],
    ['/search?file=plain.ndjson&keyword=err&field=level&batch_size=13',
     'plain', { op => 'search', batch_size => 13, keyword => 'err',
                field => 'level', skip_invalid => 1 }, 80],
    ['/search?file=plain.ndjson&keyword=pool&limit=25', 'plain',
     { op => 'search', batch_size => 50, keyword => 'pool', limit => 25,
       skip_invalid => 1 }, 0],
    ['/search?file=mixed.ndjson&keyword=python&ignore_case=1', 'mixed',
     { op => 'search', batch_size => 50, keyword => 'python', icase => 1,
       skip_invalid => 1 }, 80],
    ['/search?file=cr.ndjson&keyword=cr&batch_size=40', 'cr',
     { op => 'search', batch_size => 40, keyword => 'cr',
       skip_invalid => 1 }, 60],
    ['/search?file=nofinal.ndjson&keyword=a&batch_size=100', 'nofinal',
     { op => 'search', batch_size => 100, keyword => 'a',
       skip_invalid => 1 }, 60],
    ['/transform?file=plain.ndjson&fields=msg,nested,tags,id'
     . '&batch_size=1000', 'plain',
     { op => 'transform', batch_size => 1000,
       fields => 'msg,nested,tags,id', skip_invalid => 1 }, 0],
    ['/transform?file=mixed.ndjson&fields=id:n,level&batch_size=64', 'mixed',
     { op => 'transform', batch_size => 64, fields => 'id:n,level',
       skip_invalid => 1 }, 0],
    ['/aggregate?file=plain.ndjson&group_by=level&value=latency'
     . '&batch_size=100', 'plain',
     { op => 'aggregate', batch_size => 100, group_by => 'level',
       value => 'latency', skip_invalid => 1 }, 0],
    ['/aggregate?file=mixed.ndjson&group_by=path&value=latency'
     . '&batch_size=77', 'mixed',
     { op => 'aggregate', batch_size => 77, group_by => 'path',
       value => 'latency', skip_invalid => 1 }, 0],
);

for my $s (@streams) {
    my ($uri, $file, $q, $max) = @$s;

    my ($code, $head, $body) = sse_get($ngx, $uri);
    is($code, 200, "$uri: uninterrupted");
    like(ref_check($body, "$data/$file.ndjson", $q), qr/^ok /,
         "$uri: uninterrupted run as Python computes it");

    my @all = events($body);
    my @ids = map { $_->[0] } @all;
    cmp_ok(scalar @ids, '>=', 3, "$uri: " . scalar(@ids) . ' events');

    # every id, or every k-th one and the first and last five
    my @pick = (0 .. $#ids);
    if ($max && @ids > $max) {
        my $k = int(@ids / ($max - 10)) + 1;
        my %p = map { $_ => 1 } 0 .. 4, $#ids - 4 .. $#ids;
        for (my $i = 0; $i < @ids; $i += $k) { $p{$i} = 1 }
        @pick = sort { $a <=> $b } keys %p;
    }

    my ($bad, $python, $n) = (0, 0, 0);

    for my $i (@pick) {
        my $id = $ids[$i];
        ($code, $head, my $rest) = sse_get($ngx, $uri, "Last-Event-ID: $id");

        if ($i == $#ids) {
            # the last event ("complete"): EventSource is told to stop
            $bad++, diag "$uri after $id: $code" unless $code == 204;
            next;
        }

        my $want = join '', map { $_->[1] } @all[$i + 1 .. $#all];
        my $got = join '', map { $_->[1] } events($rest);

        if ($code != 200 || $got ne $want) {
            $bad++;
            diag "$uri after $id: $code\n got: " . substr($got, 0, 300)
                 . "\nwant: " . substr($want, 0, 300) if $bad < 3;
        }

        # Python agrees on some of them (each check starts a process)
        if ($n++ % 10 == 0) {
            my $res = ref_check($rest, "$data/$file.ndjson", $q, $id);
            $python++;
            $bad++, diag "$uri after $id: $res" unless $res =~ /^ok /;
        }
    }

    is($bad, 0, "$uri: resumed after " . scalar(@pick) . " ids (Python "
                . "checked $python), each the rest of the stream");
}

# a search resumes where its id says, without reading what is before

my ($code, $head, $body) = sse_get($ngx, '/search?file=plain.ndjson'
                                         . '&keyword=python');
my @ids = grep { /-b-/ } ref_ids($body);
my ($late) = grep { /^\d+-2900-/ } @ids;
ok($late, "a progress id at line 2900: $late");

my $before = status()->{streams}{records};
($code, $head, $body) = sse_get($ngx, '/search?file=plain.ndjson'
                                      . '&keyword=python',
                                "Last-Event-ID: $late");
is(status()->{streams}{records} - $before, 100,
   'search resumed at line 2900 of 3000: the stream read 100 lines');

($code, $head, $body) = sse_get($ngx, '/aggregate?file=plain.ndjson'
                                      . '&group_by=level&value=latency'
                                      . '&batch_size=100');
($late) = grep { /^\d+-2900-/ } ref_ids($body);

$before = status()->{streams}{records};
($code, $head, $body) = sse_get($ngx, '/aggregate?file=plain.ndjson'
                                      . '&group_by=level&value=latency'
                                      . '&batch_size=100',
                                "Last-Event-ID: $late");
is(status()->{streams}{records} - $before, 3000,
   'aggregate resumed at line 2900: its table is rebuilt from line 1');
like($body, qr/\Aid: \d+-3000-0-0-b-/, 'and it sends only what follows');

# hostile ids

my $uri = '/search?file=plain.ndjson&keyword=python';
($code, $head, $body) = sse_get($ngx, $uri);
my @real = ref_ids($body);
my ($off, $rec, $mat, $ski, $ph, $tag) = split /-/, $real[5];

for my $id ('', 'x', '1-1-0-0-b', '1-1-0-0-b-1234567', '1-1-0-0-b-1234567g',
            '1-1-0-0-b-1234ABCD', '1-1-0-0-B-12345678', '1-1-0-0-x-12345678',
            '01-1-0-0-b-12345678', '1-01-0-0-b-12345678',
            '+1-1-0-0-b-12345678', '1-1-0-0-b-12345678-', '1--1-0-0-b-1234',
            '1-1-0-0-bb-12345678', '1 -1-0-0-b-12345678',
            '99999999999999999999-1-0-0-b-12345678',
            '9223372036854775808-1-0-0-b-12345678',
            '5-6-0-0-b-12345678', '10-5-6-0-b-12345678',
            '10-5-3-3-b-12345678', '1-1-0-0-b-12345678' x 8,
            # a match's id counts its line and its match: none is forged
            # (this query's tag: without the check, a stream without
            # progress events)
            "0-0-0-0-m-$tag", "$off-$rec-0-0-m-$tag")
{
    ($code, $head, $body) = sse_get($ngx, $uri, "Last-Event-ID: $id");
    is($code, 400, "Last-Event-ID \"" . substr($id, 0, 40) . "\": 400");
    is($body, qq({"error": "invalid Last-Event-ID \\"$id\\"", )
              . qq("status": 400}\n), '... with the id quoted');
}

my @conflicts = (
    ["$off-$rec-$mat-$ski-$ph-" . sprintf('%08x', hex($tag) ^ 1),
     'Last-Event-ID is of another file or query (the file may have been '
     . 'replaced)'],
    [($off - 1) . "-$rec-$mat-$ski-$ph-$tag",
     'Last-Event-ID does not match the file: offset ' . ($off - 1)
     . ' is not the start of a line'],
    ["9223372036854775807-$rec-$mat-$ski-$ph-$tag",
     'Last-Event-ID is past the end of the file (' . (-s "$data/plain.ndjson")
     . ' bytes): it was truncated'],
);

for my $c (@conflicts) {
    ($code, $head, $body) = sse_get($ngx, $uri, "Last-Event-ID: $c->[0]");
    is($code, 409, "Last-Event-ID $c->[0]: 409");
    is($body, qq({"error": "asyncx_sse: $c->[1]", "status": 409}\n),
       '... says why');
}

# the same id for another query of the same file: its tag differs
($code, $head, $body) = sse_get($ngx, '/search?file=plain.ndjson&keyword=py',
                                "Last-Event-ID: $real[5]");
is($code, 409, 'an id of another keyword: 409');

# ids of a last event end the stream at once, whatever they say
for my $id ("0-0-0-0-c-00000000", "7-1-0-0-e-deadbeef") {
    ($code, $head, $body) = sse_get($ngx, $uri, "Last-Event-ID: $id");
    is($code, 204, "Last-Event-ID $id: 204");
}

# the aggregate checks its rebuilt lines against the id's counts
($code, $head, $body) = sse_get($ngx, '/aggregate?file=plain.ndjson'
                                      . '&group_by=level&value=latency'
                                      . '&batch_size=100');
my ($stage) = grep { /^\d+-1000-/ } ref_ids($body);
(my $wrong = $stage) =~ s/^(\d+)-1000-0-0-/$1-999-0-0-/;
($code, $head, $body) = sse_get($ngx, '/aggregate?file=plain.ndjson'
                                      . '&group_by=level&value=latency'
                                      . '&batch_size=100',
                                "Last-Event-ID: $wrong");
like($body, qr/\Aid: \S+-e-\S+\ndata: \{"type": "error", "message": "Last-Event-ID does not match the file: its lines changed", "line": 1001, "offset": \d+\}\n\n\z/,
     'aggregate: an id whose line count is wrong ends in an error event')
    or diag $body;

my @bad = grep { /\[(alert|crit|emerg)\]/ } $ngx->error_log;
is(scalar @bad, 0, 'no alert in the error log') or diag @bad;

$ngx->stop;

done_testing();
