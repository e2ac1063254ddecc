
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
#include "ngx_http_asyncx_pipeline_json.h"
#include "ngx_http_asyncx_exercise_answer.h"
#include "ngx_http_asyncx_exercise_format.h"


#define NGX_HTTP_ASYNCX_EXERCISE_DECIMALS    1
#define NGX_HTTP_ASYNCX_EXERCISE_TEXT_LEN    2048

#define NGX_HTTP_ASYNCX_EXERCISE_KEY(key)  "\"" key "\":"

/* the exercise's keys */
#define NGX_HTTP_ASYNCX_KEY_SEQ_ESTIMATE   "순차_실행_예상시간"
#define NGX_HTTP_ASYNCX_KEY_SEQ_MEASURED   "순차_실행_시간"
#define NGX_HTTP_ASYNCX_KEY_OPT_MEASURED   "최적화_실행_시간"
#define NGX_HTTP_ASYNCX_KEY_OPT_ESTIMATE   "최적화_실행_예상시간"
#define NGX_HTTP_ASYNCX_KEY_STAGES         "단계별_결과"
#define NGX_HTTP_ASYNCX_KEY_ELAPSED        "소요시간"
#define NGX_HTTP_ASYNCX_KEY_CALL_TIMES     "호출별_소요시간_ms"


static ngx_int_t ngx_http_asyncx_exercise_render(
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_str_t *text);
static u_char *ngx_http_asyncx_exercise_seconds(u_char *p, u_char *last,
    const char *key, uint64_t usec, ngx_str_t *names, uint64_t *parts,
    ngx_uint_t n);
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


/* "key":"1.9초 (1단계 0.5초 + ...)","key_ms":1902.55 */

static u_char *
ngx_http_asyncx_exercise_seconds(u_char *p, u_char *last, const char *key,
    uint64_t usec, ngx_str_t *names, uint64_t *parts, ngx_uint_t n)
{
    u_char  buf[NGX_HTTP_ASYNCX_EXERCISE_TEXT_LEN];
    size_t  len;

    len = ngx_http_asyncx_exercise_format_breakdown(buf, sizeof(buf), usec,
                                     names, parts, n,
                                     NGX_HTTP_ASYNCX_EXERCISE_DECIMALS);
    if (len == 0) {
        /* too many parts to spell out: the total alone */
        len = ngx_http_asyncx_format_seconds(buf, sizeof(buf), usec,
                                             NGX_HTTP_ASYNCX_EXERCISE_DECIMALS);
    }

    p = ngx_slprintf(p, last, "\"%s\":\"%*s\",\"%s_ms\":", key, len, buf,
                     key);

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
    u_char                                 *p, *last;
    size_t                                  len;
    uint64_t                                sum, est, m;
    uint64_t                               *est_stage, *call_usec;
    ngx_str_t                              *stage_names, *call_names, *ff;
    ngx_uint_t                              i, j, n, nstages, nrun, ncalls;
    ngx_http_request_t                     *r;
    ngx_http_asyncx_pipeline_call_t        *call;
    ngx_http_asyncx_pipeline_stage_conf_t  *st;

    r = ctx->request;
    st = ctx->conf->stages->elts;
    nstages = ctx->conf->stages->nelts;
    ff = ctx->first_failed ? &ctx->first_failed->conf->name : NULL;

    stage_names = ngx_palloc(r->pool, nstages * sizeof(ngx_str_t));
    est_stage = ngx_palloc(r->pool, nstages * sizeof(uint64_t));
    call_names = ngx_palloc(r->pool,
                            ctx->conf->calls->nelts * sizeof(ngx_str_t));
    call_usec = ngx_palloc(r->pool,
                           ctx->conf->calls->nelts * sizeof(uint64_t));

    if (stage_names == NULL || est_stage == NULL || call_names == NULL
        || call_usec == NULL)
    {
        return NGX_ERROR;
    }

    /* the stages that ran: measured times and the critical-path estimate */

    nrun = ctx->stage;
    ncalls = 0;
    sum = 0;
    est = 0;

    for (i = 0; i < nrun; i++) {
        stage_names[i] = st[i].name;
        est_stage[i] = 0;

        for (j = 0; j < st[i].ncalls; j++) {
            call = &ctx->calls[st[i].first + j];
            m = call->end - call->start;

            call_names[ncalls] = call->conf->name;
            call_usec[ncalls++] = m;

            sum += m;
            est_stage[i] = ngx_max(est_stage[i], m);
        }

        est += est_stage[i];
    }

    /* an upper bound: fixed text, two breakdowns, per stage, per call */

    len = 1024 + 2 * NGX_HTTP_ASYNCX_EXERCISE_TEXT_LEN
          + (ff ? 2 * ff->len : 0);

    for (i = 0; i < nstages; i++) {
        len += st[i].name.len + 128;
    }

    for (i = 0; i < ctx->conf->calls->nelts; i++) {
        call = &ctx->calls[i];
        len += ngx_http_asyncx_exercise_slot_len(call)
               + 4 * call->conf->name.len + 192 + (ff ? ff->len : 0);
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    text->data = p;
    last = p + len;

    *p++ = '{';

    if (ctx->sequential) {
        p = ngx_http_asyncx_exercise_seconds(p, last,
                                             NGX_HTTP_ASYNCX_KEY_SEQ_MEASURED,
                                             ctx->end - ctx->start,
                                             call_names, call_usec, ncalls);
        p = ngx_slprintf(p, last, ",");
        p = ngx_http_asyncx_exercise_seconds(p, last,
                                             NGX_HTTP_ASYNCX_KEY_OPT_ESTIMATE,
                                             est, stage_names, est_stage,
                                             nrun);

    } else {
        p = ngx_http_asyncx_exercise_seconds(p, last,
                                             NGX_HTTP_ASYNCX_KEY_SEQ_ESTIMATE,
                                             sum, NULL, NULL, 0);
        p = ngx_slprintf(p, last, ",");
        p = ngx_http_asyncx_exercise_seconds(p, last,
                                             NGX_HTTP_ASYNCX_KEY_OPT_MEASURED,
                                             ctx->end - ctx->start,
                                             stage_names, ctx->stage_usec,
                                             nrun);
    }

    p = ngx_slprintf(p, last, "," NGX_HTTP_ASYNCX_EXERCISE_KEY(
                                         NGX_HTTP_ASYNCX_KEY_STAGES) "{");

    for (i = 0; i < nstages; i++) {
        p = ngx_slprintf(p, last, "%s\"%V\":{", i ? "," : "", &st[i].name);

        for (j = 0; j < st[i].ncalls; j++) {
            call = &ctx->calls[st[i].first + j];

            if (call->state != NGX_HTTP_ASYNCX_CALL_DONE) {
                p = ngx_slprintf(p, last, "\"%V\":{\"skipped\":true,"
                                 "\"reason\":\"", &call->conf->name);

                if (ff) {
                    p = ngx_slprintf(p, last,
                                     "required call \\\"%V\\\" failed\"},",
                                     ff);
                } else {
                    p = ngx_slprintf(p, last, "not run\"},");
                }

                continue;
            }

            p = ngx_slprintf(p, last, "\"%V\":", &call->conf->name);
            p = ngx_http_asyncx_exercise_slot(p, last, call);
            p = ngx_slprintf(p, last, ",");
        }

        p = ngx_http_asyncx_exercise_seconds(p, last,
                                             NGX_HTTP_ASYNCX_KEY_ELAPSED,
                                             i < nrun ? ctx->stage_usec[i]
                                                      : 0,
                                             NULL, NULL, 0);
        p = ngx_slprintf(p, last, "}");
    }

    p = ngx_slprintf(p, last, "}," NGX_HTTP_ASYNCX_EXERCISE_KEY(
                                     NGX_HTTP_ASYNCX_KEY_CALL_TIMES) "{");

    for (i = 0; i < ncalls; i++) {
        p = ngx_slprintf(p, last, "%s\"%V\":", i ? "," : "", &call_names[i]);
        p = ngx_http_asyncx_pipeline_ms(p, last, call_usec[i]);
    }

    p = ngx_slprintf(p, last, "},\"mode\":\"%s\"",
                     ctx->sequential ? "sequential" : "parallel");

    /* failed_calls, skipped_calls, warnings: only when not empty */

    for (i = 0, n = 0; i < ctx->conf->calls->nelts; i++) {
        call = &ctx->calls[i];

        if (call->failed) {
            p = ngx_slprintf(p, last, "%s\"%V\"",
                             n++ ? "," : ",\"failed_calls\":[",
                             &call->conf->name);
        }
    }

    if (n) {
        p = ngx_slprintf(p, last, "]");
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
        p = ngx_slprintf(p, last, "]");
    }

    for (i = 0, n = 0; i < ctx->conf->calls->nelts; i++) {
        call = &ctx->calls[i];

        if (call->failed && call->conf->optional) {
            p = ngx_slprintf(p, last, "%s\"optional call \\\"%V\\\" failed "
                             "(%s), its fallback was used\"",
                             n++ ? "," : ",\"warnings\":[",
                             &call->conf->name,
                             ngx_http_asyncx_pipeline_kind_name(call->kind));
        }
    }

    if (n) {
        p = ngx_slprintf(p, last, "]");
    }

    if (ff) {
        p = ngx_slprintf(p, last, ",\"error\":\"required call \\\"%V\\\" "
                         "failed\",\"status\":%ui", ff,
                         ctx->status);
    }

    if (p == last) {
        /* cannot happen with the bound above; never send a cut answer */
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "asyncx pipeline: answer buffer of %uz bytes too small",
                      len);
        return NGX_ERROR;
    }

    *p++ = '}';
    text->len = p - text->data;

    return NGX_OK;
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
           + call->answer.len + call->conf->fallback.len;
}


static u_char *
ngx_http_asyncx_exercise_slot(u_char *p, u_char *last,
    ngx_http_asyncx_pipeline_call_t *call)
{
    if (!call->failed) {
        return ngx_slprintf(p, last, "%V", &call->answer);
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

    return ngx_slprintf(p, last, "}");
}
