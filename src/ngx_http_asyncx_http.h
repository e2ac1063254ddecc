
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_HTTP_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_HTTP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>


/*
 * Response helpers shared by every handler.  Each returns what
 * ngx_http_output_filter() returned (or an HTTP error code), ready to be
 * passed to ngx_http_finalize_request() or returned from a handler.
 */

ngx_int_t ngx_http_asyncx_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *data, size_t len);
ngx_int_t ngx_http_asyncx_send_json_line(ngx_http_request_t *r,
    ngx_uint_t status, u_char *line, size_t len);
ngx_int_t ngx_http_asyncx_send_json_buf(ngx_http_request_t *r,
    ngx_uint_t status, ngx_buf_t *b, u_char *line, size_t len);
ngx_int_t ngx_http_asyncx_send_cjson(ngx_http_request_t *r, ngx_uint_t status,
    cJSON *root);
ngx_int_t ngx_http_asyncx_send_error(ngx_http_request_t *r, ngx_uint_t status,
    ngx_uint_t level, const char *fmt, ...);
ngx_int_t ngx_http_asyncx_send_server_error(ngx_http_request_t *r,
    const ngx_str_t *what, u_char *detail, size_t len);
ngx_int_t ngx_http_asyncx_quote(ngx_pool_t *pool, u_char *src, size_t len,
    ngx_uint_t flags, ngx_str_t *dst);

ngx_int_t ngx_http_asyncx_set_allow(ngx_http_request_t *r,
    ngx_uint_t allowed);
ngx_int_t ngx_http_asyncx_get_only(ngx_http_request_t *r, ngx_int_t *rc);
ngx_int_t ngx_http_asyncx_send_event_stream_header(ngx_http_request_t *r);
void ngx_http_asyncx_event_stream_keepalive(ngx_http_request_t *r,
    ngx_buf_t *b, ngx_chain_t *cl);
ngx_int_t ngx_http_asyncx_event_stream_gone(ngx_http_request_t *r,
    const char *who);
ngx_int_t ngx_http_asyncx_last_event_id(ngx_http_request_t *r,
    ngx_str_t *value);
ngx_table_elt_t *ngx_http_asyncx_header_next(ngx_http_request_t *r,
    ngx_str_t *name, ngx_table_elt_t *prev);
void ngx_http_asyncx_watch_client(ngx_http_request_t *r);
ngx_uint_t ngx_http_asyncx_server_tokens(ngx_http_request_t *r);
ngx_int_t ngx_http_asyncx_set_retry_after(ngx_http_request_t *r,
    time_t seconds);

ngx_int_t ngx_http_asyncx_arg(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);
ngx_int_t ngx_http_asyncx_arg_uint(ngx_http_request_t *r, const char *name,
    uint64_t min, uint64_t max, uint64_t *value);
ngx_int_t ngx_http_asyncx_body_copy(ngx_http_request_t *r, ngx_str_t *body,
    size_t max);
ngx_err_t ngx_http_asyncx_body_read_files(ngx_chain_t *bufs, u_char *dst);

cJSON *ngx_http_asyncx_cjson_add_seconds(cJSON *obj, const char *name,
    uint64_t usec, ngx_uint_t decimals, ngx_str_t *unit);


#endif /* _NGX_HTTP_ASYNCX_HTTP_H_INCLUDED_ */
