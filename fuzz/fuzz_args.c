/* query arguments, Last-Event-ID and directive numbers */

#include "fuzz_common.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_sse_kernel.h"
#include "ngx_http_asyncx_limit_bucket.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char    *p, *out;
    size_t     n;
    uint64_t   v, rate;

    p = fuzz_dup(data, size);
    out = fuzz_dup(data, size);

    /* decoded once: never longer, and decoding it again changes it only
     * where the input held an escaped "%" */
    n = ngx_http_asyncx_unescape_arg(out, p, size);
    fuzz_assert(n <= size);
    fuzz_assert(memchr(p, '%', size) != NULL || (n == size
                                                 && memcmp(out, p, n) == 0));

    if (ngx_http_asyncx_parse_uint(p, size, 10000000, &v) == NGX_OK) {
        fuzz_assert(v <= 10000000);
    }

    if (ngx_http_asyncx_sse_parse_last_event_id(p, size, &v) == NGX_OK) {
        fuzz_assert(v <= (uint64_t) 1 << 62);
    }

    if (ngx_http_asyncx_parse_rate(p, size, &rate) == NGX_OK) {
        fuzz_assert(rate > 0);
    }

    free(out);
    free(p);
    return 0;
}
