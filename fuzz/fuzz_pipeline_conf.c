/* asyncx_stage arguments: call names, URIs, fail= lists */

#include "fuzz_common.h"
#include "ngx_http_asyncx_pipeline_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char  *p;
    size_t   path_len, half;

    p = fuzz_dup(data, size);

    (void) ngx_http_asyncx_pipeline_check_name(p, size);

    if (ngx_http_asyncx_pipeline_check_uri(p, size, &path_len) == NGX_OK) {
        fuzz_assert(path_len <= size);
    }

    half = size / 2;
    (void) ngx_http_asyncx_pipeline_in_list(p, half, p + half, size - half);

    free(p);
    return 0;
}
