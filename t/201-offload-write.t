# asyncx_file_write: POST /files/write?path=... with the content as body.
# Atomic (temp file in the same directory, fsync, rename), refusals, and
# bodies that nginx buffered to temp files.  Concurrent readers during
# writes are hammered in t/290-offload-concurrency.t.

use lib 't/lib';
use Test::Nginx::Socket;
use File::Path qw(make_path);
use File::Temp qw(tempdir);

my $w = tempdir('asyncx-offload-XXXXXX', TMPDIR => 1, CLEANUP => 1);
make_path("$w/sub/dir");

sub put { my ($name, $data) = @_; open my $fh, '>:raw', "$w/$name" or die "$name: $!"; print $fh $data; close $fh }

put('keep.txt', "original\n");
put('readonly.txt', "read-only\n");
chmod 0444, "$w/readonly.txt" or die $!;
symlink('keep.txt', "$w/link-in") or die $!;
symlink('/tmp', "$w/dir-out") or die $!;

$ENV{TEST_NGINX_OFFLOAD_WRITE} = $w;

repeat_each(1);

plan tests => repeat_each() * 113;

no_shuffle();
no_long_string();
run_tests();

__DATA__

=== TEST 1: write then read back: {"written", "path", "async": true}
--- config
    location = /files/write {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_write;
    }
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_read;
    }
--- request eval
["POST /files/write?path=./new.txt\nhello, atomic world",
 "GET /files/read?path=new.txt"]
--- response_body eval
["{\"written\":19,\"path\":\"./new.txt\",\"async\":true}\n",
 "{\"content\":\"hello, atomic world\",\"size\":19,\"encoding\":\"utf-8\",\"async\":true}\n"]
--- no_error_log
[error]



=== TEST 2: overwrite replaces the whole file; subdirectories work
--- config
    location = /files/write {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_write;
    }
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_read;
    }
--- request eval
["POST /files/write?path=sub/over.txt\n" . ("long content " x 10),
 "POST /files/write?path=sub/over.txt\nshort",
 "GET /files/read?path=sub/over.txt"]
--- response_body eval
["{\"written\":129,\"path\":\"sub/over.txt\",\"async\":true}\n",
 "{\"written\":5,\"path\":\"sub/over.txt\",\"async\":true}\n",
 "{\"content\":\"short\",\"size\":5,\"encoding\":\"utf-8\",\"async\":true}\n"]
--- no_error_log
[error]



=== TEST 3: a refused write (over asyncx_file_max_size, declared or chunked) leaves the old file intact
--- config
    location = /files/write {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_max_size 16;
        asyncx_file_write;
    }
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_read;
    }
--- request eval
["POST /files/write?path=keep.txt\n12345678901234567",
 "POST /files/write?path=keep.txt\n11\r\n12345678901234567\r\n0\r\n\r\n",
 "GET /files/read?path=keep.txt"]
--- more_headers eval
["", "Transfer-Encoding: chunked", ""]
--- error_code eval
[413, 413, 200]
--- response_body eval
["{\"error\": \"request body is larger than 16 bytes\", \"status\": 413}\n",
 "{\"error\": \"request body is larger than 16 bytes\", \"status\": 413}\n",
 "{\"content\":\"original\\n\",\"size\":9,\"encoding\":\"utf-8\",\"async\":true}\n"]
--- no_error_log
[error]



=== TEST 3b: a declared body over asyncx_file_max_size is 413 before any of it is read: no "100 Continue" invites it, and what the client sends anyway is discarded (the next request on the connection is answered)
--- config
    location = /files/write {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_max_size 16;
        asyncx_file_write;
    }
--- pipelined_requests eval
["POST /files/write?path=expect.txt\n12345678901234567",
 "POST /files/write?path=expect.txt\nafter"]
--- more_headers eval
["Expect: 100-continue", ""]
--- error_code eval
[413, 200]
--- raw_response_headers_unlike eval
["100 Continue", "100 Continue"]
--- response_body eval
["{\"error\": \"request body is larger than 16 bytes\", \"status\": 413}\n",
 "{\"written\":5,\"path\":\"expect.txt\",\"async\":true}\n"]
--- grep_error_log eval
qr/asyncx: .*? \(status \d+\)/
--- grep_error_log_out eval
["asyncx: request body is larger than 16 bytes (status 413)\n", ""]
--- no_error_log
[error]



=== TEST 4: traversal, absolute and NUL paths are 403; non-file names are 400
--- config
    location = /files/write {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_write;
    }
--- request eval
["POST /files/write?path=../evil.txt\nx",
 "POST /files/write?path=/tmp/evil.txt\nx",
 "POST /files/write?path=evil%00.txt\nx",
 "POST /files/write?path=sub/\nx",
 "POST /files/write?path=sub/.\nx"]
--- error_code eval
[403, 403, 403, 400, 400]
--- response_body eval
["{\"error\": \"path \\\"../evil.txt\\\" is not allowed: absolute paths, \\\"..\\\", NUL bytes and backslashes are refused\", \"status\": 403}\n",
 "{\"error\": \"path \\\"/tmp/evil.txt\\\" is not allowed: absolute paths, \\\"..\\\", NUL bytes and backslashes are refused\", \"status\": 403}\n",
 "{\"error\": \"path \\\"evil\\\\x00.txt\\\" is not allowed: absolute paths, \\\"..\\\", NUL bytes and backslashes are refused\", \"status\": 403}\n",
 "{\"error\": \"path \\\"sub/\\\" does not name a file\", \"status\": 400}\n",
 "{\"error\": \"path \\\"sub/.\\\" does not name a file\", \"status\": 400}\n"]
--- no_error_log
[error]



=== TEST 5: symlinks: a directory link leading outside is 403 (whether the directory below it exists or not), a link target is never replaced
--- config
    location = /files/write {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_write;
    }
--- request eval
["POST /files/write?path=dir-out/evil.txt\nx",
 "POST /files/write?path=dir-out/no-such-dir-asyncx/evil.txt\nx",
 "POST /files/write?path=link-in\nx"]
--- error_code eval
[403, 403, 403]
--- response_body eval
["{\"error\": \"file write: the directory of \\\"dir-out/evil.txt\\\" resolves outside the file root\", \"status\": 403}\n",
 "{\"error\": \"file write: the directory of \\\"dir-out/no-such-dir-asyncx/evil.txt\\\" resolves outside the file root\", \"status\": 403}\n",
 "{\"error\": \"file write: \\\"link-in\\\" is a symlink\", \"status\": 403}\n"]
--- no_error_log
[error]



=== TEST 6: a missing directory is 404; a directory target is 400
--- config
    location = /files/write {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_write;
    }
--- request eval
["POST /files/write?path=nodir/x.txt\nx",
 "POST /files/write?path=sub/dir\nx"]
--- error_code eval
[404, 400]
--- response_body eval
["{\"error\": \"file write: \\\"nodir/x.txt\\\" not found\", \"status\": 404}\n",
 "{\"error\": \"file write: \\\"sub/dir\\\" is not a regular file\", \"status\": 400}\n"]
--- no_error_log
[error]



=== TEST 7: a body nginx buffered to a temp file is copied in the thread
--- config
    client_body_buffer_size 1k;
    location = /files/write {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_write;
    }
--- request eval
"POST /files/write?path=big.txt\n" . ("0123456789" x 10000)
--- response_body
{"written":100000,"path":"big.txt","async":true}
--- error_log
a client request body is buffered to a temporary file
--- no_error_log
[error]



=== TEST 8: ... and the file holds exactly that body
--- config
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_read;
    }
--- request
GET /files/read?path=big.txt
--- response_body_filters eval
sub { my $b = shift; $b =~ /"content":"([^"]*)","size":(\d+)/ or return $b; ($1 eq "0123456789" x 10000 ? "same" : "differs") . " $2" }
--- response_body chomp
same 100000
--- no_error_log
[error]



=== TEST 9: binary bodies are stored as sent; an empty body empties the file
--- config
    location = /files/write {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_write;
    }
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_read;
    }
--- request eval
["POST /files/write?path=bin.dat\n\xff\xfe\x00\x01",
 "GET /files/read?path=bin.dat",
 "POST /files/write?path=bin.dat\n",
 "GET /files/read?path=bin.dat"]
--- response_body eval
["{\"written\":4,\"path\":\"bin.dat\",\"async\":true}\n",
 "{\"content\":\"//4AAQ==\",\"size\":4,\"encoding\":\"base64\",\"async\":true}\n",
 "{\"written\":0,\"path\":\"bin.dat\",\"async\":true}\n",
 "{\"content\":\"\",\"size\":0,\"encoding\":\"utf-8\",\"async\":true}\n"]
--- no_error_log
[error]



=== TEST 10: GET is 405, no path is 400
--- config
    location = /files/write {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_write;
    }
--- request eval
["GET /files/write?path=x.txt", "POST /files/write\nx"]
--- error_code eval
[405, 400]
--- response_body eval
["{\"error\": \"file write: method not allowed, use POST\", \"status\": 405}\n",
 "{\"error\": \"the \\\"path\\\" argument is required\", \"status\": 400}\n"]
--- no_error_log
[error]



=== TEST 11: query arguments are decoded once, percent-escapes only: "+" is a plus sign, %2B is "+", %3F is "?" and decoding goes on
--- config
    location = /files/write {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_write;
    }
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_read;
    }
--- request eval
["POST /files/write?path=a%2Bb.txt\none",
 "POST /files/write?path=notes%3Fsecret.txt\ntwo",
 "POST /files/write?path=c++.txt\nthree",
 "POST /files/write?path=pct%2541.txt\nfour",
 "GET /files/read?path=a+b.txt",
 "GET /files/read?path=c%2B%2B.txt",
 "GET /files/read?path=notes?secret.txt",
 "GET /files/read?path=pct%41.txt"]
--- error_code eval
[200, 200, 200, 200, 200, 200, 200, 404]
--- response_body eval
["{\"written\":3,\"path\":\"a+b.txt\",\"async\":true}\n",
 "{\"written\":3,\"path\":\"notes?secret.txt\",\"async\":true}\n",
 "{\"written\":5,\"path\":\"c++.txt\",\"async\":true}\n",
 "{\"written\":4,\"path\":\"pct%41.txt\",\"async\":true}\n",
 "{\"content\":\"one\",\"size\":3,\"encoding\":\"utf-8\",\"async\":true}\n",
 "{\"content\":\"three\",\"size\":5,\"encoding\":\"utf-8\",\"async\":true}\n",
 "{\"content\":\"two\",\"size\":3,\"encoding\":\"utf-8\",\"async\":true}\n",
 "{\"error\": \"file read: \\\"pctA.txt\\\" not found\", \"status\": 404}\n"]



=== TEST 12: ... and those are the names on disk (no space, nothing cut at "?")
--- config
    location = /t { return 200 "ok"; }
--- request
GET /t
--- response_body_filters eval
sub { CORE::join "|", sort grep { /^(a|notes|c\+|pct)/ } map { s{.*/}{}r } glob("$ENV{TEST_NGINX_OFFLOAD_WRITE}/*") }
--- response_body chomp
a+b.txt|c++.txt|notes?secret.txt|pct%41.txt



=== TEST 13: a read-only (0444) file is not replaced, even by a root worker: 403, content and mode unchanged
--- config
    location = /files/write {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_write;
    }
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_WRITE;
        asyncx_file_read;
    }
--- request eval
["POST /files/write?path=readonly.txt\nreplaced", "GET /files/read?path=readonly.txt"]
--- error_code eval
[403, 200]
--- response_body eval
["{\"error\": \"file write: \\\"readonly.txt\\\" is read-only\", \"status\": 403}\n",
 "{\"content\":\"read-only\\n\",\"size\":10,\"encoding\":\"utf-8\",\"async\":true}\n"]
--- response_body_filters eval
sub { $_[0] . (((stat "$ENV{TEST_NGINX_OFFLOAD_WRITE}/readonly.txt")[2] & 07777) == 0444 ? "" : "mode changed") }
--- no_error_log
[error]
