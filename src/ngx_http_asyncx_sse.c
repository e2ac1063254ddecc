
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"


struct ngx_http_asyncx_sse_ctx_s {
    ngx_uint_t  unused;
};


void
ngx_http_asyncx_sse_init_conf(ngx_http_asyncx_sse_conf_t *conf)
{
}


char *
ngx_http_asyncx_sse_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_sse_conf_t *prev, ngx_http_asyncx_sse_conf_t *conf)
{
    return NGX_CONF_OK;
}


ngx_int_t
ngx_http_asyncx_sse_status(ngx_http_request_t *r, cJSON *root)
{
    return NGX_OK;
}
