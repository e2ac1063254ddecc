# Helpers of the file-source suites (t/407 to t/411): their nginx, test
# files and the checks of t/ndjson_ref.py, run with Debian's
# /usr/bin/python3 (not a pyenv one on PATH), so the expected events come
# from Python's json.

use strict;
use warnings;

use Asyncx::OwnNginx ();

our $PY = '/usr/bin/python3';
our $REF = 't/ndjson_ref.py';

# An nginx of the suite's own (Asyncx::OwnNginx, one worker) streaming
# the NDJSON files of its data/ directory (asyncx_sse_source
# file=$arg_file), with asyncx_status at /asyncx/status.  %opt: what
# Asyncx::OwnNginx->new takes (offset, name, dirs besides data, ...),
# and
#   locations => the server's locations (nginx.conf text);
#   listen    => more parameters of its listen;
#   pools     => 'io' (one pool, io and cpu in it; default: io and cpu,
#                two threads each).
sub sse_file_nginx {
    my (%opt) = @_;

    my $locations = delete $opt{locations};
    my $listen = join ' ', '127.0.0.1:$PORT', delete $opt{listen} // ();
    my @pools = split ' ', delete $opt{pools} // 'io cpu';
    my ($io, $cpu) = (@pools, @pools);

    return Asyncx::OwnNginx->new(
        workers => 1, %opt,
        dirs => ['data', @{ $opt{dirs} // [] }],
        main => join("\n", map { "thread_pool $_ threads=2;" } @pools),
        http => <<"HTTP");
    asyncx_thread_pools io=$io cpu=$cpu;
    asyncx_sse_source file=\$arg_file root=\$DIR/data;

    server {
        listen $listen;

$locations
        location = /asyncx/status { asyncx_status; }
    }
HTTP
}

# a deterministic test file: KIND plain, mixed (invalid lines among
# them), cr (CR as JSON whitespace, CRLF ends) or nofinal (no last LF)
sub ref_gen {
    my ($kind, $seed, $lines, $path) = @_;
    system($PY, $REF, 'gen', $kind, $seed, $lines, $path) == 0
        or die "ndjson_ref.py gen $kind: $?";
}

sub write_file {
    my ($path, $data) = @_;
    open my $fh, '>:raw', $path or die "$path: $!";
    print $fh $data;
    close $fh or die "$path: $!";
}

# "ok <event counts>" when body is exactly the stream of file for query
# (a hash: op, batch_size, ...), after from_id if given; else the
# problems, one a line
sub ref_check {
    my ($body, $file, $query, $from_id) = @_;
    my $tmp = "$file.body.$$";
    write_file($tmp, $body);
    my $q = JSON::PP->new->canonical->ascii->encode($query);
    open my $out, '-|', $PY, $REF, 'check', $tmp, $file, $q,
        defined $from_id ? ($from_id) : () or die "$PY: $!";
    local $/;
    my $res = <$out> // '';
    close $out;
    unlink $tmp;
    $res =~ s/\n\z//;
    return $res;
}

# the ids of a body, in order ("-" for an event without one)
sub ref_ids {
    my ($body) = @_;
    my @ids;
    for my $block (split /\n\n/, $body) {
        next if $block eq ': keepalive';
        my ($id) = $block =~ /^id: (.*)$/m;
        push @ids, $id // '-';
    }
    return @ids;
}

# (status, headers, body) of an HTTP/1.0 GET with extra header lines,
# read for 60 s at most
sub sse_get {
    my ($ngx, $uri, @headers) = @_;
    return sse_get_within($ngx, 60, $uri, @headers);
}

# the same, read for $timeout seconds at most
sub sse_get_within {
    my ($ngx, $timeout, $uri, @headers) = @_;
    my $res = $ngx->request("GET $uri HTTP/1.0\r\nHost: localhost\r\n"
                            . join('', map { "$_\r\n" } @headers)
                            . "\r\n", $timeout);
    my ($head, $body) = split /\r\n\r\n/, $res, 2;
    my ($code) = ($head // '') =~ m{^HTTP/1\.\d (\d+)};
    return ($code // 0, $head // '', $body // '');
}

1;
