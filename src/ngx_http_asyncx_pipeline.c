
/*
 * Copyright (C) asyncx authors
 *
 * Staged service calls (exercise problem 1): the calls of one stage run
 * as concurrent in-memory subrequests; the next stage starts when all of
 * them have answered, failed or timed out.  Nothing blocks: subrequests,
 * call timers and posted-request wake-ups only.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_json.h"
#include "ngx_http_asyncx_http.h"
#include "ngx_http_asyncx_pipeline_json.h"


static ngx_int_t ngx_http_asyncx_pipeline_handler(ngx_http_request_t *r);
static void ngx_http_asyncx_pipeline_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_pipeline_read_body(ngx_http_request_t *r,
    ngx_http_asyncx_pipeline_ctx_t *ctx, size_t *len,
    ngx_http_asyncx_json_info_t *info);
static ngx_uint_t ngx_http_asyncx_pipeline_body_too_large(
    ngx_http_request_t *r, size_t len);
static void ngx_http_asyncx_pipeline_wake(ngx_http_request_t *r);
static void ngx_http_asyncx_pipeline_send_rest(ngx_http_request_t *r);
static void ngx_http_asyncx_pipeline_close(ngx_http_request_t *r);
static void ngx_http_asyncx_pipeline_linger(ngx_connection_t *c);
static void ngx_http_asyncx_pipeline_linger_handler(ngx_event_t *rev);
static void ngx_http_asyncx_pipeline_end(ngx_http_request_t *r);
static void ngx_http_asyncx_pipeline_run(ngx_http_asyncx_pipeline_ctx_t *ctx);
static void ngx_http_asyncx_pipeline_timeout(ngx_event_t *ev);
static void ngx_http_asyncx_pipeline_finish(
    ngx_http_asyncx_pipeline_ctx_t *ctx);
static ngx_int_t ngx_http_asyncx_pipeline_server_timing(
    ngx_http_asyncx_pipeline_ctx_t *ctx);
static u_char *ngx_http_asyncx_pipeline_timing_desc(u_char *p, u_char *last,
    ngx_str_t *name);
static void ngx_http_asyncx_pipeline_cleanup(void *data);



/* requests */


char *
ngx_http_asyncx_pipeline(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    char                      *rv;
    ngx_http_core_loc_conf_t  *clcf;

    rv = ngx_http_asyncx_conf_set_handler(cf,
                                          ngx_http_asyncx_pipeline_handler,
                                          &alcf->content_handler);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    alcf->pipeline.enabled = 1;
    alcf->pipeline.location = clcf->name;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_asyncx_pipeline_handler(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_str_t                        mode;
    ngx_http_asyncx_ctx_t           *actx;
    ngx_http_asyncx_loc_conf_t      *alcf;
    ngx_http_asyncx_pipeline_ctx_t  *ctx;

    if (r != r->main) {
        return ngx_http_asyncx_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                          NGX_LOG_ERR,
                                          "a pipeline cannot run in a "
                                          "subrequest");
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD|NGX_HTTP_POST))) {
        if (ngx_http_asyncx_set_allow(r, NGX_HTTP_GET|NGX_HTTP_HEAD
                                         |NGX_HTTP_POST)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_asyncx_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                          NGX_LOG_INFO,
                                          "method not allowed, use POST "
                                          "or GET");
    }

    alcf = ngx_http_get_module_loc_conf(r, ngx_http_asyncx_module);

    actx = ngx_http_asyncx_get_ctx(r);
    if (actx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_asyncx_pipeline_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->conf = &alcf->pipeline;

    /* the client chooses the mode only where the operator allows it */
    rc = ctx->conf->mode_arg ? ngx_http_asyncx_arg(r, "mode", &mode)
                             : NGX_DECLINED;

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_OK) {
        if (mode.len == sizeof("sequential") - 1
            && ngx_strncmp(mode.data, "sequential", mode.len) == 0)
        {
            ctx->sequential = 1;

        } else if (mode.len != sizeof("parallel") - 1
                   || ngx_strncmp(mode.data, "parallel", mode.len) != 0)
        {
            if (ngx_http_asyncx_quote(r->pool, mode.data, mode.len, 0,
                                      &mode)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              NGX_LOG_INFO,
                                              "invalid mode \"%V\", use "
                                              "parallel or sequential",
                                              &mode);
        }
    }

    actx->pipeline = ctx;

    /* refused before any of it is read: no "100 Continue" invites it */
    if (r->headers_in.content_length_n > 0
        && ngx_http_asyncx_pipeline_body_too_large(r,
                                   (size_t) r->headers_in.content_length_n))
    {
        return ngx_http_asyncx_send_error(r,
                                          NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                          NGX_LOG_INFO,
                                          "request body of %O bytes does "
                                          "not fit client_body_buffer_size",
                                          r->headers_in.content_length_n);
    }

    rc = ngx_http_read_client_request_body(r,
                                        ngx_http_asyncx_pipeline_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_asyncx_pipeline_body_handler(ngx_http_request_t *r)
{
    size_t                                len;
    ngx_int_t                             rc;
    ngx_str_t                             bad;
    ngx_uint_t                            nstages;
    ngx_pool_cleanup_t                   *cln;
    ngx_http_asyncx_pipeline_ctx_t       *ctx;
    ngx_http_asyncx_pipeline_conf_t      *pcf;
    ngx_http_asyncx_json_info_t           info;

    ctx = ngx_http_asyncx_get_ctx(r)->pipeline;
    pcf = ctx->conf;

    rc = ngx_http_asyncx_pipeline_read_body(r, ctx, &len, &info);

    if (rc == NGX_HTTP_BAD_REQUEST) {
        ngx_http_finalize_request(r,
            ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                       "invalid JSON at byte %uz%s%s",
                                       info.offset, info.reason ? ": " : "",
                                       info.reason ? info.reason : ""));
        return;
    }

    if (rc == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE && r->request_body_in_file_only)
    {
        /* the server's configuration, not the client's body */
        ngx_http_finalize_request(r,
            ngx_http_asyncx_send_error(r, NGX_HTTP_INTERNAL_SERVER_ERROR,
                                       NGX_LOG_ERR,
                                       "client_body_in_file_only is on: "
                                       "the pipeline needs the request "
                                       "body in memory"));
        return;
    }

    if (rc == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        /*
         * nginx reads a chunked body (also HTTP/2 without Content-Length)
         * into the buffer with its framing: it may overflow with less
         * data, depending on its chunks and when they came
         */
        ngx_http_finalize_request(r,
            ngx_http_asyncx_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       NGX_LOG_INFO,
                                       "request body of %uz bytes%s does "
                                       "not fit client_body_buffer_size",
                                       len, r->headers_in.chunked
                                            ? " (chunked, framing included)"
                                            : ""));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nstages = pcf->stages->nelts;

    ctx->stage_usec = ngx_pcalloc(r->pool, nstages * sizeof(uint64_t));

    if (ctx->stage_usec == NULL
        || ngx_http_asyncx_pipeline_init_calls(ctx) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* from here on the cleanup owns every timer and the counters */
    cln->handler = ngx_http_asyncx_pipeline_cleanup;
    cln->data = ctx;

    rc = ngx_http_asyncx_pipeline_headers(ctx, &bad);

    if (rc != NGX_OK) {
        /* never started: neither counted nor aborted by the cleanup */
        ctx->finished = 1;
    }

    if (rc == NGX_DECLINED) {
        /* the client's input made it: no call is issued */
        ngx_http_finalize_request(r,
            ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                       "the value of header \"%V\" for the "
                                       "calls has a CR, LF or NUL", &bad));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->active = 1;
    ngx_http_asyncx_gauge_add(NGX_HTTP_ASYNCX_GAUGE_PIPELINES, 1);
    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_TOTAL, 1);
    ngx_http_asyncx_metrics_pipeline_start(pcf->metrics);

    /* notice a client that goes away while the calls run */
    ngx_http_asyncx_watch_client(r);
    r->write_event_handler = ngx_http_asyncx_pipeline_wake;

    ctx->start = ngx_http_asyncx_now_usec();

    if (pcf->pipeline_timeout) {
        ctx->deadline.handler = ngx_http_asyncx_pipeline_timeout;
        ctx->deadline.data = ctx;
        ctx->deadline.log = r->connection->log;
        ngx_add_timer(&ctx->deadline,
                      pcf->pipeline_timeout
                      + ngx_http_asyncx_pipeline_timer_lag());
    }

    ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "asyncx pipeline: start, %ui stages, %s",
                   nstages, ctx->sequential ? "sequential" : "parallel");

    ngx_http_asyncx_pipeline_run(ctx);
}


/*
 * The client's body must be JSON (or empty) and in memory: every call
 * receives it inside its document.  Returns NGX_OK, NGX_ERROR, or the
 * status to answer with: 400 (*info says why) or 413 (*len is the body
 * size).
 */

static ngx_int_t
ngx_http_asyncx_pipeline_read_body(ngx_http_request_t *r,
    ngx_http_asyncx_pipeline_ctx_t *ctx, size_t *len,
    ngx_http_asyncx_json_info_t *info)
{
    u_char     *p;
    ngx_int_t   rc;
    ngx_str_t   body;

    rc = ngx_http_asyncx_body_copy(r, &body, NGX_MAX_SIZE_T_VALUE);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    *len = body.len;

    if (rc == NGX_AGAIN || ngx_http_asyncx_pipeline_body_too_large(r, body.len))
    {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    /*
     * the policy of every JSON endpoint (ngx_http_asyncx_json.h); the body
     * is passed on as it came, so "\u0000" is kept whole
     */
    if (ngx_http_asyncx_json_validate(body.data, body.len,
                                      NGX_HTTP_ASYNCX_JSON_PIPELINE, info)
        == NGX_OK)
    {
        ctx->body.data = info->start;
        ctx->body.len = info->end - info->start;
        return NGX_OK;
    }

    for (p = body.data; p < body.data + body.len; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            return NGX_HTTP_BAD_REQUEST;
        }
    }

    /* no body, or only whitespace */
    ngx_str_set(&ctx->body, "null");

    return NGX_OK;
}


/*
 * The body must fit client_body_buffer_size, whether or not nginx read
 * part of it along with the header (then a larger one stays in memory):
 * the same cap however the client's writes were split.
 */

static ngx_uint_t
ngx_http_asyncx_pipeline_body_too_large(ngx_http_request_t *r, size_t len)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    return len > clcf->client_body_buffer_size;
}


/* the parent is posted when a wave of calls is over (or spuriously) */

static void
ngx_http_asyncx_pipeline_wake(ngx_http_request_t *r)
{
    ngx_http_asyncx_ctx_t  *actx;

    actx = ngx_http_get_module_ctx(r, ngx_http_asyncx_module);

    if (actx == NULL || actx->pipeline == NULL || actx->pipeline->finished) {
        return;
    }

    ngx_http_asyncx_pipeline_run(actx->pipeline);
}


/*
 * The scheduler.  A wave is one stage (parallel) or one call
 * (sequential); a stage is over when all its calls are recorded.  After
 * a stage in which a required call failed, nothing more is issued.
 */

static void
ngx_http_asyncx_pipeline_run(ngx_http_asyncx_pipeline_ctx_t *ctx)
{
    uint64_t                                last;
    ngx_uint_t                              i, nstages;
    ngx_http_asyncx_pipeline_call_t        *call;
    ngx_http_asyncx_pipeline_stage_conf_t  *st;

    st = ctx->conf->stages->elts;
    nstages = ctx->conf->stages->nelts;

    if (ctx->timed_out && !ctx->finished) {
        /* the stage in progress, cut short, is shown with its time */
        if (ctx->stage < nstages && ctx->next) {
            ctx->stage_usec[ctx->stage] = ngx_http_asyncx_now_usec()
                                          - ctx->stage_start;
            ctx->stage++;
        }

        ngx_http_asyncx_pipeline_finish(ctx);
        return;
    }

    while (!ctx->finished && ctx->pending == 0) {

        if (ctx->stage < nstages && ctx->next == st[ctx->stage].ncalls) {

            /* the stage lasted until its last call was recorded */
            last = ctx->stage_start;

            for (i = 0; i < st[ctx->stage].ncalls; i++) {
                call = &ctx->calls[st[ctx->stage].first + i];
                last = ngx_max(last, call->end);
            }

            ctx->stage_usec[ctx->stage] = last - ctx->stage_start;

            ngx_log_debug2(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log,
                           0, "asyncx pipeline: stage \"%V\" done in %uL us",
                           &st[ctx->stage].name, ctx->stage_usec[ctx->stage]);

            ctx->stage++;
            ctx->next = 0;

            if (ctx->first_failed) {
                ngx_http_asyncx_pipeline_finish(ctx);
                return;
            }

            continue;
        }

        if (ctx->stage == nstages) {
            ngx_http_asyncx_pipeline_finish(ctx);
            return;
        }

        if (ctx->next == 0) {
            ctx->stage_start = ngx_http_asyncx_now_usec();
        }

        do {
            ngx_http_asyncx_pipeline_issue(ctx,
                               &ctx->calls[st[ctx->stage].first + ctx->next]);
            ctx->next++;

        } while (!ctx->sequential && ctx->next < st[ctx->stage].ncalls);
    }
}






















/*
 * asyncx_pipeline_timeout: the calls in flight are abandoned (they end
 * with the request, see finish), the calls not issued yet are skipped,
 * the answer says which.
 */

static void
ngx_http_asyncx_pipeline_timeout(ngx_event_t *ev)
{
    ngx_uint_t                        i, abandoned;
    ngx_connection_t                 *c;
    ngx_http_request_t               *r;
    ngx_http_asyncx_pipeline_ctx_t   *ctx;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    if (ctx->finished) {
        return;
    }

    ctx->timed_out = 1;
    abandoned = ctx->pending;

    for (i = 0; i < ctx->conf->calls->nelts; i++) {
        ngx_http_asyncx_pipeline_abandon(&ctx->calls[i]);
    }

    ngx_log_error(NGX_LOG_ERR, c->log, 0,
                  "asyncx pipeline: timeout of %M ms in stage %ui of %ui, "
                  "%ui call%s abandoned",
                  ctx->conf->pipeline_timeout, ctx->stage + 1,
                  ctx->conf->stages->nelts, abandoned,
                  abandoned == 1 ? "" : "s");

    if (abandoned == 0) {
        /* between two waves: the parent was posted already, or is now */
        (void) ngx_http_post_request(r, NULL);
    }

    ngx_http_run_posted_requests(c);
}


static void
ngx_http_asyncx_pipeline_finish(ngx_http_asyncx_pipeline_ctx_t *ctx)
{
    ngx_str_t            text;
    ngx_int_t            rc;
    ngx_uint_t           status, abandoned;
    ngx_http_request_t  *r;

    r = ctx->request;

    abandoned = ngx_http_asyncx_pipeline_running(ctx);

    ngx_http_asyncx_pipeline_cancel_timer(ctx);

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    ctx->finished = 1;
    ctx->end = ngx_http_asyncx_now_usec();

    if (ctx->active) {
        ctx->active = 0;
        ngx_http_asyncx_gauge_add(NGX_HTTP_ASYNCX_GAUGE_PIPELINES, -1);
    }

    ngx_http_asyncx_metrics_pipeline_end(ctx->conf->metrics,
                                         ctx->end - ctx->start,
                                         ctx->first_failed != NULL);

    status = NGX_HTTP_OK;

    if (ctx->timed_out) {
        status = NGX_HTTP_GATEWAY_TIME_OUT;
        ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_TIMED_OUT, 1);

    } else if (ctx->first_failed) {
        /* a URI made unsafe by the client's own input is its error */
        status = (ctx->first_failed->kind == NGX_HTTP_ASYNCX_CALL_INVALID_URI)
                 ? NGX_HTTP_BAD_REQUEST : ctx->conf->error_status;
        ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_FAILED, 1);

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "asyncx: required call \"%V\" failed, later stages "
                      "skipped (status %ui)",
                      &ctx->first_failed->conf->name, status);
    }

    ctx->status = status;
    r->read_event_handler = ngx_http_block_reading;

    if (ctx->conf->answer->render(ctx, &text) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (abandoned) {
        /*
         * A subrequest cannot be cancelled, and nginx keeps the client's
         * connection until every subrequest is finished: its next
         * request would wait for the abandoned calls.  The answer says
         * "Connection: close", and once it is sent the request is
         * terminated, which ends the abandoned calls (their upstream
         * connections close, their timers go with the pool).
         */
        r->keepalive = 0;

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "asyncx pipeline: %ui abandoned call%s still running, "
                      "ended with the request", abandoned,
                      abandoned == 1 ? "" : "s");
    }

    if (ctx->conf->server_timing
        && ngx_http_asyncx_pipeline_server_timing(ctx) != NGX_OK)
    {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the answer's one allocation, its newline included: sent as it is */
    rc = ngx_http_asyncx_send_json_line(r, status, text.data, text.len);

    if (abandoned && rc == NGX_OK && !r->buffered
        && !r->connection->buffered)
    {
        ngx_http_asyncx_pipeline_close(r);
        return;
    }

    ngx_http_finalize_request(r, rc);

    /*
     * Otherwise the rest of the answer goes out first, by nginx's writer,
     * which would then leave the request to the abandoned calls: the
     * connection, their upstreams and temp files held until the last of
     * them ends, a client's departure unnoticed.  This writer ends them
     * as soon as the answer is out (the request is still there: the
     * calls hold references to it).
     */
    if (abandoned && !r->done && !r->connection->error
        && (r->buffered || r->connection->buffered))
    {
        r->write_event_handler = ngx_http_asyncx_pipeline_send_rest;
    }
}


/* ngx_http_writer() for an answer with abandoned calls behind it */

static void
ngx_http_asyncx_pipeline_send_rest(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_event_t               *wev;
    ngx_connection_t          *c;
    ngx_http_core_loc_conf_t  *clcf;

    c = r->connection;
    wev = c->write;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "client timed out");
        c->timedout = 1;
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    rc = wev->delayed ? NGX_AGAIN : ngx_http_output_filter(r, NULL);

    if (rc == NGX_ERROR) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    if (wev->delayed || r->buffered || c->buffered) {

        if (!wev->delayed) {
            ngx_add_timer(wev, clcf->send_timeout);
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_ERROR);
        }

        return;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                   "asyncx pipeline: answer sent with abandoned calls");

    ngx_http_asyncx_pipeline_close(r);
}


/*
 * The answer is out, abandoned calls still run: the request ends, and
 * they with it (NGX_ERROR terminates it: the cleanups run, its upstream
 * connections and timers go).  Over HTTP/1.x the connection is first
 * closed as nginx's lingering_close closes one: the write side, then
 * what the client still sends is read and dropped until it closes or
 * lingering_timeout passes.  A close with a byte of the client unread
 * (a pipelined request, a CRLF after a body) would send a reset, which
 * destroys the end of the answer on its way.
 */

static void
ngx_http_asyncx_pipeline_close(ngx_http_request_t *r)
{
    ngx_connection_t          *c;
    ngx_http_core_loc_conf_t  *clcf;

    c = r->connection;
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (c->error || clcf->lingering_close == NGX_HTTP_LINGERING_OFF
#if (NGX_HTTP_V2)
        || r->stream
#endif
       )
    {
        ngx_http_asyncx_pipeline_end(r);
        return;
    }

    r->lingering_time = ngx_time() + (time_t) (clcf->lingering_time / 1000);

#if (NGX_HTTP_SSL)
    if (c->ssl) {
        ngx_int_t  rc;

        c->ssl->shutdown_without_free = 1;

        rc = ngx_ssl_shutdown(c);

        if (rc == NGX_ERROR) {
            ngx_http_asyncx_pipeline_end(r);
            return;
        }

        if (rc == NGX_AGAIN) {
            c->ssl->handler = ngx_http_asyncx_pipeline_linger;
            return;
        }
    }
#endif

    ngx_http_asyncx_pipeline_linger(c);
}


/* the write side closed, the read side drained (or SSL's close done) */

static void
ngx_http_asyncx_pipeline_linger(ngx_connection_t *c)
{
    ngx_event_t               *rev;
    ngx_http_request_t        *r;
    ngx_http_core_loc_conf_t  *clcf;

    r = ((ngx_http_request_t *) c->data)->main;
    rev = c->read;

    if (c->timedout || c->error) {
        ngx_http_asyncx_pipeline_end(r);
        return;
    }

    rev->handler = ngx_http_asyncx_pipeline_linger_handler;
    c->write->handler = ngx_http_empty_handler;

    if (rev->timer_set) {
        ngx_del_timer(rev);
    }

    if (ngx_shutdown_socket(c->fd, NGX_WRITE_SHUTDOWN) == -1) {
        ngx_connection_error(c, ngx_socket_errno,
                             ngx_shutdown_socket_n " failed");
        ngx_http_asyncx_pipeline_end(r);
        return;
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_asyncx_pipeline_end(r);
        return;
    }

    /* as nginx's: a worker short of connections, or exiting, ends it */
    c->close = 0;
    ngx_reusable_connection(c, 1);

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    ngx_add_timer(rev, clcf->lingering_timeout);

    if (rev->ready) {
        ngx_http_asyncx_pipeline_linger_handler(rev);
    }
}


/* ngx_http_lingering_close_handler(), then the request's end */

static void
ngx_http_asyncx_pipeline_linger_handler(ngx_event_t *rev)
{
    ssize_t                    n;
    ngx_msec_t                 timer;
    ngx_connection_t          *c;
    ngx_http_request_t        *r;
    ngx_http_core_loc_conf_t  *clcf;
    u_char                     buffer[NGX_HTTP_LINGERING_BUFFER_SIZE];

    c = rev->data;
    r = ((ngx_http_request_t *) c->data)->main;

    if (rev->timedout || c->close) {
        ngx_http_asyncx_pipeline_end(r);
        return;
    }

    timer = (ngx_msec_t) r->lingering_time - (ngx_msec_t) ngx_time();

    if ((ngx_msec_int_t) timer <= 0) {
        ngx_http_asyncx_pipeline_end(r);
        return;
    }

    do {
        n = c->recv(c, buffer, NGX_HTTP_LINGERING_BUFFER_SIZE);

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_http_asyncx_pipeline_end(r);
            return;
        }

    } while (rev->ready);

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_asyncx_pipeline_end(r);
        return;
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    timer *= 1000;

    if (timer > clcf->lingering_timeout) {
        timer = clcf->lingering_timeout;
    }

    ngx_add_timer(rev, timer);
}


/* NGX_ERROR terminates the request: its cleanups run, then it closes */

static void
ngx_http_asyncx_pipeline_end(ngx_http_request_t *r)
{
    ngx_connection_t  *c;

    c = r->connection;

    ngx_http_finalize_request(r, NGX_ERROR);
    ngx_http_run_posted_requests(c);
}


/*
 * A call name in a Server-Timing desc: browsers read a header's bytes
 * as Latin-1, so raw UTF-8 showed as mojibake in devtools; every byte
 * outside printable ASCII, and '%' itself, is written as %XX, which
 * decodeURIComponent() turns back into the name.
 */

static u_char *
ngx_http_asyncx_pipeline_timing_desc(u_char *p, u_char *last, ngx_str_t *name)
{
    u_char      c;
    ngx_uint_t  i;

    static const u_char  hex[] = "0123456789ABCDEF";

    for (i = 0; i < name->len && p < last; i++) {
        c = name->data[i];

        if (c >= 0x20 && c < 0x7f && c != '%') {
            *p++ = c;
            continue;
        }

        if (last - p < 3) {
            break;
        }

        *p++ = '%';
        *p++ = hex[c >> 4];
        *p++ = hex[c & 0xf];
    }

    return p;
}


/*
 * Server-Timing: one entry per call that ran, in configuration order,
 * then the total, for the browser's devtools:
 *   user;dur=500.21, call-2;desc="stock(eu)";dur=400.10, total;dur=1902.55
 * A call name that is not a token (or is "total") is shown in desc,
 * percent-encoded outside ASCII; a failed call's desc says how it
 * failed.
 */

static ngx_int_t
ngx_http_asyncx_pipeline_server_timing(ngx_http_asyncx_pipeline_ctx_t *ctx)
{
    u_char                           *p, *last;
    size_t                            len;
    ngx_str_t                        *name;
    ngx_uint_t                        i, token;
    ngx_table_elt_t                  *h;
    ngx_http_request_t               *r;
    ngx_http_asyncx_pipeline_call_t  *call;

    r = ctx->request;
    len = sizeof("total;dur=") - 1 + 32;

    for (i = 0; i < ctx->conf->calls->nelts; i++) {
        len += 3 * ctx->calls[i].conf->name.len + 96;
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Server-Timing");
    h->value.data = p;
    last = p + len;

    for (i = 0; i < ctx->conf->calls->nelts; i++) {
        call = &ctx->calls[i];
        name = &call->conf->name;

        /* a call never issued (its URI was unsafe) did not run */
        if (call->state != NGX_HTTP_ASYNCX_CALL_DONE || call->nattempts == 0) {
            continue;
        }

        token = ngx_http_asyncx_pipeline_check_token(name->data, name->len)
                    == NGX_OK
                && !(name->len == 5
                     && ngx_strncmp(name->data, "total", 5) == 0);

        if (token) {
            p = ngx_slprintf(p, last, "%V", name);

        } else {
            /* names are UTF-8 without quotes or backslashes */
            p = ngx_slprintf(p, last, "call-%ui;desc=\"", i + 1);
            p = ngx_http_asyncx_pipeline_timing_desc(p, last, name);
        }

        if (call->failed) {
            p = ngx_slprintf(p, last, "%s", token ? ";desc=\"" : " (");

            if (call->kind == NGX_HTTP_ASYNCX_CALL_STATUS) {
                p = ngx_slprintf(p, last, "status %ui", call->status);

            } else {
                p = ngx_slprintf(p, last, "%s",
                              ngx_http_asyncx_pipeline_kind_name(call->kind));
            }

            p = ngx_slprintf(p, last, "%s", token ? "\"" : ")\"");

        } else if (!token) {
            p = ngx_slprintf(p, last, "\"");
        }

        p = ngx_slprintf(p, last, ";dur=");
        p = ngx_http_asyncx_pipeline_ms(p, last, call->end - call->start);
        p = ngx_slprintf(p, last, ", ");
    }

    p = ngx_slprintf(p, last, "total;dur=");
    p = ngx_http_asyncx_pipeline_ms(p, last, ctx->end - ctx->start);

    h->value.len = p - h->value.data;

    return NGX_OK;
}


/*
 * The request pool is going away: on success, on every error, and when
 * the client aborted (then calls may still be in flight: their
 * subrequests and every JSON text die with this pool, their upstreams
 * were released by the request's cleanups, their timers go here).
 */

static void
ngx_http_asyncx_pipeline_cleanup(void *data)
{
    ngx_http_asyncx_pipeline_ctx_t *ctx = data;

    uint64_t                          now;
    ngx_uint_t                        i, inflight;
    ngx_http_asyncx_pipeline_call_t  *call;

    inflight = ctx->pending;

    ngx_http_asyncx_pipeline_cancel_timer(ctx);

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    if (ctx->active) {
        ctx->active = 0;
        ngx_http_asyncx_gauge_add(NGX_HTTP_ASYNCX_GAUGE_PIPELINES, -1);
    }

    if (!ctx->finished) {
        ctx->finished = 1;
        ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_ABORTED, 1);
        ngx_http_asyncx_metrics_pipeline_aborted(ctx->conf->metrics);

        /* each call started ends in the series too: abandoned */
        now = ngx_http_asyncx_now_usec();

        for (i = 0; ctx->calls && i < ctx->conf->calls->nelts; i++) {
            call = &ctx->calls[i];

            if (call->state == NGX_HTTP_ASYNCX_CALL_PENDING) {
                ngx_http_asyncx_metrics_call_end(call->conf->metrics,
                                              NGX_HTTP_ASYNCX_CALL_ABANDONED,
                                              now - call->start);
            }
        }

        ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                      "asyncx pipeline: aborted in stage %ui of %ui, "
                      "%ui calls in flight released",
                      ctx->stage + 1, ctx->conf->stages->nelts, inflight);
    }
}
