
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_LIMIT_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_LIMIT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


typedef struct ngx_http_asyncx_limit_ctx_s  ngx_http_asyncx_limit_ctx_t;
typedef struct ngx_http_asyncx_limit_test_ctx_s
    ngx_http_asyncx_limit_test_ctx_t;
typedef struct ngx_http_asyncx_limit_test_conf_s
    ngx_http_asyncx_limit_test_conf_t;


typedef struct {
    ngx_array_t                   *zones;       /* ngx_shm_zone_t *, or NULL */
    ngx_uint_t                     status_rejected;
    ngx_uint_t                     status_timeout;
    ngx_uint_t                     log_level;
    ngx_flag_t                     dry_run;
    ngx_http_asyncx_limit_test_conf_t  *test;   /* _zone_status and _test */
} ngx_http_asyncx_limit_conf_t;


/*
 * A hook of asyncx_limit_test's answer: adds members that describe the
 * run (the zone's concurrency, its rate in requests per 1000 s, the
 * run's time).  NGX_OK or NGX_ERROR.
 */

typedef ngx_int_t (*ngx_http_asyncx_limit_describe_pt)(struct cJSON *root,
    ngx_uint_t concurrency, uint64_t rate, uint64_t usec);


typedef struct {
    ngx_array_t                    zones;       /* ngx_shm_zone_t *, declared */
    ngx_array_t                    refs;        /* ngx_shm_zone_t *, used */
    ngx_connection_t              *wake;        /* this worker's wake-ups */
    ngx_http_asyncx_limit_describe_pt   describe_test;
} ngx_http_asyncx_limit_main_conf_t;


void ngx_http_asyncx_limit_init_conf(ngx_http_asyncx_limit_conf_t *conf);
char *ngx_http_asyncx_limit_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_limit_conf_t *prev, ngx_http_asyncx_limit_conf_t *conf);
ngx_int_t ngx_http_asyncx_limit_check_refs(ngx_conf_t *cf,
    ngx_http_asyncx_limit_main_conf_t *lmcf);
ngx_int_t ngx_http_asyncx_limit_init(ngx_conf_t *cf);
ngx_int_t ngx_http_asyncx_limit_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_asyncx_limit_init_module(ngx_cycle_t *cycle);
ngx_int_t ngx_http_asyncx_limit_init_process(ngx_cycle_t *cycle);
void ngx_http_asyncx_limit_exit_process(ngx_cycle_t *cycle);

char *ngx_http_asyncx_limit_zone(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_asyncx_limit(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
char *ngx_http_asyncx_limit_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_asyncx_limit_log_level(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_asyncx_limit_zone_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_int_t ngx_http_asyncx_limit_status_all(ngx_http_request_t *r,
    struct cJSON *root);


#endif /* _NGX_HTTP_ASYNCX_LIMIT_H_INCLUDED_ */
