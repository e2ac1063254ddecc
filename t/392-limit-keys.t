# The limiter's long keys: a key longer than the bytes a node keeps is
# stored as its SHA-256 digest and limited like any other (it used to be
# let through, with an error line per request).  The zone full of keys
# is t/393-limit-churn.t.
#
# Deterministic: the calls of asyncx_limit_test start in one event, so
# the refusals happen on arrival, before the held call's delay can end
# (nginx runs timers only after the posted subrequests).

use lib 't/lib';
use Test::Nginx::Socket;
use JSON::PP ();

repeat_each(1);    # bucket state carries over between repeats

# an [error] line that is not a refusal (refusals are logged at
# asyncx_limit_log_level, default error)
our $other_error = qr/\[error\](?! \d+#\d+: \*\d+ asyncx: limited by zone "[^"]+": (?:queue is full|waited longer than the timeout|zone is full) \(status \d+\))/;

plan tests => repeat_each() * 24;

no_shuffle();
no_long_string();

# A block without a --- config (TEST 1 to 3): six calls of
# asyncx_limit_test at once to /hold (200 ms each), limited by the zone
# its http_config declares; the body is their statuses, sorted, and its
# --- grep_error_log_out lists the zone's refusals.
add_block_preprocessor(sub {
    my $block = shift;

    return if defined $block->config;

    my ($zone) = ($block->http_config // '') =~ /zone=(\w+):/
        or die 'a block without --- config declares no zone';

    $block->set_value(config => <<"_EOC_");
    location = /rate-limit-test { asyncx_limit_test $zone /hold; }
    location = /hold {
        asyncx_limit $zone;
        asyncx_mock_service name=hold delay=200ms echo=off;
    }
_EOC_
    $block->set_value(request => 'GET /rate-limit-test?requests=6');
    $block->set_value(response_body_filters => sub {
        my $j = JSON::PP::decode_json($_[0]);
        CORE::join(',', sort map { $_->{status} } @{ $j->{results} }) . "\n";
    });
    $block->set_value(grep_error_log
                      => qr/limited by zone "$zone": [a-z]+(?: [a-z]+)*/)
        if defined $block->grep_error_log_out;
    $block->set_value(timeout => 10);
});

run_tests();

__DATA__

=== TEST 1: six calls at once with a 300-byte key, concurrency=1 queue=2: one runs, two wait, three are refused
--- http_config
    asyncx_limit_zone zone=long:64k rate=1000r/s burst=100 concurrency=1
                      queue=2 timeout=60s key=$http_x_key;
--- more_headers eval
"X-Key: " . ("z" x 300)
--- response_body
200,200,200,429,429,429
--- grep_error_log_out
limited by zone "long": queue is full
limited by zone "long": queue is full
limited by zone "long": queue is full
--- no_error_log eval
[$::other_error, "[alert]", "more than"]



=== TEST 2: the same with a short key (the reference for TEST 1)
--- http_config
    asyncx_limit_zone zone=short:64k rate=1000r/s burst=100 concurrency=1
                      queue=2 timeout=60s key=$http_x_key;
--- more_headers
X-Key: z
--- response_body
200,200,200,429,429,429
--- grep_error_log_out
limited by zone "short": queue is full
limited by zone "short": queue is full
limited by zone "short": queue is full
--- no_error_log eval
[$::other_error, "[alert]"]



=== TEST 3: long keys that differ only in their last byte are different keys
(300 bytes each, concurrency=1 queue=0: each call has a key of its own,
so all six run at once; one bucket for all long keys would refuse five)
--- http_config
    asyncx_limit_zone zone=long:64k rate=1000r/s burst=100 concurrency=1
                      queue=0 timeout=60s key=kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk$arg_id;
--- response_body
200,200,200,200,200,200
--- no_error_log
[error]
[alert]



=== TEST 4: a 4000-byte key has a bucket: 1r/m burst=1, the second request is refused
--- http_config
    asyncx_limit_zone zone=long:64k rate=1r/m burst=1 queue=0 key=$arg_k;
--- config
    location = /t { asyncx_limit long; asyncx_mock_service name=t echo=off; }
--- request eval
["GET /t?k=" . ("x" x 4000), "GET /t?k=" . ("x" x 4000),
 "GET /t?k=" . ("x" x 3999) . "y"]
--- error_code eval
[200, 429, 200]
--- no_error_log
more than
[alert]
