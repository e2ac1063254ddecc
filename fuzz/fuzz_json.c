/*
 * The module's JSON policy (validator and cJSON entry point), the JSON
 * string writer and the UTF-8 helpers that keep messages valid.
 */

#include "fuzz_common.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_json.h"
#include "ngx_http_asyncx_pipeline_util.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                       *p, *out, *last, *pos;
    char                         *text;
    size_t                        n;
    cJSON                        *root, *child;
    ngx_str_t                     key, value;
    ngx_http_asyncx_json_info_t   info, part;

    p = fuzz_dup(data, size);

    /* NO_NUL changes only the verdict on valid JSON with U+0000 */
    if (ngx_http_asyncx_json_validate(p, size, NGX_HTTP_ASYNCX_JSON_NO_NUL,
                                   &info)
        == NGX_DECLINED)
    {
        fuzz_assert(info.nul
                    && ngx_http_asyncx_json_validate(p, size, 0, &info)
                       == NGX_OK);
    }

    if (ngx_http_asyncx_json_validate(p, size, 0, &info) == NGX_OK) {
        fuzz_assert(info.start >= p && info.end <= p + size
                    && info.start <= info.end);
        fuzz_assert(ngx_http_asyncx_utf8_valid(info.start,
                                               info.end - info.start)
                    == NGX_OK);

    } else {
        fuzz_assert(info.offset <= size);
    }

    /* what the policy passes cJSON parses, and prints back as JSON the
     * policy passes again (strings whole: no NUL to cut them) */
    root = ngx_http_asyncx_json_parse(p, size, NGX_HTTP_ASYNCX_JSON_NO_NUL,
                                      &info);

    /*
     * the walker over what the policy passed (the mock's reader): one
     * member per cJSON child, in order, each value a whole JSON value
     * the policy passes alone, and nothing read past the end (ASan)
     */
    if (root && cJSON_IsObject(root)) {
        pos = info.start;
        child = root->child;

        while (ngx_http_asyncx_pipeline_json_next(&pos, info.end, &key,
                                                  &value)
               == NGX_OK)
        {
            fuzz_assert(child != NULL);
            fuzz_assert(ngx_http_asyncx_json_validate(value.data, value.len,
                                                      0, &part)
                        == NGX_OK);
            fuzz_assert(part.start == value.data
                        && part.end == value.data + value.len);

            if (memchr(key.data, '\\', key.len) == NULL) {
                fuzz_assert(strlen(child->string) == key.len
                            && memcmp(child->string, key.data, key.len) == 0);
            }

            child = child->next;
        }

        fuzz_assert(child == NULL);
        fuzz_assert(pos == info.end);
    }

    if (root) {
        text = cJSON_PrintUnformatted(root);
        if (text) {
            fuzz_assert(ngx_http_asyncx_json_validate((u_char *) text,
                                                   strlen(text),
                                                   NGX_HTTP_ASYNCX_JSON_NO_NUL,
                                                   &info)
                        == NGX_OK);
            cJSON_free(text);
        }

        cJSON_Delete(root);
    }

    /* the escaper writes exactly the length it announced */
    n = size + ngx_http_asyncx_json_escape_len(p, size);
    out = malloc(n ? n : 1);
    last = ngx_http_asyncx_json_escape(out, p, size);
    fuzz_assert((size_t) (last - out) == n);
    free(out);

    /* any bytes come out valid UTF-8, without controls when asked */
    n = ngx_http_asyncx_utf8_escape_len(p, size,
                                        NGX_HTTP_ASYNCX_UTF8_CONTROLS);
    out = malloc(n ? n : 1);
    last = ngx_http_asyncx_utf8_escape(out, p, size,
                                       NGX_HTTP_ASYNCX_UTF8_CONTROLS);
    fuzz_assert((size_t) (last - out) == n);
    fuzz_assert(ngx_http_asyncx_utf8_valid(out, n) == NGX_OK);
    fuzz_assert(memchr(out, '\n', n) == NULL);
    free(out);

    /* cut and trim never leave a part of a valid character */
    n = ngx_http_asyncx_utf8_cut(p, size, size / 2);
    fuzz_assert(n <= size / 2 || n == size);

    if (ngx_http_asyncx_utf8_valid(p, size) == NGX_OK) {
        fuzz_assert(ngx_http_asyncx_utf8_valid(p, n) == NGX_OK);
        fuzz_assert(ngx_http_asyncx_utf8_valid(p, ngx_http_asyncx_utf8_trim(
                                                   p, size / 2))
                    == NGX_OK);
    }

    free(p);
    return 0;
}
