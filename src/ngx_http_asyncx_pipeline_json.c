
/*
 * Copyright (C) asyncx authors
 *
 * The pipeline's JSON: the document each call receives, the "standard"
 * answer and the registry of answer formats.  Both are spliced from
 * checked JSON texts (the client's body, the calls' answers, fallbacks)
 * and from names that need no escaping
 * (ngx_http_asyncx_pipeline_check_name), so nothing is parsed or
 * re-printed per request.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_pipeline_json.h"


static u_char *ngx_http_asyncx_pipeline_results(u_char *p,
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_uint_t first, ngx_uint_t values);
static ngx_int_t ngx_http_asyncx_pipeline_render_standard(
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_str_t *text);
static u_char *ngx_http_asyncx_pipeline_standard_call(u_char *p, u_char *last,
    ngx_http_asyncx_pipeline_ctx_t *ctx,
    ngx_http_asyncx_pipeline_call_t *call);


ngx_http_asyncx_pipeline_answer_t  ngx_http_asyncx_pipeline_standard = {
    ngx_string("standard"),
    ngx_http_asyncx_pipeline_render_standard,
    NULL
};


/* "500.61": milliseconds with two decimals, a JSON number */

u_char *
ngx_http_asyncx_pipeline_ms(u_char *p, u_char *last, uint64_t usec)
{
    u_char    frac[3];
    uint64_t  hundredths;

    hundredths = (usec + 5) / 10;

    p = ngx_http_asyncx_write_uint(p, last, hundredths / 100);

    frac[0] = '.';
    frac[1] = (u_char) ('0' + hundredths % 100 / 10);
    frac[2] = (u_char) ('0' + hundredths % 10);

    return ngx_http_asyncx_copy(p, last, frac, 3);
}


/*
 * The members of "results" for a call of a later stage than first's
 * calls: "name":value each, comma separated, or with values 0 the names
 * alone ("name","name"), as the document's outline lists them.
 */

static u_char *
ngx_http_asyncx_pipeline_results(u_char *p,
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_uint_t first, ngx_uint_t values)
{
    ngx_uint_t                        i, n;
    ngx_http_asyncx_pipeline_call_t  *c;

    for (i = 0, n = 0; i < first; i++) {
        c = &ctx->calls[i];

        if (c->passed.len == 0) {
            continue;
        }

        if (n++) {
            *p++ = ',';
        }

        *p++ = '"';
        p = ngx_cpymem(p, c->conf->name.data, c->conf->name.len);
        *p++ = '"';

        if (values) {
            *p++ = ':';
            p = ngx_cpymem(p, c->passed.data, c->passed.len);
        }
    }

    return p;
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
    u_char                                 *p, *stage, *name;
    size_t                                  len;
    ngx_uint_t                              i, first, n;
    ngx_http_asyncx_pipeline_call_t        *c;
    ngx_http_asyncx_pipeline_outline_t     *o;
    ngx_http_asyncx_pipeline_stage_conf_t  *st;

    st = ctx->conf->stages->elts;
    first = st[call->conf->stage].first;

    len = sizeof("{\"request\":,\"results\":{},\"failed\":[],\"stage\":\"\","
                 "\"call\":\"\"}") - 1
          + ctx->body.len + st[call->conf->stage].name.len
          + call->conf->name.len
          + NGX_ALIGNMENT + sizeof(ngx_http_asyncx_pipeline_outline_t);

    /* each name at most three times: as a result, as failed, outlined */

    for (i = 0; i < first; i++) {
        c = &ctx->calls[i];
        len += 3 * c->conf->name.len + sizeof("\"\":,\"\",\"\",") - 1
               + c->passed.len;
    }

    p = ngx_pnalloc(ctx->request->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    text->data = p;

    /* plain copies: the length above bounds them, formats cost more */

    p = ngx_cpymem(p, "{\"request\":", sizeof("{\"request\":") - 1);
    p = ngx_cpymem(p, ctx->body.data, ctx->body.len);
    p = ngx_cpymem(p, ",\"results\":{", sizeof(",\"results\":{") - 1);

    p = ngx_http_asyncx_pipeline_results(p, ctx, first, 1);

    p = ngx_cpymem(p, "},\"failed\":[", sizeof("},\"failed\":[") - 1);

    for (i = 0, n = 0; i < first; i++) {
        c = &ctx->calls[i];

        if (!c->failed) {
            continue;
        }

        if (n++) {
            *p++ = ',';
        }

        *p++ = '"';
        p = ngx_cpymem(p, c->conf->name.data, c->conf->name.len);
        *p++ = '"';
    }

    p = ngx_cpymem(p, "],\"stage\":", sizeof("],\"stage\":") - 1);

    stage = p;
    *p++ = '"';
    p = ngx_cpymem(p, st[call->conf->stage].name.data,
                   st[call->conf->stage].name.len);
    *p++ = '"';

    p = ngx_cpymem(p, ",\"call\":", sizeof(",\"call\":") - 1);

    name = p;
    *p++ = '"';
    p = ngx_cpymem(p, call->conf->name.data, call->conf->name.len);
    *p++ = '"';

    o = (ngx_http_asyncx_pipeline_outline_t *) ngx_align_ptr(p + 1,
                                                          NGX_ALIGNMENT);

    o->stage.data = stage;
    o->stage.len = name - stage - (sizeof(",\"call\":") - 1);
    o->call.data = name;
    o->call.len = p - name;

    *p++ = '}';
    text->len = p - text->data;

    /* the names of "results" as the walk of the document would find them */

    o->names.data = (u_char *) (o + 1);
    p = ngx_http_asyncx_pipeline_results(o->names.data, ctx, first, 0);
    o->names.len = p - o->names.data;
    call->doc_end = p;

    return NGX_OK;
}


/*
 * The outline of a call's document (above), or NULL if b is not the
 * buffer a call's body is read from as the pipeline set it up
 * (ngx_http_asyncx_pipeline_setup_subrequest), the outline right after
 * its text.
 */

ngx_http_asyncx_pipeline_outline_t *
ngx_http_asyncx_pipeline_outline(ngx_buf_t *b)
{
    ngx_http_asyncx_pipeline_outline_t  *o;

    if (b->tag != NGX_HTTP_ASYNCX_PIPELINE_DOCUMENT_TAG || b->in_file
        || b->last == NULL || b->end < b->last)
    {
        return NULL;
    }

    o = (ngx_http_asyncx_pipeline_outline_t *) ngx_align_ptr(b->last,
                                                          NGX_ALIGNMENT);

    if ((size_t) (b->end - b->last)
        < sizeof(ngx_http_asyncx_pipeline_outline_t)
        || (u_char *) (o + 1) > b->end
        || o->names.data != (u_char *) (o + 1)
        || o->names.data + o->names.len != b->end)
    {
        return NULL;
    }

    return o;
}


/* "text" as a JSON string: quotes, escapes; at most 2 + 6 * len bytes */

u_char *
ngx_http_asyncx_pipeline_json_string(u_char *p, u_char *last, ngx_str_t *s)
{
    if ((size_t) (last - p) < 2 + 6 * s->len) {
        return last;
    }

    *p++ = '"';
    p = ngx_http_asyncx_json_escape(p, s->data, s->len);
    *p++ = '"';

    return p;
}


/*
 * Why a failed pipeline failed, as the contents of a JSON string:
 * required call \"name\" failed (names need no escaping).
 */

size_t
ngx_http_asyncx_pipeline_error_len(ngx_http_asyncx_pipeline_ctx_t *ctx)
{
    if (ctx->timed_out) {
        return sizeof("pipeline timeout of  ms reached") - 1 + NGX_INT_T_LEN;
    }

    if (ctx->first_failed == NULL) {
        return 0;
    }

    return sizeof("required call \\\"\\\" failed") - 1
           + ctx->first_failed->conf->name.len;
}


u_char *
ngx_http_asyncx_pipeline_error(u_char *p, u_char *last,
    ngx_http_asyncx_pipeline_ctx_t *ctx)
{
    if (ctx->timed_out) {
        return ngx_slprintf(p, last, "pipeline timeout of %M ms reached",
                            ctx->conf->pipeline_timeout);
    }

    if (ctx->first_failed == NULL) {
        return p;
    }

    return ngx_slprintf(p, last, "required call \\\"%V\\\" failed",
                        &ctx->first_failed->conf->name);
}


/*
 * Every attempt of a call:
 *   [{"outcome":"status","status":503,"ms":1.25},{"outcome":"ok",...}]
 */

size_t
ngx_http_asyncx_pipeline_tries_len(ngx_http_asyncx_pipeline_call_t *call)
{
    return 2 + call->nattempts
               * (sizeof("{\"outcome\":\"invalid_json\",\"status\":,"
                         "\"ms\":},") - 1 + 2 * NGX_INT_T_LEN + 3);
}


u_char *
ngx_http_asyncx_pipeline_tries(u_char *p, u_char *last,
    ngx_http_asyncx_pipeline_call_t *call)
{
    ngx_uint_t                           i;
    ngx_http_asyncx_pipeline_attempt_t  *a;

    p = ngx_slprintf(p, last, "[");

    for (i = 0; i < call->nattempts; i++) {
        a = &call->attempts[i];

        if (i + 1 == call->nattempts) {
            /* the last attempt ended with the call (or is abandoned) */
            p = ngx_slprintf(p, last, "{\"outcome\":\"%s\",\"status\":%ui,"
                             "\"ms\":",
                             ngx_http_asyncx_pipeline_kind_name(call->kind),
                             call->status);
            p = ngx_http_asyncx_pipeline_ms(p, last, call->end - a->start);

        } else {
            p = ngx_slprintf(p, last, "{\"outcome\":\"%s\",\"status\":%ui,"
                             "\"ms\":",
                             ngx_http_asyncx_pipeline_kind_name(a->kind),
                             a->status);
            p = ngx_http_asyncx_pipeline_ms(p, last, a->end - a->start);
        }

        p = ngx_slprintf(p, last, "}%s", i + 1 < call->nattempts ? "," : "");
    }

    return ngx_slprintf(p, last, "]");
}


ngx_int_t
ngx_http_asyncx_pipeline_add_answer(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_answer_t *answer)
{
    ngx_http_asyncx_main_conf_t         *amcf;
    ngx_http_asyncx_pipeline_answer_t  **a;

    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);

    if (amcf->pipeline.answers == NULL) {
        amcf->pipeline.answers = ngx_array_create(cf->pool, 2,
                                 sizeof(ngx_http_asyncx_pipeline_answer_t *));
        if (amcf->pipeline.answers == NULL) {
            return NGX_ERROR;
        }
    }

    a = ngx_array_push(amcf->pipeline.answers);
    if (a == NULL) {
        return NGX_ERROR;
    }

    *a = answer;

    return NGX_OK;
}


/*
 * The standard answer: English keys, times in milliseconds (numbers,
 * 0.01 ms), every call under "calls" whatever its stage:
 *
 *   {"stages":[{"name":"s1","ms":500.61,"calls":["user","stock"]},...],
 *    "calls":{"user":{"stage":"s1","outcome":"ok","status":200,
 *                     "ms":500.2,"attempts":1,"result":{...}},...},
 *    "timing":{"mode":"parallel","total_ms":1902.55,
 *              "calls_sum_ms":2600.4,"critical_path_ms":1900.31},
 *    "outcome":"ok"}
 *
 * A stage that did not run has "ms":null; see docs/directives.md.
 */

static ngx_int_t
ngx_http_asyncx_pipeline_render_standard(ngx_http_asyncx_pipeline_ctx_t *ctx,
    ngx_str_t *text)
{
    u_char                                 *p, *last;
    size_t                                  len;
    uint64_t                                sum, critical, slowest, m;
    ngx_uint_t                              i, j, nstages, nrun;
    ngx_http_asyncx_pipeline_call_t        *call;
    ngx_http_asyncx_pipeline_stage_conf_t  *st;

    st = ctx->conf->stages->elts;
    nstages = ctx->conf->stages->nelts;
    nrun = ctx->stage;

    /* an upper bound: fixed text, per stage, per call */

    len = 256 + 2 * ngx_http_asyncx_pipeline_error_len(ctx);

    for (i = 0; i < nstages; i++) {
        len += st[i].name.len + 64;
    }

    for (i = 0; i < ctx->conf->calls->nelts; i++) {
        call = &ctx->calls[i];
        len += 3 * call->conf->name.len + st[call->conf->stage].name.len
               + 6 * call->msg.len + call->answer.len
               + call->conf->fallback.len
               + ngx_http_asyncx_pipeline_tries_len(call)
               + 2 * ngx_http_asyncx_pipeline_error_len(ctx) + 256;
    }

    p = ngx_pnalloc(ctx->request->pool, len);
    if (p == NULL) {
        return NGX_ERROR;
    }

    text->data = p;
    last = p + len;

    p = ngx_slprintf(p, last, "{\"stages\":[");

    sum = 0;
    critical = 0;

    for (i = 0; i < nstages; i++) {
        p = ngx_slprintf(p, last, "%s{\"name\":\"%V\",\"ms\":",
                         i ? "," : "", &st[i].name);

        if (i < nrun) {
            p = ngx_http_asyncx_pipeline_ms(p, last, ctx->stage_usec[i]);

        } else {
            p = ngx_slprintf(p, last, "null");
        }

        p = ngx_slprintf(p, last, ",\"calls\":[");
        slowest = 0;

        for (j = 0; j < st[i].ncalls; j++) {
            call = &ctx->calls[st[i].first + j];

            p = ngx_slprintf(p, last, "%s\"%V\"", j ? "," : "",
                             &call->conf->name);

            if (i < nrun && call->state == NGX_HTTP_ASYNCX_CALL_DONE) {
                m = call->end - call->start;
                sum += m;
                slowest = ngx_max(slowest, m);
            }
        }

        critical += slowest;
        p = ngx_slprintf(p, last, "]}");
    }

    p = ngx_slprintf(p, last, "],\"calls\":{");

    for (i = 0; i < ctx->conf->calls->nelts; i++) {
        p = ngx_slprintf(p, last, "%s", i ? "," : "");
        p = ngx_http_asyncx_pipeline_standard_call(p, last, ctx,
                                                   &ctx->calls[i]);
    }

    p = ngx_slprintf(p, last, "},\"timing\":{\"mode\":\"%s\",\"total_ms\":",
                     ctx->sequential ? "sequential" : "parallel");
    p = ngx_http_asyncx_pipeline_ms(p, last, ctx->end - ctx->start);
    p = ngx_slprintf(p, last, ",\"calls_sum_ms\":");
    p = ngx_http_asyncx_pipeline_ms(p, last, sum);
    p = ngx_slprintf(p, last, ",\"critical_path_ms\":");
    p = ngx_http_asyncx_pipeline_ms(p, last, critical);

    if (ctx->first_failed || ctx->timed_out) {
        p = ngx_slprintf(p, last, "},\"outcome\":\"%s\",\"error\":\"",
                         ctx->timed_out ? "timeout" : "failed");
        p = ngx_http_asyncx_pipeline_error(p, last, ctx);
        p = ngx_slprintf(p, last, "\"");

    } else {
        p = ngx_slprintf(p, last, "},\"outcome\":\"ok\"");
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


/*
 * "name":{"stage":"s","outcome":"timeout","status":504,"ms":150.2,
 *         "attempts":1,"error":"...","response":{...},"optional":true,
 *         "result":<fallback>}
 * or, not issued: "name":{"stage":"s","outcome":"skipped","reason":"..."}
 */

static u_char *
ngx_http_asyncx_pipeline_standard_call(u_char *p, u_char *last,
    ngx_http_asyncx_pipeline_ctx_t *ctx, ngx_http_asyncx_pipeline_call_t *call)
{
    ngx_http_asyncx_pipeline_stage_conf_t  *st;

    st = ctx->conf->stages->elts;

    p = ngx_slprintf(p, last, "\"%V\":{\"stage\":\"%V\",\"outcome\":",
                     &call->conf->name, &st[call->conf->stage].name);

    if (call->state != NGX_HTTP_ASYNCX_CALL_DONE) {
        p = ngx_slprintf(p, last, "\"skipped\",\"reason\":\"");
        p = ngx_http_asyncx_pipeline_error(p, last, ctx);
        return ngx_slprintf(p, last, "\"}");
    }

    p = ngx_slprintf(p, last, "\"%s\",\"status\":%ui,\"ms\":",
                     ngx_http_asyncx_pipeline_kind_name(call->kind),
                     call->status);
    p = ngx_http_asyncx_pipeline_ms(p, last, call->end - call->start);
    p = ngx_slprintf(p, last, ",\"attempts\":%ui", call->nattempts);

    if (call->nattempts > 1) {
        p = ngx_slprintf(p, last, ",\"tries\":");
        p = ngx_http_asyncx_pipeline_tries(p, last, call);
    }

    if (call->failed) {
        p = ngx_slprintf(p, last, ",\"error\":");
        p = ngx_http_asyncx_pipeline_json_string(p, last, &call->msg);

        if (call->answer.len) {
            p = ngx_slprintf(p, last, ",\"response\":%V", &call->answer);
        }

        if (call->conf->optional) {
            p = ngx_slprintf(p, last, ",\"optional\":true");
        }
    }

    if (call->passed.len) {
        p = ngx_slprintf(p, last, ",\"result\":%V", &call->passed);
    }

    return ngx_slprintf(p, last, "}");
}
