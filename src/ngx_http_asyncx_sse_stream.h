
/*
 * Copyright (C) asyncx authors
 */


#ifndef _NGX_HTTP_ASYNCX_SSE_STREAM_H_INCLUDED_
#define _NGX_HTTP_ASYNCX_SSE_STREAM_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx_executor.h"
#include "ngx_http_asyncx_sse_event.h"


typedef struct ngx_http_asyncx_sse_stream_s  ngx_http_asyncx_sse_stream_t;

/*
 * A source's steps, called by the shared write handler:
 *   job_done: formats what the job just done found into s->out:
 *             NGX_OK (send it), NGX_DECLINED (nothing to send),
 *             NGX_AGAIN (post the same step again) or NGX_ERROR;
 *   post:     posts the next job: NGX_OK, NGX_BUSY or NGX_ERROR;
 *   fail:     the next job could not be posted (rc NGX_BUSY or
 *             NGX_ERROR): logs it and sends the error event that ends
 *             the stream; returns what the request is finalized with.
 */

typedef struct {
    ngx_int_t  (*job_done)(ngx_http_asyncx_sse_stream_t *s);
    ngx_int_t  (*post)(ngx_http_asyncx_sse_stream_t *s);
    ngx_int_t  (*fail)(ngx_http_asyncx_sse_stream_t *s, ngx_int_t rc);
} ngx_http_asyncx_sse_stream_ops_t;


/*
 * What every asyncx_sse stream shares, whatever its source: the chain of
 * jobs with backpressure, the output, the heartbeat and the retry field.
 * A source embeds it in its ctx (s->data points back at that ctx).
 */

struct ngx_http_asyncx_sse_stream_s {
    ngx_http_request_t                  *request;
    void                                *data;
    ngx_http_asyncx_sse_stream_ops_t    *ops;
    ngx_uint_t                           mode;     /* of the counters */

    /* at most one job per pool (NGX_HTTP_ASYNCX_POOL_*); NULL: none */
    ngx_http_asyncx_job_t               *jobs[2];

    ngx_chain_t                          out;
    ngx_buf_t                            ping;
    ngx_chain_t                          ping_cl;
    ngx_event_t                          heartbeat;
    ngx_msec_t                           heartbeat_interval;  /* 0: off */
    ngx_msec_t                           retry;               /* 0: off */

    unsigned                             pending:1;   /* job's results */
    unsigned                             started:1;   /* counted open */
    unsigned                             done:1;      /* last event */
};


void ngx_http_asyncx_sse_stream_init(ngx_http_asyncx_sse_stream_t *s,
    ngx_http_request_t *r, void *data, ngx_http_asyncx_sse_stream_ops_t *ops);
ngx_int_t ngx_http_asyncx_sse_stream_start(ngx_http_asyncx_sse_stream_t *s);
ngx_chain_t *ngx_http_asyncx_sse_stream_event(ngx_http_asyncx_sse_stream_t *s,
    ngx_http_asyncx_sse_event_t *ev);
ngx_int_t ngx_http_asyncx_sse_stream_post(ngx_http_asyncx_sse_stream_t *s);
void ngx_http_asyncx_sse_stream_write(ngx_http_asyncx_sse_stream_t *s);
void ngx_http_asyncx_sse_stream_alive(ngx_http_asyncx_sse_stream_t *s);
void ngx_http_asyncx_sse_stream_release(ngx_http_asyncx_sse_stream_t *s);
ngx_int_t ngx_http_asyncx_sse_stream_close(ngx_http_asyncx_sse_stream_t *s);


#endif /* _NGX_HTTP_ASYNCX_SSE_STREAM_H_INCLUDED_ */
