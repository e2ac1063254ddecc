
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_STATS_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_STATS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_HTTP_ASYNCX_MAX_POOLS      8
#define NGX_HTTP_ASYNCX_POOL_NAME_LEN  32

/* one slot per nginx process at most (NGX_MAX_PROCESSES), plus a spare */
#define NGX_HTTP_ASYNCX_MAX_WORKERS    1024


/*
 * Module-wide counters live in one small shared zone so that the status
 * endpoint shows every worker's work and the numbers survive a reload.
 * Updated with atomics only: thread tasks touch them too.
 *
 * Totals only grow and are shared.  What is in flight (gauges) is kept
 * per worker process: a worker killed with work in flight never takes
 * it back, so its slot is dropped once the process is gone.
 */

/*
 * Each subsystem declares its own set of counters in its own header,
 * numbered from NGX_HTTP_ASYNCX_STATS_SET(its set); this leaf only
 * stores them.
 */

typedef enum {
    NGX_HTTP_ASYNCX_STATS_PIPELINE = 0,
    NGX_HTTP_ASYNCX_STATS_DEMO,
    NGX_HTTP_ASYNCX_STATS_SSE,
    NGX_HTTP_ASYNCX_STATS_SETS
} ngx_http_asyncx_stats_set_e;

#define NGX_HTTP_ASYNCX_STATS_SET_SIZE  8
#define NGX_HTTP_ASYNCX_STATS_SET(set)  ((set) * NGX_HTTP_ASYNCX_STATS_SET_SIZE)

#define NGX_HTTP_ASYNCX_STATS_N                                               \
    NGX_HTTP_ASYNCX_STATS_SET(NGX_HTTP_ASYNCX_STATS_SETS)

/* a set that outgrows its slots does not compile */
#define NGX_HTTP_ASYNCX_STATS_CHECK(set, end)                                 \
    typedef char  ngx_http_asyncx_stats_check_##set[                          \
        ((end) <= NGX_HTTP_ASYNCX_STATS_SET((set) + 1)) ? 1 : -1]


enum {
    NGX_HTTP_ASYNCX_GAUGE_PIPELINES = 0,
    NGX_HTTP_ASYNCX_GAUGE_MOCKS,
    NGX_HTTP_ASYNCX_GAUGE_STREAMS,

    /* jobs of each pool (indexed by its slot in pools[]) */
    NGX_HTTP_ASYNCX_GAUGE_QUEUED,
    NGX_HTTP_ASYNCX_GAUGE_RUNNING =
        NGX_HTTP_ASYNCX_GAUGE_QUEUED + NGX_HTTP_ASYNCX_MAX_POOLS,

    /* open streams of each kind (indexed by asyncx_sse's mode) */
    NGX_HTTP_ASYNCX_GAUGE_STREAM_KIND =
        NGX_HTTP_ASYNCX_GAUGE_RUNNING + NGX_HTTP_ASYNCX_MAX_POOLS,

    NGX_HTTP_ASYNCX_GAUGE_N = NGX_HTTP_ASYNCX_GAUGE_STREAM_KIND + 4
};


typedef struct {
    u_char                 name[NGX_HTTP_ASYNCX_POOL_NAME_LEN];
    ngx_atomic_t           posted;
    ngx_atomic_t           started;
    ngx_atomic_t           completed;
    ngx_atomic_t           failed;
    ngx_atomic_t           rejected;
    ngx_atomic_t           cancelled;  /* skipped or stopped: its
                                          client left */
} ngx_http_asyncx_pool_stats_t;


/* claimed and dropped under the zone's mutex, counted by its owner only */
typedef struct {
    ngx_atomic_t                     pid;        /* 0: free */
    ngx_atomic_t                     gauges[NGX_HTTP_ASYNCX_GAUGE_N];
} ngx_http_asyncx_worker_stats_t;


typedef struct {
    ngx_http_asyncx_pool_stats_t     pools[NGX_HTTP_ASYNCX_MAX_POOLS];
    ngx_atomic_t                     counters[NGX_HTTP_ASYNCX_STATS_N];

    /* the last one is shared by processes that found no free slot */
    ngx_http_asyncx_worker_stats_t   workers[NGX_HTTP_ASYNCX_MAX_WORKERS + 1];
} ngx_http_asyncx_stats_t;


typedef struct {
    ngx_shm_zone_t                  *zone;
    ngx_http_asyncx_stats_t         *sh;
    ngx_http_asyncx_worker_stats_t  *worker;     /* this process's slot */
    ngx_array_t                      pool_names; /* ngx_str_t */
    ngx_uint_t                       pool_slot[NGX_HTTP_ASYNCX_MAX_POOLS];
} ngx_http_asyncx_stats_main_conf_t;


ngx_int_t ngx_http_asyncx_stats_init_main_conf(ngx_conf_t *cf,
    ngx_http_asyncx_stats_main_conf_t *smcf);
ngx_int_t ngx_http_asyncx_stats_add_pool(ngx_conf_t *cf,
    ngx_http_asyncx_stats_main_conf_t *smcf, ngx_str_t *name);
ngx_int_t ngx_http_asyncx_stats_init_process(ngx_cycle_t *cycle);
void ngx_http_asyncx_stats_exit_process(ngx_cycle_t *cycle);
ngx_http_asyncx_stats_t *ngx_http_asyncx_stats(void);
void ngx_http_asyncx_stat_add(ngx_uint_t counter, ngx_atomic_int_t delta);
ngx_atomic_t *ngx_http_asyncx_gauge_ptr(ngx_uint_t gauge);
void ngx_http_asyncx_gauge_add(ngx_uint_t gauge, ngx_atomic_int_t delta);
ngx_atomic_uint_t ngx_http_asyncx_gauge(ngx_uint_t gauge);

ngx_atomic_uint_t ngx_http_asyncx_stat(ngx_uint_t counter);
void ngx_http_asyncx_stats_reclaim_dead(ngx_http_request_t *r);


#endif /* _NGX_HTTP_ASYNCX_STATS_H_INCLUDED_ */
