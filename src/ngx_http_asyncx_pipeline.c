
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
    ngx_http_asyncx_pipeline_ctx_t *ctx, size_t *len);
static void ngx_http_asyncx_pipeline_wake(ngx_http_request_t *r);
static void ngx_http_asyncx_pipeline_run(ngx_http_asyncx_pipeline_ctx_t *ctx);
static void ngx_http_asyncx_pipeline_issue(ngx_http_asyncx_pipeline_ctx_t *ctx,
    ngx_http_asyncx_pipeline_call_t *call);
static ngx_int_t ngx_http_asyncx_pipeline_eval_uri(
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_http_asyncx_pipeline_call_t *call,
    ngx_str_t *uri, ngx_str_t *args);
static ngx_int_t ngx_http_asyncx_pipeline_eval_headers(
    ngx_http_asyncx_pipeline_ctx_t *ctx);
static ngx_int_t ngx_http_asyncx_pipeline_setup_subrequest(
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_http_request_t *sr,
    ngx_str_t *body);
static ngx_uint_t ngx_http_asyncx_pipeline_dropped(
    ngx_http_asyncx_pipeline_conf_t *pcf, ngx_table_elt_t *h);
static ngx_int_t ngx_http_asyncx_pipeline_push_header(ngx_http_request_t *sr,
    ngx_table_elt_t *h, ngx_uint_t client);
static void ngx_http_asyncx_pipeline_forget_header(ngx_http_request_t *sr,
    ngx_table_elt_t *h);
static ngx_int_t ngx_http_asyncx_pipeline_call_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_asyncx_pipeline_call_timeout(ngx_event_t *ev);
static void ngx_http_asyncx_pipeline_record(
    ngx_http_asyncx_pipeline_call_t *call, ngx_http_asyncx_call_kind_e kind,
    ngx_uint_t status, ngx_str_t *answer);
static void ngx_http_asyncx_pipeline_finish(
    ngx_http_asyncx_pipeline_ctx_t *ctx);
static ngx_int_t ngx_http_asyncx_pipeline_server_timing(
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

    ctx = ngx_http_asyncx_get_ctx(r)->pipeline;
    pcf = ctx->conf;

    rc = ngx_http_asyncx_pipeline_read_body(r, ctx, &len);

    if (rc == NGX_HTTP_BAD_REQUEST) {
        ngx_http_finalize_request(r,
            ngx_http_asyncx_send_error(r, NGX_HTTP_BAD_REQUEST, NGX_LOG_INFO,
                                       "request body is not valid JSON"));
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

    if (ngx_http_asyncx_pipeline_eval_headers(ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->active = 1;
    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_ACTIVE, 1);
    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_TOTAL, 1);

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
 * status to answer with (400, 413; *len is the body size).
 */

static ngx_int_t
ngx_http_asyncx_pipeline_read_body(ngx_http_request_t *r,
    ngx_http_asyncx_pipeline_ctx_t *ctx, size_t *len)
{
    u_char     *p, *start, *end;
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

    if (ngx_http_asyncx_json_check(body.data, body.len, &start, &end)
        == NGX_OK)
    {
        ctx->body.data = start;
        ctx->body.len = end - start;
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
    u_char                                *p, *q;
    ngx_int_t                              rc;
    ngx_str_t                              body, uri, args;
    ngx_http_request_t                    *r, *sr;
    ngx_http_asyncx_pipeline_call_conf_t  *ccf;

    r = ctx->request;
    ccf = call->conf;

    call->start = ngx_http_asyncx_now_usec();
    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_CALLS, 1);

    if (ngx_http_asyncx_pipeline_document(ctx, call, &body) != NGX_OK) {
        goto failed;
    }

    uri = ccf->uri;
    args = ccf->args;

    if (ccf->uri_cv || ccf->args_cv) {
        rc = ngx_http_asyncx_pipeline_eval_uri(ctx, call, &uri, &args);

        if (rc == NGX_ERROR) {
            goto failed;
        }

        if (rc == NGX_DECLINED) {
            ngx_http_asyncx_pipeline_record(call,
                                            NGX_HTTP_ASYNCX_CALL_INVALID_URI,
                                            NGX_HTTP_BAD_REQUEST, NULL);
            call->state = NGX_HTTP_ASYNCX_CALL_DONE;
            return;
        }
    }

    if (ctx->conf->pass_args && r->args.len) {
        if (args.len == 0) {
            args = r->args;

        } else {
            p = ngx_pnalloc(r->pool, args.len + 1 + r->args.len);
            if (p == NULL) {
                goto failed;
            }

            q = p;
            p = ngx_cpymem(p, args.data, args.len);
            *p++ = '&';
            p = ngx_cpymem(p, r->args.data, r->args.len);
            args.data = q;
            args.len = p - q;
        }
    }

    /*
     * Background: the calls neither wait for each other in the parent's
     * postponed list nor wake it; call_done() wakes the parent when the
     * wave is over.  In memory: the answer is captured, never sent.
     */

    if (ngx_http_subrequest(r, &uri, &args, &sr, &call->ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY
                            |NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        goto failed;
    }

    /* until call_done(): the subrequest holds a reference on r */
    call->running = 1;

    if (ngx_http_asyncx_pipeline_setup_subrequest(ctx, sr, &body)
        != NGX_OK)
    {
        /* the subrequest is posted already: it runs, its answer is not
         * wanted (call_done() ignores calls that are not pending) */
        goto failed;
    }

    call->state = NGX_HTTP_ASYNCX_CALL_PENDING;
    ctx->pending++;

    ngx_add_timer(&call->timer, ctx->conf->call_timeout);

    ngx_log_debug4(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "asyncx pipeline: call \"%V\" \"%V?%V\", %uz bytes",
                   &ccf->name, &uri, &args, body.len);

    return;

failed:

    /* recorded while not pending: the wave's count is not touched */
    ngx_http_asyncx_pipeline_record(call, NGX_HTTP_ASYNCX_CALL_ERROR,
                                    NGX_HTTP_INTERNAL_SERVER_ERROR, NULL);
    call->state = NGX_HTTP_ASYNCX_CALL_DONE;
}


/*
 * A call URI with variables, evaluated in the client request.  The path
 * and the arguments are evaluated apart, so a variable in the path
 * cannot add arguments; the path is percent-decoded and checked for dot
 * segments as nginx does for SSI includes.  NGX_DECLINED: unsafe (the
 * URI is kept in call->detail for the message).
 */

static ngx_int_t
ngx_http_asyncx_pipeline_eval_uri(ngx_http_asyncx_pipeline_ctx_t *ctx,
    ngx_http_asyncx_pipeline_call_t *call, ngx_str_t *uri, ngx_str_t *args)
{
    u_char                                *p;
    ngx_str_t                              split, raw;
    ngx_uint_t                             flags;
    ngx_http_request_t                    *r;
    ngx_http_asyncx_pipeline_call_conf_t  *ccf;

    r = ctx->request;
    ccf = call->conf;

    if (ccf->uri_cv
        && ngx_http_complex_value(r, ccf->uri_cv, uri) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ccf->args_cv
        && ngx_http_complex_value(r, ccf->args_cv, args) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_asyncx_pipeline_check_uri_value(uri->data, uri->len, 1)
           != NGX_OK
        || ngx_http_asyncx_pipeline_check_uri_value(args->data, args->len, 0)
           != NGX_OK)
    {
        goto invalid;
    }

    ngx_str_null(&split);
    flags = 0;
    raw = *uri;

    if (ngx_http_parse_unsafe_uri(r, uri, &split, &flags) != NGX_OK
        || split.len)
    {
        *uri = raw;
        goto invalid;
    }

    return NGX_OK;

invalid:

    /* the URI as evaluated, for the call's error and the log */
    call->detail.len = uri->len + (args->len ? 1 + args->len : 0);
    call->detail.data = ngx_pnalloc(r->pool, call->detail.len);
    if (call->detail.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(call->detail.data, uri->data, uri->len);

    if (args->len) {
        *p++ = '?';
        ngx_memcpy(p, args->data, args->len);
    }

    return NGX_DECLINED;
}


/*
 * asyncx_call_set_header values, evaluated once per pipeline in the
 * client request's context: every call of the pipeline gets the same.
 * An empty value sends no header (as with proxy_set_header).
 */

static ngx_int_t
ngx_http_asyncx_pipeline_eval_headers(ngx_http_asyncx_pipeline_ctx_t *ctx)
{
    ngx_str_t                           value;
    ngx_uint_t                          i;
    ngx_table_elt_t                    *h;
    ngx_http_request_t                 *r;
    ngx_http_asyncx_pipeline_header_t  *set;

    if (ctx->conf->set_headers == NULL) {
        return NGX_OK;
    }

    r = ctx->request;
    set = ctx->conf->set_headers->elts;

    ctx->headers = ngx_palloc(r->pool, ctx->conf->set_headers->nelts
                                       * sizeof(ngx_table_elt_t));
    if (ctx->headers == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < ctx->conf->set_headers->nelts; i++) {

        if (ngx_http_complex_value(r, &set[i].value, &value) != NGX_OK) {
            return NGX_ERROR;
        }

        if (value.len == 0) {
            continue;
        }

        h = &ctx->headers[ctx->nheaders++];

        ngx_memzero(h, sizeof(ngx_table_elt_t));
        h->key = set[i].name;
        h->value = value;
        h->lowcase_key = set[i].lowcase.data;
        h->hash = set[i].hash;
    }

    return NGX_OK;
}


/*
 * A subrequest starts as a GET sharing the parent's body and headers.
 * A call is a POST of its own JSON document with its own header list:
 * the client's headers (asyncx_call_pass_request_headers) minus the
 * dropped ones (body headers, Accept-Encoding, ranges, conditions,
 * asyncx_call_hide_header), then asyncx_call_set_header's, then its own
 * Content-Type and Content-Length, so proxy_pass and fastcgi_pass send
 * exactly that.
 */

static ngx_int_t
ngx_http_asyncx_pipeline_setup_subrequest(ngx_http_asyncx_pipeline_ctx_t *ctx,
    ngx_http_request_t *sr, ngx_str_t *body)
{
    u_char                   *p;
    ngx_buf_t                *b;
    ngx_uint_t                i;
    ngx_list_part_t          *part;
    ngx_chain_t              *cl;
    ngx_table_elt_t          *h, nh;
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

        if (h[i].hash == 0) {
            continue;
        }

        if (!ctx->conf->pass_request_headers
            || ngx_http_asyncx_pipeline_dropped(ctx->conf, &h[i]))
        {
            ngx_http_asyncx_pipeline_forget_header(sr, &h[i]);
            continue;
        }

        if (ngx_http_asyncx_pipeline_push_header(sr, &h[i], 1) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    for (i = 0; i < ctx->nheaders; i++) {
        if (ngx_http_asyncx_pipeline_push_header(sr, &ctx->headers[i], 0)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    /* the real hash: proxy and fastcgi look their own headers up by it */

    ngx_memzero(&nh, sizeof(ngx_table_elt_t));
    ngx_str_set(&nh.key, "Content-Type");
    ngx_str_set(&nh.value, "application/json");
    nh.lowcase_key = (u_char *) "content-type";
    nh.hash = ngx_hash_key(nh.lowcase_key, nh.key.len);

    if (ngx_http_asyncx_pipeline_push_header(sr, &nh, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    p = ngx_pnalloc(sr->pool, NGX_OFF_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_str_set(&nh.key, "Content-Length");
    nh.value.data = p;
    nh.value.len = ngx_sprintf(p, "%uz", body->len) - p;
    nh.lowcase_key = (u_char *) "content-length";
    nh.hash = ngx_hash_key(nh.lowcase_key, nh.key.len);

    return ngx_http_asyncx_pipeline_push_header(sr, &nh, 0);
}


static ngx_uint_t
ngx_http_asyncx_pipeline_dropped(ngx_http_asyncx_pipeline_conf_t *pcf,
    ngx_table_elt_t *h)
{
    ngx_uint_t                        i;
    ngx_http_asyncx_pipeline_drop_t  *d;

    d = pcf->drop->elts;

    for (i = 0; i < pcf->drop->nelts; i++) {
        if (h->hash == d[i].hash
            && h->key.len == d[i].lowcase.len
            && ngx_strncmp(h->lowcase_key, d[i].lowcase.data, h->key.len)
               == 0)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * The subrequest's headers_in is a copy of the client's: besides the
 * list, nginx keeps pointers to well-known headers in it (what $http_*,
 * $cookie_* and the gzip and proxy modules read).  A header added to the
 * call's list also takes its well-known slot; a client header that is
 * not passed loses its slot, so the call's location sees exactly its
 * own list.
 */

static ngx_int_t
ngx_http_asyncx_pipeline_push_header(ngx_http_request_t *sr,
    ngx_table_elt_t *h, ngx_uint_t client)
{
    ngx_table_elt_t            *nh, **ph;
    ngx_http_header_t          *hh;
    ngx_http_core_main_conf_t  *cmcf;

    nh = ngx_list_push(&sr->headers_in.headers);
    if (nh == NULL) {
        return NGX_ERROR;
    }

    *nh = *h;

    cmcf = ngx_http_get_module_main_conf(sr, ngx_http_core_module);

    hh = ngx_hash_find(&cmcf->headers_in_hash, h->hash, h->lowcase_key,
                       h->key.len);

    if (hh == NULL || hh->offset == 0) {
        return NGX_OK;
    }

#if (nginx_version < 1023000)

    if (hh->offset == offsetof(ngx_http_headers_in_t, cookies)
#if (NGX_HTTP_X_FORWARDED_FOR)
        || hh->offset == offsetof(ngx_http_headers_in_t, x_forwarded_for)
#endif
       )
    {
        ngx_array_t  *a, *pa;

        a = (ngx_array_t *) ((char *) &sr->headers_in + hh->offset);
        pa = (ngx_array_t *) ((char *) &sr->parent->headers_in + hh->offset);

        if (a->elts == pa->elts) {
            /* still the client's array: the call gets its own */
            if (ngx_array_init(a, sr->pool, 1, sizeof(ngx_table_elt_t *))
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }

        ph = ngx_array_push(a);
        if (ph == NULL) {
            return NGX_ERROR;
        }

        *ph = nh;

        return NGX_OK;
    }

#endif

    ph = (ngx_table_elt_t **) ((char *) &sr->headers_in + hh->offset);

    /* a client header keeps the slot nginx gave it (the first of its
     * name); a header of the pipeline's takes it */

    if (!client || *ph == h || *ph == NULL) {
        *ph = nh;
    }

    return NGX_OK;
}


static void
ngx_http_asyncx_pipeline_forget_header(ngx_http_request_t *sr,
    ngx_table_elt_t *h)
{
    ngx_table_elt_t            **ph;
    ngx_http_header_t           *hh;
    ngx_http_core_main_conf_t   *cmcf;

    cmcf = ngx_http_get_module_main_conf(sr, ngx_http_core_module);

    hh = ngx_hash_find(&cmcf->headers_in_hash, h->hash, h->lowcase_key,
                       h->key.len);

    if (hh == NULL || hh->offset == 0) {
        return;
    }

#if (nginx_version < 1023000)

    if (hh->offset == offsetof(ngx_http_headers_in_t, cookies)
#if (NGX_HTTP_X_FORWARDED_FOR)
        || hh->offset == offsetof(ngx_http_headers_in_t, x_forwarded_for)
#endif
       )
    {
        ((ngx_array_t *) ((char *) &sr->headers_in + hh->offset))->nelts = 0;
        return;
    }

#endif

    ph = (ngx_table_elt_t **) ((char *) &sr->headers_in + hh->offset);

    if (*ph == h) {
        *ph = NULL;
    }
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
    call->running = 0;

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

        if (status == NGX_HTTP_NO_CONTENT) {
            /* "done, nothing to say": a success without a value */
            ngx_str_set(&answer, "null");

        } else {
            kind = NGX_HTTP_ASYNCX_CALL_INVALID_JSON;

            if (sr->headers_out.content_encoding) {
                call->detail = sr->headers_out.content_encoding->value;
            }
        }
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
    u_char                               *p, msg[384];
    size_t                                msg_len;
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

    if (kind == NGX_HTTP_ASYNCX_CALL_OK) {
        call->answer = *answer;
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

        if (call->detail.len == 0) {
            break;
        }

        /* a backend that compresses anyway: say so (a token only, the
         * value is the backend's and ends up in JSON and in the log) */

        if (call->detail.len == 4
            && ngx_strncasecmp(call->detail.data, (u_char *) "gzip", 4)
               == 0)
        {
            p = ngx_snprintf(p, msg + sizeof(msg) - p,
                             " (Content-Encoding: gzip, \"gunzip on\" "
                             "in the call's location decodes it)");

        } else if (ngx_http_asyncx_pipeline_check_token(call->detail.data,
                                                        call->detail.len)
                   == NGX_OK)
        {
            p = ngx_snprintf(p, msg + sizeof(msg) - p,
                             " (Content-Encoding: %V)", &call->detail);

        } else {
            p = ngx_snprintf(p, msg + sizeof(msg) - p,
                             " (compressed: Content-Encoding)");
        }

        break;

    case NGX_HTTP_ASYNCX_CALL_TOO_LARGE:
        p = ngx_snprintf(msg, sizeof(msg), "answer larger than the capture "
                         "buffer (subrequest_output_buffer_size)");
        break;

    case NGX_HTTP_ASYNCX_CALL_INVALID_URI:
        /* the URI has the client's bytes: shown if short and UTF-8 */
        if (call->detail.len <= 256
            && ngx_http_asyncx_utf8_valid(call->detail.data, call->detail.len)
               == NGX_OK)
        {
            p = ngx_snprintf(msg, sizeof(msg), "invalid URI \"%V\"",
                             &call->detail);

        } else {
            p = ngx_snprintf(msg, sizeof(msg), "invalid URI of %uz bytes",
                             call->detail.len);
        }

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

    /* the answers show the message; a failed call's own JSON answer too */

    call->msg.data = ngx_pnalloc(r->pool, msg_len);
    if (call->msg.data) {
        ngx_memcpy(call->msg.data, msg, msg_len);
        call->msg.len = msg_len;
    }

    if (answer) {
        call->answer = *answer;
    }

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
    ngx_uint_t           i, status, abandoned;
    ngx_http_request_t  *r;

    r = ctx->request;

    abandoned = 0;

    for (i = 0; i < ctx->conf->calls->nelts; i++) {
        abandoned += ctx->calls[i].running;
    }

    ctx->finished = 1;
    ctx->end = ngx_http_asyncx_now_usec();

    if (ctx->active) {
        ctx->active = 0;
        ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_ACTIVE, -1);
    }

    status = NGX_HTTP_OK;

    if (ctx->first_failed) {
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

    rc = ngx_http_asyncx_send_json(r, status, text.data, text.len);

    if (abandoned && rc == NGX_OK && !r->buffered
        && !r->connection->buffered)
    {
        /* all sent: NGX_ERROR terminates the request (cleanups, close) */
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    /*
     * Otherwise the rest of the answer goes out first; the connection
     * is closed when the abandoned calls end (keepalive is off).
     */
    ngx_http_finalize_request(r, rc);
}


/*
 * Server-Timing: one entry per call that ran, in configuration order,
 * then the total, for the browser's devtools:
 *   user;dur=500.21, call-2;desc="가격";dur=400.10, total;dur=1902.55
 * A call name that is not a token (or is "total") is shown in desc;
 * a failed call's desc says how it failed.
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
        len += 2 * ctx->calls[i].conf->name.len + 96;
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

        if (call->state != NGX_HTTP_ASYNCX_CALL_DONE) {
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
            p = ngx_slprintf(p, last, "call-%ui;desc=\"%V", i + 1, name);
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
        ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_ACTIVE, -1);
    }

    if (!ctx->finished) {
        ctx->finished = 1;
        ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_ABORTED, 1);

        ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                      "asyncx pipeline: aborted in stage %ui of %ui, "
                      "%ui calls in flight released",
                      ctx->stage + 1, ctx->conf->stages->nelts, inflight);
    }
}
