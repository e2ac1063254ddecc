# Helpers for the SSE suites: turn an event stream into a short summary
# that a block can compare exactly.  Plain Perl, no Test::Nginx internals,
# so the suites run under upstream Test::Nginx too.

use strict;
use warnings;
use JSON::PP ();

# "framing=ok" only if every event is "id: N\n"? "data: {json}\n" and a
# blank line, and the ids strictly increase.
sub sse_summary {
    my ($body) = @_;
    return "empty\n" unless defined $body && length $body;

    my $framing = $body =~ /\n\n\z/ ? 'ok' : 'unterminated';
    my (%count, @events, $last_id, $ids, $pings);
    $ids = 'increasing';
    $pings = 0;

    for my $block (split /\n\n/, $body) {
        if ($block eq ': keepalive') {
            $pings++;
            next;
        }

        my ($id, $data);
        for my $line (split /\n/, $block) {
            if ($line =~ /^id: (\d+)$/) { $id = $1 }
            elsif ($line =~ /^data: (.*)$/) { $data = $1 }
            else { $framing = "bad line: $line" }
        }

        if (!defined $data) { $framing = "no data in: $block"; next }

        my $ev = eval { JSON::PP::decode_json($data) };
        if (!$ev) { $framing = "bad json: $data"; next }

        if (defined $id) {
            $ids = "not increasing at $id"
                if defined $last_id && $id <= $last_id;
            $last_id = $id;
        }

        $count{$ev->{type}}++;
        push @events, $ev;
    }

    my $out = "framing=$framing ids=$ids\n";
    $out .= join(' ', map { "$_=$count{$_}" } sort keys %count) . "\n";
    $out .= "pings=" . ($pings ? 'yes' : 'no') . "\n" if $ENV{SSE_PINGS};

    my $last = $events[-1];
    $out .= "last=$last->{type}";
    for my $k (qw(total_matches total_processed message)) {
        $out .= " $k=$last->{$k}" if defined $last->{$k};
    }
    $out .= "\n";
    return $out;
}

sub sse_events {
    my ($body) = @_;
    my @ev;
    for my $block (split /\n\n/, $body) {
        my ($data) = $block =~ /^data: (.*)$/m or next;
        my ($id) = $block =~ /^id: (\d+)$/m;
        my $ev = JSON::PP::decode_json($data);
        $ev->{_id} = $id;
        push @ev, $ev;
    }
    return @ev;
}

1;
