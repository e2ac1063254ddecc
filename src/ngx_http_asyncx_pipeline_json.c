
/*
 * Copyright (C) asyncx authors
 *
 * The pipeline's JSON: the document each call receives and the
 * response in the exercise's shape.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_pipeline_json.h"


static cJSON *ngx_http_asyncx_pipeline_passed(
    ngx_http_asyncx_pipeline_call_t *call);
static ngx_int_t ngx_http_asyncx_pipeline_add_seconds(cJSON *obj,
    const char *key, uint64_t usec, ngx_str_t *names, uint64_t *parts,
    ngx_uint_t n);


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
    char                                   *s;
    cJSON                                  *doc, *results, *failed, *value;
    ngx_uint_t                              i;
    ngx_http_asyncx_pipeline_call_t        *c;
    ngx_http_asyncx_pipeline_stage_conf_t  *st;

    st = ctx->conf->stages->elts;

    doc = cJSON_CreateObject();
    if (doc == NULL) {
        return NGX_ERROR;
    }

    if (ctx->body) {
        if (!cJSON_AddItemReferenceToObject(doc, "request", ctx->body)) {
            goto failed;
        }

    } else if (cJSON_AddNullToObject(doc, "request") == NULL) {
        goto failed;
    }

    results = cJSON_AddObjectToObject(doc, "results");
    failed = cJSON_AddArrayToObject(doc, "failed");

    if (results == NULL || failed == NULL) {
        goto failed;
    }

    for (i = 0; i < st[call->conf->stage].first; i++) {
        c = &ctx->calls[i];

        value = ngx_http_asyncx_pipeline_passed(c);

        if (value && !cJSON_AddItemReferenceToObject(results,
                                                 (char *) c->conf->name.data,
                                                 value))
        {
            goto failed;
        }

        if (c->failed
            && !cJSON_AddItemToArray(failed,
                               cJSON_CreateString((char *) c->conf->name.data)))
        {
            goto failed;
        }
    }

    if (cJSON_AddStringToObject(doc, "stage",
                                (char *) st[call->conf->stage].name.data)
        == NULL
        || cJSON_AddStringToObject(doc, "call", (char *) call->conf->name.data)
           == NULL)
    {
        goto failed;
    }

    s = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);

    if (s == NULL) {
        return NGX_ERROR;
    }

    text->len = ngx_strlen(s);
    text->data = ngx_pnalloc(ctx->request->pool, text->len);

    if (text->data == NULL) {
        cJSON_free(s);
        return NGX_ERROR;
    }

    ngx_memcpy(text->data, s, text->len);
    cJSON_free(s);

    return NGX_OK;

failed:

    cJSON_Delete(doc);

    return NGX_ERROR;
}


/* what later stages see of a recorded call: its result or its fallback */

static cJSON *
ngx_http_asyncx_pipeline_passed(ngx_http_asyncx_pipeline_call_t *call)
{
    if (call->state != NGX_HTTP_ASYNCX_CALL_DONE || call->value == NULL) {
        return NULL;
    }

    if (!call->failed) {
        return call->value;
    }

    return cJSON_GetObjectItemCaseSensitive(call->value, "fallback");
}


double
ngx_http_asyncx_pipeline_ms(uint64_t usec)
{
    /* two decimals: 500.61 */
    return (double) ((usec + 5) / 10) / 100.0;
}


static ngx_int_t
ngx_http_asyncx_pipeline_add_seconds(cJSON *obj, const char *key,
    uint64_t usec, ngx_str_t *names, uint64_t *parts, ngx_uint_t n)
{
    u_char    buf[NGX_HTTP_ASYNCX_PIPELINE_TEXT_LEN];
    u_char    key_ms[64];
    size_t    len;

    len = ngx_http_asyncx_pipeline_format_breakdown(buf, sizeof(buf), usec,
                                     names, parts, n,
                                     NGX_HTTP_ASYNCX_PIPELINE_DECIMALS);
    if (len == 0) {
        /* too many parts to spell out: the total alone */
        len = ngx_http_asyncx_format_seconds(buf, sizeof(buf), usec,
                                             NGX_HTTP_ASYNCX_PIPELINE_DECIMALS);
    }

    *ngx_snprintf(key_ms, sizeof(key_ms) - 1, "%s_ms", key) = '\0';

    if (len == 0
        || cJSON_AddStringToObject(obj, key, (char *) buf) == NULL
        || cJSON_AddNumberToObject(obj, (char *) key_ms,
                                   ngx_http_asyncx_pipeline_ms(usec))
           == NULL)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The exercise's answer:
 *   {"순차_실행_예상시간": "2.6초", "최적화_실행_시간": "1.9초 (1단계 ...)",
 *    "단계별_결과": {"1단계": {"사용자": {...}, "소요시간": "0.5초"}, ...}}
 * plus *_ms numbers, per-call times, the mode, and on failures
 * failed_calls / skipped_calls / warnings / error / status.
 */

cJSON *
ngx_http_asyncx_pipeline_response(ngx_http_asyncx_pipeline_ctx_t *ctx)
{
    u_char                                  buf[256], *last;
    cJSON                                  *root, *stages, *so, *item, *times;
    cJSON                                  *failed, *skipped, *warnings;
    uint64_t                                sum, est, m;
    uint64_t                               *est_stage, *call_usec;
    ngx_str_t                              *stage_names, *call_names;
    ngx_uint_t                              i, j, nstages, nrun, ncalls;
    ngx_http_request_t                     *r;
    ngx_http_asyncx_pipeline_call_t        *call;
    ngx_http_asyncx_pipeline_stage_conf_t  *st;

    r = ctx->request;
    st = ctx->conf->stages->elts;
    nstages = ctx->conf->stages->nelts;

    stage_names = ngx_palloc(r->pool, nstages * sizeof(ngx_str_t));
    est_stage = ngx_palloc(r->pool, nstages * sizeof(uint64_t));
    call_names = ngx_palloc(r->pool,
                            ctx->conf->calls->nelts * sizeof(ngx_str_t));
    call_usec = ngx_palloc(r->pool,
                           ctx->conf->calls->nelts * sizeof(uint64_t));

    if (stage_names == NULL || est_stage == NULL || call_names == NULL
        || call_usec == NULL)
    {
        return NULL;
    }

    /* stages that ran: measured times and the critical-path estimate */

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

    root = cJSON_CreateObject();
    if (root == NULL) {
        return NULL;
    }

    if (ctx->sequential) {
        if (ngx_http_asyncx_pipeline_add_seconds(root,
                                             NGX_HTTP_ASYNCX_KEY_SEQ_MEASURED,
                                             ctx->end - ctx->start,
                                             call_names, call_usec, ncalls)
            != NGX_OK
            || ngx_http_asyncx_pipeline_add_seconds(root,
                                             NGX_HTTP_ASYNCX_KEY_OPT_ESTIMATE,
                                             est, stage_names, est_stage,
                                             nrun)
               != NGX_OK)
        {
            goto failed;
        }

    } else {
        if (ngx_http_asyncx_pipeline_add_seconds(root,
                                             NGX_HTTP_ASYNCX_KEY_SEQ_ESTIMATE,
                                             sum, NULL, NULL, 0)
            != NGX_OK
            || ngx_http_asyncx_pipeline_add_seconds(root,
                                             NGX_HTTP_ASYNCX_KEY_OPT_MEASURED,
                                             ctx->end - ctx->start,
                                             stage_names, ctx->stage_usec,
                                             nrun)
               != NGX_OK)
        {
            goto failed;
        }
    }

    stages = cJSON_AddObjectToObject(root, NGX_HTTP_ASYNCX_KEY_STAGES);
    times = cJSON_CreateObject();
    failed = cJSON_CreateArray();
    skipped = cJSON_CreateArray();
    warnings = cJSON_CreateArray();

    if (stages == NULL || times == NULL || failed == NULL || skipped == NULL
        || warnings == NULL)
    {
        cJSON_Delete(times);
        cJSON_Delete(failed);
        cJSON_Delete(skipped);
        cJSON_Delete(warnings);
        goto failed;
    }

    cJSON_AddItemToObject(root, NGX_HTTP_ASYNCX_KEY_CALL_TIMES, times);

    if (cJSON_AddStringToObject(root, "mode",
                                ctx->sequential ? "sequential" : "parallel")
        == NULL)
    {
        cJSON_Delete(failed);
        cJSON_Delete(skipped);
        cJSON_Delete(warnings);
        goto failed;
    }

    /* owned by root from here, removed again below when empty */
    cJSON_AddItemToObject(root, "failed_calls", failed);
    cJSON_AddItemToObject(root, "skipped_calls", skipped);
    cJSON_AddItemToObject(root, "warnings", warnings);

    for (i = 0; i < nstages; i++) {
        so = cJSON_AddObjectToObject(stages, (char *) st[i].name.data);
        if (so == NULL) {
            goto failed;
        }

        for (j = 0; j < st[i].ncalls; j++) {
            call = &ctx->calls[st[i].first + j];

            if (call->state != NGX_HTTP_ASYNCX_CALL_DONE) {
                item = cJSON_AddObjectToObject(so,
                                               (char *) call->conf->name.data);
                if (ctx->first_failed) {
                    last = ngx_snprintf(buf, sizeof(buf) - 1,
                                        "required call \"%V\" failed",
                                        &ctx->first_failed->conf->name);
                } else {
                    last = ngx_snprintf(buf, sizeof(buf) - 1, "not run");
                }

                *last = '\0';

                if (item == NULL
                    || cJSON_AddTrueToObject(item, "skipped") == NULL
                    || cJSON_AddStringToObject(item, "reason", (char *) buf)
                       == NULL
                    || !cJSON_AddItemToArray(skipped,
                           cJSON_CreateString((char *) call->conf->name.data)))
                {
                    goto failed;
                }

                continue;
            }

            if (cJSON_AddNumberToObject(times, (char *) call->conf->name.data,
                          ngx_http_asyncx_pipeline_ms(call->end - call->start))
                == NULL)
            {
                goto failed;
            }

            if (call->value == NULL) {
                item = cJSON_AddNullToObject(so,
                                             (char *) call->conf->name.data);

            } else {
                item = cJSON_AddItemReferenceToObject(so,
                                              (char *) call->conf->name.data,
                                              call->value)
                       ? call->value : NULL;
            }

            if (item == NULL) {
                goto failed;
            }

            if (!call->failed) {
                continue;
            }

            if (!cJSON_AddItemToArray(failed,
                           cJSON_CreateString((char *) call->conf->name.data)))
            {
                goto failed;
            }

            if (call->conf->optional) {
                last = ngx_snprintf(buf, sizeof(buf) - 1,
                                    "optional call \"%V\" failed (%s), "
                                    "its fallback was used",
                                    &call->conf->name,
                                    ngx_http_asyncx_pipeline_kind_name(
                                                                call->kind));
                *last = '\0';

                if (!cJSON_AddItemToArray(warnings,
                                          cJSON_CreateString((char *) buf)))
                {
                    goto failed;
                }
            }
        }

        if (ngx_http_asyncx_pipeline_add_seconds(so,
                                             NGX_HTTP_ASYNCX_KEY_ELAPSED,
                                             i < nrun ? ctx->stage_usec[i] : 0,
                                             NULL, NULL, 0)
            != NGX_OK)
        {
            goto failed;
        }
    }

    if (ctx->first_failed) {
        last = ngx_snprintf(buf, sizeof(buf) - 1,
                            "required call \"%V\" failed",
                            &ctx->first_failed->conf->name);
        *last = '\0';

        if (cJSON_AddStringToObject(root, "error", (char *) buf) == NULL
            || cJSON_AddNumberToObject(root, "status",
                                       (double) ctx->conf->error_status)
               == NULL)
        {
            goto failed;
        }
    }

    if (cJSON_GetArraySize(failed) == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, "failed_calls");
    }

    if (cJSON_GetArraySize(skipped) == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, "skipped_calls");
    }

    if (cJSON_GetArraySize(warnings) == 0) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, "warnings");
    }

    return root;

failed:

    cJSON_Delete(root);

    return NULL;
}
