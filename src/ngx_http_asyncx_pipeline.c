
/*
 * Copyright (C) asyncx authors
 *
 * Staged service calls (exercise problem 1): the calls of one stage run
 * as concurrent in-memory subrequests; the next stage starts when all of
 * them have answered, failed or timed out.  Nothing blocks: subrequests,
 * per-call timers and posted-request wake-ups only.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_pipeline_json.h"


static ngx_int_t ngx_http_asyncx_pipeline_handler(ngx_http_request_t *r);
static void ngx_http_asyncx_pipeline_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_pipeline_read_body(ngx_http_request_t *r,
    ngx_http_asyncx_pipeline_ctx_t *ctx, size_t *len,
    ngx_http_asyncx_json_info_t *info);
static void ngx_http_asyncx_pipeline_wake(ngx_http_request_t *r);
static void ngx_http_asyncx_pipeline_run(ngx_http_asyncx_pipeline_ctx_t *ctx);
static void ngx_http_asyncx_pipeline_issue(ngx_http_asyncx_pipeline_ctx_t *ctx,
    ngx_http_asyncx_pipeline_call_t *call);
static ngx_int_t ngx_http_asyncx_pipeline_setup_subrequest(
    ngx_http_request_t *sr, ngx_str_t *body);
static ngx_int_t ngx_http_asyncx_pipeline_call_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_asyncx_pipeline_call_timeout(ngx_event_t *ev);
static void ngx_http_asyncx_pipeline_record(
    ngx_http_asyncx_pipeline_call_t *call, ngx_http_asyncx_call_kind_e kind,
    ngx_uint_t status, ngx_str_t *answer);
static void ngx_http_asyncx_pipeline_finish(
    ngx_http_asyncx_pipeline_ctx_t *ctx);
static void ngx_http_asyncx_pipeline_cleanup(void *data);



/* requests */


char *
ngx_http_asyncx_pipeline(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler != NULL) {
        return "is duplicate: the location already has a content handler";
    }

    clcf->handler = ngx_http_asyncx_pipeline_handler;
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

    rc = ngx_http_asyncx_arg(r, "mode", &mode);

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
            return ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST,
                                              NGX_LOG_INFO,
                                              "invalid mode \"%V\", use "
                                              "parallel or sequential",
                                              &mode);
        }
    }

    actx->pipeline = ctx;

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
    ngx_uint_t                            i, nstages;
    ngx_pool_cleanup_t                   *cln;
    ngx_http_asyncx_pipeline_ctx_t       *ctx;
    ngx_http_asyncx_pipeline_conf_t      *pcf;
    ngx_http_asyncx_pipeline_call_t      *call;
    ngx_http_asyncx_pipeline_call_conf_t *ccf;
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

    if (rc == NGX_HTTP_REQUEST_ENTITY_TOO_LARGE) {
        ngx_http_finalize_request(r,
            ngx_http_asyncx_send_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       NGX_LOG_INFO,
                                       "request body of %uz bytes does not "
                                       "fit client_body_buffer_size", len));
        return;
    }

    if (rc != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    nstages = pcf->stages->nelts;

    ctx->calls = ngx_pcalloc(r->pool, pcf->calls->nelts
                                   * sizeof(ngx_http_asyncx_pipeline_call_t));
    ctx->stage_usec = ngx_pcalloc(r->pool, nstages * sizeof(uint64_t));

    cln = ngx_pool_cleanup_add(r->pool, 0);

    if (ctx->calls == NULL || ctx->stage_usec == NULL || cln == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* from here on the cleanup owns every timer and the counters */
    cln->handler = ngx_http_asyncx_pipeline_cleanup;
    cln->data = ctx;

    ccf = pcf->calls->elts;

    for (i = 0; i < pcf->calls->nelts; i++) {
        call = &ctx->calls[i];

        call->ctx = ctx;
        call->conf = &ccf[i];
        call->ps.handler = ngx_http_asyncx_pipeline_call_done;
        call->ps.data = call;
        call->timer.handler = ngx_http_asyncx_pipeline_call_timeout;
        call->timer.data = call;
        call->timer.log = r->connection->log;
    }

    ctx->active = 1;
    ngx_http_asyncx_gauge_add(NGX_HTTP_ASYNCX_GAUGE_PIPELINES, 1);
    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_TOTAL, 1);
    ngx_http_asyncx_metrics_pipeline_start(pcf->metrics);

    /* notice a client that goes away while the calls run */
    ngx_http_asyncx_watch_client(r);
    r->write_event_handler = ngx_http_asyncx_pipeline_wake;

    ctx->start = ngx_http_asyncx_now_usec();

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

    if (rc == NGX_AGAIN) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    /*
     * the policy of every JSON endpoint (ngx_http_asyncx_json.h); the body
     * is passed on as it came, so "\u0000" is kept whole
     */
    if (ngx_http_asyncx_json_validate(body.data, body.len, 0, info) == NGX_OK)
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


static void
ngx_http_asyncx_pipeline_issue(ngx_http_asyncx_pipeline_ctx_t *ctx,
    ngx_http_asyncx_pipeline_call_t *call)
{
    u_char                                *p;
    ngx_str_t                              body, args;
    ngx_http_request_t                    *r, *sr;
    ngx_http_asyncx_pipeline_call_conf_t  *ccf;

    r = ctx->request;
    ccf = call->conf;

    call->start = ngx_http_asyncx_now_usec();
    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_CALLS, 1);
    ngx_http_asyncx_metrics_call_start(ccf->metrics);

    if (ngx_http_asyncx_pipeline_document(ctx, call, &body) != NGX_OK) {
        goto failed;
    }

    args = ccf->args;

    if (ctx->conf->pass_args && r->args.len) {
        if (args.len == 0) {
            args = r->args;

        } else {
            p = ngx_pnalloc(r->pool, ccf->args.len + 1 + r->args.len);
            if (p == NULL) {
                goto failed;
            }

            args.data = p;
            p = ngx_cpymem(p, ccf->args.data, ccf->args.len);
            *p++ = '&';
            p = ngx_cpymem(p, r->args.data, r->args.len);
            args.len = p - args.data;
        }
    }

    /*
     * Background: the calls neither wait for each other in the parent's
     * postponed list nor wake it; call_done() wakes the parent when the
     * wave is over.  In memory: the answer is captured, never sent.
     */

    if (ngx_http_subrequest(r, &ccf->uri, &args, &sr, &call->ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY
                            |NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_asyncx_pipeline_setup_subrequest(sr, &body) != NGX_OK) {
        /* the subrequest is posted already: it runs, its answer is not
         * wanted (call_done() ignores calls that are not pending) */
        goto failed;
    }

    call->state = NGX_HTTP_ASYNCX_CALL_PENDING;
    ctx->pending++;

    ngx_add_timer(&call->timer, ctx->conf->call_timeout);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "asyncx pipeline: call \"%V\" \"%V?%V\", %uz bytes",
                   &ccf->name, &ccf->uri, &args, body.len);

    return;

failed:

    /* recorded while not pending: the wave's count is not touched */
    ngx_http_asyncx_pipeline_record(call, NGX_HTTP_ASYNCX_CALL_ERROR,
                                    NGX_HTTP_INTERNAL_SERVER_ERROR, NULL);
    call->state = NGX_HTTP_ASYNCX_CALL_DONE;
}


/*
 * A subrequest starts as a GET sharing the parent's body and headers.
 * A call is a POST of its own JSON document, with its own header list
 * (the parent's minus the body headers, plus Content-Type and
 * Content-Length), so proxy_pass and fastcgi_pass send it correctly.
 */

static ngx_int_t
ngx_http_asyncx_pipeline_setup_subrequest(ngx_http_request_t *sr,
    ngx_str_t *body)
{
    u_char                   *p;
    ngx_buf_t                *b;
    ngx_uint_t                i;
    ngx_list_part_t          *part;
    ngx_chain_t              *cl;
    ngx_table_elt_t          *h, *nh;
    ngx_http_request_body_t  *rb;

    sr->method = NGX_HTTP_POST;
    ngx_str_set(&sr->method_name, "POST");

    rb = ngx_pcalloc(sr->pool, sizeof(ngx_http_request_body_t));
    b = ngx_calloc_buf(sr->pool);
    cl = ngx_alloc_chain_link(sr->pool);

    if (rb == NULL || b == NULL || cl == NULL) {
        return NGX_ERROR;
    }

    b->start = body->data;
    b->pos = body->data;
    b->last = body->data + body->len;
    b->end = b->last;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    cl->buf = b;
    cl->next = NULL;

    rb->bufs = cl;
    rb->buf = b;
    rb->rest = 0;
    rb->received = body->len;

    sr->request_body = rb;
    sr->reading_body = 0;
    sr->request_body_no_buffering = 0;

    sr->headers_in.content_length_n = body->len;
    sr->headers_in.chunked = 0;
    sr->headers_in.transfer_encoding = NULL;
    sr->headers_in.content_length = NULL;
    sr->headers_in.content_type = NULL;

    if (ngx_list_init(&sr->headers_in.headers, sr->pool, 16,
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    part = &sr->parent->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0
            || (h[i].key.len == sizeof("Content-Length") - 1
                && ngx_strncasecmp(h[i].key.data, (u_char *) "Content-Length",
                                   h[i].key.len) == 0)
            || (h[i].key.len == sizeof("Content-Type") - 1
                && ngx_strncasecmp(h[i].key.data, (u_char *) "Content-Type",
                                   h[i].key.len) == 0)
            || (h[i].key.len == sizeof("Transfer-Encoding") - 1
                && ngx_strncasecmp(h[i].key.data,
                                   (u_char *) "Transfer-Encoding",
                                   h[i].key.len) == 0))
        {
            continue;
        }

        nh = ngx_list_push(&sr->headers_in.headers);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        *nh = h[i];
    }

    nh = ngx_list_push(&sr->headers_in.headers);
    if (nh == NULL) {
        return NGX_ERROR;
    }

    /* the real hash: proxy and fastcgi look their own headers up by it */
    ngx_str_set(&nh->key, "Content-Type");
    ngx_str_set(&nh->value, "application/json");
    nh->lowcase_key = (u_char *) "content-type";
    nh->hash = ngx_hash_key(nh->lowcase_key, nh->key.len);
    sr->headers_in.content_type = nh;

    nh = ngx_list_push(&sr->headers_in.headers);
    if (nh == NULL) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(sr->pool, NGX_OFF_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&nh->key, "Content-Length");
    nh->value.data = p;
    nh->value.len = ngx_sprintf(p, "%uz", body->len) - p;
    nh->lowcase_key = (u_char *) "content-length";
    nh->hash = ngx_hash_key(nh->lowcase_key, nh->key.len);
    sr->headers_in.content_length = nh;

    return NGX_OK;
}


/*
 * post_subrequest handler: records, never finalizes the parent.  It
 * returns NGX_OK whatever the call did, because an NGX_ERROR returned
 * here would terminate the whole client request.
 */

static ngx_int_t
ngx_http_asyncx_pipeline_call_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_asyncx_pipeline_call_t *call = data;

    u_char                          *start, *end;
    ngx_str_t                        answer;
    ngx_buf_t                       *b;
    ngx_uint_t                       status, overflow, output_failed;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_asyncx_pipeline_ctx_t  *ctx;
    ngx_http_asyncx_call_kind_e      kind;

    ctx = call->ctx;

    if (call->state != NGX_HTTP_ASYNCX_CALL_PENDING || ctx->finished) {
        /* timed out earlier, or the answer is no longer wanted */
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                       "asyncx pipeline: late answer of \"%V\" ignored, "
                       "rc %i", &call->conf->name, rc);
        return NGX_OK;
    }

    /*
     * ngx_http_output_filter() marks the client connection failed on any
     * filter error, and the in-memory capture refuses an answer larger
     * than subrequest_output_buffer_size (of the call's location) with
     * such an error.  Nothing was sent to the client yet, so the error is
     * this call's alone: clear it, or nginx would close the client
     * connection, and record the call as too large.
     */

    output_failed = 0;

    if (sr->connection->error && !ctx->request->header_sent) {
        sr->connection->error = 0;
        output_failed = 1;
    }

    status = (rc >= NGX_HTTP_SPECIAL_RESPONSE) ? (ngx_uint_t) rc
                                               : sr->headers_out.status;

    clcf = ngx_http_get_module_loc_conf(sr, ngx_http_core_module);
    b = sr->out ? sr->out->buf : NULL;

    overflow = status >= 200 && status < 300
               && (output_failed
                   || (rc == NGX_ERROR
                       && sr->headers_out.content_length_n
                          > (off_t) clcf->subrequest_output_buffer_size));

    kind = ngx_http_asyncx_pipeline_classify(rc, status, overflow);

    answer.len = 0;

    if (b && (kind == NGX_HTTP_ASYNCX_CALL_OK
              || kind == NGX_HTTP_ASYNCX_CALL_STATUS)
        && ngx_http_asyncx_json_check(b->pos, b->last - b->pos, &start, &end)
           == NGX_OK)
    {
        /* the captured answer lives in the request pool: keep the text */
        answer.data = start;
        answer.len = end - start;
    }

    if (kind == NGX_HTTP_ASYNCX_CALL_OK && answer.len == 0) {
        kind = NGX_HTTP_ASYNCX_CALL_INVALID_JSON;
    }

    ngx_http_asyncx_pipeline_record(call, kind, status, &answer);

    return NGX_OK;
}


static void
ngx_http_asyncx_pipeline_call_timeout(ngx_event_t *ev)
{
    ngx_connection_t                 *c;
    ngx_http_request_t               *r;
    ngx_http_asyncx_pipeline_call_t  *call;

    call = ev->data;
    r = call->ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    /*
     * The subrequest cannot be cancelled: it is abandoned and its answer
     * ignored.  It still holds a reference on the client request, which
     * is released when its location finishes it (proxy timeouts, the
     * mock's max_delay) or when the client connection closes.
     */

    ngx_http_asyncx_pipeline_record(call, NGX_HTTP_ASYNCX_CALL_TIMEOUT,
                                    NGX_HTTP_GATEWAY_TIME_OUT, NULL);

    ngx_http_run_posted_requests(c);
}


/*
 * Records a call's outcome and wakes the parent when the wave is over.
 * answer: the call's answer as checked JSON text (a failed call's own
 * answer is kept inside its error object), or NULL.
 */

static void
ngx_http_asyncx_pipeline_record(ngx_http_asyncx_pipeline_call_t *call,
    ngx_http_asyncx_call_kind_e kind, ngx_uint_t status, ngx_str_t *answer)
{
    u_char                               *p, *last, msg[128];
    size_t                                len, msg_len;
    ngx_http_request_t                   *r;
    ngx_http_asyncx_pipeline_ctx_t       *ctx;
    ngx_http_asyncx_pipeline_call_conf_t *ccf;

    ctx = call->ctx;
    ccf = call->conf;
    r = ctx->request;

    if (call->timer.timer_set) {
        ngx_del_timer(&call->timer);
    }

    call->end = ngx_http_asyncx_now_usec();
    call->kind = kind;
    call->status = status;

    ngx_http_asyncx_metrics_call_end(ccf->metrics, kind,
                                     call->end - call->start);

    if (kind == NGX_HTTP_ASYNCX_CALL_OK) {
        call->value = *answer;
        call->passed = *answer;
        goto done;
    }

    switch (kind) {

    case NGX_HTTP_ASYNCX_CALL_STATUS:
        p = ngx_snprintf(msg, sizeof(msg), "service answered %ui", status);
        break;

    case NGX_HTTP_ASYNCX_CALL_TIMEOUT:
        p = ngx_snprintf(msg, sizeof(msg), "no answer within %M ms",
                         ctx->conf->call_timeout);
        break;

    case NGX_HTTP_ASYNCX_CALL_INVALID_JSON:
        p = ngx_snprintf(msg, sizeof(msg), "answer is not valid JSON");
        break;

    case NGX_HTTP_ASYNCX_CALL_TOO_LARGE:
        p = ngx_snprintf(msg, sizeof(msg), "answer larger than the capture "
                         "buffer (subrequest_output_buffer_size)");
        break;

    default: /* NGX_HTTP_ASYNCX_CALL_ERROR */
        p = ngx_snprintf(msg, sizeof(msg), "call failed");
        break;
    }

    msg_len = p - msg;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "asyncx pipeline: call \"%V\" failed: %*s (%s)%s",
                  &ccf->name, msg_len, msg,
                  ngx_http_asyncx_pipeline_kind_name(kind),
                  ccf->optional ? ", fallback used" : "");

    call->failed = 1;
    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_CALL_ERRORS, 1);

    if (ccf->optional) {
        call->passed = ccf->fallback;

    } else if (ctx->first_failed == NULL || call < ctx->first_failed) {
        /* the first in configuration order, not in time: deterministic */
        ctx->first_failed = call;
    }

    /*
     * {"error":"..","kind":"..","status":N,"elapsed_ms":N.NN,
     *  "response":<its answer>,"optional":true,"fallback":<value>}
     */

    len = sizeof("{\"error\":\"\",\"kind\":\"\",\"status\":,\"elapsed_ms\":"
                 ",\"response\":,\"optional\":true,\"fallback\":}") - 1
          + msg_len + 16 + 3 * NGX_INT_T_LEN
          + (answer ? answer->len : 0) + ccf->fallback.len;

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        ngx_str_set(&call->value, "null");
        goto done;
    }

    call->value.data = p;
    last = p + len;

    p = ngx_slprintf(p, last, "{\"error\":\"%*s\",\"kind\":\"%s\","
                     "\"status\":%ui,\"elapsed_ms\":",
                     msg_len, msg, ngx_http_asyncx_pipeline_kind_name(kind),
                     status);
    p = ngx_http_asyncx_pipeline_ms(p, last, call->end - call->start);

    if (answer && answer->len) {
        p = ngx_slprintf(p, last, ",\"response\":%V", answer);
    }

    if (ccf->optional) {
        p = ngx_slprintf(p, last, ",\"optional\":true,\"fallback\":%V",
                         &ccf->fallback);
    }

    p = ngx_slprintf(p, last, "}");
    call->value.len = p - call->value.data;

done:

    if (call->state == NGX_HTTP_ASYNCX_CALL_PENDING) {
        call->state = NGX_HTTP_ASYNCX_CALL_DONE;

        if (ctx->pending && --ctx->pending == 0 && !ctx->finished) {
            /* the parent runs the next wave from its own context */
            (void) ngx_http_post_request(r, NULL);
        }
    }
}


static void
ngx_http_asyncx_pipeline_finish(ngx_http_asyncx_pipeline_ctx_t *ctx)
{
    ngx_str_t            text;
    ngx_int_t            rc;
    ngx_uint_t           status;
    ngx_http_request_t  *r;

    r = ctx->request;

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

    if (ctx->first_failed) {
        status = ctx->conf->error_status;
        ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_FAILED, 1);

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "asyncx: required call \"%V\" failed, later stages "
                      "skipped (status %ui)",
                      &ctx->first_failed->conf->name, status);
    }

    r->read_event_handler = ngx_http_block_reading;

    if (ngx_http_asyncx_pipeline_response(ctx, &text) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_asyncx_send_json(r, status, text.data, text.len);

    ngx_http_finalize_request(r, rc);
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

    ngx_uint_t                        i, inflight;
    ngx_http_asyncx_pipeline_call_t  *call;

    inflight = 0;

    for (i = 0; i < ctx->conf->calls->nelts; i++) {
        call = &ctx->calls[i];

        if (call->timer.timer_set) {
            ngx_del_timer(&call->timer);
            inflight++;
        }
    }

    if (ctx->active) {
        ctx->active = 0;
        ngx_http_asyncx_gauge_add(NGX_HTTP_ASYNCX_GAUGE_PIPELINES, -1);
    }

    if (!ctx->finished) {
        ctx->finished = 1;
        ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_ABORTED, 1);
        ngx_http_asyncx_metrics_pipeline_aborted(ctx->conf->metrics);

        ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                      "asyncx pipeline: aborted in stage %ui of %ui, "
                      "%ui calls in flight released",
                      ctx->stage + 1, ctx->conf->stages->nelts, inflight);
    }
}
