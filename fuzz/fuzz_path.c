/* file paths from /files/read and /files/write */

#include "fuzz_common.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_offload_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char  *p;
    size_t   dir_len;

    p = fuzz_dup(data, size);

    if (ngx_http_asyncx_check_rel_path(p, size) == NGX_OK) {
        /* what passes never escapes lexically */
        fuzz_assert(size > 0 && p[0] != '/');
        fuzz_assert(memchr(p, '\0', size) == NULL);
    }

    (void) ngx_http_asyncx_path_within((u_char *) "/srv/files", 10, p, size);
    (void) ngx_http_asyncx_path_split(p, size, &dir_len);

    free(p);
    return 0;
}
