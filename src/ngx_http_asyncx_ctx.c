
/*
 * Copyright (C) asyncx authors
 *
 * The request ctx every subsystem shares: one pointer each in the
 * module's one ctx slot (a request may be limited, then served).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"


ngx_http_asyncx_ctx_t *
ngx_http_asyncx_get_ctx(ngx_http_request_t *r)
{
    ngx_http_asyncx_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_asyncx_module);

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_asyncx_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        ngx_http_set_ctx(r, ctx, ngx_http_asyncx_module);
    }

    return ctx;
}
