
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_PIPELINE_BLOCK_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_PIPELINE_BLOCK_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * The pipelines' reserved request pool blocks (one per pipeline in
 * flight) and the blocks each worker keeps for the next pipelines.
 * The settings are asyncx_pipeline_blocks' (http level); the rest is
 * this worker's.
 */

typedef struct {
    ngx_uint_t                     keep;        /* blocks made at start */
    size_t                         max;         /* spare bytes kept */
    ngx_msec_t                     trim;        /* spares unused that long */
    ngx_uint_t                     set;         /* the directive was seen */
    ngx_str_t                      file;        /* where, for nginx -t */
    ngx_uint_t                     line;
    size_t                         kept_size;   /* a kept block's bytes */
    ngx_uint_t                     dropped;     /* shutting down: let go */

    /* made at the worker's start: one mapping, never freed */
    u_char                        *kept_start;
    u_char                        *kept_end;
    ngx_pool_t                    *kept;        /* free ones, by d.next */
    ngx_uint_t                     nkept;

    /* from the heap as pipelines need them, freed by the trim */
    ngx_pool_t                    *spare;       /* by d.next */
    ngx_uint_t                     nspare;
    size_t                         spare_size;  /* their bytes */
    ngx_uint_t                     unused;      /* fewest since trim */
    ngx_event_t                    trim_event;
} ngx_http_asyncx_pipeline_blocks_t;


void ngx_http_asyncx_pipeline_blocks_init(
    ngx_http_asyncx_pipeline_blocks_t *blocks);
char *ngx_http_asyncx_pipeline_blocks(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_asyncx_pipeline_blocks_need(
    ngx_http_asyncx_pipeline_blocks_t *blocks, size_t size);
ngx_int_t ngx_http_asyncx_pipeline_blocks_check(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_blocks_t *blocks);
void ngx_http_asyncx_pipeline_blocks_init_process(
    ngx_http_asyncx_pipeline_blocks_t *blocks, ngx_log_t *log);
void ngx_http_asyncx_pipeline_blocks_exit_process(
    ngx_http_asyncx_pipeline_blocks_t *blocks);
ngx_int_t ngx_http_asyncx_pipeline_block_reserve(
    ngx_http_asyncx_pipeline_blocks_t *blocks, ngx_pool_t *pool,
    size_t size, size_t first);


#endif /* _NGX_HTTP_ASYNCX_PIPELINE_BLOCK_H_INCLUDED_ */
