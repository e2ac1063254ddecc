package Test::Nginx::Socket;

# A small local subset of upstream Test::Nginx::Socket (openresty/test-nginx
# 0.33) for Debian 12, where that module is not packaged. Suites written for
# it start with `use lib 't/lib'; use Test::Nginx::Socket;` and run unchanged
# under upstream (PERL5LIB=<test-nginx>/lib plus
# HARNESS_PERL_SWITCHES=-mTest::Nginx::Socket, see docs/testing.md).
# docs/testing.md states the block semantics it keeps and lists the
# supported sections and environment variables.
#
# Deliberate differences from upstream:
#  1. nginx binds the loopback only: the generated server block says
#     `listen 127.0.0.1:PORT`, and every port-only `listen N` in the config
#     text (including `listen $TEST_NGINX_SERVER_PORT`) becomes
#     `listen 127.0.0.1:N`. Upstream binds 0.0.0.0.
#  2. Fast restarts: on x86_64 Linux the test process makes itself a child
#     subreaper (prctl PR_SET_CHILD_SUBREAPER), so the daemonized nginx is
#     our child and is reaped as soon as it exits. nginx is stopped with
#     SIGQUIT, polled and reaped, and killed with SIGKILL after
#     TEST_NGINX_TIMEOUT seconds.
#  3. Failures are loud: a client timeout (without --- abort), a broken
#     chunked body or a connect failure gives a `not ok` and the script exits
#     non-zero, also reporting the plan mismatch (upstream sets no_ending and
#     exits 0).
#  4. An nginx start failure is not retried for 30 s and does not bail out:
#     the block gets one `not ok` with the tail of nginx's stderr and
#     error.log and the run goes on (--- must_die blocks expect the failure).
#  5. Client connect retries are bounded to about 1.5 s (upstream: 50 tries).
#  6. An [alert] or [crit] line in error.log, or an [emerg] one outside a
#     --- must_die block's start-up, fails the block unless one of its
#     --- error_log (or grep_error_log) patterns matches that line; a
#     line a --- no_error_log pattern already failed is not reported
#     twice.  Upstream only warns.
#  7. --- error_log patterns are waited for: error.log is read again
#     until each pattern matches a line or TEST_NGINX_TIMEOUT seconds
#     pass, so a line nginx writes after the response (an abort, a
#     background subrequest) is not missed on a slow machine.  Upstream
#     reads error.log once.

use Test::Base -Base;

use Errno ();
use HTTP::Response;
use IO::Socket::INET;
use List::Util qw(shuffle min max);
use Time::HiRes qw(sleep time);
use Test::LongString ();
use Test::Nginx::Util qw(:DEFAULT start_nginx stop_nginx write_user_files
                          expand_env nginx_version error_log_lines tail_file);

our $VERSION = '0.33';

our @EXPORT = (@Test::Nginx::Util::EXPORT, qw(run_tests run_test));

BEGIN {
    no strict 'refs';
    for my $v (qw(RepeatEach NoShuffle NoLongString Timeout Verbose
                  ServerPort ServerPortForClient NginxPid ErrLogPos
                  ErrLogFile BlockPreprocessors))
    {
        *{"Test::Nginx::Socket::$v"} = $v eq 'BlockPreprocessors'
            ? \@{"Test::Nginx::Util::$v"} : \${"Test::Nginx::Util::$v"};
    }
}
our ($RepeatEach, $NoShuffle, $NoLongString, $Timeout, $Verbose,
     $ServerPort, $ServerPortForClient, $NginxPid, $ErrLogPos, $ErrLogFile,
     @BlockPreprocessors);

my $NginxVersion;

sub run_tests () {
    my @blocks = blocks();
    @blocks = shuffle @blocks unless $NoShuffle;
    run_test($_) for @blocks;
}

sub run_test () {
    my $block = shift;
    $_->($block) for @BlockPreprocessors;
    my $name = "$0 " . $block->name;

    if (defined(my $init = $block->init)) {
        if (ref $init eq 'CODE') { $init->() }
        else { eval "package main; $init"; bail_out("$name - init: $@") if $@ }
    }

    $ErrLogPos = 0;
    my $must_die = defined $block->must_die;
    my $started;
    for my $rep (0 .. $RepeatEach - 1) {
        next if skip_block($block, $name);

        if ($must_die) {
            run_must_die($block, $name);
            next;
        }

        if (!$started && defined $block->config) {
            my ($status, $stderr) = start_nginx($block, $name);
            if ($status != 0) {
                fail("$name - nginx failed to start (exit code "
                     . ($status >> 8) . ")");
                diag("nginx stderr:\n$stderr"
                     . "error.log tail:\n"
                     . tail_file($ErrLogFile, 15));
                return;
            }
            $started = 1;
        } elsif (!$started && !$NginxPid) {
            bail_out("$name - no --- config and no nginx running from a "
                     . "previous block (use no_shuffle())");
        } elsif ($rep > 0 && defined $block->user_files) {
            write_user_files($block, $name);
        }

        run_requests($block, $name);

        if (defined $block->stap) {
            Test::More->builder->skip(
                "$name - no stap (TEST_NGINX_USE_STAP not supported)");
        }
    }
}

# --- skip_nginx / skip_eval / todo --------------------------------------

sub skip_block () {
    my ($block, $name) = @_;
    my ($n, $why);
    if (defined(my $spec = $block->skip_nginx)) {
        $spec =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)\s*$/
            or bail_out("$name - bad --- skip_nginx value: $spec");
        my ($cnt, $op, $ver) = ($1, $2, "$3.$4.$5");
        my $want = sprintf "%d.%03d%03d", $3, $4, $5;
        my $v = $NginxVersion //= nginx_version() // 0;
        my $hit = $op eq '<'  ? $v < $want : $op eq '<=' ? $v <= $want
                : $op eq '>'  ? $v > $want : $v >= $want;
        ($n, $why) = ($cnt, "nginx version $op $ver") if $hit;
    }
    if (!$n && defined(my $spec = $block->skip_eval)) {
        $spec =~ /^\s*(\d+)\s*:\s*(.*)$/s
            or bail_out("$name - bad --- skip_eval value: $spec");
        my ($cnt, $code) = ($1, $2);
        my $hit = eval "package main; $code";
        bail_out("$name - skip_eval: $@") if $@;
        ($n, $why) = ($cnt, "skip_eval") if $hit;
    }
    if (!$n && defined(my $spec = $block->todo)) {
        $spec =~ /^\s*(\d+)\s*:\s*(.*)$/s
            or bail_out("$name - bad --- todo value: $spec");
        Test::More->builder->todo_skip("$name - $2") for 1 .. $1;
        return 1;
    }
    return 0 unless $n;
    Test::More->builder->skip("$name - tests skipped due to $why") for 1 .. $n;
    return 1;
}

# --- must_die -----------------------------------------------------------

sub run_must_die () {
    my ($block, $name) = @_;
    my ($status) = start_nginx($block, $name);
    if ($status == 0) {
        stop_nginx();
        fail("$name - nginx should have died but started");
    } elsif ($block->must_die =~ /^\s*(\d+)\s*$/) {
        is($status >> 8, $1, "$name - die with the expected exit code");
    } else {
        pass("$name - die as expected");
    }
    check_error_log($block, $name, 0);
}

# --- requests -----------------------------------------------------------

# Returns ([ { packets => [ {value, delay} ], head => bool } ... ],
#          $need_array, $pipelined).
sub get_requests () {
    my ($block, $name) = @_;
    my $mh = $block->more_headers;
    my $more = sub {
        my $i = shift;
        return ref $mh eq 'ARRAY' ? $mh->[$i] : $mh;
    };

    my $pl = $block->pipelined_requests;
    if (defined $pl) {
        bail_out("$name - --- pipelined_requests must be an ARRAY (use eval)")
            unless ref $pl eq 'ARRAY';
        my @reqs;
        for my $i (0 .. $#$pl) {
            my $text = expand_env($pl->[$i], $name);
            my $conn = $i < $#$pl ? 'keep-alive' : 'close';
            push @reqs, build_request($name, $text, $more->($i), $conn);
        }
        return (\@reqs, 1, 1);
    }

    my $raw = $block->raw_request;
    if (defined $raw) {
        my $delay = $block->raw_request_middle_delay;
        my @pk = ref $raw eq 'ARRAY'
            ? map { { value => $raw->[$_], delay => $_ ? $delay : undef } }
                  0 .. $#$raw
            : ({ value => $raw });
        my $head = $pk[0]{value} =~ /^\s*HEAD\b/;
        return ([{ packets => \@pk, head => $head }], 0, 0);
    }

    my $req = $block->request;
    if (!defined $req && defined $block->request_eval) {
        diag("$name - request_eval is DEPRECATED. Use request eval instead.");
        $req = eval "package main; " . $block->request_eval;
        bail_out("$name - request_eval: $@") if $@;
    }
    bail_out("$name - No '--- request' section found") unless defined $req;
    if (ref $req eq 'ARRAY') {
        my @reqs = map { build_request($name, $req->[$_], $more->($_), 'close',
                                       $block->raw_request_middle_delay) }
                   0 .. $#$req;
        return (\@reqs, 1, 0);
    }
    bail_out("$name - --- request must be a string or an ARRAY") if ref $req;
    return ([build_request($name, $req, $more->(0), 'close')], 0, 0);
}

# Turns the mini-format (a string, or an array of packets) into the bytes
# to send, keeping the packet boundaries.
sub build_request () {
    my ($name, $in, $mh, $conn, $middle_delay) = @_;
    my @pk;
    if (ref $in eq 'ARRAY') {
        for my $i (0 .. $#$in) {
            my $p = $in->[$i];
            if (ref $p eq 'HASH') {
                push @pk, { value => $p->{value} // '',
                            delay => $p->{delay_before} // ($i ? $middle_delay : undef) };
            } elsif (!ref $p) {
                push @pk, { value => $p, delay => $i ? $middle_delay : undef };
            } else {
                bail_out("$name - invalid packet: should be a string or a hash");
            }
        }
    } elsif (!ref $in) {
        @pk = ({ value => $in });
    } else {
        bail_out("$name - a request must be a string or an array of packets");
    }

    my $all = join '', map { $_->{value} } @pk;
    $all =~ /^(\s*(?:#[^\n]*\n\s*)*)/;
    my $start = length $1;
    my $nl = index $all, "\n", $start;
    my $first = substr $all, $start, ($nl < 0 ? length($all) : $nl) - $start;
    my $from = $nl < 0 ? length $all : $nl + 1;
    my $to = length $all;
    my @t = split ' ', $first;
    bail_out("$name - Request line should be non-empty") unless @t;
    bail_out("$name - Request line is not valid. Should be "
             . "'meth [url [version]]' but got \"$first\".") if @t > 3;
    my ($meth, $uri, $ver) = ($t[0], $t[1] // '/', $t[2] // 'HTTP/1.1');

    $mh //= '';
    my $headers = '';
    $headers .= "Host: localhost\r\n" unless $mh =~ /^Host\s*:/mi;
    $headers .= "Connection: $conn\r\n" unless $mh =~ /^Connection/mi;
    for my $line (split /\n+/, $mh) {
        next if $line =~ /^\s*(?:#|$)/;
        my ($k, $v) = split /:\s*/, $line, 2;
        $headers .= "$k: " . ($v // '') . "\r\n";
    }
    my $chunked = $mh =~ /^(?i:Transfer-Encoding)\s*:\s*chunked\s*$/m;
    if ($to > $from && !$chunked && $mh !~ /^Content-Length:/m) {
        substr($all, $from) =~ /^(\s*)/;
        $from += length $1;
        substr($all, $from) =~ /(\s*)\z/;
        $to -= length $1;
        $to = $from if $to < $from;
        $headers .= "Content-Length: " . ($to - $from) . "\r\n";
    }

    my $head = "$meth $uri $ver\r\n$headers\r\n";
    my ($off, @out) = (0);
    for my $i (0 .. $#pk) {
        my ($a, $b) = ($off, $off + length $pk[$i]{value});
        $off = $b;
        my ($lo, $hi) = (max($a, $from), min($b, $to));
        my $v = $hi > $lo ? substr($all, $lo, $hi - $lo) : '';
        push @out, { value => ($i ? '' : $head) . $v, delay => $pk[$i]{delay} };
    }
    return { packets => \@out, head => uc($meth) eq 'HEAD' };
}

sub parse_time () {
    my $t = shift;
    return undef unless defined $t;
    return $1 / (defined $2 && $2 eq 'ms' ? 1000 : 1)
        if $t =~ /^\s*(\d*\.?\d+)\s*(ms|s)?\s*$/;
    return $t;
}

# Writes the packets on a new connection and reads until EOF or until the
# connection is idle for longer than the timeout. Returns the bytes read, or
# undef if the connection failed.
sub send_request () {
    my ($block, $name, $packets) = @_;
    my $timeout = parse_time($block->timeout) // parse_time($Timeout);
    my $addr = $block->server_addr_for_client // '127.0.0.1';
    my $port = $ServerPortForClient;

    my $sock;
    for my $try (0 .. 8) {
        $sock = IO::Socket::INET->new(PeerAddr => $addr, PeerPort => $port,
                                      Proto => 'tcp', Timeout => $timeout);
        last if $sock;
        sleep min(0.01 * 2 ** $try, 0.5);
    }
    if (!$sock) {
        fail("$name - ERROR: failed to connect to $addr:$port: $!");
        return undef;
    }
    warn "sending request to $addr:$port:\n",
         map({ $_->{value} } @$packets), "\n" if $Verbose;

    local $SIG{PIPE} = 'IGNORE';
    $sock->blocking(0);
    my $fd = fileno $sock;
    my @pk = @$packets;
    my ($wbuf, $write_at, $buf, $timed_out) = (undef, 0, '', 0);
    my $shutdown = $block->shutdown;
    my $written = sub {
        undef $wbuf;
        shutdown($sock, length $shutdown ? $shutdown : 1)
            if !@pk && defined $shutdown;
    };
    while (1) {
        if (!defined $wbuf && @pk) {
            my $p = shift @pk;
            ($wbuf, $write_at) = ($p->{value}, time + (parse_time($p->{delay}) // 0));
        }
        my ($rin, $win, $wait, $delaying) = ('', '', $timeout, 0);
        vec($rin, $fd, 1) = 1;
        if (defined $wbuf) {
            my $left = $write_at - time;
            if ($left > 0) {
                ($delaying, $wait) = (1, min($left, $timeout));
            } elsif (!length $wbuf) {
                $written->();
                next;
            } else {
                vec($win, $fd, 1) = 1;
            }
        }
        my $n = select(my $rout = $rin, my $wout = $win, undef, $wait);
        if ($n < 0) {
            next if $!{EINTR};
            warn "WARNING: $name - select failed: $!\n";
            last;
        }
        if ($n == 0) {
            next if $delaying;
            $timed_out = 1;
            last;
        }
        if (vec($rout, $fd, 1)) {
            my $r = sysread $sock, $buf, 65536, length $buf;
            last if defined $r && $r == 0;
            if (!defined $r && !$!{EAGAIN} && !$!{EINTR}) {
                warn "WARNING: $name - failed to read the response: $!\n";
                last;
            }
        }
        if (defined $wbuf && length $win && vec($wout, $fd, 1)) {
            my $w = syswrite $sock, $wbuf;
            if (defined $w) {
                substr($wbuf, 0, $w) = '';
                $written->() unless length $wbuf;
            } elsif (!$!{EAGAIN} && !$!{EINTR}) {
                warn "WARNING: $name - failed to send the request: $!\n"
                    if $Verbose;
                @pk = ();
                undef $wbuf;
            }
        }
    }
    close $sock;
    warn "received response:\n$buf\n" if $Verbose;
    if ($timed_out && !defined $block->abort) {
        fail("ERROR: client socket timed out - $name");
    }
    return $buf;
}

sub run_requests () {
    my ($block, $name) = @_;
    my ($reqs, $need_array, $pipelined) = get_requests($block, $name);
    my $wait = parse_time($block->wait);
    my $ignore = defined $block->ignore_response;

    my @raw;
    if ($pipelined) {
        my $all = join '', map { $_->{value} } map { @{ $_->{packets} } } @$reqs;
        my $raw = send_request($block, $name, [{ value => $all }]);
        for my $i (0 .. $#$reqs) {
            if (!$ignore) {
                my ($res, $hdrs);
                ($res, $hdrs, $raw) = parse_response($block, $name, $raw,
                                                     $reqs->[$i]{head});
                check_response($block, $name, $res, $hdrs, $i, $need_array);
            }
            sleep $wait if $wait;
            check_error_log($block, $name, $i);
        }
        warn "WARNING: $name - unexpected extra bytes after the last "
             . "response: \"$raw\"\n" if !$ignore && defined $raw && length $raw;
        return;
    }

    for my $i (0 .. $#$reqs) {
        my $raw = send_request($block, $name, $reqs->[$i]{packets});
        if (!$ignore) {
            my ($res, $hdrs, $left) = parse_response($block, $name, $raw,
                                                     $reqs->[$i]{head});
            warn "WARNING: $name - unexpected extra bytes after the "
                 . "response: \"$left\"\n" if defined $left && length $left;
            check_response($block, $name, $res, $hdrs, $i, $need_array);
        }
        sleep $wait if $wait;
        check_error_log($block, $name, $i);
    }
}

# --- responses ----------------------------------------------------------

# Returns ($res or undef, $raw_headers, $leftover_bytes).
sub parse_response () {
    my ($block, $name, $raw, $is_head) = @_;
    $raw //= '';
    if (defined $block->http09) {
        my $res = HTTP::Response->new(200);
        $res->content($raw);
        return ($res, '', '');
    }
    my $raw_headers = $raw =~ /^(.*?\r\n)\r\n/s ? $1 : '';
    my $res = HTTP::Response->parse($raw);
    my $code = $res->code // '';
    $res->code('') unless $code =~ /^\d+$/;
    return ($res, $raw_headers, '') if $code eq '101';

    my $body = $res->content;
    my $left = '';
    my $te = scalar $res->header('Transfer-Encoding');
    my $cl = scalar $res->header('Content-Length');
    if ($code eq '304' || $code eq '204' || $is_head) {
        ($left, $body) = ($body, '');
    } elsif (defined $te && $te eq 'chunked') {
        my $decoded = '';
        while (1) {
            if ($body !~ s/^[ \t]*([0-9a-fA-F]+)[ \t]*\r\n//) {
                return chunk_error($name, $raw, $raw_headers, $body);
            }
            my $size = hex $1;
            last if $size == 0;
            return chunk_error($name, $raw, $raw_headers, $body)
                if length($body) < $size + 2 || substr($body, $size, 2) ne "\r\n";
            $decoded .= substr $body, 0, $size;
            substr($body, 0, $size + 2) = '';
        }
        for my $t (split /\s*,\s*/, scalar($res->header('Trailer')) // '') {
            next unless length $t;
            $body =~ s/^(\Q$t\E)[ \t]*:[ \t]*([^\r\n]*)\r\n//i
                or return chunk_error($name, $raw, $raw_headers, $body);
            $res->push_header($1, $2);
        }
        $body =~ s/^\r\n//
            or return chunk_error($name, $raw, $raw_headers, $body);
        ($left, $body) = ($body, $decoded);
    } elsif (defined $cl && $cl =~ /^\s*(\d+)\s*$/) {
        my $len = $1;
        if (length $body < $len) {
            warn "WARNING: $name - response body truncated: "
                 . length($body) . " < $len\n";
        } elsif (length $body > $len) {
            $left = substr $body, $len;
            $body = substr $body, 0, $len;
        }
    }
    $body =~ s/^TE: deflate,gzip;q=0\.3\r\n//gm;
    $body =~ s/^Connection: TE, close\r\n//gm;
    $res->content($body);
    return ($res, $raw_headers, $left);
}

sub chunk_error () {
    my ($name, $raw, $raw_headers, $rest) = @_;
    if ($rest =~ /^[ \t]*[0-9a-fA-F]*[ \t]*(?:\r\n)?\z/ || length $rest == 0) {
        fail("$name - no last chunk found - $raw");
    } else {
        fail("$name - invalid chunked data received (not last chunk): $rest");
    }
    return (undef, $raw_headers, '');
}

sub indexed () {
    my ($block, $name, $sec, $i, $need_array) = @_;
    my $v = $block->$sec;
    return undef unless defined $v;
    if ($need_array) {
        return $v->[$i] if ref $v eq 'ARRAY';
        bail_out("$name - You asked for many requests, the expected results "
                 . "should be arrays as well.");
    }
    return ref $v eq 'ARRAY' ? $v->[0] : $v;
}

sub port_tokens () {
    my $s = shift;
    $s =~ s/\$ServerPortForClient\b/$ServerPortForClient/g;
    $s =~ s/\$ServerPort\b/$ServerPort/g;
    return $s;
}

sub parse_header_lines () {
    my %h;
    for my $line (split /\n/, shift) {
        $line =~ s/^\s+|\s+$//g;
        next unless length $line;
        my ($k, $v) = split /\s*:\s*/, $line, 2;
        $h{$k} = $v // '';
    }
    return \%h;
}

my %BodyFilters = (
    uc => sub { uc $_[0] }, lc => sub { lc $_[0] },
    length => sub { length $_[0] },
    md5_hex => sub { require Digest::MD5; Digest::MD5::md5_hex($_[0]) },
    sha1_hex => sub { require Digest::SHA; Digest::SHA::sha1_hex($_[0]) },
);

sub check_response () {
    my ($block, $name, $res, $raw_headers, $i, $need_array) = @_;
    my $get = sub { indexed($block, $name, shift, $i, $need_array) };
    my $code = $res ? $res->code // '' : '';

    if (defined(my $pat = $get->('error_code_like'))) {
        like($code, qr/$pat/sm, "$name - status code ok");
    } else {
        is($code, $get->('error_code') // 200, "$name - status code ok");
    }

    if (defined(my $pat = $get->('raw_response_headers_like'))) {
        like($raw_headers, qr/$pat/s, "$name - raw resp headers like");
    }
    if (defined(my $pat = $get->('raw_response_headers_unlike'))) {
        unlike($raw_headers, qr/$pat/s, "$name - raw resp headers unlike");
    }

    my ($hdrs, $is_like) = ($get->('response_headers'), 0);
    ($hdrs, $is_like) = ($get->('response_headers_like'), 1) unless defined $hdrs;
    if (defined $hdrs) {
        my $h = parse_header_lines($hdrs);
        for my $k (sort keys %$h) {
            if (!$is_like && $k =~ /^!\s*(.+)$/) {
                my $n = $1;
                unlike($raw_headers, qr/^\s*\Q$n\E\s*:/ms,
                       "$name - header $n not present in the raw headers");
                next;
            }
            my $actual = $res ? scalar $res->header($k) : undef;
            $actual //= '';
            my $v = $h->{$k};
            if ($is_like) { like($actual, qr/^$v$/, "$name - header $k like ok") }
            else { is($actual, port_tokens($v), "$name - header $k ok") }
        }
    }

    my $body = $res ? $res->content : undef;
    if (defined $body && defined(my $f = $block->response_body_filters)) {
        for my $one (ref $f eq 'ARRAY' ? @$f : ref $f ? ($f) : split ' ', $f) {
            my $fn = ref $one eq 'CODE' ? $one : $BodyFilters{$one}
                or bail_out("$name - unknown response_body_filters entry \"$one\"");
            $body = $fn->($body);
        }
    }
    my $body_name = "$name - response_body - response is expected (req $i)";
    my $exp = defined $block->response_body ? $get->('response_body')
            : defined $block->response_body_eval
                ? eval("package main; " . $get->('response_body_eval')) : undef;
    if (defined $block->response_body || defined $block->response_body_eval) {
        if (ref $exp) {
            like($body, $exp, "$name - response_body - like (req $i)");
        } else {
            $exp = expand_env(port_tokens($exp), $name)
                if defined $exp;
            if ($NoLongString) { is($body, $exp, $body_name) }
            else { Test::LongString::is_string($body, $exp, $body_name) }
        }
    } elsif (defined $block->response_body_like
             || defined $block->response_body_unlike) {
        my $like = defined $block->response_body_like;
        my $pat = $get->($like ? 'response_body_like' : 'response_body_unlike');
        $pat = qr/${\ port_tokens($pat)}/s unless ref $pat;
        my $desc = "$name - response_body_" . ($like ? 'like' : 'unlike')
                   . " - response is expected (req $i)";
        if ($like) { like($body, $pat, $desc) } else { unlike($body, $pat, $desc) }
    }
}

# --- error.log checks ---------------------------------------------------

sub log_patterns () {
    my $pats = shift;
    return () unless defined $pats;
    return ($pats) if ref $pats eq 'Regexp';
    return grep { defined } @$pats if ref $pats eq 'ARRAY';
    return grep { length } split /\n+/, $pats;
}

sub line_matches () {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ $pat : index($line, $pat) >= 0;
}

# Difference 7: re-reads the same window of error.log until every
# pattern matches a line or the timeout passes.
sub error_log_lines_with () {
    my ($patterns) = @_;
    my $from = $ErrLogPos;
    my $lines = error_log_lines();
    return $lines unless @$patterns;
    my $until = time + ($Timeout =~ /^\d*\.?\d+$/ ? $Timeout : 3);
    while (grep { my $p = $_; !grep { line_matches($_, $p) } @$lines }
                @$patterns)
    {
        last if time > $until;
        sleep 0.05;
        $ErrLogPos = $from;
        $lines = error_log_lines();
    }
    return $lines;
}

sub check_error_log () {
    my ($block, $name, $i) = @_;
    my @expected = log_patterns($block->error_log);
    my $lines = error_log_lines_with(\@expected);
    my @unwanted = log_patterns($block->no_error_log);

    my $grep = $block->grep_error_log;
    my $grep_out = $block->grep_error_log_out;
    bail_out("$name - --- grep_error_log and --- grep_error_log_out go "
             . "together") if defined $grep xor defined $grep_out;
    if (defined $grep) {
        $grep = $grep->[$i] if ref $grep eq 'ARRAY';
        $grep_out = $grep_out->[$i] if ref $grep_out eq 'ARRAY';
        $grep_out = expand_env($grep_out, $name);
        my $matched = '';
        for my $line (@$lines) {
            if (ref $grep ? $line =~ $grep : $line =~ /\Q$grep\E/) {
                $matched .= "$&\n" if $& !~ /\n/;
            }
        }
        my $desc = "$name - grep_error_log_out (req $i)";
        if (ref $grep_out eq 'Regexp') { like($matched, $grep_out, $desc) }
        elsif ($NoLongString) { is($matched, $grep_out, $desc) }
        else { Test::LongString::is_string($matched, $grep_out, $desc) }
    }

    for my $pat (@expected) {
        if (grep { line_matches($_, $pat) } @$lines) {
            pass("$name - pattern \"$pat\" matches a line in error.log (req $i)");
        } else {
            fail("$name - pattern \"$pat\" should match a line in error.log (req $i)");
        }
    }

    for my $pat (@unwanted) {
        my @hits = grep { line_matches($_, $pat) } @$lines;
        for my $line (@hits) {
            chomp(my $ln = $line);
            fail("$name - pattern \"$pat\" should not match any line in "
                 . "error.log but matches line \"$ln\" (req $i)");
        }
        pass("$name - pattern \"$pat\" does not match a line in error.log (req $i)")
            unless @hits;
    }

    # Difference 6: serious lines fail unless the block expects them
    my $startup = defined $block->must_die;
    my @allowed = @expected;
    push @allowed, $grep if defined $grep;
    for my $line (@$lines) {
        if ($line =~ /\bAssertion .*?failed\b/) {
            fail("$name - $line");
        } elsif ($line =~ /\[(alert|crit|emerg)\]/) {
            my $level = $1;
            next if $level eq 'emerg' && $startup;
            next if grep { line_matches($line, $_) } @allowed, @unwanted;
            chomp(my $ln = $line);
            fail("$name - unexpected [$level] line in error.log (req $i): "
                 . "\"$ln\" (declare it in --- error_log if the block "
                 . "expects it)");
        }
    }
}

1;
