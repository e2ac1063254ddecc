# The mock's echo=summary, written straight from the checked body, is
# compared with an independent reference: bodies generated here (seeded,
# so every run sends the same ones) as lists of members, the expected
# summary computed from those lists.  Bodies with a backslash take the
# cJSON path; the answer must be the same.

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(1);

our (@BODIES, @EXPECTED);

srand(20261129);

my @names = ('stage', 'call', 'results', 'order_id', 'items', '사용자',
             '재고', 'a', 'b_c', 'x-y', '가격', 'z');

sub rnd_scalar {
    my $r = int rand 7;
    return int(rand 100000) if $r == 0;
    return '-' . int(rand 99) . '.5e3' if $r == 1;
    return 'true' if $r == 2;
    return 'null' if $r == 3;
    return '"plain ' . int(rand 9) . '"' if $r == 4;
    return '"배송 후 \"quoted\" \u00e9"' if $r == 5;
    return '"2일 후"';
}

sub rnd_value {
    my ($depth) = @_;
    my $r = int rand($depth > 2 ? 1 : 4);
    return rnd_scalar() if $r == 0;
    return '[' . join(', ', map { rnd_value($depth + 1) } 1 .. int rand 3) . ']'
        if $r == 1;
    return rnd_object($depth + 1)->[0];
}

# (text, [member names in order], {first value of each name})
sub rnd_object {
    my ($depth) = @_;
    my (@keys, %first, @parts);
    for (1 .. int rand 6) {
        my $k = $names[int rand @names];
        my $v = rnd_value($depth);
        push @keys, $k;
        $first{$k} //= $v;
        my $ws = (' ', '', "\n  ", "\t")[int rand 4];
        push @parts, "$ws\"$k\"$ws:$ws$v";
    }
    return ['{' . join(',', @parts) . ' }', \@keys, \%first];
}

for my $i (1 .. 40) {
    my ($text, $keys, $first) = @{ rnd_object(0) };
    my $exp = '{"method":"POST","bytes":' . length($text);
    for my $k ('stage', 'call') {
        $exp .= ",\"$k\":$first->{$k}"
            if defined $first->{$k} && $first->{$k} =~ /^"/;
    }
    my $res = $first->{results};
    my @list = @$keys;
    my $which = 'keys';
    if (defined $res && $res =~ /^\{/) {
        # the keys of the results object: parse the names back out
        my $obj = rnd_keys_of($res);
        @list = @$obj;
        $which = 'results';
    }
    $exp .= ",\"$which\":[" . join(',', map { "\"$_\"" } @list) . ']}';
    # cJSON decodes escapes in the strings it prints: the reference too
    $exp =~ s/\\u00e9/\x{c3}\x{a9}/g;
    push @BODIES, $text;
    push @EXPECTED,
        '{"service":"echo","delay_ms":0,"received":' . $exp . "}\n";
}

# member names of a generated object text (names hold no quotes)
sub rnd_keys_of {
    my ($text) = @_;
    my @k;
    my $depth = 0;
    my $in = 0;
    my $expect_key = 0;
    while ($text =~ /\G(\s+|\{|\}|\[|\]|,|:|"(?:[^"\\]|\\.)*"|[^\s{}\[\],:"]+)/gc) {
        my $t = $1;
        if ($t eq '{' || $t eq '[') { $depth++; $expect_key = ($t eq '{' && $depth == 1); next }
        if ($t eq '}' || $t eq ']') { $depth--; next }
        if ($t eq ',') { $expect_key = ($depth == 1); next }
        if ($depth == 1 && $expect_key && $t =~ /^"(.*)"$/s) { push @k, $1; $expect_key = 0 }
    }
    return \@k;
}

plan tests => 2 * @BODIES;

no_long_string();

run_tests();

__DATA__

=== TEST 1: generated bodies: the summary matches the reference
--- config
    location = /echo {
        client_body_buffer_size 64k;
        asyncx_mock_service echo=summary;
    }
--- request eval
[map { "POST /echo\n$_" } @main::BODIES]
--- response_body eval
[@main::EXPECTED]
