/*
 * The request bodies of the CPU handlers (/auth/hash, /auth/verify,
 * /parse/json, /regex/match) through their real task functions
 * (src/ngx_http_asyncx_offload_cpu.c), as the thread runs them.  The
 * loop-side helpers they call are replaced by the small stand-ins below.
 * First input byte: which handler; the rest: the body.  Invariant: a
 * task either answers 200 with JSON or fails with a status and a message.
 */

#include "fuzz_common.h"
#include <ngx_http.h>
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_dataset.h"


ngx_int_t
ngx_http_asyncx_offload_fail(ngx_http_asyncx_offload_ctx_t *ctx,
    ngx_uint_t status, ngx_err_t err, const char *fmt, ...)
{
    va_list  args;

    /* the real one formats with ngx_vslprintf; the format must be used */
    va_start(args, fmt);
    va_end(args);

    ctx->status = status;
    ctx->err = err;
    ctx->msg_len = 1;

    return NGX_ERROR;
}


ngx_int_t
ngx_http_asyncx_offload_body(ngx_http_asyncx_offload_ctx_t *ctx)
{
    return NGX_OK;
}


cJSON *
ngx_http_asyncx_cjson_add_seconds(cJSON *obj, const char *name,
    uint64_t usec, ngx_uint_t decimals, ngx_str_t *unit)
{
    return cJSON_AddNumberToObject(obj, name, (double) usec / 1e6);
}


u_char *
ngx_cpystrn(u_char *dst, u_char *src, size_t n)
{
    if (n == 0) {
        return dst;
    }

    while (--n) {
        *dst = *src;
        if (*dst == '\0') {
            return dst;
        }
        dst++;
        src++;
    }

    *dst = '\0';
    return dst;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                          *body;
    ngx_int_t                        rc;
    ngx_http_asyncx_offload_conf_t   conf;
    ngx_http_asyncx_offload_ctx_t    ctx;
    ngx_http_asyncx_records_t        records = {
        ngx_string("dataset"), ngx_string("data set"),
        ngx_http_asyncx_dataset_record, ngx_http_asyncx_dataset_json_item
    };
    ngx_int_t                      (*run[])(void *) = {
        ngx_http_asyncx_offload_hash_run,
        ngx_http_asyncx_offload_verify_run,
        ngx_http_asyncx_offload_json_run,
        ngx_http_asyncx_offload_regex_run
    };

    if (size < 1) {
        return 0;
    }

    /* the defaults of docs/directives.md, with cheap PBKDF2 */
    memset(&conf, 0, sizeof(conf));
    conf.pbkdf2_iterations = 2;
    conf.pbkdf2_max_iterations = 1000;
    conf.password_max_length = 1024;
    conf.json_max_items = 1000;
    conf.regex_match_limit = 100000;
    conf.regex_depth_limit = 1000;
    conf.regex_max_subjects = 1000;
    conf.regex_time_limit = 1000;

    memset(&ctx, 0, sizeof(ctx));
    ctx.conf = &conf;
    ctx.records = &records;
    ctx.status = NGX_HTTP_INTERNAL_SERVER_ERROR;

    /* the loop hands the task a NUL-terminated copy of the body */
    body = malloc(size);
    fuzz_assert(body != NULL);
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';

    /* an empty /parse/json body makes the task swap in its own document */
    ctx.body.len = size - 1;
    ctx.body.data = body;

    rc = run[data[0] % 4](&ctx);

    if (rc == NGX_OK) {
        fuzz_assert(ctx.status == NGX_HTTP_OK && ctx.out != NULL);

    } else {
        fuzz_assert(ctx.status >= 400 && ctx.msg_len > 0);
    }

    free(ctx.out);
    free(body);

    return 0;
}
