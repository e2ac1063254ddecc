
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_OFFLOAD_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_OFFLOAD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>


typedef struct ngx_http_asyncx_offload_ctx_s  ngx_http_asyncx_offload_ctx_t;


typedef struct {
    ngx_uint_t                     unused;
} ngx_http_asyncx_offload_conf_t;


void ngx_http_asyncx_offload_init_conf(ngx_http_asyncx_offload_conf_t *conf);
char *ngx_http_asyncx_offload_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_offload_conf_t *prev, ngx_http_asyncx_offload_conf_t *conf);



#endif /* _NGX_HTTP_ASYNCX_OFFLOAD_H_INCLUDED_ */
