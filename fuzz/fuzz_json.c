/* call bodies (pipeline JSON check) and the JSON string writer */

#include "fuzz_common.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_pipeline_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char  *p, *out, *last, *start, *end;
    size_t   n;

    p = fuzz_dup(data, size);

    if (ngx_http_asyncx_json_check(p, size, &start, &end) == NGX_OK) {
        fuzz_assert(start >= p && end <= p + size && start <= end);
    }

    /* the escaper writes exactly the length it announced */
    n = size + ngx_http_asyncx_json_escape_len(p, size);
    out = malloc(n ? n : 1);
    last = ngx_http_asyncx_json_escape(out, p, size);
    fuzz_assert((size_t) (last - out) == n);

    (void) ngx_http_asyncx_utf8_valid(p, size);

    free(out);
    free(p);
    return 0;
}
