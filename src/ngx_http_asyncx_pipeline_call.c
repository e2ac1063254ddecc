
/*
 * Copyright (C) asyncx authors
 *
 * The calls of a pipeline: each is a background in-memory subrequest
 * (one per attempt), a POST of its own JSON document with its own header
 * list; its post_subrequest handler and its timer record the outcome.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_json.h"
#include "ngx_http_asyncx_pipeline_json.h"


static ngx_int_t ngx_http_asyncx_pipeline_attempt(
    ngx_http_asyncx_pipeline_call_t *call);
static void ngx_http_asyncx_pipeline_attempt_end(
    ngx_http_asyncx_pipeline_call_t *call, ngx_http_asyncx_call_kind_e kind,
    ngx_uint_t status, ngx_str_t *answer);
static ngx_uint_t ngx_http_asyncx_pipeline_values_hold(ngx_http_request_t *r,
    ngx_array_t *values, u_char c);
static ngx_int_t ngx_http_asyncx_pipeline_eval_uri(
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_http_asyncx_pipeline_call_t *call,
    ngx_str_t *uri, ngx_str_t *args);
static void ngx_http_asyncx_pipeline_setup_subrequest(
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_http_request_t *sr,
    ngx_http_asyncx_pipeline_attempt_t *a);
static ngx_uint_t ngx_http_asyncx_pipeline_dropped(
    ngx_http_asyncx_pipeline_conf_t *pcf, ngx_table_elt_t *h);
static ngx_int_t ngx_http_asyncx_pipeline_push_header(ngx_http_request_t *r,
    ngx_http_headers_in_t *hin, ngx_table_elt_t *h, ngx_uint_t client);
static void ngx_http_asyncx_pipeline_forget_header(ngx_http_request_t *r,
    ngx_http_headers_in_t *hin, ngx_table_elt_t *h);
static ngx_int_t ngx_http_asyncx_pipeline_call_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static ngx_uint_t ngx_http_asyncx_pipeline_error_page(ngx_http_request_t *sr,
    ngx_int_t rc);
static ngx_int_t ngx_http_asyncx_pipeline_header_filter(
    ngx_http_request_t *r);
static ngx_int_t ngx_http_asyncx_pipeline_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static void ngx_http_asyncx_pipeline_call_timeout(ngx_event_t *ev);
static void ngx_http_asyncx_pipeline_arm_timer(
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_msec_t expires);
static u_char *ngx_http_asyncx_pipeline_message(
    ngx_http_asyncx_pipeline_call_t *call, ngx_http_asyncx_call_kind_e kind,
    ngx_uint_t status, u_char *msg, size_t size);
static void ngx_http_asyncx_pipeline_record(
    ngx_http_asyncx_pipeline_call_t *call, ngx_http_asyncx_call_kind_e kind,
    ngx_uint_t status, ngx_str_t *answer);


static ngx_http_output_header_filter_pt
    ngx_http_asyncx_pipeline_next_header_filter;
static ngx_http_output_body_filter_pt
    ngx_http_asyncx_pipeline_next_body_filter;


ngx_int_t
ngx_http_asyncx_pipeline_init_filter(ngx_conf_t *cf)
{
    ngx_http_asyncx_pipeline_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_asyncx_pipeline_header_filter;

    ngx_http_asyncx_pipeline_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_asyncx_pipeline_body_filter;

    return NGX_OK;
}


/*
 * The calls' runtime state: attempts (1 + retries per call, one
 * allocation) and one timer for all the calls in flight, all in the
 * request pool.
 */

ngx_int_t
ngx_http_asyncx_pipeline_init_calls(ngx_http_asyncx_pipeline_ctx_t *ctx)
{
    ngx_uint_t                              i, n;
    ngx_http_request_t                     *r;
    ngx_http_asyncx_pipeline_call_t        *call;
    ngx_http_asyncx_pipeline_attempt_t     *a;
    ngx_http_asyncx_main_conf_t            *amcf;
    ngx_http_asyncx_pipeline_call_conf_t   *ccf;
    ngx_http_asyncx_pipeline_stage_conf_t  *stage;

    r = ctx->request;
    ccf = ctx->conf->calls->elts;
    n = ctx->conf->calls->nelts;
    stage = ctx->conf->stages->elts;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_asyncx_module);

    if (ngx_http_asyncx_pipeline_block_reserve(&amcf->pipeline.blocks,
                r->pool,
                ngx_http_asyncx_pipeline_reserve_size(n, ctx->body.len),
                ngx_http_asyncx_pipeline_reserve_size(stage[0].ncalls,
                                                      ctx->body.len))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ctx->calls = ngx_pcalloc(r->pool,
                             n * sizeof(ngx_http_asyncx_pipeline_call_t)
                             + ctx->conf->nattempts
                               * sizeof(ngx_http_asyncx_pipeline_attempt_t));
    if (ctx->calls == NULL) {
        return NGX_ERROR;
    }

    a = (ngx_http_asyncx_pipeline_attempt_t *) &ctx->calls[n];

    for (i = 0; i < n; i++) {
        call = &ctx->calls[i];

        call->ctx = ctx;
        call->conf = &ccf[i];
        call->attempts = a;

        a += 1 + ccf[i].retries;
    }

    ctx->timer.handler = ngx_http_asyncx_pipeline_call_timeout;
    ctx->timer.data = ctx;
    ctx->timer.log = r->connection->log;

    return NGX_OK;
}


/*
 * The request pool's room for a pipeline of n calls whose client sent
 * body_len bytes: for each call its subrequest, its document (the
 * client's body and earlier answers), its captured answer and what its
 * location allocates, about 5 KB a call for the demo's mock services.
 * Whole pages, so that pipelines with bodies of nearby sizes reuse each
 * other's blocks.  And an aligned end, as every pool block has:
 * ngx_palloc_small() aligns d.last before it compares with d.end, and an
 * aligned d.last past an odd end would pass the unsigned test and write
 * past the block (an odd body length did, crashing the worker:
 * t/013-http2.t).
 */

#define NGX_HTTP_ASYNCX_PIPELINE_RESERVE_MAX  (256 * 1024)

size_t
ngx_http_asyncx_pipeline_reserve_size(ngx_uint_t n, size_t body_len)
{
    size_t  size, call;

    call = sizeof(ngx_http_request_t)
           + ngx_http_max_module * sizeof(void *)
           + 24 * sizeof(ngx_table_elt_t)
           + 2048 + 2 * body_len;

    size = 4096 + n * (sizeof(ngx_http_asyncx_pipeline_call_t)
                       + sizeof(ngx_http_asyncx_pipeline_attempt_t) + call);

    if (size > NGX_HTTP_ASYNCX_PIPELINE_RESERVE_MAX) {
        size = NGX_HTTP_ASYNCX_PIPELINE_RESERVE_MAX;
    }

    return ngx_align(size, ngx_pagesize);
}


/*
 * Issues a call: its document, its URI and arguments are built once,
 * then attempt() issues the subrequest (again for each retry).
 */

void
ngx_http_asyncx_pipeline_issue(ngx_http_asyncx_pipeline_ctx_t *ctx,
    ngx_http_asyncx_pipeline_call_t *call)
{
    u_char                                *p, *q;
    ngx_int_t                              rc;
    ngx_str_t                              uri, args;
    ngx_http_request_t                    *r;
    ngx_http_asyncx_pipeline_call_conf_t  *ccf;

    r = ctx->request;
    ccf = call->conf;

    call->start = ngx_http_asyncx_now_usec();
    call->deadline = call->start + (uint64_t) ctx->conf->call_timeout * 1000;
    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_CALLS, 1);
    ngx_http_asyncx_metrics_call_start(ccf->metrics);

    if (ngx_http_asyncx_pipeline_document(ctx, call, &call->doc) != NGX_OK) {
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

    call->uri = uri;
    call->args = args;

    if (ngx_http_asyncx_pipeline_attempt(call) != NGX_OK) {
        goto failed;
    }

    call->state = NGX_HTTP_ASYNCX_CALL_PENDING;
    ctx->pending++;

    return;

failed:

    /* recorded while not pending: the wave's count is not touched */
    ngx_http_asyncx_pipeline_record(call, NGX_HTTP_ASYNCX_CALL_ERROR,
                                    NGX_HTTP_INTERNAL_SERVER_ERROR, NULL);
    call->state = NGX_HTTP_ASYNCX_CALL_DONE;
}


/*
 * One attempt of a call: a background in-memory subrequest, timed out
 * after asyncx_call_idempotent's attempt_timeout or what is left of the
 * call's own deadline, whichever is shorter.
 */

static ngx_int_t
ngx_http_asyncx_pipeline_attempt(ngx_http_asyncx_pipeline_call_t *call)
{
    uint64_t                             now, left;
    ngx_msec_t                           timeout;
    ngx_http_request_t                  *r, *sr;
    ngx_http_asyncx_pipeline_ctx_t      *ctx;
    ngx_http_asyncx_pipeline_attempt_t  *a;

    ctx = call->ctx;
    r = ctx->request;
    a = &call->attempts[call->nattempts];

    a->call = call;
    a->ps.handler = ngx_http_asyncx_pipeline_call_done;
    a->ps.data = a;

    now = ngx_http_asyncx_now_usec();
    a->start = now;

    /*
     * Background: the calls neither wait for each other in the parent's
     * postponed list nor wake it; call_done() wakes the parent when the
     * wave is over.  In memory: the answer is captured, never sent.
     */

    if (ngx_http_subrequest(r, &call->uri, &call->args, &sr, &a->ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY
                            |NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* until call_done(): the subrequest holds a reference on r */
    a->running = 1;
    call->nattempts++;

    ngx_http_asyncx_pipeline_setup_subrequest(ctx, sr, a);

    left = call->deadline > now ? (call->deadline - now + 999) / 1000 : 1;
    timeout = (ngx_msec_t) left;

    /*
     * The timer runs to the call's deadline, less what the set-up took
     * since the call started; the message names the configured time.
     */
    a->limit = ctx->conf->call_timeout;

    if (call->conf->attempt_timeout && call->conf->attempt_timeout < timeout) {
        timeout = call->conf->attempt_timeout;
        a->limit = timeout;
    }

    a->timeout = timeout;
    a->expires = ngx_current_msec + ngx_http_asyncx_pipeline_timer_lag()
                 + timeout;

    ngx_http_asyncx_pipeline_arm_timer(ctx, a->expires);

    ngx_log_debug6(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "asyncx pipeline: call \"%V\" \"%V?%V\", %uz bytes, "
                   "attempt %ui, %M ms",
                   &call->conf->name, &call->uri, &call->args, call->doc.len,
                   call->nattempts, timeout);

    return NGX_OK;
}


/*
 * The end of an attempt: a retry if the call is idempotent, the failure
 * is one worth retrying (a timeout, an error without an answer, a 5xx),
 * attempts are left and so is time before the call's deadline; else the
 * call's outcome.  A timed-out attempt keeps running, abandoned.
 */

static void
ngx_http_asyncx_pipeline_attempt_end(ngx_http_asyncx_pipeline_call_t *call,
    ngx_http_asyncx_call_kind_e kind, ngx_uint_t status, ngx_str_t *answer)
{
    ngx_http_request_t                  *r;
    ngx_http_asyncx_pipeline_ctx_t      *ctx;
    ngx_http_asyncx_pipeline_attempt_t  *a;

    ctx = call->ctx;
    r = ctx->request;
    a = &call->attempts[call->nattempts - 1];

    a->end = ngx_http_asyncx_now_usec();
    a->kind = kind;
    a->status = status;

    if (kind != NGX_HTTP_ASYNCX_CALL_OK
        && call->nattempts <= call->conf->retries
        && ngx_http_asyncx_pipeline_retryable(kind, status)
        && a->end + 1000 < call->deadline
        && !ctx->finished)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "asyncx pipeline: call \"%V\" attempt %ui of %ui "
                      "failed (%s, status %ui), retrying",
                      &call->conf->name, call->nattempts,
                      call->conf->retries + 1,
                      ngx_http_asyncx_pipeline_kind_name(kind), status);

        ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_RETRIES, 1);

        if (ngx_http_asyncx_pipeline_attempt(call) == NGX_OK) {
            return;
        }

        kind = NGX_HTTP_ASYNCX_CALL_ERROR;
        status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        answer = NULL;
    }

    ngx_http_asyncx_pipeline_record(call, kind, status, answer);
}


/* the pipeline's deadline: a call still in flight is abandoned */

void
ngx_http_asyncx_pipeline_abandon(ngx_http_asyncx_pipeline_call_t *call)
{
    if (call->state == NGX_HTTP_ASYNCX_CALL_PENDING) {
        ngx_http_asyncx_pipeline_record(call,
                                        NGX_HTTP_ASYNCX_CALL_ABANDONED,
                                        NGX_HTTP_GATEWAY_TIME_OUT, NULL);
    }
}


/* subrequests of the pipeline not finished yet (abandoned attempts) */

ngx_uint_t
ngx_http_asyncx_pipeline_running(ngx_http_asyncx_pipeline_ctx_t *ctx)
{
    ngx_uint_t                        i, j, n;
    ngx_http_asyncx_pipeline_call_t  *call;

    n = 0;

    for (i = 0; i < ctx->conf->calls->nelts; i++) {
        call = &ctx->calls[i];

        for (j = 0; j < call->nattempts; j++) {
            n += call->attempts[j].running;
        }
    }

    return n;
}


/* whether one of the variables' values holds the byte c */

static ngx_uint_t
ngx_http_asyncx_pipeline_values_hold(ngx_http_request_t *r,
    ngx_array_t *values, u_char c)
{
    ngx_uint_t                  i, *index;
    ngx_http_variable_value_t  *v;

    if (values == NULL) {
        return 0;
    }

    index = values->elts;

    for (i = 0; i < values->nelts; i++) {
        v = ngx_http_get_indexed_variable(r, index[i]);

        if (v && !v->not_found
            && ngx_strlchr(v->data, v->data + v->len, c) != NULL)
        {
            return 1;
        }
    }

    return 0;
}


/*
 * A call URI with variables, evaluated in the client request.  The path
 * and the arguments are evaluated apart, so a variable in the path
 * cannot add arguments; the path is percent-decoded and checked for dot
 * segments as nginx does for SSI includes, and what it decodes to is
 * checked again (check_decoded).  NGX_DECLINED: unsafe (the
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

    /* each of the client's values fills one segment, or one value */
    if (ngx_http_asyncx_pipeline_values_hold(r, ccf->segments, '/')
        || ngx_http_asyncx_pipeline_values_hold(r, ccf->arg_values, '&'))
    {
        goto invalid;
    }

    ngx_str_null(&split);
    flags = 0;
    raw = *uri;

    if (ngx_http_parse_unsafe_uri(r, uri, &split, &flags) != NGX_OK
        || split.len
        || ngx_http_asyncx_pipeline_check_decoded(&raw, uri) != NGX_OK)
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
 * The request headers every call of the pipeline gets, built once: a
 * copy of the client's headers_in whose list holds the client's headers
 * (asyncx_call_pass_request_headers) minus the dropped ones (body
 * headers, Accept-Encoding, ranges, conditions, asyncx_call_hide_header),
 * then asyncx_call_set_header's, evaluated in the client request (an
 * empty value sends no header, as with proxy_set_header), then
 * Content-Type.  Each call adds its own Content-Length (setup_subrequest).
 * NGX_DECLINED: a value evaluated to a CR, LF or NUL, which would end
 * the header line in the call (*bad names the header).
 */

ngx_int_t
ngx_http_asyncx_pipeline_headers(ngx_http_asyncx_pipeline_ctx_t *ctx,
    ngx_str_t *bad)
{
    ngx_str_t                           value;
    ngx_uint_t                          i, n;
    ngx_list_part_t                    *part;
    ngx_table_elt_t                    *h, nh;
    ngx_http_request_t                 *r;
    ngx_http_headers_in_t              *hin;
    ngx_http_asyncx_pipeline_header_t  *set;

    r = ctx->request;
    hin = &ctx->headers_in;

    *hin = r->headers_in;

    hin->content_length = NULL;
    hin->content_type = NULL;
    hin->transfer_encoding = NULL;
    hin->chunked = 0;

    n = 1 + (ctx->conf->set_headers ? ctx->conf->set_headers->nelts : 0);

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        n += part->nelts;
    }

    /* one part: the list of every call links its own after it */
    if (ngx_list_init(&hin->headers, r->pool, n, sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;

        for (i = 0; i < part->nelts; i++) {

            if (h[i].hash == 0) {
                continue;
            }

            if (!ctx->conf->pass_request_headers
                || ngx_http_asyncx_pipeline_dropped(ctx->conf, &h[i]))
            {
                ngx_http_asyncx_pipeline_forget_header(r, hin, &h[i]);
                continue;
            }

            if (ngx_http_asyncx_pipeline_push_header(r, hin, &h[i], 1)
                != NGX_OK)
            {
                return NGX_ERROR;
            }
        }
    }

    set = ctx->conf->set_headers ? ctx->conf->set_headers->elts : NULL;

    for (i = 0; set && i < ctx->conf->set_headers->nelts; i++) {

        if (ngx_http_complex_value(r, &set[i].value, &value) != NGX_OK) {
            return NGX_ERROR;
        }

        if (value.len == 0) {
            continue;
        }

        if (ngx_http_asyncx_pipeline_check_header_value(value.data, value.len)
            != NGX_OK)
        {
            *bad = set[i].name;
            return NGX_DECLINED;
        }

        ngx_memzero(&nh, sizeof(ngx_table_elt_t));
        nh.key = set[i].name;
        nh.value = value;
        nh.lowcase_key = set[i].lowcase.data;
        nh.hash = set[i].hash;

        if (ngx_http_asyncx_pipeline_push_header(r, hin, &nh, 0) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* the real hash: proxy and fastcgi look their own headers up by it */

    ngx_memzero(&nh, sizeof(ngx_table_elt_t));
    ngx_str_set(&nh.key, "Content-Type");
    ngx_str_set(&nh.value, "application/json");
    nh.lowcase_key = (u_char *) "content-type";
    nh.hash = ngx_hash_key(nh.lowcase_key, nh.key.len);

    return ngx_http_asyncx_pipeline_push_header(r, hin, &nh, 0);
}


/*
 * A subrequest starts as a GET sharing the parent's body and headers.
 * A call is a POST of its own JSON document with the pipeline's header
 * list plus its own Content-Length, so proxy_pass and fastcgi_pass send
 * exactly that.  Everything lives in the attempt and the call.
 */

static void
ngx_http_asyncx_pipeline_setup_subrequest(ngx_http_asyncx_pipeline_ctx_t *ctx,
    ngx_http_request_t *sr, ngx_http_asyncx_pipeline_attempt_t *a)
{
    ngx_buf_t                        *b;
    ngx_http_asyncx_pipeline_call_t  *call;

    call = a->call;

    sr->method = NGX_HTTP_POST;
    ngx_str_set(&sr->method_name, "POST");

    b = &a->buf;
    ngx_memzero(b, sizeof(ngx_buf_t));

    b->start = call->doc.data;
    b->pos = call->doc.data;
    b->last = call->doc.data + call->doc.len;
    b->end = call->doc_end;    /* the outline follows the text */
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;
    b->tag = NGX_HTTP_ASYNCX_PIPELINE_DOCUMENT_TAG;

    a->chain.buf = b;
    a->chain.next = NULL;

    ngx_memzero(&a->body, sizeof(ngx_http_request_body_t));
    a->body.bufs = &a->chain;
    a->body.buf = b;
    a->body.received = call->doc.len;

    sr->request_body = &a->body;
    sr->reading_body = 0;
    sr->request_body_no_buffering = 0;

    sr->headers_in = ctx->headers_in;
    sr->headers_in.content_length_n = call->doc.len;

    if (call->content_length.hash == 0) {
        call->content_length.hash = ngx_hash_key((u_char *) "content-length",
                                          sizeof("content-length") - 1);
        ngx_str_set(&call->content_length.key, "Content-Length");
        call->content_length.lowcase_key = (u_char *) "content-length";
        call->content_length.value.data = call->length;
        call->content_length.value.len =
            ngx_http_asyncx_write_uint(call->length,
                                       call->length + NGX_OFF_T_LEN,
                                       call->doc.len)
            - call->length;
    }

    /* the shared part, then this call's: one element, no room for more */
    a->headers.elts = &call->content_length;
    a->headers.nelts = 1;
    a->headers.next = NULL;

    sr->headers_in.headers.part.next = &a->headers;
    sr->headers_in.headers.last = &a->headers;
    sr->headers_in.headers.nalloc = 1;
    sr->headers_in.content_length = &call->content_length;
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
 * Besides the list, nginx keeps pointers to well-known headers in
 * headers_in (what $http_*, $cookie_* and the gzip and proxy modules
 * read).  A header added to the calls' list also takes its well-known
 * slot; a client header that is not passed loses its slot, so a call's
 * location sees exactly its own list.
 */

static ngx_int_t
ngx_http_asyncx_pipeline_push_header(ngx_http_request_t *r,
    ngx_http_headers_in_t *hin, ngx_table_elt_t *h, ngx_uint_t client)
{
    ngx_table_elt_t            *nh, **ph;
    ngx_http_header_t          *hh;
    ngx_http_core_main_conf_t  *cmcf;

    nh = ngx_list_push(&hin->headers);
    if (nh == NULL) {
        return NGX_ERROR;
    }

    *nh = *h;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

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

        a = (ngx_array_t *) ((char *) hin + hh->offset);
        pa = (ngx_array_t *) ((char *) &r->headers_in + hh->offset);

        if (a->elts == pa->elts) {
            /* still the client's array: the calls get their own */
            if (ngx_array_init(a, r->pool, 1, sizeof(ngx_table_elt_t *))
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

    ph = (ngx_table_elt_t **) ((char *) hin + hh->offset);

    /* a client header keeps the slot nginx gave it (the first of its
     * name); a header of the pipeline's takes it */

    if (!client || *ph == h || *ph == NULL) {
        *ph = nh;
    }

    return NGX_OK;
}


static void
ngx_http_asyncx_pipeline_forget_header(ngx_http_request_t *r,
    ngx_http_headers_in_t *hin, ngx_table_elt_t *h)
{
    ngx_table_elt_t            **ph;
    ngx_http_header_t           *hh;
    ngx_http_core_main_conf_t   *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_core_module);

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
        ((ngx_array_t *) ((char *) hin + hh->offset))->nelts = 0;
        return;
    }

#endif

    ph = (ngx_table_elt_t **) ((char *) hin + hh->offset);

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
    ngx_http_asyncx_pipeline_attempt_t *a = data;

    ngx_str_t                         answer;
    ngx_buf_t                        *b;
    ngx_http_asyncx_json_info_t       info;
    ngx_uint_t                        status, overflow, output_failed;
    ngx_http_core_loc_conf_t         *clcf;
    ngx_http_asyncx_pipeline_ctx_t   *ctx;
    ngx_http_asyncx_pipeline_call_t  *call;
    ngx_http_asyncx_call_kind_e       kind;

    call = a->call;
    ctx = call->ctx;
    a->running = 0;

    /*
     * ngx_http_output_filter() marks the client connection failed on any
     * filter error, and the in-memory capture refuses an answer larger
     * than subrequest_output_buffer_size (of the call's location) with
     * such an error.  When nothing was sent to the client yet, or the
     * filters refused this attempt's answer while the connection had no
     * error of its own (a late attempt's, while the pipeline's answer is
     * being sent), the error is this call's alone: clear it, or nginx
     * would close the client connection, and record the call as too
     * large.  What the filters still hold of the refused answer is
     * dropped with it (the copy filter holds the rest of an answer
     * buffered to a temp file): nginx would otherwise leave the
     * subrequest to finish on a write event, which a background
     * subrequest never gets, and its reference would keep the client
     * request and connection for good.  A client gone (eof) keeps its
     * error: its request is ending.
     */

    output_failed = 0;

    if (sr->connection->error && !sr->connection->read->eof
        && (a->refused || (!ctx->request->header_sent && !ctx->finished)))
    {
        sr->connection->error = 0;
        sr->buffered = 0;
        output_failed = 1;
    }

    if (call->state != NGX_HTTP_ASYNCX_CALL_PENDING || ctx->finished
        || a != &call->attempts[call->nattempts - 1])
    {
        /* timed out earlier, or the answer is no longer wanted */
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                       "asyncx pipeline: late answer of \"%V\" ignored, "
                       "rc %i", &call->conf->name, rc);
        return NGX_OK;
    }

    if (!output_failed && ngx_http_asyncx_pipeline_error_page(sr, rc)) {
        /*
         * nginx calls this before it looks at the location's error_page:
         * the page it sends next (a static file's "error_page 405 =200
         * $uri", say) is the call's answer, and this handler runs again
         * when it is done
         */
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                       "asyncx pipeline: call \"%V\" answered %i, "
                       "its error_page follows", &call->conf->name, rc);
        a->running = 1;
        return rc;
    }

    status = (rc >= NGX_HTTP_SPECIAL_RESPONSE) ? (ngx_uint_t) rc
                                               : sr->headers_out.status;

    clcf = ngx_http_get_module_loc_conf(sr, ngx_http_core_module);
    b = sr->out ? sr->out->buf : NULL;

    overflow = output_failed
               || (rc == NGX_ERROR
                   && sr->headers_out.content_length_n
                      > (off_t) clcf->subrequest_output_buffer_size);

    /*
     * too large to capture: a 2xx answer's value is lost, a non-2xx
     * answer still failed by its status (a large HTML error page), which
     * decides whether it is retried
     */
    kind = ngx_http_asyncx_pipeline_classify(rc, status,
                                             overflow && status >= 200
                                             && status < 300);

    if (overflow && kind == NGX_HTTP_ASYNCX_CALL_ERROR
        && status >= 300 && status < 600)
    {
        kind = NGX_HTTP_ASYNCX_CALL_STATUS;
    }

    /* what an error's message says besides "call failed" */
    ngx_str_null(&call->detail);

    if (kind == NGX_HTTP_ASYNCX_CALL_STATUS
        && rc >= NGX_HTTP_SPECIAL_RESPONSE
        && sr->upstream != NULL
        && sr->upstream->headers_in.status_n != (ngx_uint_t) rc)
    {
        /*
         * nginx's own 502 or 504 for a backend that gave no answer it
         * could use (connect error, closed or timed out before its
         * header, a header too big): nginx logged why.  Not the status
         * of an answer (proxy_intercept_errors finalizes with the
         * backend's own status).
         */
        kind = NGX_HTTP_ASYNCX_CALL_ERROR;

        if (sr->upstream->headers_in.status_n == 0) {
            ngx_str_set(&call->detail, "no answer from the backend");

        } else {
            ngx_str_set(&call->detail, "the backend's header was refused");
        }

    /* (an answer nginx makes itself, rc >= 300, comes after this) */
    } else if ((kind == NGX_HTTP_ASYNCX_CALL_OK
         || kind == NGX_HTTP_ASYNCX_CALL_STATUS)
        && rc < NGX_HTTP_SPECIAL_RESPONSE
        && sr->upstream != NULL && !a->whole && !overflow
        && !sr->header_only)
    {
        /* nginx logged "upstream prematurely closed connection" */
        kind = NGX_HTTP_ASYNCX_CALL_ERROR;
        status = NGX_HTTP_BAD_GATEWAY;
        ngx_str_set(&call->detail, "the answer was cut short");

    } else if (kind == NGX_HTTP_ASYNCX_CALL_ERROR) {
        /*
         * no status line came, or the answer after it broke (invalid
         * chunks, a 101 upgrade a subrequest cannot take): nginx logged
         * why; the status it had is not the call's
         */
        if (sr->upstream != NULL) {
            if (status < 100) {
                ngx_str_set(&call->detail, "no valid HTTP answer");

            } else {
                ngx_str_set(&call->detail, "the answer was broken");
            }

            status = NGX_HTTP_BAD_GATEWAY;

        } else if (status < 300) {
            status = NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    answer.len = 0;

    if (b && (kind == NGX_HTTP_ASYNCX_CALL_OK
              || kind == NGX_HTTP_ASYNCX_CALL_STATUS)
        && ngx_http_asyncx_json_validate(b->pos, b->last - b->pos,
                                         NGX_HTTP_ASYNCX_JSON_PIPELINE, &info)
           == NGX_OK)
    {
        /* the captured answer lives in the request pool: keep the text */
        answer.data = info.start;
        answer.len = info.end - info.start;
    }

    if (kind == NGX_HTTP_ASYNCX_CALL_OK && answer.len == 0) {

        if (status == NGX_HTTP_NO_CONTENT || status == 205) {
            /* "done, nothing to say" (205: and reset): no value */
            ngx_str_set(&answer, "null");

        } else {
            kind = NGX_HTTP_ASYNCX_CALL_INVALID_JSON;

            if (sr->headers_out.content_encoding) {
                call->detail = sr->headers_out.content_encoding->value;
            }
        }
    }

    ngx_http_asyncx_pipeline_attempt_end(call, kind, status, &answer);

    return NGX_OK;
}


/*
 * A call's answer from an upstream that buffers it (proxy_buffering on)
 * but may not spill it to a temp file (proxy_max_temp_file_size 0).
 * nginx's event pipe hands a buffered answer on only to the request the
 * client connection writes for, or once it has the whole answer: a call,
 * a background subrequest, is never that request, so an answer larger
 * than proxy_buffers would stall until the call's timeout.  It goes
 * unbuffered instead, as "X-Accel-Buffering: no" would make it: straight
 * into the capture buffer, which refuses one too large at once.
 */

static ngx_int_t
ngx_http_asyncx_pipeline_header_filter(ngx_http_request_t *r)
{
    ngx_http_upstream_t  *u;

    u = r->upstream;

    if (u != NULL
        && r->post_subrequest != NULL
        && r->post_subrequest->handler == ngx_http_asyncx_pipeline_call_done
        && u->buffering
        && u->conf->change_buffering
        && u->conf->max_temp_file_size == 0
        && !u->cacheable
        && !u->store)
    {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "asyncx pipeline: call answer unbuffered, "
                       "no temp file allowed");

        u->buffering = 0;
    }

    return ngx_http_asyncx_pipeline_next_header_filter(r);
}


/*
 * Whether nginx's ngx_http_special_response_handler() will answer the
 * subrequest's rc with its location's error_page (the same tests).
 */

static ngx_uint_t
ngx_http_asyncx_pipeline_error_page(ngx_http_request_t *sr, ngx_int_t rc)
{
    ngx_uint_t                 i;
    ngx_http_err_page_t       *err_page;
    ngx_http_core_loc_conf_t  *clcf;

    /* nginx ends the request on these instead of sending a page */
    if (rc < NGX_HTTP_SPECIAL_RESPONSE || rc == NGX_HTTP_CLOSE
        || rc == NGX_HTTP_REQUEST_TIME_OUT
        || rc == NGX_HTTP_CLIENT_CLOSED_REQUEST
        || sr->error_page || sr->uri_changes == 0 || sr->connection->error)
    {
        return 0;
    }

    clcf = ngx_http_get_module_loc_conf(sr, ngx_http_core_module);

    if (clcf->error_pages == NULL) {
        return 0;
    }

    err_page = clcf->error_pages->elts;

    for (i = 0; i < clcf->error_pages->nelts; i++) {
        if (err_page[i].status == rc) {
            return 1;
        }
    }

    return 0;
}


/*
 * A call's answer is whole once its last buffer goes by.  nginx's
 * upstream ends an answer cut short (the backend closed before its
 * Content-Length or its last chunk) with a flush instead, and then
 * finalizes the subrequest as done, status 200: call_done() tells them
 * apart by this mark.
 */

static ngx_int_t
ngx_http_asyncx_pipeline_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_int_t                            rc;
    ngx_uint_t                           error;
    ngx_chain_t                         *cl;
    ngx_http_asyncx_pipeline_attempt_t  *a;

    if (r->post_subrequest == NULL
        || r->post_subrequest->handler != ngx_http_asyncx_pipeline_call_done)
    {
        return ngx_http_asyncx_pipeline_next_body_filter(r, in);
    }

    a = r->post_subrequest->data;

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_in_chain || cl->buf->last_buf) {
            a->whole = 1;
            break;
        }
    }

    error = r->connection->error;

    rc = ngx_http_asyncx_pipeline_next_body_filter(r, in);

    /* ngx_http_output_filter() marks the connection failed after this */
    if (rc == NGX_ERROR && !error) {
        a->refused = 1;
    }

    return rc;
}


static void
ngx_http_asyncx_pipeline_call_timeout(ngx_event_t *ev)
{
    ngx_uint_t                           i;
    ngx_msec_t                           next;
    ngx_connection_t                    *c;
    ngx_http_request_t                  *r;
    ngx_http_asyncx_pipeline_ctx_t      *ctx;
    ngx_http_asyncx_pipeline_call_t     *call;
    ngx_http_asyncx_pipeline_attempt_t  *a;

    ctx = ev->data;
    r = ctx->request;
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    /*
     * The subrequests cannot be cancelled: a timed-out attempt is
     * abandoned and its answer ignored.  It still holds a reference on
     * the client request, which is released when its location finishes
     * it or when the pipeline's answer has been sent
     * (ngx_http_asyncx_pipeline_finish).
     */

    for (i = 0; i < ctx->conf->calls->nelts && !ctx->finished; i++) {
        call = &ctx->calls[i];

        if (call->state != NGX_HTTP_ASYNCX_CALL_PENDING) {
            continue;
        }

        a = &call->attempts[call->nattempts - 1];

        if ((ngx_msec_int_t) (a->expires - ngx_current_msec) <= 0) {
            /* may issue a retry, which arms the timer again */
            ngx_http_asyncx_pipeline_attempt_end(call,
                                                NGX_HTTP_ASYNCX_CALL_TIMEOUT,
                                                NGX_HTTP_GATEWAY_TIME_OUT,
                                                NULL);
        }
    }

    /* the next attempt to time out, if any is left in flight */

    for (i = 0; i < ctx->conf->calls->nelts && !ctx->finished; i++) {
        call = &ctx->calls[i];

        if (call->state != NGX_HTTP_ASYNCX_CALL_PENDING) {
            continue;
        }

        next = call->attempts[call->nattempts - 1].expires;
        ngx_http_asyncx_pipeline_arm_timer(ctx, next);
    }

    ngx_http_run_posted_requests(c);
}


/*
 * One timer for all the calls in flight, set for the first of them to
 * time out: a wave of calls costs one timer, not one per call, and the
 * pipeline one for all its waves unless a later call expires earlier.
 */

static void
ngx_http_asyncx_pipeline_arm_timer(ngx_http_asyncx_pipeline_ctx_t *ctx,
    ngx_msec_t expires)
{
    ngx_msec_int_t  left;

    if (ctx->timer.timer_set
        && (ngx_msec_int_t) (expires - ctx->timer_expires) >= 0)
    {
        return;
    }

    if (ctx->timer.timer_set) {
        /* ngx_add_timer() would not move it by less than 300 ms */
        ngx_del_timer(&ctx->timer);
    }

    left = (ngx_msec_int_t) (expires - ngx_current_msec);

    ctx->timer_expires = expires;
    ngx_add_timer(&ctx->timer, left > 0 ? (ngx_msec_t) left : 0);
}


/*
 * nginx's ngx_current_msec, which timers count from, is updated once per
 * event-loop turn, while the module times calls with the monotonic clock
 * itself (the same clock, in microseconds).  A timer armed late in a
 * long turn would fire early by the module's own numbers ("no answer
 * within 100 ms" after 84 ms): the time the turn has taken so far is
 * added to it, rounded up to a whole millisecond (nginx's timers count
 * whole ones: rounded down, a 50 ms pipeline timeout fired after 49.6 ms
 * of the module's clock).
 */

ngx_msec_t
ngx_http_asyncx_pipeline_timer_lag(void)
{
    ngx_msec_int_t  lag;

    lag = (ngx_msec_int_t) ((ngx_msec_t)
                            ((ngx_http_asyncx_now_usec() + 999) / 1000)
                            - ngx_current_msec);

    return lag > 0 ? (ngx_msec_t) lag : 0;
}


void
ngx_http_asyncx_pipeline_cancel_timer(ngx_http_asyncx_pipeline_ctx_t *ctx)
{
    if (ctx->timer.timer_set) {
        ngx_del_timer(&ctx->timer);
    }
}


/*
 * Why a call failed, for the log and the answers; returns the end of
 * the text in msg.
 */

static u_char *
ngx_http_asyncx_pipeline_message(ngx_http_asyncx_pipeline_call_t *call,
    ngx_http_asyncx_call_kind_e kind, ngx_uint_t status, u_char *msg,
    size_t size)
{
    u_char  *p, *last;

    last = msg + size;

    switch (kind) {

    case NGX_HTTP_ASYNCX_CALL_STATUS:
        p = ngx_snprintf(msg, size, "service answered %ui", status);
        break;

    case NGX_HTTP_ASYNCX_CALL_TIMEOUT:
        p = ngx_snprintf(msg, size, "no answer within %M ms",
                         call->attempts[call->nattempts - 1].limit);
        break;

    case NGX_HTTP_ASYNCX_CALL_ABANDONED:
        p = ngx_snprintf(msg, size, "abandoned at the pipeline timeout "
                         "(%M ms)", call->ctx->conf->pipeline_timeout);
        break;

    case NGX_HTTP_ASYNCX_CALL_INVALID_JSON:
        p = ngx_snprintf(msg, size, "answer is not valid JSON");

        if (call->detail.len == 0) {
            break;
        }

        /* a backend that compresses anyway: say so (a token only, the
         * value is the backend's and ends up in JSON and in the log) */

        if (call->detail.len == 4
            && ngx_strncasecmp(call->detail.data, (u_char *) "gzip", 4)
               == 0)
        {
            p = ngx_snprintf(p, last - p,
                             " (Content-Encoding: gzip, \"gunzip on\" "
                             "in the call's location decodes it)");

        } else if (ngx_http_asyncx_pipeline_check_token(call->detail.data,
                                                        call->detail.len)
                   == NGX_OK)
        {
            p = ngx_snprintf(p, last - p,
                             " (Content-Encoding: %V)", &call->detail);

        } else {
            p = ngx_snprintf(p, last - p,
                             " (compressed: Content-Encoding)");
        }

        break;

    case NGX_HTTP_ASYNCX_CALL_TOO_LARGE:
        p = ngx_snprintf(msg, size, "answer larger than the capture "
                         "buffer (subrequest_output_buffer_size)");
        break;

    case NGX_HTTP_ASYNCX_CALL_INVALID_URI:
        /*
         * the URI has the client's bytes: shown if short, with control
         * characters, bytes that are not UTF-8, '"' and '\' as \xNN (the
         * log line stays one line of text, the quote cannot be ended)
         */
        if (ngx_http_asyncx_utf8_escape_len(call->detail.data,
                                            call->detail.len,
                                            NGX_HTTP_ASYNCX_UTF8_CONTROLS
                                            |NGX_HTTP_ASYNCX_UTF8_QUOTES)
            <= 256)
        {
            p = ngx_snprintf(msg, size, "invalid URI \"");
            p = ngx_http_asyncx_utf8_escape(p, call->detail.data,
                                            call->detail.len,
                                            NGX_HTTP_ASYNCX_UTF8_CONTROLS
                                            |NGX_HTTP_ASYNCX_UTF8_QUOTES);
            *p++ = '"';

        } else {
            p = ngx_snprintf(msg, size, "invalid URI of %uz bytes",
                             call->detail.len);
        }

        break;

    default: /* NGX_HTTP_ASYNCX_CALL_ERROR */
        if (call->detail.len) {
            p = ngx_snprintf(msg, size, "%V", &call->detail);

        } else {
            p = ngx_snprintf(msg, size, "call failed");
        }

        break;
    }

    if (call->nattempts > 1) {
        p = ngx_slprintf(p, last, " after %ui attempts", call->nattempts);
    }

    return p;
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

    call->end = ngx_http_asyncx_now_usec();
    call->kind = kind;
    call->status = status;

    ngx_http_asyncx_metrics_call_end(ccf->metrics, kind,
                                     call->end - call->start);

    if (kind == NGX_HTTP_ASYNCX_CALL_OK) {
        call->answer = *answer;
        call->passed = *answer;
        goto done;
    }

    call->failed = 1;

    p = ngx_http_asyncx_pipeline_message(call, kind, status, msg,
                                         sizeof(msg));
    msg_len = p - msg;

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                  "asyncx pipeline: call \"%V\" failed: %*s (%s)%s",
                  &ccf->name, msg_len, msg,
                  ngx_http_asyncx_pipeline_kind_name(kind),
                  ccf->optional ? ", fallback used" : "");

    ngx_http_asyncx_stat_add(NGX_HTTP_ASYNCX_STAT_PIPELINE_CALL_ERRORS, 1);

    if (ccf->optional) {
        call->passed = ccf->fallback;

    } else if (kind != NGX_HTTP_ASYNCX_CALL_ABANDONED
               && (ctx->first_failed == NULL || call < ctx->first_failed))
    {
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
            /*
             * The timer stays: the next wave's calls expire later, so it
             * is not moved (call_timeout() sets it again if it fires
             * early); a pipeline costs one timer, not one per wave.
             */

            /* the parent runs the next wave from its own context */
            (void) ngx_http_post_request(r, NULL);
        }
    }
}
