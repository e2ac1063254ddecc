
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_SSE_FILE_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_SSE_FILE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx_conf.h"


typedef struct ngx_http_asyncx_sse_file_ctx_s  ngx_http_asyncx_sse_file_ctx_t;


/* asyncx_sse_source file=, asyncx_sse_query, their limits */
typedef struct {
    ngx_http_complex_value_t      *path;       /* NULL: not a file */
    ngx_str_t                      root;       /* NUL-terminated */

    ngx_uint_t                     query_set;
    ngx_http_complex_value_t      *field;      /* NULL: not given */
    ngx_http_complex_value_t      *fields;
    ngx_http_complex_value_t      *group_by;
    ngx_http_complex_value_t      *value;

    size_t                         max_line;
    ngx_uint_t                     invalid;    /* 0: error, 1: skip */
} ngx_http_asyncx_sse_file_conf_t;


extern ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_sse_line_bounds;


void ngx_http_asyncx_sse_file_init_conf(ngx_http_asyncx_sse_file_conf_t *conf);
char *ngx_http_asyncx_sse_file_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_sse_file_conf_t *prev,
    ngx_http_asyncx_sse_file_conf_t *conf);
char *ngx_http_asyncx_sse_file_check(ngx_conf_t *cf,
    ngx_http_asyncx_sse_file_conf_t *conf, ngx_uint_t mode);

char *ngx_http_asyncx_sse_file_set_source(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_asyncx_sse_file_conf_t *conf, ngx_str_t *value, ngx_uint_t n,
    ngx_str_t *others);
char *ngx_http_asyncx_sse_query(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_asyncx_sse_invalid_line(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_int_t ngx_http_asyncx_sse_file_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_ASYNCX_SSE_FILE_H_INCLUDED_ */
