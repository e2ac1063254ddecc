# Every body and every error-log message the module writes is valid
# UTF-8, whatever bytes a client sends: a quote of a client's text is cut
# at a whole character, bytes that are not UTF-8 and control characters
# are written as \xNN (so a log line stays one line), and paths that are
# not UTF-8 are refused before anything echoes them.

use lib 't/lib';
use Test::Nginx::Socket;
use JSON::PP ();
use File::Temp qw(tempdir);

my $root = tempdir('asyncx-utf8-XXXXXX', TMPDIR => 1, CLEANUP => 1);
$ENV{TEST_NGINX_UTF8_ROOT} = $root;

our $name199 = "a" x 199;

# the answer parsed strictly (UTF-8, JSON), its error message as ASCII
sub error_of {
    my $r = eval { JSON::PP->new->utf8->decode($_[0]) };
    return "not UTF-8 JSON: $@" unless $r;
    return JSON::PP->new->ascii->encode([$r->{error}, $r->{status}]);
}

# the module's part of every "asyncx:" line in error.log: valid UTF-8,
# no control character (nginx's own ", client: ..., request: ..." that
# follows quotes the request line as nginx received it)
sub log_check {
    open my $fh, '<:raw', $Test::Nginx::Util::ErrLogFile or return "no log: $!";
    my ($n, @bad) = (0);
    while (my $line = <$fh>) {
        next unless $line =~ /asyncx: (.*?) \(status \d+\)/;
        my $msg = $1;
        $n++;
        push @bad, $msg if !utf8::decode(my $copy = $msg) || $msg =~ /[\x00-\x1f\x7f]/;
    }
    return @bad ? "invalid: @bad" : ($n >= 7 ? "ok" : "only $n lines");
}

our $locations = <<'_EOC_';
    location = /files/read { asyncx_file_root $TEST_NGINX_UTF8_ROOT; asyncx_file_read; }
    location = /files/write { asyncx_file_root $TEST_NGINX_UTF8_ROOT; asyncx_file_write; }
    location = /orders/process {
        asyncx_pipeline; asyncx_pipeline_mode_arg on; asyncx_stage s a=/svc/a;
    }
    location = /svc/a { asyncx_mock_service name=a; }
    location = /log { return 200 "log\n"; }
_EOC_

repeat_each(1);

plan tests => repeat_each() * (3 * 9 + 2);

no_shuffle();
no_long_string();
run_tests();

__DATA__

=== TEST 1: quotes are cut at whole characters, bytes that are not UTF-8 and control characters are \xNN, paths that are not UTF-8 are 400
--- config eval: $main::locations
--- request eval
["GET /files/read?path=$main::name199%EA%B0%80",
 "GET /files/read?path=%C0%AE%C0%AE/etc/passwd",
 "POST /files/write?path=%FF%FE.txt\nx",
 "GET /files/read?path=\xff\xfe",
 "GET /files/read?path=a%0Ab%1B[31m.txt",
 "GET /orders/process?mode=%FF%0A",
 "GET /svc/a?delay=%C3%28",
 "POST /files/write?path=$main::name199%EA%B0%80\nkorean",
 "GET /files/read?path=$main::name199%EA%B0%80"]
--- error_code eval
[404, 400, 400, 400, 404, 400, 400, 200, 200]
--- response_body_filters eval
sub { $_[0] =~ /^\{"(written|content)"/ ? $_[0] : main::error_of($_[0]) }
--- response_body eval
["[\"file read: \\\"$main::name199\\\" not found\",404]",
 "[\"path \\\"\\\\xc0\\\\xae\\\\xc0\\\\xae/etc/passwd\\\" is not valid UTF-8\",400]",
 "[\"path \\\"\\\\xff\\\\xfe.txt\\\" is not valid UTF-8\",400]",
 "[\"path \\\"\\\\xff\\\\xfe\\\" is not valid UTF-8\",400]",
 "[\"file read: \\\"a\\\\x0ab\\\\x1b[31m.txt\\\" not found\",404]",
 "[\"invalid mode \\\"\\\\xff\\\\x0a\\\", use parallel or sequential\",400]",
 "[\"invalid delay \\\"\\\\xc3(\\\"\",400]",
 "{\"written\":6,\"path\":\"$main::name199\xEA\xB0\x80\",\"async\":true}\n",
 "{\"content\":\"korean\",\"size\":6,\"encoding\":\"utf-8\",\"async\":true}\n"]
--- no_error_log
[error]



=== TEST 2: ... and every message the module wrote to error.log above is valid UTF-8 on one line (same nginx: no config of its own)
--- request
GET /log
--- response_body_filters eval
\&main::log_check
--- response_body chomp
ok
