
/*
 * Copyright (C) asyncx authors
 *
 * The pipeline's directives, configuration merge and status section.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <cjson/cJSON.h>

#include "ngx_http_asyncx.h"
#include "ngx_http_asyncx_util.h"
#include "ngx_http_asyncx_conf.h"
#include "ngx_http_asyncx_json.h"
#include "ngx_http_asyncx_pipeline_json.h"


static ngx_int_t ngx_http_asyncx_pipeline_strz(ngx_conf_t *cf, ngx_str_t *dst,
    u_char *src, size_t len);
static ngx_int_t ngx_http_asyncx_pipeline_merge_idempotent(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_conf_t *conf);
static ngx_int_t ngx_http_asyncx_pipeline_find_call(
    ngx_http_asyncx_pipeline_conf_t *conf, ngx_str_t *name);
static ngx_int_t ngx_http_asyncx_pipeline_check_reserved(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_conf_t *conf);
static ngx_int_t ngx_http_asyncx_pipeline_compile_uri(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_call_conf_t *call);
static ngx_uint_t ngx_http_asyncx_pipeline_client_variable(ngx_str_t *name);
static ngx_uint_t ngx_http_asyncx_pipeline_client_argument(ngx_str_t *name);
static ngx_uint_t ngx_http_asyncx_pipeline_path_vars(ngx_str_t *uri,
    size_t path_len);
static ngx_int_t ngx_http_asyncx_pipeline_decode_path(ngx_conf_t *cf,
    ngx_str_t *uri, size_t path_len, ngx_str_t *path);
static ngx_int_t ngx_http_asyncx_pipeline_compile_values(ngx_conf_t *cf,
    ngx_str_t *part, ngx_uint_t in_args, ngx_array_t **values);
static ngx_int_t ngx_http_asyncx_pipeline_header_name(ngx_conf_t *cf,
    ngx_str_t *name, ngx_str_t *lowcase, ngx_uint_t *hash);
static char *ngx_http_asyncx_pipeline_merge_headers(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_conf_t *conf);


/*
 * Client headers that never reach a call as they are: the body headers
 * and what else describes the client's body (a call has its own body, a
 * JSON document: a client's Content-Encoding made a backend decode it,
 * its Digest fail), and what would change the shape of a call's answer:
 * compression (the answer must be JSON text), ranges and conditions
 * (they are about the client's answer, not the calls'), and Upgrade (a
 * hop-by-hop header: nginx's upstream would take a backend's 101 as a
 * protocol switch the call cannot make).
 * asyncx_call_set_header puts any but the first three back.
 */

static ngx_str_t  ngx_http_asyncx_pipeline_dropped[] = {
    ngx_string("content-length"),
    ngx_string("content-type"),
    ngx_string("transfer-encoding"),
    ngx_string("content-encoding"),
    ngx_string("content-range"),
    ngx_string("content-md5"),
    ngx_string("digest"),
    ngx_string("content-digest"),
    ngx_string("repr-digest"),
    ngx_string("trailer"),
    ngx_string("accept-encoding"),
    ngx_string("range"),
    ngx_string("if-range"),
    ngx_string("if-match"),
    ngx_string("if-none-match"),
    ngx_string("if-modified-since"),
    ngx_string("if-unmodified-since"),
    ngx_string("upgrade"),
    ngx_null_string
};

/* the first three: a call's own body headers, not settable */
#define NGX_HTTP_ASYNCX_PIPELINE_BODY_HEADERS  3


ngx_int_t
ngx_http_asyncx_pipeline_status(ngx_http_request_t *r, cJSON *root)
{
    cJSON  *p;

    static const ngx_http_asyncx_status_field_t  fields[] = {
        { "active", 1, NGX_HTTP_ASYNCX_GAUGE_PIPELINES },
        { "total", 0, NGX_HTTP_ASYNCX_STAT_PIPELINE_TOTAL },
        { "failed", 0, NGX_HTTP_ASYNCX_STAT_PIPELINE_FAILED },
        { "aborted", 0, NGX_HTTP_ASYNCX_STAT_PIPELINE_ABORTED },
        { "calls", 0, NGX_HTTP_ASYNCX_STAT_PIPELINE_CALLS },
        { "call_errors", 0, NGX_HTTP_ASYNCX_STAT_PIPELINE_CALL_ERRORS },
        { "retries", 0, NGX_HTTP_ASYNCX_STAT_PIPELINE_RETRIES },
        { "timed_out", 0, NGX_HTTP_ASYNCX_STAT_PIPELINE_TIMED_OUT }
    };

    p = cJSON_AddObjectToObject(root, "pipelines");
    if (p == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_asyncx_status_fields(p, fields,
                                         sizeof(fields) / sizeof(fields[0]));
}


/*
 * Variables for access logs, read at the end of the request:
 *   $asyncx_pipeline_outcome        ok, failed, timeout or aborted
 *   $asyncx_pipeline_time           seconds with milliseconds ("1.902"),
 *                                   like $request_time
 *   $asyncx_pipeline_failed_calls   calls that failed (abandoned too)
 *   $asyncx_pipeline_retried_calls  calls tried more than once
 * Not found where no pipeline ran (another location, a refused request).
 */

#define NGX_HTTP_ASYNCX_PIPELINE_VAR_OUTCOME  0
#define NGX_HTTP_ASYNCX_PIPELINE_VAR_TIME     1
#define NGX_HTTP_ASYNCX_PIPELINE_VAR_FAILED   2
#define NGX_HTTP_ASYNCX_PIPELINE_VAR_RETRIED  3


static ngx_int_t ngx_http_asyncx_pipeline_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);


static ngx_http_variable_t  ngx_http_asyncx_pipeline_vars[] = {

    { ngx_string("asyncx_pipeline_outcome"), NULL,
      ngx_http_asyncx_pipeline_variable, NGX_HTTP_ASYNCX_PIPELINE_VAR_OUTCOME,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("asyncx_pipeline_time"), NULL,
      ngx_http_asyncx_pipeline_variable, NGX_HTTP_ASYNCX_PIPELINE_VAR_TIME,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("asyncx_pipeline_failed_calls"), NULL,
      ngx_http_asyncx_pipeline_variable, NGX_HTTP_ASYNCX_PIPELINE_VAR_FAILED,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("asyncx_pipeline_retried_calls"), NULL,
      ngx_http_asyncx_pipeline_variable, NGX_HTTP_ASYNCX_PIPELINE_VAR_RETRIED,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_asyncx_pipeline_add_variables(ngx_conf_t *cf)
{
    return ngx_http_asyncx_conf_add_variables(cf,
                                              ngx_http_asyncx_pipeline_vars);
}


static ngx_int_t
ngx_http_asyncx_pipeline_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                          *p;
    uint64_t                         usec;
    ngx_uint_t                       i, n;
    const char                      *outcome;
    ngx_http_asyncx_ctx_t           *actx;
    ngx_http_asyncx_pipeline_ctx_t  *ctx;

    actx = ngx_http_get_module_ctx(r, ngx_http_asyncx_module);
    ctx = actx ? actx->pipeline : NULL;

    if (ctx == NULL || ctx->start == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->data = p;
    n = 0;

    switch (data) {

    case NGX_HTTP_ASYNCX_PIPELINE_VAR_OUTCOME:
        /* still running at log time: the client went away */
        outcome = !ctx->finished ? "aborted"
                  : ctx->timed_out ? "timeout"
                  : ctx->first_failed ? "failed" : "ok";
        p = ngx_cpymem(p, outcome, ngx_strlen(outcome));
        break;

    case NGX_HTTP_ASYNCX_PIPELINE_VAR_TIME:
        usec = (ctx->finished ? ctx->end : ngx_http_asyncx_now_usec())
               - ctx->start;
        usec = (usec + 500) / 1000;
        p = ngx_sprintf(p, "%uL.%03uL", usec / 1000, usec % 1000);
        break;

    default: /* FAILED, RETRIED */
        for (i = 0; i < ctx->conf->calls->nelts; i++) {
            n += (data == NGX_HTTP_ASYNCX_PIPELINE_VAR_FAILED)
                 ? ctx->calls[i].failed : (ctx->calls[i].nattempts > 1);
        }

        p = ngx_sprintf(p, "%ui", n);
        break;
    }

    v->len = p - v->data;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    return NGX_OK;
}


/* configuration */


void
ngx_http_asyncx_pipeline_init_conf(ngx_http_asyncx_pipeline_conf_t *conf)
{
    conf->call_timeout = NGX_CONF_UNSET_MSEC;
    conf->pipeline_timeout = NGX_CONF_UNSET_MSEC;
    conf->error_status = NGX_CONF_UNSET_UINT;
    conf->pass_args = NGX_CONF_UNSET;
    conf->mode_arg = NGX_CONF_UNSET;
    conf->server_timing = NGX_CONF_UNSET;
    conf->pass_request_headers = NGX_CONF_UNSET;
}


/*
 * One function: each setting merged next to its default, like nginx's
 * merge functions.
 */

char *
ngx_http_asyncx_pipeline_merge_conf(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_conf_t *prev,
    ngx_http_asyncx_pipeline_conf_t *conf)
{
    ngx_uint_t                             i, j;
    ngx_http_asyncx_main_conf_t           *amcf;
    ngx_http_asyncx_pipeline_optional_t   *opt;
    ngx_http_asyncx_pipeline_call_conf_t  *calls;

    ngx_conf_merge_msec_value(conf->call_timeout, prev->call_timeout, 5000);
    ngx_conf_merge_msec_value(conf->pipeline_timeout, prev->pipeline_timeout,
                              0);
    ngx_conf_merge_uint_value(conf->error_status, prev->error_status,
                              NGX_HTTP_BAD_GATEWAY);
    ngx_conf_merge_value(conf->pass_args, prev->pass_args, 0);
    ngx_conf_merge_value(conf->mode_arg, prev->mode_arg, 0);
    ngx_conf_merge_value(conf->server_timing, prev->server_timing, 0);
    ngx_conf_merge_value(conf->pass_request_headers,
                         prev->pass_request_headers, 1);

    if (conf->set_headers == NULL) {
        conf->set_headers = prev->set_headers;
    }

    if (conf->hide_headers == NULL) {
        conf->hide_headers = prev->hide_headers;
    }

    if (conf->answer == NULL) {
        conf->answer = prev->answer ? prev->answer
                                    : &ngx_http_asyncx_pipeline_standard;
    }

    if (!conf->enabled) {
        if (conf->stages || conf->optional || conf->idempotent) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"asyncx_stage\", \"asyncx_call_optional\" "
                               "and \"asyncx_call_idempotent\" need "
                               "\"asyncx_pipeline\" in the same location");
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (conf->stages == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"asyncx_pipeline\" needs at least one "
                           "\"asyncx_stage\"");
        return NGX_CONF_ERROR;
    }

    if (ngx_http_asyncx_pipeline_merge_headers(cf, conf)
        != NGX_CONF_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* kept blocks fit every pipeline whose client sends up to 1 KB */
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);
    ngx_http_asyncx_pipeline_blocks_need(&amcf->pipeline.blocks,
                        ngx_http_asyncx_pipeline_reserve_size(
                                                conf->calls->nelts, 1024));

    if (ngx_http_asyncx_pipeline_check_reserved(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_asyncx_pipeline_merge_idempotent(cf, conf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* a series for the location and one for each of its calls */

    conf->metrics = ngx_http_asyncx_metrics_series(cf,
                                            NGX_HTTP_ASYNCX_SERIES_PIPELINE,
                                            &conf->location, NULL);
    if (conf->metrics == NULL) {
        return NGX_CONF_ERROR;
    }

    calls = conf->calls->elts;

    for (j = 0; j < conf->calls->nelts; j++) {
        calls[j].metrics = ngx_http_asyncx_metrics_series(cf,
                                                NGX_HTTP_ASYNCX_SERIES_CALL,
                                                &conf->location,
                                                &calls[j].name);
        if (calls[j].metrics == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->optional == NULL) {
        return NGX_CONF_OK;
    }

    /* asyncx_call_optional may come before the stage naming the call */

    opt = conf->optional->elts;
    calls = conf->calls->elts;

    for (i = 0; i < conf->optional->nelts; i++) {

        for (j = 0; j < conf->calls->nelts; j++) {
            if (calls[j].name.len == opt[i].name.len
                && ngx_strncmp(calls[j].name.data, opt[i].name.data,
                               opt[i].name.len) == 0)
            {
                break;
            }
        }

        if (j == conf->calls->nelts) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"asyncx_call_optional\" names unknown "
                               "call \"%V\"", &opt[i].name);
            return NGX_CONF_ERROR;
        }

        if (calls[j].optional) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "call \"%V\" in \"asyncx_call_optional\" "
                               "is already optional", &opt[i].name);
            return NGX_CONF_ERROR;
        }

        calls[j].optional = 1;
        calls[j].fallback = opt[i].fallback;
    }

    return NGX_CONF_OK;
}


/*
 * The list of client headers a call does not get as they are: the
 * built-in ones, those asyncx_call_set_header replaces and those
 * asyncx_call_hide_header names.  Built for pipeline locations only.
 */

static char *
ngx_http_asyncx_pipeline_merge_headers(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_conf_t *conf)
{
    ngx_str_t                          *name;
    ngx_uint_t                          i;
    ngx_http_asyncx_pipeline_drop_t    *d, *hide;
    ngx_http_asyncx_pipeline_header_t  *set;

    conf->drop = ngx_array_create(cf->pool, 16,
                                  sizeof(ngx_http_asyncx_pipeline_drop_t));
    if (conf->drop == NULL) {
        return NGX_CONF_ERROR;
    }

    for (name = ngx_http_asyncx_pipeline_dropped; name->len; name++) {
        d = ngx_array_push(conf->drop);
        if (d == NULL) {
            return NGX_CONF_ERROR;
        }

        d->lowcase = *name;
        d->hash = ngx_hash_key(name->data, name->len);
    }

    if (conf->set_headers) {
        set = conf->set_headers->elts;

        for (i = 0; i < conf->set_headers->nelts; i++) {
            d = ngx_array_push(conf->drop);
            if (d == NULL) {
                return NGX_CONF_ERROR;
            }

            d->lowcase = set[i].lowcase;
            d->hash = set[i].hash;
        }
    }

    if (conf->hide_headers) {
        hide = conf->hide_headers->elts;

        for (i = 0; i < conf->hide_headers->nelts; i++) {
            d = ngx_array_push(conf->drop);
            if (d == NULL) {
                return NGX_CONF_ERROR;
            }

            *d = hide[i];
        }
    }

    return NGX_CONF_OK;
}


/*
 * A header field name (RFC 7230 token): its lowercase copy and the hash
 * nginx gives a request header of that name (over the lowercase key).
 */

static ngx_int_t
ngx_http_asyncx_pipeline_header_name(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *lowcase, ngx_uint_t *hash)
{
    if (ngx_http_asyncx_pipeline_check_token(name->data, name->len)
        != NGX_OK)
    {
        return NGX_DECLINED;
    }

    lowcase->data = ngx_pnalloc(cf->pool, name->len);
    if (lowcase->data == NULL) {
        return NGX_ERROR;
    }

    lowcase->len = name->len;
    *hash = ngx_hash_strlow(lowcase->data, name->data, name->len);

    return NGX_OK;
}


char *
ngx_http_asyncx_call_set_header(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    ngx_int_t                           rc;
    ngx_str_t                          *value, *body;
    ngx_uint_t                          i;
    ngx_http_asyncx_pipeline_conf_t    *pcf;
    ngx_http_asyncx_pipeline_header_t  *h, *set;
    ngx_http_compile_complex_value_t    ccv;

    pcf = &alcf->pipeline;
    value = cf->args->elts;

    if (pcf->set_headers == NULL) {
        pcf->set_headers = ngx_array_create(cf->pool, 4,
                                 sizeof(ngx_http_asyncx_pipeline_header_t));
        if (pcf->set_headers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    h = ngx_array_push(pcf->set_headers);
    if (h == NULL) {
        return NGX_CONF_ERROR;
    }

    h->name = value[1];

    rc = ngx_http_asyncx_pipeline_header_name(cf, &h->name, &h->lowcase,
                                              &h->hash);
    if (rc == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid header name \"%V\" in "
                           "\"asyncx_call_set_header\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    body = ngx_http_asyncx_pipeline_dropped;

    for (i = 0; i < NGX_HTTP_ASYNCX_PIPELINE_BODY_HEADERS; i++) {
        if (h->lowcase.len == body[i].len
            && ngx_strncmp(h->lowcase.data, body[i].data, body[i].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "header \"%V\" in \"asyncx_call_set_header\" "
                               "is set by the pipeline for the call's own "
                               "body", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    set = pcf->set_headers->elts;

    for (i = 0; i + 1 < pcf->set_headers->nelts; i++) {
        if (set[i].lowcase.len == h->lowcase.len
            && ngx_strncmp(set[i].lowcase.data, h->lowcase.data,
                           h->lowcase.len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate header \"%V\" in "
                               "\"asyncx_call_set_header\"", &value[1]);
            return NGX_CONF_ERROR;
        }
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[2];
    ccv.complex_value = &h->value;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* a value with variables is checked when evaluated */
    if (h->value.lengths == NULL
        && ngx_http_asyncx_pipeline_check_header_value(value[2].data,
                                                       value[2].len)
           != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the value of header \"%V\" in "
                           "\"asyncx_call_set_header\" has a CR, LF or NUL",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_asyncx_call_hide_header(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    ngx_int_t                         rc;
    ngx_str_t                        *value;
    ngx_http_asyncx_pipeline_conf_t  *pcf;
    ngx_http_asyncx_pipeline_drop_t  *d;

    pcf = &alcf->pipeline;
    value = cf->args->elts;

    if (pcf->hide_headers == NULL) {
        pcf->hide_headers = ngx_array_create(cf->pool, 4,
                                   sizeof(ngx_http_asyncx_pipeline_drop_t));
        if (pcf->hide_headers == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    d = ngx_array_push(pcf->hide_headers);
    if (d == NULL) {
        return NGX_CONF_ERROR;
    }

    rc = ngx_http_asyncx_pipeline_header_name(cf, &value[1], &d->lowcase,
                                              &d->hash);
    if (rc == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    if (rc == NGX_DECLINED) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid header name \"%V\" in "
                           "\"asyncx_call_hide_header\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a NUL-terminated copy: names become cJSON keys */

static ngx_int_t
ngx_http_asyncx_pipeline_strz(ngx_conf_t *cf, ngx_str_t *dst, u_char *src,
    size_t len)
{
    dst->data = ngx_pnalloc(cf->pool, len + 1);
    if (dst->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(dst->data, src, len);
    dst->data[len] = '\0';
    dst->len = len;

    return NGX_OK;
}


/* the index of a call by name, or NGX_ERROR */

static ngx_int_t
ngx_http_asyncx_pipeline_find_call(ngx_http_asyncx_pipeline_conf_t *conf,
    ngx_str_t *name)
{
    ngx_uint_t                             i;
    ngx_http_asyncx_pipeline_call_conf_t  *calls;

    calls = conf->calls->elts;

    for (i = 0; i < conf->calls->nelts; i++) {
        if (calls[i].name.len == name->len
            && ngx_strncmp(calls[i].name.data, name->data, name->len) == 0)
        {
            return i;
        }
    }

    return NGX_ERROR;
}


/*
 * asyncx_call_idempotent may come before the stage naming the call;
 * nattempts sizes the attempts of one request (1 + retries per call).
 */

static ngx_int_t
ngx_http_asyncx_pipeline_merge_idempotent(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_conf_t *conf)
{
    ngx_int_t                               n;
    ngx_uint_t                              i;
    ngx_http_asyncx_pipeline_call_conf_t   *calls;
    ngx_http_asyncx_pipeline_idempotent_t  *idem;

    calls = conf->calls->elts;

    if (conf->idempotent) {
        idem = conf->idempotent->elts;

        for (i = 0; i < conf->idempotent->nelts; i++) {
            n = ngx_http_asyncx_pipeline_find_call(conf, &idem[i].name);

            if (n == NGX_ERROR) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"asyncx_call_idempotent\" names "
                                   "unknown call \"%V\"", &idem[i].name);
                return NGX_ERROR;
            }

            if (calls[n].retries) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "call \"%V\" in "
                                   "\"asyncx_call_idempotent\" is already "
                                   "idempotent", &idem[i].name);
                return NGX_ERROR;
            }

            calls[n].retries = idem[i].retries;
            calls[n].attempt_timeout = idem[i].attempt_timeout;
        }
    }

    conf->nattempts = 0;

    for (i = 0; i < conf->calls->nelts; i++) {
        conf->nattempts += 1 + calls[i].retries;
    }

    return NGX_OK;
}


/*
 * asyncx_call_idempotent call [retries=N] [attempt_timeout=time]
 */

static ngx_http_asyncx_conf_bounds_t  ngx_http_asyncx_pipeline_attempt_bounds =
    { 1, NGX_HTTP_ASYNCX_CONF_MSEC_MAX, NGX_HTTP_ASYNCX_CONF_MSEC, 1 };

char *
ngx_http_asyncx_call_idempotent(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    ngx_int_t                               n;
    uint64_t                                v;
    ngx_str_t                              *value, s;
    ngx_uint_t                              i, seen;
    ngx_http_asyncx_conf_bounds_t          *bounds;
    ngx_http_asyncx_pipeline_conf_t        *pcf;
    ngx_http_asyncx_pipeline_idempotent_t  *idem;

    pcf = &alcf->pipeline;
    value = cf->args->elts;

    if (pcf->idempotent == NULL) {
        pcf->idempotent = ngx_array_create(cf->pool, 2,
                              sizeof(ngx_http_asyncx_pipeline_idempotent_t));
        if (pcf->idempotent == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    idem = ngx_array_push(pcf->idempotent);
    if (idem == NULL) {
        return NGX_CONF_ERROR;
    }

    idem->name = value[1];
    idem->retries = 1;
    idem->attempt_timeout = 0;
    seen = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        n = (ngx_strncmp(value[i].data, "retries=", 8) == 0) ? 1
            : (ngx_strncmp(value[i].data, "attempt_timeout=", 16) == 0) ? 2
            : 0;

        if (n && (seen & n)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate parameter \"%V\" of call \"%V\" "
                               "in \"asyncx_call_idempotent\"",
                               &value[i], &value[1]);
            return NGX_CONF_ERROR;
        }

        seen |= n;

        if (ngx_strncmp(value[i].data, "retries=", 8) == 0) {
            n = ngx_atoi(value[i].data + 8, value[i].len - 8);

            if (n < 1 || n > NGX_HTTP_ASYNCX_PIPELINE_MAX_RETRIES) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\" of call \"%V\" in "
                                   "\"asyncx_call_idempotent\", use 1..%d",
                                   &value[i], &value[1],
                                   NGX_HTTP_ASYNCX_PIPELINE_MAX_RETRIES);
                return NGX_CONF_ERROR;
            }

            idem->retries = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "attempt_timeout=", 16) == 0) {
            s.data = value[i].data + 16;
            s.len = value[i].len - 16;

            bounds = &ngx_http_asyncx_pipeline_attempt_bounds;

            if (ngx_http_asyncx_conf_parse_bounded(&s, bounds, &v) != NGX_OK)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid \"%V\" of call \"%V\" in "
                                   "\"asyncx_call_idempotent\", expected "
                                   "0 (off) or 1..%uL ms", &value[i],
                                   &value[1], bounds->max);
                return NGX_CONF_ERROR;
            }

            /* 0: no limit of its own, the call's deadline alone */
            idem->attempt_timeout = (ngx_msec_t) v;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\" in "
                           "\"asyncx_call_idempotent\", use retries=N or "
                           "attempt_timeout=time", &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* a call name the answer format uses as a key of its own */

static ngx_int_t
ngx_http_asyncx_pipeline_check_reserved(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_conf_t *conf)
{
    ngx_str_t                             *res;
    ngx_uint_t                             i;
    ngx_http_asyncx_pipeline_call_conf_t  *calls;

    if (conf->answer->reserved == NULL) {
        return NGX_OK;
    }

    calls = conf->calls->elts;

    for (i = 0; i < conf->calls->nelts; i++) {
        for (res = conf->answer->reserved; res->len; res++) {
            if (calls[i].name.len == res->len
                && ngx_strncmp(calls[i].name.data, res->data, res->len) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid call name \"%V\" in "
                                   "\"asyncx_stage\": the \"%V\" answer "
                                   "uses it as a key",
                                   &calls[i].name, &conf->answer->name);
                return NGX_ERROR;
            }
        }
    }

    return NGX_OK;
}


char *
ngx_http_asyncx_pipeline_answer(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    u_char                              *p, buf[256];
    ngx_str_t                           *value;
    ngx_uint_t                           i;
    ngx_http_asyncx_main_conf_t         *amcf;
    ngx_http_asyncx_pipeline_answer_t  **a, *found, *std;

    if (alcf->pipeline.answer) {
        return "is duplicate";
    }

    value = cf->args->elts;
    amcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_asyncx_module);

    found = NULL;
    a = amcf->pipeline.answers ? amcf->pipeline.answers->elts : NULL;

    std = &ngx_http_asyncx_pipeline_standard;

    if (value[1].len == std->name.len
        && ngx_strncmp(value[1].data, std->name.data, value[1].len) == 0)
    {
        found = std;
    }

    for (i = 0; found == NULL && a && i < amcf->pipeline.answers->nelts; i++) {
        if (value[1].len == a[i]->name.len
            && ngx_strncmp(value[1].data, a[i]->name.data, value[1].len) == 0)
        {
            found = a[i];
        }
    }

    if (found == NULL) {
        p = ngx_slprintf(buf, buf + sizeof(buf), "%V",
                         &ngx_http_asyncx_pipeline_standard.name);

        for (i = 0; a && i < amcf->pipeline.answers->nelts; i++) {
            p = ngx_slprintf(p, buf + sizeof(buf), ", %V", &a[i]->name);
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown answer format \"%V\" in "
                           "\"asyncx_pipeline_answer\", use %*s",
                           &value[1], p - buf, buf);
        return NGX_CONF_ERROR;
    }

    alcf->pipeline.answer = found;

    return NGX_CONF_OK;
}


/* the parts of a call URI that have variables become complex values */

static ngx_int_t
ngx_http_asyncx_pipeline_compile_uri(ngx_conf_t *cf,
    ngx_http_asyncx_pipeline_call_conf_t *call)
{
    ngx_str_t                         *part[2];
    ngx_uint_t                         i;
    ngx_http_complex_value_t         **cv[2];
    ngx_http_compile_complex_value_t   ccv;

    part[0] = &call->uri;
    part[1] = &call->args;
    cv[0] = &call->uri_cv;
    cv[1] = &call->args_cv;

    for (i = 0; i < 2; i++) {

        if (ngx_http_script_variables_count(part[i]) == 0) {
            continue;
        }

        *cv[i] = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (*cv[i] == NULL) {
            return NGX_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = part[i];
        ccv.complex_value = *cv[i];

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    /* (a fixed path was decoded: a "%24" in it is no variable) */
    if (call->uri_cv
        && ngx_http_asyncx_pipeline_compile_values(cf, &call->uri, 0,
                                                   &call->segments)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return call->args_cv
           ? ngx_http_asyncx_pipeline_compile_values(cf, &call->args, 1,
                                                     &call->arg_values)
           : NGX_OK;
}


/*
 * The variables whose values the client writes freely ($arg_*, $args,
 * $query_string, $http_*, $cookie_*, $remote_user, $content_type,
 * $request_body).  In the path each fills one segment, so a '/' in its
 * value fails the call (a client would reach paths below the one the
 * configuration names, "/users/$arg_id" with "id=42/delete"); in the
 * arguments each fills one value, so a '&' fails it ("?id=$http_x_id"
 * with "42&admin=1"; see _client_argument()).  In the path $uri,
 * captures and maps may hold more: the configuration shapes them.
 */

static ngx_uint_t
ngx_http_asyncx_pipeline_client_variable(ngx_str_t *name)
{
    ngx_uint_t  i;

    static ngx_str_t  prefixes[] = {
        ngx_string("arg_"), ngx_string("http_"), ngx_string("cookie_")
    };

    static ngx_str_t  names[] = {
        ngx_string("args"), ngx_string("query_string"),
        ngx_string("remote_user"), ngx_string("content_type"),
        ngx_string("request_body")
    };

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (name->len == names[i].len
            && ngx_strncasecmp(name->data, names[i].data, name->len) == 0)
        {
            return 1;
        }
    }

    for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (name->len > prefixes[i].len
            && ngx_strncasecmp(name->data, prefixes[i].data, prefixes[i].len)
               == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* the indexes of the client's variables in a call URI's part */

/*
 * In the arguments, the client's values above except $args and
 * $query_string (the client's arguments, passed on purpose), and those
 * that hold a '&' the client wrote although a path may use them whole:
 * $uri and $document_uri ("%26" decoded), $request_uri, $host.
 */

static ngx_uint_t
ngx_http_asyncx_pipeline_client_argument(ngx_str_t *name)
{
    ngx_uint_t  i;

    static ngx_str_t  passed[] = {
        ngx_string("args"), ngx_string("query_string")
    };

    static ngx_str_t  more[] = {
        ngx_string("uri"), ngx_string("document_uri"),
        ngx_string("request_uri"), ngx_string("host")
    };

    for (i = 0; i < sizeof(passed) / sizeof(passed[0]); i++) {
        if (name->len == passed[i].len
            && ngx_strncasecmp(name->data, passed[i].data, name->len) == 0)
        {
            return 0;
        }
    }

    for (i = 0; i < sizeof(more) / sizeof(more[0]); i++) {
        if (name->len == more[i].len
            && ngx_strncasecmp(name->data, more[i].data, name->len) == 0)
        {
            return 1;
        }
    }

    return ngx_http_asyncx_pipeline_client_variable(name);
}


static ngx_int_t
ngx_http_asyncx_pipeline_compile_values(ngx_conf_t *cf, ngx_str_t *part,
    ngx_uint_t in_args, ngx_array_t **values)
{
    u_char      *p, *last, *start;
    ngx_int_t    index;
    ngx_str_t    name;
    ngx_uint_t  *slot;

    p = part->data;
    last = p + part->len;

    while (p < last) {
        if (*p++ != '$' || p == last) {
            continue;
        }

        if (*p == '{') {
            start = ++p;

            while (p < last && *p != '}') {
                p++;
            }

        } else {
            start = p;

            while (p < last
                   && (((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')
                       || (*p >= '0' && *p <= '9') || *p == '_'))
            {
                p++;
            }
        }

        name.data = start;
        name.len = p - start;

        if (!(in_args ? ngx_http_asyncx_pipeline_client_argument(&name)
                      : ngx_http_asyncx_pipeline_client_variable(&name)))
        {
            continue;
        }

        index = ngx_http_get_variable_index(cf, &name);
        if (index == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (*values == NULL) {
            *values = ngx_array_create(cf->pool, 2, sizeof(ngx_uint_t));
            if (*values == NULL) {
                return NGX_ERROR;
            }
        }

        slot = ngx_array_push(*values);
        if (slot == NULL) {
            return NGX_ERROR;
        }

        *slot = (ngx_uint_t) index;
    }

    return NGX_OK;
}


/* the variables in a call URI's path part (before its first '?') */

static ngx_uint_t
ngx_http_asyncx_pipeline_path_vars(ngx_str_t *uri, size_t path_len)
{
    ngx_str_t  path;

    path.data = uri->data;
    path.len = path_len;

    return ngx_http_script_variables_count(&path);
}


/*
 * A fixed call path is percent-decoded here, as one with variables is
 * per request and as nginx decodes an SSI include's: the decoded path
 * is the call's $uri, matched against locations ("/b%65/x" reaches
 * location /be/) and encoded once by proxy_pass.  Refused as a value's
 * decoded path would be (ngx_http_asyncx_pipeline_check_decoded()).
 */

static ngx_int_t
ngx_http_asyncx_pipeline_decode_path(ngx_conf_t *cf, ngx_str_t *uri,
    size_t path_len, ngx_str_t *path)
{
    u_char     *src, *dst;
    ngx_str_t   raw;

    raw.data = uri->data;
    raw.len = path_len;

    if (ngx_strlchr(raw.data, raw.data + raw.len, '%') == NULL) {
        *path = raw;
        return NGX_OK;
    }

    dst = ngx_pnalloc(cf->pool, raw.len);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    path->data = dst;
    src = raw.data;

    ngx_unescape_uri(&dst, &src, raw.len, 0);

    path->len = dst - path->data;

    return ngx_http_asyncx_pipeline_check_decoded(&raw, path);
}


/*
 * One function: a stage's calls are checked against each other and the
 * answer format's reserved names in one pass; a parameter table is the
 * next split.
 */

char *
ngx_http_asyncx_stage(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    u_char                                 *eq;
    size_t                                  path_len;
    ngx_str_t                              *value, name, uri, path;
    ngx_uint_t                              i, j, vars;
    ngx_http_asyncx_pipeline_conf_t        *pcf;
    ngx_http_asyncx_pipeline_call_conf_t   *call, *calls;
    ngx_http_asyncx_pipeline_stage_conf_t  *stage, *stages;

    pcf = &alcf->pipeline;
    value = cf->args->elts;

    if (ngx_http_asyncx_pipeline_check_name(value[1].data, value[1].len)
        != NGX_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid stage name \"%V\" in \"%V\"",
                           &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts < 3) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "stage \"%V\" in \"%V\" has no calls, use "
                           "name=/uri ...", &value[1], &cmd->name);
        return NGX_CONF_ERROR;
    }

    if (pcf->stages == NULL) {
        pcf->stages = ngx_array_create(cf->pool, 4,
                              sizeof(ngx_http_asyncx_pipeline_stage_conf_t));
        pcf->calls = ngx_array_create(cf->pool, 8,
                              sizeof(ngx_http_asyncx_pipeline_call_conf_t));
        if (pcf->stages == NULL || pcf->calls == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    stages = pcf->stages->elts;

    for (i = 0; i < pcf->stages->nelts; i++) {
        if (stages[i].name.len == value[1].len
            && ngx_strncmp(stages[i].name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate stage name \"%V\" in \"%V\"",
                               &value[1], &cmd->name);
            return NGX_CONF_ERROR;
        }
    }

    stage = ngx_array_push(pcf->stages);
    if (stage == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_asyncx_pipeline_strz(cf, &stage->name, value[1].data,
                                      value[1].len)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    stage->first = pcf->calls->nelts;
    stage->ncalls = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        eq = (u_char *) ngx_strlchr(value[i].data,
                                    value[i].data + value[i].len, '=');
        if (eq == NULL) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid call \"%V\" in \"%V\", use "
                               "name=/uri", &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        name.data = value[i].data;
        name.len = eq - value[i].data;
        uri.data = eq + 1;
        uri.len = value[i].data + value[i].len - uri.data;

        if (ngx_http_asyncx_pipeline_check_name(name.data, name.len)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid call name \"%V\" of \"%V\" in "
                               "\"%V\"", &name, &value[i], &cmd->name);
            return NGX_CONF_ERROR;
        }

        vars = ngx_http_script_variables_count(&uri);

        if ((vars ? ngx_http_asyncx_pipeline_check_uri_template(uri.data,
                                                       uri.len, &path_len)
                  : ngx_http_asyncx_pipeline_check_uri(uri.data, uri.len,
                                                       &path_len))
               != NGX_OK
            || (ngx_http_asyncx_pipeline_path_vars(&uri, path_len) == 0
                && ngx_http_asyncx_pipeline_decode_path(cf, &uri, path_len,
                                                        &path)
                   != NGX_OK))
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid URI \"%V\" of call \"%V\" in "
                               "\"%V\"", &uri, &name, &cmd->name);
            return NGX_CONF_ERROR;
        }

        calls = pcf->calls->elts;

        for (j = 0; j < pcf->calls->nelts; j++) {
            if (calls[j].name.len == name.len
                && ngx_strncmp(calls[j].name.data, name.data, name.len) == 0)
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate call name \"%V\" in \"%V\"",
                                   &name, &cmd->name);
                return NGX_CONF_ERROR;
            }
        }

        if (pcf->calls->nelts == NGX_HTTP_ASYNCX_PIPELINE_MAX_CALLS) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "too many calls at \"%V\" in \"%V\", a "
                               "pipeline has at most %d", &value[i],
                               &cmd->name, NGX_HTTP_ASYNCX_PIPELINE_MAX_CALLS);
            return NGX_CONF_ERROR;
        }

        call = ngx_array_push(pcf->calls);
        if (call == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(call, sizeof(ngx_http_asyncx_pipeline_call_conf_t));

        if (ngx_http_asyncx_pipeline_strz(cf, &call->name, name.data,
                                          name.len)
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        if (ngx_http_asyncx_pipeline_path_vars(&uri, path_len)) {
            call->uri.data = uri.data;
            call->uri.len = path_len;

        } else {
            call->uri = path;
        }

        if (path_len < uri.len) {
            call->args.data = uri.data + path_len + 1;
            call->args.len = uri.len - path_len - 1;
        }

        if (vars
            && ngx_http_asyncx_pipeline_compile_uri(cf, call) != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }

        call->stage = pcf->stages->nelts - 1;
        stage->ncalls++;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_asyncx_call_optional(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_asyncx_loc_conf_t *alcf = conf;

    ngx_str_t                            *value;
    ngx_http_asyncx_json_info_t           info;
    ngx_http_asyncx_pipeline_conf_t      *pcf;
    ngx_http_asyncx_pipeline_optional_t  *opt;

    pcf = &alcf->pipeline;
    value = cf->args->elts;

    if (pcf->optional == NULL) {
        pcf->optional = ngx_array_create(cf->pool, 2,
                                sizeof(ngx_http_asyncx_pipeline_optional_t));
        if (pcf->optional == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    opt = ngx_array_push(pcf->optional);
    if (opt == NULL) {
        return NGX_CONF_ERROR;
    }

    opt->name = value[1];
    ngx_str_set(&opt->fallback, "null");

    if (cf->args->nelts == 3) {
        /*
         * spliced as is into error objects and call documents, so as
         * deep as a call's answer may be (the answer stays within 1000
         * levels)
         */
        if (ngx_http_asyncx_json_validate(value[2].data, value[2].len,
                                          NGX_HTTP_ASYNCX_JSON_PIPELINE, &info)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid fallback \"%*s%s\" of call \"%V\" "
                               "in \"%V\": %s",
                               ngx_http_asyncx_utf8_cut(value[2].data,
                                                        value[2].len, 256),
                               value[2].data,
                               value[2].len > 256 ? "..." : "", &value[1],
                               &cmd->name,
                               info.reason ? info.reason : "not JSON");
            return NGX_CONF_ERROR;
        }

        opt->fallback.data = info.start;
        opt->fallback.len = info.end - info.start;
    }

    return NGX_CONF_OK;
}
