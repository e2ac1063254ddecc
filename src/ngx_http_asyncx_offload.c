
/*
 * Copyright (C) asyncx authors
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"


struct ngx_http_asyncx_offload_ctx_s {
    ngx_uint_t  unused;
};


void
ngx_http_asyncx_offload_init_conf(ngx_http_asyncx_offload_conf_t *conf)
{
}


char *
ngx_http_asyncx_offload_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_offload_conf_t *prev, ngx_http_asyncx_offload_conf_t *conf)
{
    return NGX_CONF_OK;
}



