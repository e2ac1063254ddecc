# asyncx_file_read: GET /files/read?path=... in the I/O pool, with every
# refusal (traversal variants, NUL, absolute paths, symlink escapes,
# directories, special files, size cap, missing root).

use lib 't/lib';
use Test::Nginx::Socket;
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use POSIX qw(mkfifo);

# A fixture tree outside servroot (Test::Nginx wipes servroot per block)
# and outside t/ (its symlinks lead out of the tree: prove -r follows them).
my $files = tempdir('asyncx-offload-XXXXXX', TMPDIR => 1, CLEANUP => 1);
make_path("$files/sub");

sub put { my ($name, $data) = @_; open my $fh, '>:raw', "$files/$name" or die "$name: $!"; print $fh $data; close $fh }

put('test.txt', "Hello, asyncx!\n");
put('korean.txt', "\xEC\x95\x88\xEB\x85\x95\n");
put('binary.bin', "\xff\xfe\x00\x01");
put('quote.txt', "a \"quoted\"\tline\\\n");
put('big.txt', 'x' x 2000);
put('sub/inner.txt', "inner\n");
symlink('../test.txt', "$files/sub/link-in") or die $!;
symlink('/etc/hostname', "$files/escape") or die $!;
symlink('/etc', "$files/dir-escape") or die $!;
symlink('/nonexistent-asyncx', "$files/dangling") or die $!;
symlink('missing-inside.txt', "$files/dangling-in") or die $!;
symlink('sub/../../nonexistent-asyncx', "$files/dangling-up") or die $!;
mkfifo("$files/fifo", 0644) or die $!;

$ENV{TEST_NGINX_OFFLOAD_FILES} = $files;

repeat_each(1);

plan tests => repeat_each() * 127;

no_shuffle();
no_long_string();
run_tests();

__DATA__

=== TEST 1: the exercise's example: {"content", "size", "async": true}
--- config
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_FILES;
        asyncx_file_read;
    }
--- request
GET /files/read?path=./test.txt
--- response_body
{"content":"Hello, asyncx!\n","size":15,"encoding":"utf-8","async":true}
--- response_headers
Content-Type: application/json
--- no_error_log
[error]



=== TEST 2: UTF-8 and JSON escapes pass through; other bytes come back base64
--- config
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_FILES;
        asyncx_file_read;
    }
--- request eval
["GET /files/read?path=korean.txt", "GET /files/read?path=quote.txt",
 "GET /files/read?path=binary.bin"]
--- response_body eval
["{\"content\":\"\xEC\x95\x88\xEB\x85\x95\\n\",\"size\":7,\"encoding\":\"utf-8\",\"async\":true}\n",
 "{\"content\":\"a \\\"quoted\\\"\\tline\\\\\\n\",\"size\":17,\"encoding\":\"utf-8\",\"async\":true}\n",
 "{\"content\":\"//4AAQ==\",\"size\":4,\"encoding\":\"base64\",\"async\":true}\n"]
--- no_error_log
[error]



=== TEST 3: subdirectories and symlinks that stay inside the root are fine
--- config
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_FILES/;
        asyncx_file_read;
    }
--- request eval
["GET /files/read?path=sub/inner.txt", "GET /files/read?path=sub/link-in",
 "GET /files/read?path=sub%2Finner.txt"]
--- response_body eval
["{\"content\":\"inner\\n\",\"size\":6,\"encoding\":\"utf-8\",\"async\":true}\n",
 "{\"content\":\"Hello, asyncx!\\n\",\"size\":15,\"encoding\":\"utf-8\",\"async\":true}\n",
 "{\"content\":\"inner\\n\",\"size\":6,\"encoding\":\"utf-8\",\"async\":true}\n"]
--- no_error_log
[error]



=== TEST 4: traversal variants, absolute paths, NUL bytes and backslashes are 403
--- config
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_FILES;
        asyncx_file_read;
    }
--- request eval
["GET /files/read?path=../test.txt",
 "GET /files/read?path=..%2F..%2Fetc%2Fpasswd",
 "GET /files/read?path=sub/../../etc/passwd",
 "GET /files/read?path=sub/..",
 "GET /files/read?path=/etc/passwd",
 "GET /files/read?path=%2Fetc%2Fpasswd",
 "GET /files/read?path=test.txt%00.png",
 "GET /files/read?path=..%5Cetc%5Cpasswd"]
--- error_code eval
[403, 403, 403, 403, 403, 403, 403, 403]
--- response_body eval
["{\"error\": \"path \\\"../test.txt\\\" is not allowed: absolute paths, \\\"..\\\", NUL bytes and backslashes are refused\", \"status\": 403}\n",
 "{\"error\": \"path \\\"../../etc/passwd\\\" is not allowed: absolute paths, \\\"..\\\", NUL bytes and backslashes are refused\", \"status\": 403}\n",
 "{\"error\": \"path \\\"sub/../../etc/passwd\\\" is not allowed: absolute paths, \\\"..\\\", NUL bytes and backslashes are refused\", \"status\": 403}\n",
 "{\"error\": \"path \\\"sub/..\\\" is not allowed: absolute paths, \\\"..\\\", NUL bytes and backslashes are refused\", \"status\": 403}\n",
 "{\"error\": \"path \\\"/etc/passwd\\\" is not allowed: absolute paths, \\\"..\\\", NUL bytes and backslashes are refused\", \"status\": 403}\n",
 "{\"error\": \"path \\\"/etc/passwd\\\" is not allowed: absolute paths, \\\"..\\\", NUL bytes and backslashes are refused\", \"status\": 403}\n",
 "{\"error\": \"path \\\"test.txt\\\\x00.png\\\" is not allowed: absolute paths, \\\"..\\\", NUL bytes and backslashes are refused\", \"status\": 403}\n",
 "{\"error\": \"path \\\"..\\\\x5cetc\\\\x5cpasswd\\\" is not allowed: absolute paths, \\\"..\\\", NUL bytes and backslashes are refused\", \"status\": 403}\n"]
--- no_error_log
[error]
asyncx offload: file read posted



=== TEST 5: symlinks leading outside the root are 403 (file and directory links), whether what they lead to exists or not
(a missing path through a link to a directory outside was 404, an
existing one 403: a client could tell which paths exist outside; a
dangling link leading outside is outside too)
--- config
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_FILES;
        asyncx_file_read;
    }
--- request eval
["GET /files/read?path=escape", "GET /files/read?path=dir-escape/hostname",
 "GET /files/read?path=./dir-escape/passwd",
 "GET /files/read?path=dir-escape/no-such-file-asyncx",
 "GET /files/read?path=dir-escape/no-such-dir-asyncx/x",
 "GET /files/read?path=dangling", "GET /files/read?path=dangling-up"]
--- error_code eval
[403, 403, 403, 403, 403, 403, 403]
--- response_body eval
["{\"error\": \"file read: \\\"escape\\\" resolves outside the file root\", \"status\": 403}\n",
 "{\"error\": \"file read: \\\"dir-escape/hostname\\\" resolves outside the file root\", \"status\": 403}\n",
 "{\"error\": \"file read: \\\"./dir-escape/passwd\\\" resolves outside the file root\", \"status\": 403}\n",
 "{\"error\": \"file read: \\\"dir-escape/no-such-file-asyncx\\\" resolves outside the file root\", \"status\": 403}\n",
 "{\"error\": \"file read: \\\"dir-escape/no-such-dir-asyncx/x\\\" resolves outside the file root\", \"status\": 403}\n",
 "{\"error\": \"file read: \\\"dangling\\\" resolves outside the file root\", \"status\": 403}\n",
 "{\"error\": \"file read: \\\"dangling-up\\\" resolves outside the file root\", \"status\": 403}\n"]
--- no_error_log
[error]



=== TEST 6: missing files are 404 (also below a file, and dangling symlinks inside)
--- config
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_FILES;
        asyncx_file_read;
    }
--- request eval
["GET /files/read?path=nope.txt", "GET /files/read?path=nodir/x.txt",
 "GET /files/read?path=test.txt/x", "GET /files/read?path=dangling-in"]
--- error_code eval
[404, 404, 404, 404]
--- response_body eval
["{\"error\": \"file read: \\\"nope.txt\\\" not found\", \"status\": 404}\n",
 "{\"error\": \"file read: \\\"nodir/x.txt\\\" not found\", \"status\": 404}\n",
 "{\"error\": \"file read: \\\"test.txt/x\\\" not found\", \"status\": 404}\n",
 "{\"error\": \"file read: \\\"dangling-in\\\" not found\", \"status\": 404}\n"]
--- no_error_log
[error]



=== TEST 7: a directory is 400; a FIFO is 400 at once (never blocks the thread)
--- config
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_FILES;
        asyncx_file_read;
    }
--- request eval
["GET /files/read?path=sub", "GET /files/read?path=.", "GET /files/read?path=fifo"]
--- error_code eval
[400, 400, 400]
--- response_body eval
["{\"error\": \"file read: \\\"sub\\\" is a directory\", \"status\": 400}\n",
 "{\"error\": \"file read: \\\".\\\" is a directory\", \"status\": 400}\n",
 "{\"error\": \"file read: \\\"fifo\\\" is not a regular file\", \"status\": 400}\n"]
--- timeout: 2
--- no_error_log
[error]



=== TEST 8: larger than asyncx_file_max_size is 413
--- config
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_FILES;
        asyncx_file_max_size 1k;
        asyncx_file_read;
    }
--- request eval
["GET /files/read?path=big.txt", "GET /files/read?path=test.txt"]
--- error_code eval
[413, 200]
--- response_body eval
["{\"error\": \"file read: file is 2000 bytes, larger than asyncx_file_max_size 1024\", \"status\": 413}\n",
 "{\"content\":\"Hello, asyncx!\\n\",\"size\":15,\"encoding\":\"utf-8\",\"async\":true}\n"]
--- no_error_log
[error]



=== TEST 8b: HEAD answers the headers of the GET, without a body
--- config
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_FILES;
        asyncx_file_read;
    }
--- request
HEAD /files/read?path=test.txt
--- error_code: 200
--- response_headers
Content-Type: application/json
Content-Length: 73
--- response_body
--- no_error_log
[error]



=== TEST 9: no path, an empty path and other methods are refused
--- config
    location = /files/read {
        asyncx_file_root $TEST_NGINX_OFFLOAD_FILES;
        asyncx_file_read;
    }
--- request eval
["GET /files/read", "GET /files/read?path=", "POST /files/read?path=test.txt\nx"]
--- error_code eval
[400, 400, 405]
--- response_body eval
["{\"error\": \"the \\\"path\\\" argument is required\", \"status\": 400}\n",
 "{\"error\": \"the \\\"path\\\" argument is required\", \"status\": 400}\n",
 "{\"error\": \"file read: method not allowed, use GET\", \"status\": 405}\n"]
--- no_error_log
[error]



=== TEST 10: a root that does not exist is a 500; the server's path is in the log, not in the answer
--- config
    location = /files/read {
        asyncx_file_root /nonexistent-asyncx-root;
        asyncx_file_read;
    }
--- request
GET /files/read?path=test.txt
--- error_code: 500
--- response_body
{"error": "file read: internal error, see the error log", "status": 500}
--- error_log
[error]
asyncx: file read: file root "/nonexistent-asyncx-root" is not available (2: No such file or directory) (status 500)



=== TEST 11: a relative root is below the prefix, like "root"
--- config
    location = /files/read {
        asyncx_file_root html;
        asyncx_file_read;
    }
--- user_files
>>> hello.txt
hi from html
--- request
GET /files/read?path=hello.txt
--- response_body
{"content":"hi from html\n","size":13,"encoding":"utf-8","async":true}
--- no_error_log
[error]



=== TEST 12: nginx -t: asyncx_file_read needs asyncx_file_root
--- config
    location = /files/read {
        asyncx_file_read;
    }
--- must_die
--- error_log
"asyncx_file_read" needs "asyncx_file_root"



=== TEST 13: nginx -t: file size bounds name the directive and the value
--- config
    location = /files/read {
        asyncx_file_root html;
        asyncx_file_max_size 0;
        asyncx_file_read;
    }
--- must_die
--- error_log
invalid value "0" in "asyncx_file_max_size", expected 1..1073741824 bytes
