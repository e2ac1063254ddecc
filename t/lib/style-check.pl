#!/usr/bin/perl

# `make style`: the nginx style rules a machine can check, over C files.
#
#   perl t/lib/style-check.pl FILE...
#
# Checked:
#   1. no line longer than 80 columns (characters of the UTF-8 text);
#   2. no tab character;
#   3. no // comment (outside strings, character constants and
#      /* */ comments);
#   4. declarations at the top of a block: in a function body or a
#      block inside one, no declaration after the first statement, and
#      none in a for (...) header.
#
# Rule 4 is best-effort: the file is cut into statements at ;, { and }
# outside parentheses (comments, strings and preprocessor lines removed
# first), and a statement counts as a declaration when it starts with
# optional qualifiers, one identifier that is not a keyword, then an
# identifier (after optional *s) followed by =, a comma, [ or its end,
# or when it declares a function pointer.  Initializers and struct,
# union and enum bodies are not blocks of code.  A macro that hides a
# declaration, or code under #if branches that open braces unevenly, can
# fool it; it reports what it is sure of.
#
# Prints FILE:LINE: message for every finding; exits 1 if there is any.

use strict;
use warnings;

my @keywords = qw(return goto case default sizeof else do while if for
                  switch break continue typedef);
my %keyword = map { $_ => 1 } @keywords;

my $bad = 0;

sub report {
    my ($file, $line, $msg) = @_;
    print "$file:$line: $msg\n";
    $bad = 1;
}

# Blanks comments, string and character literal contents and
# preprocessor lines, keeping every newline and column.  Reports //.
sub code_only {
    my ($file, $text) = @_;

    my $out = '';
    my $line = 1;
    my $state = 'code';
    my $bol = 1;        # only blanks since the start of the line
    my $pp = 0;         # in a preprocessor line
    my $n = length $text;

    for (my $i = 0; $i < $n; $i++) {
        my $c = substr $text, $i, 1;
        my $next = $i + 1 < $n ? substr($text, $i + 1, 1) : '';

        if ($c eq "\n") {
            $line++;
            $out .= "\n";
            $state = 'code' if $state eq 'line';
            $pp = 0 unless substr($text, $i - 1, 1) eq '\\';
            $bol = 1;
            next;
        }

        if ($state eq 'block') {
            if ($c eq '*' && $next eq '/') {
                $state = 'code';
                $out .= '  ';
                $i++;
            } else {
                $out .= ' ';
            }
            next;
        }

        if ($state eq 'string' || $state eq 'char') {
            my $end = $state eq 'string' ? '"' : "'";
            if ($c eq '\\') {
                $i++;
                if ($next eq "\n") {
                    $line++;
                    $out .= " \n";
                } else {
                    $out .= '  ';
                }
            } elsif ($c eq $end) {
                $state = 'code';
                $out .= $c;
            } else {
                $out .= ' ';
            }
            next;
        }

        if ($state eq 'line') {
            $out .= ' ';
            next;
        }

        if ($c eq '/' && $next eq '*') {
            $state = 'block';
            $out .= '  ';
            $i++;
            next;
        }

        if ($c eq '/' && $next eq '/') {
            report($file, $line, 'a // comment (use /* */)');
            $state = 'line';
            $out .= '  ';
            $i++;
            next;
        }

        $pp = 1 if $bol && $c eq '#';
        $bol = 0 unless $c =~ /\s/;

        if ($c eq '"') {
            $state = 'string';
        } elsif ($c eq "'") {
            $state = 'char';
        }

        $out .= $pp ? ' ' : $c;
    }

    return $out;
}

sub is_declaration {
    my ($stmt) = @_;

    my $s = $stmt;
    $s =~ s/^\s+//;
    $s =~ s/\s+/ /g;

    return 0 unless length $s;

    # a function pointer: type (*name)(...)
    return 1 if $s =~ /^[A-Za-z_][\w ]*\(\s*\*\s*\w+\s*\)\s*\(/;

    $s =~ s/^(?:(?:static|const|volatile|register|extern|unsigned|signed
                  |struct|union|enum)\s+)+//x;

    return 0 unless $s =~ /^([A-Za-z_]\w*)(?:\s+|\s*\*[\s*]*)
                           [A-Za-z_]\w*\s*(?:\[[^\]]*\]\s*)*(?:=|,|\z)/x;

    return !$keyword{$1};
}

# rule 4
sub check_declarations {
    my ($file, $code) = @_;

    # kind: file, code, data (initializer or struct/union/enum body)
    my @stack = ({ kind => 'file', seen => 0 });
    my ($paren, $buf, $buf_line, $line) = (0, '', 0, 1);

    my $statement = sub {
        my ($text, $at) = @_;
        my $top = $stack[-1];

        return if $top->{kind} ne 'code' || $text !~ /\S/;

        if (is_declaration($text)) {
            report($file, $at, 'a declaration after a statement (declare '
                               . 'at the top of the block)')
                if $top->{seen};
        } else {
            $top->{seen} = 1;
        }
    };

    for my $c (split //, $code) {
        if ($c eq "\n") {
            $line++;
            $buf .= ' ';
            next;
        }

        $buf_line = $line if $buf !~ /\S/ && $c =~ /\S/;

        if ($c eq '(') {
            $paren++;
        } elsif ($c eq ')') {
            $paren-- if $paren;
        }

        if ($paren || ($c ne ';' && $c ne '{' && $c ne '}')) {
            $buf .= $c;
            next;
        }

        if ($c eq ';') {
            $statement->($buf, $buf_line);

        } elsif ($c eq '{') {
            my $top = $stack[-1];
            my $kind;

            if ($top->{kind} eq 'data'
                || $buf =~ /=\s*$/
                || $buf =~ /\b(?:struct|union|enum)\b[^()]*$/)
            {
                $kind = 'data';

            } elsif ($top->{kind} eq 'file') {
                $kind = $buf =~ /\)\s*$/ ? 'code' : 'data';

            } else {
                $kind = 'code';

                report($file, $buf_line, 'a declaration in a for header')
                    if $buf =~ /^\s*for\s*\(\s*([^;]*)/
                       && is_declaration($1);

                # the block's header (if, for, while...) is a statement
                $statement->($buf, $buf_line) if $buf =~ /\S/;
                $top->{seen} = 1;
            }

            push @stack, { kind => $kind, seen => 0 };

        } else {
            $statement->($buf, $buf_line);
            pop @stack if @stack > 1;
            $stack[-1]{seen} = 1 if $stack[-1]{kind} eq 'code';
        }

        $buf = '';
    }
}

for my $file (@ARGV) {
    open my $in, '<:raw', $file or die "$file: $!\n";
    local $/;
    my $raw = <$in>;
    close $in;

    my $text = $raw;
    utf8::decode($text) or report($file, 0, 'not valid UTF-8');

    my $n = 0;
    for my $l (split /\n/, $text, -1) {
        $n++;
        report($file, $n, 'a tab character') if $l =~ /\t/;
        report($file, $n, 'longer than 80 columns (' . length($l) . ')')
            if length $l > 80;
    }

    check_declarations($file, code_only($file, $text));
}

exit $bad;
