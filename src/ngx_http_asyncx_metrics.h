
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_METRICS_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx_metrics_util.h"
#include "ngx_http_asyncx_pipeline_util.h"


/*
 * Labelled metrics for the Prometheus text format: one series per thread
 * pool, pipeline location, call, limit zone and stream kind, each in the
 * shared zone "asyncx_metrics" so every worker adds to the same numbers
 * (atomics only) and they survive a reload (series are matched by kind
 * and name).  The unlabelled counters of asyncx_stats are read as they
 * are: this file adds, it does not move them.
 */


typedef enum {
    NGX_HTTP_ASYNCX_SERIES_POOL = 0,
    NGX_HTTP_ASYNCX_SERIES_PIPELINE,
    NGX_HTTP_ASYNCX_SERIES_CALL,
    NGX_HTTP_ASYNCX_SERIES_LIMIT,
    NGX_HTTP_ASYNCX_SERIES_STREAM,
    NGX_HTTP_ASYNCX_SERIES_KINDS
} ngx_http_asyncx_series_kind_e;


/* every kind of an answer's calls: invalid_uri and abandoned counted too */
#define NGX_HTTP_ASYNCX_CALL_KINDS  (NGX_HTTP_ASYNCX_CALL_ABANDONED + 1)


typedef struct {
    ngx_http_asyncx_hist_t         queue_wait;
    ngx_http_asyncx_hist_t         run;
} ngx_http_asyncx_pool_metrics_t;


typedef struct {
    ngx_atomic_t                   requests;
    ngx_atomic_t                   failed;
    ngx_atomic_t                   aborted;
    ngx_http_asyncx_hist_t         duration;
} ngx_http_asyncx_pipeline_metrics_t;


typedef struct {
    ngx_atomic_t                   requests;
    ngx_atomic_t                   failures[NGX_HTTP_ASYNCX_CALL_KINDS];
    ngx_http_asyncx_hist_t         duration;
} ngx_http_asyncx_call_metrics_t;


/*
 * A limit zone's counters are the limiter's own (read through its JSON);
 * the wait histogram is here: each zone registers a series and the
 * limiter calls ngx_http_asyncx_metrics_limit_wait() at each admission.
 */

typedef struct {
    ngx_http_asyncx_hist_t         wait;
} ngx_http_asyncx_limit_metrics_t;


typedef enum {
    NGX_HTTP_ASYNCX_STREAM_OPEN = 0,      /* a gauge, kept per worker */
    NGX_HTTP_ASYNCX_STREAM_STARTED,
    NGX_HTTP_ASYNCX_STREAM_COMPLETED,
    NGX_HTTP_ASYNCX_STREAM_ABORTED,
    NGX_HTTP_ASYNCX_STREAM_ERRORS,
    NGX_HTTP_ASYNCX_STREAM_EVENTS,
    NGX_HTTP_ASYNCX_STREAM_FIELDS
} ngx_http_asyncx_stream_field_e;


/*
 * Open streams are a gauge of asyncx_stats, kept per worker there (a
 * worker killed with SIGKILL never closes its streams, and its slot is
 * dropped): field[NGX_HTTP_ASYNCX_STREAM_OPEN] is not used.
 */

typedef struct {
    ngx_atomic_t                   field[NGX_HTTP_ASYNCX_STREAM_FIELDS];
} ngx_http_asyncx_stream_metrics_t;


/* a series as the configuration knows it; sh points into the zone */

typedef struct {
    ngx_uint_t                     kind;
    ngx_str_t                      name;     /* pool, location, zone, kind */
    ngx_str_t                      call;     /* calls only */
    void                          *sh;       /* NULL: not counted */
} ngx_http_asyncx_series_t;


/* the stream kinds are asyncx_sse's modes: search, transform, aggregate */
#define NGX_HTTP_ASYNCX_STREAM_KINDS  4


typedef struct {
    ngx_shm_zone_t                *zone;
    ngx_array_t                    series;   /* ngx_http_asyncx_series_t * */
    ngx_http_asyncx_series_t      *streams[NGX_HTTP_ASYNCX_STREAM_KINDS];
    ngx_queue_t                   *sh;       /* the zone's list of series */
} ngx_http_asyncx_metrics_main_conf_t;


ngx_int_t ngx_http_asyncx_metrics_init_main_conf(ngx_conf_t *cf,
    ngx_http_asyncx_metrics_main_conf_t *mmcf);
ngx_http_asyncx_series_t *ngx_http_asyncx_metrics_series(ngx_conf_t *cf,
    ngx_uint_t kind, ngx_str_t *name, ngx_str_t *call);
ngx_int_t ngx_http_asyncx_metrics_init(ngx_conf_t *cf);

void ngx_http_asyncx_metrics_job(ngx_http_asyncx_series_t *s,
    uint64_t queued_usec, uint64_t run_usec);
void ngx_http_asyncx_metrics_pipeline_start(ngx_http_asyncx_series_t *s);
void ngx_http_asyncx_metrics_pipeline_end(ngx_http_asyncx_series_t *s,
    uint64_t usec, ngx_uint_t failed);
void ngx_http_asyncx_metrics_pipeline_aborted(ngx_http_asyncx_series_t *s);
void ngx_http_asyncx_metrics_call_start(ngx_http_asyncx_series_t *s);
void ngx_http_asyncx_metrics_call_end(ngx_http_asyncx_series_t *s,
    ngx_uint_t kind, uint64_t usec);
void ngx_http_asyncx_metrics_limit_wait(ngx_http_asyncx_series_t *s,
    uint64_t wait_usec);
void ngx_http_asyncx_metrics_stream(ngx_uint_t mode, ngx_uint_t field,
    ngx_atomic_int_t delta);


#endif /* _NGX_HTTP_ASYNCX_METRICS_H_INCLUDED_ */
