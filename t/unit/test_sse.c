/*
 * Unit tests for the SSE batch kernels and Last-Event-ID parsing.
 */

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_sse_kernel.h"


#define S(s)  (u_char *) s, sizeof(s) - 1


static void
test_search_batches_add_up(void **state)
{
    uint64_t                     ids[1000], start, total;
    ngx_http_asyncx_sse_batch_t  b;

    memset(&b, 0, sizeof(b));
    b.keyword = (u_char *) "python";
    b.keyword_len = 6;
    b.match_ids = ids;
    b.record_matches = 1;

    total = 0;

    /* batch boundaries must not change the answer: 72 in 10,000 */
    for (start = 0; start < 10000; start += 1000) {
        b.start = start;
        b.end = start + 1000;
        ngx_http_asyncx_sse_search_batch(&b);
        total += b.nmatches;

        if (start == 0) {
            assert_int_equal(b.nmatches, 6);
            assert_int_equal(ids[0], 138);
        }
    }

    assert_int_equal(total, 72);

    /* count-only pass (resume prefix) writes no ids */
    b.start = 0;
    b.end = 10000;
    b.record_matches = 0;
    b.match_ids = NULL;
    ngx_http_asyncx_sse_search_batch(&b);
    assert_int_equal(b.nmatches, 72);
}


/* a search job stops after max_matches and says where: parts add up */
static void
test_search_in_parts(void **state)
{
    uint64_t                     ids[7], all[1000], next, n;
    ngx_uint_t                   i, parts;
    ngx_http_asyncx_sse_batch_t  b;

    memset(&b, 0, sizeof(b));
    b.keyword = (u_char *) "record";
    b.keyword_len = 6;
    b.record_matches = 1;
    b.match_ids = ids;
    b.max_matches = 7;

    n = 0;
    parts = 0;

    for (next = 100; next < 150; next = b.scanned) {
        b.start = next;
        b.end = 150;
        ngx_http_asyncx_sse_search_batch(&b);

        assert_true(b.nmatches <= 7);
        assert_true(b.scanned > next && b.scanned <= 150);

        for (i = 0; i < b.nmatches; i++) {
            all[n++] = ids[i];
        }

        parts++;
    }

    /* every record matches "record": 50 ids, 100..149, in 8 parts */
    assert_int_equal(n, 50);
    assert_int_equal(parts, 8);

    for (i = 0; i < n; i++) {
        assert_int_equal(all[i], 100 + i);
    }

    /* a part that ends on the last match ends where the batch ends */
    b.start = 143;
    b.end = 150;
    ngx_http_asyncx_sse_search_batch(&b);
    assert_int_equal(b.nmatches, 7);
    assert_int_equal(b.scanned, 150);

    /* no match at all: the whole range in one part */
    b.keyword = (u_char *) "zzz";
    b.keyword_len = 3;
    b.start = 0;
    b.end = 1000;
    ngx_http_asyncx_sse_search_batch(&b);
    assert_int_equal(b.nmatches, 0);
    assert_int_equal(b.scanned, 1000);
}


static void
test_resume_start(void **state)
{
    /* no Last-Event-ID: from the start */
    assert_int_equal(ngx_http_asyncx_sse_resume_start(0, 1000, 0), 0);

    /* progress of a batch ending at 5000: the next batch */
    assert_int_equal(ngx_http_asyncx_sse_resume_start(10000, 1000, 0), 5000);

    /* a match at record 5010, the last one of a batch, the first one */
    assert_int_equal(ngx_http_asyncx_sse_resume_start(10021, 1000, 0), 5000);
    assert_int_equal(ngx_http_asyncx_sse_resume_start(11999, 1000, 0), 5000);
    assert_int_equal(ngx_http_asyncx_sse_resume_start(10001, 1000, 0), 5000);

    /* the last progress of a stream of 10000: an empty batch at the end */
    assert_int_equal(ngx_http_asyncx_sse_resume_start(20000, 1000, 0),
                     10000);

    /* an id in an uneven last batch redoes that batch */
    assert_int_equal(ngx_http_asyncx_sse_resume_start(2099, 100, 0), 1000);

    /* past an injected failure: the batch that fails */
    assert_int_equal(ngx_http_asyncx_sse_resume_start(15000, 1000, 5000),
                     5000);
    assert_int_equal(ngx_http_asyncx_sse_resume_start(15000, 300, 1700),
                     1500);
    assert_int_equal(ngx_http_asyncx_sse_resume_start(3000, 300, 1700),
                     1500);
}


static void
test_transform_batch(void **state)
{
    u_char                       sample[NGX_HTTP_ASYNCX_RECORD_MAX];
    uint32_t                     first;
    ngx_http_asyncx_sse_batch_t  b;

    memset(&b, 0, sizeof(b));
    b.sample = sample;
    b.start = 0;
    b.end = 100;

    ngx_http_asyncx_sse_transform_batch(&b);
    assert_int_equal(b.sample_len,
                     strlen("RECORD 0: MATRIX COROUTINE WORKER THREAD JSON "
                            "WORKER"));
    assert_memory_equal(sample, "RECORD 0: MATRIX", 16);

    first = b.checksum;
    ngx_http_asyncx_sse_transform_batch(&b);
    assert_int_equal(b.checksum, first);

    b.start = 100;
    b.end = 200;
    ngx_http_asyncx_sse_transform_batch(&b);
    assert_int_not_equal(b.checksum, first);
}


static void
test_aggregate_batch(void **state)
{
    ngx_uint_t                   i;
    uint64_t                     count;
    ngx_http_asyncx_sse_agg_t    cats[NGX_HTTP_ASYNCX_SSE_CATEGORIES], all;
    ngx_http_asyncx_sse_batch_t  b;

    memset(&b, 0, sizeof(b));
    memset(cats, 0, sizeof(cats));
    memset(&all, 0, sizeof(all));
    b.categories = cats;
    b.overall = &all;

    b.start = 0;
    b.end = 5000;
    ngx_http_asyncx_sse_aggregate_batch(&b);
    b.start = 5000;
    b.end = 10000;
    ngx_http_asyncx_sse_aggregate_batch(&b);

    assert_int_equal(all.count, 10000);
    assert_int_equal(all.sum, 499950);
    assert_int_equal(all.min, 0);
    assert_int_equal(all.max, 100);

    count = 0;

    for (i = 0; i < NGX_HTTP_ASYNCX_SSE_CATEGORIES; i++) {
        count += cats[i].count;
    }

    assert_int_equal(count, 10000);
    /* records whose first word is "python" (checked in Python) */
    assert_int_equal(cats[64].count, 14);
}


/*
 * A batch whose job's client left stops before its next record: the
 * mark set before the batch starts, none is done; not set, all are.
 */
static void
test_batches_stop_when_cancelled(void **state)
{
    uint64_t                     ids[128];
    ngx_uint_t                   k;
    ngx_atomic_t                 cancel;
    ngx_http_asyncx_sse_agg_t    cats[NGX_HTTP_ASYNCX_SSE_CATEGORIES], all;
    ngx_http_asyncx_sse_batch_t  b;

    for (k = 0; k < 3; k++) {
        memset(&b, 0, sizeof(b));
        memset(cats, 0, sizeof(cats));
        memset(&all, 0, sizeof(all));
        b.keyword = (u_char *) "no such word";
        b.keyword_len = 12;
        b.match_ids = ids;
        b.max_matches = 128;
        b.record_matches = 1;
        b.categories = cats;
        b.overall = &all;
        b.cancel = &cancel;

        cancel = 1;
        b.start = 1000;
        b.end = 2000;

        switch (k) {
        case 0:
            ngx_http_asyncx_sse_search_batch(&b);
            break;
        case 1:
            ngx_http_asyncx_sse_transform_batch(&b);
            break;
        default:
            ngx_http_asyncx_sse_aggregate_batch(&b);
        }

        assert_int_equal(b.stopped, 1);
        assert_int_equal(b.scanned, 1000);
        assert_int_equal(all.count, 0);

        cancel = 0;

        switch (k) {
        case 0:
            ngx_http_asyncx_sse_search_batch(&b);
            break;
        case 1:
            ngx_http_asyncx_sse_transform_batch(&b);
            break;
        default:
            ngx_http_asyncx_sse_aggregate_batch(&b);
        }

        assert_int_equal(b.stopped, 0);
        assert_int_equal(b.scanned, 2000);
    }
}


static void
test_last_event_id(void **state)
{
    uint64_t  v;

    assert_int_equal(ngx_http_asyncx_sse_parse_last_event_id(S("10021"), &v),
                     NGX_OK);
    assert_int_equal(v, 10021);
    assert_int_equal(ngx_http_asyncx_sse_parse_last_event_id(S(" 7 "), &v),
                     NGX_OK);
    assert_int_equal(v, 7);
    assert_int_equal(ngx_http_asyncx_sse_parse_last_event_id(S(""), &v),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_sse_parse_last_event_id(S("abc"), &v),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_sse_parse_last_event_id(S("-1"), &v),
                     NGX_ERROR);
    assert_int_equal(ngx_http_asyncx_sse_parse_last_event_id(S("1 2"), &v),
                     NGX_ERROR);

    /* a number past any stream's end is still a number: 204 */
    assert_int_equal(ngx_http_asyncx_sse_parse_last_event_id(
                         S("99999999999999999999999"), &v),
                     NGX_OK);
    assert_int_equal(v, (uint64_t) 1 << 62);
    assert_int_equal(ngx_http_asyncx_sse_parse_last_event_id(
                         S("9223372036854775806"), &v),
                     NGX_OK);
    assert_int_equal(v, (uint64_t) 1 << 62);
    assert_int_equal(ngx_http_asyncx_sse_parse_last_event_id(
                         S("4611686018427387904"), &v),
                     NGX_OK);
    assert_int_equal(v, (uint64_t) 1 << 62);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_search_batches_add_up),
        cmocka_unit_test(test_search_in_parts),
        cmocka_unit_test(test_resume_start),
        cmocka_unit_test(test_transform_batch),
        cmocka_unit_test(test_aggregate_batch),
        cmocka_unit_test(test_batches_stop_when_cancelled),
        cmocka_unit_test(test_last_event_id),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
