
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_STATUS_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_STATUS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>


#define NGX_HTTP_ASYNCX_MAX_POOLS      8
#define NGX_HTTP_ASYNCX_POOL_NAME_LEN  32
#define NGX_HTTP_ASYNCX_MAX_COUNTERS   64


/*
 * Module-wide counters live in one small shared zone so that the status
 * endpoint shows every worker's work and the numbers survive a reload.
 * Updated with atomics only: thread tasks touch them too.
 */

enum {
    NGX_HTTP_ASYNCX_STAT_PIPELINE_ACTIVE = 0,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_TOTAL,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_FAILED,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_CALLS,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_CALL_ERRORS,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_ABORTED,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_MOCK_ACTIVE,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_MOCK_TOTAL,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_RETRIES,
    NGX_HTTP_ASYNCX_STAT_PIPELINE_TIMED_OUT,

    NGX_HTTP_ASYNCX_STAT_SSE_ACTIVE,
    NGX_HTTP_ASYNCX_STAT_SSE_TOTAL,
    NGX_HTTP_ASYNCX_STAT_SSE_COMPLETED,
    NGX_HTTP_ASYNCX_STAT_SSE_ABORTED,
    NGX_HTTP_ASYNCX_STAT_SSE_ERRORS,
    NGX_HTTP_ASYNCX_STAT_SSE_EVENTS,

    NGX_HTTP_ASYNCX_STAT_N
};


typedef struct {
    u_char                 name[NGX_HTTP_ASYNCX_POOL_NAME_LEN];
    ngx_atomic_t           posted;
    ngx_atomic_t           started;
    ngx_atomic_t           completed;
    ngx_atomic_t           failed;
    ngx_atomic_t           rejected;
} ngx_http_asyncx_pool_stats_t;


typedef struct {
    ngx_http_asyncx_pool_stats_t  pools[NGX_HTTP_ASYNCX_MAX_POOLS];
    ngx_atomic_t                  counters[NGX_HTTP_ASYNCX_MAX_COUNTERS];
} ngx_http_asyncx_stats_t;


typedef struct {
    ngx_shm_zone_t              *zone;
    ngx_http_asyncx_stats_t     *sh;
    ngx_array_t                  pool_names;     /* ngx_str_t */
    ngx_uint_t                   pool_slot[NGX_HTTP_ASYNCX_MAX_POOLS];
} ngx_http_asyncx_status_main_conf_t;


ngx_int_t ngx_http_asyncx_status_init_main_conf(ngx_conf_t *cf,
    ngx_http_asyncx_status_main_conf_t *smcf);
ngx_int_t ngx_http_asyncx_status_add_pool(ngx_conf_t *cf,
    ngx_http_asyncx_status_main_conf_t *smcf, ngx_str_t *name);
ngx_http_asyncx_stats_t *ngx_http_asyncx_stats(void);
void ngx_http_asyncx_stat_add(ngx_uint_t counter, ngx_atomic_int_t delta);

char *ngx_http_asyncx_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);


#endif /* _NGX_HTTP_ASYNCX_STATUS_H_INCLUDED_ */
