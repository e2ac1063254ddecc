# A client that goes away while its task runs: the request stays allocated
# (r->main->blocked) until the thread is done, is then freed with the
# task's results, and the error log stays clean.
#
# Under valgrind (TEST_NGINX_USE_VALGRIND, `make test-valgrind`) PBKDF2 is
# about 70 times slower: the blocks hash less and wait longer, so that
# the abort still lands while the task runs and the task still ends
# before the test looks at the log.

use lib 't/lib';
use Test::Nginx::Socket;

repeat_each(1);

plan tests => repeat_each() * 22;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: abort during a long PBKDF2: terminated while blocked, freed after the task
--- config eval
my $n = $ENV{TEST_NGINX_USE_VALGRIND} ? 100000 : 3000000;
"    location = /auth/hash {
        asyncx_pbkdf2_iterations $n;
        asyncx_pbkdf2_max_iterations $n;
        asyncx_password_hash;
    }"
--- request
POST /auth/hash
{"password": "mypassword"}
--- timeout eval: $ENV{TEST_NGINX_USE_VALGRIND} ? 0.5 : 0.2
--- abort
--- ignore_response
--- wait eval: $ENV{TEST_NGINX_USE_VALGRIND} ? 8 : 4
--- error_log
asyncx offload: password hash posted
client prematurely closed connection
http terminate cleanup count:1 blk:1
asyncx offload: cleanup, idle, 
--- no_error_log
[error]
[alert]
[crit]
asyncx offload: cleanup, task running
asyncx offload: password hash done



=== TEST 2: the worker still serves after the aborted task (no leaked block)
--- config eval
my $n = $ENV{TEST_NGINX_USE_VALGRIND} ? 250000 : 3000000;
"    location = /auth/hash {
        asyncx_pbkdf2_iterations $n;
        asyncx_pbkdf2_max_iterations $n;
        asyncx_password_hash;
    }
    location = /fast {
        asyncx_pbkdf2_iterations 1000;
        asyncx_password_hash;
    }"
--- request eval
[[{ value => "POST /auth/hash\n{\"password\": \"x\"}" }],
 "POST /fast\n{\"password\": \"x\"}"]
--- timeout eval: $ENV{TEST_NGINX_USE_VALGRIND} ? 1.5 : 0.2
--- abort
--- response_body_like eval
[qr/^$/, qr/^\{"hash":"pbkdf2_sha256\$1000\$/]
--- error_code eval
["", 200]
--- wait: 0.1
--- no_error_log
[error]
[alert]



=== TEST 3: abort of a large file read: the result buffer is freed on the abort path
--- config
    location = /files/read {
        asyncx_file_root html;
        asyncx_file_max_size 32m;
        asyncx_file_read;
    }
--- user_files eval
">>> big.txt\n" . ("y" x 16000000)
--- request
GET /files/read?path=big.txt
--- timeout eval: $ENV{TEST_NGINX_USE_VALGRIND} ? 0.02 : 0.001
--- abort
--- ignore_response
--- wait eval: $ENV{TEST_NGINX_USE_VALGRIND} ? 3 : 0.5
--- error_log eval
["asyncx offload: file read posted", "http terminate cleanup count:1 blk:1",
 qr/asyncx offload: cleanup, idle, [1-9]\d+ result bytes freed/]
--- no_error_log
[error]
[alert]
