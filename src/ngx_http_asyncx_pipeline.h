
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_PIPELINE_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_PIPELINE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx_stats.h"

#include "ngx_http_asyncx_pipeline_util.h"
#include "ngx_http_asyncx_metrics.h"
#include "ngx_http_asyncx_pipeline_conf.h"
#include "ngx_http_asyncx_pipeline_block.h"


typedef struct ngx_http_asyncx_pipeline_ctx_s  ngx_http_asyncx_pipeline_ctx_t;
typedef struct ngx_http_asyncx_pipeline_answer_s
    ngx_http_asyncx_pipeline_answer_t;


typedef struct {
    ngx_str_t                      name;        /* NUL-terminated */
    ngx_str_t                      uri;         /* path part */
    ngx_str_t                      args;        /* after '?', may be empty */
    ngx_http_complex_value_t      *uri_cv;      /* path with variables */
    ngx_http_complex_value_t      *args_cv;     /* arguments with variables */
    ngx_array_t                   *segments;    /* ngx_uint_t: indexes of the
                                                   client's values in the
                                                   path, one segment each */
    ngx_array_t                   *arg_values;  /* ... in the arguments, one
                                                   value each */
    ngx_str_t                      fallback;    /* JSON text if optional */
    ngx_uint_t                     stage;
    ngx_http_asyncx_series_t      *metrics;
    ngx_uint_t                     retries;     /* idempotent calls */
    ngx_msec_t                     attempt_timeout;  /* 0: none */
    unsigned                       optional:1;
} ngx_http_asyncx_pipeline_call_conf_t;


typedef struct {
    ngx_str_t                      name;        /* NUL-terminated */
    ngx_uint_t                     first;       /* index into calls */
    ngx_uint_t                     ncalls;
} ngx_http_asyncx_pipeline_stage_conf_t;


typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      fallback;
} ngx_http_asyncx_pipeline_optional_t;


typedef struct {
    ngx_str_t                      name;
    ngx_uint_t                     retries;
    ngx_msec_t                     attempt_timeout;
} ngx_http_asyncx_pipeline_idempotent_t;


/* asyncx_call_set_header: a header every call gets (value may be empty) */

typedef struct {
    ngx_str_t                      name;
    ngx_str_t                      lowcase;
    ngx_uint_t                     hash;
    ngx_http_complex_value_t       value;
} ngx_http_asyncx_pipeline_header_t;


/* a client header that calls do not get: lowercase name and its hash */

typedef struct {
    ngx_str_t                      lowcase;
    ngx_uint_t                     hash;
} ngx_http_asyncx_pipeline_drop_t;


typedef struct {
    ngx_array_t                   *stages;      /* stage_conf_t */
    ngx_array_t                   *calls;       /* call_conf_t */
    ngx_array_t                   *optional;    /* optional_t, until merge */
    ngx_array_t                   *idempotent;  /* idempotent_t, same */
    ngx_uint_t                     nattempts;   /* most, all calls */
    ngx_array_t                   *set_headers; /* header_t */
    ngx_array_t                   *hide_headers; /* drop_t */
    ngx_array_t                   *drop;        /* drop_t, built at merge */
    ngx_msec_t                     call_timeout;
    ngx_msec_t                     pipeline_timeout;  /* 0: none */
    ngx_uint_t                     error_status;
    ngx_flag_t                     pass_args;
    ngx_flag_t                     mode_arg;
    ngx_flag_t                     server_timing;
    ngx_flag_t                     pass_request_headers;
    ngx_http_asyncx_pipeline_answer_t *answer;
    ngx_uint_t                     enabled;     /* asyncx_pipeline seen */
    ngx_str_t                      location;    /* its name, for metrics */
    ngx_http_asyncx_series_t      *metrics;
} ngx_http_asyncx_pipeline_conf_t;


/* the pipeline's counters in asyncx_stats */

enum {
    NGX_HTTP_ASYNCX_STAT_PIPELINE_TOTAL =
        NGX_HTTP_ASYNCX_STATS_SET(NGX_HTTP_ASYNCX_STATS_PIPELINE),
    NGX_HTTP_ASYNCX_STAT_PIPELINE_FAILED,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_CALLS,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_CALL_ERRORS,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_ABORTED,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_RETRIES,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_TIMED_OUT,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_END
};

NGX_HTTP_ASYNCX_STATS_CHECK(NGX_HTTP_ASYNCX_STATS_PIPELINE,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_END);


/*
 * answers: the formats known to asyncx_pipeline_answer; blocks: the
 * pipelines' reserved pool blocks (ngx_http_asyncx_pipeline_block.c).
 */

typedef struct {
    ngx_array_t                   *answers;     /* answer_t * */
    ngx_http_asyncx_pipeline_blocks_t  blocks;
} ngx_http_asyncx_pipeline_main_conf_t;


void ngx_http_asyncx_pipeline_init_conf(ngx_http_asyncx_pipeline_conf_t *conf);
char *ngx_http_asyncx_pipeline_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_conf_t *prev,
    ngx_http_asyncx_pipeline_conf_t *conf);
ngx_int_t ngx_http_asyncx_pipeline_status(ngx_http_request_t *r,
    struct cJSON *root);
ngx_int_t ngx_http_asyncx_pipeline_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_asyncx_pipeline_init_filter(ngx_conf_t *cf);

char *ngx_http_asyncx_pipeline(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_ASYNCX_PIPELINE_H_INCLUDED_ */
