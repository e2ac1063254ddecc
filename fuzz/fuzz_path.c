/* file paths from /files/read and /files/write */

#include "fuzz_common.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_offload_util.h"


/* an independent check of what the file endpoints promise of a path */
static int
fuzz_has_dotdot_segment(const u_char *p, size_t size)
{
    size_t  i, start;

    start = 0;

    for (i = 0; i <= size; i++) {
        if (i == size || p[i] == '/') {
            if (i - start == 2 && p[start] == '.' && p[start + 1] == '.') {
                return 1;
            }

            start = i + 1;
        }
    }

    return 0;
}


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
        fuzz_assert(memchr(p, '\\', size) == NULL);
        fuzz_assert(!fuzz_has_dotdot_segment(p, size));
    }

    (void) ngx_http_asyncx_path_within((u_char *) "/srv/files", 10, p, size);
    (void) ngx_http_asyncx_path_split(p, size, &dir_len);

    free(p);
    return 0;
}
