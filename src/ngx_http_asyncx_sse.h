
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_SSE_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_SSE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx_stats.h"

#include "ngx_http_asyncx_conf.h"
#include "ngx_http_asyncx_sse_file.h"


typedef struct ngx_http_asyncx_sse_ctx_s  ngx_http_asyncx_sse_ctx_t;


typedef enum {
    NGX_HTTP_ASYNCX_SSE_OFF = 0,
    NGX_HTTP_ASYNCX_SSE_SEARCH,
    NGX_HTTP_ASYNCX_SSE_TRANSFORM,
    NGX_HTTP_ASYNCX_SSE_AGGREGATE
} ngx_http_asyncx_sse_mode_e;


/*
 * Where a stream's records come from (asyncx_sse_source): an NDJSON file,
 * or a source registered by name at preconfiguration.  Each source runs
 * its own stream behind the one asyncx_sse content handler, with the
 * shared event encoder, header and keepalive.
 */

typedef struct {
    ngx_str_t                      name;
    ngx_http_handler_pt            handler;

    /* its own query arguments, which a file stream refuses with "refusal" */
    char                         **args;      /* NULL-terminated */
    char                          *refusal;
} ngx_http_asyncx_sse_source_t;


/* the named sources (asyncx_sse_source NAME); the first is the default */

typedef struct {
    ngx_array_t                    sources;   /* source_t * */
} ngx_http_asyncx_sse_main_conf_t;


/* the most records one job of a stream handles */
#define NGX_HTTP_ASYNCX_SSE_BATCH_MAX  100000


typedef struct {
    ngx_uint_t                     mode;
    ngx_msec_t                     heartbeat;
    ngx_msec_t                     retry;       /* 0: no retry field */
    ngx_uint_t                     batch_size;
    ngx_uint_t                     max_data_size;
    ngx_http_asyncx_sse_source_t  *source;
    ngx_http_asyncx_sse_file_conf_t  file;
} ngx_http_asyncx_sse_conf_t;


/* ranges of the asyncx_sse_* directives (set_bounded); heartbeat 0: off */
extern ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_sse_heartbeat_bounds;
extern ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_sse_retry_bounds;

/* the streams' counters in asyncx_stats */

enum {
    NGX_HTTP_ASYNCX_STAT_SSE_TOTAL =
        NGX_HTTP_ASYNCX_STATS_SET(NGX_HTTP_ASYNCX_STATS_SSE),
    NGX_HTTP_ASYNCX_STAT_SSE_COMPLETED,
    NGX_HTTP_ASYNCX_STAT_SSE_ABORTED,
    NGX_HTTP_ASYNCX_STAT_SSE_ERRORS,
    NGX_HTTP_ASYNCX_STAT_SSE_EVENTS,
    NGX_HTTP_ASYNCX_STAT_SSE_JOBS,
    NGX_HTTP_ASYNCX_STAT_SSE_RECORDS,
    NGX_HTTP_ASYNCX_STAT_SSE_END
};

NGX_HTTP_ASYNCX_STATS_CHECK(NGX_HTTP_ASYNCX_STATS_SSE,
    NGX_HTTP_ASYNCX_STAT_SSE_END);


extern ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_sse_batch_bounds;
extern ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_sse_data_size_bounds;


ngx_int_t ngx_http_asyncx_sse_init_main_conf(ngx_conf_t *cf,
    ngx_http_asyncx_sse_main_conf_t *smcf);
ngx_int_t ngx_http_asyncx_sse_add_source(ngx_conf_t *cf,
    ngx_http_asyncx_sse_source_t *source);
void ngx_http_asyncx_sse_init_conf(ngx_http_asyncx_sse_conf_t *conf);
char *ngx_http_asyncx_sse_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_sse_conf_t *prev, ngx_http_asyncx_sse_conf_t *conf);
char *ngx_http_asyncx_sse(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_asyncx_sse_source(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_int_t ngx_http_asyncx_sse_status(ngx_http_request_t *r,
    struct cJSON *root);


#endif /* _NGX_HTTP_ASYNCX_SSE_H_INCLUDED_ */
