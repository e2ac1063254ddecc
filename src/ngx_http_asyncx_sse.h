
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_SSE_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_SSE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include "ngx_http_asyncx_offload.h"
#include "ngx_http_asyncx_sse_file.h"


typedef struct ngx_http_asyncx_sse_ctx_s  ngx_http_asyncx_sse_ctx_t;


typedef enum {
    NGX_HTTP_ASYNCX_SSE_OFF = 0,
    NGX_HTTP_ASYNCX_SSE_SEARCH,
    NGX_HTTP_ASYNCX_SSE_TRANSFORM,
    NGX_HTTP_ASYNCX_SSE_AGGREGATE
} ngx_http_asyncx_sse_mode_e;


/*
 * Where a stream's records come from (asyncx_sse_source): the synthetic
 * data set of the demo, or an NDJSON file.  Each source runs its own
 * stream behind the one asyncx_sse content handler, with the shared
 * event format, header and keepalive below.
 */

typedef struct {
    ngx_str_t                      name;
    ngx_http_handler_pt            handler;
} ngx_http_asyncx_sse_source_t;


typedef struct {
    ngx_uint_t                     mode;
    ngx_msec_t                     heartbeat;
    ngx_uint_t                     batch_size;
    ngx_uint_t                     max_data_size;
    ngx_http_asyncx_sse_source_t  *source;
    ngx_http_asyncx_sse_file_conf_t  file;
} ngx_http_asyncx_sse_conf_t;


/* ranges of the asyncx_sse_* directives (set_bounded); heartbeat 0: off */
extern ngx_http_asyncx_offload_bounds_t  ngx_http_asyncx_sse_heartbeat_bounds;
extern ngx_http_asyncx_offload_bounds_t  ngx_http_asyncx_sse_batch_bounds;
extern ngx_http_asyncx_offload_bounds_t  ngx_http_asyncx_sse_data_size_bounds;


void ngx_http_asyncx_sse_init_conf(ngx_http_asyncx_sse_conf_t *conf);
char *ngx_http_asyncx_sse_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_sse_conf_t *prev, ngx_http_asyncx_sse_conf_t *conf);
char *ngx_http_asyncx_sse(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_asyncx_sse_source(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_int_t ngx_http_asyncx_sse_last_event_id(ngx_http_request_t *r,
    ngx_str_t *value);
void ngx_http_asyncx_sse_keepalive(ngx_http_request_t *r, ngx_buf_t *b,
    ngx_chain_t *cl);
ngx_int_t ngx_http_asyncx_sse_status(ngx_http_request_t *r, cJSON *root);


#endif /* _NGX_HTTP_ASYNCX_SSE_H_INCLUDED_ */
