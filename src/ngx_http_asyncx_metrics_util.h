
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_METRICS_UTIL_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_METRICS_UTIL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/*
 * Pure pieces of the metrics: latency histograms in shared memory and
 * the Prometheus text format's number and label spelling.  No nginx .c
 * function is called: t/unit links them alone.
 */


/* "18446744073709.551615" */
#define NGX_HTTP_ASYNCX_PROM_SECONDS_LEN  (NGX_INT64_LEN + 8)

/* finite upper bounds of the largest layout; one more slot is +Inf */
#define NGX_HTTP_ASYNCX_HIST_BOUNDS  16


/* one layout per measure: buckets chosen for what it measures */
typedef enum {
    NGX_HTTP_ASYNCX_HIST_QUEUE_WAIT = 0,  /* a thread task in its queue */
    NGX_HTTP_ASYNCX_HIST_RUN,             /* a thread task in its thread */
    NGX_HTTP_ASYNCX_HIST_PIPELINE,        /* a whole pipeline request */
    NGX_HTTP_ASYNCX_HIST_CALL,            /* one service call */
    NGX_HTTP_ASYNCX_HIST_LIMIT_WAIT,      /* a request waiting for its turn */
    NGX_HTTP_ASYNCX_HIST_LAYOUTS
} ngx_http_asyncx_hist_layout_e;


/*
 * Every worker and thread adds to the same counters with atomics only:
 * no lock on the hot path.  Buckets are stored non-cumulative and summed
 * when rendered, so one observation is two atomic adds.
 */

typedef struct {
    ngx_atomic_t                   bucket[NGX_HTTP_ASYNCX_HIST_BOUNDS + 1];
    ngx_atomic_t                   sum;          /* microseconds */
} ngx_http_asyncx_hist_t;


typedef struct {
    const uint64_t                *le;           /* microseconds, ascending */
    ngx_uint_t                     n;
} ngx_http_asyncx_hist_bounds_t;


const ngx_http_asyncx_hist_bounds_t *ngx_http_asyncx_hist_bounds(
    ngx_uint_t layout);
ngx_uint_t ngx_http_asyncx_hist_index(ngx_uint_t layout, uint64_t usec);
void ngx_http_asyncx_hist_observe(ngx_http_asyncx_hist_t *h,
    ngx_uint_t layout, uint64_t usec);

u_char *ngx_http_asyncx_prom_seconds(u_char *p, u_char *last, uint64_t usec);
size_t ngx_http_asyncx_prom_label_len(u_char *src, size_t len);
u_char *ngx_http_asyncx_prom_label(u_char *dst, u_char *src, size_t len);


#endif /* _NGX_HTTP_ASYNCX_METRICS_UTIL_H_INCLUDED_ */
