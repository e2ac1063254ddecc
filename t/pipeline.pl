# Helpers for the t/1NN-pipeline-*.t suites (required, not a test itself).
#
# The pipeline answers JSON with measured times.  Blocks compare a
# normalized form exactly: pl_shape() sorts keys, replaces every number
# under a key "ms" or ending in "_ms" by "N" (null stays null) and every
# "0.5초" by "S초", so the
# structure, the keys and the non-timing values are checked byte for
# byte; pl_within() checks a measured number against a (wide) window.
# Bodies stay bytes (no utf8 decoding), like the expected sections.

use strict;
use warnings;
use JSON::PP;

our $J = JSON::PP->new->canonical;

sub pl_norm {
    my ($v, $ms) = @_;

    if (ref $v eq 'HASH') {
        return { map {
            my $x = $v->{$_};
            my $in_ms = $ms || /(^|_)ms$/;
            ($_ => ($in_ms && !ref $x && defined $x) ? 'N'
                                                      : pl_norm($x, $in_ms))
        } keys %$v };
    }

    if (ref $v eq 'ARRAY') {
        return [ map { pl_norm($_) } @$v ];
    }

    if (defined $v && !ref $v && $v =~ /\xec\xb4\x88/) {   # "초"
        (my $s = $v) =~ s/\d+\.\d+\xec\xb4\x88/S\xec\xb4\x88/g;
        return $s;
    }

    return $v;
}

sub pl_dec { $J->decode(shift) }

sub pl_shape { $J->encode(pl_norm(ref $_[0] ? $_[0] : pl_dec($_[0]))) . "\n" }

# "what ok" when lo <= v <= hi, else a line that shows the value
sub pl_within {
    my ($what, $v, $lo, $hi) = @_;
    # the answer's times have at most 3 decimals: a sum or difference of
    # them is exact to that, not to a double's last bit (200.1 - 100.05
    # - 100.05 is -2.8e-14)
    $v = sprintf('%.6f', $v) + 0 if defined $v && $v =~ /^-?[\d.]+(?:e-?\d+)?$/i;
    return defined $v && $v >= $lo && $v <= $hi
        ? "$what ok\n" : "$what " . ($v // 'undef') . " not in [$lo, $hi]\n";
}

# a path into decoded JSON: pl_at($d, "단계별_결과", "1단계", "소요시간_ms")
sub pl_at {
    my $v = shift;
    for my $k (@_) {
        return undef unless ref $v;
        $v = ref $v eq 'ARRAY' ? $v->[$k] : $v->{$k};
    }
    return $v;
}

# a call's slot in the answer, whatever its stage: pl_call($d, "user")
sub pl_call {
    my ($d, $name) = @_;
    for my $st (values %{ $d->{"단계별_결과"} // {} }) {
        return $st->{$name} if exists $st->{$name};
    }
    return "no call $name";
}

# The eval'd sections run in package Test::Base::Filter: alias there.
# (Test::Base also takes main:: subs named like its filters, hence pl_.)
for my $f (qw(pl_norm pl_dec pl_shape pl_within pl_at pl_call)) {
    no strict 'refs';
    *{"Test::Base::Filter::$f"} = \&{"main::$f"};
}

*Test::Base::Filter::J = \$J;

1;
