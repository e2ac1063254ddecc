/*
 * Unit tests for the limiter's token bucket arithmetic and rate parsing
 * (the queue is model-tested in test_limit_model.c).
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_limit_bucket.h"


#define S(s)  (u_char *) s, sizeof(s) - 1


static void
test_parse_rate(void **state)
{
    uint64_t  rate;

    assert_int_equal(ngx_http_asyncx_parse_rate(S("5r/s"), &rate), NGX_OK);
    assert_int_equal(rate, 5000);
    assert_int_equal(ngx_http_asyncx_parse_rate(S("2000r/s"), &rate), NGX_OK);
    assert_int_equal(rate, 2000000);
    assert_int_equal(ngx_http_asyncx_parse_rate(S("30r/m"), &rate), NGX_OK);
    assert_int_equal(rate, 500);
    assert_int_equal(ngx_http_asyncx_parse_rate(S("1r/m"), &rate), NGX_OK);
    assert_int_equal(rate, 17);

    assert_int_equal(ngx_http_asyncx_parse_rate(S("0r/s"), &rate), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_parse_rate(S("5"), &rate), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_parse_rate(S("5r/h"), &rate), NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_parse_rate(S("-5r/s"), &rate),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_parse_rate(S("r/s"), &rate), NGX_ERROR);
}


static void
test_bucket_burst_then_rate(void **state)
{
    ngx_uint_t                i, admitted;
    ngx_msec_t                now;
    ngx_http_asyncx_bucket_t  b;

    now = 100000;
    ngx_http_asyncx_bucket_init(&b, 5, now);

    /* a full bucket admits the burst at once, then nothing */
    for (i = 0; i < 5; i++) {
        assert_int_equal(ngx_http_asyncx_bucket_take(&b, 5000, 5, now), 0);
    }

    /* 5r/s: the next token is 200 ms away */
    assert_int_equal(ngx_http_asyncx_bucket_take(&b, 5000, 5, now), 200);
    assert_int_equal(ngx_http_asyncx_bucket_take(&b, 5000, 5, now + 150), 50);
    assert_int_equal(ngx_http_asyncx_bucket_take(&b, 5000, 5, now + 200), 0);

    /* over 10 s of 1 ms steps exactly 50 more are admitted */
    admitted = 0;

    for (i = 1; i <= 10000; i++) {
        if (ngx_http_asyncx_bucket_take(&b, 5000, 5, now + 200 + i) == 0) {
            admitted++;
        }
    }

    assert_int_equal(admitted, 50);
}


static void
test_bucket_caps_and_clock(void **state)
{
    ngx_http_asyncx_bucket_t  b;

    ngx_http_asyncx_bucket_init(&b, 3, 1000);
    b.tokens = 0;

    /* a long idle time refills only up to the burst */
    ngx_http_asyncx_bucket_refill(&b, 5000, 3, 1000 + 100000000);
    assert_int_equal(b.tokens, 3ULL * NGX_HTTP_ASYNCX_TOKEN);

    /* another worker's slightly older clock never takes tokens away */
    b.tokens = 0;
    b.last = 5000;
    ngx_http_asyncx_bucket_refill(&b, 5000, 3, 4990);
    assert_int_equal(b.tokens, 0);
    assert_int_equal(b.last, 5000);
}


static void
test_bucket_due_takes_nothing(void **state)
{
    ngx_http_asyncx_bucket_t  b;

    ngx_http_asyncx_bucket_init(&b, 1, 1000);

    /* a token there: due now, and still there after asking */
    assert_int_equal(ngx_http_asyncx_bucket_due(&b, 5000, 1, 1000), 0);
    assert_int_equal(ngx_http_asyncx_bucket_due(&b, 5000, 1, 1000), 0);
    assert_int_equal(ngx_http_asyncx_bucket_take(&b, 5000, 1, 1000), 0);

    /* 5r/s: the next one 200 ms on, counted down as time passes */
    assert_int_equal(ngx_http_asyncx_bucket_due(&b, 5000, 1, 1000), 200);
    assert_int_equal(ngx_http_asyncx_bucket_due(&b, 5000, 1, 1150), 50);
    assert_int_equal(ngx_http_asyncx_bucket_due(&b, 5000, 1, 1200), 0);

    /* 2000r/s: half a millisecond per token rounds up to 1 ms */
    ngx_http_asyncx_bucket_init(&b, 1, 1000);
    assert_int_equal(ngx_http_asyncx_bucket_take(&b, 2000000, 1, 1000), 0);
    assert_int_equal(ngx_http_asyncx_bucket_due(&b, 2000000, 1, 1000), 1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_parse_rate),
        cmocka_unit_test(test_bucket_burst_then_rate),
        cmocka_unit_test(test_bucket_caps_and_clock),
        cmocka_unit_test(test_bucket_due_takes_nothing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
