
/*
 * Copyright (C) asyncx authors
 *
 * The exercise's answer to a pipeline ("asyncx_pipeline_answer
 * exercise"): Korean keys and times in seconds, "1.9초 (1단계 0.5초 +
 * 2단계 0.6초 + 3단계 0.8초)", with the same times in milliseconds next
 * to them.  Part of the demo: the product knows it only as one answer
 * format among others.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_pipeline_json.h"
#include "ngx_http_asyncx_exercise_answer.h"
#include "ngx_http_asyncx_exercise_format.h"


#define NGX_HTTP_ASYNCX_EXERCISE_DECIMALS    1
/* a breakdown longer than this shows the total alone */
#define NGX_HTTP_ASYNCX_EXERCISE_TEXT_LEN    2048

/* the longest seconds ("18446744073709.6초") and milliseconds */
#define NGX_HTTP_ASYNCX_EXERCISE_SEC_LEN                                     \
    (NGX_INT64_LEN + 1 + NGX_HTTP_ASYNCX_EXERCISE_DECIMALS                   \
     + sizeof(NGX_HTTP_ASYNCX_EXERCISE_SECONDS) - 1)
#define NGX_HTTP_ASYNCX_EXERCISE_MS_LEN      (NGX_INT64_LEN + 3)

#define NGX_HTTP_ASYNCX_EXERCISE_KEY(key)  "\"" key "\":"

/* the exercise's keys */
#define NGX_HTTP_ASYNCX_KEY_SEQ_ESTIMATE   "순차_실행_예상시간"
#define NGX_HTTP_ASYNCX_KEY_SEQ_MEASURED   "순차_실행_시간"
#define NGX_HTTP_ASYNCX_KEY_OPT_MEASURED   "최적화_실행_시간"
#define NGX_HTTP_ASYNCX_KEY_OPT_ESTIMATE   "최적화_실행_예상시간"
#define NGX_HTTP_ASYNCX_KEY_STAGES         "단계별_결과"
#define NGX_HTTP_ASYNCX_KEY_ELAPSED        "소요시간"
#define NGX_HTTP_ASYNCX_KEY_CALL_TIMES     "호출별_소요시간_ms"


/* the times the exercise's answer shows, from the stages that ran */

typedef struct {
    ngx_str_t                             *stage_names;
    uint64_t                              *est_stage;  /* slowest call */
    ngx_str_t                             *call_names;
    uint64_t                              *call_usec;
    ngx_uint_t                             nrun;
    ngx_uint_t                             ncalls;
    uint64_t                               sum;        /* of call times */
    uint64_t                               est;        /* of est_stage */
} ngx_http_asyncx_exercise_times_t;


static ngx_int_t ngx_http_asyncx_exercise_render(
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_str_t *text);
static u_char *ngx_http_asyncx_exercise_seconds(u_char *p, u_char *last,
    const char *key, uint64_t usec, ngx_str_t *names, uint64_t *parts,
    ngx_uint_t n);
static ngx_int_t ngx_http_asyncx_exercise_times(
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_http_asyncx_exercise_times_t *t);
static size_t ngx_http_asyncx_exercise_len(
    ngx_http_asyncx_pipeline_ctx_t *ctx);
static u_char *ngx_http_asyncx_exercise_headline(u_char *p, u_char *last,
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_http_asyncx_exercise_times_t *t);
static u_char *ngx_http_asyncx_exercise_stages(u_char *p, u_char *last,
    ngx_http_asyncx_pipeline_ctx_t *ctx);
static u_char *ngx_http_asyncx_exercise_call_times(u_char *p, u_char *last,
    ngx_http_asyncx_exercise_times_t *t);
static u_char *ngx_http_asyncx_exercise_lists(u_char *p, u_char *last,
    ngx_http_asyncx_pipeline_ctx_t *ctx);
static size_t ngx_http_asyncx_exercise_slot_len(
    ngx_http_asyncx_pipeline_call_t *call);
static u_char *ngx_http_asyncx_exercise_slot(u_char *p, u_char *last,
    ngx_http_asyncx_pipeline_call_t *call);


/* a stage object holds its calls and these keys: no call may be named so */
static ngx_str_t  ngx_http_asyncx_exercise_reserved[] = {
    ngx_string(NGX_HTTP_ASYNCX_KEY_ELAPSED),
    ngx_string(NGX_HTTP_ASYNCX_KEY_ELAPSED "_ms"),
    ngx_null_string
};


static ngx_http_asyncx_pipeline_answer_t  ngx_http_asyncx_exercise_answer = {
    ngx_string("exercise"),
    ngx_http_asyncx_exercise_render,
    ngx_http_asyncx_exercise_reserved
};


ngx_int_t
ngx_http_asyncx_exercise_answer_add(ngx_conf_t *cf)
{
    return ngx_http_asyncx_pipeline_add_answer(cf,
                                            &ngx_http_asyncx_exercise_answer);
}


/*
 * "key":"1.9초 (1단계 0.5초 + ...)","key_ms":1902.55, the text written
 * in place (its NUL is overwritten by what follows)
 */

static u_char *
ngx_http_asyncx_exercise_seconds(u_char *p, u_char *last, const char *key,
    uint64_t usec, ngx_str_t *names, uint64_t *parts, ngx_uint_t n)
{
    size_t  len, size;

    p = ngx_http_asyncx_copy_literal(p, last, "\"");
    p = ngx_http_asyncx_copy(p, last, key, ngx_strlen(key));
    p = ngx_http_asyncx_copy_literal(p, last, "\":\"");

    size = ngx_min((size_t) (last - p), NGX_HTTP_ASYNCX_EXERCISE_TEXT_LEN);

    len = ngx_http_asyncx_exercise_format_breakdown(p, size, usec,
                                     names, parts, n,
                                     NGX_HTTP_ASYNCX_EXERCISE_DECIMALS);
    if (len == 0) {
        if (size < NGX_HTTP_ASYNCX_EXERCISE_TEXT_LEN) {
            /* the answer's bound was short: no other text than before */
            return last;
        }

        /* too many parts to spell out: the total alone */
        len = ngx_http_asyncx_format_seconds(p, size, usec,
                                             NGX_HTTP_ASYNCX_EXERCISE_DECIMALS);
    }

    p = ngx_http_asyncx_copy_literal(p + len, last, "\",\"");
    p = ngx_http_asyncx_copy(p, last, key, ngx_strlen(key));
    p = ngx_http_asyncx_copy_literal(p, last, "_ms\":");

    return ngx_http_asyncx_pipeline_ms(p, last, usec);
}


/*
 * The exercise's answer, keys in this order:
 *   {"순차_실행_예상시간": "2.6초", "최적화_실행_시간": "1.9초 (1단계 ...)",
 *    "단계별_결과": {"1단계": {"사용자": {...}, "소요시간": "0.5초"}, ...}}
 * each time followed by its *_ms number; then per-call times, the mode,
 * and on failures failed_calls / skipped_calls / warnings / error /
 * status.  Sequential mode measures 순차_실행_시간 and estimates
 * 최적화_실행_예상시간 instead.
 */

static ngx_int_t
ngx_http_asyncx_exercise_render(ngx_http_asyncx_pipeline_ctx_t *ctx,
    ngx_str_t *text)
{
    u_char                            *p, *last;
    size_t                             len;
    ngx_http_asyncx_exercise_times_t   t;

    if (ngx_http_asyncx_exercise_times(ctx, &t) != NGX_OK) {
        return NGX_ERROR;
    }

    len = ngx_http_asyncx_exercise_len(ctx);

    p = ngx_pnalloc(ctx->request->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    text->data = p;
    last = p + len;

    *p++ = '{';

    p = ngx_http_asyncx_exercise_headline(p, last, ctx, &t);
    p = ngx_http_asyncx_exercise_stages(p, last, ctx);
    p = ngx_http_asyncx_exercise_call_times(p, last, &t);

    p = ctx->sequential
        ? ngx_http_asyncx_copy_literal(p, last, ",\"mode\":\"sequential\"")
        : ngx_http_asyncx_copy_literal(p, last, ",\"mode\":\"parallel\"");

    p = ngx_http_asyncx_exercise_lists(p, last, ctx);

    if (ctx->first_failed || ctx->timed_out) {
        p = ngx_http_asyncx_copy_literal(p, last, ",\"error\":\"");
        p = ngx_http_asyncx_pipeline_error(p, last, ctx);
        p = ngx_http_asyncx_copy_literal(p, last, "\",\"status\":");
        p = ngx_http_asyncx_write_uint(p, last, ctx->status);
    }

    if (last - p < 2) {
        /* cannot happen with the bound above; never send a cut answer */
        ngx_log_error(NGX_LOG_ALERT, ctx->request->connection->log, 0,
                      "asyncx pipeline: answer buffer of %uz bytes too small",
                      len);
        return NGX_ERROR;
    }

    *p++ = '}';
    *p++ = '\n';
    text->len = p - text->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_asyncx_exercise_times(ngx_http_asyncx_pipeline_ctx_t *ctx,
    ngx_http_asyncx_exercise_times_t *t)
{
    uint64_t                                m;
    ngx_uint_t                              i, j, nstages, ncalls;
    ngx_pool_t                             *pool;
    ngx_http_asyncx_pipeline_call_t        *call;
    ngx_http_asyncx_pipeline_stage_conf_t  *st;

    pool = ctx->request->pool;
    st = ctx->conf->stages->elts;
    nstages = ctx->conf->stages->nelts;
    ncalls = ctx->conf->calls->nelts;

    t->stage_names = ngx_palloc(pool, nstages * sizeof(ngx_str_t));
    t->est_stage = ngx_palloc(pool, nstages * sizeof(uint64_t));
    t->call_names = ngx_palloc(pool, ncalls * sizeof(ngx_str_t));
    t->call_usec = ngx_palloc(pool, ncalls * sizeof(uint64_t));

    if (t->stage_names == NULL || t->est_stage == NULL
        || t->call_names == NULL || t->call_usec == NULL)
    {
        return NGX_ERROR;
    }

    t->nrun = ctx->stage;
    t->ncalls = 0;
    t->sum = 0;
    t->est = 0;

    for (i = 0; i < t->nrun; i++) {
        t->stage_names[i] = st[i].name;
        t->est_stage[i] = 0;

        for (j = 0; j < st[i].ncalls; j++) {
            call = &ctx->calls[st[i].first + j];

            if (call->state != NGX_HTTP_ASYNCX_CALL_DONE) {
                /* not issued before the pipeline's timeout */
                continue;
            }

            m = call->end - call->start;

            t->call_names[t->ncalls] = call->conf->name;
            t->call_usec[t->ncalls++] = m;

            t->sum += m;
            t->est_stage[i] = ngx_max(t->est_stage[i], m);
        }

        t->est += t->est_stage[i];
    }

    return NGX_OK;
}


/*
 * An upper bound close to the answer (the demo's: 2.6 KB for 1.4 KB),
 * so that it comes from the request pool's block: what each stage and
 * each call can add, by what happened to it.
 */

static size_t
ngx_http_asyncx_exercise_len(ngx_http_asyncx_pipeline_ctx_t *ctx)
{
    size_t                                  len, err, name;
    ngx_uint_t                              i;
    ngx_http_asyncx_pipeline_call_t        *call;
    ngx_http_asyncx_pipeline_stage_conf_t  *st;

    st = ctx->conf->stages->elts;
    err = ngx_http_asyncx_pipeline_error_len(ctx);

    /*
     * braces, keys (about 330 bytes with every list), the mode, the
     * error and its status, the two totals of the headline, the newline
     */
    len = 512 + err + NGX_INT_T_LEN
          + 2 * (NGX_HTTP_ASYNCX_EXERCISE_SEC_LEN
                 + NGX_HTTP_ASYNCX_EXERCISE_MS_LEN);

    for (i = 0; i < ctx->conf->stages->nelts; i++) {
        /* its key, its time ("소요시간"), its part of a breakdown */
        len += 2 * (st[i].name.len + 8) + 48
               + 2 * NGX_HTTP_ASYNCX_EXERCISE_SEC_LEN
               + NGX_HTTP_ASYNCX_EXERCISE_MS_LEN;
    }

    for (i = 0; i < ctx->conf->calls->nelts; i++) {
        call = &ctx->calls[i];
        name = call->conf->name.len + 8;   /* quoted, ':' or ',' */

        /* its key in its stage: its slot, or why it was skipped */
        len += name + ngx_http_asyncx_exercise_slot_len(call) + 48 + err;

        /* its time, its part of a breakdown, one of the lists */
        len += 3 * name + NGX_HTTP_ASYNCX_EXERCISE_MS_LEN
               + NGX_HTTP_ASYNCX_EXERCISE_SEC_LEN;

        if (call->failed) {
            /* "optional call \"..\" failed (kind), its fallback ..." */
            len += name + 96;
        }

        if (call->nattempts > 1) {
            len += name + ngx_http_asyncx_pipeline_tries_len(call);
        }
    }

    return len;
}


/* the two times first: measured and estimated, by mode */

static u_char *
ngx_http_asyncx_exercise_headline(u_char *p, u_char *last,
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_http_asyncx_exercise_times_t *t)
{
    if (ctx->sequential) {
        p = ngx_http_asyncx_exercise_seconds(p, last,
                                             NGX_HTTP_ASYNCX_KEY_SEQ_MEASURED,
                                             ctx->end - ctx->start,
                                             t->call_names, t->call_usec,
                                             t->ncalls);
        p = ngx_http_asyncx_copy_literal(p, last, ",");

        return ngx_http_asyncx_exercise_seconds(p, last,
                                             NGX_HTTP_ASYNCX_KEY_OPT_ESTIMATE,
                                             t->est, t->stage_names,
                                             t->est_stage, t->nrun);
    }

    p = ngx_http_asyncx_exercise_seconds(p, last,
                                         NGX_HTTP_ASYNCX_KEY_SEQ_ESTIMATE,
                                         t->sum, NULL, NULL, 0);
    p = ngx_http_asyncx_copy_literal(p, last, ",");

    return ngx_http_asyncx_exercise_seconds(p, last,
                                            NGX_HTTP_ASYNCX_KEY_OPT_MEASURED,
                                            ctx->end - ctx->start,
                                            t->stage_names, ctx->stage_usec,
                                            t->nrun);
}


/* "단계별_결과": every stage, its calls' slots and its time */

static u_char *
ngx_http_asyncx_exercise_stages(u_char *p, u_char *last,
    ngx_http_asyncx_pipeline_ctx_t *ctx)
{
    ngx_uint_t                              i, j;
    ngx_http_asyncx_pipeline_call_t        *call;
    ngx_http_asyncx_pipeline_stage_conf_t  *st;

    st = ctx->conf->stages->elts;

    p = ngx_http_asyncx_copy_literal(p, last, "," NGX_HTTP_ASYNCX_EXERCISE_KEY(
                                              NGX_HTTP_ASYNCX_KEY_STAGES) "{");

    for (i = 0; i < ctx->conf->stages->nelts; i++) {
        if (i) {
            p = ngx_http_asyncx_copy_literal(p, last, ",");
        }

        p = ngx_http_asyncx_copy_literal(p, last, "\"");
        p = ngx_http_asyncx_copy(p, last, st[i].name.data, st[i].name.len);
        p = ngx_http_asyncx_copy_literal(p, last, "\":{");

        for (j = 0; j < st[i].ncalls; j++) {
            call = &ctx->calls[st[i].first + j];

            p = ngx_http_asyncx_copy_literal(p, last, "\"");
            p = ngx_http_asyncx_copy(p, last, call->conf->name.data,
                                     call->conf->name.len);
            p = ngx_http_asyncx_copy_literal(p, last, "\":");

            if (call->state != NGX_HTTP_ASYNCX_CALL_DONE) {
                p = ngx_http_asyncx_copy_literal(p, last,
                                            "{\"skipped\":true,\"reason\":\"");

                if (ctx->first_failed || ctx->timed_out) {
                    p = ngx_http_asyncx_pipeline_error(p, last, ctx);

                } else {
                    p = ngx_http_asyncx_copy_literal(p, last, "not run");
                }

                p = ngx_http_asyncx_copy_literal(p, last, "\"},");
                continue;
            }

            p = ngx_http_asyncx_exercise_slot(p, last, call);
            p = ngx_http_asyncx_copy_literal(p, last, ",");
        }

        p = ngx_http_asyncx_exercise_seconds(p, last,
                                             NGX_HTTP_ASYNCX_KEY_ELAPSED,
                                             i < ctx->stage
                                             ? ctx->stage_usec[i] : 0,
                                             NULL, NULL, 0);
        p = ngx_http_asyncx_copy_literal(p, last, "}");
    }

    return ngx_http_asyncx_copy_literal(p, last, "}");
}


static u_char *
ngx_http_asyncx_exercise_call_times(u_char *p, u_char *last,
    ngx_http_asyncx_exercise_times_t *t)
{
    ngx_uint_t  i;

    p = ngx_http_asyncx_copy_literal(p, last, "," NGX_HTTP_ASYNCX_EXERCISE_KEY(
                                          NGX_HTTP_ASYNCX_KEY_CALL_TIMES) "{");

    for (i = 0; i < t->ncalls; i++) {
        if (i) {
            p = ngx_http_asyncx_copy_literal(p, last, ",");
        }

        p = ngx_http_asyncx_copy_literal(p, last, "\"");
        p = ngx_http_asyncx_copy(p, last, t->call_names[i].data,
                                 t->call_names[i].len);
        p = ngx_http_asyncx_copy_literal(p, last, "\":");
        p = ngx_http_asyncx_pipeline_ms(p, last, t->call_usec[i]);
    }

    return ngx_http_asyncx_copy_literal(p, last, "}");
}


/*
 * failed_calls, skipped_calls, abandoned_calls, warnings and retries:
 * each only when not empty.
 */

static u_char *
ngx_http_asyncx_exercise_lists(u_char *p, u_char *last,
    ngx_http_asyncx_pipeline_ctx_t *ctx)
{
    ngx_uint_t                        i, n;
    ngx_http_asyncx_pipeline_call_t  *call;

    for (i = 0, n = 0; i < ctx->conf->calls->nelts; i++) {
        call = &ctx->calls[i];

        if (call->failed && call->kind != NGX_HTTP_ASYNCX_CALL_ABANDONED) {
            p = ngx_slprintf(p, last, "%s\"%V\"",
                             n++ ? "," : ",\"failed_calls\":[",
                             &call->conf->name);
        }
    }

    if (n) {
        p = ngx_http_asyncx_copy_literal(p, last, "]");
    }

    for (i = 0, n = 0; i < ctx->conf->calls->nelts; i++) {
        call = &ctx->calls[i];

        if (call->state != NGX_HTTP_ASYNCX_CALL_DONE) {
            p = ngx_slprintf(p, last, "%s\"%V\"",
                             n++ ? "," : ",\"skipped_calls\":[",
                             &call->conf->name);
        }
    }

    if (n) {
        p = ngx_http_asyncx_copy_literal(p, last, "]");
    }

    for (i = 0, n = 0; i < ctx->conf->calls->nelts; i++) {
        call = &ctx->calls[i];

        if (call->kind == NGX_HTTP_ASYNCX_CALL_ABANDONED) {
            p = ngx_slprintf(p, last, "%s\"%V\"",
                             n++ ? "," : ",\"abandoned_calls\":[",
                             &call->conf->name);
        }
    }

    if (n) {
        p = ngx_http_asyncx_copy_literal(p, last, "]");
    }

    for (i = 0, n = 0; i < ctx->conf->calls->nelts; i++) {
        call = &ctx->calls[i];

        if (call->failed && call->conf->optional
            && call->kind != NGX_HTTP_ASYNCX_CALL_ABANDONED)
        {
            p = ngx_slprintf(p, last, "%s\"optional call \\\"%V\\\" failed "
                             "(%s), its fallback was used\"",
                             n++ ? "," : ",\"warnings\":[",
                             &call->conf->name,
                             ngx_http_asyncx_pipeline_kind_name(call->kind));
        }
    }

    if (n) {
        p = ngx_http_asyncx_copy_literal(p, last, "]");
    }

    /* every attempt of the calls that were tried more than once */

    for (i = 0, n = 0; i < ctx->conf->calls->nelts; i++) {
        call = &ctx->calls[i];

        if (call->nattempts > 1) {
            p = ngx_slprintf(p, last, "%s\"%V\":",
                             n++ ? "," : ",\"retries\":{",
                             &call->conf->name);
            p = ngx_http_asyncx_pipeline_tries(p, last, call);
        }
    }

    return n ? ngx_http_asyncx_copy_literal(p, last, "}") : p;
}


/*
 * A call's slot: its JSON answer; or, when it failed, an error object
 *   {"error":"..","kind":"..","status":N,"elapsed_ms":N.NN,
 *    "response":<its answer>,"optional":true,"fallback":<value>}
 */

static size_t
ngx_http_asyncx_exercise_slot_len(ngx_http_asyncx_pipeline_call_t *call)
{
    if (!call->failed) {
        return call->answer.len;
    }

    return sizeof("{\"error\":\"\",\"kind\":\"\",\"status\":,\"elapsed_ms\":"
                  ",\"response\":,\"optional\":true,\"fallback\":}") - 1
           + 6 * call->msg.len + 16 + 3 * NGX_INT_T_LEN
           + call->answer.len + call->conf->fallback.len
           + ngx_http_asyncx_pipeline_tries_len(call);
}


static u_char *
ngx_http_asyncx_exercise_slot(u_char *p, u_char *last,
    ngx_http_asyncx_pipeline_call_t *call)
{
    if (!call->failed) {
        return ngx_http_asyncx_copy(p, last, call->answer.data,
                                    call->answer.len);
    }

    p = ngx_slprintf(p, last, "{\"error\":");
    p = ngx_http_asyncx_pipeline_json_string(p, last, &call->msg);
    p = ngx_slprintf(p, last, ",\"kind\":\"%s\",\"status\":%ui,"
                     "\"elapsed_ms\":",
                     ngx_http_asyncx_pipeline_kind_name(call->kind),
                     call->status);
    p = ngx_http_asyncx_pipeline_ms(p, last, call->end - call->start);

    if (call->answer.len) {
        p = ngx_slprintf(p, last, ",\"response\":%V", &call->answer);
    }

    if (call->conf->optional) {
        p = ngx_slprintf(p, last, ",\"optional\":true,\"fallback\":%V",
                         &call->conf->fallback);
    }

    if (call->nattempts > 1) {
        p = ngx_slprintf(p, last, ",\"attempts\":");
        p = ngx_http_asyncx_pipeline_tries(p, last, call);
    }

    return ngx_slprintf(p, last, "}");
}
