/*
 * Unit tests for the pure pieces of the metrics: histogram buckets and
 * observations, seconds in the Prometheus text format, label escaping.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_metrics_util.h"


#define S(s)  (u_char *) s, sizeof(s) - 1


static void
test_layouts(void **state)
{
    ngx_uint_t                            layout, i;
    const ngx_http_asyncx_hist_bounds_t  *b;

    for (layout = 0; layout < NGX_HTTP_ASYNCX_HIST_LAYOUTS; layout++) {
        b = ngx_http_asyncx_hist_bounds(layout);

        /* fits the shared struct, strictly ascending */
        assert_true(b->n >= 10);
        assert_true(b->n <= NGX_HTTP_ASYNCX_HIST_BOUNDS);

        for (i = 1; i < b->n; i++) {
            assert_true(b->le[i - 1] < b->le[i]);
        }
    }
}


static void
test_index(void **state)
{
    const ngx_http_asyncx_hist_bounds_t  *b;

    b = ngx_http_asyncx_hist_bounds(NGX_HTTP_ASYNCX_HIST_CALL);

    /* le is inclusive, as Prometheus defines it */
    assert_int_equal(ngx_http_asyncx_hist_index(NGX_HTTP_ASYNCX_HIST_CALL, 0),
                     0);
    assert_int_equal(ngx_http_asyncx_hist_index(NGX_HTTP_ASYNCX_HIST_CALL,
                                                b->le[0]), 0);
    assert_int_equal(ngx_http_asyncx_hist_index(NGX_HTTP_ASYNCX_HIST_CALL,
                                                b->le[0] + 1), 1);
    assert_int_equal(ngx_http_asyncx_hist_index(NGX_HTTP_ASYNCX_HIST_CALL,
                                                b->le[b->n - 1]), b->n - 1);

    /* past the last bound: the +Inf slot */
    assert_int_equal(ngx_http_asyncx_hist_index(NGX_HTTP_ASYNCX_HIST_CALL,
                                                b->le[b->n - 1] + 1), b->n);
    assert_int_equal(ngx_http_asyncx_hist_index(NGX_HTTP_ASYNCX_HIST_CALL,
                                                (uint64_t) -1), b->n);
}


static void
test_observe(void **state)
{
    ngx_http_asyncx_hist_t                h;
    const ngx_http_asyncx_hist_bounds_t  *b;

    memset(&h, 0, sizeof(h));
    b = ngx_http_asyncx_hist_bounds(NGX_HTTP_ASYNCX_HIST_PIPELINE);

    ngx_http_asyncx_hist_observe(&h, NGX_HTTP_ASYNCX_HIST_PIPELINE, 1903000);
    ngx_http_asyncx_hist_observe(&h, NGX_HTTP_ASYNCX_HIST_PIPELINE, 1903000);
    ngx_http_asyncx_hist_observe(&h, NGX_HTTP_ASYNCX_HIST_PIPELINE, 60000000);

    /* 1.9 s lands in the 2 s bucket, 60 s in +Inf; the sum is exact */
    assert_int_equal(h.bucket[ngx_http_asyncx_hist_index(
                         NGX_HTTP_ASYNCX_HIST_PIPELINE, 2000000)], 2);
    assert_int_equal(b->le[ngx_http_asyncx_hist_index(
                         NGX_HTTP_ASYNCX_HIST_PIPELINE, 1903000)], 2000000);
    assert_int_equal(h.bucket[b->n], 1);
    assert_int_equal(h.sum, 2 * 1903000 + 60000000);
}


static void
test_seconds(void **state)
{
    u_char   buf[NGX_HTTP_ASYNCX_PROM_SECONDS_LEN];
    u_char  *p;

#define seconds(usec, text)                                                  \
    p = ngx_http_asyncx_prom_seconds(buf, buf + sizeof(buf), usec);          \
    assert_int_equal(p - buf, sizeof(text) - 1);                             \
    assert_memory_equal(buf, text, sizeof(text) - 1)

    seconds(0, "0");
    seconds(50, "0.00005");
    seconds(250000, "0.25");
    seconds(1000000, "1");
    seconds(2500000, "2.5");
    seconds(1903097, "1.903097");
    seconds(30000000, "30");
    seconds((uint64_t) -1, "18446744073709.551615");

#undef seconds

    /* a short buffer is never overrun */
    p = ngx_http_asyncx_prom_seconds(buf, buf + 3, 1903097);
    assert_true(p <= buf + 3);
}


static void
test_label(void **state)
{
    u_char  out[64];
    size_t  len;

#define label(in, text)                                                      \
    len = ngx_http_asyncx_prom_label_len(S(in));                             \
    assert_int_equal(len, sizeof(text) - 1);                                 \
    assert_int_equal(ngx_http_asyncx_prom_label(out, S(in)) - out, len);     \
    assert_memory_equal(out, text, len)

    label("/orders/process", "/orders/process");
    label("^/p\"(ipe)?\\d$", "^/p\\\"(ipe)?\\\\d$");
    label("a\nb", "a\\nb");
    label("사용자", "사용자");

    /* not UTF-8: a lone continuation byte, a truncated sequence, an
     * overlong form, a surrogate: each bad byte becomes U+FFFD */
    label("a\x80z", "a\xef\xbf\xbdz");
    label("\xea\xb0", "\xef\xbf\xbd\xef\xbf\xbd");
    label("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd");
    label("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");

#undef label
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layouts),
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_observe),
        cmocka_unit_test(test_seconds),
        cmocka_unit_test(test_label),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
