
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_PIPELINE_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_PIPELINE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include "ngx_http_asyncx_pipeline_util.h"
#include "ngx_http_asyncx_metrics.h"
#include "ngx_http_asyncx_mock.h"
#include "ngx_http_asyncx_pipeline_conf.h"


typedef struct ngx_http_asyncx_pipeline_ctx_s  ngx_http_asyncx_pipeline_ctx_t;


typedef struct {
    ngx_str_t                      name;        /* NUL-terminated */
    ngx_str_t                      uri;         /* path part */
    ngx_str_t                      args;        /* after '?', may be empty */
    ngx_str_t                      fallback;    /* JSON text if optional */
    ngx_uint_t                     stage;
    ngx_http_asyncx_series_t      *metrics;
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
    ngx_array_t                   *stages;      /* stage_conf_t */
    ngx_array_t                   *calls;       /* call_conf_t */
    ngx_array_t                   *optional;    /* optional_t, until merge */
    ngx_msec_t                     call_timeout;
    ngx_uint_t                     error_status;
    ngx_flag_t                     pass_args;
    ngx_uint_t                     enabled;     /* asyncx_pipeline seen */
    ngx_str_t                      location;    /* its name, for metrics */
    ngx_http_asyncx_series_t      *metrics;
    ngx_http_asyncx_mock_conf_t    mock;
} ngx_http_asyncx_pipeline_conf_t;


void ngx_http_asyncx_pipeline_init_conf(ngx_http_asyncx_pipeline_conf_t *conf);
char *ngx_http_asyncx_pipeline_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_conf_t *prev,
    ngx_http_asyncx_pipeline_conf_t *conf);
ngx_int_t ngx_http_asyncx_pipeline_status(ngx_http_request_t *r, cJSON *root);

char *ngx_http_asyncx_pipeline(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


#endif /* _NGX_HTTP_ASYNCX_PIPELINE_H_INCLUDED_ */
