/* the "hash" of /auth/verify: parse, and format what parsed back */

#include "fuzz_common.h"
#include "ngx_http_asyncx_offload_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                         *p, buf[1024];
    size_t                          n;
    const char                     *reason;
    ngx_http_asyncx_pbkdf2_hash_t   h, h2;

    p = fuzz_dup(data, size);

    if (ngx_http_asyncx_pbkdf2_parse(p, size, 2000000, &h, &reason)
        == NGX_OK)
    {
        fuzz_assert(h.iterations > 0 && h.iterations <= 2000000);

        n = ngx_http_asyncx_pbkdf2_format(buf, sizeof(buf), &h);
        fuzz_assert(n > 0);
        fuzz_assert(ngx_http_asyncx_pbkdf2_parse(buf, n, 2000000, &h2,
                                                 &reason) == NGX_OK);
        fuzz_assert(h2.iterations == h.iterations
                    && h2.salt_len == h.salt_len
                    && memcmp(h2.salt, h.salt, h.salt_len) == 0
                    && h2.digest_len == h.digest_len
                    && memcmp(h2.digest, h.digest, h.digest_len) == 0);
    }

    (void) ngx_http_asyncx_b64_decode(buf, sizeof(buf), &n, p, size);

    free(p);
    return 0;
}
