# PBKDF2-HMAC-SHA256 hashing and verification in the CPU pool:
# asyncx_password_hash, asyncx_password_verify and their refusals.

use lib 't/lib';
use Test::Nginx::Socket;

# The reference: Django's PBKDF2PasswordHasher as Python's hashlib
# computes it (Debian's python3, not a pyenv one).  The salt text's bytes
# are the salt; the digest is standard base64.  Arguments go through
# argv as bytes (os.fsencode gives them back unchanged).
our $PY = '/usr/bin/python3';

# the passwords of TEST 7b, in the order of its requests
our @hashed_pw = ("mypassword",
                  "\xEB\xB9\x84\xEB\xB0\x80\xEB\xB2\x88\xED\x98\xB8 \\ \" / \xC3\xA9",
                  "long " x 200);
our $hashed = 0;

sub python {
    my ($code, @args) = @_;
    open(my $fh, '-|', $PY, '-c', $code, @args) or die "$PY: $!";
    local $/;
    my $out = <$fh>;
    close $fh or die "$PY failed: $? ($code)";
    $out =~ s/\n\z//;
    return $out;
}

sub django_hash {
    my ($password, $salt, $iterations, $dklen) = @_;
    return python(<<'_PY_', $password, $salt, $iterations, $dklen // 32);
import base64, hashlib, os, sys
pw, salt = os.fsencode(sys.argv[1]), os.fsencode(sys.argv[2])
it, dklen = int(sys.argv[3]), int(sys.argv[4])
dk = hashlib.pbkdf2_hmac("sha256", pw, salt, it, dklen)
print("pbkdf2_sha256$%d$%s$%s" % (it, salt.decode(), base64.b64encode(dk).decode()))
_PY_
}

# Django's verify(): split on "$", recompute with the salt text, compare
# the base64 texts
sub django_verify {
    my ($password, $encoded) = @_;
    return python(<<'_PY_', $password, $encoded);
import base64, hashlib, hmac, os, sys
pw, encoded = os.fsencode(sys.argv[1]), sys.argv[2]
algorithm, it, salt, digest = encoded.split("$", 3)
assert algorithm == "pbkdf2_sha256"
dk = hashlib.pbkdf2_hmac("sha256", pw, salt.encode(), int(it))
ok = hmac.compare_digest(base64.b64encode(dk).decode(), digest)
print("django: " + ("valid" if ok else "invalid") + " salt " + salt)
_PY_
}

repeat_each(2);

plan tests => repeat_each() * 160;

no_shuffle();
no_long_string();
run_tests();

__DATA__

=== TEST 1: hash: the exercise's shape, Django's format: a 22-character [a-zA-Z0-9] salt and a 32-byte digest
--- config
    location = /auth/hash {
        asyncx_pbkdf2_iterations 1000;
        asyncx_password_hash;
    }
--- request
POST /auth/hash
{"password": "mypassword"}
--- response_body_like chomp
^\{"hash":"pbkdf2_sha256\$1000\$[A-Za-z0-9]{22}\$[A-Za-z0-9+/]{43}=","method":"pbkdf2","algorithm":"pbkdf2_sha256","iterations":1000,"hash_time":"\d+\.\d\d\xEC\xB4\x88","hash_ms":[\d.]+,"async":true\}$
--- no_error_log
[error]



=== TEST 2: hash: the default iteration count is OWASP's 600000
--- config
    location = /auth/hash {
        asyncx_password_hash;
    }
--- request
POST /auth/hash
{"password": "mypassword"}
--- timeout: 60
--- response_body_like chomp
^\{"hash":"pbkdf2_sha256\$600000\$[^"]+","method":"pbkdf2","algorithm":"pbkdf2_sha256","iterations":600000,
--- no_error_log
[error]



=== TEST 3: hash: two hashes of one password differ (random salt)
--- config
    location = /auth/hash {
        asyncx_pbkdf2_iterations 1000;
        asyncx_password_hash;
    }
--- request eval
["POST /auth/hash\n{\"password\": \"same\"}", "POST /auth/hash\n{\"password\": \"same\"}"]
--- response_body_filters eval
sub { my ($h) = $_[0] =~ /"hash":"(pbkdf2_sha256\$1000\$[^"]+)"/; !$h ? "no hash" : $main::seen{$h}++ ? "repeated" : "new" }
--- response_body eval
["new", "new"]
--- no_error_log
[error]



=== TEST 4: verify: a hash made elsewhere (Python hashlib, Django's algorithm) verifies
--- config
    location = /auth/verify {
        asyncx_password_verify;
    }
--- request eval
"POST /auth/verify\n{\"password\": \"mypassword\", \"hash\": \""
. main::django_hash("mypassword", "abcdefghijklmnopqrstuv", 1000) . "\"}"
--- response_body_like chomp
^\{"valid":true,"method":"pbkdf2","iterations":1000,"verify_ms":[\d.]+,"async":true\}$
--- no_error_log
[error]



=== TEST 5: verify: a wrong password is not valid
--- config
    location = /auth/verify {
        asyncx_password_verify;
    }
--- request eval
"POST /auth/verify\n{\"password\": \"mypassword!\", \"hash\": \""
. main::django_hash("mypassword", "abcdefghijklmnopqrstuv", 1000) . "\"}"
--- response_body_like chomp
^\{"valid":false,"method":"pbkdf2","iterations":1000,
--- no_error_log
[error]



=== TEST 6: verify: the hash's own iteration count is used, not the location's
--- config
    location = /auth/verify {
        asyncx_pbkdf2_iterations 5000;
        asyncx_password_verify;
    }
--- request eval
"POST /auth/verify\n{\"password\": \"mypassword\", \"hash\": \""
. main::django_hash("mypassword", "0123456789abcdefghijkl", 3000) . "\"}"
--- response_body_like chomp
^\{"valid":true,"method":"pbkdf2","iterations":3000,
--- no_error_log
[error]



=== TEST 7: verify: UTF-8 passwords and salts, any salt text, shorter (16-byte) digests
--- config
    location = /auth/verify {
        asyncx_password_verify;
    }
--- request eval
["POST /auth/verify\n{\"password\": \"\xEB\xB9\x84\xEB\xB0\x80\xEB\xB2\x88\xED\x98\xB8\", \"hash\": \""
 . main::django_hash("\xEB\xB9\x84\xEB\xB0\x80\xEB\xB2\x88\xED\x98\xB8", "\xEC\x86\x8C\xEA\xB8\x88", 1000) . "\"}",
 "POST /auth/verify\n{\"password\": \"mypassword\", \"hash\": \""
 . main::django_hash("mypassword", "YXN5bmN4LXNhbHQtMDAwMQ==", 1000, 16) . "\"}",
 "POST /auth/verify\n{\"password\": \"p\", \"hash\": \""
 . main::django_hash("p", "s", 1) . "\"}"]
--- response_body_like eval
[qr/^\{"valid":true,/, qr/^\{"valid":true,/, qr/^\{"valid":true,"method":"pbkdf2","iterations":1,/]
--- no_error_log
[error]



=== TEST 7a: verify: a real Django hash (600000 iterations, Django's salt alphabet; its digest from hashlib.pbkdf2_hmac) verifies; a wrong password does not
--- config
    location = /auth/verify {
        asyncx_password_verify;
    }
--- request eval
["POST /auth/verify\n{\"password\": \"mypassword\", \"hash\": \"pbkdf2_sha256\$600000\$abcdefghijklmnopqrstuv\$TSYpOSAhHWot1Z16jPNLQP2jMBk7wsB9wQ08gkXqnNg=\"}",
 "POST /auth/verify\n{\"password\": \"Mypassword\", \"hash\": \"pbkdf2_sha256\$600000\$abcdefghijklmnopqrstuv\$TSYpOSAhHWot1Z16jPNLQP2jMBk7wsB9wQ08gkXqnNg=\"}"]
--- timeout: 60
--- response_body_like eval
[qr/^\{"valid":true,"method":"pbkdf2","iterations":600000,/,
 qr/^\{"valid":false,"method":"pbkdf2","iterations":600000,/]
--- no_error_log
[error]



=== TEST 7b: hash: the digest is right: Django's verify (hashlib) accepts what the module made, for ASCII, UTF-8 and long passwords
--- config
    location = /auth/hash {
        asyncx_pbkdf2_iterations 1000;
        asyncx_password_hash;
    }
--- request eval
["POST /auth/hash\n{\"password\": \"mypassword\"}",
 "POST /auth/hash\n{\"password\": \"\xEB\xB9\x84\xEB\xB0\x80\xEB\xB2\x88\xED\x98\xB8 \\\\ \\\" \\/ \\u00e9\"}",
 "POST /auth/hash\n{\"password\": \"" . ("long " x 200) . "\"}"]
--- response_body_filters eval
sub {
    my ($h) = $_[0] =~ /"hash":"([^"]+)"/ or return "no hash: $_[0]";
    my $pw = $main::hashed_pw[$main::hashed++ % 3];
    my $v = main::django_verify($pw, $h);
    my $w = main::django_verify($pw . "x", $h);
    $v =~ s/ salt [A-Za-z0-9]{22}$/ salt ok/;
    $w =~ s/ salt [A-Za-z0-9]{22}$/ salt ok/;
    "$v, $w";
}
--- response_body eval
["django: valid salt ok, django: invalid salt ok",
 "django: valid salt ok, django: invalid salt ok",
 "django: valid salt ok, django: invalid salt ok"]
--- no_error_log
[error]



=== TEST 7c: verify: a hash of the module before 0.2 (base64-decoded salt) no longer verifies (documented incompatibility)
--- config
    location = /auth/verify {
        asyncx_password_verify;
    }
--- request
POST /auth/verify
{"password": "mypassword", "hash": "pbkdf2_sha256$1000$YXN5bmN4LXNhbHQtMDAwMQ==$bE0EF8vZYU5ZZuZi1lomXIvWxnYcOlp16qGHTNtKZPE="}
--- response_body_like chomp
^\{"valid":false,"method":"pbkdf2","iterations":1000,
--- no_error_log
[error]



=== TEST 8: hash: missing, empty, non-string and oversized passwords are 400
--- config
    location = /auth/hash {
        asyncx_pbkdf2_iterations 1000;
        asyncx_password_max_length 8;
        asyncx_password_hash;
    }
--- request eval
["POST /auth/hash\n{\"pass\": \"x\"}",
 "POST /auth/hash\n{\"password\": \"\"}",
 "POST /auth/hash\n{\"password\": 12345}",
 "POST /auth/hash\n{\"password\": \"123456789\"}",
 "POST /auth/hash\n[\"password\"]",
 "POST /auth/hash\n{\"password\": \"12345678\"}"]
--- error_code eval
[400, 400, 400, 400, 400, 200]
--- response_body_like eval
[qr/^\{"error": "password hash: \\"password\\" \(a string\) is required", "status": 400\}$/,
 qr/^\{"error": "password hash: \\"password\\" is empty", "status": 400\}$/,
 qr/^\{"error": "password hash: \\"password\\" \(a string\) is required", "status": 400\}$/,
 qr/^\{"error": "password hash: \\"password\\" is longer than 8 bytes", "status": 400\}$/,
 qr/^\{"error": "password hash: expected a JSON object", "status": 400\}$/,
 qr/^\{"hash":"pbkdf2_sha256\$1000\$/]
--- no_error_log
[error]



=== TEST 9: hash: malformed JSON names the byte offset; an empty body is refused
--- config
    location = /auth/hash {
        asyncx_pbkdf2_iterations 1000;
        asyncx_password_hash;
    }
--- request eval
["POST /auth/hash\n{\"password\": \"abc\",}",
 "POST /auth/hash\n{\"password\": \"abc\"} {}",
 "POST /auth/hash\n"]
--- error_code eval
[400, 400, 400]
--- response_body eval
["{\"error\": \"password hash: invalid JSON at byte 19\", \"status\": 400}\n",
 "{\"error\": \"password hash: invalid JSON at byte 20: data after the document\", \"status\": 400}\n",
 "{\"error\": \"password hash: request body is empty, expected {\\\"password\\\": \\\"...\\\"}\", \"status\": 400}\n"]
--- error_log
(status 400)
--- no_error_log
[error]



=== TEST 10: verify: malformed hashes and excessive iteration counts are 400
--- config
    location = /auth/verify {
        asyncx_pbkdf2_max_iterations 700000;
        asyncx_password_verify;
    }
--- request eval
["POST /auth/verify\n{\"password\": \"x\"}",
 "POST /auth/verify\n{\"password\": \"x\", \"hash\": \"md5\$abc\"}",
 "POST /auth/verify\n{\"password\": \"x\", \"hash\": \"pbkdf2_sha256\$1000\$YXN5\"}",
 "POST /auth/verify\n{\"password\": \"x\", \"hash\": \"pbkdf2_sha256\$1000\$\$bE0EF8vZYU5ZZuZi1lomXA==\"}",
 "POST /auth/verify\n{\"password\": \"x\", \"hash\": \"pbkdf2_sha256\$900000000\$YXN5\$bE0EF8vZYU5ZZuZi1lomXA==\"}"]
--- error_code eval
[400, 400, 400, 400, 400]
--- response_body_like eval
[qr/"password verify: \\"hash\\" \(a string\) is required"/,
 qr/"password verify: malformed \\"hash\\": unsupported algorithm/,
 qr/"password verify: malformed \\"hash\\": expected 4 fields/,
 qr/"password verify: malformed \\"hash\\": the salt must be 1 to 128 bytes/,
 qr/"password verify: malformed \\"hash\\": invalid or too large iteration count \(at most 700000 iterations\)"/]
--- no_error_log
[error]



=== TEST 10b: verify: every reason of a malformed hash, exactly; only the iteration count's names the limit
--- config
    location = /auth/verify {
        asyncx_pbkdf2_max_iterations 700000;
        asyncx_password_verify;
    }
--- request eval
["POST /auth/verify\n{\"password\": \"pw\", \"hash\": \"md5\$abc\"}",
 "POST /auth/verify\n{\"password\": \"pw\", \"hash\": \"pbkdf2_sha256\$1000\$YXN5\"}",
 "POST /auth/verify\n{\"password\": \"pw\", \"hash\": \"pbkdf2_sha256\$1000\$\$bE0EF8vZYU5ZZuZi1lomXA==\"}",
 "POST /auth/verify\n{\"password\": \"pw\", \"hash\": \"pbkdf2_sha256\$1000\$" . ("s" x 129) . "\$bE0EF8vZYU5ZZuZi1lomXA==\"}",
 "POST /auth/verify\n{\"password\":\"pw\",\"hash\":\"pbkdf2_sha256\$2\$salt\$AAAA\"}",
 "POST /auth/verify\n{\"password\": \"pw\", \"hash\": \"pbkdf2_sha256\$900000000\$YXN5\$bE0EF8vZYU5ZZuZi1lomXA==\"}",
 "POST /auth/verify\n{\"password\": \"pw\", \"hash\": \"pbkdf2_sha256\$0\$YXN5\$bE0EF8vZYU5ZZuZi1lomXA==\"}"]
--- error_code eval
[400, 400, 400, 400, 400, 400, 400]
--- response_body eval
["{\"error\": \"password verify: malformed \\\"hash\\\": unsupported algorithm, expected \\\"pbkdf2_sha256\$\\\"\", \"status\": 400}\n",
 "{\"error\": \"password verify: malformed \\\"hash\\\": expected 4 fields separated by \\\"\$\\\"\", \"status\": 400}\n",
 "{\"error\": \"password verify: malformed \\\"hash\\\": the salt must be 1 to 128 bytes\", \"status\": 400}\n",
 "{\"error\": \"password verify: malformed \\\"hash\\\": the salt must be 1 to 128 bytes\", \"status\": 400}\n",
 "{\"error\": \"password verify: malformed \\\"hash\\\": invalid digest encoding or length\", \"status\": 400}\n",
 "{\"error\": \"password verify: malformed \\\"hash\\\": invalid or too large iteration count (at most 700000 iterations)\", \"status\": 400}\n",
 "{\"error\": \"password verify: malformed \\\"hash\\\": invalid or too large iteration count (at most 700000 iterations)\", \"status\": 400}\n"]
--- grep_error_log eval
qr/asyncx: .*? \(status \d+\)/
--- grep_error_log_out eval
["asyncx: password verify: malformed \"hash\": unsupported algorithm, expected \"pbkdf2_sha256\$\" (status 400)\n",
 "asyncx: password verify: malformed \"hash\": expected 4 fields separated by \"\$\" (status 400)\n",
 "asyncx: password verify: malformed \"hash\": the salt must be 1 to 128 bytes (status 400)\n",
 "asyncx: password verify: malformed \"hash\": the salt must be 1 to 128 bytes (status 400)\n",
 "asyncx: password verify: malformed \"hash\": invalid digest encoding or length (status 400)\n",
 "asyncx: password verify: malformed \"hash\": invalid or too large iteration count (at most 700000 iterations) (status 400)\n",
 "asyncx: password verify: malformed \"hash\": invalid or too large iteration count (at most 700000 iterations) (status 400)\n"]
--- no_error_log
[error]



=== TEST 11: hash: GET is 405; a body over 64 KiB is 413
--- config
    location = /auth/hash {
        asyncx_password_hash;
    }
--- request eval
["GET /auth/hash", "POST /auth/hash\n{\"password\": \"" . ("x" x 70000) . "\"}"]
--- error_code eval
[405, 413]
--- response_body eval
["{\"error\": \"password hash: method not allowed, use POST\", \"status\": 405}\n",
 "{\"error\": \"request body is larger than 65536 bytes\", \"status\": 413}\n"]
--- no_error_log
[error]



=== TEST 11b: hash: a declared body over 64 KiB is 413 before any of it is read: no "100 Continue" invites it, and what the client sends anyway is discarded (the next request on the connection is answered)
--- config
    location = /auth/hash {
        asyncx_pbkdf2_iterations 1000;
        asyncx_password_hash;
    }
--- pipelined_requests eval
["POST /auth/hash\n{\"password\": \"" . ("x" x 65521) . "\"}",
 "POST /auth/hash\n{\"password\": \"pw\"}"]
--- more_headers eval
["Expect: 100-continue", ""]
--- error_code eval
[413, 200]
--- raw_response_headers_unlike eval
["100 Continue", "100 Continue"]
--- response_body eval
["{\"error\": \"request body is larger than 65536 bytes\", \"status\": 413}\n",
 qr/^\{"hash":"pbkdf2_sha256\$1000\$[A-Za-z0-9]{22}\$[A-Za-z0-9+\/]{43}=","method":"pbkdf2",/]
--- grep_error_log eval
qr/asyncx: .*? \(status \d+\)/
--- grep_error_log_out eval
["asyncx: request body is larger than 65536 bytes (status 413)\n", ""]
--- no_error_log
[error]



=== TEST 11c: verify: the same (its next request a malformed hash: that answer is the body's, not the refused one's)
--- config
    location = /auth/verify {
        asyncx_password_verify;
    }
--- pipelined_requests eval
["POST /auth/verify\n{\"password\": \"pw\", \"hash\": \"" . ("x" x 65508) . "\"}",
 "POST /auth/verify\n{\"password\":\"pw\",\"hash\":\"pbkdf2_sha256\$2\$salt\$AAAA\"}"]
--- more_headers eval
["Expect: 100-continue", ""]
--- error_code eval
[413, 400]
--- raw_response_headers_unlike eval
["100 Continue", "100 Continue"]
--- response_body eval
["{\"error\": \"request body is larger than 65536 bytes\", \"status\": 413}\n",
 "{\"error\": \"password verify: malformed \\\"hash\\\": invalid digest encoding or length\", \"status\": 400}\n"]
--- grep_error_log eval
qr/asyncx: .*? \(status \d+\)/
--- grep_error_log_out eval
["asyncx: request body is larger than 65536 bytes (status 413)\nasyncx: password verify: malformed \"hash\": invalid digest encoding or length (status 400)\n", ""]
--- no_error_log
[error]



=== TEST 12: hash: a body nginx buffered to a temp file is read in the thread
--- config
    client_body_buffer_size 128;
    location = /auth/hash {
        asyncx_pbkdf2_iterations 1000;
        asyncx_password_max_length 4096;
        asyncx_password_hash;
    }
--- request eval
"POST /auth/hash\n{\"password\": \"" . ("p" x 3000) . "\"}"
--- response_body_like chomp
^\{"hash":"pbkdf2_sha256\$1000\$
--- error_log
a client request body is buffered to a temporary file
--- no_error_log
[error]



=== TEST 13: nginx -t: iteration counts are checked
--- config
    location = /auth/hash {
        asyncx_pbkdf2_iterations 0;
        asyncx_password_hash;
    }
--- must_die
--- error_log
invalid value "0" in "asyncx_pbkdf2_iterations", expected 1..2147483647



=== TEST 14: nginx -t: a max below the iteration count could never verify
--- config
    location = /auth/hash {
        asyncx_pbkdf2_iterations 600000;
        asyncx_pbkdf2_max_iterations 1000;
        asyncx_password_hash;
    }
--- must_die
--- error_log
asyncx_pbkdf2_max_iterations 1000 is below asyncx_pbkdf2_iterations 600000



=== TEST 14b: a low max at the http level is checked only where hashes are made: a hashing location with fewer iterations and a verify-only location start (a server level was checked against the default count)
--- http_config
    asyncx_pbkdf2_max_iterations 1000;
--- config
    location = /auth/hash {
        asyncx_pbkdf2_iterations 500;
        asyncx_password_hash;
    }
    location = /auth/verify {
        asyncx_password_verify;
    }
--- request
POST /auth/hash
{"password": "pw"}
--- response_body_like chomp
^\{"hash":"pbkdf2_sha256\$500\$
--- no_error_log
[emerg]



=== TEST 15: nginx -t: one content handler per location
--- config
    location = /auth/hash {
        asyncx_password_hash;
        asyncx_password_verify;
    }
--- must_die
--- error_log
"asyncx_password_verify" directive is duplicate: the location already has a content handler
