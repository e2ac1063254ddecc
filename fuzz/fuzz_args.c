/* query arguments, Last-Event-ID and directive numbers */

#include "fuzz_common.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_sse_kernel.h"
#include "ngx_http_asyncx_limit_bucket.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char    *p;
    uint64_t   v, rate;

    p = fuzz_dup(data, size);

    if (ngx_http_asyncx_parse_uint(p, size, 10000000, &v) == NGX_OK) {
        fuzz_assert(v <= 10000000);
    }

    if (ngx_http_asyncx_sse_parse_last_event_id(p, size, &v) == NGX_OK) {
        fuzz_assert(v <= (uint64_t) 1 << 62);
    }

    if (ngx_http_asyncx_parse_rate(p, size, &rate) == NGX_OK) {
        fuzz_assert(rate > 0);
    }

    free(p);
    return 0;
}
