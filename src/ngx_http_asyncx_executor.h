
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_EXECUTOR_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_EXECUTOR_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx_stats.h"
#include "ngx_http_asyncx_metrics.h"


/*
 * The executor hands blocking or CPU-heavy work to nginx thread pools.
 * Two roles, as the exercise's AsyncExecutor has: an I/O pool
 * (ThreadPoolExecutor) and a CPU pool (ProcessPoolExecutor).
 */

typedef enum {
    NGX_HTTP_ASYNCX_POOL_IO = 0,
    NGX_HTTP_ASYNCX_POOL_CPU
} ngx_http_asyncx_pool_role_e;


/* runs in a pool thread: library calls only, no nginx pools or logs */
typedef ngx_int_t (*ngx_http_asyncx_job_run_pt)(void *data);


typedef struct {
    ngx_http_request_t            *request;
    ngx_thread_task_t             *task;
    ngx_thread_pool_t             *pool;
    ngx_http_asyncx_pool_stats_t  *stats;
    ngx_http_asyncx_series_t      *metrics;     /* queue and run times */
    ngx_atomic_t                  *gauge_queued;   /* this worker's */
    ngx_atomic_t                  *gauge_running;
    ngx_http_asyncx_job_run_pt     run;
    void                          *data;
    ngx_int_t                      rc;          /* what run() returned */
    uint64_t                       posted_at;   /* usec, monotonic */
    uint64_t                       started_at;
    uint64_t                       finished_at;
    ngx_atomic_t                   in_thread;   /* set by the thread */
    ngx_uint_t                     freed_large; /* set by run(): trim later */
    ngx_atomic_t                   cancelled;   /* set by the loop, read
                                                   by run() */
    unsigned                       running:1;
} ngx_http_asyncx_job_t;


/* run() was not called: the client left while the job was queued */
#define NGX_HTTP_ASYNCX_JOB_SKIPPED  NGX_ABORT

/*
 * What run() returns when it stopped early because the client left
 * while it ran: its long loops look at the job's "cancelled" between
 * texts, records or lines (a plain load of a volatile word, as nginx
 * reads its own atomics).  Counted as cancelled, not failed; the
 * results are dropped with the request.
 */
#define NGX_HTTP_ASYNCX_JOB_STOPPED  NGX_DONE

#define ngx_http_asyncx_job_cancelled(job)  ((job)->cancelled != 0)


typedef struct {
    ngx_str_t                      io_name;
    ngx_str_t                      cpu_name;
    ngx_thread_pool_t             *io;
    ngx_thread_pool_t             *cpu;
    ngx_uint_t                     io_index;
    ngx_uint_t                     cpu_index;
    ngx_http_asyncx_series_t      *io_metrics;
    ngx_http_asyncx_series_t      *cpu_metrics;
    ngx_uint_t                     required;
} ngx_http_asyncx_executor_conf_t;


/*
 * A large document's tree is freed into the pool thread's malloc arena,
 * which keeps the pages.  They go back to the system (malloc_trim()) once
 * the worker's pools had no job for a while, not after each document:
 * the next document would fault every page in again.
 */
typedef struct {
    ngx_event_t                    trim;        /* the idle timer */
    ngx_thread_task_t             *trim_task;
    ngx_thread_pool_t             *trim_pool;   /* the last large job's */
    ngx_msec_t                     trim_wanted; /* since when */
    unsigned                       trim_posted:1;
} ngx_http_asyncx_executor_main_conf_t;


ngx_int_t ngx_http_asyncx_executor_init_main_conf(ngx_conf_t *cf,
    ngx_http_asyncx_executor_main_conf_t *emcf);
void ngx_http_asyncx_executor_init_conf(ngx_http_asyncx_executor_conf_t *conf);
char *ngx_http_asyncx_executor_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_executor_conf_t *prev,
    ngx_http_asyncx_executor_conf_t *conf);
void ngx_http_asyncx_executor_require(ngx_http_asyncx_executor_conf_t *conf);
char *ngx_http_asyncx_thread_pools(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

ngx_http_asyncx_job_t *ngx_http_asyncx_job_create(ngx_http_request_t *r,
    ngx_http_asyncx_pool_role_e role);
ngx_int_t ngx_http_asyncx_job_post(ngx_http_asyncx_job_t *job,
    ngx_http_asyncx_job_run_pt run, void *data);
ngx_int_t ngx_http_asyncx_job_reject(ngx_http_request_t *r);
ngx_int_t ngx_http_asyncx_job_skip_if_client_leaves(
    ngx_http_asyncx_job_t *job);

ngx_int_t ngx_http_asyncx_executor_status(ngx_http_request_t *r,
    struct cJSON *root);


#endif /* _NGX_HTTP_ASYNCX_EXECUTOR_H_INCLUDED_ */
