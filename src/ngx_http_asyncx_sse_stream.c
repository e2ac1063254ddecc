
/*
 * Copyright (C) asyncx authors
 *
 * The event loop side every asyncx_sse stream shares: a chain of jobs,
 * each posted only once the socket took everything the one before it
 * produced (backpressure), the heartbeat while nothing else goes out,
 * and the retry field at the start.  The sources (the NDJSON file, the
 * demo's data set) bring their jobs and the formatting of their events.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_http.h"
#include "ngx_http_asyncx_sse_event.h"
#include "ngx_http_asyncx_sse_stream.h"


static ngx_int_t ngx_http_asyncx_sse_stream_retry(
    ngx_http_asyncx_sse_stream_t *s);
static void ngx_http_asyncx_sse_stream_heartbeat(ngx_event_t *ev);


/* the location's asyncx_sse settings; s is zeroed (in the source's ctx) */

void
ngx_http_asyncx_sse_stream_init(ngx_http_asyncx_sse_stream_t *s,
    ngx_http_request_t *r, void *data, ngx_http_asyncx_sse_stream_ops_t *ops)
{
    ngx_http_asyncx_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);

    s->request = r;
    s->data = data;
    s->ops = ops;
    s->mode = alcf->sse.mode;
    s->heartbeat_interval = alcf->sse.heartbeat;
    s->retry = alcf->sse.retry;

    s->heartbeat.handler = ngx_http_asyncx_sse_stream_heartbeat;
    s->heartbeat.data = s;
    s->heartbeat.log = r->connection->log;
    s->heartbeat.cancelable = 1;
}


/*
 * The stream is counted open, the header goes out, then the retry field
 * if asyncx_sse_retry is set, and the heartbeat starts.  NGX_OK,
 * NGX_AGAIN (output pending), NGX_ERROR or an HTTP status: what
 * ngx_http_send_header() returns.  From here on the source's cleanup
 * calls ngx_http_asyncx_sse_stream_close().
 */

ngx_int_t
ngx_http_asyncx_sse_stream_start(ngx_http_asyncx_sse_stream_t *s)
{
    ngx_int_t  rc;

    s->started = 1;

    ngx_http_asyncx_gauge_add(NGX_HTTP_ASYNCX_GAUGE_STREAMS, 1);
    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_SSE_TOTAL, 1);
    ngx_http_asyncx_metrics_stream(s->mode, NGX_HTTP_ASYNCX_STREAM_OPEN, 1);
    ngx_http_asyncx_metrics_stream(s->mode, NGX_HTTP_ASYNCX_STREAM_STARTED, 1);

    rc = ngx_http_asyncx_send_event_stream_header(s->request);

    if (rc == NGX_ERROR || rc > NGX_OK) {
        return rc;
    }

    if (s->retry) {
        rc = ngx_http_asyncx_sse_stream_retry(s);

        if (rc == NGX_ERROR) {
            return rc;
        }
    }

    ngx_http_asyncx_sse_stream_alive(s);

    return rc;
}


/* "retry: <ms>" in a block of its own: it dispatches no event */

static ngx_int_t
ngx_http_asyncx_sse_stream_retry(ngx_http_asyncx_sse_stream_t *s)
{
    ngx_chain_t                  *cl;
    ngx_http_asyncx_sse_event_t   ev;

    ngx_memzero(&ev, sizeof(ngx_http_asyncx_sse_event_t));
    ev.retry = s->retry;

    cl = ngx_http_asyncx_sse_stream_event(s, &ev);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_output_filter(s->request, cl);
}


/* one event formatted on the event loop, flushed when it is sent */

ngx_chain_t *
ngx_http_asyncx_sse_stream_event(ngx_http_asyncx_sse_stream_t *s,
    ngx_http_asyncx_sse_event_t *ev)
{
    u_char       *p;
    ngx_buf_t    *b;
    ngx_pool_t   *pool;
    ngx_chain_t  *cl;

    pool = s->request->pool;

    p = ngx_pnalloc(pool, ngx_http_asyncx_sse_event_len(ev));
    if (p == NULL) {
        return NULL;
    }

    b = ngx_calloc_buf(pool);
    if (b == NULL) {
        return NULL;
    }

    cl = ngx_alloc_chain_link(pool);
    if (cl == NULL) {
        return NULL;
    }

    b->pos = p;
    b->last = ngx_http_asyncx_sse_event_write(p, ev);
    b->memory = 1;
    b->flush = 1;

    cl->buf = b;
    cl->next = NULL;

    return cl;
}


/* posts the source's next job; its results are handled when it is done */

ngx_int_t
ngx_http_asyncx_sse_stream_post(ngx_http_asyncx_sse_stream_t *s)
{
    ngx_int_t  rc;

    rc = s->ops->post(s);

    if (rc == NGX_OK) {
        s->pending = 1;
    }

    return rc;
}


/*
 * The stream's one state machine.  It runs when a job is done and when
 * the socket becomes writable again: it sends what the job found, waits
 * until the output has drained (backpressure), then posts the next job
 * or ends the stream.
 */

void
ngx_http_asyncx_sse_stream_write(ngx_http_asyncx_sse_stream_t *s)
{
    ngx_int_t                  rc;
    ngx_uint_t                 i;
    ngx_event_t               *wev;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_core_loc_conf_t  *clcf;

    r = s->request;
    c = r->connection;
    wev = c->write;

    for (i = 0; i < 2; i++) {
        if (s->jobs[i] && s->jobs[i]->running) {
            /* a socket event while a thread works: nothing to do yet */
            return;
        }
    }

    if (ngx_http_asyncx_event_stream_gone(r, "asyncx sse") != NGX_OK) {
        return;
    }

    if (s->pending) {
        s->pending = 0;

        rc = s->ops->job_done(s);

        if (rc == NGX_ERROR) {
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }

        if (rc == NGX_AGAIN || rc == NGX_DECLINED) {
            /* the same step again, or nothing to send from this one */
            goto next;
        }

        if (s->done) {
            /* the last buffer went out; nginx finishes sending it */
            ngx_http_asyncx_sse_stream_release(s);
            ngx_http_finalize_request(r, ngx_http_output_filter(r, &s->out));
            return;
        }

        /* the stream is alive: the heartbeat waits a full interval again */
        ngx_http_asyncx_sse_stream_alive(s);

        rc = ngx_http_output_filter(r, &s->out);

    } else {
        rc = ngx_http_output_filter(r, NULL);
    }

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (r->out || c->buffered) {
        /* the client reads slower than we produce: no new job */
        if (!wev->delayed) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_ERROR);
        }

        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

next:

    rc = ngx_http_asyncx_sse_stream_post(s);

    if (rc == NGX_OK) {
        return;
    }

    /* the header is out: the client learns it from an error event */
    ngx_http_finalize_request(r, s->ops->fail(s, rc));
}


/* (re)arms the heartbeat; asyncx_sse_heartbeat 0 is "off": no timer */

void
ngx_http_asyncx_sse_stream_alive(ngx_http_asyncx_sse_stream_t *s)
{
    if (s->heartbeat_interval && !s->done) {
        ngx_add_timer(&s->heartbeat, s->heartbeat_interval);
    }
}


/* on every path that ends the stream: the last event, a failure, cleanup */

void
ngx_http_asyncx_sse_stream_release(ngx_http_asyncx_sse_stream_t *s)
{
    if (s->heartbeat.timer_set) {
        ngx_del_timer(&s->heartbeat);
    }
}


/*
 * The source's pool cleanup: the heartbeat goes, a started stream is
 * counted closed.  NGX_DECLINED: the client left before the last event
 * (counted aborted; the source logs it with its own context).
 */

ngx_int_t
ngx_http_asyncx_sse_stream_close(ngx_http_asyncx_sse_stream_t *s)
{
    ngx_http_asyncx_sse_stream_release(s);

    if (!s->started) {
        return NGX_OK;
    }

    ngx_http_asyncx_gauge_add(NGX_HTTP_ASYNCX_GAUGE_STREAMS, -1);
    ngx_http_asyncx_metrics_stream(s->mode, NGX_HTTP_ASYNCX_STREAM_OPEN, -1);

    if (s->done) {
        return NGX_OK;
    }

    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_SSE_ABORTED, 1);
    ngx_http_asyncx_metrics_stream(s->mode, NGX_HTTP_ASYNCX_STREAM_ABORTED, 1);

    return NGX_DECLINED;
}


/* ": keepalive" while nothing else goes out, so proxies keep the stream */

static void
ngx_http_asyncx_sse_stream_heartbeat(ngx_event_t *ev)
{
    ngx_http_request_t            *r;
    ngx_http_asyncx_sse_stream_t  *s;

    s = ev->data;
    r = s->request;

    ngx_http_set_log_request(r->connection->log, r);

    if (s->done || r->connection->error) {
        return;
    }

    ngx_add_timer(ev, s->heartbeat_interval);

    ngx_http_asyncx_event_stream_keepalive(r, &s->ping, &s->ping_cl);
}
