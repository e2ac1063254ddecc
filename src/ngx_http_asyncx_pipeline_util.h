
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_PIPELINE_UTIL_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_PIPELINE_UTIL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Pure pieces of the pipeline and of the mock service: name and URI
 * checks, the failure classification and the "1.9초 (1단계 0.5초 + ...)"
 * formatting.  No nginx .c function is called: t/unit links them alone.
 */


#define NGX_HTTP_ASYNCX_PIPELINE_NAME_MAX  64


typedef enum {
    NGX_HTTP_ASYNCX_CALL_OK = 0,
    NGX_HTTP_ASYNCX_CALL_STATUS,          /* non-2xx answer */
    NGX_HTTP_ASYNCX_CALL_TIMEOUT,         /* per-call timer fired first */
    NGX_HTTP_ASYNCX_CALL_INVALID_JSON,    /* 2xx, body is not JSON */
    NGX_HTTP_ASYNCX_CALL_TOO_LARGE,       /* over the capture buffer */
    NGX_HTTP_ASYNCX_CALL_ERROR            /* the subrequest itself failed */
} ngx_http_asyncx_call_kind_e;


ngx_int_t ngx_http_asyncx_pipeline_check_name(u_char *p, size_t len);
ngx_int_t ngx_http_asyncx_pipeline_check_uri(u_char *p, size_t len,
    size_t *path_len);
ngx_int_t ngx_http_asyncx_pipeline_in_list(u_char *list, size_t len,
    u_char *name, size_t name_len);

ngx_http_asyncx_call_kind_e ngx_http_asyncx_pipeline_classify(ngx_int_t rc,
    ngx_uint_t status, ngx_uint_t overflow);
const char *ngx_http_asyncx_pipeline_kind_name(
    ngx_http_asyncx_call_kind_e kind);

size_t ngx_http_asyncx_pipeline_format_breakdown(u_char *buf, size_t size,
    uint64_t total, ngx_str_t *names, uint64_t *usec, ngx_uint_t n,
    ngx_uint_t decimals);


#endif /* _NGX_HTTP_ASYNCX_PIPELINE_UTIL_H_INCLUDED_ */
