
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

/*
 * Shared types only: the module's main and location conf, each one
 * embedded struct per subsystem (so that the directive table can use
 * offsetof), and the request ctx.  Helpers (util, conf, json, http) and
 * a subsystem's own parts are included by the files that use them.
 */

#include "ngx_http_asyncx_records.h"
#include "ngx_http_asyncx_stats.h"
#include "ngx_http_asyncx_status.h"
#include "ngx_http_asyncx_metrics.h"
#include "ngx_http_asyncx_executor.h"
#include "ngx_http_asyncx_pipeline.h"
#include "ngx_http_asyncx_offload.h"
#include "ngx_http_asyncx_limit.h"
#include "ngx_http_asyncx_sse.h"
#include "ngx_http_asyncx_dashboard.h"


/*
 * One struct per subsystem, embedded the way proxy embeds its upstream
 * conf: each subsystem owns its init/merge helper.
 */

typedef struct {
    ngx_http_asyncx_stats_main_conf_t     stats;
    ngx_http_asyncx_executor_main_conf_t  executor;
    ngx_http_asyncx_status_main_conf_t    status;
    ngx_http_asyncx_pipeline_main_conf_t  pipeline;
    ngx_http_asyncx_limit_main_conf_t     limit;
    ngx_http_asyncx_metrics_main_conf_t   metrics;
    ngx_http_asyncx_sse_main_conf_t       sse;

    /* after the durations the answers write ("1.9s"); a hook may set it */
    ngx_str_t                             duration_unit;

    /* generated input of requests that bring none; NULL: none */
    ngx_http_asyncx_records_t            *records;
} ngx_http_asyncx_main_conf_t;


typedef struct {
    ngx_http_asyncx_executor_conf_t       executor;
    ngx_http_asyncx_pipeline_conf_t       pipeline;
    ngx_http_asyncx_offload_conf_t        offload;
    ngx_http_asyncx_limit_conf_t          limit;
    ngx_http_asyncx_sse_conf_t            sse;
    ngx_http_asyncx_dashboard_conf_t      dashboard;

    /* the demo's own location conf (src/demo), opaque to the module */
    void                                 *demo;

    /* the module's content handler set in this location, if any */
    ngx_http_handler_pt                   content_handler;
} ngx_http_asyncx_loc_conf_t;


/*
 * A request may be limited and then served by a handler, so the one
 * module ctx slot holds one pointer per subsystem.
 */

typedef struct {
    ngx_http_asyncx_pipeline_ctx_t       *pipeline;
    ngx_http_asyncx_offload_ctx_t        *offload;
    ngx_http_asyncx_limit_ctx_t          *limit;
    ngx_http_asyncx_limit_test_ctx_t     *limit_test;
    ngx_http_asyncx_sse_ctx_t            *sse;
    ngx_http_asyncx_sse_file_ctx_t       *sse_file;
} ngx_http_asyncx_ctx_t;


ngx_http_asyncx_ctx_t *ngx_http_asyncx_get_ctx(ngx_http_request_t *r);


extern ngx_module_t  ngx_http_asyncx_module;


#endif /* _NGX_HTTP_ASYNCX_H_INCLUDED_ */
