
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_PIPELINE_UTIL_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_PIPELINE_UTIL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Pure pieces of the pipeline and of the mock service: name, URI and
 * token checks, the failure classification, the JSON checker.  No nginx
 * .c function is called: t/unit links them alone.
 */


#define NGX_HTTP_ASYNCX_PIPELINE_NAME_MAX  64


typedef enum {
    NGX_HTTP_ASYNCX_CALL_OK = 0,
    NGX_HTTP_ASYNCX_CALL_STATUS,          /* non-2xx answer */
    NGX_HTTP_ASYNCX_CALL_TIMEOUT,         /* per-call timer fired first */
    NGX_HTTP_ASYNCX_CALL_INVALID_JSON,    /* 2xx, body is not JSON */
    NGX_HTTP_ASYNCX_CALL_TOO_LARGE,       /* over the capture buffer */
    NGX_HTTP_ASYNCX_CALL_ERROR,           /* the subrequest itself failed */
    NGX_HTTP_ASYNCX_CALL_INVALID_URI,     /* its URI, evaluated, is unsafe */
    NGX_HTTP_ASYNCX_CALL_ABANDONED        /* in flight at the pipeline's
                                             timeout */
} ngx_http_asyncx_call_kind_e;


ngx_int_t ngx_http_asyncx_pipeline_check_name(u_char *p, size_t len);
ngx_int_t ngx_http_asyncx_pipeline_check_uri(u_char *p, size_t len,
    size_t *path_len);
ngx_int_t ngx_http_asyncx_pipeline_check_uri_template(u_char *p, size_t len,
    size_t *path_len);
ngx_int_t ngx_http_asyncx_pipeline_check_header_value(u_char *p,
    size_t len);
ngx_int_t ngx_http_asyncx_pipeline_check_decoded(ngx_str_t *raw,
    ngx_str_t *decoded);
ngx_int_t ngx_http_asyncx_pipeline_check_uri_value(u_char *p, size_t len,
    ngx_uint_t path);
ngx_int_t ngx_http_asyncx_pipeline_check_token(u_char *p, size_t len);
ngx_int_t ngx_http_asyncx_pipeline_in_list(u_char *list, size_t len,
    u_char *name, size_t name_len);

ngx_http_asyncx_call_kind_e ngx_http_asyncx_pipeline_classify(ngx_int_t rc,
    ngx_uint_t status, ngx_uint_t overflow);
ngx_uint_t ngx_http_asyncx_pipeline_retryable(ngx_http_asyncx_call_kind_e kind,
    ngx_uint_t status);
const char *ngx_http_asyncx_pipeline_kind_name(
    ngx_http_asyncx_call_kind_e kind);

ngx_int_t ngx_http_asyncx_pipeline_json_next(u_char **pos, u_char *last,
    ngx_str_t *key, ngx_str_t *value);
ngx_int_t ngx_http_asyncx_pipeline_json_key(u_char **pos, u_char *last,
    ngx_str_t *key);
u_char *ngx_http_asyncx_pipeline_json_skip(u_char *p, u_char *last);


#endif /* _NGX_HTTP_ASYNCX_PIPELINE_UTIL_H_INCLUDED_ */
