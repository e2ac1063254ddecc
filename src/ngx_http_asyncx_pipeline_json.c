
/*
 * Copyright (C) asyncx authors
 *
 * The pipeline's JSON: the document each call receives and the answer in
 * the exercise's shape.  Both are spliced from checked JSON texts (the
 * client's body, the calls' answers, error objects, fallbacks) and from
 * names that need no escaping (ngx_http_asyncx_pipeline_check_name), so
 * nothing is parsed or re-printed per request.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_pipeline_json.h"


#define NGX_HTTP_ASYNCX_PIPELINE_KEY(key)  "\"" key "\":"


static u_char *ngx_http_asyncx_pipeline_seconds(u_char *p, u_char *last,
    const char *key, uint64_t usec, ngx_str_t *names, uint64_t *parts,
    ngx_uint_t n);


/* "500.61": milliseconds with two decimals, a JSON number */

u_char *
ngx_http_asyncx_pipeline_ms(u_char *p, u_char *last, uint64_t usec)
{
    uint64_t  hundredths;

    hundredths = (usec + 5) / 10;

    return ngx_slprintf(p, last, "%uL.%02uL", hundredths / 100,
                        hundredths % 100);
}


/*
 * What a call receives (POST, application/json):
 *   {"request": <client body or null>, "results": {"<call>": <result>},
 *    "failed": ["<optional call that fell back>"], "stage": "..",
 *    "call": ".."}
 * results holds every call of the earlier stages; a failed optional
 * call contributes its fallback value.
 */

ngx_int_t
ngx_http_asyncx_pipeline_document(ngx_http_asyncx_pipeline_ctx_t *ctx,
    ngx_http_asyncx_pipeline_call_t *call, ngx_str_t *text)
{
    u_char                                 *p, *last;
    size_t                                  len;
    ngx_uint_t                              i, first, n;
    ngx_http_asyncx_pipeline_call_t        *c;
    ngx_http_asyncx_pipeline_stage_conf_t  *st;

    st = ctx->conf->stages->elts;
    first = st[call->conf->stage].first;

    len = sizeof("{\"request\":,\"results\":{},\"failed\":[],\"stage\":\"\","
                 "\"call\":\"\"}") - 1
          + ctx->body.len + st[call->conf->stage].name.len
          + call->conf->name.len;

    for (i = 0; i < first; i++) {
        c = &ctx->calls[i];
        len += 2 * c->conf->name.len + sizeof("\"\":,\"\",") - 1
               + c->passed.len;
    }

    p = ngx_pnalloc(ctx->request->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    text->data = p;
    last = p + len;

    p = ngx_slprintf(p, last, "{\"request\":%V,\"results\":{", &ctx->body);

    for (i = 0, n = 0; i < first; i++) {
        c = &ctx->calls[i];

        if (c->passed.len == 0) {
            continue;
        }

        p = ngx_slprintf(p, last, "%s\"%V\":%V", n++ ? "," : "",
                         &c->conf->name, &c->passed);
    }

    p = ngx_slprintf(p, last, "},\"failed\":[");

    for (i = 0, n = 0; i < first; i++) {
        c = &ctx->calls[i];

        if (c->failed) {
            p = ngx_slprintf(p, last, "%s\"%V\"", n++ ? "," : "",
                             &c->conf->name);
        }
    }

    p = ngx_slprintf(p, last, "],\"stage\":\"%V\",\"call\":\"%V\"}",
                     &st[call->conf->stage].name, &call->conf->name);

    text->len = p - text->data;

    return NGX_OK;
}


/* "key":"1.9초 (1단계 0.5초 + ...)","key_ms":1902.55 */

static u_char *
ngx_http_asyncx_pipeline_seconds(u_char *p, u_char *last, const char *key,
    uint64_t usec, ngx_str_t *names, uint64_t *parts, ngx_uint_t n)
{
    u_char  buf[NGX_HTTP_ASYNCX_PIPELINE_TEXT_LEN];
    size_t  len;

    len = ngx_http_asyncx_pipeline_format_breakdown(buf, sizeof(buf), usec,
                                     names, parts, n,
                                     NGX_HTTP_ASYNCX_PIPELINE_DECIMALS);
    if (len == 0) {
        /* too many parts to spell out: the total alone */
        len = ngx_http_asyncx_format_seconds(buf, sizeof(buf), usec,
                                             NGX_HTTP_ASYNCX_PIPELINE_DECIMALS);
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

ngx_int_t
ngx_http_asyncx_pipeline_response(ngx_http_asyncx_pipeline_ctx_t *ctx,
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

    len = 1024 + 2 * NGX_HTTP_ASYNCX_PIPELINE_TEXT_LEN
          + (ff ? 2 * ff->len : 0);

    for (i = 0; i < nstages; i++) {
        len += st[i].name.len + 128;
    }

    for (i = 0; i < ctx->conf->calls->nelts; i++) {
        call = &ctx->calls[i];
        len += call->value.len + 4 * call->conf->name.len + 192
               + (ff ? ff->len : 0);
    }

    p = ngx_pnalloc(r->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    text->data = p;
    last = p + len;

    *p++ = '{';

    if (ctx->sequential) {
        p = ngx_http_asyncx_pipeline_seconds(p, last,
                                             NGX_HTTP_ASYNCX_KEY_SEQ_MEASURED,
                                             ctx->end - ctx->start,
                                             call_names, call_usec, ncalls);
        p = ngx_slprintf(p, last, ",");
        p = ngx_http_asyncx_pipeline_seconds(p, last,
                                             NGX_HTTP_ASYNCX_KEY_OPT_ESTIMATE,
                                             est, stage_names, est_stage,
                                             nrun);

    } else {
        p = ngx_http_asyncx_pipeline_seconds(p, last,
                                             NGX_HTTP_ASYNCX_KEY_SEQ_ESTIMATE,
                                             sum, NULL, NULL, 0);
        p = ngx_slprintf(p, last, ",");
        p = ngx_http_asyncx_pipeline_seconds(p, last,
                                             NGX_HTTP_ASYNCX_KEY_OPT_MEASURED,
                                             ctx->end - ctx->start,
                                             stage_names, ctx->stage_usec,
                                             nrun);
    }

    p = ngx_slprintf(p, last, "," NGX_HTTP_ASYNCX_PIPELINE_KEY(
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

            p = ngx_slprintf(p, last, "\"%V\":%V,", &call->conf->name,
                             &call->value);
        }

        p = ngx_http_asyncx_pipeline_seconds(p, last,
                                             NGX_HTTP_ASYNCX_KEY_ELAPSED,
                                             i < nrun ? ctx->stage_usec[i]
                                                      : 0,
                                             NULL, NULL, 0);
        p = ngx_slprintf(p, last, "}");
    }

    p = ngx_slprintf(p, last, "}," NGX_HTTP_ASYNCX_PIPELINE_KEY(
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
