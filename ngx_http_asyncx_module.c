
/*
 * Copyright (C) asyncx authors
 *
 * ngx_http_asyncx_module: staged subrequest pipelines, thread-pool
 * offload, a shared-zone limiter and Server-Sent Events streams.
 * This file holds the module definition and the whole directive table;
 * each subsystem lives in its own src/ngx_http_asyncx_*.c pair.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_conf.h"
#include "ngx_http_asyncx_exercise.h"
#include "ngx_http_asyncx_mock.h"


static void *ngx_http_asyncx_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_asyncx_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_asyncx_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_asyncx_content_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_asyncx_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_asyncx_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_asyncx_init_process(ngx_cycle_t *cycle);
static void ngx_http_asyncx_exit_process(ngx_cycle_t *cycle);


/*
 * The range of every number, size and time directive (cmd->post of
 * ngx_http_asyncx_conf_set_bounded): anything outside, 0 included unless
 * it means "off", is refused by nginx -t.
 */

static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_call_timeout_bounds =
    { 1, NGX_HTTP_ASYNCX_CONF_MSEC_MAX, NGX_HTTP_ASYNCX_CONF_MSEC, 0 };
static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_pipeline_timeout_bounds =
    { 1, NGX_HTTP_ASYNCX_CONF_MSEC_MAX, NGX_HTTP_ASYNCX_CONF_MSEC, 1 };
static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_error_status_bounds =
    { 400, 599, NGX_HTTP_ASYNCX_CONF_NUMBER, 0 };
static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_file_size_bounds =
    { 1, 1024 * 1024 * 1024, NGX_HTTP_ASYNCX_CONF_SIZE, 0 };
static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_iterations_bounds =
    { 1, NGX_MAX_INT32_VALUE, NGX_HTTP_ASYNCX_CONF_NUMBER, 0 };
static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_password_bounds =
    { 1, 4096, NGX_HTTP_ASYNCX_CONF_SIZE, 0 };
static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_json_items_bounds =
    { 1, 1000000, NGX_HTTP_ASYNCX_CONF_NUMBER, 0 };
static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_json_size_bounds =
    { 1, 1024 * 1024 * 1024, NGX_HTTP_ASYNCX_CONF_SIZE, 0 };
static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_regex_limit_bounds =
    { 1, NGX_MAX_UINT32_VALUE, NGX_HTTP_ASYNCX_CONF_NUMBER, 0 };
static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_regex_texts_bounds =
    { 1, 10000000, NGX_HTTP_ASYNCX_CONF_NUMBER, 0 };
static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_regex_time_bounds =
    { 1, 3600000, NGX_HTTP_ASYNCX_CONF_MSEC, 0 };


static ngx_command_t  ngx_http_asyncx_commands[] = {

    /* status */

    { ngx_string("asyncx_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_asyncx_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_status_stream"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_asyncx_status_stream,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_status_page"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_status_page,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* executor */

    { ngx_string("asyncx_thread_pools"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_asyncx_thread_pools,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* pipeline: staged subrequests */

    { ngx_string("asyncx_pipeline"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_asyncx_pipeline,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_stage"),
      NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_asyncx_stage,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_call_optional"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_asyncx_call_optional,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_call_idempotent"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_asyncx_call_idempotent,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_pipeline_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, pipeline.pipeline_timeout),
      &ngx_http_asyncx_pipeline_timeout_bounds },

    { ngx_string("asyncx_call_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, pipeline.call_timeout),
      &ngx_http_asyncx_call_timeout_bounds },

    { ngx_string("asyncx_pipeline_error_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, pipeline.error_status),
      &ngx_http_asyncx_error_status_bounds },

    { ngx_string("asyncx_pipeline_pass_args"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, pipeline.pass_args),
      NULL },

    { ngx_string("asyncx_pipeline_answer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_pipeline_answer,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_pipeline_server_timing"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, pipeline.server_timing),
      NULL },

    { ngx_string("asyncx_pipeline_mode_arg"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, pipeline.mode_arg),
      NULL },

    { ngx_string("asyncx_call_pass_request_headers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, pipeline.pass_request_headers),
      NULL },

    { ngx_string("asyncx_call_set_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_asyncx_call_set_header,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_call_hide_header"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_call_hide_header,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_pipeline_blocks"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_asyncx_pipeline_blocks,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_asyncx_main_conf_t, pipeline)
          + offsetof(ngx_http_asyncx_pipeline_main_conf_t, blocks),
      NULL },

    { ngx_string("asyncx_mock_service"),
      NGX_HTTP_LOC_CONF|NGX_CONF_ANY,
      ngx_http_asyncx_mock_service,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* end of pipeline */

    /* offload: file, hash, json and regex handlers */

    { ngx_string("asyncx_file_read"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_asyncx_offload,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_ASYNCX_OFFLOAD_FILE_READ,
      NULL },

    { ngx_string("asyncx_file_write"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_asyncx_offload,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_ASYNCX_OFFLOAD_FILE_WRITE,
      NULL },

    { ngx_string("asyncx_password_hash"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_asyncx_offload,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_ASYNCX_OFFLOAD_HASH,
      NULL },

    { ngx_string("asyncx_password_verify"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_asyncx_offload,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_ASYNCX_OFFLOAD_VERIFY,
      NULL },

    { ngx_string("asyncx_json_parse"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_asyncx_offload,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_ASYNCX_OFFLOAD_JSON,
      NULL },

    { ngx_string("asyncx_regex_match"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_asyncx_offload,
      NGX_HTTP_LOC_CONF_OFFSET,
      NGX_HTTP_ASYNCX_OFFLOAD_REGEX,
      NULL },

    { ngx_string("asyncx_file_root"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_offload_file_root,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_file_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, offload.file_max_size),
      &ngx_http_asyncx_file_size_bounds },

    { ngx_string("asyncx_pbkdf2_iterations"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, offload.pbkdf2_iterations),
      &ngx_http_asyncx_iterations_bounds },

    { ngx_string("asyncx_pbkdf2_max_iterations"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, offload.pbkdf2_max_iterations),
      &ngx_http_asyncx_iterations_bounds },

    { ngx_string("asyncx_password_max_length"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, offload.password_max_length),
      &ngx_http_asyncx_password_bounds },

    { ngx_string("asyncx_json_max_items"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, offload.json_max_items),
      &ngx_http_asyncx_json_items_bounds },

    { ngx_string("asyncx_json_max_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, offload.json_max_size),
      &ngx_http_asyncx_json_size_bounds },

    { ngx_string("asyncx_regex_match_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, offload.regex_match_limit),
      &ngx_http_asyncx_regex_limit_bounds },

    { ngx_string("asyncx_regex_depth_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, offload.regex_depth_limit),
      &ngx_http_asyncx_regex_limit_bounds },

    { ngx_string("asyncx_regex_max_texts"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, offload.regex_max_subjects),
      &ngx_http_asyncx_regex_texts_bounds },

    { ngx_string("asyncx_regex_time_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, offload.regex_time_limit),
      &ngx_http_asyncx_regex_time_bounds },

    /* end of offload */

    /* limit: shared-zone token bucket and concurrency cap */

    { ngx_string("asyncx_limit_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_asyncx_limit_zone,
      0,
      0,
      NULL },

    { ngx_string("asyncx_limit"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_limit,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* the refusal status (limit_req_status); a zone name: deprecated */
    { ngx_string("asyncx_limit_status"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_asyncx_limit_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_limit_log_level"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_limit_log_level,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_limit_dry_run"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, limit.dry_run),
      NULL },

    { ngx_string("asyncx_limit_zone_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_limit_zone_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_limit_test"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE2,
      ngx_http_asyncx_limit_zone_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },


    /* end of limit */

    /* sse: Server-Sent Events streams */

    { ngx_string("asyncx_sse"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_sse,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_sse_heartbeat"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, sse.heartbeat),
      &ngx_http_asyncx_sse_heartbeat_bounds },

    { ngx_string("asyncx_sse_retry"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, sse.retry),
      &ngx_http_asyncx_sse_retry_bounds },

    { ngx_string("asyncx_sse_batch_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, sse.batch_size),
      &ngx_http_asyncx_sse_batch_bounds },

    { ngx_string("asyncx_sse_max_data_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, sse.max_data_size),
      &ngx_http_asyncx_sse_data_size_bounds },

    { ngx_string("asyncx_sse_source"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_asyncx_sse_source,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_sse_query"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_asyncx_sse_query,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("asyncx_sse_max_line_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_conf_set_bounded,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_asyncx_loc_conf_t, sse.file.max_line),
      &ngx_http_asyncx_sse_line_bounds },

    { ngx_string("asyncx_sse_invalid_line"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_asyncx_sse_invalid_line,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },


    /* end of sse */

      ngx_null_command
};


static ngx_http_module_t  ngx_http_asyncx_module_ctx = {
    ngx_http_asyncx_add_variables,         /* preconfiguration */
    ngx_http_asyncx_init,                  /* postconfiguration */

    ngx_http_asyncx_create_main_conf,      /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_asyncx_create_loc_conf,       /* create location configuration */
    ngx_http_asyncx_merge_loc_conf         /* merge location configuration */
};


ngx_module_t  ngx_http_asyncx_module = {
    NGX_MODULE_V1,
    &ngx_http_asyncx_module_ctx,           /* module context */
    ngx_http_asyncx_commands,              /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_asyncx_init_module,           /* init module */
    ngx_http_asyncx_init_process,          /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_asyncx_exit_process,          /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_asyncx_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_asyncx_main_conf_t  *amcf;

    amcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_asyncx_main_conf_t));
    if (amcf == NULL) {
        return NULL;
    }

    if (ngx_http_asyncx_stats_init_main_conf(cf, &amcf->stats) != NGX_OK
        || ngx_http_asyncx_executor_init_main_conf(cf, &amcf->executor)
           != NGX_OK
        || ngx_http_asyncx_status_init_main_conf(cf, &amcf->status) != NGX_OK
        || ngx_http_asyncx_sse_init_main_conf(cf, &amcf->sse) != NGX_OK
        || ngx_http_asyncx_metrics_init_main_conf(cf, &amcf->metrics)
           != NGX_OK)
    {
        return NULL;
    }

    ngx_http_asyncx_pipeline_blocks_init(&amcf->pipeline.blocks);

    ngx_str_set(&amcf->duration_unit, "s");

    return amcf;
}


static void *
ngx_http_asyncx_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_asyncx_loc_conf_t  *alcf;

    alcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_asyncx_loc_conf_t));
    if (alcf == NULL) {
        return NULL;
    }

    ngx_http_asyncx_executor_init_conf(&alcf->executor);
    ngx_http_asyncx_pipeline_init_conf(&alcf->pipeline);
    ngx_http_asyncx_offload_init_conf(&alcf->offload);
    ngx_http_asyncx_limit_init_conf(&alcf->limit);
    ngx_http_asyncx_sse_init_conf(&alcf->sse);

    return alcf;
}


static char *
ngx_http_asyncx_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_asyncx_loc_conf_t *prev = parent;
    ngx_http_asyncx_loc_conf_t *conf = child;

    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->noname) {
        /*
         * An "if" or "limit_except" block of a location.  None of the
         * module's directives may appear in it, and nginx runs the
         * location's content handler with the block's configuration
         * when the block applies: it is the location's, whole (the
         * handlers' own state, such as a pipeline's stages, is not
         * inherited by a merge).  A "limit_except" block has no
         * content handler of its own, so it gets the location's, as
         * proxy_pass does.
         */
        *conf = *prev;

        if (clcf->lmt_excpt && clcf->handler == NULL
            && conf->content_handler != NULL)
        {
            clcf->handler = ngx_http_asyncx_content_handler;
        }

        return NGX_CONF_OK;
    }

    if (conf->content_handler != NULL
        && clcf->handler == conf->content_handler)
    {
        clcf->handler = ngx_http_asyncx_content_handler;
    }

    if (ngx_http_asyncx_executor_merge_conf(cf, &prev->executor,
                                            &conf->executor)
        != NGX_CONF_OK
        || ngx_http_asyncx_pipeline_merge_conf(cf, &prev->pipeline,
                                               &conf->pipeline)
           != NGX_CONF_OK
        || ngx_http_asyncx_offload_merge_conf(cf, &prev->offload,
                                              &conf->offload)
           != NGX_CONF_OK
        || ngx_http_asyncx_limit_merge_conf(cf, &prev->limit, &conf->limit)
           != NGX_CONF_OK
        || ngx_http_asyncx_sse_merge_conf(cf, &prev->sse, &conf->sse)
           != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * Every location served by the module: its answers are made per request
 * and carry no validator, so nginx's not_modified filter must not turn
 * them into a 304 (after which a stream's events would still go out on
 * the connection) or a 412 (after a file was written or a hash made), as
 * it does not for the proxy module's answers.
 */

static ngx_int_t
ngx_http_asyncx_content_handler(ngx_http_request_t *r)
{
    ngx_http_asyncx_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);

    r->disable_not_modified = 1;

    return alcf->content_handler(r);
}


static ngx_int_t
ngx_http_asyncx_add_variables(ngx_conf_t *cf)
{
    /* the demo's hooks, before "asyncx_pipeline_answer" is read */
    if (ngx_http_asyncx_exercise_init(cf) != NGX_OK
        || ngx_http_asyncx_pipeline_add_variables(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return ngx_http_asyncx_limit_add_variables(cf);
}


/*
 * asyncx_status's sections, in the order of the answer's keys: the
 * renderer knows none of them by name.
 */

static ngx_http_asyncx_status_section_pt  ngx_http_asyncx_status_sections[] = {
    ngx_http_asyncx_executor_status,
    ngx_http_asyncx_pipeline_status,
    ngx_http_asyncx_mock_status,
    ngx_http_asyncx_limit_status_all,
    ngx_http_asyncx_sse_status
};


static ngx_int_t
ngx_http_asyncx_init(ngx_conf_t *cf)
{
    ngx_uint_t                    i;
    ngx_http_asyncx_main_conf_t  *amcf;

    for (i = 0; i < sizeof(ngx_http_asyncx_status_sections)
                    / sizeof(ngx_http_asyncx_status_section_pt); i++)
    {
        if (ngx_http_asyncx_status_add_section(cf,
                                    ngx_http_asyncx_status_sections[i])
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);

    /* before the limiter's phase handler: every zone named exists */
    if (ngx_http_asyncx_limit_check_refs(cf, &amcf->limit) != NGX_OK
        || ngx_http_asyncx_limit_init(cf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_asyncx_pipeline_init_filter(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_asyncx_pipeline_blocks_check(cf, &amcf->pipeline.blocks)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* last: every pool, pipeline and call has its series by now */
    return ngx_http_asyncx_metrics_init(cf);
}


static ngx_int_t
ngx_http_asyncx_init_module(ngx_cycle_t *cycle)
{
    return ngx_http_asyncx_limit_init_module(cycle);
}


static ngx_int_t
ngx_http_asyncx_init_process(ngx_cycle_t *cycle)
{
    ngx_http_asyncx_main_conf_t  *amcf;

    if (ngx_http_asyncx_stats_init_process(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_asyncx_module);

    if (amcf) {
        ngx_http_asyncx_pipeline_blocks_init_process(&amcf->pipeline.blocks,
                                                     cycle->log);
    }

    return ngx_http_asyncx_limit_init_process(cycle);
}


static void
ngx_http_asyncx_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_asyncx_main_conf_t  *amcf;

    amcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_asyncx_module);

    if (amcf) {
        ngx_http_asyncx_pipeline_blocks_exit_process(&amcf->pipeline.blocks);
    }

    ngx_http_asyncx_limit_exit_process(cycle);
    ngx_http_asyncx_stats_exit_process(cycle);
}
